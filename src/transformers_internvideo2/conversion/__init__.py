"""Wing: strict conversion of the original InternVideo2 checkpoints into `save_pretrained` folders."""

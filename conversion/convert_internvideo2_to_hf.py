#!/usr/bin/env python
"""Convert an original single-modality InternVideo2 checkpoint (classifier, attentive probe, stage-1 pretraining
student, distilled S/B/L student) into a Hugging Face `save_pretrained` folder.

    python conversion/convert_internvideo2_to_hf.py --checkpoint 1B_ft_k710_ft_k400_f8.pth --output out/ \
        --preset internvideo2-1b
    python conversion/convert_internvideo2_to_hf.py --checkpoint checkpoint.pth --output out/ \
        --original-kwargs constructor_kwargs.json

Stage-2 checkpoints (1B video-text; 6B audio-video-text with --beats-cfg, or its video-text part with --drop-audio) take `--family stage2`:

    python conversion/convert_internvideo2_to_hf.py --family stage2 --checkpoint InternVideo2-stage2_1b-224p-f4.pt \
        --output out/

Stage-3 chat checkpoints (InternVideo2-Chat-8B, its HD and InternLM2.5 variants) take `--family chat`:

    python conversion/convert_internvideo2_to_hf.py --family chat --checkpoint InternVideo2-Chat-8B/ --output out/ \
        --preset internvideo2-chat-8b [--lora merge|adapter]

The BEATs audio encoder (a `beats.pth`, or the audio encoder of a 6B stage-2 checkpoint with the `beats.pth` that
gives its sizes) takes `--family beats`; the folder also gets the Kaldi-fbank feature extractor:

    python conversion/convert_internvideo2_to_hf.py --family beats --checkpoint beats.pth --output out/
    python conversion/convert_internvideo2_to_hf.py --family beats --checkpoint stage2_6b_with_audio.pt \
        --beats-cfg beats.pth --output out/

The same dispatcher runs `internvideo2 convert`; all the logic lives in `transformers_internvideo2.conversion`
(see docs/conversion.md).
"""

import sys
from pathlib import Path

try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))



from transformers_internvideo2.conversion.families import main  # noqa: E402


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

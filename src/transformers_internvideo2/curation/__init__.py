"""The InternVideo2 data pipeline: shot segmentation ([`shots`]), the original clip rules ([`clips`]), boundary
evaluation ([`evaluation`]) and per-clip captions fused by a language model ([`captions`]), producing the JSON-lines
data the stage-2 Trainer reads."""

"""InternVideo-MM: the multimodal video encoder of InternVideo (v1, arXiv 2212.03191), with its caption decoder."""

from .configuration_internvideo_mm import (
    INTERNVIDEO_MM_PRESETS,
    InternVideoMMConfig,
    InternVideoMMTextConfig,
    InternVideoMMVisionConfig,
)
from .processing_internvideo_mm import InternVideoMMProcessor, InternVideoMMTokenizer, InternVideoMMVideoProcessor
from .modeling_internvideo_mm import (
    InternVideoMMCaptionDecoder,
    InternVideoMMCaptioningOutput,
    InternVideoMMForCaptioning,
    InternVideoMMModel,
    InternVideoMMOutput,
    InternVideoMMPreTrainedModel,
    InternVideoMMTextModel,
    InternVideoMMVisionModel,
    InternVideoMMVisionOutput,
)


__all__ = [
    "INTERNVIDEO_MM_PRESETS",
    "InternVideoMMCaptionDecoder",
    "InternVideoMMCaptioningOutput",
    "InternVideoMMConfig",
    "InternVideoMMForCaptioning",
    "InternVideoMMModel",
    "InternVideoMMOutput",
    "InternVideoMMPreTrainedModel",
    "InternVideoMMProcessor",
    "InternVideoMMTokenizer",
    "InternVideoMMVideoProcessor",
    "InternVideoMMTextConfig",
    "InternVideoMMTextModel",
    "InternVideoMMVisionConfig",
    "InternVideoMMVisionModel",
    "InternVideoMMVisionOutput",
]

"""The InternVideo2-CLIP family: the CLIP video tower (InternVideo2 blocks + attention pooler), the LLaMA (1B/6B) or
MobileCLIP (S/B/L14) text tower, and the processor."""

from .configuration_internvideo2_clip import (
    INTERNVIDEO2_CLIP_PRESETS,
    InternVideo2ClipConfig,
    InternVideo2MobileCLIPTextConfig,
)
from .modeling_internvideo2_clip import (
    InternVideo2ClipModel,
    InternVideo2ClipOutput,
    InternVideo2ClipPreTrainedModel,
    InternVideo2ClipVideoFeatures,
    InternVideo2MobileCLIPTextModel,
    InternVideo2MobileCLIPTextPreTrainedModel,
)
from .processing_internvideo2_clip import InternVideo2ClipProcessor


__all__ = [
    "InternVideo2ClipProcessor",
    "INTERNVIDEO2_CLIP_PRESETS",
    "InternVideo2ClipConfig",
    "InternVideo2MobileCLIPTextConfig",
    "InternVideo2ClipModel",
    "InternVideo2ClipOutput",
    "InternVideo2ClipPreTrainedModel",
    "InternVideo2ClipVideoFeatures",
    "InternVideo2MobileCLIPTextModel",
    "InternVideo2MobileCLIPTextPreTrainedModel",
]

"""The InternVideo2 vision encoder: backbone, video classifier, stage-1 student, and the video processor that every
InternVideo2 family shares."""

from .configuration_internvideo2_vision import INTERNVIDEO2_VISION_PRESETS, InternVideo2VisionConfig
from .modeling_internvideo2_vision import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
    InternVideo2VisionPreTrainedModel,
)
from .video_processing_internvideo2 import InternVideo2VideoProcessor


__all__ = [
    "INTERNVIDEO2_VISION_PRESETS",
    "InternVideo2VisionConfig",
    "InternVideo2VisionPreTrainedModel",
    "InternVideo2VisionModel",
    "InternVideo2ForVideoClassification",
    "InternVideo2ForPreTraining",
    "InternVideo2VideoProcessor",
]

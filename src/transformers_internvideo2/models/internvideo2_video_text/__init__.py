"""The InternVideo2 stage-2 video-text family: dual encoder, BERT text encoder with fusion layers, matching and MLM
heads, and the processor (video processor + BERT tokenizer)."""

from .configuration_internvideo2_video_text import (
    INTERNVIDEO2_VIDEO_TEXT_PRESETS,
    InternVideo2Config,
    InternVideo2TextConfig,
)
from .modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2PreTrainedModel,
    InternVideo2TextForMaskedLM,
    InternVideo2TextModel,
    InternVideo2TextPreTrainedModel,
)
from .processing_internvideo2_video_text import InternVideo2Processor


__all__ = [
    "INTERNVIDEO2_VIDEO_TEXT_PRESETS",
    "InternVideo2Config",
    "InternVideo2TextConfig",
    "InternVideo2PreTrainedModel",
    "InternVideo2Model",
    "InternVideo2ForRetrieval",
    "InternVideo2TextPreTrainedModel",
    "InternVideo2TextModel",
    "InternVideo2TextForMaskedLM",
    "InternVideo2Processor",
]

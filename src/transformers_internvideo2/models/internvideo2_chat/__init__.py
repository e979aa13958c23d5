"""The InternVideo2 stage-3 chat family (VideoChat2): vision encoder -> Q-Former -> projection -> any causal LM, and
its processor (video processor + the LLM's tokenizer + chat template)."""

from .configuration_internvideo2_chat import INTERNVIDEO2_CHAT_PRESETS, InternVideo2ChatConfig, InternVideo2QFormerConfig
from .modeling_internvideo2_chat import (
    InternVideo2ChatPreTrainedModel,
    InternVideo2ForConditionalGeneration,
    InternVideo2QFormerModel,
)
from .processing_internvideo2_chat import InternVideo2ChatProcessor


__all__ = [
    "INTERNVIDEO2_CHAT_PRESETS",
    "InternVideo2ChatConfig",
    "InternVideo2QFormerConfig",
    "InternVideo2ChatPreTrainedModel",
    "InternVideo2ForConditionalGeneration",
    "InternVideo2QFormerModel",
    "InternVideo2ChatProcessor",
]

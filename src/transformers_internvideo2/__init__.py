"""InternVideo2 for Hugging Face Transformers.

Importing the package registers every model, configuration and processor with the Transformers Auto classes, so
`AutoModel.from_pretrained(<converted folder>)` and `pipeline(...)` work without `trust_remote_code`. Folders saved by
this package also carry an `auto_map` and the modeling files, for users who load them with `trust_remote_code=True`
without installing the package.
"""

from .configuration_internvideo2 import INTERNVIDEO2_VISION_PRESETS, InternVideo2VisionConfig
from .modeling_internvideo2 import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
    InternVideo2VisionPreTrainedModel,
)
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
from .configuration_internvideo2_chat import (
    INTERNVIDEO2_CHAT_PRESETS,
    InternVideo2ChatConfig,
    InternVideo2QFormerConfig,
)
from .modeling_internvideo2_chat import (
    InternVideo2ChatPreTrainedModel,
    InternVideo2ForConditionalGeneration,
    InternVideo2QFormerModel,
)
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "INTERNVIDEO2_VISION_PRESETS",
    "InternVideo2VisionConfig",
    "InternVideo2VisionPreTrainedModel",
    "InternVideo2VisionModel",
    "InternVideo2ForVideoClassification",
    "InternVideo2ForPreTraining",
    "INTERNVIDEO2_VIDEO_TEXT_PRESETS",
    "InternVideo2Config",
    "InternVideo2TextConfig",
    "InternVideo2PreTrainedModel",
    "InternVideo2Model",
    "InternVideo2ForRetrieval",
    "InternVideo2TextPreTrainedModel",
    "InternVideo2TextModel",
    "InternVideo2TextForMaskedLM",
    "INTERNVIDEO2_CHAT_PRESETS",
    "InternVideo2ChatConfig",
    "InternVideo2QFormerConfig",
    "InternVideo2ChatPreTrainedModel",
    "InternVideo2ForConditionalGeneration",
    "InternVideo2QFormerModel",
    "register_auto_classes",
]

"""Registration with the Transformers Auto classes (for `import transformers_internvideo2` users) and the `auto_map`
written into saved folders (for `trust_remote_code=True` users who did not install the package)."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)

from .configuration_internvideo2 import VISION_AUTO_MAP, InternVideo2VisionConfig
from .modeling_internvideo2 import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
)
from .configuration_internvideo2_video_text import InternVideo2Config, InternVideo2TextConfig
from .modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2TextForMaskedLM,
    InternVideo2TextModel,
)

# `VISION_AUTO_MAP` (what a saved vision checkpoint's config.json `auto_map` points to) is defined next to the config
# class, in a file copied with the modeling code; `InternVideo2VisionPreTrainedModel.save_pretrained` writes all of it.
__all__ = ["VISION_AUTO_MAP", "register_auto_classes"]

_REGISTERED = False


def _register_video_processor():
    # Kept separate: video processors need torchvision, the models do not.
    try:
        from transformers import AutoVideoProcessor

        from .video_processing_internvideo2 import InternVideo2VideoProcessor
    except ImportError:  # pragma: no cover - torchvision missing
        return
    AutoVideoProcessor.register(InternVideo2VisionConfig, InternVideo2VideoProcessor, exist_ok=True)
    InternVideo2VideoProcessor.register_for_auto_class("AutoVideoProcessor")


def _register_video_text_tasks():
    # The processor (video processor + BERT tokenizer) and `pipeline("zero-shot-video-classification")`. Like the
    # video processor they need torchvision; without it the models still import.
    try:
        from .pipelines import register_video_text_tasks
    except ModuleNotFoundError as error:  # pragma: no cover - torchvision missing
        if error.name != "torchvision" and not (error.name or "").startswith("torchvision."):
            raise
        return
    register_video_text_tasks()


def _register_chat_processor():
    # The chat processor (video processor + the LLM's tokenizer + chat template) under AutoProcessor, so that
    # `AutoProcessor.from_pretrained(<chat folder>)` and `pipeline("image-text-to-text", model=<chat folder>)` find it.
    # Like the video processor it needs torchvision; without it the models still import.
    try:
        from transformers import AutoProcessor

        from .configuration_internvideo2_chat import InternVideo2ChatConfig
        from .processing_internvideo2_chat import InternVideo2ChatProcessor
    except ModuleNotFoundError as error:  # pragma: no cover - torchvision missing
        if error.name != "torchvision" and not (error.name or "").startswith("torchvision."):
            raise
        return
    AutoProcessor.register(InternVideo2ChatConfig, InternVideo2ChatProcessor, exist_ok=True)
    InternVideo2ChatProcessor.register_for_auto_class("AutoProcessor")


def _register_video_text_models():
    # Stage-2 video-text models: the composite dual encoder (AutoModel) with its training/retrieval variant
    # (AutoModelForPreTraining), and the BERT text encoder with fusion layers on its own.
    AutoConfig.register(InternVideo2Config.model_type, InternVideo2Config, exist_ok=True)
    AutoConfig.register(InternVideo2TextConfig.model_type, InternVideo2TextConfig, exist_ok=True)
    AutoModel.register(InternVideo2Config, InternVideo2Model, exist_ok=True)
    AutoModelForPreTraining.register(InternVideo2Config, InternVideo2ForRetrieval, exist_ok=True)
    AutoModel.register(InternVideo2TextConfig, InternVideo2TextModel, exist_ok=True)
    AutoModelForMaskedLM.register(InternVideo2TextConfig, InternVideo2TextForMaskedLM, exist_ok=True)
    InternVideo2Config.register_for_auto_class()
    InternVideo2TextConfig.register_for_auto_class()
    InternVideo2Model.register_for_auto_class("AutoModel")
    InternVideo2ForRetrieval.register_for_auto_class("AutoModelForPreTraining")
    InternVideo2TextModel.register_for_auto_class("AutoModel")
    InternVideo2TextForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")


def _register_chat_models():
    # Stage-3 video chat (VideoChat2 on InternVideo2): the composite model under the image-text-to-text and multimodal
    # LM Auto classes (what `pipeline("image-text-to-text")` / `pipeline("any-to-any")` load), its Q-Former on its own.
    from transformers import AutoModelForImageTextToText, AutoModelForMultimodalLM

    from .configuration_internvideo2_chat import InternVideo2ChatConfig, InternVideo2QFormerConfig
    from .modeling_internvideo2_chat import InternVideo2ForConditionalGeneration, InternVideo2QFormerModel

    AutoConfig.register(InternVideo2ChatConfig.model_type, InternVideo2ChatConfig, exist_ok=True)
    AutoConfig.register(InternVideo2QFormerConfig.model_type, InternVideo2QFormerConfig, exist_ok=True)
    AutoModel.register(InternVideo2QFormerConfig, InternVideo2QFormerModel, exist_ok=True)
    AutoModelForImageTextToText.register(InternVideo2ChatConfig, InternVideo2ForConditionalGeneration, exist_ok=True)
    AutoModelForMultimodalLM.register(InternVideo2ChatConfig, InternVideo2ForConditionalGeneration, exist_ok=True)
    InternVideo2ChatConfig.register_for_auto_class()
    InternVideo2ForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")


def register_auto_classes() -> None:
    """Register configs, models and processors with the Auto classes (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    AutoConfig.register(InternVideo2VisionConfig.model_type, InternVideo2VisionConfig, exist_ok=True)
    AutoModel.register(InternVideo2VisionConfig, InternVideo2VisionModel, exist_ok=True)
    AutoModelForVideoClassification.register(
        InternVideo2VisionConfig, InternVideo2ForVideoClassification, exist_ok=True
    )
    AutoModelForPreTraining.register(InternVideo2VisionConfig, InternVideo2ForPreTraining, exist_ok=True)

    # trust_remote_code export: save_pretrained copies the modeling/config files and writes `auto_map`.
    InternVideo2VisionConfig.register_for_auto_class()
    InternVideo2VisionModel.register_for_auto_class("AutoModel")
    InternVideo2ForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    InternVideo2ForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    _register_video_text_models()
    _register_chat_models()
    _register_video_processor()
    _register_video_text_tasks()
    _register_chat_processor()
    _REGISTERED = True

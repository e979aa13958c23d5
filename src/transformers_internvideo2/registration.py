"""Registration with the Transformers Auto classes (for `import transformers_internvideo2` users) and the `auto_map`
written into saved folders (for `trust_remote_code=True` users who did not install the package)."""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification

from .configuration_internvideo2 import InternVideo2VisionConfig
from .modeling_internvideo2 import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
)

# What a saved vision checkpoint's config.json `auto_map` points to. Transformers only writes the entry of the saved
# class itself, so the whole map is set on the config class: every Auto class then resolves from the copied files.
VISION_AUTO_MAP = {
    "AutoConfig": "configuration_internvideo2.InternVideo2VisionConfig",
    "AutoModel": "modeling_internvideo2.InternVideo2VisionModel",
    "AutoModelForVideoClassification": "modeling_internvideo2.InternVideo2ForVideoClassification",
    "AutoModelForPreTraining": "modeling_internvideo2.InternVideo2ForPreTraining",
}

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
    _register_video_processor()
    _REGISTERED = True

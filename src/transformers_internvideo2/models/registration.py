"""Registration of every model family with the Transformers Auto classes (for `import transformers_internvideo2`
users). What a *saved folder* carries for `trust_remote_code=True` users is the business of
[`~transformers_internvideo2.models.remote_code.RemoteCodeMixin`]."""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMaskedLM,
    AutoModelForMultimodalLM,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoVideoProcessor,
)

from .beats import BeatsConfig, BeatsFeatureExtractor, BeatsModel
from .internvideo2_chat import (
    InternVideo2ChatConfig,
    InternVideo2ChatProcessor,
    InternVideo2ForConditionalGeneration,
    InternVideo2QFormerConfig,
    InternVideo2QFormerModel,
)
from .internvideo2_clip import (
    InternVideo2ClipConfig,
    InternVideo2ClipModel,
    InternVideo2ClipProcessor,
    InternVideo2MobileCLIPTextConfig,
    InternVideo2MobileCLIPTextModel,
)
from .internvideo2_video_text import (
    InternVideo2Config,
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2Processor,
    InternVideo2TextConfig,
    InternVideo2TextForMaskedLM,
    InternVideo2TextModel,
)
from .internvideo_mm import (
    InternVideoMMConfig,
    InternVideoMMForCaptioning,
    InternVideoMMModel,
    InternVideoMMProcessor,
    InternVideoMMTextConfig,
    InternVideoMMTextModel,
    InternVideoMMVideoProcessor,
    InternVideoMMVisionConfig,
    InternVideoMMVisionModel,
)
from .internvideo_cma import InternVideoCMAConfig, InternVideoCMAForVideoClassification
from .videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification, InternVideoMAEModel
from .internvideo2_vision import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VideoProcessor,
    InternVideo2VisionConfig,
    InternVideo2VisionModel,
)
from .shot_boundary import ShotBoundaryConfig, ShotBoundaryModel


__all__ = ["register_auto_classes"]

# (Auto class, config class, model or processor class) for every family; one row per Auto class it answers to.
AUTO_CLASS_REGISTRY = (
    # vision encoder
    (AutoModel, InternVideo2VisionConfig, InternVideo2VisionModel),
    (AutoModelForVideoClassification, InternVideo2VisionConfig, InternVideo2ForVideoClassification),
    (AutoModelForPreTraining, InternVideo2VisionConfig, InternVideo2ForPreTraining),
    (AutoVideoProcessor, InternVideo2VisionConfig, InternVideo2VideoProcessor),
    # stage-2 video-text: the dual encoder, its training/retrieval variant, and the BERT text encoder on its own
    (AutoModel, InternVideo2Config, InternVideo2Model),
    (AutoModelForPreTraining, InternVideo2Config, InternVideo2ForRetrieval),
    (AutoProcessor, InternVideo2Config, InternVideo2Processor),
    (AutoModel, InternVideo2TextConfig, InternVideo2TextModel),
    (AutoModelForMaskedLM, InternVideo2TextConfig, InternVideo2TextForMaskedLM),
    # InternVideo2-CLIP: the dual encoder (LLaMA or MobileCLIP text tower) and the MobileCLIP text tower on its own
    (AutoModel, InternVideo2ClipConfig, InternVideo2ClipModel),
    (AutoProcessor, InternVideo2ClipConfig, InternVideo2ClipProcessor),
    (AutoModel, InternVideo2MobileCLIPTextConfig, InternVideo2MobileCLIPTextModel),
    # stage-3 chat: what pipeline("image-text-to-text") / pipeline("any-to-any") load, and the Q-Former on its own
    (AutoModelForImageTextToText, InternVideo2ChatConfig, InternVideo2ForConditionalGeneration),
    (AutoModelForMultimodalLM, InternVideo2ChatConfig, InternVideo2ForConditionalGeneration),
    (AutoProcessor, InternVideo2ChatConfig, InternVideo2ChatProcessor),
    (AutoModel, InternVideo2QFormerConfig, InternVideo2QFormerModel),
    # BEATs audio encoder (the 6B stage-2 model's) and its Kaldi-fbank feature extractor
    (AutoModel, BeatsConfig, BeatsModel),
    (AutoFeatureExtractor, BeatsConfig, BeatsFeatureExtractor),
    # shot-boundary detectors of the data pipeline (TransNetV2, AutoShot)
    (AutoModel, ShotBoundaryConfig, ShotBoundaryModel),
    # InternVideo (v1) multimodal video encoder: dual encoder, + caption decoder, and its two towers on their own
    (AutoModel, InternVideoMMConfig, InternVideoMMModel),
    (AutoModelForPreTraining, InternVideoMMConfig, InternVideoMMForCaptioning),
    (AutoProcessor, InternVideoMMConfig, InternVideoMMProcessor),
    (AutoVideoProcessor, InternVideoMMConfig, InternVideoMMVideoProcessor),
    (AutoModel, InternVideoMMVisionConfig, InternVideoMMVisionModel),
    (AutoModel, InternVideoMMTextConfig, InternVideoMMTextModel),
    # InternVideo (v1) VideoMAE classifiers: Transformers' VideoMAE with the original position-table rule
    (AutoModel, InternVideoMAEConfig, InternVideoMAEModel),
    (AutoModelForVideoClassification, InternVideoMAEConfig, InternVideoMAEForVideoClassification),
    # cross-model attention fusion of InternVideo (v1), built from the paper
    (AutoModelForVideoClassification, InternVideoCMAConfig, InternVideoCMAForVideoClassification),
)

_REGISTERED = False


def register_auto_classes() -> None:
    """Register configs, models and processors with the Auto classes (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    for config_class in {config_class for _, config_class, _ in AUTO_CLASS_REGISTRY}:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    for auto_class, config_class, target in AUTO_CLASS_REGISTRY:
        auto_class.register(config_class, target, exist_ok=True)
    _REGISTERED = True

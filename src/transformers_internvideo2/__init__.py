"""InternVideo2 (and InternVideo) for Hugging Face Transformers.

Layout (docs/architecture.md): the **core** — `models/` (one folder per model family), `media/` (decoding, frame
sampling) and `losses/` — imports nothing else; the **wings** — `conversion/`, `tasks/`, `training/`,
`shapes_world/`, `cli/` — build on it.

Importing the package registers every model, configuration and processor with the Transformers Auto classes (and
the zero-shot video classification pipeline), so `AutoModel.from_pretrained(<converted folder>)` and `pipeline(...)`
work without `trust_remote_code`. Folders saved by this package also carry an `auto_map` and the modeling files, for
users who load them with `trust_remote_code=True` without installing the package.

The models and processors are imported here; the public names of the wings (trainers, retrieval, ...) are importable
from the package root too, and load their module on first use.
"""

import importlib

from .models import *  # noqa: F401,F403
from .models import __all__ as _models_all
from .models import register_auto_classes
from .tasks.pipelines import register_video_text_tasks


__version__ = "0.1.0"

register_auto_classes()
register_video_text_tasks()

# Public names of the wings, resolved on first access (PEP 562) so that `import transformers_internvideo2` stays as
# light as the models: {name: module that defines it}.
_LAZY_NAMES = {
    # media
    "VideoDecodingError": "media.video_decoding",
    "decode_video_frames": "media.video_decoding",
    "AudioDecodingError": "media.audio_decoding",
    "NoAudioStreamError": "media.audio_decoding",
    "decode_audio": "media.audio_decoding",
    # losses
    "video_text_contrastive_loss": "losses.contrastive",
    # tasks
    "ZeroShotVideoClassificationPipeline": "tasks.pipelines",
    "retrieve": "tasks.retrieval",
    "embed_videos": "tasks.retrieval",
    "embed_texts": "tasks.retrieval",
    "RetrievalResults": "tasks.retrieval",
    "retrieval_metrics": "tasks.metrics",
    "classify_videos": "tasks.inference",
    "evaluate_mvbench": "tasks.mvbench",
    # training
    "InternVideo2ClassificationArguments": "training",
    "InternVideo2ClassificationTrainer": "training",
    "InternVideo2PretrainingArguments": "training",
    "InternVideo2PretrainingTrainer": "training",
    "InternVideo2VideoTextArguments": "training",
    "InternVideo2VideoTextTrainer": "training",
    "InternVideo2ChatTrainingArguments": "training",
    "InternVideo2ClipArguments": "training",
    "InternVideo2ClipTrainer": "training",
    "InternVideo2ChatTrainer": "training",
    "InternVideo2ChatDataCollator": "training",
    "VideoCollator": "training.data",
    "load_video_folder": "training.data",
    "load_video_table": "training.data",
    # shapes world
    "load_bundled_classifier": "shapes_world.bundled",
    "load_bundled_video_text": "shapes_world.bundled",
    "load_bundled_chat": "shapes_world.bundled",
}


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY_NAMES})


__all__ = [*_models_all, *_LAZY_NAMES, "register_auto_classes"]

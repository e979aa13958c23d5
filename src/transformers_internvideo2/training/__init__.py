"""Wing: training — `Trainer` subclasses per stage with their `TrainingArguments` (the recipe knobs), collators,
video-token masking and dataset loaders (see docs/training.md)."""

from .chat import InternVideo2ChatDataCollator, InternVideo2ChatTrainer, InternVideo2ChatTrainingArguments
from .classification import (
    InternVideo2ClassificationArguments,
    InternVideo2ClassificationTrainer,
    MultiViewMetrics,
    classification_metrics,
    layer_decay_parameter_groups,
    mixup_cutmix,
    multi_view_probabilities,
    top_k_accuracy,
)
from .clip import InternVideo2ClipArguments, InternVideo2ClipTrainer, apply_clip_trainable_set, merge_text_lora
from .common import UndecodableSamplesMixin, VideoTrainerMixin, VideoTrainingArguments
from .data import VideoCollator, load_video_folder, load_video_table
from .pretraining import (
    InternVideo2PretrainingArguments,
    InternVideo2PretrainingTrainer,
    TeacherTargets,
    clip_teacher_targets,
    mae_teacher_targets,
)
from .video_text import VIDEO_MASK_TYPES, InternVideo2VideoTextArguments, InternVideo2VideoTextTrainer


__all__ = [
    "InternVideo2ChatDataCollator",
    "InternVideo2ChatTrainer",
    "InternVideo2ChatTrainingArguments",
    "InternVideo2ClassificationArguments",
    "InternVideo2ClassificationTrainer",
    "InternVideo2ClipArguments",
    "InternVideo2ClipTrainer",
    "InternVideo2PretrainingArguments",
    "InternVideo2PretrainingTrainer",
    "InternVideo2VideoTextArguments",
    "InternVideo2VideoTextTrainer",
    "MultiViewMetrics",
    "TeacherTargets",
    "VIDEO_MASK_TYPES",
    "VideoCollator",
    "UndecodableSamplesMixin",
    "VideoTrainerMixin",
    "VideoTrainingArguments",
    "apply_clip_trainable_set",
    "merge_text_lora",
    "classification_metrics",
    "clip_teacher_targets",
    "layer_decay_parameter_groups",
    "load_video_folder",
    "load_video_table",
    "mae_teacher_targets",
    "mixup_cutmix",
    "multi_view_probabilities",
    "top_k_accuracy",
]

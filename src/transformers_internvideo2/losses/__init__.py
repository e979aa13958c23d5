"""Core losses, each small and tested on its own; the model forwards compute their losses with them."""

from .accumulation import mean_over_step
from .alignment import alignment_loss
from .classification import soft_target_cross_entropy, video_classification_loss
from .contrastive import gather_with_grad, gather_with_local_gradient, video_text_contrastive_loss
from .language_modeling import safe_item_divisor, token_cross_entropy


__all__ = [
    "alignment_loss",
    "gather_with_grad",
    "gather_with_local_gradient",
    "mean_over_step",
    "safe_item_divisor",
    "soft_target_cross_entropy",
    "token_cross_entropy",
    "video_classification_loss",
    "video_text_contrastive_loss",
]

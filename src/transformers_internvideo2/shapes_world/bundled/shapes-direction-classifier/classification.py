"""Cross-entropy against class indices or against a distribution per sample (label smoothing, mixup, cutmix)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .accumulation import mean_over_step
from .language_modeling import token_cross_entropy


__all__ = ["soft_target_cross_entropy", "video_classification_loss"]


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of `-sum(targets * log_softmax(logits))`, in float32."""
    return -(targets.float() * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def video_classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None
) -> torch.Tensor:
    """Single-label classification loss over videos: `labels` are class indices `(batch,)` (-100 = ignored) or
    target distributions `(batch, num_labels)`. A batch whose labels are all ignored gives 0, not NaN."""
    if labels.ndim == 2:
        if labels.shape != logits.shape:
            raise ValueError(f"Soft labels must have the logits' shape {tuple(logits.shape)}; got {tuple(labels.shape)}.")
        return mean_over_step(soft_target_cross_entropy(logits, labels), labels.shape[0], num_items_in_batch)
    return token_cross_entropy(logits, labels.long(), num_items_in_batch)

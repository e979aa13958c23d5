"""Stage-1 feature alignment: the student's decoded features against a frozen teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .accumulation import mean_over_step


__all__ = ["alignment_loss"]


def alignment_loss(
    student: torch.Tensor, teacher: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None, batch_dim: int = 0
) -> torch.Tensor:
    """Mean of `2 - 2 cos(student, teacher)` (MILAN-style, as the original), computed in float32. The mean runs over
    layers and tokens per sample, then over samples (the items: see [`mean_over_step`])."""
    cosine = (F.normalize(student.float(), dim=-1) * F.normalize(teacher.float(), dim=-1)).sum(-1)
    # (batch, everything else): also right for pooled features, where the cosine is just (batch,)
    per_sample = (2 - 2 * cosine).movedim(batch_dim, 0).reshape(cosine.shape[batch_dim], -1).mean(1)
    return mean_over_step(per_sample.mean(), per_sample.shape[0], num_items_in_batch)

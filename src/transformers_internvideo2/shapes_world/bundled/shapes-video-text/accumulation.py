"""How every loss of the package turns a micro-batch into its share of an optimiser step.

A loss is defined per item (a video, a video-text pair, a masked token) and averaged. Under gradient accumulation the
average must run over the items of the whole optimiser step, on all processes, not over each micro-batch: the
Trainers count those items and pass them to the model forwards as `num_items_in_batch` (the Transformers
convention), and each forward normalises its losses with [`mean_over_step`]. Without a count the plain batch mean
is returned, which is what a forward called outside a Trainer should give.
"""

from __future__ import annotations

import torch


__all__ = ["mean_over_step"]


def mean_over_step(
    batch_mean: torch.Tensor, local_items: int | torch.Tensor, num_items_in_batch: int | torch.Tensor | None
) -> torch.Tensor:
    """`batch_mean` (a mean over this micro-batch's `local_items`) as a sum over them divided by `num_items_in_batch`
    (the items of the whole step), or `batch_mean` itself when no count is given."""
    if num_items_in_batch is None:
        return batch_mean
    if torch.is_tensor(num_items_in_batch):  # at least 1: a step with no items gives 0, not NaN
        num_items_in_batch = num_items_in_batch.to(batch_mean.device).clamp_min(1)
    else:
        num_items_in_batch = max(num_items_in_batch, 1)
    return batch_mean * local_items / num_items_in_batch

"""Cross-entropy over labelled tokens (masked and causal language modelling), safe when nothing is labelled."""

from __future__ import annotations

import torch
import torch.nn.functional as F


__all__ = ["safe_item_divisor", "token_cross_entropy"]


def safe_item_divisor(counted: torch.Tensor, num_items_in_batch: int | torch.Tensor | None) -> torch.Tensor | int:
    """The number the summed loss is divided by: `num_items_in_batch` (the items of the whole optimiser step) when
    given, else the items counted here; at least 1, so that a batch with nothing to learn from gives a loss of 0 (with
    its graph still connected) instead of 0 / 0 = NaN."""
    divisor = counted.sum() if num_items_in_batch is None else num_items_in_batch
    if torch.is_tensor(divisor):
        return divisor.to(counted.device).clamp_min(1)
    return max(divisor, 1)


def token_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: int | torch.Tensor | None = None,
    ignore_index: int = -100,
    shift: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy over the tokens whose label is not `ignore_index`, in float32.

    Args:
        logits: `(..., sequence, vocab)`. labels: `(..., sequence)` token ids, `ignore_index` where not supervised.
        num_items_in_batch: labelled tokens of the whole optimiser step (the Trainer's count), else those here.
        shift: causal language modelling: position `i` predicts label `i + 1` (labels aligned with the inputs).

    Returns:
        A scalar; 0 when no token is labelled (never NaN).
    """
    if shift:
        logits, labels = logits[..., :-1, :], labels[..., 1:]
    labels = labels.to(logits.device)
    counted = labels != ignore_index
    per_token = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.masked_fill(~counted, 0).reshape(-1), reduction="none"
    )
    return (per_token * counted.reshape(-1)).sum() / safe_item_divisor(counted, num_items_in_batch)

"""Token masks for masked video training (stage 1, distillation and stage 2).

Every function returns a boolean mask of shape `(batch, num_frames * patches_per_frame)` over the **patch tokens** in
the encoder's token order (t-major, then row, then column), `True` = masked (dropped). The cls token is not part of
the mask: [`InternVideo2VisionModel`] and [`InternVideo2ForPreTraining`] always keep it. Every sample keeps the same
number of visible tokens, as the encoder requires.

* [`random_mask`]: uniform random per sample (stage 2's `RandomMaskingGenerator`).
* [`tube_mask`]: one random spatial mask repeated over all frames (`TubeMaskingGenerator`).
* [`attention_guided_mask`]: teacher-guided ("unmasked teacher") masking: the visible tokens are drawn *without
  replacement* with probability proportional to the teacher's attention-pooling weights, so that the tokens the
  teacher looks at are likely kept (stage 1 per frame, distillation over the whole clip).

Counts follow the original: a ratio `r` over `n` tokens masks `int(n * r)` and keeps `n - int(n * r)`.
All functions take an optional `torch.Generator` for reproducibility.
"""

from __future__ import annotations

import torch


__all__ = ["MASK_TYPES", "attention_guided_mask", "mask_tokens_for_mlm", "num_masked", "random_mask", "tube_mask"]

MASK_TYPES = ("attention", "tube", "random", "none")


def num_masked(num_tokens: int, mask_ratio: float) -> int:
    """Number of masked tokens, `int(num_tokens * mask_ratio)` as the original (truncation)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1); got {mask_ratio}.")
    return int(num_tokens * mask_ratio)


def _mask_from_visible(visible_indices: torch.Tensor, num_tokens: int) -> torch.Tensor:
    mask = torch.ones(*visible_indices.shape[:-1], num_tokens, dtype=torch.bool, device=visible_indices.device)
    return mask.scatter(-1, visible_indices, False)


def _random_visible(rows: int, num_tokens: int, num_visible: int, generator, device) -> torch.Tensor:
    # a random permutation per row: argsort of i.i.d. uniform noise
    noise = torch.rand(rows, num_tokens, generator=generator, device=device)
    return noise.argsort(dim=-1)[:, :num_visible]


def random_mask(
    batch_size: int,
    num_frames: int,
    patches_per_frame: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Mask `int(N * mask_ratio)` of the `N = num_frames * patches_per_frame` patch tokens, uniformly per sample."""
    total = num_frames * patches_per_frame
    num_visible = total - num_masked(total, mask_ratio)
    visible = _random_visible(batch_size, total, num_visible, generator, device)
    return _mask_from_visible(visible, total)


def tube_mask(
    batch_size: int,
    num_frames: int,
    patches_per_frame: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Mask the same `int(patches_per_frame * mask_ratio)` spatial positions in every frame ("tubes")."""
    num_visible = patches_per_frame - num_masked(patches_per_frame, mask_ratio)
    visible = _random_visible(batch_size, patches_per_frame, num_visible, generator, device)
    frame_mask = _mask_from_visible(visible, patches_per_frame)
    return frame_mask[:, None, :].expand(batch_size, num_frames, patches_per_frame).reshape(batch_size, -1)


def attention_guided_mask(
    attention: torch.Tensor,
    mask_ratio: float = 0.8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Teacher-guided masking from attention-pooling weights.

    Args:
        attention (`torch.Tensor` of shape `(batch, groups, tokens)`):
            Non-negative importance of each patch token, e.g. the head-averaged attention of the teacher's pooling
            query over the patch tokens. Sampling is done independently in each group: pass `(B, T, H*W)` for the
            stage-1 per-frame masking and `(B, 1, T*H*W)` for the distillation's whole-clip masking. Rows need not
            sum to one.
        mask_ratio (`float`, defaults to 0.8): fraction masked in each group (`int(tokens * ratio)` masked).
        generator (`torch.Generator`, *optional*): for reproducible draws.

    Returns:
        `torch.BoolTensor` of shape `(batch, groups * tokens)`, `True` = masked.

    The visible tokens are `tokens - int(tokens * ratio)` draws without replacement, each proportional to the
    weights of the tokens not drawn yet (`torch.multinomial`); drawing only the visible count has the same
    distribution as the original's full ranking followed by keeping its head.
    """
    if attention.ndim != 3:
        raise ValueError(f"attention must be (batch, groups, tokens); got shape {tuple(attention.shape)}.")
    batch_size, groups, tokens = attention.shape
    num_visible = tokens - num_masked(tokens, mask_ratio)
    weights = attention.detach().float().reshape(batch_size * groups, tokens)
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError("attention weights must be finite and non-negative.")
    # Tokens whose weight underflowed to 0 can still be drawn (after all others), as in a full ranking.
    weights = weights.clamp_min(torch.finfo(torch.float32).tiny)
    visible = torch.multinomial(weights, num_visible, replacement=False, generator=generator)
    mask = _mask_from_visible(visible, tokens)
    return mask.reshape(batch_size, groups * tokens)


def mask_tokens_for_mlm(
    input_ids: torch.Tensor,
    text_config,
    probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original MLM corruption: each token is selected with `probability` (never `[PAD]` or `[CLS]`); of the
    selected, 80 % become `[MASK]`, half of the rest a random id, the others stay. Returns `(masked_ids, labels)` with
    labels -100 on unselected positions. `text_config` supplies the special ids and the vocabulary size."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"The MLM probability must lie in (0, 1); got {probability}.")
    device = input_ids.device

    def bernoulli(p: float) -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device) < p

    selected = bernoulli(probability)
    selected &= input_ids != text_config.pad_token_id
    selected &= input_ids != text_config.cls_token_id
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    masked_ids = input_ids.clone()
    to_mask = selected & bernoulli(0.8)
    masked_ids[to_mask] = text_config.mask_token_id
    to_random = selected & ~to_mask & bernoulli(0.5)
    random_ids = torch.randint(text_config.vocab_size, input_ids.shape, generator=generator, device=device)
    masked_ids[to_random] = random_ids[to_random]
    return masked_ids, labels

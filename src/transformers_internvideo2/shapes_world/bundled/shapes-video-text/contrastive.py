"""Video–text contrastive loss (symmetric InfoNCE) that is exact under data parallelism.

Each process holds `n_local` (video, text) pairs. The loss gathers the embeddings of all processes and contrasts every
**local** item against the **global** batch, with positive `arange(n_local) + rank * n_local`. The gather keeps the
autograd graph: in the backward pass each process receives the gradient that *every* process's loss sends to its
embeddings (a reduce-scatter). After DDP/FSDP/DeepSpeed average the parameter gradients over the `W` processes, loss
and gradients are those of one process computing the loss on the concatenated batch of `W * n_local` pairs.

The original InternVideo2 (`VTC_VTM_Loss.vtc_loss`) does it differently. Every process builds the full
`(W n) x (W n)` similarity matrix from gathered features and averages the loss over all `W n` rows, so every process
computes the *global* loss; but its gather's backward returns only this process's slice of its *own* incoming
gradient. Each process thus back-propagates `dL_global / d(local embeddings)`, and DDP's averaging divides that by `W`:
the gradients of everything below the embeddings are the single-process gradients **divided by the world size**,
while a learnable temperature (not gathered) receives the full single-process gradient. `original_gradient_scaling=True`
reproduces that behaviour exactly (for resuming or comparing with original runs); with a learning rate tuned for it,
the effective encoder learning rate of an original run is `lr / W`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


__all__ = [
    "gather_with_grad",
    "gather_with_local_gradient",
    "distributed_rank_and_world_size",
    "video_text_contrastive_loss",
]


def distributed_rank_and_world_size(group: dist.ProcessGroup | None = None) -> tuple[int, int]:
    """`(rank, world_size)` of the default (or given) process group, `(0, 1)` when not running distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def _autograd_all_gather(tensor: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """The one place that picks torch's differentiable all-gather (the public one is deprecated since torch 2.13)."""
    from torch.distributed import _functional_collectives as funcol

    if hasattr(funcol, "all_gather_single_autograd"):  # torch >= 2.13
        gathered = funcol.all_gather_single_autograd(tensor, 0, group)
    elif hasattr(funcol, "all_gather_tensor_autograd"):  # torch 2.2 - 2.12
        gathered = funcol.all_gather_tensor_autograd(tensor, 0, group)
    else:  # pragma: no cover - very old torch
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor, group=group), dim=0)
    # functional collectives return an asynchronous tensor; materialise it before it meets ordinary ops
    return funcol.wait_tensor(gathered) if hasattr(funcol, "wait_tensor") else gathered


def _check_equal_sizes(tensor: torch.Tensor, group: dist.ProcessGroup, world_size: int) -> None:
    # All-gather needs the same leading size everywhere; a mismatch would otherwise hang or fail deep inside c10d.
    size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s.item()) for s in sizes]
    if len(set(sizes)) != 1:
        raise ValueError(
            f"Contrastive gathering needs the same local batch size on every process; got {sizes}. Drop the last "
            "incomplete batch (`dataloader_drop_last=True`)."
        )


def gather_with_grad(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """All-gather `tensor` along dim 0 from every process, keeping the gradient path to every process.

    The backward pass sums, over all processes, the gradient each process's loss sends to this process's slice
    (reduce-scatter). Outside distributed runs (or with one process) the tensor is returned unchanged.
    """
    _, world_size = distributed_rank_and_world_size(group)
    if world_size == 1:
        return tensor
    group = group if group is not None else dist.group.WORLD
    _check_equal_sizes(tensor, group, world_size)
    return _autograd_all_gather(tensor.contiguous(), group)


class _GatherWithLocalGradient(torch.autograd.Function):
    """All-gather whose backward keeps only this process's slice of the local gradient (the original's `AllGather`)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: dist.ProcessGroup, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank, ctx.local_size = rank, tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        start = ctx.rank * ctx.local_size
        return grad_output[start : start + ctx.local_size], None, None, None


def gather_with_local_gradient(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """All-gather along dim 0 as the original InternVideo2 does: gradients from other processes' losses are dropped.

    Only useful to reproduce the original gradient scaling (see the module docstring); prefer [`gather_with_grad`].
    """
    rank, world_size = distributed_rank_and_world_size(group)
    if world_size == 1:
        return tensor
    group = group if group is not None else dist.group.WORLD
    _check_equal_sizes(tensor, group, world_size)
    return _GatherWithLocalGradient.apply(tensor, group, rank, world_size)


def _gather_ids(ids: torch.Tensor, group: dist.ProcessGroup | None, world_size: int) -> torch.Tensor:
    """Plain all-gather for integer ids (no gradient involved)."""
    if world_size == 1:
        return ids
    parts = [torch.empty_like(ids) for _ in range(world_size)]
    dist.all_gather(parts, ids.contiguous(), group=group)
    return torch.cat(parts, dim=0)


def _soft_targets(row_ids: torch.Tensor, column_ids: torch.Tensor) -> torch.Tensor:
    """`Y[i, j] = 1[id_i == id_j] / #positives(i)`: every column sharing the row's sample id is a positive."""
    positives = (row_ids[:, None] == column_ids[None, :]).float()
    return positives / positives.sum(dim=1, keepdim=True)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows; `targets` are class indices or a row-stochastic matrix."""
    if targets.dtype == torch.long:
        return F.cross_entropy(logits, targets)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def video_text_contrastive_loss(
    video_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor | float | None = None,
    *,
    logit_scale: torch.Tensor | float | None = None,
    gather: bool = True,
    original_gradient_scaling: bool = False,
    sample_ids: torch.Tensor | None = None,
    normalize: bool = True,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    """Symmetric video–text InfoNCE, `(L_video->text + L_text->video) / 2`.

    Args:
        video_embeds, text_embeds (`torch.Tensor` of shape `(n_local, dim)`):
            Embeddings of the local pairs (row `i` of both is a positive pair).
        temperature (`float` or scalar tensor):
            Similarities are divided by it (InternVideo2 learns `temp`, clamped to [0.001, 0.5] in stage 2), or
        logit_scale (`float` or scalar tensor):
            similarities are multiplied by it (CLIP's `logit_scale.exp()`). Give exactly one of the two.
        gather (`bool`, defaults to `True`):
            Contrast against the embeddings of all processes (no effect when not running distributed).
        original_gradient_scaling (`bool`, defaults to `False`):
            Reproduce the original: every process computes the global loss and back-propagates only into its own
            embeddings, so that after DDP averaging the encoder gradients are `1 / world_size` of the exact ones.
        sample_ids (`torch.Tensor` of shape `(n_local,)`, *optional*):
            Id of the video each pair comes from. Pairs sharing an id (several captions of one video) are all
            positives, with the target mass split equally between them (as the original). Default: every pair
            is its own sample.
        normalize (`bool`, defaults to `True`): L2-normalise the embeddings first (cosine similarities).
        group: process group to gather over (default: the whole world).

    Returns:
        Scalar loss. Exact mode: the mean over this process's rows, so the average over processes equals the
        single-process loss on the concatenated batch. Original mode: the global loss itself, on every process.
    """
    if (temperature is None) == (logit_scale is None):
        raise ValueError("Pass exactly one of `temperature` (divides the similarities) or `logit_scale` (multiplies).")
    if video_embeds.ndim != 2 or text_embeds.ndim != 2 or video_embeds.shape != text_embeds.shape:
        raise ValueError(
            "video_embeds and text_embeds must both be (n_local, dim) with the same shape; got "
            f"{tuple(video_embeds.shape)} and {tuple(text_embeds.shape)}."
        )
    if sample_ids is not None and sample_ids.shape != (video_embeds.shape[0],):
        raise ValueError(f"sample_ids must have shape ({video_embeds.shape[0]},); got {tuple(sample_ids.shape)}.")
    scale = logit_scale if logit_scale is not None else 1.0 / temperature

    if normalize:
        video_embeds = F.normalize(video_embeds, dim=-1)
        text_embeds = F.normalize(text_embeds, dim=-1)
    rank, world_size = distributed_rank_and_world_size(group) if gather else (0, 1)
    n_local = video_embeds.shape[0]

    if original_gradient_scaling:
        all_videos = gather_with_local_gradient(video_embeds, group) if world_size > 1 else video_embeds
        all_texts = gather_with_local_gradient(text_embeds, group) if world_size > 1 else text_embeds
        all_ids = None if sample_ids is None else _gather_ids(sample_ids, group, world_size)
        logits = scale * all_videos @ all_texts.t()
        if all_ids is None:
            targets = torch.arange(logits.shape[0], device=logits.device)
        else:
            targets = _soft_targets(all_ids, all_ids)
        return (_cross_entropy(logits, targets) + _cross_entropy(logits.t(), targets)) / 2

    all_videos = gather_with_grad(video_embeds, group) if world_size > 1 else video_embeds
    all_texts = gather_with_grad(text_embeds, group) if world_size > 1 else text_embeds
    video_to_text = scale * video_embeds @ all_texts.t()  # (n_local, W n_local)
    text_to_video = scale * text_embeds @ all_videos.t()
    if sample_ids is None:
        targets = torch.arange(n_local, device=video_to_text.device) + rank * n_local
    else:
        targets = _soft_targets(sample_ids, _gather_ids(sample_ids, group, world_size))
    return (_cross_entropy(video_to_text, targets) + _cross_entropy(text_to_video, targets)) / 2

"""The original InternVideo2 classifier's pure-PyTorch path, rebuilt from `shared/reference/spec_single_modality.md`
as the baseline of `benchmark_original.py`.

The original code cannot be installed here (it imports flash-attn, apex and DeepSpeed at module level) and may not
be copied, so this file re-states its computation: the same modules under the same state-dict keys
(`blocks.{i}.attn.qkv.weight`, `blocks.{i}.ls1.gamma`, `clip_projector.cross_attn.q_bias`, ...), the same order of
operations and the same intermediate dtypes, with the flash-attn / fused flags off (the only path that runs without
CUDA extensions). It shares no code with the package on purpose: a speed-up of ours must not leak into the baseline.
`tests/test_original_path_reference.py` checks that it reproduces the fixture made by running the original
(`sm01_cls_joint_t1`: logits and every block's output) at 1e-5, so timing it times what the original computes.

What the original does that costs time, kept here deliberately:
* attention scores for all heads at once, `(B, H, N, N)`, scaled `q` first, softmax in the input dtype;
* q/k RMSNorm over the full width applied through `transpose -> flatten -> norm -> view -> transpose` copies;
* RMSNorm in float32 and LayerScale in float32, each with its casts;
* exact-erf GELU (`nn.GELU()`), not in place.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class OriginalRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class OriginalLayerScale(nn.Module):
    """`force_fp32` (the default of every official model): the product is taken in float32 and cast back."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x):
        return (x.float() * self.gamma.float()).type_as(x)


class OriginalSelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qk_normalization: bool):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.qk_normalization = qk_normalization
        if qk_normalization:
            self.q_norm = OriginalRMSNorm(dim)
            self.k_norm = OriginalRMSNorm(dim)

    def _normalise_heads(self, norm, t):
        batch, heads, tokens, head_dim = t.shape  # the norm spans all heads: merge them, normalise, split again
        return norm(t.transpose(1, 2).flatten(-2, -1)).view(batch, tokens, heads, head_dim).transpose(1, 2)

    def forward(self, x):
        batch, tokens, width = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, width // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.qk_normalization:
            q, k = self._normalise_heads(self.q_norm, q), self._normalise_heads(self.k_norm, k)
        scores = (q * self.scale) @ k.transpose(-2, -1)
        x = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, tokens, width)
        return self.proj(x)


class OriginalMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class OriginalBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, hidden: int, init_values: float, qk_normalization: bool):
        super().__init__()
        self.norm1 = OriginalRMSNorm(dim)
        self.attn = OriginalSelfAttention(dim, num_heads, qk_normalization)
        self.ls1 = OriginalLayerScale(dim, init_values)
        self.norm2 = OriginalRMSNorm(dim)
        self.mlp = OriginalMlp(dim, hidden)
        self.ls2 = OriginalLayerScale(dim, init_values)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class OriginalCrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, out_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.q_bias, self.k_bias, self.v_bias = (nn.Parameter(torch.zeros(dim)) for _ in range(3))
        self.proj = nn.Linear(dim, out_dim)

    def _heads(self, x, linear, bias):
        batch, tokens, _ = x.shape
        return F.linear(x, linear.weight, bias).reshape(batch, tokens, self.num_heads, -1).transpose(1, 2)

    def forward(self, x, k, v):
        batch, queries, _ = x.shape
        q = self._heads(x, self.q, self.q_bias) * self.scale
        k, v = self._heads(k, self.k, self.k_bias), self._heads(v, self.v, self.v_bias)
        x = ((q @ k.transpose(-2, -1)).softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, queries, -1)
        return self.proj(x)


class OriginalAttentionPoolingBlock(nn.Module):
    """Query = mean of all tokens (cls included); three LayerNorms (eps 1e-5); one cross-attention; no residual."""

    def __init__(self, dim: int, num_heads: int, out_dim: int):
        super().__init__()
        self.norm1_q, self.norm1_k, self.norm1_v = (nn.LayerNorm(dim, eps=1e-5) for _ in range(3))
        self.cross_attn = OriginalCrossAttention(dim, num_heads, out_dim)

    def forward(self, x):
        query = self.norm1_q(x.mean(1, keepdim=True))
        return self.cross_attn(query, self.norm1_k(x), self.norm1_v(x)).squeeze(1)


class OriginalPatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, patch_size: int, tubelet_size: int):
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=kernel, stride=kernel)

    def forward(self, x):
        return self.proj(x).flatten(3).permute(0, 2, 3, 1)  # (B, t, h*w, C): time-major, then row, then column


class OriginalInternVideo2Classifier(nn.Module):
    """`InternVideo2` of `single_modality/models/internvideo2.py` with `use_flash_attn = use_fused_rmsnorm =
    use_fused_mlp = False`, joint position embedding, no masking. Input `(B, C, T, H, W)`; output logits."""

    def __init__(
        self,
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_hidden: int,
        num_frames: int,
        img_size: int = 224,
        patch_size: int = 14,
        tubelet_size: int = 1,
        in_chans: int = 3,
        init_values: float = 1e-5,
        qk_normalization: bool = True,
        attn_pool_num_heads: int = 16,
        clip_embed_dim: int = 768,
        num_classes: int = 400,
    ):
        super().__init__()
        grid = img_size // patch_size
        num_patches = (num_frames // tubelet_size) * grid * grid
        self.patch_embed = OriginalPatchEmbed(in_chans, embed_dim, patch_size, tubelet_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(
            OriginalBlock(embed_dim, num_heads, mlp_hidden, init_values, qk_normalization) for _ in range(depth)
        )
        self.clip_projector = OriginalAttentionPoolingBlock(embed_dim, attn_pool_num_heads, clip_embed_dim)
        self.fc_norm = nn.LayerNorm(clip_embed_dim)
        self.head = nn.Linear(clip_embed_dim, num_classes)

    @property
    def dtype(self):
        return self.patch_embed.proj.weight.dtype

    def forward(self, x):
        x = self.patch_embed(x.type(self.dtype))
        batch, frames, patches, width = x.shape
        x = x.view(batch, frames * patches, width)
        x = torch.cat((self.cls_token.expand(batch, -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.fc_norm(self.clip_projector(x)))


# The settings of the official models that this rebuild covers; anything else is refused rather than approximated.
_REQUIRED_SETTINGS = {
    "sep_pos_embed": False,
    "qkv_bias": False,
    "layerscale_no_force_fp32": False,
    "use_flash_attn": False,
    "use_fused_rmsnorm": False,
    "use_fused_mlp": False,
}
# constructor arguments of the original that only matter in training (drop rates, checkpointing, init scales)
_TRAINING_ONLY = ("drop_path_rate", "head_drop_path_rate", "fc_drop_rate", "use_checkpoint", "checkpoint_num",
                  "fused_mlp_heuristic", "init_scale")  # fmt: skip


def from_original_kwargs(kwargs: dict) -> OriginalInternVideo2Classifier:
    """Build from the original `InternVideo2(...)` constructor arguments (e.g. a fixture's `constructor_kwargs`)."""
    kwargs = dict(kwargs)
    given = {name: kwargs.pop(name, value) for name, value in _REQUIRED_SETTINGS.items()}
    unsupported = {name: value for name, value in given.items() if value != _REQUIRED_SETTINGS[name]}
    if not kwargs.get("init_values"):
        unsupported["init_values"] = kwargs.get("init_values")
    if unsupported:
        raise ValueError(f"The original-path rebuild covers the official settings {_REQUIRED_SETTINGS} with LayerScale "
                         f"(init_values > 0); got {unsupported}.")  # fmt: skip
    for name in _TRAINING_ONLY:
        kwargs.pop(name, None)
    embed_dim = kwargs.pop("embed_dim")
    return OriginalInternVideo2Classifier(
        embed_dim=embed_dim, mlp_hidden=int(embed_dim * kwargs.pop("mlp_ratio")), **kwargs
    )

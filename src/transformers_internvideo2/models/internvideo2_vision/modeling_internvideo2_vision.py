"""InternVideo2 vision encoder: backbone, video classifier and stage-1 (masked token alignment) student.

Architecture (arXiv 2403.15377, and the original `single_modality/models/internvideo2*.py`):

    video (B, T, C, H, W) -> Conv3d tubelet patches -> [cls] + patches + learned position embedding
        -> pre-norm blocks (RMSNorm, attention with q/k RMSNorm over the full width, LayerScale, MLP)
        -> last_hidden_state (NO final norm)
        -> attention pooler (one query = mean of all tokens) -> pooler_output (B, 768)

Token order is `[cls, t-major, then row, then column]`, as in the original, so masks and position tables carry over.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.configuration_utils import PreTrainedConfig
from transformers.utils import TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs, selected_hidden_states

from ...losses.alignment import alignment_loss
from ...losses.classification import video_classification_loss
from ..remote_code import RemoteCodeMixin
from ..strict_loading import (
    HUB_KWARGS,
    StrictLoadingError,
    StrictLoadingMixin,
    check_loading_info,
    read_renamed_weights,
)
from .configuration_internvideo2_vision import InternVideo2VisionConfig


logger = logging.get_logger(__name__)

# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class InternVideo2VisionModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_visible_patches, hidden_size)`):
        Residual stream after the last block, cls token first. Not normalised (the original has no final norm).
    pooler_output (`torch.FloatTensor` of shape `(batch_size, pooler_output_size)`):
        Output of the attention pooler, the clip-level feature the original aligns, probes and classifies.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        Embedding output (cls + patches + position embedding) followed by the output of every block.
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        Self-attention weights of every block, `(batch_size, num_heads, seq_len, seq_len)` (eager attention only).
    pooler_attentions (`torch.FloatTensor` of shape `(batch_size, pooler_num_attention_heads, 1, seq_len)`, *optional*):
        Attention of the pooler query over all tokens, returned with `output_pooler_attentions=True`. Teacher-guided
        masking uses its head mean over the patch tokens.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    pooler_attentions: torch.FloatTensor | None = None


@dataclass
class InternVideo2ForPreTrainingOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        Sum of the alignment losses, returned when teacher targets are given (the stage-1 trainer weights the
        components with its arguments instead).
    clip_loss, clip_final_loss, mae_loss (`torch.FloatTensor`, *optional*):
        The components: mean of `2 - 2 cos` between decoded student features and teacher targets.
    clip_aligned (`torch.FloatTensor` of shape `(num_clip_layers, batch_size, 1 + num_visible, clip_teacher_hidden_size)`):
        Decoded student layers (ascending block order) to compare with the CLIP teacher's layers.
    clip_final_aligned (`torch.FloatTensor` of shape `(batch_size, clip_teacher_final_size or pooler_output_size)`):
        Decoded pooled feature to compare with the teacher's final feature.
    mae_aligned (`torch.FloatTensor` of shape `(num_mae_layers, batch_size, num_visible, mae_teacher_hidden_size)`):
        Decoded student layers (patch tokens only) to compare with the MAE teacher's layers.
    last_hidden_state, pooler_output, hidden_states, attentions:
        As in [`InternVideo2VisionModelOutput`], over the visible tokens.
    """

    loss: torch.FloatTensor | None = None
    clip_loss: torch.FloatTensor | None = None
    clip_final_loss: torch.FloatTensor | None = None
    mae_loss: torch.FloatTensor | None = None
    clip_aligned: torch.FloatTensor | None = None
    clip_final_aligned: torch.FloatTensor | None = None
    mae_aligned: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ------------------------------------------------------------------------------------------------------------------
# Small building blocks
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2RMSNorm(nn.Module):
    """RMSNorm computed in float32 and cast back to the input dtype *before* the weight multiply (as the original)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        # `x * rsqrt(mean(x^2) + eps)` in float32; torch's own op gives the same bits as the three-op formula and
        # saves passes over the tokens (a 1B block's norm in bfloat16: 3.2 -> 1.3 ms on 2 CPU cores)
        hidden_states = nn.functional.rms_norm(hidden_states.to(torch.float32), hidden_states.shape[-1:], eps=self.eps)
        # Under autocast the weight stays float32 while the input is bfloat16: without the final cast the product
        # would promote q and k to float32 and the attention kernel would run in float32.
        return (self.weight * hidden_states.to(input_dtype)).to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}"


class InternVideo2LayerScale(nn.Module):
    """Per-channel residual scale. With `force_fp32` the product is formed in float32 (the original default)."""

    def __init__(self, hidden_size: int, init_value: float, force_fp32: bool):
        super().__init__()
        self.init_value = init_value
        self.force_fp32 = force_fp32
        self.lambda1 = nn.Parameter(torch.full((hidden_size,), float(init_value)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # With both operands in one 16-bit dtype the float32 round trip is skipped: the product of two bfloat16 (or
        # float16) values is exact in float32, so rounding it once gives the same bits as the direct multiply, which
        # PyTorch also rounds once (tested) - three kernels fewer per LayerScale with bfloat16 weights. Under autocast
        # (bfloat16 activations, float32 lambda) the float32 product is the original's and is kept; the float32
        # operand promotes the multiply to float32 - the bits of upcasting both - without a float32 copy of the
        # activations first.
        if self.force_fp32 and hidden_states.dtype != self.lambda1.dtype:
            return torch.mul(hidden_states, self.lambda1.float()).to(hidden_states.dtype)
        return hidden_states * self.lambda1


class InternVideo2DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample during training, rescaling the kept ones."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1.0 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        keep = hidden_states.new_empty(shape).bernoulli_(keep_prob)
        return hidden_states * keep / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    # Scale q (tokens x head_dim) rather than the (tokens x tokens) score matrix: one small multiply instead of a
    # full pass over the scores; it is also the order the original uses.
    attn_weights = torch.matmul(query * scaling, key.transpose(2, 3))
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    # Softmax in the scores' own dtype: the CPU and CUDA kernels accumulate low-precision inputs in float32
    # internally, so an explicit upcast only adds two full passes (to float32 and back).
    attn_weights = nn.functional.softmax(attn_weights, dim=-1)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def _attention_interface(config) -> Callable:
    return ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)


# Queries per block of `query_blocked_attention_forward`: the (heads x 64 x tokens) bf16 score block of an S/14 or
# B/14 clip (2,049 tokens) is 1.5-3 MiB; 32 measured no better and 128 slower on 8x224 clips (docs/benchmarks.md).
ATTENTION_QUERY_BLOCK = 64


def _query_blocked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float) -> torch.Tensor:
    """The computation of `query_blocked_attention_forward`: `(batch, tokens, heads, head_dim)`."""
    batch_size, num_heads, num_tokens, head_dim = query.shape
    # Both operands once in the layout the batched matmul takes; as views of the fused qkv output, each block's
    # matmul would copy them again (`value` alone: 27 ms of an S/14 pass).
    key_transposed = key.transpose(2, 3).contiguous()
    value = value.contiguous()
    output = query.new_empty(batch_size, num_tokens, num_heads, head_dim)
    for start in range(0, num_tokens, ATTENTION_QUERY_BLOCK):
        block = slice(start, start + ATTENTION_QUERY_BLOCK)
        scores = torch.matmul(query[:, :, block] * scaling, key_transposed)
        output[:, block] = torch.matmul(scores.softmax(dim=-1), value).transpose(1, 2)
    return output


def _register_query_blocked_attention() -> Callable:
    """`_query_blocked_attention` as a custom operator, so that a compiled graph calls it as one opaque kernel (the
    compiler still fuses the norms, LayerScale and GELU around it) instead of falling back to the fused sdpa kernel:
    an S/14 bf16 8x224 pass compiled went from 0.82x to 1.19x of the uncompiled one. The operator's name carries this
    module's import name: a `trust_remote_code` folder imports a copy of this file under another name, and a name can
    be registered only once per process (a reload finds its own registration)."""
    name = "query_blocked_attention_" + re.sub(r"\W", "_", __name__)
    registered = getattr(torch.ops.internvideo2, name, None)
    if registered is not None:
        return registered
    operator = torch.library.custom_op(f"internvideo2::{name}", mutates_args=())(_query_blocked_attention)

    @operator.register_fake
    def _(query, key, value, scaling):
        batch_size, num_heads, num_tokens, head_dim = query.shape
        return query.new_empty(batch_size, num_tokens, num_heads, head_dim)

    return operator


_query_blocked_attention_operator = _register_query_blocked_attention()


def query_blocked_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """Exact softmax attention, `ATTENTION_QUERY_BLOCK` queries at a time: two batched matmuls and a softmax per
    block, the output written in place. It is what the `sdpa` setting runs for bfloat16 inference on CPU (see
    `_uses_query_blocked_attention`): there torch's fused CPU kernel computes bfloat16 no faster than float32
    (about 150 GFLOP/s on 2 AVX512-BF16 cores, where a bfloat16 matmul reaches 400), while these matmuls run at
    180-230 GFLOP/s, and a block's scores stay in cache. Like the eager path, the probabilities are rounded to the
    input dtype before they multiply `value` (the original's order); no weights are returned. Inference only: the
    operator has no backward."""
    if attention_mask is not None or dropout:
        raise ValueError("query_blocked_attention_forward takes neither an attention mask nor dropout.")
    return _query_blocked_attention_operator(query, key, value, scaling), None


def _uses_query_blocked_attention(config, query: torch.Tensor, dropout: float) -> bool:
    """`sdpa` on CPU in bfloat16 without autograd (inference), compiled or not, runs
    `query_blocked_attention_forward` instead of the fused kernel: an S/14 8x224 clip took 0.81 s instead of 0.97 s
    on 2 cores. Training keeps the fused kernel (its backward does not keep the score matrix)."""
    return (
        config._attn_implementation == "sdpa"
        and query.device.type == "cpu"
        and query.dtype == torch.bfloat16
        and not dropout
        and not (torch.is_grad_enabled() and query.requires_grad)
    )


# ------------------------------------------------------------------------------------------------------------------
# Embeddings
# ------------------------------------------------------------------------------------------------------------------
def _sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """`[sin(p * w) | cos(p * w)]` with `w_k = 1 / 10000^(k / (embed_dim / 2))` (MAE convention)."""
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0))
    angles = positions.to(torch.float64).reshape(-1)[:, None] * omega[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _sincos_2d(embed_dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """2-D sincos table `(h*w, embed_dim)`: first half encodes the column, second half the row (MAE convention)."""
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    return torch.cat([_sincos_1d(embed_dim // 2, cols), _sincos_1d(embed_dim // 2, rows)], dim=1)


def sincos_position_table(embed_dim: int, grid_t: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """3-D sincos table `(t*h*w, embed_dim)` used to initialise the learned joint table: the first quarter of the
    channels encodes time, the rest a 2-D spatial sincos. Only an initialisation; checkpoints carry learned values."""
    temporal_dim = embed_dim // 4
    spatial = _sincos_2d(embed_dim - temporal_dim, grid_h, grid_w)  # (h*w, 3C/4)
    temporal = _sincos_1d(temporal_dim, torch.arange(grid_t))  # (t, C/4)
    table = torch.cat(
        [temporal[:, None].expand(-1, grid_h * grid_w, -1), spatial[None].expand(grid_t, -1, -1)], dim=-1
    )
    return table.reshape(grid_t * grid_h * grid_w, embed_dim).float()


def _resample_time(table: torch.Tensor, new_t: int) -> torch.Tensor:
    """Linear resampling along time of a `(t, S, C)` table, each spatial position and channel independently
    (align_corners=False, as the original load-time interpolation)."""
    if table.shape[0] == new_t:
        return table
    t, s, c = table.shape
    series = table.permute(1, 2, 0).reshape(s * c, 1, t)
    series = F.interpolate(series, size=new_t, mode="linear", align_corners=False)
    return series.reshape(s, c, new_t).permute(2, 0, 1)


def _resample_space(table: torch.Tensor, grid: int, new_h: int, new_w: int) -> torch.Tensor:
    """Bicubic resampling of a `(t, grid*grid, C)` table to `(t, new_h*new_w, C)` (align_corners=False)."""
    if (grid, grid) == (new_h, new_w):
        return table
    t, _, c = table.shape
    maps = table.reshape(t, grid, grid, c).permute(0, 3, 1, 2)
    maps = F.interpolate(maps, size=(new_h, new_w), mode="bicubic", align_corners=False)
    return maps.permute(0, 2, 3, 1).reshape(t, new_h * new_w, c)


class InternVideo2PositionEmbeddings(nn.Module):
    """Learned position table(s) of the vision encoder, resampled at forward time for other grids.

    `joint` holds one row per token (`[cls] + t*h*w`); `"separable"` configs hold `spatial` (h*w rows), `temporal`
    (t rows) and `cls` tables. Stage-2 encoders may hold an `image` table (`1 + h*w` rows) used for single images.
    The same module serves the encoder input and the stage-1 alignment targets (`with_cls=False` for the MAE branch).
    """

    def __init__(self, config: InternVideo2VisionConfig, with_cls: bool = True, with_image_table: bool = False):
        super().__init__()
        self.config = config
        self.with_cls = with_cls
        self.grid_t = config.temporal_patches
        self.grid = config.spatial_patches
        hidden = config.hidden_size
        cls_rows = 1 if with_cls else 0
        if config.position_embedding_type == "joint":
            self.joint = nn.Parameter(torch.zeros(1, cls_rows + self.grid_t * self.grid**2, hidden))
        else:
            self.spatial = nn.Parameter(torch.zeros(1, self.grid**2, hidden))
            self.temporal = nn.Parameter(torch.zeros(1, self.grid_t, hidden))
            if with_cls:
                self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.image_type = config.image_position_embedding_type if with_image_table else None
        if with_image_table and config.image_position_embedding_type == "separate":
            self.image = nn.Parameter(torch.zeros(1, cls_rows + self.grid**2, hidden))

    def _check_grid(self, grid_t: int, grid_h: int, grid_w: int, interpolate: bool, stored: tuple[int, int, int]):
        if (grid_t, grid_h, grid_w) != stored and not interpolate:
            raise ValueError(
                f"The input gives a {grid_t}x{grid_h}x{grid_w} (time x height x width) patch grid but the position "
                f"embeddings were learned for {stored[0]}x{stored[1]}x{stored[2]} (num_frames="
                f"{self.config.num_frames}, image_size={self.config.image_size}). Pass `interpolate_pos_encoding=True` "
                "to resample them."
            )

    def _split(self, table: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.with_cls:
            return table[:, :1], table[:, 1:]
        return None, table

    def _join(self, cls_row: torch.Tensor | None, patches: torch.Tensor) -> torch.Tensor:
        patches = patches.reshape(1, -1, patches.shape[-1])
        return patches if cls_row is None else torch.cat([cls_row, patches], dim=1)

    def forward(self, grid_t: int, grid_h: int, grid_w: int, interpolate: bool = False) -> torch.Tensor:
        """Return the `(1, [1 +] grid_t*grid_h*grid_w, hidden_size)` table for an input patch grid."""
        use_image_path = self.image_type is not None and grid_t == 1 and self.grid_t != 1
        if use_image_path:
            self._check_grid(1, grid_h, grid_w, interpolate, (1, self.grid, self.grid))
            if self.image_type == "separate" and hasattr(self, "image"):
                cls_row, patches = self._split(self.image)
                patches = patches.reshape(1, self.grid**2, -1)
            else:  # "temporal_mean": the image table is the time-average of the video table
                cls_row, patches = self._split(self.joint)
                patches = patches.reshape(self.grid_t, self.grid**2, -1).mean(0, keepdim=True)
        elif self.config.position_embedding_type == "joint":
            self._check_grid(grid_t, grid_h, grid_w, interpolate, (self.grid_t, self.grid, self.grid))
            cls_row, patches = self._split(self.joint)
            patches = patches.reshape(self.grid_t, self.grid**2, -1)
            patches = _resample_time(patches, grid_t)
        else:
            self._check_grid(grid_t, grid_h, grid_w, interpolate, (self.grid_t, self.grid, self.grid))
            temporal = _resample_time(self.temporal.reshape(self.grid_t, 1, -1), grid_t)  # (t, 1, C)
            spatial = _resample_space(self.spatial.reshape(1, self.grid**2, -1), self.grid, grid_h, grid_w)
            cls_row = self.cls if self.with_cls else None
            return self._join(cls_row, spatial + temporal)
        if (grid_h, grid_w) != (self.grid, self.grid):
            # interpolate in float32: bicubic kernels are not implemented for every low-precision dtype on CPU
            patches = _resample_space(patches.float(), self.grid, grid_h, grid_w).to(patches.dtype)
        return self._join(cls_row, patches)


def _drop_masked_tokens(embeddings: torch.Tensor, bool_masked_pos: torch.Tensor) -> torch.Tensor:
    """Keep the visible tokens (`bool_masked_pos == False`), in their original order."""
    batch_size, _, hidden = embeddings.shape
    visible = ~bool_masked_pos
    counts = visible.sum(dim=1)
    if not bool(torch.all(counts == counts[0])):
        raise ValueError(
            f"Every sample must keep the same number of visible tokens; got {counts.tolist()} visible per sample."
        )
    return embeddings[visible].reshape(batch_size, -1, hidden)


def _full_token_mask(bool_masked_pos: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Validate a patch mask `(B, N)` or a token mask `(B, 1 + N)` (original layout, column 0 = cls) and return the
    `(B, 1 + N)` token mask, cls always visible."""
    bool_masked_pos = bool_masked_pos.to(torch.bool)
    if bool_masked_pos.ndim != 2 or bool_masked_pos.shape[1] not in (num_patches, num_patches + 1):
        raise ValueError(
            f"bool_masked_pos must have shape (batch, {num_patches}) over the patch tokens or (batch, "
            f"{num_patches + 1}) including the cls column; got {tuple(bool_masked_pos.shape)}."
        )
    if bool_masked_pos.shape[1] == num_patches + 1:
        if bool(bool_masked_pos[:, 0].any()):
            raise ValueError("The cls token (column 0 of bool_masked_pos) cannot be masked.")
        return bool_masked_pos
    return torch.cat([bool_masked_pos.new_zeros(bool_masked_pos.shape[0], 1), bool_masked_pos], dim=1)


class InternVideo2PatchEmbeddings(nn.Module):
    """Conv3d tubelet embedding: `(B, C, T, H, W)` -> `(B, t*h*w, hidden)` in t-major, row, column order."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.num_channels = config.num_channels
        self.patch_size = config.patch_size
        self.tubelet_size = config.tubelet_size
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.projection = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=kernel, stride=kernel)

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        _, channels, frames, height, width = pixel_values.shape
        if channels != self.num_channels:
            raise ValueError(f"Expected {self.num_channels} channels, got {channels}.")
        if frames % self.tubelet_size or height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"Frames ({frames}) must be a multiple of tubelet_size ({self.tubelet_size}) and height/width "
                f"({height}x{width}) multiples of patch_size ({self.patch_size})."
            )
        patches = self.projection(pixel_values.to(self.projection.weight.dtype))  # (B, C, t, h, w)
        grid = tuple(patches.shape[2:])
        return patches.flatten(2).transpose(1, 2), grid


class InternVideo2VisionEmbeddings(nn.Module):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        self.patch_embeddings = InternVideo2PatchEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = InternVideo2PositionEmbeddings(config, with_cls=True, with_image_table=True)

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> tuple[torch.Tensor, tuple[int, int, int], torch.Tensor | None]:
        """Embed `(B, T, C, H, W)` videos; return the visible tokens, the patch grid and the `(B, 1+N)` token mask."""
        if pixel_values.ndim != 5:
            raise ValueError(
                "pixel_values must be a batch of videos shaped (batch, frames, channels, height, width); got shape "
                f"{tuple(pixel_values.shape)}. For a single image use frames=1."
            )
        patches, grid = self.patch_embeddings(pixel_values.transpose(1, 2))
        cls = self.cls_token.expand(patches.shape[0], -1, -1).to(patches.dtype)
        embeddings = torch.cat([cls, patches], dim=1)
        embeddings = embeddings + self.position_embeddings(*grid, interpolate=interpolate_pos_encoding).to(
            embeddings.dtype
        )
        token_mask = None
        if bool_masked_pos is not None:
            token_mask = _full_token_mask(bool_masked_pos.to(embeddings.device), patches.shape[1])
            embeddings = _drop_masked_tokens(embeddings, token_mask)
        return embeddings, grid, token_mask


# ------------------------------------------------------------------------------------------------------------------
# Transformer blocks
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2VisionSelfAttention(nn.Module):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        # q/k normalisation spans all heads jointly (weight of size hidden_size), applied before splitting heads.
        self.q_norm = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps) if config.use_qk_norm else None
        self.k_norm = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps) if config.use_qk_norm else None
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape
        query, key, value = self.qkv(hidden_states).chunk(3, dim=-1)
        if self.q_norm is not None:
            query, key = self.q_norm(query), self.k_norm(key)
        heads = (batch_size, seq_len, self.num_heads, self.head_dim)
        query, key, value = (t.view(heads).transpose(1, 2) for t in (query, key, value))
        dropout = self.config.attention_dropout if self.training else 0.0
        attention = (
            query_blocked_attention_forward
            if _uses_query_blocked_attention(self.config, query, dropout)
            else _attention_interface(self.config)
        )
        attn_output, attn_weights = attention(
            self, query, key, value, None, scaling=self.scaling, dropout=dropout, is_causal=False, **kwargs
        )
        attn_output = attn_output.reshape(batch_size, seq_len, -1)
        return self.proj(attn_output), attn_weights


# `hidden_act` values whose activation is `torch.nn.functional.gelu`, with its `approximate` argument
_GELU_APPROXIMATION = {"gelu": "none", "gelu_pytorch_tanh": "tanh"}


class InternVideo2VisionMLP(nn.Module):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.gelu_approximation = _GELU_APPROXIMATION.get(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.fc1(hidden_states)
        if self.gelu_approximation is not None and not (torch.is_grad_enabled() and hidden_states.requires_grad):
            # Without autograd nothing else reads fc1's output, so the GELU overwrites it: the same values without a
            # second (tokens x intermediate_size) tensor to allocate and fault in (S/14 bf16 pass: 3-6 % faster).
            return self.fc2(torch.ops.aten.gelu_(hidden_states, approximate=self.gelu_approximation))
        return self.fc2(self.act(hidden_states))


class InternVideo2VisionLayer(GradientCheckpointingLayer):
    """Pre-norm block: `x + LS(attn(RMSNorm(x)))`, then `x + LS(mlp(RMSNorm(x)))`, with stochastic depth."""

    def __init__(self, config: InternVideo2VisionConfig, drop_path_rate: float = 0.0):
        super().__init__()
        hidden = config.hidden_size
        self.norm1 = InternVideo2RMSNorm(hidden, config.rms_norm_eps)
        self.attention = InternVideo2VisionSelfAttention(config)
        self.norm2 = InternVideo2RMSNorm(hidden, config.rms_norm_eps)
        self.mlp = InternVideo2VisionMLP(config)
        if config.layer_scale_init_value:
            self.layer_scale1 = InternVideo2LayerScale(
                hidden, config.layer_scale_init_value, config.layer_scale_force_fp32
            )
            self.layer_scale2 = InternVideo2LayerScale(
                hidden, config.layer_scale_init_value, config.layer_scale_force_fp32
            )
        else:
            self.layer_scale1 = self.layer_scale2 = nn.Identity()
        self.drop_path = InternVideo2DropPath(drop_path_rate)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        attn_output, _ = self.attention(self.norm1(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(self.layer_scale1(attn_output))
        mlp_output = self.mlp(self.norm2(hidden_states))
        return hidden_states + self.drop_path(self.layer_scale2(mlp_output))


class InternVideo2VisionEncoder(nn.Module):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        # on CPU explicitly: the rates are Python floats, and models may be built under `torch.device("meta")`
        rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers, device="cpu").tolist()
        self.layer = nn.ModuleList(InternVideo2VisionLayer(config, rate) for rate in rates)
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutput:
        for layer in self.layer:
            hidden_states = layer(hidden_states, **kwargs)
        return BaseModelOutput(last_hidden_state=hidden_states)


class InternVideo2AttentionPooler(nn.Module):
    """Attentive pooling (the original `clip_projector`): one query, the mean of all tokens (cls included), attends
    over all tokens. Separate LayerNorms for the query, key and value inputs; no residual and no MLP."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.num_heads = config.pooler_num_attention_heads
        self.head_dim = hidden // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.query_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.key_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.value_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, config.pooler_output_size)

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape
        query = self.q_proj(self.query_norm(hidden_states.mean(dim=1, keepdim=True)))
        key = self.k_proj(self.key_norm(hidden_states))
        value = self.v_proj(self.value_norm(hidden_states))
        query = query.view(batch_size, 1, self.num_heads, self.head_dim).transpose(1, 2)
        key = key.view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        # The attention map is needed for teacher-guided masking: compute it explicitly when asked for.
        attention = eager_attention_forward if output_attentions else _attention_interface(self.config)
        pooled, weights = attention(self, query, key, value, None, scaling=self.scaling, dropout=0.0, is_causal=False)
        pooled = self.out_proj(pooled.reshape(batch_size, -1))
        return pooled, (weights if output_attentions else None)


# ------------------------------------------------------------------------------------------------------------------
# Pre-trained model base
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2VisionPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2VisionConfig
    base_model_prefix = "internvideo2"
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_vision.configuration_internvideo2_vision.InternVideo2VisionConfig",
        "AutoModel": "internvideo2_vision.modeling_internvideo2_vision.InternVideo2VisionModel",
        "AutoModelForVideoClassification": "internvideo2_vision.modeling_internvideo2_vision.InternVideo2ForVideoClassification",
        "AutoModelForPreTraining": "internvideo2_vision.modeling_internvideo2_vision.InternVideo2ForPreTraining",
    }
    main_input_name = "pixel_values"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    # Blocks stay whole on one device; so do the embeddings, whose cls token is a bare parameter next to submodules.
    _no_split_modules = ["InternVideo2VisionEmbeddings", "InternVideo2VisionLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": OutputRecorder(InternVideo2VisionLayer, layer_name="encoder.layer"),
        "attentions": OutputRecorder(InternVideo2VisionSelfAttention, index=1, layer_name="encoder.layer"),
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv3d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, InternVideo2RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, InternVideo2LayerScale):
            init.constant_(module.lambda1, module.init_value)
        elif isinstance(module, InternVideo2VisionEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
        elif isinstance(module, InternVideo2PositionEmbeddings):
            self._init_position_embeddings(module)


    @staticmethod
    def _init_position_embeddings(module: InternVideo2PositionEmbeddings):
        # Fixed 3-D sincos values as the starting point of the learned tables (cls rows zero), as the original.
        hidden, t, g = module.config.hidden_size, module.grid_t, module.grid
        cls_rows = 1 if module.with_cls else 0
        if hasattr(module, "joint"):
            table = sincos_position_table(hidden, t, g, g)
            init.copy_(module.joint, torch.cat([torch.zeros(cls_rows, hidden), table])[None])
        else:
            init.copy_(module.spatial, _sincos_2d(hidden, g, g).float()[None])
            init.copy_(module.temporal, _sincos_1d(hidden, torch.arange(t)).float()[None])
            if module.with_cls:
                init.zeros_(module.cls)
        if hasattr(module, "image"):
            table = sincos_position_table(hidden, 1, g, g)
            init.copy_(module.image, torch.cat([torch.zeros(cls_rows, hidden), table])[None])


# ------------------------------------------------------------------------------------------------------------------
# Backbone
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2VisionModel(InternVideo2VisionPreTrainedModel):
    """The InternVideo2 video encoder: returns the token sequence and the attention-pooled clip feature."""

    # Loading a classifier or stage-1 student folder as the backbone drops their heads on purpose; any other extra
    # weight is still refused by strict loading.
    _keys_to_ignore_on_load_unexpected = [
        r"^(extra_mlp|fc_norm|classifier|clip_position_embeddings|clip_decoders|clip_final_decoder"
        r"|mae_position_embeddings|mae_decoders)\."
    ]

    def __init__(self, config: InternVideo2VisionConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = InternVideo2VisionEmbeddings(config)
        self.encoder = InternVideo2VisionEncoder(config)
        self.pooler = InternVideo2AttentionPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv3d:
        # The tubelet projection: a module whose output is the embedded tensor, so `enable_input_require_grads` (PEFT,
        # gradient checkpointing with a frozen backbone) can hook it; the patch-embedding wrapper returns a tuple.
        return self.embeddings.patch_embeddings.projection

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        output_pooler_attentions: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2VisionModelOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised video frames (see [`InternVideo2VideoProcessor`]). A single image is `num_frames=1`.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)` or `(batch_size, 1 + num_patches)`, *optional*):
            `True` marks patch tokens to drop before the encoder (masked training). Every sample must keep the same
            number of tokens; the cls token is always kept (in the `1 + num_patches` layout its column must be False).
        interpolate_pos_encoding (`bool`, *optional*):
            The package-wide policy: `None` (default) resamples the learned position embeddings (linear in time,
            bicubic in space, cls row untouched, the math the original applies at load time) whenever the number of
            frames or the resolution differs from the configuration, and is a no-op when they match; `False` raises
            instead; `True` always resamples.
        output_pooler_attentions (`bool`, *optional*, defaults to `False`):
            Also return the attention pooler's attention weights.
        """
        if interpolate_pos_encoding is None:
            interpolate_pos_encoding = True  # resampling to the stored grid returns the table itself
        embeddings, _, _ = self.embeddings(pixel_values, bool_masked_pos, interpolate_pos_encoding)
        sequence_output = self.encoder(embeddings, **kwargs).last_hidden_state
        pooled_output, pooler_attentions = None, None
        if self.pooler is not None:
            pooled_output, pooler_attentions = self.pooler(sequence_output, output_attentions=output_pooler_attentions)
        return InternVideo2VisionModelOutput(
            last_hidden_state=sequence_output, pooler_output=pooled_output, pooler_attentions=pooler_attentions
        )


# ------------------------------------------------------------------------------------------------------------------
# Video classification
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2ExtraMLP(nn.Module):
    """Residual LayerNorm -> MLP (exact GELU) after the pooler, used by the original attentive-probing models."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        width = config.pooler_output_size
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(width, 4 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled + self.fc2(self.act(self.fc1(self.norm(pooled))))


class InternVideo2ForVideoClassification(InternVideo2VisionPreTrainedModel):
    """Backbone + attention pooler + LayerNorm + linear classifier (`logits = classifier(fc_norm(pooler_output))`)."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.internvideo2 = InternVideo2VisionModel(config)
        self.extra_mlp = InternVideo2ExtraMLP(config) if config.use_extra_mlp else None
        self.fc_norm = nn.LayerNorm(config.pooler_output_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.pooler_output_size, config.num_labels)
        self.post_init()

    # Config fields a new classification head is built from (the rest of the config is the backbone's).
    _HEAD_CONFIG_KWARGS = ("num_labels", "id2label", "label2id", "problem_type", "classifier_dropout", "use_extra_mlp")

    def _classification_head_keys(self) -> set[str]:
        return {key for key in self.state_dict() if not key.startswith(f"{self.base_model_prefix}.")}

    @classmethod
    def _intended_new_weights(cls, model, loading_info, pretrained_model_name_or_path, kwargs) -> set[str]:
        """A folder without any classification head (a backbone, a stage-1 student) gets a new head when the call
        names labels that differ from the folder's (`num_labels=` / `id2label=`, directly or through `config=`)."""
        head = model._classification_head_keys()
        if not head <= set(loading_info["missing_keys"]):
            return set()  # the folder has a head (or part of one): every missing weight is an error
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        saved, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        saved_labels = {int(index): label for index, label in (saved.get("id2label") or {}).items()}
        if not saved_labels and "num_labels" in saved:
            saved_labels = {index: f"LABEL_{index}" for index in range(saved["num_labels"])}
        named = any(kwargs.get(key) is not None for key in ("num_labels", "id2label"))
        if not named and dict(model.config.id2label) == saved_labels:
            return set()
        logger.info(f"New classification head for {model.config.num_labels} labels: {sorted(head)} initialised.")
        return head

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, strict (see `models/strict_loading.py`), which also takes a stage-2
        video-text folder: its vision tower becomes the backbone and a new head is built for the labels the call
        names (`num_labels=` or `id2label=`, required); the text tower, the projections and the distillation heads
        are left out."""
        if pretrained_model_name_or_path is not None and kwargs.get("config") is None:
            hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
            saved, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
            if "vision_config" in saved and saved.get("model_type") != cls.config_class.model_type:
                return cls._from_video_text_folder(pretrained_model_name_or_path, saved, model_args, kwargs, hub_kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def _from_video_text_folder(cls, folder, saved_config: dict, model_args, kwargs: dict, hub_kwargs: dict):
        if all(kwargs.get(key) is None for key in ("num_labels", "id2label")):
            raise ValueError(
                f"{folder} holds a {saved_config.get('model_type')!r} video-text model: its vision tower gets a new "
                "classification head, which needs the labels; pass num_labels=N or id2label={index: name}."
            )
        allow_missing = kwargs.pop("allow_missing_weights", False)
        allow_unexpected = kwargs.pop("allow_unexpected_weights", False)
        head_kwargs = {key: kwargs.pop(key) for key in cls._HEAD_CONFIG_KWARGS if key in kwargs}
        config = cls.config_class.from_dict(saved_config["vision_config"], **head_kwargs)
        # The stage-2 vision tower is `[internvideo2.]vision_model.` (a retrieval or a dual-encoder folder), with one
        # more `internvideo2.` level when the stage-1 distillation heads were kept next to it.
        tower = "vision_model.internvideo2." if saved_config.get("keep_vision_distillation_heads") else "vision_model."

        def to_backbone(key: str) -> str | None:
            rest = key.removeprefix("internvideo2.")
            return f"{cls.base_model_prefix}.{rest[len(tower):]}" if rest.startswith(tower) else None

        state_dict, left_out = read_renamed_weights(folder, to_backbone, hub_kwargs)
        if not state_dict:
            raise StrictLoadingError(f"{folder} holds no vision tower weights (no key starts with {tower!r}).")
        model, loading_info = super().from_pretrained(
            None, *model_args, config=config, state_dict=state_dict, output_loading_info=True, **kwargs
        )
        head = model._classification_head_keys()
        check_loading_info(
            {**loading_info, "missing_keys": set(loading_info["missing_keys"]) - head},
            source=str(folder),
            model_class=cls.__name__,
            allow_missing_weights=allow_missing,
            allow_unexpected_weights=allow_unexpected,
        )
        logger.info(
            f"Loaded the vision tower of {folder} ({len(state_dict)} weights); new classification head for "
            f"{config.num_labels} labels; {len(left_out)} weights of the text tower, projections and distillation "
            "heads left out."
        )
        return model

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        if isinstance(module, InternVideo2ExtraMLP):
            # the probe starts as the identity
            init.zeros_(module.fc2.weight)
            init.zeros_(module.fc2.bias)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)` or `torch.FloatTensor` of shape `(batch_size, num_labels)`, *optional*):
            Class indices for the cross-entropy loss (-100 = ignored; a batch with every label ignored gives 0), or,
            for single-label classification (`config.problem_type` unset or `"single_label_classification"`), a
            target distribution per video (label smoothing, mixup, cutmix) for the soft-target cross-entropy. With
            `config.problem_type` `"regression"` / `"multi_label_classification"` the Transformers losses apply.
            `num_items_in_batch` from the Trainer is honoured so that gradient accumulation is exact.
        interpolate_pos_encoding (`bool`, *optional*):
            See [`InternVideo2VisionModel.forward`]: `None` (default) resamples the position embeddings whenever the
            clip's frame count or resolution differs from the configuration, `False` raises instead.
        """
        outputs = self.internvideo2(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        pooled = outputs.pooler_output
        if self.extra_mlp is not None:
            pooled = self.extra_mlp(pooled)
        logits = self.classifier(self.dropout(self.fc_norm(pooled)))
        loss = None
        if labels is not None:
            if self.config.problem_type in (None, "single_label_classification") and self.config.num_labels > 1:
                loss = video_classification_loss(logits, labels, kwargs.get("num_items_in_batch"))
            else:
                loss = self.loss_function(labels, logits, self.config, **kwargs)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# ------------------------------------------------------------------------------------------------------------------
# Stage-1 student: masked video token alignment to a CLIP teacher and a VideoMAE teacher
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2AlignmentDecoder(nn.Module):
    """Maps student features to a teacher's width: `Linear` (`"linear"`) or `Linear-GELU-Linear` (`"mlp"`), then
    LayerNorm and (with `normalize`) L2 normalisation."""

    def __init__(self, in_size: int, out_size: int, decoder_type: str, normalize: bool, eps: float):
        super().__init__()
        if decoder_type == "mlp":
            self.fc1 = nn.Linear(in_size, in_size)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(in_size, out_size)
        else:
            self.fc2 = nn.Linear(in_size, out_size)
        self.norm = nn.LayerNorm(out_size, eps=eps)
        self.normalize = normalize

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fc1"):
            hidden_states = self.act(self.fc1(hidden_states))
        hidden_states = self.norm(self.fc2(hidden_states))
        if self.normalize:
            hidden_states = hidden_states / hidden_states.norm(dim=-1, keepdim=True)
        return hidden_states


class InternVideo2ForPreTraining(InternVideo2VisionPreTrainedModel):
    """Stage-1 student (and the S/B/L distillation student): the backbone on the visible tokens, with decoders that
    align chosen intermediate layers and the pooled feature to a CLIP teacher and, optionally, chosen layers to a
    VideoMAE teacher. The same class holds the alignment heads that stage-2 vision checkpoints still carry."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        if not config.clip_teacher_hidden_size:
            raise ValueError("InternVideo2ForPreTraining needs config.clip_teacher_hidden_size > 0.")
        self.internvideo2 = InternVideo2VisionModel(config)
        eps = config.layer_norm_eps
        clip_norm = config.clip_norm_type == "l2"
        self.clip_position_embeddings = InternVideo2PositionEmbeddings(config, with_cls=True, with_image_table=True)
        self.clip_decoders = nn.ModuleList(
            InternVideo2AlignmentDecoder(
                config.hidden_size, config.clip_teacher_hidden_size, config.clip_decoder_type, clip_norm, eps
            )
            for _ in config.clip_student_return_indices
        )
        self.clip_final_decoder = None
        if config.clip_teacher_final_size:
            self.clip_final_decoder = InternVideo2AlignmentDecoder(
                config.pooler_output_size, config.clip_teacher_final_size, config.clip_decoder_type, clip_norm, eps
            )
        self.mae_position_embeddings = None
        self.mae_decoders = None
        if config.mae_teacher_hidden_size:
            self.mae_position_embeddings = InternVideo2PositionEmbeddings(config, with_cls=False)
            self.mae_decoders = nn.ModuleList(
                InternVideo2AlignmentDecoder(
                    config.hidden_size, config.mae_teacher_hidden_size, "mlp", config.mae_norm_type == "l2", eps
                )
                for _ in config.mae_student_return_indices
            )
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        if isinstance(module, InternVideo2AlignmentDecoder):
            for linear in (getattr(module, "fc1", None), module.fc2):
                if linear is not None:
                    init.xavier_uniform_(linear.weight)
                    init.zeros_(linear.bias)

    @staticmethod
    def _visible(table: torch.Tensor, token_mask: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        table = table.expand(batch_size, -1, -1)
        return table if token_mask is None else _drop_masked_tokens(table, token_mask)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        clip_teacher_hidden_states: torch.Tensor | None = None,
        clip_teacher_pooled: torch.Tensor | None = None,
        mae_teacher_hidden_states: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ForPreTrainingOutput:
        r"""
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)` or `(batch_size, 1 + num_patches)`):
            `True` = masked (dropped) patch tokens; see [`InternVideo2VisionModel.forward`].
        clip_teacher_hidden_states (`torch.FloatTensor` of shape `(num_clip_layers, batch_size, tokens, clip_teacher_hidden_size)`, *optional*):
            The CLIP teacher's layers in ascending order, for all `1 + num_patches` tokens or only the visible ones.
        clip_teacher_pooled (`torch.FloatTensor` of shape `(batch_size, clip_teacher_final_size)`, *optional*):
            The CLIP teacher's final pooled feature.
        mae_teacher_hidden_states (`torch.FloatTensor` of shape `(num_mae_layers, batch_size, patches, mae_teacher_hidden_size)`, *optional*):
            The MAE teacher's layers in ascending order, for all `num_patches` patch tokens or only the visible ones.
        """
        config = self.config
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        clip_layers, mae_layers = config.clip_student_return_indices, config.mae_student_return_indices
        # The aligned layers are always captured; what the caller asked for (a flag, or indices into the
        # `num_hidden_layers + 1` hidden states, negative ones counted from the end) decides which are returned.
        requested = kwargs.pop("output_hidden_states", None)
        requested = config.output_hidden_states if requested is None else requested
        num_hidden_states = config.num_hidden_layers + 1
        requested_indices = selected_hidden_states(requested)
        if requested_indices is None:
            returned = set(range(num_hidden_states)) if requested else set()
        else:
            returned = {index % num_hidden_states for index in requested_indices}
        captured = {i + 1 for i in clip_layers + mae_layers} | returned
        outputs = self.internvideo2(
            pixel_values,
            bool_masked_pos=bool_masked_pos,
            interpolate_pos_encoding=interpolate_pos_encoding,
            output_hidden_states=True if len(captured) == num_hidden_states else sorted(captured),
            **kwargs,
        )
        batch_size = pixel_values.shape[0]
        frames, height, width = pixel_values.shape[1], pixel_values.shape[3], pixel_values.shape[4]
        grid_t, grid_h, grid_w = frames // config.tubelet_size, height // config.patch_size, width // config.patch_size
        token_mask = None
        if bool_masked_pos is not None:
            token_mask = _full_token_mask(bool_masked_pos.to(pixel_values.device), grid_t * grid_h * grid_w)

        hidden_states = outputs.hidden_states
        interpolate = interpolate_pos_encoding is not False  # the package policy: None resamples when needed
        clip_table = self.clip_position_embeddings(grid_t, grid_h, grid_w, interpolate=interpolate)
        clip_positions = self._visible(clip_table.to(pixel_values.dtype), token_mask, batch_size)
        clip_aligned = torch.stack(
            [
                decoder(hidden_states[index + 1] + clip_positions.to(hidden_states[index + 1].dtype))
                for decoder, index in zip(self.clip_decoders, clip_layers)
            ]
        )
        clip_final_aligned = outputs.pooler_output
        if self.clip_final_decoder is not None:
            clip_final_aligned = self.clip_final_decoder(clip_final_aligned)

        mae_aligned = None
        if self.mae_decoders is not None:
            mae_table = self.mae_position_embeddings(grid_t, grid_h, grid_w, interpolate=interpolate)
            patch_mask = None if token_mask is None else token_mask[:, 1:]
            mae_positions = self._visible(mae_table.to(pixel_values.dtype), patch_mask, batch_size)
            mae_aligned = torch.stack(
                [
                    decoder(hidden_states[index + 1][:, 1:] + mae_positions.to(hidden_states[index + 1].dtype))
                    for decoder, index in zip(self.mae_decoders, mae_layers)
                ]
            )

        losses = {}
        if clip_teacher_hidden_states is not None:
            target = self._visible_target(clip_teacher_hidden_states, token_mask, clip_aligned.shape[2])
            losses["clip_loss"] = alignment_loss(clip_aligned, target, num_items_in_batch, batch_dim=1)
        if clip_teacher_pooled is not None:
            losses["clip_final_loss"] = alignment_loss(clip_final_aligned, clip_teacher_pooled, num_items_in_batch)
        if mae_teacher_hidden_states is not None:
            if mae_aligned is None:
                raise ValueError("mae_teacher_hidden_states given but the config has no MAE branch.")
            patch_mask = None if token_mask is None else token_mask[:, 1:]
            target = self._visible_target(mae_teacher_hidden_states, patch_mask, mae_aligned.shape[2])
            losses["mae_loss"] = alignment_loss(mae_aligned, target, num_items_in_batch, batch_dim=1)
        # the components are weighted by the trainer (InternVideo2PretrainingArguments); alone, they simply add up
        loss = sum(losses.values()) if losses else None

        return InternVideo2ForPreTrainingOutput(
            loss=loss,
            clip_aligned=clip_aligned,
            clip_final_aligned=clip_final_aligned,
            mae_aligned=mae_aligned,
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=outputs.pooler_output,
            hidden_states=(
                tuple(state if i in returned else None for i, state in enumerate(outputs.hidden_states))
                if returned
                else None
            ),
            attentions=outputs.attentions,
            **losses,
        )

    @staticmethod
    def _visible_target(target: torch.Tensor, mask: torch.Tensor | None, num_visible: int) -> torch.Tensor:
        """Teacher targets may cover all tokens or only the visible ones; select the visible ones if needed."""
        if target.shape[2] == num_visible:
            return target
        if mask is None or target.shape[2] != mask.shape[1]:
            raise ValueError(
                f"Teacher targets cover {target.shape[2]} tokens; expected {num_visible} (visible) or the full "
                f"sequence{'' if mask is None else f' ({mask.shape[1]})'}."
            )
        layers, batch_size = target.shape[:2]
        flat = target.flatten(0, 1)
        flat_mask = mask.repeat(layers, 1)
        return _drop_masked_tokens(flat, flat_mask).reshape(layers, batch_size, num_visible, -1)


__all__ = [
    "InternVideo2VisionPreTrainedModel",
    "InternVideo2VisionModel",
    "InternVideo2ForVideoClassification",
    "InternVideo2ForPreTraining",
    "InternVideo2PositionEmbeddings",
    "sincos_position_table",
]

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""BEATs audio encoder (Chen et al., arXiv 2212.09058) as InternVideo2's 6B stage-2 model uses it.

InternVideo2 calls BEATs through its own `forward(fbank)` (not upstream's `extract_features(waveform)`): the model
reads a precomputed, normalised 64-bin Kaldi filterbank ([`BeatsFeatureExtractor`]) and never a padding mask.

    fbank (B, T, 64) -> Conv2d patches 16x16, stride 16 -> (B, E, T/16, 4) -> tokens (B, T/16 * 4, E), index
        time_patch * 4 + mel_patch -> LayerNorm(E) -> Linear(E -> D) (when E != D)
    -> x + GELU(weight-normed grouped Conv1d(x)) (convolutional position embedding, kernel 128, 16 groups)
    -> LayerNorm(D) (post-norm models; pre-norm models apply it after the layers instead)
    -> layers: attention with a T5-style bucketed relative position bias (one table shared by all layers), scaled per
       query and head by a learned gate, and post-norm DeepNet residuals `LN(alpha * x + f(x))`
    -> last_hidden_state (B, N, D)  (no final norm for post-norm models)
    -> pooler_output = last_hidden_state.mean(1) over all tokens, those of padded frames included (there is no
       mask): what InternVideo2's `encode_audio` returns as the pooled audio feature, before any projection

For 10 s of audio (998 frames), N = 62 * 4 = 248 tokens.
"""


import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .remote_code import RemoteCodeMixin
from .strict_loading import StrictLoadingMixin
from .configuration_beats import BeatsConfig


# The original scales queries down by this factor before q.k and back up after subtracting the row maximum, so that
# the logits stay small in half precision. The eager path keeps that order of operations (and its rounding).
_LOGIT_SHIFT_SCALE = 32.0
# The gate projects each head's query to 8 values: 2 gates x 4 summed components.
_GATE_PROJ_SIZE = 8


# ------------------------------------------------------------------------------------------------------------------
# Activations and gradient scaling
# ------------------------------------------------------------------------------------------------------------------
def _gelu_float32(hidden_states: torch.Tensor) -> torch.Tensor:
    # BEATs computes its FFN GELU (exact erf) in float32 and casts back.
    return F.gelu(hidden_states.float()).type_as(hidden_states)


def _gelu_tanh(hidden_states: torch.Tensor) -> torch.Tensor:
    return F.gelu(hidden_states, approximate="tanh")


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": _gelu_float32,
    "gelu_accurate": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": F.relu,
    "tanh": torch.tanh,
    "linear": lambda hidden_states: hidden_states,
}


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by `scale` (BEATs' layer-wise gradient decay,
    fairseq's `GradMultiply`)."""

    @staticmethod
    def forward(ctx, hidden_states: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return hidden_states.clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output * ctx.scale, None


# ------------------------------------------------------------------------------------------------------------------
# Attention
# ------------------------------------------------------------------------------------------------------------------
def beats_eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention as the original computes it: `softmax(((q * s / 32) k^T - rowmax) * 32 + bias + mask) v`.

    Mathematically `softmax(s q k^T + bias)`; the down-scaling and the row-maximum subtraction (before the bias is
    added) are the original's guard against half-precision overflow and are kept for its exact rounding.
    """
    query = query * scaling
    query = query * (1.0 / _LOGIT_SHIFT_SCALE)
    attn_weights = torch.matmul(query, key.transpose(2, 3))
    attn_weights = (attn_weights - attn_weights.amax(dim=-1, keepdim=True)) * _LOGIT_SHIFT_SCALE
    if position_bias is not None:
        attn_weights = attn_weights + position_bias
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class BeatsRelativePositionBias(nn.Module):
    """T5-style bidirectional bucketed relative position bias, `(num_heads, query_length, key_length)`.

    The offset `key - query` is bucketed: half of the buckets for each sign (positive offsets in the upper half),
    exact up to `num_buckets // 4`, then logarithmic up to `max_distance` (larger offsets share the last bucket). One
    table serves every layer (the original ties the table of all layers to layer 0's and computes the bias once).
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_distance
        self.embedding = nn.Embedding(config.num_buckets, config.num_attention_heads)

    @staticmethod
    def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
        """Bucket index (int64) of each offset `key - query`."""
        half = num_buckets // 2
        buckets = (relative_position > 0).to(torch.long) * half
        distance = relative_position.abs()
        max_exact = half // 2
        # float32 log as the original; `.to(long)` truncates toward zero
        log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
        large = max_exact + (log_ratio * (half - max_exact)).to(torch.long)
        large = torch.minimum(large, torch.full_like(large, half - 1))
        return buckets + torch.where(distance < max_exact, distance, large)

    def forward(self, query_length: int, key_length: int) -> torch.Tensor:
        device = self.embedding.weight.device
        context = torch.arange(query_length, dtype=torch.long, device=device)[:, None]
        memory = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
        buckets = self.relative_position_bucket(memory - context, self.num_buckets, self.max_distance)
        return self.embedding(buckets).permute(2, 0, 1)


class BeatsAttention(nn.Module):
    """Multi-head self-attention with the (optionally gated) relative position bias added to the logits.

    The gate, per query token and head, is computed from the *unscaled* projected query of that head:
    `a, b = sigmoid(sum over 4 of gate_proj(q_h).view(2, 4))`, `gate = a * (b * gate_scale_h - 1) + 2`, and the bias
    becomes `gate * bias` (the original's "GRU-gated relative position", `grep_linear` / `grep_a`).
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)
        if config.gated_relative_position_bias:
            self.gate_proj = nn.Linear(self.head_dim, _GATE_PROJ_SIZE)
            self.gate_scale = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))
        else:
            self.gate_proj = None
            self.gate_scale = None

    def _gated_bias(self, query: torch.Tensor, position_bias: torch.Tensor) -> torch.Tensor:
        # The original rebuilds the unscaled query from its scaled copy (q * s / 32 * 32 / s); that is exact for the
        # power-of-two scalings of the official head sizes and within one rounding otherwise.
        query = query * self.scaling * (1.0 / _LOGIT_SHIFT_SCALE) * _LOGIT_SHIFT_SCALE / self.scaling
        batch, heads, length, _ = query.shape
        gates = torch.sigmoid(self.gate_proj(query).view(batch, heads, length, 2, 4).sum(-1))
        gate_a, gate_b = gates.chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.gate_scale - 1.0) + 2.0  # (batch, heads, length, 1)
        return gate * position_bias

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape
        heads = (batch_size, seq_len, self.num_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(heads).transpose(1, 2)
        key = self.k_proj(hidden_states).view(heads).transpose(1, 2)
        value = self.v_proj(hidden_states).view(heads).transpose(1, 2)
        if position_bias is not None:
            position_bias = position_bias[None] if position_bias.dim() == 3 else position_bias
            if self.gate_proj is not None:
                position_bias = self._gated_bias(query, position_bias)
            # one bias per batch element, laid out as SDPA/flex expect it
            position_bias = position_bias.expand(batch_size, -1, -1, -1).to(query.dtype)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, beats_eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            position_bias=position_bias,
            is_causal=False,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, seq_len, -1)
        return self.out_proj(attn_output), attn_weights


# ------------------------------------------------------------------------------------------------------------------
# Embeddings
# ------------------------------------------------------------------------------------------------------------------
class BeatsPatchEmbeddings(nn.Module):
    """Filterbank `(B, T, F)` -> patch tokens `(B, (T // P) * (F // P), hidden_size)`, token index = time patch *
    (F // P) + mel patch. Trailing frames that do not fill a patch are dropped (998 frames -> 62 time patches)."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.patch_embedding = nn.Conv2d(
            1, config.patch_embed_dim, kernel_size=config.patch_size, stride=config.patch_size,
            bias=config.patch_embedding_bias,
        )  # fmt: skip
        self.layer_norm = nn.LayerNorm(config.patch_embed_dim, eps=config.layer_norm_eps)
        self.projection = (
            nn.Linear(config.patch_embed_dim, config.hidden_size)
            if config.patch_embed_dim != config.hidden_size
            else None
        )
        self.dropout = nn.Dropout(config.input_dropout)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(input_features.unsqueeze(1))  # (B, E, T // P, F // P)
        tokens = patches.flatten(2).transpose(1, 2)
        tokens = self.layer_norm(tokens)
        if self.projection is not None:
            tokens = self.projection(tokens)
        # The original applies its input dropout after the projection (an earlier call's result is discarded).
        return self.dropout(tokens)


class BeatsPositionalConvEmbedding(nn.Module):
    """`GELU(conv(x))` with a weight-normalised grouped Conv1d over time (kernel `K`, padding `K // 2`, the last step
    dropped for even `K` so that the length is kept). Added to its input by the encoder.

    The weight norm is PyTorch's parametrisation over dim 2 (`weight = g * v / ||v||`, the norm taken over the output
    and input channels per kernel tap): `g` is `conv.parametrizations.weight.original0` (1, 1, K) and `v` is
    `...original1` (D, D / groups, K), the original's `weight_g` / `weight_v`.
    """

    def __init__(self, config: BeatsConfig):
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        conv = nn.Conv1d(
            config.hidden_size, config.hidden_size, kernel_size=kernel, padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )  # fmt: skip
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.num_pad_remove = 1 if kernel % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv(hidden_states.transpose(1, 2))
        if self.num_pad_remove:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return self.activation(hidden_states).transpose(1, 2)


# ------------------------------------------------------------------------------------------------------------------
# Encoder
# ------------------------------------------------------------------------------------------------------------------
class BeatsFeedForward(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = _ACTIVATIONS[config.hidden_act]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_dropout(self.activation(self.fc1(hidden_states))))


class BeatsEncoderLayer(GradientCheckpointingLayer):
    """Post-norm (`LN(alpha * x + f(x))`, alpha from deep norm) or pre-norm (`x + f(LN(x))`) attention + FFN block."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.layer_norm_first = config.layer_norm_first
        self.residual_scale = config.deep_norm_alpha
        self.attention = BeatsAttention(config)
        self.attention_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = BeatsFeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        if self.layer_norm_first:
            attn_output, _ = self.attention(self.attention_layer_norm(hidden_states), position_bias, **kwargs)
            hidden_states = hidden_states + self.dropout(attn_output)
            ffn_output = self.feed_forward(self.final_layer_norm(hidden_states))
            return hidden_states + self.dropout(ffn_output)
        attn_output, _ = self.attention(hidden_states, position_bias, **kwargs)
        hidden_states = self.attention_layer_norm(hidden_states * self.residual_scale + self.dropout(attn_output))
        ffn_output = self.feed_forward(hidden_states)
        return self.final_layer_norm(hidden_states * self.residual_scale + self.dropout(ffn_output))


class BeatsEncoder(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        self.config = config
        self.pos_conv_embed = BeatsPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.relative_position_bias = (
            BeatsRelativePositionBias(config) if config.relative_position_embedding else None
        )
        self.layers = nn.ModuleList(BeatsEncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutput:
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)
        position_bias = None
        if self.relative_position_bias is not None:
            length = hidden_states.shape[1]
            position_bias = self.relative_position_bias(length, length)
        decay = self.config.layer_wise_gradient_decay_ratio
        for layer in self.layers:
            if decay != 1.0 and torch.is_grad_enabled():
                hidden_states = _ScaleGradient.apply(hidden_states, decay)
            # LayerDrop (training only): the original skips a layer when a uniform draw is <= layerdrop.
            if self.training and self.config.layerdrop > 0 and float(torch.rand(())) <= self.config.layerdrop:
                continue
            hidden_states = layer(hidden_states, position_bias, **kwargs)
        if self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


# ------------------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------------------
class BeatsPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: BeatsConfig
    remote_code_auto_map = {
        "AutoConfig": "beats.configuration_beats.BeatsConfig",
        "AutoModel": "beats.modeling_beats.BeatsModel",
    }
    base_model_prefix = "beats"
    main_input_name = "input_features"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _no_split_modules = ["BeatsPatchEmbeddings", "BeatsPositionalConvEmbedding", "BeatsEncoderLayer"]
    _supports_sdpa = True
    # flash attention cannot add an arbitrary (gated) bias to the logits
    _supports_flash_attn = False
    _supports_flex_attn = False
    _can_record_outputs = {
        "hidden_states": OutputRecorder(BeatsEncoderLayer, layer_name="encoder.layers"),
        "attentions": OutputRecorder(BeatsAttention, index=1, layer_name="encoder.layers"),
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """From-scratch initialisation as BEATs: linear layers and the bias table N(0, initializer_range) (fairseq's
        `init_bert_params`), then, with deep norm, Xavier-normal q/k (gain 1) and v/out/fc1/fc2 (gain
        `(8 * num_hidden_layers) ** -0.25`); the position convolution N(0, sqrt(4 / (K * D))) with `g = ||v||`; gate
        scales 1. Released checkpoints overwrite all of it."""
        super()._init_weights(module)
        config = self.config
        beta = (8 * config.num_hidden_layers) ** -0.25
        if isinstance(module, BeatsPositionalConvEmbedding):
            conv = module.conv
            direction = conv.parametrizations.weight.original1
            magnitude = conv.parametrizations.weight.original0
            init.normal_(direction, mean=0.0, std=math.sqrt(4.0 / (conv.kernel_size[0] * conv.in_channels)))
            init.copy_(magnitude, torch.norm_except_dim(direction, 2, 2))
            init.zeros_(conv.bias)
        elif isinstance(module, BeatsAttention):
            if module.gate_scale is not None:
                init.ones_(module.gate_scale)
            if config.deep_norm:
                init.xavier_normal_(module.q_proj.weight, gain=1.0)
                init.xavier_normal_(module.k_proj.weight, gain=1.0)
                init.xavier_normal_(module.v_proj.weight, gain=beta)
                init.xavier_normal_(module.out_proj.weight, gain=beta)
        elif isinstance(module, BeatsFeedForward) and config.deep_norm:
            init.xavier_normal_(module.fc1.weight, gain=beta)
            init.xavier_normal_(module.fc2.weight, gain=beta)


class BeatsModel(BeatsPreTrainedModel):
    """The BEATs encoder: filterbank in, patch tokens and their mean out."""

    def __init__(self, config: BeatsConfig):
        super().__init__(config)
        self.embeddings = BeatsPatchEmbeddings(config)
        self.encoder = BeatsEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        # The patch convolution (a module whose output is the embedded tensor, so that `enable_input_require_grads`
        # can hook it).
        return self.embeddings.patch_embedding

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self, input_features: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> BaseModelOutputWithPooling:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            Normalised Kaldi filterbank from [`BeatsFeatureExtractor`] (998 x 64 for 10 s). Frames past the last full
            patch are ignored. There is no attention mask: as in the original, padded frames are attended to like
            real ones.

        Returns:
            [`BaseModelOutputWithPooling`]: `last_hidden_state` `(batch_size, num_tokens, hidden_size)` with
            `num_tokens = (num_frames // patch_size) * (num_mel_bins // patch_size)`, and `pooler_output`, the mean of
            the tokens (InternVideo2's pooled audio feature, before any projection). `hidden_states` (on request):
            the encoder input (after the position convolution and, for post-norm models, the LayerNorm) and every
            layer's output.
        """
        config = self.config
        if input_features.dim() != 3 or input_features.shape[-1] != config.num_mel_bins:
            raise ValueError(
                f"input_features must be (batch, frames, {config.num_mel_bins}) filterbanks, got shape "
                f"{tuple(input_features.shape)}."
            )
        if input_features.shape[1] < config.patch_size:
            raise ValueError(
                f"input_features has {input_features.shape[1]} frames, fewer than one patch ({config.patch_size})."
            )
        if not input_features.is_floating_point():
            raise TypeError(f"input_features must be floating point, got {input_features.dtype}.")
        embeddings = self.embeddings(input_features.to(self.embeddings.patch_embedding.weight.dtype))
        sequence_output = self.encoder(embeddings, **kwargs).last_hidden_state
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=sequence_output.mean(dim=1))


__all__ = ["BeatsModel", "BeatsPreTrainedModel"]

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Configuration of the BEATs audio encoder as InternVideo2's 6B stage-2 model uses it."""

import copy

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


# BEATs_iter3 structure (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", arXiv 2212.09058). The
# class defaults are this preset. InternVideo2's released stage-2 checkpoint does not carry the BEATs cfg (it lives in
# the external `beats.pth`), so these values are the published BEATs_iter3 ones, the ones the reference key layout
# `keys/mm_stage2_6B.json` assumes; a real `beats.pth` always wins (see `conversion.beats.beats_config_from_original`).
BEATS_PRESETS: dict[str, dict] = {
    "beats-iter3": dict(
        patch_size=16,
        patch_embed_dim=512,
        patch_embedding_bias=False,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        layer_norm_first=False,
        deep_norm=True,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        relative_position_embedding=True,
        num_buckets=320,
        max_distance=800,
        gated_relative_position_bias=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        input_dropout=0.0,
        layerdrop=0.05,
        layer_wise_gradient_decay_ratio=0.6,
    ),
}

# BEATs' activation names (fairseq's `get_activation_fn`); "glu" changes the module structure and is not supported.
BEATS_ACTIVATIONS = ("gelu", "gelu_accurate", "gelu_fast", "relu", "tanh", "linear")


@strict
class BeatsConfig(PreTrainedConfig):
    r"""
    Configuration of [`BeatsModel`], the BEATs audio encoder of InternVideo2's 6B stage-2 (audio-video-text) model.
    The defaults are the BEATs_iter3 structure, 90.35 M parameters: [`BeatsConfig.from_preset`]`("beats-iter3")`.

    Input: a normalised 64-bin Kaldi filterbank `(batch, frames, num_mel_bins)` from [`BeatsFeatureExtractor`]
    (998 frames for 10 s). Output: `(frames // patch_size) * (num_mel_bins // patch_size)` tokens (248 for 10 s).

    Patch embedding:
        num_mel_bins (`int`, defaults to 64): width of the filterbank the model reads (InternVideo2 uses 64 bins, not
            upstream BEATs' 128); checked against the input.
        patch_size (`int`, defaults to 16): square patches over (time, mel), stride = size (the original
            `input_patch_size`).
        patch_embed_dim (`int`, defaults to 512): channels of the patch convolution (the original `embed_dim`),
            followed by a LayerNorm and, when it differs from `hidden_size`, a linear projection to `hidden_size`.
        patch_embedding_bias (`bool`, defaults to `False`): bias of the patch convolution (the original `conv_bias`).

    Encoder:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the original `encoder_embed_dim`,
            `encoder_layers`, `encoder_attention_heads`, `encoder_ffn_embed_dim`.
        hidden_act (`str`, defaults to `"gelu"`): FFN activation; `"gelu"` is the exact (erf) GELU computed in float32
            as the original. Also `"gelu_accurate"`/`"gelu_fast"` (tanh approximation), `"relu"`, `"tanh"`,
            `"linear"`.
        layer_norm_first (`bool`, defaults to `False`): pre-norm layers and a final LayerNorm after them; `False` is
            post-norm with the encoder LayerNorm applied *before* the first layer (BEATs_iter3).
        deep_norm (`bool`, defaults to `True`): DeepNet residual scaling `x = LN(alpha * x + f(x))` with
            `alpha = (2 * num_hidden_layers) ** 0.25` (post-norm only).
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm.
        num_conv_pos_embeddings / num_conv_pos_embedding_groups (`int`, defaults to 128 / 16): kernel and groups of the
            weight-normalised convolutional position embedding (the original `conv_pos` / `conv_pos_groups`).
        relative_position_embedding (`bool`, defaults to `True`): T5-style bucketed relative position bias, one table
            `(num_buckets, num_attention_heads)` shared by all layers.
        num_buckets / max_distance (`int`, defaults to 320 / 800): bidirectional buckets: half per direction, exact up
            to a quarter of `num_buckets`, logarithmic up to `max_distance`.
        gated_relative_position_bias (`bool`, defaults to `True`): scale the bias per query and head by a gate computed
            from the query (the original `gru_rel_pos`).
        hidden_dropout, attention_dropout, activation_dropout, input_dropout: the original `dropout`,
            `attention_dropout`, `activation_dropout`, `dropout_input` (all 0 in BEATs_iter3).
        layerdrop (`float`, defaults to 0.05): probability of skipping a layer in training (the original
            `encoder_layerdrop`).
        layer_wise_gradient_decay_ratio (`float`, defaults to 0.6): gradients are multiplied by this factor at the
            input of every layer (forward is unchanged), so earlier layers learn more slowly; 1.0 disables it.
        initializer_range (`float`, defaults to 0.02): std of the normal initialisation of linear layers and the bias
            table.
    """

    model_type = "internvideo2_beats"
    base_config_key = "audio_config"

    num_mel_bins: int = 64
    patch_size: int = 16
    patch_embed_dim: int = 512
    patch_embedding_bias: bool = False
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    layer_norm_eps: float = 1e-5
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gated_relative_position_bias: bool = True
    hidden_dropout: float | int = 0.0
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
    input_dropout: float | int = 0.0
    layerdrop: float | int = 0.05
    layer_wise_gradient_decay_ratio: float | int = 0.6
    initializer_range: float = 0.02

    def validate_architecture(self):
        for name in (
            "num_mel_bins", "patch_size", "patch_embed_dim", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups",
        ):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})."
            )
        if self.num_mel_bins < self.patch_size:
            raise ValueError(f"num_mel_bins ({self.num_mel_bins}) must be at least patch_size ({self.patch_size}).")
        if self.hidden_act not in BEATS_ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {BEATS_ACTIVATIONS}, got {self.hidden_act!r}.")
        if self.deep_norm and self.layer_norm_first:
            raise ValueError("deep_norm applies to post-norm layers only: it cannot be combined with layer_norm_first")
        if self.relative_position_embedding and (self.num_buckets < 4 or self.max_distance <= self.num_buckets // 4):
            raise ValueError(
                f"num_buckets ({self.num_buckets}) must be >= 4 and max_distance ({self.max_distance}) larger than "
                "num_buckets // 4 (the exact range of the bucketing)."
            )
        if self.gated_relative_position_bias and not self.relative_position_embedding:
            raise ValueError("gated_relative_position_bias requires relative_position_embedding.")
        for name in ("hidden_dropout", "attention_dropout", "activation_dropout", "input_dropout", "layerdrop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.layer_wise_gradient_decay_ratio <= 0:
            raise ValueError("layer_wise_gradient_decay_ratio must be positive.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def deep_norm_alpha(self) -> float:
        """Residual scale of the post-norm layers: `(2 * num_hidden_layers) ** 0.25` with deep norm, else 1."""
        return (2 * self.num_hidden_layers) ** 0.25 if self.deep_norm else 1.0

    @property
    def mel_patches(self) -> int:
        """Tokens per time patch (4 for 64 mel bins and patch 16)."""
        return self.num_mel_bins // self.patch_size

    def num_tokens(self, num_frames: int) -> int:
        """Output tokens for a filterbank of `num_frames` frames (248 for the 998 frames of 10 s)."""
        return (num_frames // self.patch_size) * self.mel_patches

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "BeatsConfig":
        """The configuration of a named structure (`"beats-iter3"`), with `overrides` applied."""
        key = name.lower()
        if key not in BEATS_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(BEATS_PRESETS)}.")
        kwargs = copy.deepcopy(BEATS_PRESETS[key])
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["BEATS_PRESETS", "BeatsConfig"]

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Configuration of cross-model attention (CMA) fusion, InternVideo (v1)'s model interaction, built from the paper
(arXiv 2212.03191, section 3.3): **no code or weights were ever released for it**."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..internvideo_mm.configuration_internvideo_mm import InternVideoMMVisionConfig
from ..videomae_v1.configuration_videomae_v1 import InternVideoMAEConfig


@strict
class InternVideoCMAConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideoCMAForVideoClassification`]: two frozen video encoders fused by `num_hidden_layers`
    cross-model attention blocks. Built from the paper's description; every size here is ours (the paper gives none).

    Args:
        masked_encoder_config (`dict` or [`InternVideoMAEConfig`]): the masked video encoder (VideoMAE).
        multimodal_encoder_config (`dict` or [`InternVideoMMVisionConfig`]): the multimodal video encoder's video
            tower (InternVideo-MM).
        hidden_size (`int`, defaults to 256): width of the fusion blocks (both encoders' tokens are projected to it).
        num_hidden_layers (`int`, defaults to 2): CMA blocks K. Blocks 0..K-2: the multimodal tokens are queries, the
            masked encoder's tokens keys/values; block K-1: the reverse. The classifier reads the mean of its output.
        num_attention_heads (`int`, defaults to 4), intermediate_size (`int`, defaults to 1024): each block's
            multi-head cross-attention and GELU feed-forward.
        hidden_dropout_prob, attention_dropout (`float`, defaults to 0.0), layer_norm_eps (`float`, defaults to 1e-6).
        freeze_encoders (`bool`, defaults to `True`): the encoders take no gradient and stay in eval mode (the paper
            trains the fusion with frozen backbones).
        standardize_encoder_tokens (`bool`, defaults to `True`): standardise each encoder's tokens per channel over
            the batch and the tokens (a `BatchNorm1d` without affine parameters, running statistics at inference)
            before the projections, as MAE's linear-probing protocol does with frozen features. Frozen encoders can
            output badly scaled tokens (VideoMAE with mean pooling has no final norm) whose channels are dominated by
            what every clip shares; without it the fusion's pooled feature is mostly that shared part and training
            barely moves (see `docs/internvideo1.md`).
        initializer_range (`float`, defaults to 0.02).
    """

    model_type = "internvideo_cma"
    sub_configs_defaults = {
        "masked_encoder_config": InternVideoMAEConfig,
        "multimodal_encoder_config": InternVideoMMVisionConfig,
    }

    masked_encoder_config: dict | PreTrainedConfig | None = None
    multimodal_encoder_config: dict | PreTrainedConfig | None = None
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_dropout_prob: float | int = 0.0
    attention_dropout: float | int = 0.0
    layer_norm_eps: float = 1e-6
    freeze_encoders: bool = True
    standardize_encoder_tokens: bool = True
    initializer_range: float = 0.02

    def validate_architecture(self):
        if self.num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers (CMA blocks) must be at least 1, got {self.num_hidden_layers}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )


__all__ = ["InternVideoCMAConfig"]

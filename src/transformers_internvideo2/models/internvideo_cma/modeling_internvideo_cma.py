# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Cross-model attention (CMA) fusion of InternVideo (v1), **built from the paper** (Wang et al., arXiv 2212.03191,
section 3.3 "Cross-Model Interaction"). OpenGVLab never released code, configs or weights for it, so nothing here is
a port and no number of the paper can be reproduced with it; the structure follows the text:

    masked video encoder (VideoMAE)   -> tokens V (B, N, D_v) -> Linear -> (B, N, D)
    multimodal video encoder (InternVideo-MM video tower) -> tokens M (B, T * L, D_m) -> Linear -> (B, T * L, D)
    blocks 0..K-2:  M <- CMA(queries = M, keys/values = V)
    block K-1:      V <- CMA(queries = V, keys/values = M)      (the reverse, as the paper says for the last block)
    logits = classifier(LayerNorm(mean of V))

Each encoder's tokens are first standardised per channel (`config.standardize_encoder_tokens`, a BatchNorm without
affine parameters, our addition: frozen encoders' raw tokens are dominated by what all clips share).
A CMA block is `q + MHCA(LN(q), LN(kv))`, then `q + FFN(LN(q))` (GELU). Both encoders are frozen (no gradient, eval
mode) unless `config.freeze_encoders=False`; the paper post-pretrains the fusion with frozen backbones.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

from ...losses.classification import video_classification_loss
from ..internvideo_mm.modeling_internvideo_mm import InternVideoMMVisionModel, eager_attention_forward
from ..remote_code import RemoteCodeMixin
from ..strict_loading import StrictLoadingMixin
from ..videomae_v1.modeling_videomae_v1 import InternVideoMAEModel
from .configuration_internvideo_cma import InternVideoCMAConfig


class InternVideoCMAAttention(nn.Module):
    """Multi-head cross-attention: queries from one encoder's tokens, keys/values from the other's."""

    def __init__(self, config: InternVideoCMAConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]):
        batch, length, width = queries.shape
        query = self.q_proj(queries).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        key = self.k_proj(keys_values).view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        value = self.v_proj(keys_values).view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        output, weights = attention_interface(
            self, query, key, value, None, scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0, is_causal=False, **kwargs,
        )  # fmt: skip
        return self.o_proj(output.reshape(batch, length, width)), weights


class InternVideoCMABlock(GradientCheckpointingLayer):
    """`q + MHCA(LN(q), LN(kv))`, then `q + FFN(LN(q))`."""

    def __init__(self, config: InternVideoCMAConfig):
        super().__init__()
        self.query_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.key_value_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = InternVideoCMAAttention(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size), nn.GELU(),
            nn.Dropout(config.hidden_dropout_prob), nn.Linear(config.intermediate_size, config.hidden_size),
        )  # fmt: skip
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor, **kwargs) -> torch.Tensor:
        attended, _ = self.cross_attn(self.query_norm(queries), self.key_value_norm(keys_values), **kwargs)
        queries = queries + self.dropout(attended)
        return queries + self.dropout(self.ffn(self.ffn_norm(queries)))


class InternVideoCMATokenStandardization(nn.BatchNorm1d):
    """Per-channel standardisation of a token sequence `(B, N, D)` over the batch and the tokens (no affine
    parameters; running statistics in eval mode)."""

    def __init__(self, width: int):
        super().__init__(width, affine=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return super().forward(tokens.reshape(-1, tokens.shape[-1])).view(tokens.shape)


class InternVideoCMAPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideoCMAConfig
    base_model_prefix = "internvideo_cma"
    main_input_name = "pixel_values"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideoCMABlock"]
    _supports_sdpa = True
    _supports_attention_backend = True
    remote_code_auto_map = {
        "AutoConfig": "internvideo_cma.configuration_internvideo_cma.InternVideoCMAConfig",
        "AutoModelForVideoClassification": "internvideo_cma.modeling_internvideo_cma.InternVideoCMAForVideoClassification",
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class InternVideoCMAForVideoClassification(InternVideoCMAPreTrainedModel):
    """Two frozen video encoders fused by cross-model attention, with a classification head (see the module
    docstring: built from the paper, not a port)."""

    def __init__(self, config: InternVideoCMAConfig):
        super().__init__(config)
        self.masked_encoder = InternVideoMAEModel(config.masked_encoder_config)
        self.multimodal_encoder = InternVideoMMVisionModel(config.multimodal_encoder_config)
        standardize = config.standardize_encoder_tokens
        masked_width, multimodal_width = config.masked_encoder_config.hidden_size, config.multimodal_encoder_config.hidden_size
        self.masked_token_norm = InternVideoCMATokenStandardization(masked_width) if standardize else nn.Identity()
        self.multimodal_token_norm = InternVideoCMATokenStandardization(multimodal_width) if standardize else nn.Identity()
        self.masked_projection = nn.Linear(config.masked_encoder_config.hidden_size, config.hidden_size)
        self.multimodal_projection = nn.Linear(config.multimodal_encoder_config.hidden_size, config.hidden_size)
        self.blocks = nn.ModuleList(InternVideoCMABlock(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels else nn.Identity()
        self.post_init()
        if config.freeze_encoders:
            for encoder in self.encoders():
                encoder.requires_grad_(False)

    def encoders(self) -> tuple[nn.Module, nn.Module]:
        return self.masked_encoder, self.multimodal_encoder

    def load_encoders(self, masked_encoder: nn.Module, multimodal_encoder: nn.Module) -> None:
        """Copy trained encoders' weights in (strictly); e.g. a converted VideoMAE and an InternVideo-MM video tower."""
        self.masked_encoder.load_state_dict(masked_encoder.state_dict(), strict=True)
        self.multimodal_encoder.load_state_dict(multimodal_encoder.state_dict(), strict=True)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_encoders:  # frozen backbones: no dropout/drop path, whatever the fusion's mode
            for encoder in self.encoders():
                encoder.eval()
        return self

    def encode(self, pixel_values: torch.Tensor, multimodal_pixel_values: torch.Tensor | None = None):
        """The two encoders' token sequences `(B, N, D_v)` and `(B, T * L, D_m)` (no gradient when frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoders):
            masked = self.masked_encoder(pixel_values).last_hidden_state
            multimodal_input = pixel_values if multimodal_pixel_values is None else multimodal_pixel_values
            multimodal = self.multimodal_encoder(multimodal_input).last_hidden_state
        return masked, multimodal

    def fuse(self, masked_tokens: torch.Tensor, multimodal_tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        """The CMA blocks on (pre-computed) encoder tokens; returns the pooled feature `(B, hidden_size)`."""
        masked = self.masked_projection(self.masked_token_norm(masked_tokens))
        multimodal = self.multimodal_projection(self.multimodal_token_norm(multimodal_tokens))
        for block in self.blocks[:-1]:
            multimodal = block(multimodal, masked, **kwargs)
        masked = self.blocks[-1](masked, multimodal, **kwargs)
        return self.norm(masked.mean(dim=1))

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        multimodal_pixel_values: torch.Tensor | None = None,
        masked_tokens: torch.Tensor | None = None,
        multimodal_tokens: torch.Tensor | None = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, 3, height, width)`): the clips (the
            masked encoder's normalisation); also the multimodal encoder's input unless `multimodal_pixel_values`.
        labels (`torch.LongTensor` of shape `(batch_size,)` or soft targets `(batch_size, num_labels)`).
        masked_tokens, multimodal_tokens (`torch.FloatTensor`, *optional*): the frozen encoders' outputs computed
            once ([`encode`]) instead of `pixel_values`, so that the fusion trains without re-running them.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if masked_tokens is None or multimodal_tokens is None:
            if pixel_values is None:
                raise ValueError("Give pixel_values, or both masked_tokens and multimodal_tokens.")
            masked_tokens, multimodal_tokens = self.encode(pixel_values, multimodal_pixel_values)
        logits = self.classifier(self.fuse(masked_tokens, multimodal_tokens, **kwargs))
        loss = video_classification_loss(logits, labels, num_items_in_batch) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


__all__ = ["InternVideoCMAForVideoClassification", "InternVideoCMAPreTrainedModel"]

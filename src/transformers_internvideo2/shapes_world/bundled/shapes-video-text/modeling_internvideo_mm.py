# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""InternVideo-MM, the multimodal video encoder of InternVideo (v1; Wang et al., arXiv 2212.03191).

Video tower (the released "global UniBlock only" UniFormerV2 variant on a CLIP ViT):

    video (B, T, C, H, W) -> every frame through a CLIP ViT: Conv3d (1, p, p) patches, [class] + patches,
        + learned 2-D position table (shared by all frames), ln_pre, pre-LN blocks (QuickGELU MLP), no final norm
    after each block in `extractor_layers` (j-th):
        keys = that block's tokens of all frames (frame-major), the patch tokens plus a depthwise 3x3x3
               convolution of them over (time, row, column) (`dpe`; added to a copy: the backbone is unchanged)
        query_{j+1} = extractor_j(query_j, keys): cross-attention (query from ln_1(query), keys/values from
               ln_3(keys): two separate LayerNorms; scores scaled by 1/sqrt(head_dim) after the product), then a
               QuickGELU MLP; query_0 = the learned temporal class token
    pooled = (1 - sigmoid(balance)) * query_final + sigmoid(balance) * mean over frames of the last block's [class]
    video embedding = visual_ln_post(pooled) @ visual_projection

Text tower: OpenAI CLIP (causal, pooled at the end-of-text token, the largest id). Similarity: cosine times
`exp(logit_scale)`. Caption decoder: CoCa style (learned queries pool the video tokens; parallel attention + SwiGLU
layers with rotary, multi-query attention and cross-attention to the pooled tokens).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .language_modeling import token_cross_entropy
from .remote_code import RemoteCodeMixin
from .strict_loading import StrictLoadingMixin
from .configuration_internvideo_mm import InternVideoMMConfig, InternVideoMMTextConfig, InternVideoMMVisionConfig


# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class InternVideoMMVisionOutput(BaseModelOutputWithPooling):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames * tokens_per_frame, hidden_size)`):
        Output of the last backbone block for every frame, frame-major (`[class, patches]` of frame 0, then frame 1,
        ...). No final norm (the original has none).
    pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The gated clip feature, before `visual_ln_post` and the projection.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        Embedding output and every block's output, frames folded into the batch: `(batch_size * num_frames,
        tokens_per_frame, hidden_size)`.
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        Self-attention weights of every block, `(batch_size * num_frames, heads, tokens, tokens)` (eager only).
    extractor_states (`tuple(torch.FloatTensor)`, *optional*):
        The temporal query after each extractor, `(batch_size, 1, hidden_size)` (with `output_extractor_states=True`).
    vision_pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*):
        From the feature getters: the gated clip feature before `visual_ln_post` and the projection (their
        `pooler_output` is the projected embedding).
    """

    extractor_states: tuple[torch.FloatTensor, ...] | None = None
    vision_pooler_output: torch.FloatTensor | None = None


@dataclass
class InternVideoMMOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*): symmetric contrastive loss (with `return_loss=True`).
    logits_per_video (`torch.FloatTensor` of shape `(video_batch_size, text_batch_size)`):
        `exp(logit_scale)` times the cosine similarities.
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, video_batch_size)`): its transpose.
    video_embeds, text_embeds (`torch.FloatTensor`): normalised projected embeddings.
    vision_model_output, text_model_output ([`BaseModelOutputWithPooling`]): the feature getters' outputs.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None
    text_model_output: BaseModelOutputWithPooling | None = None


@dataclass
class InternVideoMMCaptioningOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*): next-token cross-entropy (with `labels`).
    logits (`torch.FloatTensor` of shape `(batch_size, text_length - 1, caption_vocab_size)`): the decoder's
        prediction at each text position but the last.
    visual_tokens (`torch.FloatTensor` of shape `(batch_size, caption_num_visual_queries, text_hidden_size)`): the
        pooled video tokens the decoder layers cross-attend to.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    visual_tokens: torch.FloatTensor | None = None


# ------------------------------------------------------------------------------------------------------------------
# Shared pieces
# ------------------------------------------------------------------------------------------------------------------
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`softmax(q k^T * scaling + mask) v`; the scaling after the product, as the extractors of the original (the
    CLIP blocks scale q first, the same up to rounding)."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def _layer_norm_float32(norm: nn.LayerNorm, hidden_states: torch.Tensor) -> torch.Tensor:
    """`norm(hidden_states)` computed in float32 and cast back (CLIP's half-precision-safe LayerNorm)."""
    weight = norm.weight.float() if norm.weight is not None else None
    bias = norm.bias.float() if norm.bias is not None else None
    normed = F.layer_norm(hidden_states.float(), norm.normalized_shape, weight, bias, norm.eps)
    return normed.to(hidden_states.dtype)


def _linear_rates(maximum: float, count: int) -> list[float]:
    """`count` rates from 0 to `maximum` (stochastic depth schedule), computed without tensors (meta-device safe)."""
    if count == 1:
        return [0.0]
    return [maximum * i / (count - 1) for i in range(count)]


def _drop_path(hidden_states: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    if rate == 0.0 or not training:
        return hidden_states
    keep = 1.0 - rate
    mask = hidden_states.new_empty((hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)).bernoulli_(keep)
    return hidden_states * mask / keep


class InternVideoMMAttention(nn.Module):
    """Multi-head attention with one fused `qkv` projection (the original's `in_proj_weight`, rows q, k, v).

    Self-attention (`key_value_states=None`) in the CLIP blocks; cross-attention of the extractors' query token
    over the clip's tokens otherwise."""

    def __init__(self, hidden_size: int, num_heads: int, config, is_causal: bool = False):
        super().__init__()
        self.config = config
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = is_causal
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, query_len, _ = hidden_states.shape
        if key_value_states is None:
            query, key, value = self.qkv(hidden_states).chunk(3, dim=-1)
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            width = self.hidden_size
            query = F.linear(hidden_states, weight[:width], bias[:width])
            key, value = F.linear(key_value_states, weight[width:], bias[width:]).chunk(2, dim=-1)
        query = query.view(batch, query_len, self.num_heads, self.head_dim).transpose(1, 2)
        key = key.view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.view(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            is_causal=False,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch, query_len, self.hidden_size)
        return self.out_proj(attn_output), attn_weights


class InternVideoMMMLP(nn.Module):
    """`fc2(dropout(QuickGELU(fc1(x))))` (the original `c_fc` / `c_proj`)."""

    def __init__(self, hidden_size: int, intermediate_size: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN["quick_gelu"]
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(hidden_states))))


class InternVideoMMEncoderLayer(GradientCheckpointingLayer):
    """CLIP residual block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))` (drop path in training)."""

    def __init__(self, config, drop_path: float = 0.0):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = InternVideoMMAttention(config.hidden_size, config.num_attention_heads, config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = InternVideoMMMLP(config.hidden_size, config.intermediate_size)
        self.drop_path = drop_path

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(self.layer_norm1(hidden_states), attention_mask=attention_mask, **kwargs)
        hidden_states = hidden_states + _drop_path(attn_output, self.drop_path, self.training)
        mlp_output = self.mlp(self.layer_norm2(hidden_states))
        return hidden_states + _drop_path(mlp_output, self.drop_path, self.training)


# ------------------------------------------------------------------------------------------------------------------
# Video tower
# ------------------------------------------------------------------------------------------------------------------
class InternVideoMMVisionEmbeddings(nn.Module):
    """Frames -> `[class] + patches` + position table, LayerNorm (`ln_pre`); frames folded into the batch."""

    def __init__(self, config: InternVideoMMVisionConfig):
        super().__init__()
        self.config = config
        patch = config.patch_size
        # Conv3d with a time kernel of 1 (the original's layout, a CLIP Conv2d "inflated" with time 1).
        self.patch_embedding = nn.Conv3d(
            config.num_channels, config.hidden_size, kernel_size=(1, patch, patch), stride=(1, patch, patch), bias=False
        )
        self.class_embedding = nn.Parameter(torch.zeros(config.hidden_size))
        self.position_embedding = nn.Parameter(torch.zeros(config.tokens_per_frame, config.hidden_size))
        self.pre_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # (B, T, C, H, W) -> (B, C, T, H, W) -> (B, D, T, h, w) -> (B * T, h * w, D), patches row-major
        patches = self.patch_embedding(pixel_values.transpose(1, 2))
        batch, width, frames = patches.shape[:3]
        patches = patches.permute(0, 2, 3, 4, 1).reshape(batch * frames, -1, width)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        embeddings = torch.cat([cls, patches], dim=1) + self.position_embedding.to(patches.dtype)
        return _layer_norm_float32(self.pre_layernorm, embeddings)  # float32 as the original's ln_pre


class InternVideoMMExtractor(GradientCheckpointingLayer):
    """One query token attends to all tokens of a clip: `q + attn(ln_1(q), ln_3(tokens))`, then
    `q + mlp(ln_2(q))`. The output projections are zero-initialised, so an untrained extractor is the identity."""

    def __init__(self, config: InternVideoMMVisionConfig, drop_path: float = 0.0):
        super().__init__()
        self.query_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.key_value_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = InternVideoMMAttention(config.hidden_size, config.extractor_num_attention_heads, config)
        self.mlp_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = InternVideoMMMLP(config.hidden_size, config.extractor_intermediate_size, config.extractor_dropout)
        self.drop_path = drop_path
        # From-scratch init of the original: xavier inputs, zero outputs (an untrained extractor is the identity).
        self.cross_attn.qkv.init_rule = self.mlp.fc1.init_rule = "xavier"
        self.cross_attn.out_proj.init_rule = self.mlp.fc2.init_rule = "zeros"

    def forward(
        self, query: torch.Tensor, tokens: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> torch.Tensor:
        # No output_attentions for the extractors: they are recorded only as states.
        kwargs.pop("output_attentions", None)
        attn_output, _ = self.cross_attn(
            self.query_layernorm(query), key_value_states=self.key_value_layernorm(tokens), **kwargs
        )
        query = query + _drop_path(attn_output, self.drop_path, self.training)
        return query + _drop_path(self.mlp(self.mlp_layernorm(query)), self.drop_path, self.training)


class InternVideoMMTemporalModule(nn.Module):
    """The temporal part: temporal class token, `dpe` convolutions, extractors and the sigmoid gate."""

    def __init__(self, config: InternVideoMMVisionConfig):
        super().__init__()
        self.config = config
        width = config.hidden_size
        count = len(config.extractor_layers)
        self.temporal_class_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.position_convs = nn.ModuleList(
            nn.Conv3d(width, width, kernel_size=3, stride=1, padding=1, groups=width, bias=True) for _ in range(count)
        )
        rates = _linear_rates(config.drop_path_rate, count)
        self.extractors = nn.ModuleList(InternVideoMMExtractor(config, rates[i]) for i in range(count))
        self.balance = nn.Parameter(torch.zeros(width))

    def keys_from_block(self, index: int, block_output: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """Block output `(B * T, 1 + h * w, D)` -> extractor keys `(B, T * (1 + h * w), D)`, frame-major, with the
        depthwise convolution of the patch tokens added (to a copy)."""
        tokens = block_output.view(batch, frames, block_output.shape[1], -1)
        cls_tokens, patch_tokens = tokens[:, :, :1], tokens[:, :, 1:]
        grid = self.config.grid_size
        volume = patch_tokens.permute(0, 3, 1, 2).reshape(batch, -1, frames, grid, grid)  # (B, D, T, h, w)
        conv = self.position_convs[index](volume).flatten(3).permute(0, 2, 3, 1)  # (B, T, h * w, D)
        tokens = torch.cat([cls_tokens, patch_tokens + conv], dim=2)
        return tokens.flatten(1, 2)

    def gate(self, query: torch.Tensor, last_block_output: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        weight = torch.sigmoid(self.balance)
        frame_cls_mean = last_block_output[:, 0].view(batch, frames, -1).mean(1)
        return (1 - weight) * query[:, 0] + weight * frame_cls_mean


class InternVideoMMPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideoMMConfig
    base_model_prefix = "internvideo_mm"
    remote_code_auto_map = {
        "AutoConfig": "internvideo_mm.configuration_internvideo_mm.InternVideoMMConfig",
        "AutoModel": "internvideo_mm.modeling_internvideo_mm.InternVideoMMModel",
        "AutoModelForPreTraining": "internvideo_mm.modeling_internvideo_mm.InternVideoMMForCaptioning",
    }
    main_input_name = "pixel_values"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideoMMEncoderLayer", "InternVideoMMExtractor", "InternVideoMMCaptionLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """From-scratch initialisation as the original: CLIP-style normals for the towers, xavier for the extractor
        input projections with zero output projections (an untrained extractor is the identity), zero dpe biases and
        gate (0.5), LayerNorms 1/0. Released checkpoints overwrite everything."""
        std = self.config.initializer_range
        if isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and getattr(module, "init_rule", None) is not None:
            # the extractors' layers (children are initialised before their parents, so the rule rides on them)
            if module.init_rule == "zeros":
                init.zeros_(module.weight)
            else:
                init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, InternVideoMMTemporalModule):
            init.zeros_(module.temporal_class_embedding)
            init.zeros_(module.balance)
        elif isinstance(module, InternVideoMMVisionEmbeddings):
            scale = module.config.hidden_size**-0.5
            init.normal_(module.class_embedding, std=scale)
            init.normal_(module.position_embedding, std=scale)
            init.normal_(module.patch_embedding.weight, std=std)
        elif isinstance(module, InternVideoMMTextEmbeddings):
            init.normal_(module.token_embedding.weight, std=0.02)
            init.normal_(module.position_embedding, std=0.01)
        elif isinstance(module, InternVideoMMModel):
            init.normal_(module.visual_projection, std=self.config.vision_config.hidden_size**-0.5)
            init.normal_(module.text_projection, std=self.config.text_config.hidden_size**-0.5)
            init.normal_(module.text_mask_embedding, std=0.02)
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
        elif isinstance(module, InternVideoMMCaptionDecoder):
            init.normal_(module.visual_queries, std=module.visual_queries.shape[-1] ** -0.5)
        elif isinstance(module, _CocaLayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, _RotaryEmbedding):
            init.copy_(module.inv_freq, module.compute_inv_freq())
        elif isinstance(module, (nn.Linear, nn.Conv3d)):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)


class InternVideoMMVisionModel(InternVideoMMPreTrainedModel):
    """The video tower: `(B, T, C, H, W)` normalised frames -> frame tokens and the gated clip feature."""

    config: InternVideoMMVisionConfig
    base_model_prefix = "vision_model"
    main_input_name = "pixel_values"
    input_modalities = "video"
    remote_code_auto_map = {
        "AutoConfig": "internvideo_mm.configuration_internvideo_mm.InternVideoMMVisionConfig",
        "AutoModel": "internvideo_mm.modeling_internvideo_mm.InternVideoMMVisionModel",
    }
    _can_record_outputs = {
        "hidden_states": InternVideoMMEncoderLayer,
        "attentions": OutputRecorder(InternVideoMMAttention, index=1, layer_name="layers"),
        "extractor_states": InternVideoMMExtractor,
    }

    def __init__(self, config: InternVideoMMVisionConfig):
        super().__init__(config)
        self.embeddings = InternVideoMMVisionEmbeddings(config)
        rates = _linear_rates(config.drop_path_rate, config.num_hidden_layers)
        self.layers = nn.ModuleList(InternVideoMMEncoderLayer(config, rates[i]) for i in range(config.num_hidden_layers))
        self.temporal = InternVideoMMTemporalModule(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv3d:
        return self.embeddings.patch_embedding

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        config = self.config
        expected = (config.num_channels, config.image_size, config.image_size)
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 5 or tuple(pixel_values.shape[2:]) != expected:
            shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise ValueError(
                f"pixel_values must be (batch, frames, {expected[0]}, {expected[1]}, {expected[2]}) normalised frames; "
                f"got {shape}. InternVideo-MM has one position table for {config.image_size} px and never resamples "
                "it; images are 1-frame clips."
            )

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(self, pixel_values: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> InternVideoMMVisionOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames at `config.image_size`. Any frame count works; a single image is a 1-frame clip (the
            original's `mode="image"`, which treats every frame as its own sample).
        """
        self._check_pixel_values(pixel_values)
        batch, frames = pixel_values.shape[:2]
        hidden_states = self.embeddings(pixel_values.to(self.embeddings.patch_embedding.weight.dtype))
        temporal = self.temporal
        query = temporal.temporal_class_embedding.to(hidden_states.dtype).expand(batch, 1, -1)
        extractor_index = {layer: j for j, layer in enumerate(self.config.extractor_layers)}
        for index, layer in enumerate(self.layers):
            hidden_states = layer(hidden_states, **kwargs)
            if index in extractor_index:
                j = extractor_index[index]
                keys = temporal.keys_from_block(j, hidden_states, batch, frames)
                query = temporal.extractors[j](query, keys, **kwargs)
        pooled = temporal.gate(query, hidden_states, batch, frames)
        return InternVideoMMVisionOutput(last_hidden_state=hidden_states.reshape(batch, -1, hidden_states.shape[-1]),
                                         pooler_output=pooled)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------------
# Text tower
# ------------------------------------------------------------------------------------------------------------------
class InternVideoMMTextEmbeddings(nn.Module):
    def __init__(self, config: InternVideoMMTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Parameter(torch.zeros(config.max_position_embeddings, config.hidden_size))

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        length = inputs_embeds.shape[1]
        return inputs_embeds + self.position_embedding[:length].to(inputs_embeds.dtype)


class InternVideoMMTextModel(InternVideoMMPreTrainedModel):
    """The CLIP text transformer: `last_hidden_state` = `ln_final` output (every position), `pooler_output` = its
    row at the end-of-text token (the position of the largest id), before the projection."""

    config: InternVideoMMTextConfig
    base_model_prefix = "text_model"
    main_input_name = "input_ids"
    input_modalities = "text"
    remote_code_auto_map = {
        "AutoConfig": "internvideo_mm.configuration_internvideo_mm.InternVideoMMTextConfig",
        "AutoModel": "internvideo_mm.modeling_internvideo_mm.InternVideoMMTextModel",
    }
    _can_record_outputs = {
        "hidden_states": InternVideoMMEncoderLayer,
        "attentions": OutputRecorder(InternVideoMMAttention, index=1, layer_name="layers"),
    }

    def __init__(self, config: InternVideoMMTextConfig):
        super().__init__(config)
        self.embeddings = InternVideoMMTextEmbeddings(config)
        self.layers = nn.ModuleList(InternVideoMMEncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.token_embedding

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.token_embedding = value

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            CLIP BPE ids `<start_of_text> ... <end_of_text>` then zero padding (as the processor writes them).
        attention_mask: accepted for API compatibility and ignored, as in the original: attention is causal, so
            the padding after the end-of-text token never influences the pooled feature.
        inputs_embeds (`torch.FloatTensor`, *optional*): token embeddings instead of `input_ids` (e.g. with masked
            positions replaced); pooling then needs `input_ids` too, else the last position is pooled.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Give exactly one of input_ids and inputs_embeds.")
        if inputs_embeds is None:
            if input_ids.ndim != 2:
                raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}.")
            if input_ids.shape[1] > self.config.max_position_embeddings:
                raise ValueError(
                    f"input_ids has {input_ids.shape[1]} positions; the context length is "
                    f"{self.config.max_position_embeddings}."
                )
            inputs_embeds = self.embeddings.token_embedding(input_ids)
        hidden_states = self.embeddings(inputs_embeds)
        length = hidden_states.shape[1]
        causal = torch.full((length, length), float("-inf"), device=hidden_states.device, dtype=hidden_states.dtype)
        causal = causal.triu(1)[None, None]
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=causal, **kwargs)
        hidden_states = _layer_norm_float32(self.final_layer_norm, hidden_states)  # float32 as the original
        if input_ids is not None:
            pool_index = input_ids.to(hidden_states.device).argmax(dim=-1)
        else:
            pool_index = torch.full((hidden_states.shape[0],), length - 1, device=hidden_states.device)
        pooled = hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), pool_index]
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)


# ------------------------------------------------------------------------------------------------------------------
# Dual encoder
# ------------------------------------------------------------------------------------------------------------------
class InternVideoMMModel(InternVideoMMPreTrainedModel):
    """InternVideo-MM video-text dual encoder (the original `VideoIntern`): video tower + `visual_ln_post` +
    `visual_projection`, text tower + `text_projection`, `logit_scale`, and the MLM mask embedding."""

    config: InternVideoMMConfig
    # a captioning folder loaded as the dual encoder drops its caption decoder on purpose (strict loading)
    _keys_to_ignore_on_load_unexpected = [r"^caption_decoder\."]

    def __init__(self, config: InternVideoMMConfig):
        super().__init__(config)
        self.vision_model = InternVideoMMVisionModel._from_config(config.vision_config)
        self.text_model = InternVideoMMTextModel._from_config(config.text_config)
        vision_width, text_width = config.vision_config.hidden_size, config.text_config.hidden_size
        self.visual_layernorm = nn.LayerNorm(vision_width, eps=config.vision_config.layer_norm_eps)
        # projections stored (in, out) and applied as x @ W, the original layout
        self.visual_projection = nn.Parameter(torch.zeros(vision_width, config.projection_dim))
        self.text_projection = nn.Parameter(torch.zeros(text_width, config.projection_dim))
        self.text_mask_embedding = nn.Parameter(torch.zeros(1, 1, text_width))
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.text_model.set_input_embeddings(value)

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values: torch.Tensor,
        normalize: bool = True,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideoMMVisionOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames.
        normalize (`bool`, defaults to `True`): L2-normalise the embedding (`False`: the original `encode_video`).
        interpolate_pos_encoding: accepted for the package's task API and ignored: there is no temporal table (any
            frame count runs) and the spatial table is never resampled (other resolutions are refused).

        Returns the vision tower's output with `pooler_output` replaced by the projected (normalised) embedding.
        """
        outputs = self.vision_model(pixel_values, **kwargs)
        embeds = self.visual_layernorm(outputs.pooler_output) @ self.visual_projection
        return InternVideoMMVisionOutput(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            extractor_states=outputs.extractor_states,
            vision_pooler_output=outputs.pooler_output,
        )

    def get_image_features(
        self, pixel_values: torch.Tensor, normalize: bool = True, **kwargs: Unpack[TransformersKwargs]
    ) -> InternVideoMMVisionOutput:
        """Images `(batch, channels, height, width)` (or 1-frame clips): each is a 1-frame clip, as the original's
        `mode="image"`."""
        if pixel_values.ndim == 4:
            pixel_values = pixel_values.unsqueeze(1)
        return self.get_video_features(pixel_values, normalize=normalize, **kwargs)

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        normalize: bool = True,
        masked_positions: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, 77)`): CLIP BPE ids from the processor.
        attention_mask: ignored (causal attention; see [`InternVideoMMTextModel.forward`]).
        normalize (`bool`, defaults to `True`): L2-normalise the embedding (`False`: the original `encode_text`).
        masked_positions (`torch.BoolTensor` of shape `(batch_size, 77)`, *optional*): positions whose token
            embedding is replaced by the learned mask embedding (the masked-language-modelling input of the
            pre-training).

        Returns `last_hidden_state` = the `ln_final` output and `pooler_output` = the projected (normalised) feature.
        """
        inputs_embeds = None
        if masked_positions is not None:
            inputs_embeds = self.text_model.get_input_embeddings()(input_ids)
            mask = masked_positions.to(inputs_embeds.device, torch.bool)[..., None]
            inputs_embeds = torch.where(mask, self.text_mask_embedding.to(inputs_embeds.dtype), inputs_embeds)
        if inputs_embeds is None:
            outputs = self.text_model(input_ids=input_ids, **kwargs)
        else:
            outputs = self._text_from_embeds(input_ids, inputs_embeds, **kwargs)
        embeds = outputs.pooler_output @ self.text_projection
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _text_from_embeds(self, input_ids, inputs_embeds, **kwargs) -> BaseModelOutputWithPooling:
        # pool at the end-of-text token of the ids even though the embeddings were edited
        outputs = self.text_model(inputs_embeds=inputs_embeds, **kwargs)
        index = input_ids.to(outputs.last_hidden_state.device).argmax(dim=-1)
        rows = torch.arange(index.shape[0], device=index.device)
        outputs.pooler_output = outputs.last_hidden_state[rows, index]
        return outputs

    def contrastive_loss(self, video_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE of normalised embeddings, the i-th video paired with the i-th text."""
        logits = video_embeds @ text_embeds.t() * self.logit_scale.exp()
        targets = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideoMMOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(video_batch_size, num_frames, num_channels, height, width)`).
        input_ids (`torch.LongTensor` of shape `(text_batch_size, 77)`).
        return_loss (`bool`): the symmetric contrastive loss (video and text batches must have the same size). The
            log scale is clamped to [0, ln 100] in training, in place, as the original pre-training.
        """
        if return_loss and pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"return_loss=True pairs the i-th video with the i-th text, but got {pixel_values.shape[0]} videos "
                f"and {input_ids.shape[0]} texts."
            )
        if return_loss and self.training:
            with torch.no_grad():
                self.logit_scale.clamp_(0, 4.6052)
        video = self.get_video_features(pixel_values, **kwargs)
        text = self.get_text_features(input_ids, attention_mask, **kwargs)
        logits_per_video = video.pooler_output @ text.pooler_output.t() * self.logit_scale.exp()
        loss = self.contrastive_loss(video.pooler_output, text.pooler_output) if return_loss else None
        return InternVideoMMOutput(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            video_embeds=video.pooler_output,
            text_embeds=text.pooler_output,
            vision_model_output=video,
            text_model_output=text,
        )


# ------------------------------------------------------------------------------------------------------------------
# Caption decoder (CoCa style)
# ------------------------------------------------------------------------------------------------------------------
class _CocaLayerNorm(nn.Module):
    """LayerNorm whose bias is a fixed zero buffer (CoCa's "LayerNorm without bias"; kept as a buffer so that the
    original's `beta` entry loads)."""

    def __init__(self, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))
        self.register_buffer("bias", torch.zeros(width))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(hidden_states, hidden_states.shape[-1:], self.weight, self.bias, self.eps)


class _RotaryEmbedding(nn.Module):
    """Rotary angles `position * inv_freq`, duplicated over both halves (rotate-half convention)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", self.compute_inv_freq())

    def compute_inv_freq(self) -> torch.Tensor:
        return 1.0 / (10000 ** (torch.arange(0, self.dim, 2).float() / self.dim))

    def forward(self, length: int, device: torch.device) -> torch.Tensor:
        positions = torch.arange(length, device=device, dtype=self.inv_freq.dtype)
        freqs = positions[:, None] * self.inv_freq[None, :]
        return torch.cat((freqs, freqs), dim=-1)


def _rotate_half(hidden: torch.Tensor) -> torch.Tensor:
    first, second = hidden.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _swiglu(hidden: torch.Tensor) -> torch.Tensor:
    value, gate = hidden.chunk(2, dim=-1)
    return F.silu(gate) * value


def _multi_query_attention(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, causal: bool
) -> torch.Tensor:
    """`query (B, H, N, d)` against one shared key/value head `(B, M, d)`; softmax after subtracting the row maximum
    (CoCa's formulation; identical in value). Returns `(B, N, H * d)`."""
    scores = torch.matmul(query * module.scaling, key.unsqueeze(1).transpose(-1, -2))
    if causal:
        length = scores.shape[-1]
        mask = torch.ones(length, length, dtype=torch.bool, device=scores.device).triu(1)
        scores = scores.masked_fill(mask, -torch.finfo(scores.dtype).max)
    scores = scores - scores.amax(dim=-1, keepdim=True).detach()
    out = torch.matmul(scores.softmax(dim=-1), value.unsqueeze(1))
    return out.transpose(1, 2).flatten(2)


class InternVideoMMCaptionCrossAttention(nn.Module):
    """Multi-query cross-attention (one shared key/value head), CoCa LayerNorm on the queries (and, optionally, the
    context); with `parallel_ff` a SwiGLU feed-forward of the normed queries is added to the output."""

    def __init__(self, width: int, context_width: int, heads: int, norm_context: bool, ff_mult: int | None):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.scaling = self.head_dim**-0.5
        self.norm = _CocaLayerNorm(width)
        self.context_norm = _CocaLayerNorm(context_width) if norm_context else None
        self.q_proj = nn.Linear(width, heads * self.head_dim, bias=False)
        self.kv_proj = nn.Linear(context_width, 2 * self.head_dim, bias=False)
        self.out_proj = nn.Linear(heads * self.head_dim, width, bias=False)
        if ff_mult:
            self.ff_in = nn.Linear(width, 2 * ff_mult * width, bias=False)
            self.ff_out = nn.Linear(ff_mult * width, width, bias=False)
        else:
            self.ff_in = self.ff_out = None

    def forward(self, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(hidden_states)
        if self.context_norm is not None:
            context = self.context_norm(context)
        query = self.q_proj(hidden_states).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        key, value = self.kv_proj(context).chunk(2, dim=-1)
        out = self.out_proj(_multi_query_attention(self, query, key, value, causal=False))
        if self.ff_in is not None:
            out = out + self.ff_out(_swiglu(self.ff_in(hidden_states)))
        return out


class InternVideoMMCaptionSelfBlock(nn.Module):
    """CoCa parallel block: one fused bias-free projection gives q (all heads), one k, one v (rotary on q and k) and
    the SwiGLU input; output `attn_out(causal multi-query attention) + ff_out(SwiGLU)`."""

    def __init__(self, width: int, heads: int, ff_mult: int):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.scaling = self.head_dim**-0.5
        self.split_sizes = (heads * self.head_dim, self.head_dim, self.head_dim, 2 * ff_mult * width)
        self.norm = _CocaLayerNorm(width)
        self.rotary = _RotaryEmbedding(self.head_dim)
        self.fused_proj = nn.Linear(width, sum(self.split_sizes), bias=False)
        self.attn_out = nn.Linear(heads * self.head_dim, width, bias=False)
        self.ff_out = nn.Linear(ff_mult * width, width, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(hidden_states)
        query, key, value, ff = self.fused_proj(hidden_states).split(self.split_sizes, dim=-1)
        query = query.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        angles = self.rotary(hidden_states.shape[1], hidden_states.device)
        cos, sin = angles.cos(), angles.sin()
        query = query * cos + _rotate_half(query) * sin
        key = key * cos + _rotate_half(key) * sin
        attn = _multi_query_attention(self, query, key, value, causal=True)
        return self.attn_out(attn) + self.ff_out(_swiglu(ff))


class InternVideoMMCaptionLayer(GradientCheckpointingLayer):
    def __init__(self, width: int, heads: int, ff_mult: int):
        super().__init__()
        self.self_block = InternVideoMMCaptionSelfBlock(width, heads, ff_mult)
        self.cross_block = InternVideoMMCaptionCrossAttention(width, width, heads, norm_context=False, ff_mult=ff_mult)

    def forward(self, hidden_states: torch.Tensor, visual_tokens: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.self_block(hidden_states)
        return hidden_states + self.cross_block(hidden_states, visual_tokens)


class InternVideoMMCaptionDecoder(nn.Module):
    """CoCa-style caption decoder of the InternVideo-MM pre-training (the original CoTrain `CaptionDecoder`).

    Video tokens (the last block's output of every frame) are pooled by `caption_num_visual_queries` learned queries;
    the text tower's final hidden states (all positions but the last) go through the layers (causal parallel
    attention + SwiGLU, then cross-attention to the pooled tokens), then the predictor (LayerNorm, Linear, GELU,
    LayerNorm, Linear to the vocabulary)."""

    def __init__(self, config: InternVideoMMConfig):
        super().__init__()
        width, heads = config.text_config.hidden_size, config.caption_num_heads
        self.visual_queries = nn.Parameter(torch.zeros(config.caption_num_visual_queries, width))
        self.visual_pooler = InternVideoMMCaptionCrossAttention(
            width, config.vision_config.hidden_size, heads, norm_context=True, ff_mult=None
        )
        self.visual_pooler_norm = nn.LayerNorm(width)
        self.text_norm = nn.LayerNorm(width)
        self.layers = nn.ModuleList(
            InternVideoMMCaptionLayer(width, heads, config.caption_ff_mult) for _ in range(config.caption_decoder_layers)
        )
        self.predictor = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width),
            nn.Linear(width, config.caption_output_size),
        )  # fmt: skip

    def pool_video(self, video_tokens: torch.Tensor) -> torch.Tensor:
        queries = self.visual_queries.to(video_tokens.dtype).expand(video_tokens.shape[0], -1, -1)
        return self.visual_pooler_norm(self.visual_pooler(queries, video_tokens))

    def forward(self, video_tokens: torch.Tensor, text_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        visual_tokens = self.pool_video(video_tokens)
        hidden_states = self.text_norm(text_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, visual_tokens)
        return self.predictor(hidden_states), visual_tokens


class InternVideoMMForCaptioning(InternVideoMMPreTrainedModel):
    """InternVideo-MM with its caption decoder: next-token logits of a caption given the video (the pre-training's
    caption objective; also the fusion module of the original VQA fine-tunes)."""

    config: InternVideoMMConfig

    def __init__(self, config: InternVideoMMConfig):
        super().__init__(config)
        if config.caption_decoder_layers < 1:
            raise ValueError("InternVideoMMForCaptioning needs caption_decoder_layers >= 1.")
        self.internvideo_mm = InternVideoMMModel(config)
        self.caption_decoder = InternVideoMMCaptionDecoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.internvideo_mm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.internvideo_mm.set_input_embeddings(value)

    def get_video_features(self, *args, **kwargs) -> InternVideoMMVisionOutput:
        return self.internvideo_mm.get_video_features(*args, **kwargs)

    def get_text_features(self, *args, **kwargs) -> BaseModelOutputWithPooling:
        return self.internvideo_mm.get_text_features(*args, **kwargs)

    @staticmethod
    def caption_video_tokens(video_last_hidden_state: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frame-major `(B, T * L, D)` -> the decoder's token-major, time-minor order `(B, L * T, D)`."""
        batch, _, width = video_last_hidden_state.shape
        return video_last_hidden_state.view(batch, num_frames, -1, width).transpose(1, 2).reshape(batch, -1, width)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideoMMCaptioningOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`).
        input_ids (`torch.LongTensor` of shape `(batch_size, 77)`): the caption (one per video).
        labels (`torch.LongTensor` of shape `(batch_size, 76)`, *optional*): target ids of positions 1..76 (the next
            token of each input position), -100 where not scored (e.g. padding).
        """
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"One caption per video: got {pixel_values.shape[0]} videos and {input_ids.shape[0]} texts."
            )
        video = self.internvideo_mm.vision_model(pixel_values, **kwargs)
        text = self.internvideo_mm.text_model(input_ids=input_ids, **kwargs)
        tokens = self.caption_video_tokens(video.last_hidden_state, pixel_values.shape[1])
        logits, visual_tokens = self.caption_decoder(tokens, text.last_hidden_state[:, :-1])
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels)  # every label -100: 0, not NaN
        return InternVideoMMCaptioningOutput(loss=loss, logits=logits, visual_tokens=visual_tokens)


__all__ = [
    "InternVideoMMCaptionDecoder",
    "InternVideoMMCaptioningOutput",
    "InternVideoMMForCaptioning",
    "InternVideoMMModel",
    "InternVideoMMOutput",
    "InternVideoMMPreTrainedModel",
    "InternVideoMMTextModel",
    "InternVideoMMVisionModel",
    "InternVideoMMVisionOutput",
]

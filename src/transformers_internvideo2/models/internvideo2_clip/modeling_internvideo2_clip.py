"""InternVideo2-CLIP (the original `multi_modality/models/internvideo2_clip.py` and `internvideo2_clip_small.py`).

    video (B, T, C, H, W) -> InternVideo2 blocks -> attention pooler (B, 768)
        1B/6B : the pooled vector is the embedding (no vision projection)
        S/B/L : LayerNorm + Linear (`vision_alignment`) -> (B, 512)
    text ids (B, L)
        1B/6B : LLaMA (Transformers' `LlamaModel`, LoRA merged at conversion) -> state of the last non-pad token
                (index `count(mask) - 1`, the EOS of right-padded text) -> text_projection (4096 -> 768)
        S/B/L : MobileCLIP text transformer (causal, float32 LayerNorms and softmax) -> state of the end-of-text token
                (`argmax(input_ids)`) -> text_projection (512 -> 512)
    logits_per_video = cos(video, text) / max(temperature, temperature_min)

The vision tower is [`InternVideo2VisionModel`] itself (composition, not a copy): the CLIP encoders are the stage-2 /
distilled encoders with a re-trained pooler, LayerScale applied in the input dtype, and images embedded with the
time-mean of the video position table.
"""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from ...losses.accumulation import mean_over_step
from ...losses.contrastive import video_text_contrastive_loss
from ..internvideo2_vision.modeling_internvideo2_vision import (
    InternVideo2VisionModel,
    _attention_interface,
)
from ..remote_code import RemoteCodeMixin
from ..strict_loading import StrictLoadingMixin
from .configuration_internvideo2_clip import (
    TEXT_TOWER_LLAMA,
    InternVideo2ClipConfig,
    InternVideo2MobileCLIPTextConfig,
)


# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class InternVideo2ClipOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*, returned with `return_loss=True`):
        Video-text contrastive loss (symmetric InfoNCE with the learned temperature, gathered across processes).
    logits_per_video (`torch.FloatTensor` of shape `(video_batch_size, text_batch_size)`):
        Cosine similarities divided by the temperature (the original `logits_v2t`; training forwards clamp the
        temperature in place to at least `temperature_min` first, as the original).
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, video_batch_size)`):
        The transpose of `logits_per_video`.
    video_embeds (`torch.FloatTensor` of shape `(video_batch_size, projection_dim)`):
        L2-normalised video embeddings (the `pooler_output` of [`InternVideo2ClipModel.get_video_features`]).
    text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`):
        L2-normalised text embeddings (the `pooler_output` of [`InternVideo2ClipModel.get_text_features`]).
    vision_model_output, text_model_output:
        The feature outputs of both towers.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    vision_model_output: ModelOutput | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple[Any]:
        return tuple(
            self[key].to_tuple() if key.endswith("_model_output") and self[key] is not None else self[key]
            for key in self.keys()
        )


@dataclass
class InternVideo2ClipVideoFeatures(BaseModelOutputWithPooling):
    r"""
    What [`InternVideo2ClipModel.get_video_features`] returns.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches, vision_hidden_size)`):
        Output of the last vision block.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        The CLIP embedding (the pooled feature, aligned for S/B/L14), L2-normalised unless `normalize=False`.
    vision_pooler_output (`torch.FloatTensor` of shape `(batch_size, pooler_output_size)`):
        The attention-pooled feature before the alignment layers.
    """

    vision_pooler_output: torch.FloatTensor | None = None


# ------------------------------------------------------------------------------------------------------------------
# MobileCLIP text transformer (S/B/L14)
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2MobileCLIPLayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back to the input dtype (the original `LayerNormFP32`); the affine
    parameters take part in float32 too, so that half-precision models normalise exactly like float32 ones."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normalized = F.layer_norm(
            hidden_states.to(torch.float32), self.normalized_shape, self.weight.to(torch.float32),
            self.bias.to(torch.float32), self.eps,
        )  # fmt: skip
        return normalized.to(hidden_states.dtype)


class InternVideo2MobileCLIPAttention(nn.Module):
    """Multi-head self-attention with one fused `qkv_proj` (channel layout `(3, heads, head_dim)`). The eager path
    forms the softmax in float32, as the original does."""

    def __init__(self, config: InternVideo2MobileCLIPTextConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = config.causal_attention
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn_output, attn_weights = _attention_interface(self.config)(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            is_causal=False,  # the causal structure is in the explicit mask, identical for every backend
            **kwargs,
        )
        return self.out_proj(attn_output.reshape(batch_size, seq_len, -1)), attn_weights


class InternVideo2MobileCLIPMLP(nn.Module):
    def __init__(self, config: InternVideo2MobileCLIPTextConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.act(self.fc1(hidden_states))))


class InternVideo2MobileCLIPLayer(GradientCheckpointingLayer):
    """Pre-norm layer: `x + attn(LN(x))`, then `x + mlp(LN(x))`."""

    def __init__(self, config: InternVideo2MobileCLIPTextConfig):
        super().__init__()
        self.attention_norm = InternVideo2MobileCLIPLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = InternVideo2MobileCLIPAttention(config)
        self.mlp_norm = InternVideo2MobileCLIPLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = InternVideo2MobileCLIPMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        attn_output, _ = self.attention(self.attention_norm(hidden_states), attention_mask, **kwargs)
        hidden_states = hidden_states + self.dropout(attn_output)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class InternVideo2MobileCLIPTextPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2MobileCLIPTextConfig
    base_model_prefix = "text_model"
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_clip.configuration_internvideo2_clip.InternVideo2MobileCLIPTextConfig",
        "AutoModel": "internvideo2_clip.modeling_internvideo2_clip.InternVideo2MobileCLIPTextModel",
    }
    main_input_name = "input_ids"
    input_modalities = "text"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2MobileCLIPLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False  # the causal structure travels as an explicit additive mask
    _supports_flex_attn = False
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": OutputRecorder(InternVideo2MobileCLIPLayer, layer_name="layers"),
        "attentions": OutputRecorder(InternVideo2MobileCLIPAttention, index=1, layer_name="layers"),
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2MobileCLIPTextModel):
            # the original's learnable table: truncated normal with std hidden_size ** -0.5
            init.trunc_normal_(module.position_embedding, std=module.config.hidden_size**-0.5)


class InternVideo2MobileCLIPTextModel(InternVideo2MobileCLIPTextPreTrainedModel):
    """The MobileCLIP text transformer. Returns every token after the final LayerNorm (`last_hidden_state`) and the
    end-of-text token's state (`pooler_output`, unprojected; the CLIP model projects it).

    The original computes `embed_scale = hidden_size ** -0.5` for the token embeddings but never multiplies by it;
    `embed_scale` is kept as an attribute for reference and, like in the original, **not applied** (the released
    weights were trained without it).
    """

    def __init__(self, config: InternVideo2MobileCLIPTextConfig):
        super().__init__(config)
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Parameter(torch.zeros(config.max_position_embeddings, config.hidden_size))
        self.embed_scale = config.hidden_size**-0.5  # computed by the original, never applied (see class docstring)
        self.embedding_dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(InternVideo2MobileCLIPLayer(config) for _ in range(config.num_hidden_layers))
        self.final_layer_norm = InternVideo2MobileCLIPLayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.token_embedding

    def set_input_embeddings(self, value: nn.Embedding):
        self.token_embedding = value

    def position_table(self, seq_len: int) -> torch.Tensor:
        """`(seq_len, hidden_size)` positions: the learned table, bilinearly resampled (align_corners=False) over the
        position axis when the text is not `max_position_embeddings` long, as the original."""
        table = self.position_embedding
        if seq_len == table.shape[0]:
            return table
        resampled = F.interpolate(
            table[None, None].float(), size=(seq_len, table.shape[1]), mode="bilinear", align_corners=False
        )
        return resampled[0, 0].to(table.dtype)

    def _attention_mask(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        seq_len, dtype = hidden_states.shape[1], hidden_states.dtype
        minimum = torch.finfo(dtype).min
        if self.config.causal_attention:
            # The original ignores any padding mask with causal attention: with right padding the real tokens never
            # see the padding anyway.
            future = torch.ones(seq_len, seq_len, dtype=torch.bool, device=hidden_states.device).triu(1)
            return torch.zeros(seq_len, seq_len, dtype=dtype, device=hidden_states.device).masked_fill(
                future, minimum
            )[None, None]
        if attention_mask is None:
            return None
        padding = attention_mask[:, None, None, :].to(torch.bool).logical_not()
        return torch.zeros(padding.shape, dtype=dtype, device=hidden_states.device).masked_fill(padding, minimum)

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            CLIP BPE ids (`<start_of_text> ... <end_of_text>`, zero-padded), as [`InternVideo2ClipProcessor`] writes
            them. The end-of-text token must be the largest id of each row: it is found with `argmax`.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Only used by non-causal configurations (the released models are causal and ignore it, as the original).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.token_embedding(input_ids)
        hidden_states = inputs_embeds + self.position_table(inputs_embeds.shape[1]).to(inputs_embeds.dtype)
        hidden_states = self.embedding_dropout(hidden_states)
        mask = self._attention_mask(hidden_states, attention_mask)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask, **kwargs)
        hidden_states = self.final_layer_norm(hidden_states)
        pooled = None
        if input_ids is not None:
            pooled = hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device),
                                   input_ids.argmax(dim=-1)]  # fmt: skip
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)


# ------------------------------------------------------------------------------------------------------------------
# The CLIP model
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2ClipVisionAlignment(nn.Module):
    """S/B/L14: `Linear(LayerNorm(pooled))` into the MobileCLIP embedding space (the original `vision_align`)."""

    def __init__(self, config: InternVideo2ClipConfig):
        super().__init__()
        width = config.vision_config.pooler_output_size
        self.layer_norm = nn.LayerNorm(width, eps=config.vision_config.layer_norm_eps)
        self.dense = nn.Linear(width, config.projection_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layer_norm(pooled))


def _check_video_batch(pixel_values: torch.Tensor) -> None:
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 5:
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(
            "pixel_values must be a video batch shaped (batch, frames, channels, height, width) (one image = one "
            f"frame); got {shape}."
        )


class InternVideo2ClipPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2ClipConfig
    base_model_prefix = "internvideo2_clip"
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_clip.configuration_internvideo2_clip.InternVideo2ClipConfig",
        "AutoModel": "internvideo2_clip.modeling_internvideo2_clip.InternVideo2ClipModel",
    }
    main_input_name = "pixel_values"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "LlamaDecoderLayer", "InternVideo2MobileCLIPLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        std = self.config.initializer_range
        if isinstance(module, InternVideo2ClipModel):
            init.constant_(module.temperature, self.config.temperature_init)
            init.normal_(module.text_projection.weight, std=module.text_projection.in_features**-0.5)
        elif isinstance(module, InternVideo2ClipVisionAlignment):
            init.ones_(module.layer_norm.weight)
            init.zeros_(module.layer_norm.bias)
            init.trunc_normal_(module.dense.weight, std=std)
            init.zeros_(module.dense.bias)


class InternVideo2ClipModel(InternVideo2ClipPreTrainedModel):
    """InternVideo2-CLIP video-text dual encoder (1B/6B with the LLaMA text tower, S/B/L14 with MobileCLIP)."""

    def __init__(self, config: InternVideo2ClipConfig):
        super().__init__(config)
        self.vision_model = InternVideo2VisionModel(config.vision_config)
        self.vision_alignment = InternVideo2ClipVisionAlignment(config) if config.use_vision_alignment else None
        if config.text_tower == TEXT_TOWER_LLAMA:
            self.text_model = LlamaModel(config.text_config)
        else:
            self.text_model = InternVideo2MobileCLIPTextModel(config.text_config)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.temperature = nn.Parameter(torch.tensor(float(config.temperature_init)))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.text_model.set_input_embeddings(value)

    # -- features ----------------------------------------------------------------------------------------------------
    @can_return_tuple
    def get_video_features(
        self,
        pixel_values: torch.Tensor,
        interpolate_pos_encoding: bool | None = None,
        normalize: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ClipVideoFeatures:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames; one image = one frame (embedded with the time-mean of the video position table).
        interpolate_pos_encoding (`bool`, *optional*): the package policy — `None` resamples the position embeddings
            when the frame count or resolution differs from the configuration, `False` raises instead.
        normalize (`bool`, defaults to `True`): L2-normalise the embedding.

        Returns `pooler_output` = the CLIP video embedding (the original `encode_vision(test=True)`), normalised.
        """
        _check_video_batch(pixel_values)
        outputs = self.vision_model(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        embeds = outputs.pooler_output
        if self.vision_alignment is not None:
            embeds = self.vision_alignment(embeds)
        return InternVideo2ClipVideoFeatures(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            vision_pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _llama_text_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **kwargs):
        if attention_mask is None:
            # The original: every id > 0 counts (pad = 0 = <unk>); an <unk> inside a text shortens the count, which
            # is reproduced on purpose.
            attention_mask = (input_ids > 0).long()
        elif bool((attention_mask[:, 0] == 0).logical_and(attention_mask.sum(dim=1) > 0).any()):
            raise ValueError(
                "The LLaMA text tower pools the token at index attention_mask.sum() - 1, which needs right padding "
                "(the processor's default); got an attention_mask that starts with padding."
            )
        outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        last = (attention_mask.sum(dim=1) - 1).clamp(min=0)
        hidden = outputs.last_hidden_state
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]
        return outputs, pooled

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        normalize: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            LLaMA: `<s> summarize:text </s>` right-padded with 0 (80 tokens); MobileCLIP: CLIP BPE ids padded with 0
            (77 tokens). [`InternVideo2ClipProcessor`] writes both.
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            LLaMA: right-padding mask (default: `input_ids > 0`, as the original). MobileCLIP: ignored by the causal
            released models.
        normalize (`bool`, defaults to `True`): L2-normalise the embedding.

        Returns `last_hidden_state` (the text tower's final, normalised states) and `pooler_output` = the projected
        text embedding of the pooled token (LLaMA: the last non-padding token; MobileCLIP: the end-of-text token).
        """
        if self.config.text_tower == TEXT_TOWER_LLAMA:
            outputs, pooled = self._llama_text_states(input_ids, attention_mask, **kwargs)
        else:
            outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            pooled = outputs.pooler_output
        embeds = self.text_projection(pooled)
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    # -- temperature and loss ----------------------------------------------------------------------------------------
    def clamp_temperature_(self) -> None:
        """Clamp the temperature in place to at least `temperature_min` (the original, at every training forward)."""
        with torch.no_grad():
            self.temperature.clamp_(min=self.config.temperature_min)

    def contrastive_loss(
        self,
        video_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        sample_ids: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """VTC of normalised embeddings with the learned temperature (symmetric InfoNCE gathered with gradient across
        processes, `losses/contrastive.py`), averaged over the pairs of the optimiser step."""
        loss = video_text_contrastive_loss(video_embeds, text_embeds, self.temperature, sample_ids=sample_ids)
        return mean_over_step(loss, video_embeds.shape[0], num_items_in_batch)

    # -- forward -----------------------------------------------------------------------------------------------------
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        interpolate_pos_encoding: bool | None = None,
        sample_ids: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ClipOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(video_batch_size, num_frames, num_channels, height, width)`):
            Normalised frames (one image = one frame).
        input_ids, attention_mask (`torch.LongTensor` of shape `(text_batch_size, sequence_length)`):
            Tokenised texts (see [`InternVideo2ClipModel.get_text_features`]).
        return_loss (`bool`): also compute the contrastive loss; the i-th video and the i-th text are a pair.
            `num_items_in_batch` (pairs of the optimiser step, from the Trainer) makes gradient accumulation exact.
        sample_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): pairs with equal ids are all positives.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if return_loss and pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"return_loss=True pairs the i-th video with the i-th text, but got {pixel_values.shape[0]} videos "
                f"and {input_ids.shape[0]} texts."
            )
        video = self.get_video_features(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        text = self.get_text_features(input_ids, attention_mask, **kwargs)
        if self.training:
            self.clamp_temperature_()
        loss = None
        if return_loss:
            loss = self.contrastive_loss(video.pooler_output, text.pooler_output, sample_ids, num_items_in_batch)
        # As the original: the training forward clamps the stored value in place; evaluation divides by it as is.
        logits_per_video = video.pooler_output @ text.pooler_output.t() / self.temperature
        return InternVideo2ClipOutput(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            video_embeds=video.pooler_output,
            text_embeds=text.pooler_output,
            vision_model_output=video,
            text_model_output=text,
        )


__all__ = [
    "InternVideo2ClipModel",
    "InternVideo2ClipOutput",
    "InternVideo2ClipPreTrainedModel",
    "InternVideo2ClipVideoFeatures",
    "InternVideo2MobileCLIPTextModel",
    "InternVideo2MobileCLIPTextPreTrainedModel",
]

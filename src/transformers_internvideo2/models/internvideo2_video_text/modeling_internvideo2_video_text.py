"""InternVideo2 stage-2 video-text models (arXiv 2403.15377, the original `multi_modality/models/`).

    video (B, T, C, H, W) -> InternVideo2 vision encoder -> video tokens (B, 1+N, Cv), pooled feature (B, 768)
        pooled -> vision_projection -> L2-normalise                               -> video embedding
    text ids (B, L)       -> BERT layers [0, fusion_layer)  ("text path")        -> text hidden states
        [CLS] state -> text_projection -> L2-normalise                            -> text embedding
    text hidden states + video tokens -> BERT layers [fusion_layer, end) with cross-attention ("fusion path")
        [CLS] -> matching_head -> logit of class 1 = "the text describes the video"
        all   -> MLM head (tied to the word embeddings)

Retrieval ranks by cosine similarity and re-ranks the top-k candidates with the matching head (`tasks/retrieval.py`,
as the original `tasks/retrieval_utils.evaluation()`); the training forward computes the contrastive (VTC), matching
(VTM, hard negatives) and masked language modelling (MLM) losses, which the stage-2 trainer weights.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithCrossAttentions,
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    ModelOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from ...losses.accumulation import mean_over_step
from ...losses.contrastive import video_text_contrastive_loss
from ...losses.language_modeling import token_cross_entropy
from ..beats.modeling_beats import BeatsModel
from ..remote_code import RemoteCodeMixin
from ..strict_loading import StrictLoadingMixin
from .configuration_internvideo2_video_text import (
    InternVideo2Config,
    InternVideo2TextConfig,
)
from ..internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForPreTraining, InternVideo2VisionModel, eager_attention_forward


# The original pads with an additive -10000 (not the dtype's minimum); kept so that padded positions weigh exactly
# what they weighed in the original (in float32 both underflow to 0 after softmax).
_MASK_VALUE = -10000.0
TEXT_MODES = ("text", "fusion", "full")
# Audio losses of the 6B stage 2 (the original loss names): audio-text / audio-video / audio+video-text contrastive,
# audio-text / audio+video-text matching, MLM with audio / audio+video memory. The released recipe weights avtc,
# avtm and avmlm by 1 and the others by 0; those three are what the training forward computes by default.
AUDIO_LOSSES = ("atc", "avc", "avtc", "atm", "avtm", "amlm", "avmlm")
DEFAULT_AUDIO_LOSSES = ("avtc", "avtm", "avmlm")
MEDIA_MODALITIES = ("video", "audio", "audio_video")


# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
def _nested_to_tuple(output: ModelOutput, nested: tuple[str, ...]) -> tuple:
    return tuple(output[k].to_tuple() if k in nested and output[k] is not None else output[k] for k in output.keys())


@dataclass
class InternVideo2Output(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*, returned with `return_loss=True`):
        Video-text contrastive loss (VTC).
    logits_per_video (`torch.FloatTensor` of shape `(video_batch_size, text_batch_size)`):
        Cosine similarities divided by the (clamped) temperature. Rankings equal those of the plain cosine the
        original retrieval evaluation uses.
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, video_batch_size)`):
        The transpose of `logits_per_video`.
    video_embeds (`torch.FloatTensor` of shape `(video_batch_size, projection_dim)`):
        L2-normalised projected video features (the `pooler_output` of [`InternVideo2Model.get_video_features`]).
    text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`):
        L2-normalised projected text features (the `pooler_output` of [`InternVideo2Model.get_text_features`]).
    vision_model_output ([`InternVideo2VisionModelOutput`]):
        Output of the vision encoder: `last_hidden_state` (the video tokens) and `pooler_output` (raw pooled feature).
    text_model_output ([`BaseModelOutputWithCrossAttentions`]):
        Output of the text path of the text encoder.
    logits_per_audio (`torch.FloatTensor` of shape `(audio_batch_size, text_batch_size)`, *optional*):
        Audio models given `input_features`: audio-text cosine similarities divided by the temperature (what the
        zero-shot audio classification pipeline reads); `logits_per_text_audio` is its transpose.
    logits_per_audio_video (`torch.FloatTensor` of shape `(batch_size, text_batch_size)`, *optional*):
        Given both audio and video (pairs): audio+video-text similarities divided by the temperature.
    audio_embeds, audio_video_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
        L2-normalised audio and fused audio+video embeddings.
    audio_model_output ([`InternVideo2AudioFeatures`], *optional*): the audio features.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    vision_model_output: ModelOutput | None = None
    text_model_output: ModelOutput | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text_audio: torch.FloatTensor | None = None
    logits_per_audio_video: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    audio_video_embeds: torch.FloatTensor | None = None
    audio_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple[Any]:
        return _nested_to_tuple(self, ("vision_model_output", "text_model_output", "audio_model_output"))


@dataclass
class InternVideo2VideoFeatures(BaseModelOutputWithPooling):
    r"""
    What [`InternVideo2Model.get_video_features`] returns.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches, vision_hidden_size)`):
        Output of the last vision block (the original `x_vis`); [`InternVideo2Model.fusion_tokens`] turns it into
        the memory the fusion layers attend to.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        `vision_projection` of the attention-pooled feature, L2-normalised unless `normalize=False`: the retrieval
        embedding.
    vision_pooler_output (`torch.FloatTensor` of shape `(batch_size, pooler_output_size)`):
        The attention-pooled feature before the projection (the original `x_pool_vis`).
    hidden_states, attentions: of the vision encoder, when asked for.
    """

    vision_pooler_output: torch.FloatTensor | None = None


@dataclass
class InternVideo2AudioFeatures(BaseModelOutputWithPooling):
    r"""
    What [`InternVideo2Model.get_audio_features`] returns.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_audio_tokens, audio_hidden_size)`):
        The raw BEATs tokens (248 for 10 s); [`InternVideo2Model.audio_fusion_tokens`] turns them into the memory the
        fusion layers attend to.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        `audio_projection` of the mean of the tokens, L2-normalised unless `normalize=False`: the retrieval embedding.
    audio_pooler_output (`torch.FloatTensor` of shape `(batch_size, audio_hidden_size)`):
        The mean of the raw BEATs tokens, before the projection.
    hidden_states, attentions: of the audio encoder, when asked for.
    """

    audio_pooler_output: torch.FloatTensor | None = None


@dataclass
class InternVideo2AudioVideoFeatures(BaseModelOutputWithPooling):
    r"""
    What [`InternVideo2Model.get_audio_video_features`] returns.

    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_audio_tokens + num_video_tokens, width)`):
        The fusion memory of the audio+video matching head: projected audio tokens followed by projected video tokens.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        `audio_video_fusion(concat(audio projection, video projection))` (un-normalised projections, audio first),
        L2-normalised unless `normalize=False`: the audio+video retrieval embedding.
    audio_features ([`InternVideo2AudioFeatures`]), video_features ([`InternVideo2VideoFeatures`]): the parts, with
        L2-normalised `pooler_output`.
    """

    audio_features: InternVideo2AudioFeatures | None = None
    video_features: InternVideo2VideoFeatures | None = None

    def to_tuple(self) -> tuple[Any]:
        return _nested_to_tuple(self, ("audio_features", "video_features"))


@dataclass
class InternVideo2MatchingOutput(ModelOutput):
    r"""
    logits (`torch.FloatTensor` of shape `(num_pairs, 2)`):
        Matching-head logits (index 1 = "match").
    match_logits (`torch.FloatTensor` of shape `(num_pairs,)`):
        `logits[:, 1]`: the score the original re-ranking uses (no softmax).
    match_probabilities (`torch.FloatTensor` of shape `(num_pairs,)`):
        `softmax(logits)[:, 1]`.
    """

    logits: torch.FloatTensor | None = None
    match_logits: torch.FloatTensor | None = None
    match_probabilities: torch.FloatTensor | None = None


@dataclass
class InternVideo2ForRetrievalOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        `loss_vtc + loss_vtm + loss_mlm` (the components that were computed). The stage-2 trainer weights the
        components with its arguments instead.
    loss_vtc (`torch.FloatTensor`, *optional*): video-text contrastive loss.
    loss_vtm (`torch.FloatTensor`, *optional*): video-text matching loss (positives + hard negatives).
    loss_mlm (`torch.FloatTensor`, *optional*): masked language modelling loss conditioned on the video.
    loss_atc, loss_avc, loss_avtc, loss_atm, loss_avtm, loss_amlm, loss_avmlm (`torch.FloatTensor`, *optional*):
        the audio losses (audio-video-text models given `input_features`), those asked for by `audio_losses`.
    logits_per_audio, logits_per_audio_video (`(batch_size, batch_size)`, *optional*): audio-text and
        audio+video-text similarities divided by the temperature.
    logits_per_video, logits_per_text, video_embeds, text_embeds: as in [`InternVideo2Output`].
    matching_logits (`torch.FloatTensor` of shape `(3 * batch_size, 2)`, *optional*):
        Matching-head logits of the positive pairs, then (negative video, text), then (video, negative text).
    mlm_logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`, *optional*):
        MLM predictions on the masked texts.
    """

    loss: torch.FloatTensor | None = None
    loss_vtc: torch.FloatTensor | None = None
    loss_vtm: torch.FloatTensor | None = None
    loss_mlm: torch.FloatTensor | None = None
    loss_atc: torch.FloatTensor | None = None
    loss_avc: torch.FloatTensor | None = None
    loss_avtc: torch.FloatTensor | None = None
    loss_atm: torch.FloatTensor | None = None
    loss_avtm: torch.FloatTensor | None = None
    loss_amlm: torch.FloatTensor | None = None
    loss_avmlm: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_audio_video: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    matching_logits: torch.FloatTensor | None = None
    mlm_logits: torch.FloatTensor | None = None


# ------------------------------------------------------------------------------------------------------------------
# Text encoder: BERT with cross-attention in the layers from `fusion_layer` on
# ------------------------------------------------------------------------------------------------------------------
def additive_padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """`(B, L)` 1/0 padding mask -> `(B, 1, 1, L)` additive mask with 0 on tokens and -10000 on padding (the
    original's value, in the model dtype)."""
    if attention_mask is None:
        return None
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be (batch, sequence_length); got shape {tuple(attention_mask.shape)}.")
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * _MASK_VALUE


class InternVideo2TextEmbeddings(nn.Module):
    """Word + absolute position + token-type embeddings, LayerNorm, dropout (BERT). The original never passes
    token types, so row 0 of the token-type table is added to every token by default."""

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, sequence_length); got shape {tuple(input_ids.shape)}.")
        seq_length = input_ids.shape[1]
        if seq_length > self.config.max_position_embeddings:
            raise ValueError(
                f"The texts are {seq_length} tokens long but the text encoder has position embeddings for "
                f"{self.config.max_position_embeddings} tokens (max_position_embeddings). Truncate them, e.g. "
                f"tokenizer(..., truncation=True, max_length={self.config.max_position_embeddings})."
            )
        positions = torch.arange(seq_length, device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(embeddings))


class InternVideo2TextAttention(nn.Module):
    """Multi-head attention of a BERT layer. For cross-attention the keys and values come from the video tokens,
    whose width (`encoder_width`) differs from the text width."""

    def __init__(self, config: InternVideo2TextConfig, is_cross_attention: bool = False):
        super().__init__()
        self.config = config
        self.is_cross_attention = is_cross_attention
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        memory_width = config.encoder_width if is_cross_attention else config.hidden_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(memory_width, config.hidden_size)
        self.value = nn.Linear(memory_width, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        return bert_multi_head_attention(self, attention, hidden_states, memory, attention_mask, **kwargs)


def bert_multi_head_attention(
    module: nn.Module,
    attention: Callable,
    hidden_states: torch.Tensor,
    memory: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The multi-head attention of a BERT-style layer, shared by the stage-2 text encoder and the stage-3 Q-Former
    (their parameter names differ around it, so the modules stay separate): `module.query` projects
    `hidden_states`, `module.key` / `module.value` project `memory` (the video tokens for cross-attention, else
    `hidden_states`), and `attention` is the kernel (an `ALL_ATTENTION_FUNCTIONS` entry; each caller looks it up
    itself, which is also how Transformers recognises a module whose attention can be switched). Returns the heads'
    outputs concatenated, `(batch, length, hidden)`, before any output projection, and the attention weights (eager
    only)."""
    batch_size, length, _ = hidden_states.shape
    memory = hidden_states if memory is None else memory
    heads = (module.num_heads, module.head_dim)
    query = module.query(hidden_states).view(batch_size, length, *heads).transpose(1, 2)
    key = module.key(memory).view(batch_size, memory.shape[1], *heads).transpose(1, 2)
    value = module.value(memory).view(batch_size, memory.shape[1], *heads).transpose(1, 2)
    context, weights = attention(
        module,
        query,
        key,
        value,
        attention_mask,
        scaling=module.scaling,
        dropout=module.config.attention_probs_dropout_prob if module.training else 0.0,
        is_causal=False,
        **kwargs,
    )
    return context.reshape(batch_size, length, -1), weights


class InternVideo2TextResidualOutput(nn.Module):
    """Post-LayerNorm residual (BERT): `LayerNorm(dropout(dense(x)) + residual)`."""

    def __init__(self, config: InternVideo2TextConfig, input_size: int):
        super().__init__()
        self.dense = nn.Linear(input_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class InternVideo2TextAttentionBlock(nn.Module):
    """Attention + post-LN residual output. Sub-module names follow BERT (`self`, `output`) so that BERT weights map
    by name."""

    def __init__(self, config: InternVideo2TextConfig, is_cross_attention: bool = False):
        super().__init__()
        self.self = InternVideo2TextAttention(config, is_cross_attention)
        self.output = InternVideo2TextResidualOutput(config, config.hidden_size)

    def forward(self, hidden_states, attention_mask=None, memory=None, **kwargs):
        attn_output, _ = self.self(hidden_states, attention_mask, memory, **kwargs)
        return self.output(attn_output, hidden_states)


class InternVideo2TextIntermediate(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class InternVideo2TextLayer(GradientCheckpointingLayer):
    """BERT layer: self-attention, then (fusion layers only) cross-attention over the video tokens, then the
    feed-forward block; every sub-block is post-LayerNorm."""

    def __init__(self, config: InternVideo2TextConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.attention = InternVideo2TextAttentionBlock(config)
        self.has_cross_attention = layer_idx >= config.fusion_layer
        if self.has_cross_attention:
            self.crossattention = InternVideo2TextAttentionBlock(config, is_cross_attention=True)
        self.intermediate = InternVideo2TextIntermediate(config)
        self.output = InternVideo2TextResidualOutput(config, config.intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        hidden_states = self.attention(hidden_states, attention_mask, **kwargs)
        if self.has_cross_attention:
            self._require_video_tokens(encoder_hidden_states)
            hidden_states = self.crossattention(hidden_states, encoder_attention_mask, encoder_hidden_states, **kwargs)
        return self.output(self.intermediate(hidden_states), hidden_states)

    def _require_video_tokens(self, encoder_hidden_states: torch.Tensor | None) -> None:
        if encoder_hidden_states is None:
            raise ValueError(
                f"Layer {self.layer_idx} is a fusion layer and needs the video tokens (encoder_hidden_states)."
            )

    def forward_first_token(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """This layer's output at position 0 only, `(batch, 1, hidden)`: what `forward(...)[:, :1]` returns, for the
        cost of one query row (the self-attention still reads the keys and values of every position; every other
        sub-block works per position). Used for the last fusion layer, whose other positions the matching head never
        reads."""
        first = hidden_states[:, :1]
        attended, _ = self.attention.self(first, attention_mask, hidden_states)
        first = self.attention.output(attended, first)
        if self.has_cross_attention:
            self._require_video_tokens(encoder_hidden_states)
            first = self.crossattention(first, encoder_attention_mask, encoder_hidden_states)
        return self.output(self.intermediate(first), first)


class InternVideo2TextEncoder(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(InternVideo2TextLayer(config, i) for i in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        layers: range,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        for index in layers:
            hidden_states = self.layer[index](
                hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask, **kwargs
            )
        return hidden_states


class InternVideo2TextPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2TextConfig
    base_model_prefix = "text_model"
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_video_text.configuration_internvideo2_video_text.InternVideo2TextConfig",
        "AutoModel": "internvideo2_video_text.modeling_internvideo2_video_text.InternVideo2TextModel",
        "AutoModelForMaskedLM": "internvideo2_video_text.modeling_internvideo2_video_text.InternVideo2TextForMaskedLM",
    }
    main_input_name = "input_ids"
    input_modalities = "text"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2TextLayer"]
    # The additive -10000 padding mask is a 4-D float mask: fine for eager and SDPA, not for flash/flex kernels.
    _supports_sdpa = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": InternVideo2TextLayer,
        "attentions": OutputRecorder(InternVideo2TextAttention, index=1, layer_name="attention"),
        "cross_attentions": OutputRecorder(InternVideo2TextAttention, index=1, layer_name="crossattention"),
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        _init_bert_module(module, self.config.initializer_range)



def _init_bert_module(module: nn.Module, std: float) -> None:
    """BERT initialisation: normal(0, std) weights, zero biases, LayerNorm 1/0, zero padding embedding."""
    if isinstance(module, nn.Linear):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)


class InternVideo2TextModel(InternVideo2TextPreTrainedModel):
    """The stage-2 BERT text encoder with two entry points (`mode`):

    * `"text"`: embeddings + layers `[0, fusion_layer)`; the `[CLS]` state is the retrieval text feature.
    * `"fusion"`: layers `[fusion_layer, num_hidden_layers)` applied to `text_hidden_states` (the output of the text
      path; embeddings are not re-applied), cross-attending to the video tokens `encoder_hidden_states`.
    * `"full"`: both in one call (embeddings + all layers), as the original's `multi_modal` mode.

    The default is `"text"` without `encoder_hidden_states` and `"full"` with them. [`encode_text`] and [`fuse`] are
    the two entry points by name.
    """

    # a masked-LM folder loaded as the bare encoder drops its MLM head on purpose (strict loading refuses the rest)
    _keys_to_ignore_on_load_unexpected = [r"^mlm_head\."]

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__(config)
        self.embeddings = InternVideo2TextEmbeddings(config)
        self.encoder = InternVideo2TextEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.word_embeddings = value

    def _layers(self, mode: str) -> range:
        fusion, total = self.config.fusion_layer, self.config.num_hidden_layers
        return {"text": range(0, fusion), "fusion": range(fusion, total), "full": range(0, total)}[mode]

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        mode: str | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithCrossAttentions:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids (`"text"` and `"full"` modes). The original tokenizer writes `[CLS] tokens [PAD]...` (no `[SEP]`).
        attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 for tokens, 0 for padding (turned into the original's additive -10000 mask).
        token_type_ids (`torch.LongTensor`, *optional*):
            Segment ids; zeros (what the original uses) when omitted.
        text_hidden_states (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Output of the text path, the input of `mode="fusion"`.
        encoder_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_video_tokens, encoder_width)`):
            The video tokens the fusion layers cross-attend to.
        encoder_attention_mask (`torch.LongTensor` of shape `(batch_size, num_video_tokens)`, *optional*):
            Padding mask of the video tokens (the original attends to all of them).
        mode (`str`, *optional*):
            `"text"`, `"fusion"` or `"full"` (see the class docstring).
        """
        if mode is None:
            mode = "text" if encoder_hidden_states is None else "full"
        if mode not in TEXT_MODES:
            raise ValueError(f"mode must be one of {TEXT_MODES}; got {mode!r}.")
        if mode == "fusion":
            if text_hidden_states is None or input_ids is not None:
                raise ValueError("mode='fusion' takes `text_hidden_states` (the text path output), not `input_ids`.")
            hidden_states = text_hidden_states
        else:
            if input_ids is None or text_hidden_states is not None:
                raise ValueError(f"mode={mode!r} takes `input_ids`, not `text_hidden_states`.")
            hidden_states = self.embeddings(input_ids, token_type_ids)
        if mode != "text" and self.config.num_fusion_layers and encoder_hidden_states is None:
            raise ValueError(f"mode={mode!r} runs the fusion layers, which need `encoder_hidden_states` (video tokens).")
        batch_size, seq_length = hidden_states.shape[:2]
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, seq_length):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(batch_size, seq_length)}."
            )
        if encoder_hidden_states is not None and mode != "text":
            if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != batch_size:
                raise ValueError(
                    f"encoder_hidden_states must be (batch={batch_size}, num_video_tokens, {self.config.encoder_width});"
                    f" got shape {tuple(encoder_hidden_states.shape)}. Each text needs its own video tokens (repeat "
                    "them to pair one video with several texts)."
                )
            encoder_hidden_states = encoder_hidden_states.to(hidden_states.dtype)
        hidden_states = self.encoder(
            hidden_states,
            additive_padding_mask(attention_mask, hidden_states.dtype),
            encoder_hidden_states if mode != "text" else None,
            additive_padding_mask(encoder_attention_mask, hidden_states.dtype),
            self._layers(mode),
            **kwargs,
        )
        return BaseModelOutputWithCrossAttentions(last_hidden_state=hidden_states)

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithCrossAttentions:
        """The text path (`mode="text"`)."""
        return self(input_ids=input_ids, attention_mask=attention_mask, mode="text", **kwargs)

    def fuse(
        self,
        text_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithCrossAttentions:
        """The fusion path (`mode="fusion"`) over the text path's hidden states."""
        return self(
            text_hidden_states=text_hidden_states,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            mode="fusion",
            **kwargs,
        )


    def fuse_cls(
        self,
        text_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The `[CLS]` state of the fusion path, `(batch, hidden)`: `fuse(...).last_hidden_state[:, 0]` (the matching
        head's input), with the last layer computed for the `[CLS]` row only (the other rows of the last layer are
        never read), which makes matching-head scoring several times cheaper for models with few fusion layers."""
        layers = self._layers("fusion")
        if len(layers) == 0:
            return self.fuse(text_hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask).last_hidden_state[:, 0]
        batch_size, seq_length = text_hidden_states.shape[:2]
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, seq_length):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(batch_size, seq_length)}."
            )
        if encoder_hidden_states is None or encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[0] != batch_size:
            got = None if encoder_hidden_states is None else tuple(encoder_hidden_states.shape)
            raise ValueError(
                f"encoder_hidden_states must be (batch={batch_size}, num_video_tokens, {self.config.encoder_width}); "
                f"got {got}. Each text needs its own video tokens (repeat them to pair one video with several texts)."
            )
        dtype = text_hidden_states.dtype
        mask = additive_padding_mask(attention_mask, dtype)
        memory = encoder_hidden_states.to(dtype)
        memory_mask = additive_padding_mask(encoder_attention_mask, dtype)
        hidden_states = self.encoder(text_hidden_states, mask, memory, memory_mask, range(layers.start, layers.stop - 1))
        return self.encoder.layer[layers.stop - 1].forward_first_token(hidden_states, mask, memory, memory_mask)[:, 0]


class InternVideo2TextMLMHead(nn.Module):
    """BERT MLM head: dense + activation + LayerNorm, then a decoder tied to the word embeddings (with its own bias)."""

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.transform_act_fn(self.dense(hidden_states))))


class InternVideo2TextForMaskedLM(InternVideo2TextPreTrainedModel):
    """The text encoder with the tied MLM head. Without video tokens only the text path runs; with them (`"full"`,
    the default then) the MLM head reads the output of the fusion layers, as in stage-2 training."""

    _tied_weights_keys = {"mlm_head.decoder.weight": "text_model.embeddings.word_embeddings.weight"}

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__(config)
        self.text_model = InternVideo2TextModel(config)
        self.mlm_head = InternVideo2TextMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.mlm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        mode: str | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Target ids of the masked positions, -100 elsewhere. `num_items_in_batch` (number of labelled tokens across
            accumulated batches, from the Trainer) is honoured.
        Other arguments: see [`InternVideo2TextModel.forward`].
        """
        outputs = self.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            text_hidden_states=text_hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            mode=mode,
            **kwargs,
        )
        logits = self.mlm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels, kwargs.get("num_items_in_batch"))
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


# ------------------------------------------------------------------------------------------------------------------
# Video-text models
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2TokenProjection(nn.Module):
    """6B only: `LayerNorm(Linear(x))` on every video (or audio) token before the text encoder attends to them (the
    original `av_concat_vision_proj` / `av_concat_audio_proj`)."""

    def __init__(self, input_size: int, output_size: int, layer_norm_eps: float):
        super().__init__()
        self.dense = nn.Linear(input_size, output_size)
        self.layer_norm = nn.LayerNorm(output_size, eps=layer_norm_eps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.dense(tokens))


class InternVideo2PreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2Config
    base_model_prefix = "internvideo2"
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_video_text.configuration_internvideo2_video_text.InternVideo2Config",
        "AutoModel": "internvideo2_video_text.modeling_internvideo2_video_text.InternVideo2Model",
        "AutoModelForPreTraining": "internvideo2_video_text.modeling_internvideo2_video_text.InternVideo2ForRetrieval",
    }
    main_input_name = "pixel_values"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2TextLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        std = self.config.initializer_range
        if isinstance(module, InternVideo2Model):
            init.constant_(module.temperature, self.config.temperature_init)
        elif isinstance(module, (nn.Linear, nn.Embedding, nn.LayerNorm)):
            _init_bert_module(module, std)


def _check_video_batch(pixel_values: torch.Tensor) -> None:
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 5:
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        hint = " A batch of images is (batch, 1, channels, height, width): add the frame axis." if (
            isinstance(pixel_values, torch.Tensor) and pixel_values.ndim == 4
        ) else ""
        raise ValueError(
            f"pixel_values must be a video batch shaped (batch, frames, channels, height, width); got {shape}.{hint}"
        )


def _check_pairs(pixel_values: torch.Tensor, input_ids: torch.Tensor, what: str) -> None:
    if pixel_values.shape[0] != input_ids.shape[0]:
        raise ValueError(
            f"{what} pairs the i-th video with the i-th text, but got {pixel_values.shape[0]} videos and "
            f"{input_ids.shape[0]} texts."
        )


class InternVideo2Model(InternVideo2PreTrainedModel):
    """CLIP-style video-text dual encoder of the stage-2 models.

    Single images are 1-frame clips (`pixel_values` of shape `(B, 1, C, H, W)`); they use the image position table
    (1B: a learned one; 6B: the time-mean of the video table), as the original.
    """

    # a retrieval folder loaded as the dual encoder drops its matching and MLM heads on purpose
    _keys_to_ignore_on_load_unexpected = [r"^(matching_head|mlm_head|audio_video_matching_head|audio_matching_head)\."]

    def __init__(self, config: InternVideo2Config):
        super().__init__(config)
        vision_class = InternVideo2ForPreTraining if config.keep_vision_distillation_heads else InternVideo2VisionModel
        self.vision_model = vision_class(config.vision_config)
        self.text_model = InternVideo2TextModel(config.text_config)
        self.vision_token_projection = (
            InternVideo2TokenProjection(
                config.vision_config.hidden_size, config.vision_token_projection_size, config.vision_config.layer_norm_eps
            )
            if config.use_vision_token_projection
            else None
        )
        self.vision_projection = nn.Linear(config.vision_config.pooler_output_size, config.projection_dim)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim)
        self.temperature = nn.Parameter(torch.tensor(float(config.temperature_init)))
        if config.has_audio:  # the 6B audio-video-text model
            audio = config.audio_config
            self.audio_model = BeatsModel(audio)
            self.audio_projection = nn.Linear(audio.hidden_size, config.projection_dim)
            self.audio_token_projection = InternVideo2TokenProjection(
                audio.hidden_size, config.vision_token_projection_size, audio.layer_norm_eps
            )
            self.audio_video_fusion = nn.Linear(2 * config.projection_dim, config.projection_dim)
        self.post_init()

    def _require_audio(self) -> None:
        if not self.config.has_audio:
            raise ValueError(
                "This model has no audio encoder (config.audio_config is None): audio features need the 6B "
                "audio-video-text model."
            )

    @property
    def vision_backbone(self) -> InternVideo2VisionModel:
        """The vision encoder (inside the pretraining wrapper when the distillation heads are kept)."""
        if isinstance(self.vision_model, InternVideo2ForPreTraining):
            return self.vision_model.internvideo2
        return self.vision_model

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
        bool_masked_pos: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2VideoFeatures:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames; one image = one frame.
        interpolate_pos_encoding (`bool`, *optional*): the package policy — `None` (default) resamples the position
            embeddings when the frame count or resolution differs from the configuration (linear in time, bicubic in
            space, as the original's checkpoint interpolation), `False` raises instead.
        normalize (`bool`, defaults to `True`): L2-normalise the embedding (the original retrieval features are).
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*): video tokens dropped
            before the encoder (stage-2 training drops most of them).

        Returns `pooler_output` = the projected (normalised) retrieval embedding, as CLIP-style models do, next to the
        vision tokens and the unprojected pooled feature ([`InternVideo2VideoFeatures`]).
        """
        _check_video_batch(pixel_values)
        outputs = self.vision_backbone(
            pixel_values, bool_masked_pos=bool_masked_pos, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs
        )
        embeds = self.vision_projection(outputs.pooler_output)
        return InternVideo2VideoFeatures(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            vision_pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        normalize: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids, attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Tokenised texts (`[CLS] tokens`, no `[SEP]`, as the processor writes them).
        normalize (`bool`, defaults to `True`): L2-normalise the embedding, exactly as the original.

        Returns `last_hidden_state` = the text path's hidden states (layers below `fusion_layer`, the input of the
        fusion path) and `pooler_output` = `text_projection` of the pooled text state (`[CLS]`, or the masked mean
        with `config.text_pooling="mean"`).
        """
        outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, mode="text", **kwargs)
        hidden = outputs.last_hidden_state
        if self.config.text_pooling == "mean":  # masked mean of the text path (a configurable deviation, see config)
            mask = torch.ones_like(hidden[..., 0]) if attention_mask is None else attention_mask
            mask = mask[..., None].to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        else:  # the original: the [CLS] state
            pooled = hidden[:, 0]
        embeds = self.text_projection(pooled)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @can_return_tuple
    def get_audio_features(
        self, input_features: torch.Tensor, normalize: bool = True, **kwargs: Unpack[TransformersKwargs]
    ) -> InternVideo2AudioFeatures:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            Normalised Kaldi filterbanks from [`BeatsFeatureExtractor`] (998 x 64 for 10 s).
        normalize (`bool`, defaults to `True`): L2-normalise the embedding (the original retrieval features are).

        Returns `pooler_output` = `audio_projection(mean of the raw BEATs tokens)` (normalised), the audio retrieval
        embedding, next to the raw tokens and their mean ([`InternVideo2AudioFeatures`]).
        """
        self._require_audio()
        outputs = self.audio_model(input_features, **kwargs)
        embeds = self.audio_projection(outputs.pooler_output)
        return InternVideo2AudioFeatures(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=F.normalize(embeds, dim=-1) if normalize else embeds,
            audio_pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def fuse_audio_video_embeddings(self, audio_embeds: torch.Tensor, video_embeds: torch.Tensor) -> torch.Tensor:
        """`audio_video_fusion(concat(audio, video))` of the UN-normalised projections, audio first (the original
        `av_fusion`); the result is not normalised."""
        self._require_audio()
        return self.audio_video_fusion(torch.cat([audio_embeds, video_embeds], dim=-1))

    @can_return_tuple
    def get_audio_video_features(
        self,
        input_features: torch.Tensor,
        pixel_values: torch.Tensor,
        normalize: bool = True,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2AudioVideoFeatures:
        r"""
        Fused features of (audio i, video i) pairs, e.g. the audio track and the frames of one clip.

        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`): filterbanks.
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`): frames.
        normalize (`bool`, defaults to `True`): L2-normalise the fused embedding.

        Returns `pooler_output` = the fused audio+video retrieval embedding and `last_hidden_state` = the fusion memory
        of the audio+video matching head (projected audio tokens, then projected video tokens).
        """
        self._require_audio()
        _check_video_batch(pixel_values)
        if input_features.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"Audio+video features pair the i-th audio with the i-th video, but got {input_features.shape[0]} "
                f"audio clips and {pixel_values.shape[0]} videos."
            )
        audio = self.get_audio_features(input_features, normalize=False, **kwargs)
        video = self.get_video_features(
            pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, normalize=False, **kwargs
        )
        fused = self.fuse_audio_video_embeddings(audio.pooler_output, video.pooler_output)
        memory = torch.cat(
            [self.audio_fusion_tokens(audio.last_hidden_state), self.fusion_tokens(video.last_hidden_state)], dim=1
        )
        audio.pooler_output = F.normalize(audio.pooler_output, dim=-1)
        video.pooler_output = F.normalize(video.pooler_output, dim=-1)
        return InternVideo2AudioVideoFeatures(
            last_hidden_state=memory,
            pooler_output=F.normalize(fused, dim=-1) if normalize else fused,
            audio_features=audio,
            video_features=video,
        )

    def fusion_tokens(self, video_last_hidden_state: torch.Tensor) -> torch.Tensor:
        """The memory the fusion layers cross-attend to, from the vision encoder's last hidden state: the tokens
        themselves (1B), or their projection to `vision_token_projection_size` (6B)."""
        if self.vision_token_projection is None:
            return video_last_hidden_state
        return self.vision_token_projection(video_last_hidden_state)

    def audio_fusion_tokens(self, audio_last_hidden_state: torch.Tensor) -> torch.Tensor:
        """The fusion layers' memory from the raw BEATs tokens: their projection to `vision_token_projection_size`
        (the original `av_concat_audio_proj`)."""
        self._require_audio()
        return self.audio_token_projection(audio_last_hidden_state)

    def clamped_temperature(self) -> torch.Tensor:
        return self.temperature.clamp(self.config.temperature_min, self.config.temperature_max)

    def clamp_temperature_(self) -> None:
        """Clamp the temperature in place to `[temperature_min, temperature_max]` (the original does it at every
        training forward)."""
        with torch.no_grad():
            self.temperature.clamp_(self.config.temperature_min, self.config.temperature_max)

    def contrastive_loss(
        self,
        video_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        sample_ids: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        original_gradient_scaling: bool = False,
    ) -> torch.Tensor:
        """VTC of normalised embeddings with the learned temperature (symmetric InfoNCE gathered across processes,
        pairs sharing a sample id all positive; see `losses/contrastive.py`); a mean over the pairs of the step."""
        loss = video_text_contrastive_loss(
            video_embeds, text_embeds, self.temperature, sample_ids=sample_ids,
            original_gradient_scaling=original_gradient_scaling,
        )  # fmt: skip
        return mean_over_step(loss, video_embeds.shape[0], num_items_in_batch)

    # -- forward -----------------------------------------------------------------------------------------------------
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        interpolate_pos_encoding: bool | None = None,
        sample_ids: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2Output:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(video_batch_size, num_frames, num_channels, height, width)`):
            Normalised frames (one image = one frame).
        input_ids, attention_mask (`torch.LongTensor` of shape `(text_batch_size, sequence_length)`):
            Tokenised texts (`[CLS] tokens`, no `[SEP]`, as the original tokenizer).
        input_features (`torch.FloatTensor` of shape `(audio_batch_size, num_frames, num_mel_bins)`, *optional*):
            Audio models only: filterbanks. Give audio, video or both (then the i-th audio goes with the i-th video,
            and `logits_per_audio_video` is returned too).
        return_loss (`bool`): also compute the video-text contrastive loss; the i-th video and i-th text are then a
            pair, so both batches must have the same size. `num_items_in_batch` (pairs of the optimiser step, from
            the Trainer) makes gradient accumulation exact. (The audio losses are in [`InternVideo2ForRetrieval`].)
        sample_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): with `return_loss`, pairs with equal ids
            are all positives (several captions of one video).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if input_ids is None:
            raise ValueError("input_ids (the texts) are required.")
        if pixel_values is None and input_features is None:
            raise ValueError("Give pixel_values (video), input_features (audio) or both.")
        if return_loss:
            if pixel_values is None:
                raise ValueError("return_loss=True computes the video-text contrastive loss: pixel_values are needed.")
            _check_pairs(pixel_values, input_ids, "return_loss=True")
        text = self.get_text_features(input_ids, attention_mask, **kwargs)
        temperature = self.clamped_temperature()
        video = audio = fused = None
        logits_per_video = logits_per_audio = logits_per_audio_video = None
        if pixel_values is not None and input_features is not None:
            both = self.get_audio_video_features(
                input_features, pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs
            )
            video, audio, fused = both.video_features, both.audio_features, both.pooler_output
            logits_per_audio_video = fused @ text.pooler_output.t() / temperature
        elif pixel_values is not None:
            video = self.get_video_features(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        else:
            audio = self.get_audio_features(input_features, **kwargs)
        if video is not None:
            logits_per_video = video.pooler_output @ text.pooler_output.t() / temperature
        if audio is not None:
            logits_per_audio = audio.pooler_output @ text.pooler_output.t() / temperature
        loss = None
        if return_loss:
            if self.training:
                self.clamp_temperature_()
            loss = self.contrastive_loss(video.pooler_output, text.pooler_output, sample_ids, num_items_in_batch)
        return InternVideo2Output(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=None if logits_per_video is None else logits_per_video.t(),
            video_embeds=None if video is None else video.pooler_output,
            text_embeds=text.pooler_output,
            vision_model_output=video,
            text_model_output=text,
            logits_per_audio=logits_per_audio,
            logits_per_text_audio=None if logits_per_audio is None else logits_per_audio.t(),
            logits_per_audio_video=logits_per_audio_video,
            audio_embeds=None if audio is None else audio.pooler_output,
            audio_video_embeds=fused,
            audio_model_output=audio,
        )


# ------------------------------------------------------------------------------------------------------------------
# Matching head, MLM head and stage-2 training (VTC + VTM + MLM)
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2ForRetrieval(InternVideo2PreTrainedModel):
    """The dual encoder [`InternVideo2Model`] (`self.internvideo2`) + the video-text matching head (on the fusion
    path's `[CLS]`) + the MLM head (tied to the word embeddings): matching scores, the original re-ranking
    (`tasks.retrieval.rerank`), and the stage-2 training forward (VTC + VTM + MLM)."""

    _tied_weights_keys = {"mlm_head.decoder.weight": "internvideo2.text_model.embeddings.word_embeddings.weight"}

    def __init__(self, config: InternVideo2Config):
        super().__init__(config)
        self.internvideo2 = InternVideo2Model(config)
        self.matching_head = nn.Linear(config.text_config.hidden_size, 2)
        self.mlm_head = InternVideo2TextMLMHead(config.text_config)
        if config.has_audio:  # the original avtm_head and, when the checkpoint has one, atm_head
            self.audio_video_matching_head = nn.Linear(config.text_config.hidden_size, 2)
            if config.use_audio_matching_head:
                self.audio_matching_head = nn.Linear(config.text_config.hidden_size, 2)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.internvideo2.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.internvideo2.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.mlm_head.decoder = new_embeddings

    # the dual encoder's API, so that retrieval and pipelines take either class
    def get_video_features(self, *args, **kwargs) -> InternVideo2VideoFeatures:
        return self.internvideo2.get_video_features(*args, **kwargs)

    def get_text_features(self, *args, **kwargs) -> BaseModelOutputWithPooling:
        return self.internvideo2.get_text_features(*args, **kwargs)

    def fusion_tokens(self, video_last_hidden_state: torch.Tensor) -> torch.Tensor:
        return self.internvideo2.fusion_tokens(video_last_hidden_state)

    def get_audio_features(self, *args, **kwargs) -> InternVideo2AudioFeatures:
        return self.internvideo2.get_audio_features(*args, **kwargs)

    def get_audio_video_features(self, *args, **kwargs) -> InternVideo2AudioVideoFeatures:
        return self.internvideo2.get_audio_video_features(*args, **kwargs)

    def audio_fusion_tokens(self, audio_last_hidden_state: torch.Tensor) -> torch.Tensor:
        return self.internvideo2.audio_fusion_tokens(audio_last_hidden_state)

    # -- matching ----------------------------------------------------------------------------------------------------
    def matching_head_for(self, modality: str = "video") -> nn.Linear:
        """The matching head of a media modality: `"video"` (the original `itm_head`), `"audio_video"` (`avtm_head`,
        memory = audio tokens then video tokens) or `"audio"` (`atm_head`, only in models trained with it)."""
        if modality not in MEDIA_MODALITIES:
            raise ValueError(f"modality must be one of {MEDIA_MODALITIES}; got {modality!r}.")
        if modality == "video":
            return self.matching_head
        if not self.config.has_audio:
            raise ValueError(f"modality={modality!r} needs the audio-video-text model (config.audio_config is None).")
        if modality == "audio_video":
            return self.audio_video_matching_head
        if not self.config.use_audio_matching_head:
            raise ValueError(
                "This model has no audio-text matching head (the released 6B checkpoint has none): audio retrieval "
                "cannot be re-ranked; rank by similarity alone."
            )
        return self.audio_matching_head

    def has_matching_head(self, modality: str = "video") -> bool:
        """Whether `matching_head_for(modality)` exists."""
        if modality == "video":
            return True
        return self.config.has_audio and (modality == "audio_video" or self.config.use_audio_matching_head)

    def media_fusion_tokens(
        self,
        modality: str = "video",
        pixel_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
    ) -> torch.Tensor:
        """The fusion memory of a media modality from raw inputs: projected video tokens, projected audio tokens, or
        audio tokens followed by video tokens (`"audio_video"`)."""
        self.matching_head_for(modality)  # validates the modality against this model
        dual = self.internvideo2
        if modality == "audio_video":
            return dual.get_audio_video_features(
                input_features, pixel_values, interpolate_pos_encoding=interpolate_pos_encoding
            ).last_hidden_state
        if modality == "audio":
            return dual.audio_fusion_tokens(dual.get_audio_features(input_features).last_hidden_state)
        video = dual.get_video_features(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        return dual.fusion_tokens(video.last_hidden_state)

    def fusion_cls(self, text_hidden_states, attention_mask, video_tokens) -> torch.Tensor:
        """`[CLS]` state of the fusion path for (text, video) pairs: the matching head's input."""
        return self.internvideo2.text_model.fuse_cls(text_hidden_states, attention_mask, video_tokens)

    def matching_scores(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        video_tokens: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        input_features: torch.Tensor | None = None,
        modality: str = "video",
    ) -> InternVideo2MatchingOutput:
        """Matching-head scores of (media i, text i) pairs.

        Give the media as raw inputs (`pixel_values` and/or `input_features`, as `modality` needs) or as precomputed
        fusion memory `video_tokens` (`media_fusion_tokens(modality, ...)`; for video
        `fusion_tokens(get_video_features(...).last_hidden_state)`), and the texts as `input_ids` or as precomputed
        text-path `text_hidden_states` (`get_text_features(...).last_hidden_state`); `attention_mask` is the texts'
        padding mask. A batch of one item (media or text) is paired with every item of the other batch.
        `modality`: `"video"` (default, `matching_head`), `"audio_video"` or `"audio"` (see `matching_head_for`).
        """
        head = self.matching_head_for(modality)
        raw_media = pixel_values is not None or input_features is not None
        if raw_media == (video_tokens is not None):
            raise ValueError("Pass exactly one of the raw media (`pixel_values` / `input_features`) and `video_tokens`.")
        if (input_ids is None) == (text_hidden_states is None):
            raise ValueError("Pass exactly one of `input_ids` and `text_hidden_states`.")
        if video_tokens is None:
            video_tokens = self.media_fusion_tokens(modality, pixel_values, input_features, interpolate_pos_encoding)
        if text_hidden_states is None:
            text_hidden_states = self.get_text_features(input_ids, attention_mask).last_hidden_state
        num_videos, num_texts = video_tokens.shape[0], text_hidden_states.shape[0]
        if num_videos != num_texts:
            if num_videos == 1:
                video_tokens = video_tokens.expand(num_texts, -1, -1)
            elif num_texts == 1:
                text_hidden_states = text_hidden_states.expand(num_videos, -1, -1)
                attention_mask = None if attention_mask is None else attention_mask.expand(num_videos, -1)
            else:
                raise ValueError(
                    f"matching_scores scores (video i, text i) pairs: got {num_videos} videos and {num_texts} texts "
                    "(a batch of one is paired with every item of the other)."
                )
        logits = head(self.fusion_cls(text_hidden_states, attention_mask, video_tokens))
        return InternVideo2MatchingOutput(
            logits=logits, match_logits=logits[:, 1], match_probabilities=logits.softmax(dim=-1)[:, 1]
        )

    # -- training ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _sample_negatives(similarity: torch.Tensor, sample_ids: torch.Tensor | None, hard: bool) -> torch.Tensor:
        """One negative column per row: drawn from `softmax(similarity)` with positives excluded (hard negatives, as
        the original) or uniformly among non-positives."""
        batch_size = similarity.shape[0]
        if sample_ids is None:
            positive = torch.eye(batch_size, dtype=torch.bool, device=similarity.device)
        else:
            positive = sample_ids.view(-1, 1) == sample_ids.view(1, -1)
        if bool(positive.all(dim=1).any()):
            raise ValueError("VTM needs at least one negative per sample: a sample's id is shared by the whole batch.")
        if hard:
            weights = similarity.softmax(dim=1).masked_fill(positive, 0.0)
            weights = torch.nan_to_num(weights, nan=0.01, posinf=0.01, neginf=0.01)
        else:
            weights = (~positive).float()
        return torch.multinomial(weights, 1).squeeze(1)

    def matching_loss(
        self,
        video_tokens: torch.Tensor,
        text_hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        similarity: torch.Tensor,
        sample_ids: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        hard_negatives: bool = True,
        modality: str = "video",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """VTM: the matching head on the positive pairs and, per video and per text, one negative drawn from the
        local `similarity` (`(batch, batch)`, video rows); cross-entropy over the 3 pairs of each sample. With
        `modality="audio"` / `"audio_video"` the same with that memory and head (the original ATM / AVTM)."""
        head = self.matching_head_for(modality)
        with torch.no_grad():
            negative_text = self._sample_negatives(similarity, sample_ids, hard_negatives)  # for each video
            negative_video = self._sample_negatives(similarity.t(), sample_ids, hard_negatives)  # for each text
        mask = attention_mask
        all_tokens = torch.cat([video_tokens, video_tokens[negative_video], video_tokens])
        all_text = torch.cat([text_hidden, text_hidden, text_hidden[negative_text]])
        all_mask = None if mask is None else torch.cat([mask, mask, mask[negative_text]])
        logits = head(self.fusion_cls(all_text, all_mask, all_tokens))
        batch_size = video_tokens.shape[0]
        labels = torch.cat(
            [torch.ones(batch_size, dtype=torch.long), torch.zeros(2 * batch_size, dtype=torch.long)]
        ).to(logits.device)
        # per pair: the positive and its two negatives
        return mean_over_step(F.cross_entropy(logits.float(), labels), batch_size, num_items_in_batch), logits

    def masked_language_modeling_loss(
        self,
        masked_input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None,
        video_tokens: torch.Tensor,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """MLM of the corrupted captions (drawn by the caller, `training.masking.mask_tokens_for_mlm`) with the video
        tokens as cross-attention memory; a mean over the masked tokens of the step (`num_items_in_batch`)."""
        text = self.internvideo2.text_model
        text_hidden = text(input_ids=masked_input_ids, attention_mask=attention_mask, mode="text").last_hidden_state
        logits = self.mlm_head(text.fuse(text_hidden, attention_mask, video_tokens).last_hidden_state)
        # nothing masked (tiny batches): a zero that keeps the graph connected
        return token_cross_entropy(logits, labels, num_items_in_batch), logits

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        sample_ids: torch.Tensor | None = None,
        return_loss: bool = True,
        interpolate_pos_encoding: bool | None = None,
        mlm_input_ids: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        hard_negatives: bool = True,
        original_gradient_scaling: bool = False,
        num_masked_tokens_in_batch: int | torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_losses: tuple[str, ...] | list[str] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ForRetrievalOutput:
        r"""
        Stage-2 training step on paired videos and texts (the i-th video and the i-th text are a positive pair).

        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
            Normalised frames (one image = one frame).
        input_ids, attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Tokenised captions.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_patches)`, *optional*):
            Video tokens to drop before the encoder (the original trains with 80 % of video / 50 % of image tokens
            dropped at random); the pooled feature and the fusion memory then come from the visible tokens only.
        sample_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Pairs with equal ids are all positives for VTC and never negatives for VTM.
        return_loss (`bool`, defaults to `True`): compute VTC and VTM, and MLM when its labels are given.
            `num_items_in_batch` (pairs of the optimiser step, from the Trainer) turns the per-pair means of VTC and
            VTM into sums divided by it.
        mlm_input_ids, mlm_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            The corrupted captions and the MLM targets (-100 = not masked), drawn by the data side
            (`training.masking.mask_tokens_for_mlm`); `num_masked_tokens_in_batch` (masked tokens of the step) makes
            their mean exact under accumulation.
        hard_negatives (`bool`, defaults to `True`): draw the VTM negatives from the similarity (as the original)
            instead of uniformly.
        original_gradient_scaling (`bool`, defaults to `False`): VTC with the original's gather, whose encoder
            gradients are divided by the number of processes (see `losses/contrastive.py`).
        input_features (`torch.FloatTensor` of shape `(batch_size, num_frames, num_mel_bins)`, *optional*):
            Audio-video-text models: the filterbank of each clip's sound (the i-th audio goes with the i-th video and
            text). Adds the audio losses named in `audio_losses`.
        audio_losses (`tuple[str]`, *optional*): which of `AUDIO_LOSSES` to compute (`None`: the released recipe's
            `("avtc", "avtm", "avmlm")`): `atc` audio-text, `avc` audio-video and `avtc` fused-audio+video-text
            contrastive; `atm` / `avtm` matching (hard negatives from the audio / fused similarity; `atm` needs the
            audio matching head); `amlm` / `avmlm` MLM of the same corrupted captions with the audio tokens / the
            audio then video tokens as memory. The trainer passes the losses with a non-zero weight.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        _check_video_batch(pixel_values)
        _check_pairs(pixel_values, input_ids, "The training forward")
        if (mlm_input_ids is None) != (mlm_labels is None):
            raise ValueError("Pass both `mlm_input_ids` and `mlm_labels` (the corruption drawn outside), or neither.")
        audio_losses = tuple(DEFAULT_AUDIO_LOSSES if audio_losses is None else audio_losses)
        unknown = sorted(set(audio_losses) - set(AUDIO_LOSSES))
        if unknown:
            raise ValueError(f"Unknown audio losses {unknown}; expected names from {AUDIO_LOSSES}.")
        if input_features is not None:
            self.internvideo2._require_audio()
            if input_features.shape[0] != pixel_values.shape[0]:
                raise ValueError(
                    f"input_features holds {input_features.shape[0]} clips for {pixel_values.shape[0]} videos."
                )
        dual = self.internvideo2
        if self.training:
            dual.clamp_temperature_()
        video = dual.get_video_features(
            pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, bool_masked_pos=bool_masked_pos,
            normalize=False, **kwargs,
        )  # fmt: skip
        text = dual.get_text_features(input_ids, attention_mask)
        video_embeds, text_embeds = F.normalize(video.pooler_output, dim=-1), text.pooler_output
        logits_per_video = video_embeds @ text_embeds.t() / dual.temperature
        audio = None
        logits_per_audio = logits_per_audio_video = None
        if input_features is not None:
            audio = dual.get_audio_features(input_features, normalize=False)
            audio_embeds = F.normalize(audio.pooler_output, dim=-1)
            fused_embeds = F.normalize(dual.fuse_audio_video_embeddings(audio.pooler_output, video.pooler_output), dim=-1)
            logits_per_audio = audio_embeds @ text_embeds.t() / dual.temperature
            logits_per_audio_video = fused_embeds @ text_embeds.t() / dual.temperature

        losses, matching_logits, mlm_logits = {}, None, None
        if return_loss:
            video_tokens = dual.fusion_tokens(video.last_hidden_state)
            pair_args = (sample_ids, num_items_in_batch, original_gradient_scaling)
            losses["loss_vtc"] = dual.contrastive_loss(video_embeds, text_embeds, *pair_args)
            losses["loss_vtm"], matching_logits = self.matching_loss(
                video_tokens, text.last_hidden_state, attention_mask, logits_per_video.detach(), sample_ids,
                num_items_in_batch, hard_negatives,
            )  # fmt: skip
            if mlm_labels is not None:
                losses["loss_mlm"], mlm_logits = self.masked_language_modeling_loss(
                    mlm_input_ids, mlm_labels, attention_mask, video_tokens, num_masked_tokens_in_batch
                )
            if audio is not None:
                audio_tokens = dual.audio_fusion_tokens(audio.last_hidden_state)
                memory = {"audio": audio_tokens, "audio_video": torch.cat([audio_tokens, video_tokens], dim=1)}
                similarity = {"audio": logits_per_audio, "audio_video": logits_per_audio_video}
                contrastive = {"atc": (audio_embeds, text_embeds), "avc": (audio_embeds, video_embeds),
                               "avtc": (fused_embeds, text_embeds)}  # fmt: skip
                for name in audio_losses:
                    if name in contrastive:
                        losses[f"loss_{name}"] = dual.contrastive_loss(*contrastive[name], *pair_args)
                    elif name in ("atm", "avtm"):
                        modality = "audio" if name == "atm" else "audio_video"
                        losses[f"loss_{name}"] = self.matching_loss(
                            memory[modality], text.last_hidden_state, attention_mask, similarity[modality].detach(),
                            sample_ids, num_items_in_batch, hard_negatives, modality=modality,
                        )[0]  # fmt: skip
                    elif mlm_labels is not None:  # amlm / avmlm: the same corrupted captions, another memory
                        losses[f"loss_{name}"] = self.masked_language_modeling_loss(
                            mlm_input_ids, mlm_labels, attention_mask,
                            memory["audio" if name == "amlm" else "audio_video"], num_masked_tokens_in_batch,
                        )[0]  # fmt: skip
        return InternVideo2ForRetrievalOutput(
            loss=sum(losses.values()) if losses else None,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            matching_logits=matching_logits,
            mlm_logits=mlm_logits,
            logits_per_audio=logits_per_audio,
            logits_per_audio_video=logits_per_audio_video,
            **losses,
        )


__all__ = [
    "InternVideo2TextPreTrainedModel",
    "InternVideo2TextModel",
    "InternVideo2TextForMaskedLM",
    "InternVideo2PreTrainedModel",
    "InternVideo2Model",
    "InternVideo2ForRetrieval",
    "InternVideo2Output",
    "InternVideo2ForRetrievalOutput",
    "InternVideo2VideoFeatures",
    "InternVideo2AudioFeatures",
    "InternVideo2AudioVideoFeatures",
    "InternVideo2MatchingOutput",
    "MEDIA_MODALITIES",
    "AUDIO_LOSSES",
    "DEFAULT_AUDIO_LOSSES",
]

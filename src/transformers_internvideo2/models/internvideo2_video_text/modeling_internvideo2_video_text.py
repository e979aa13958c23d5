"""InternVideo2 stage-2 video-text models (arXiv 2403.15377, the original `multi_modality/models/`).

    video (B, T, C, H, W) -> InternVideo2 vision encoder -> video tokens (B, 1+N, Cv), pooled feature (B, 768)
        pooled -> vision_projection -> L2-normalise                               -> video embedding
    text ids (B, L)       -> BERT layers [0, fusion_layer)  ("text path")        -> text hidden states
        [CLS] state -> text_projection -> L2-normalise                            -> text embedding
    text hidden states + video tokens -> BERT layers [fusion_layer, end) with cross-attention ("fusion path")
        [CLS] -> matching_head -> logit of class 1 = "the text describes the video"
        all   -> MLM head (tied to the word embeddings)

Retrieval ranks by cosine similarity and re-ranks the top-k candidates by the matching head (as the original
`tasks/retrieval_utils.evaluation()`); training combines contrastive (VTC), matching (VTM, hard negatives) and masked
language modelling (MLM) losses.
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
from transformers.modeling_outputs import BaseModelOutputWithCrossAttentions, MaskedLMOutput, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from ...losses.contrastive import video_text_contrastive_loss as _contrastive_loss
from ..remote_code import RemoteCodeMixin
from .configuration_internvideo2_video_text import (
    InternVideo2Config,
    InternVideo2TextConfig,
)
from ..internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForPreTraining, InternVideo2VisionModel, eager_attention_forward


# The original pads with an additive -10000 (not the dtype's minimum); kept so that padded positions weigh exactly
# what they weighed in the original (in float32 both underflow to 0 after softmax).
_MASK_VALUE = -10000.0
TEXT_MODES = ("text", "fusion", "full")


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
        L2-normalised projected video features (see [`InternVideo2Model.get_video_features`]).
    text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`):
        L2-normalised projected text features (see [`InternVideo2Model.get_text_features`]).
    vision_model_output ([`InternVideo2VisionModelOutput`]):
        Output of the vision encoder: `last_hidden_state` (the video tokens) and `pooler_output` (raw pooled feature).
    text_model_output ([`BaseModelOutputWithCrossAttentions`]):
        Output of the text path of the text encoder.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    vision_model_output: ModelOutput | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self) -> tuple[Any]:
        return _nested_to_tuple(self, ("vision_model_output", "text_model_output"))


@dataclass
class InternVideo2VideoEncoding(ModelOutput):
    r"""
    Everything one pass of the vision encoder gives, for feature extraction and retrieval over collections.

    video_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        `vision_projection(pooler_output)`, L2-normalised unless `normalize=False`.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, pooler_output_size)`):
        Raw attention-pooled feature of the vision encoder (the original `x_pool_vis`), before projection.
    video_tokens (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches, encoder_width)`):
        The token sequence the fusion layers attend to (the 6B model's token projection applied).
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, 1 + num_patches, vision_hidden_size)`):
        Raw output of the last vision block (the original `x_vis`).
    """

    video_embeds: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    video_tokens: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


@dataclass
class InternVideo2TextEncoding(ModelOutput):
    r"""
    text_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`):
        `text_projection` of the `[CLS]` state of the text path, L2-normalised unless `normalize=False`.
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
        Hidden states of the text path: the input of the fusion path (matching, MLM).
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
        The padding mask used, to pass on to the fusion path.
    """

    text_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


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
class InternVideo2RerankOutput(ModelOutput):
    r"""
    video_to_text (`torch.FloatTensor` of shape `(num_videos, num_texts)`):
        For each video, the matching-head "match" logit of its top-k texts by cosine; every other entry is `fill_value`
        (-100, as the original), so each top-k candidate ranks above every other text.
    text_to_video (`torch.FloatTensor` of shape `(num_texts, num_videos)`):
        The same for each text over its top-k videos.
    video_to_text_candidates (`torch.LongTensor` of shape `(num_videos, k)`):
        Indices of the top-k texts per video (by cosine).
    text_to_video_candidates (`torch.LongTensor` of shape `(num_texts, k)`):
        Indices of the top-k videos per text (by cosine).
    """

    video_to_text: torch.FloatTensor | None = None
    text_to_video: torch.FloatTensor | None = None
    video_to_text_candidates: torch.LongTensor | None = None
    text_to_video_candidates: torch.LongTensor | None = None


@dataclass
class InternVideo2ForRetrievalOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        `vtc_loss_weight * loss_vtc + vtm_loss_weight * loss_vtm + mlm_loss_weight * loss_mlm` (components with weight 0
        are not computed).
    loss_vtc (`torch.FloatTensor`, *optional*): video-text contrastive loss.
    loss_vtm (`torch.FloatTensor`, *optional*): video-text matching loss (positives + hard negatives).
    loss_mlm (`torch.FloatTensor`, *optional*): masked language modelling loss conditioned on the video.
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
            if encoder_hidden_states is None:
                raise ValueError(
                    f"Layer {self.layer_idx} is a fusion layer and needs the video tokens (encoder_hidden_states)."
                )
            hidden_states = self.crossattention(hidden_states, encoder_attention_mask, encoder_hidden_states, **kwargs)
        return self.output(self.intermediate(hidden_states), hidden_states)


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


class InternVideo2TextPreTrainedModel(RemoteCodeMixin, PreTrainedModel):
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
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)


# ------------------------------------------------------------------------------------------------------------------
# MLM corruption
# ------------------------------------------------------------------------------------------------------------------
def mask_tokens_for_mlm(
    input_ids: torch.Tensor,
    config: InternVideo2TextConfig,
    probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original MLM corruption: each token is selected with `probability` (never `[PAD]` or `[CLS]`); of the
    selected, 80 % become `[MASK]`, half of the rest a random id, the others stay. Returns `(masked_ids, labels)` with
    labels -100 on unselected positions."""
    device = input_ids.device

    def bernoulli(p: float) -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device) < p

    selected = bernoulli(probability)
    selected &= input_ids != config.pad_token_id
    selected &= input_ids != config.cls_token_id
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    masked_ids = input_ids.clone()
    to_mask = selected & bernoulli(0.8)
    masked_ids[to_mask] = config.mask_token_id
    to_random = selected & ~to_mask & bernoulli(0.5)
    random_ids = torch.randint(config.vocab_size, input_ids.shape, generator=generator, device=device)
    masked_ids[to_random] = random_ids[to_random]
    return masked_ids, labels


# ------------------------------------------------------------------------------------------------------------------
# Video-text models
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2VisionTokenProjection(nn.Module):
    """6B only: `LayerNorm(Linear(x))` on every video token before the text encoder attends to them (the original
    `av_concat_vision_proj`)."""

    def __init__(self, config: InternVideo2Config):
        super().__init__()
        self.dense = nn.Linear(config.vision_config.hidden_size, config.vision_token_projection_size)
        self.layer_norm = nn.LayerNorm(config.vision_token_projection_size, eps=config.vision_config.layer_norm_eps)

    def forward(self, video_tokens: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.dense(video_tokens))


class InternVideo2PreTrainedModel(RemoteCodeMixin, PreTrainedModel):
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


class InternVideo2Model(InternVideo2PreTrainedModel):
    """CLIP-style video-text dual encoder of the stage-2 models.

    Single images are 1-frame clips (`pixel_values` of shape `(B, 1, C, H, W)`); they use the image position table
    (1B: a learned one; 6B: the time-mean of the video table), as the original.
    """

    def __init__(self, config: InternVideo2Config):
        super().__init__(config)
        self._build_dual_encoder(config)
        self.post_init()

    def _build_dual_encoder(self, config: InternVideo2Config) -> None:
        vision_class = InternVideo2ForPreTraining if config.keep_vision_distillation_heads else InternVideo2VisionModel
        self.vision_model = vision_class(config.vision_config)
        self.text_model = InternVideo2TextModel(config.text_config)
        self.vision_token_projection = (
            InternVideo2VisionTokenProjection(config) if config.use_vision_token_projection else None
        )
        self.vision_projection = nn.Linear(config.vision_config.pooler_output_size, config.projection_dim)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim)
        self.temperature = nn.Parameter(torch.tensor(float(config.temperature_init)))

    # -- encoders ----------------------------------------------------------------------------------------------------
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

    def _run_vision(self, pixel_values, bool_masked_pos=None, interpolate_pos_encoding=False, **kwargs):
        _check_video_batch(pixel_values)
        return self.vision_backbone(
            pixel_values, bool_masked_pos=bool_masked_pos, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs
        )

    def _video_tokens(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        if self.vision_token_projection is None:
            return last_hidden_state
        return self.vision_token_projection(last_hidden_state)

    def _project_video(self, pooled: torch.Tensor, normalize: bool) -> torch.Tensor:
        embeds = self.vision_projection(pooled)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def _project_text(
        self, text_hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, normalize: bool
    ) -> torch.Tensor:
        if self.config.text_pooling == "mean":  # masked mean of the text path (a configurable deviation, see config)
            mask = torch.ones_like(text_hidden_states[..., 0]) if attention_mask is None else attention_mask
            mask = mask[..., None].to(text_hidden_states.dtype)
            pooled = (text_hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1)
        else:  # the original: the [CLS] state
            pooled = text_hidden_states[:, 0]
        embeds = self.text_projection(pooled)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def encode_video(
        self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False, normalize: bool = True
    ) -> InternVideo2VideoEncoding:
        """One pass of the vision encoder: projected (normalised) embeddings, raw pooled feature, video tokens.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_channels, height, width)`):
                Normalised frames; one image = one frame.
            interpolate_pos_encoding (`bool`): resample the position embeddings for another frame count/resolution
                (linear in time, bicubic in space, as the original's checkpoint interpolation).
            normalize (`bool`): L2-normalise `video_embeds` (the original retrieval features are normalised).
        """
        outputs = self._run_vision(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        return InternVideo2VideoEncoding(
            video_embeds=self._project_video(outputs.pooler_output, normalize),
            pooler_output=outputs.pooler_output,
            video_tokens=self._video_tokens(outputs.last_hidden_state),
            last_hidden_state=outputs.last_hidden_state,
        )

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, normalize: bool = True
    ) -> InternVideo2TextEncoding:
        """The text path: projected (normalised) `[CLS]` embeddings and the hidden states the fusion path needs."""
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask, mode="text").last_hidden_state
        return InternVideo2TextEncoding(
            text_embeds=self._project_text(hidden, attention_mask, normalize), last_hidden_state=hidden, attention_mask=attention_mask
        )

    def get_video_features(
        self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False, normalize: bool = True
    ) -> torch.Tensor:
        """`(batch_size, projection_dim)` video embeddings: `vision_projection(pooled)`, L2-normalised by default,
        exactly as the original retrieval evaluation. See [`encode_video`] for the raw pooled feature and tokens."""
        return self.encode_video(pixel_values, interpolate_pos_encoding, normalize).video_embeds

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, normalize: bool = True
    ) -> torch.Tensor:
        """`(batch_size, projection_dim)` text embeddings: `text_projection` of the `[CLS]` state after the text
        path (layers below `fusion_layer`), L2-normalised by default, exactly as the original."""
        return self.encode_text(input_ids, attention_mask, normalize).text_embeds

    def get_video_tokens(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """`(batch_size, 1 + num_patches, encoder_width)` video tokens the fusion layers attend to (the raw last
        vision block output; projected for 6B)."""
        return self.encode_video(pixel_values, interpolate_pos_encoding).video_tokens

    def clamp_temperature_(self) -> None:
        """Clamp the temperature in place to `[temperature_min, temperature_max]` (the original does it at every
        training forward)."""
        with torch.no_grad():
            self.temperature.clamp_(self.config.temperature_min, self.config.temperature_max)

    # -- forward -----------------------------------------------------------------------------------------------------
    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        interpolate_pos_encoding: bool = False,
        sample_ids: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2Output:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(video_batch_size, num_frames, num_channels, height, width)`):
            Normalised frames (one image = one frame).
        input_ids, attention_mask (`torch.LongTensor` of shape `(text_batch_size, sequence_length)`):
            Tokenised texts (`[CLS] tokens`, no `[SEP]`, as the original tokenizer).
        return_loss (`bool`): also compute the contrastive loss; the i-th video and i-th text are then a pair, so
            both batches must have the same size.
        sample_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*): with `return_loss`, pairs with equal ids
            are all positives (several captions of one video).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        if return_loss and pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"return_loss=True pairs the i-th video with the i-th text, but got {pixel_values.shape[0]} videos and "
                f"{input_ids.shape[0]} texts."
            )
        vision_outputs = self._run_vision(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        text_outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, mode="text", **kwargs)
        video_embeds = self._project_video(vision_outputs.pooler_output, normalize=True)
        text_embeds = self._project_text(text_outputs.last_hidden_state, attention_mask, normalize=True)
        loss = None
        if return_loss:
            if self.training:
                self.clamp_temperature_()
            loss = video_text_contrastive_loss(
                video_embeds, text_embeds, self.temperature, sample_ids, num_items_in_batch
            )
        temperature = self.temperature.clamp(self.config.temperature_min, self.config.temperature_max)
        logits_per_video = video_embeds @ text_embeds.t() / temperature
        return InternVideo2Output(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            vision_model_output=vision_outputs,
            text_model_output=text_outputs,
        )


def video_text_contrastive_loss(
    video_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    temperature: torch.Tensor,
    sample_ids: torch.Tensor | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    original_gradient_scaling: bool = False,
) -> torch.Tensor:
    """VTC loss of the package (`contrastive.video_text_contrastive_loss`: symmetric InfoNCE of `cos / temperature`,
    gathered across processes, pairs sharing a sample id all positive). It averages over the local pairs; with
    `num_items_in_batch` (pairs across accumulated batches) the average becomes a sum divided by it.
    `original_gradient_scaling=True` reproduces the original's gather (encoder gradients divided by the world size)."""
    loss = _contrastive_loss(
        video_embeds, text_embeds, temperature, sample_ids=sample_ids, original_gradient_scaling=original_gradient_scaling
    )
    if num_items_in_batch is None:
        return loss
    return loss * video_embeds.shape[0] / num_items_in_batch


# ------------------------------------------------------------------------------------------------------------------
# Retrieval: matching head, re-ranking, training with VTC + VTM + MLM
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2ForRetrieval(InternVideo2Model):
    """[`InternVideo2Model`] + the video-text matching head (on the fusion path's `[CLS]`) + the MLM head (tied to the
    word embeddings): matching scores, the original re-ranking evaluation, and stage-2 training (VTC + VTM + MLM)."""

    _tied_weights_keys = {"mlm_head.decoder.weight": "text_model.embeddings.word_embeddings.weight"}

    def __init__(self, config: InternVideo2Config):
        InternVideo2PreTrainedModel.__init__(self, config)
        self._build_dual_encoder(config)
        self.matching_head = nn.Linear(config.text_config.hidden_size, 2)
        self.mlm_head = InternVideo2TextMLMHead(config.text_config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.mlm_head.decoder = new_embeddings

    # -- matching ----------------------------------------------------------------------------------------------------
    def _fusion_cls(self, text_hidden_states, attention_mask, video_tokens) -> torch.Tensor:
        out = self.text_model.fuse(text_hidden_states, attention_mask, video_tokens).last_hidden_state
        return out[:, 0]

    def matching_scores(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        video_tokens: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> InternVideo2MatchingOutput:
        """Matching-head scores of (video i, text i) pairs.

        Give the videos as `pixel_values` or as precomputed `video_tokens` ([`get_video_tokens`]), and the texts as
        `input_ids` or as precomputed text-path `text_hidden_states` ([`encode_text`]); `attention_mask` is the texts'
        padding mask. A batch of one video (or one text) is paired with every item of the other batch.
        """
        if (pixel_values is None) == (video_tokens is None):
            raise ValueError("Pass exactly one of `pixel_values` and `video_tokens`.")
        if (input_ids is None) == (text_hidden_states is None):
            raise ValueError("Pass exactly one of `input_ids` and `text_hidden_states`.")
        if video_tokens is None:
            video_tokens = self.get_video_tokens(pixel_values, interpolate_pos_encoding)
        if text_hidden_states is None:
            text_hidden_states = self.encode_text(input_ids, attention_mask).last_hidden_state
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
        logits = self.matching_head(self._fusion_cls(text_hidden_states, attention_mask, video_tokens))
        return InternVideo2MatchingOutput(
            logits=logits, match_logits=logits[:, 1], match_probabilities=logits.softmax(dim=-1)[:, 1]
        )

    @torch.no_grad()
    def rerank(
        self,
        similarity: torch.Tensor,
        video_tokens: torch.Tensor,
        text_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        k: int | None = None,
        text_hidden_states: torch.Tensor | None = None,
        batch_size: int = 32,
        fill_value: float = -100.0,
    ) -> InternVideo2RerankOutput:
        """Re-rank retrieval candidates with the matching head, as the original `evaluation()`.

        For every video the `k` texts with the highest cosine similarity, and for every text the `k` best videos, are
        scored by the matching head (logit of "match"); the score replaces the similarity, every non-candidate gets
        `fill_value` (-100). The cosine is not blended in: inside the top-k the order is the matching head's.
        Each (video, text) pair that is a candidate in either direction is scored once.

        Args:
            similarity (`torch.FloatTensor` of shape `(num_videos, num_texts)`): cosine similarities of the
                normalised embeddings (`video_embeds @ text_embeds.T`).
            video_tokens (`torch.FloatTensor` of shape `(num_videos, num_tokens, encoder_width)`): from
                [`get_video_tokens`] / [`encode_video`] (may live on the CPU; moved per batch).
            text_ids, text_mask (`torch.LongTensor` of shape `(num_texts, sequence_length)`): tokenised texts; or
            text_hidden_states (`torch.FloatTensor`): their text-path hidden states ([`encode_text`]) with `text_mask`.
            k (`int`, *optional*): candidates per query; defaults to `config.matching_rerank_k` (128), capped by the
                collection size.
            batch_size (`int`): pairs per matching-head batch (32 as the original).
        """
        num_videos, num_texts = similarity.shape
        if video_tokens.shape[0] != num_videos:
            raise ValueError(f"similarity has {num_videos} rows (videos) but video_tokens holds {video_tokens.shape[0]}.")
        if (text_ids is None) == (text_hidden_states is None):
            raise ValueError("Pass exactly one of `text_ids` and `text_hidden_states`.")
        device = self.vision_projection.weight.device
        if text_hidden_states is None:
            text_hidden_states = torch.cat(
                [
                    self.encode_text(
                        text_ids[i : i + batch_size].to(device),
                        None if text_mask is None else text_mask[i : i + batch_size].to(device),
                    ).last_hidden_state
                    for i in range(0, num_texts, batch_size)
                ]
            )
        if text_hidden_states.shape[0] != num_texts:
            raise ValueError(f"similarity has {num_texts} columns (texts) but {text_hidden_states.shape[0]} texts given.")
        k = self.config.matching_rerank_k if k is None else k
        k_texts, k_videos = min(k, num_texts), min(k, num_videos)
        text_candidates = similarity.topk(k_texts, dim=1).indices  # (num_videos, k)
        video_candidates = similarity.t().topk(k_videos, dim=1).indices  # (num_texts, k)

        pairs = torch.zeros(num_videos, num_texts, dtype=torch.bool, device=similarity.device)
        pairs.scatter_(1, text_candidates, True)
        pairs.t().scatter_(1, video_candidates, True)
        video_index, text_index = pairs.nonzero(as_tuple=True)
        scores = torch.empty(video_index.shape[0], dtype=torch.float32, device=similarity.device)
        for start in range(0, video_index.shape[0], batch_size):
            v = video_index[start : start + batch_size]
            t = text_index[start : start + batch_size]
            mask = None if text_mask is None else text_mask[t.to(text_mask.device)].to(device)
            cls = self._fusion_cls(
                text_hidden_states[t.to(text_hidden_states.device)].to(device),
                mask,
                video_tokens[v.to(video_tokens.device)].to(device),
            )
            scores[start : start + batch_size] = self.matching_head(cls)[:, 1].float().to(scores.device)
        pair_scores = torch.full((num_videos, num_texts), fill_value, dtype=torch.float32, device=similarity.device)
        pair_scores[video_index, text_index] = scores

        video_to_text = torch.full_like(pair_scores, fill_value)
        video_to_text.scatter_(1, text_candidates, pair_scores.gather(1, text_candidates))
        text_to_video = torch.full_like(pair_scores.t(), fill_value)
        text_to_video.scatter_(1, video_candidates, pair_scores.t().gather(1, video_candidates))
        return InternVideo2RerankOutput(
            video_to_text=video_to_text,
            text_to_video=text_to_video,
            video_to_text_candidates=text_candidates,
            text_to_video_candidates=video_candidates,
        )

    # -- training ----------------------------------------------------------------------------------------------------
    def _sample_negatives(self, similarity: torch.Tensor, sample_ids: torch.Tensor | None) -> torch.Tensor:
        """One negative column per row: drawn from `softmax(similarity)` with positives excluded (hard negatives, as
        the original) or uniformly among non-positives."""
        batch_size = similarity.shape[0]
        if sample_ids is None:
            positive = torch.eye(batch_size, dtype=torch.bool, device=similarity.device)
        else:
            positive = sample_ids.view(-1, 1) == sample_ids.view(1, -1)
        if bool(positive.all(dim=1).any()):
            raise ValueError("VTM needs at least one negative per sample: a sample's id is shared by the whole batch.")
        if self.config.vtm_hard_negatives:
            weights = similarity.softmax(dim=1).masked_fill(positive, 0.0)
            weights = torch.nan_to_num(weights, nan=0.01, posinf=0.01, neginf=0.01)
        else:
            weights = (~positive).float()
        return torch.multinomial(weights, 1).squeeze(1)

    def _vtm_loss(self, video_tokens, text_hidden, attention_mask, video_embeds, text_embeds, sample_ids, n_items):
        with torch.no_grad():
            similarity = video_embeds @ text_embeds.t() / self.temperature
            negative_text = self._sample_negatives(similarity, sample_ids)  # for each video
            negative_video = self._sample_negatives(similarity.t(), sample_ids)  # for each text
        mask = attention_mask
        all_tokens = torch.cat([video_tokens, video_tokens[negative_video], video_tokens])
        all_text = torch.cat([text_hidden, text_hidden, text_hidden[negative_text]])
        all_mask = None if mask is None else torch.cat([mask, mask, mask[negative_text]])
        logits = self.matching_head(self._fusion_cls(all_text, all_mask, all_tokens))
        batch_size = video_tokens.shape[0]
        labels = torch.cat(
            [torch.ones(batch_size, dtype=torch.long), torch.zeros(2 * batch_size, dtype=torch.long)]
        ).to(logits.device)
        if n_items is None:
            return F.cross_entropy(logits.float(), labels), logits
        # per pair: the positive and its two negatives, summed over the batch and divided by the pairs across steps
        return F.cross_entropy(logits.float(), labels, reduction="sum") / (3 * n_items), logits

    def _mlm_loss(self, input_ids, attention_mask, video_tokens, masked_ids=None, labels=None):
        if (masked_ids is None) != (labels is None):
            raise ValueError("Pass both `mlm_input_ids` and `mlm_labels` (a corruption drawn outside), or neither.")
        if masked_ids is None:
            masked_ids, labels = mask_tokens_for_mlm(input_ids, self.config.text_config, self.config.mlm_probability)
        text_hidden = self.text_model(input_ids=masked_ids, attention_mask=attention_mask, mode="text").last_hidden_state
        fused = self.text_model.fuse(text_hidden, attention_mask, video_tokens).last_hidden_state
        logits = self.mlm_head(fused)
        if not bool((labels != -100).any()):
            # nothing was masked (tiny batches): a zero that keeps the graph connected
            return logits.sum() * 0.0, logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        return loss, logits

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        sample_ids: torch.Tensor | None = None,
        return_loss: bool = True,
        interpolate_pos_encoding: bool = False,
        mlm_input_ids: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        original_gradient_scaling: bool = False,
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
        return_loss (`bool`, defaults to `True`): compute the losses (VTC, VTM, MLM with their config weights).
            `num_items_in_batch` (pairs across accumulated batches) turns the per-pair means of VTC and VTM into sums
            divided by it; the MLM loss is the mean over this batch's masked tokens (they are drawn inside forward).
        mlm_input_ids, mlm_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            An MLM corruption drawn outside (e.g. by the trainer, which must count the masked tokens of all
            accumulated batches before the first forward): corrupted ids and targets (-100 = not masked). Default:
            drawn here with `mask_tokens_for_mlm`.
        original_gradient_scaling (`bool`, defaults to `False`): VTC with the original's gather, whose encoder
            gradients are divided by the number of processes (see `contrastive.py`).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        _check_video_batch(pixel_values)
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"The training forward pairs the i-th video with the i-th text, but got {pixel_values.shape[0]} videos "
                f"and {input_ids.shape[0]} texts."
            )
        if self.training:
            self.clamp_temperature_()
        vision_outputs = self._run_vision(pixel_values, bool_masked_pos, interpolate_pos_encoding, **kwargs)
        video_tokens = self._video_tokens(vision_outputs.last_hidden_state)
        video_embeds = self._project_video(vision_outputs.pooler_output, normalize=True)
        text_hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask, mode="text").last_hidden_state
        text_embeds = self._project_text(text_hidden, attention_mask, normalize=True)
        logits_per_video = video_embeds @ text_embeds.t() / self.temperature

        losses, matching_logits, mlm_logits = {}, None, None
        config = self.config
        if return_loss:
            if config.vtc_loss_weight:
                losses["loss_vtc"] = video_text_contrastive_loss(
                    video_embeds, text_embeds, self.temperature, sample_ids, num_items_in_batch, original_gradient_scaling
                )
            if config.vtm_loss_weight:
                losses["loss_vtm"], matching_logits = self._vtm_loss(
                    video_tokens, text_hidden, attention_mask, video_embeds, text_embeds, sample_ids, num_items_in_batch
                )
            if config.mlm_loss_weight:
                losses["loss_mlm"], mlm_logits = self._mlm_loss(
                    input_ids, attention_mask, video_tokens, mlm_input_ids, mlm_labels
                )
        weights = {"loss_vtc": config.vtc_loss_weight, "loss_vtm": config.vtm_loss_weight,
                   "loss_mlm": config.mlm_loss_weight}
        loss = sum(weights[name] * value for name, value in losses.items()) if losses else None
        return InternVideo2ForRetrievalOutput(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_video.t(),
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            matching_logits=matching_logits,
            mlm_logits=mlm_logits,
            **losses,
        )


def original_evaluation_matrices(
    similarity: torch.Tensor, rerank: InternVideo2RerankOutput | None = None
) -> dict[str, torch.Tensor]:
    """The score matrices the original `evaluation()` returns, each row-softmaxed (rank-preserving):

    * `i2t_sim` / `t2i_sim`: cosine similarity (video->text rows, text->video rows);
    * `i2t_dsl` / `t2i_dsl`: dual-softmax `S * softmax(S)` over the other axis, no temperature;
    * `i2t_match` / `t2i_match` (with `rerank`): the matching-head re-ranked scores.
    """
    similarity = similarity.float()
    out = {
        "i2t_sim": similarity.softmax(dim=1),
        "t2i_sim": similarity.t().softmax(dim=1),
        "i2t_dsl": (similarity * similarity.softmax(dim=0)).softmax(dim=1),
        "t2i_dsl": (similarity.t() * similarity.t().softmax(dim=0)).softmax(dim=1),
    }
    if rerank is not None:
        out["i2t_match"] = rerank.video_to_text.softmax(dim=1)
        out["t2i_match"] = rerank.text_to_video.softmax(dim=1)
    return out


__all__ = [
    "InternVideo2TextPreTrainedModel",
    "InternVideo2TextModel",
    "InternVideo2TextForMaskedLM",
    "InternVideo2PreTrainedModel",
    "InternVideo2Model",
    "InternVideo2ForRetrieval",
    "InternVideo2Output",
    "InternVideo2ForRetrievalOutput",
    "InternVideo2VideoEncoding",
    "InternVideo2TextEncoding",
    "InternVideo2MatchingOutput",
    "InternVideo2RerankOutput",
    "video_text_contrastive_loss",
    "mask_tokens_for_mlm",
    "original_evaluation_matrices",
]

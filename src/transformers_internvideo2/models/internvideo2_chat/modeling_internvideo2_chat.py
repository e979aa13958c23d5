"""InternVideo2 video chat model (VideoChat2 on InternVideo2: "InternVideo2-Chat-8B", its HD and InternLM2.5 variants).

    pixel_values_videos (B, T, C, H, W) or (B, N views, T, C, H, W)
        -> InternVideo2 vision encoder, every view separately -> hidden state `vision_feature_layer` (cls included)
        -> LayerNorm
        -> Q-Former: learned queries (+ optional instruction text) self-attend; the queries cross-attend to the video
        -> first `num_query_tokens + num_extra_query_tokens` outputs -> linear projector to the LLM width
        -> written over the LLM input embeddings at the `video_token_id` placeholders (view order, then query order)
        -> any causal LM (`AutoModelForCausalLM.from_config(config.text_config)`)

During `generate()` the video is encoded once, before the prefill (`get_video_features` through
`mm_encoder_outputs`); decoding steps only run the language model with its KV cache.
"""

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithCrossAttentions, BaseModelOutputWithPooling, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs, selected_hidden_states

from ...losses.language_modeling import token_cross_entropy
from ..remote_code import RemoteCodeMixin
from ..strict_loading import StrictLoadingMixin
from .configuration_internvideo2_chat import InternVideo2ChatConfig, InternVideo2QFormerConfig
from ..internvideo2_vision.modeling_internvideo2_vision import InternVideo2DropPath, InternVideo2VisionModel, eager_attention_forward
from ..internvideo2_video_text.modeling_internvideo2_video_text import bert_multi_head_attention


logger = logging.get_logger(__name__)


# ------------------------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class InternVideo2ChatVideoOutput(BaseModelOutputWithPooling):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(num_videos, views * (1 + num_patches), vision_hidden_size)`):
        The vision tokens the Q-Former attends to: the selected vision hidden state after the vision LayerNorm, the
        views of a video concatenated in view order (one view per entry for a 5-D input).
    pooler_output (`torch.FloatTensor` of shape `(num_videos, num_visual_tokens, text_hidden_size)`):
        The projected visual tokens, in the order they replace the placeholders. `num_videos` is the batch size of a
        5-D/6-D `pixel_values_videos` (all views of a video concatenated); for a flat batch of views (5-D input with
        `use_hd` off) every view is its own entry.
    qformer_last_hidden_state (`torch.FloatTensor` of shape `(num_views, num_queries + text_length, qformer_hidden_size)`):
        Q-Former output, one row per view (queries first, then the instruction text positions).
    hidden_states, attentions:
        Vision encoder hidden states / attentions when requested, one row per view.
    """

    qformer_last_hidden_state: torch.FloatTensor | None = None


@dataclass
class InternVideo2ChatCausalLMOutputWithPast(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*, returned when `labels` (or `shift_labels`) is provided):
        Next-token cross-entropy over the positions whose label is not -100.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
        Language-model logits.
    past_key_values (`Cache`, *optional*):
        The language model's KV cache.
    hidden_states, attentions (*optional*):
        The language model's hidden states / attentions when requested.
    video_hidden_states (`torch.FloatTensor`, *optional*):
        The projected visual tokens spliced into the input (see [`InternVideo2ChatVideoOutput.pooler_output`]).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: torch.FloatTensor | None = None


# The manifest file of a partial chat bundle (shapes_world.chat_bundle): such a folder is not loadable by
# from_pretrained, and the error says how to export it.
PARTIAL_CHAT_BUNDLE_MANIFEST = "shapes_chat.json"


def left_align_padding(input_ids: torch.LongTensor, attention_mask: torch.Tensor):
    """Rows padded on the right are rolled so that their tokens end at the last column (left padding); left-padded and
    unpadded rows are returned unchanged. A mask with holes inside a row is left as it is."""
    mask = attention_mask.bool()
    if mask.shape[0] == 0 or bool(mask[:, -1].all()):
        return input_ids, attention_mask
    length = mask.shape[1]
    columns = torch.arange(length, device=mask.device)
    last_real = torch.where(mask, columns, -1).max(dim=1).values  # -1 for an all-padding row
    first_real = torch.where(mask, columns, length).min(dim=1).values
    contiguous = mask.sum(1) == (last_real - first_real + 1).clamp(min=0)
    shifts = torch.where(contiguous & (last_real >= 0), length - 1 - last_real, 0)
    if not bool(shifts.any()):
        return input_ids, attention_mask
    logger.info("Right-padded prompts moved to left padding for generation.")
    index = (columns[None, :] - shifts[:, None]) % length
    return input_ids.gather(1, index), attention_mask.gather(1, index)


# ------------------------------------------------------------------------------------------------------------------
# Q-Former
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2QFormerEmbeddings(nn.Module):
    """`[queries, word + position embeddings of the text]` -> LayerNorm -> dropout. The queries get no position
    embedding; the text positions count from 0 whatever the padding (as the original)."""

    def __init__(self, config: InternVideo2QFormerConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, query_embeds: torch.Tensor, input_ids: torch.LongTensor | None = None) -> torch.Tensor:
        embeddings = query_embeds
        if input_ids is not None:
            if input_ids.shape[1] > self.position_embeddings.num_embeddings:
                raise ValueError(
                    f"Q-Former text of {input_ids.shape[1]} tokens exceeds max_position_embeddings "
                    f"({self.position_embeddings.num_embeddings}); truncate the instruction."
                )
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            text = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
            embeddings = torch.cat([query_embeds, text.to(query_embeds.dtype)], dim=1)
        return self.dropout(self.layer_norm(embeddings))


class InternVideo2QFormerAttention(nn.Module):
    """BERT attention block: multi-head attention, output projection, dropout, residual, post-LayerNorm. As
    cross-attention, keys and values come from the vision tokens (`encoder_hidden_size` wide)."""

    def __init__(self, config: InternVideo2QFormerConfig, is_cross_attention: bool = False, drop_path: float = 0.0):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        kv_size = config.encoder_hidden_size if is_cross_attention else config.hidden_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(kv_size, config.hidden_size)
        self.value = nn.Linear(kv_size, config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_path = InternVideo2DropPath(drop_path)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        context, weights = bert_multi_head_attention(
            self, attention, hidden_states, encoder_hidden_states, attention_mask, **kwargs
        )
        return self.layer_norm(hidden_states + self.drop_path(self.dropout(self.dense(context)))), weights


class InternVideo2QFormerMLP(nn.Module):
    """BERT feed-forward block with residual and post-LayerNorm."""

    def __init__(self, config: InternVideo2QFormerConfig, drop_path: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_path = InternVideo2DropPath(drop_path)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        update = self.dropout(self.fc2(self.act(self.fc1(hidden_states))))
        return self.layer_norm(hidden_states + self.drop_path(update))


class InternVideo2QFormerLayer(GradientCheckpointingLayer):
    """Self-attention over `[queries, text]`; then, for the query positions only, cross-attention to the video (in
    every `cross_attention_frequency`-th layer) and the query feed-forward network; the text positions take the text
    feed-forward network."""

    def __init__(self, config: InternVideo2QFormerConfig, layer_idx: int, drop_path: float = 0.0):
        super().__init__()
        self.self_attention = InternVideo2QFormerAttention(config, drop_path=drop_path)
        self.cross_attention = None
        if layer_idx % config.cross_attention_frequency == 0:
            self.cross_attention = InternVideo2QFormerAttention(config, is_cross_attention=True, drop_path=drop_path)
        self.query_mlp = InternVideo2QFormerMLP(config, drop_path)
        self.text_mlp = InternVideo2QFormerMLP(config, drop_path)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        query_length: int,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        hidden_states, _ = self.self_attention(hidden_states, attention_mask, **kwargs)
        queries, text = hidden_states[:, :query_length], hidden_states[:, query_length:]
        if self.cross_attention is not None:
            queries, _ = self.cross_attention(queries, None, encoder_hidden_states, **kwargs)
        queries = self.query_mlp(queries)
        if text.shape[1] == 0:
            return queries
        return torch.cat([queries, self.text_mlp(text)], dim=1)


class InternVideo2QFormerPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config: InternVideo2QFormerConfig
    base_model_prefix = "qformer"
    main_input_name = "query_embeds"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2QFormerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                init.zeros_(module.weight[module.padding_idx])


class InternVideo2QFormerModel(InternVideo2QFormerPreTrainedModel):
    """The Q-Former: learned queries (and optional instruction text) in, `(batch, queries + text, hidden)` out."""

    _can_record_outputs = {
        "hidden_states": InternVideo2QFormerLayer,
        "attentions": OutputRecorder(InternVideo2QFormerAttention, index=1, layer_name="self_attention"),
        "cross_attentions": OutputRecorder(InternVideo2QFormerAttention, index=1, layer_name="cross_attention"),
    }

    def __init__(self, config: InternVideo2QFormerConfig):
        super().__init__(config)
        self.embeddings = InternVideo2QFormerEmbeddings(config)
        rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers, device="cpu").tolist()
        self.layers = nn.ModuleList(
            InternVideo2QFormerLayer(config, index, rate) for index, rate in enumerate(rates)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.word_embeddings = value

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        query_embeds: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithCrossAttentions:
        r"""
        query_embeds (`torch.FloatTensor` of shape `(batch_size, num_queries, hidden_size)`):
            The learned queries.
        encoder_hidden_states (`torch.FloatTensor` of shape `(batch_size, num_vision_tokens, encoder_hidden_size)`):
            The vision tokens the queries cross-attend to (all attended).
        input_ids (`torch.LongTensor` of shape `(batch_size, text_length)`, *optional*):
            Instruction text in the Q-Former (BERT) vocabulary, placed after the queries.
        attention_mask (`torch.LongTensor` of shape `(batch_size, text_length)`, *optional*):
            1 for real text tokens, 0 for padding. Covers the text only; the queries are always attended.
        """
        if query_embeds.shape[0] != encoder_hidden_states.shape[0]:
            raise ValueError(
                f"query_embeds has batch {query_embeds.shape[0]} but encoder_hidden_states has "
                f"{encoder_hidden_states.shape[0]}."
            )
        if attention_mask is not None and input_ids is None:
            raise ValueError("The Q-Former attention_mask covers the text: it needs input_ids.")
        if input_ids is not None and input_ids.shape[0] != query_embeds.shape[0]:
            raise ValueError(
                f"Q-Former input_ids has batch {input_ids.shape[0]} but there are {query_embeds.shape[0]} query sets."
            )
        query_length = query_embeds.shape[1]
        hidden_states = self.embeddings(query_embeds, input_ids)
        mask = None
        if attention_mask is not None:
            full_mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], query_length), attention_mask], 1)
            mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states, attention_mask=full_mask)
        encoder_hidden_states = encoder_hidden_states.to(hidden_states.dtype)
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask, encoder_hidden_states, query_length, **kwargs)
        return BaseModelOutputWithCrossAttentions(last_hidden_state=hidden_states)


# ------------------------------------------------------------------------------------------------------------------
# Chat model
# ------------------------------------------------------------------------------------------------------------------
class InternVideo2ChatPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: InternVideo2ChatConfig
    remote_code_auto_map = {
        "AutoConfig": "internvideo2_chat.configuration_internvideo2_chat.InternVideo2ChatConfig",
        "AutoModelForImageTextToText": "internvideo2_chat.modeling_internvideo2_chat.InternVideo2ForConditionalGeneration",
        "AutoModelForMultimodalLM": "internvideo2_chat.modeling_internvideo2_chat.InternVideo2ForConditionalGeneration",
    }
    # no attribute has this name: `base_model` is the model itself (generation looks `get_video_features` up there)
    base_model_prefix = "internvideo2_chat"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2QFormerLayer"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        super()._init_weights(module)
        if isinstance(module, InternVideo2ForConditionalGeneration):
            # the original: `query_tokens` ~ N(0, 0.02), `extra_query_tokens` = 0 (appended after them)
            # (one `init.copy_` of the whole parameter: it skips parameters loaded from a checkpoint, slices would not)
            values = torch.zeros_like(module.query_tokens)
            values[:, : module.config.num_query_tokens].normal_(mean=0.0, std=module.config.initializer_range)
            init.copy_(module.query_tokens, values)



class InternVideo2ForConditionalGeneration(InternVideo2ChatPreTrainedModel, GenerationMixin):
    """InternVideo2 encoder + Q-Former + projector + any causal LM (VideoChat2 design)."""

    # The modules that are not the language model: skip them when quantizing only the LLM with bitsandbytes
    # (`BitsAndBytesConfig(..., llm_int8_skip_modules=InternVideo2ForConditionalGeneration.non_language_modules)`).
    non_language_modules = ["vision_model", "vision_layernorm", "qformer", "multi_modal_projector"]

    def __init__(self, config: InternVideo2ChatConfig):
        super().__init__(config)
        self.vision_model = InternVideo2VisionModel(config.vision_config, add_pooling_layer=False)
        self.vision_layernorm = (
            nn.LayerNorm(config.vision_config.hidden_size, eps=config.vision_layernorm_eps)
            if config.use_vision_layernorm
            else nn.Identity()
        )
        qformer_width = config.qformer_config.hidden_size
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_visual_tokens_per_view, qformer_width))
        self.qformer = InternVideo2QFormerModel(config.qformer_config)
        self.multi_modal_projector = nn.Linear(
            qformer_width, config.text_config.hidden_size, bias=config.projector_bias
        )
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        # one config object for the LLM: vocabulary resizes and attention-implementation changes stay in sync
        self.config.text_config = self.language_model.config
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, refusing a partial chat bundle (the trained parts of the package's shapes
        chat model, whose language model comes from an offline asset) with how to export it as a complete folder."""
        folder = str(pretrained_model_name_or_path)
        if os.path.isfile(os.path.join(folder, PARTIAL_CHAT_BUNDLE_MANIFEST)):
            raise ValueError(
                f"{folder} is a chat bundle: it holds only the trained parts (vision encoder, Q-Former, projector, LoRA "
                "adapter) and rebuilds its language model from the offline SmolLM2 asset, so it is not a Transformers "
                "model folder. Load it with transformers_internvideo2.shapes_world.chat_bundle.load_chat_bundle(folder), "
                "or export it once as a complete folder (model + processor + tokenizer with left padding) for "
                "from_pretrained() and pipeline(): "
                "transformers_internvideo2.shapes_world.chat_bundle.export_chat_model(folder, output_folder)."
            )
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_language_model(cls, language_model: PreTrainedModel, **config_kwargs) -> "InternVideo2ForConditionalGeneration":
        """Build a chat model around an existing (pretrained) causal LM: the vision encoder, Q-Former and projector are
        newly initialised from `config_kwargs` (any [`InternVideo2ChatConfig`] field except `text_config`), the
        language model is used as given (its config becomes `text_config`)."""
        if "text_config" in config_kwargs:
            raise ValueError("text_config comes from the language model; do not pass it.")
        config = InternVideo2ChatConfig(text_config=language_model.config, **config_kwargs)
        model = cls(config)  # holds a freshly initialised LLM of the same architecture until replaced below
        model.language_model = language_model
        model.config.text_config = language_model.config
        return model

    # -- embeddings (the language model's) ---------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module):
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    # -- video ------------------------------------------------------------------------------------------------------
    def _views(self, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """Flatten the input into `(num_views, T, C, H, W)`; return the views and the views per video (None for a
        flat batch of views)."""
        # HD tiling is preprocessing (the chat processor does it, as the original model card's `load_video`): the
        # model encodes the views it is given.
        if pixel_values_videos.ndim == 6:
            batch_size, num_views = pixel_values_videos.shape[:2]
            return pixel_values_videos.flatten(0, 1), num_views
        if pixel_values_videos.ndim == 5:
            return pixel_values_videos, None
        raise ValueError(
            "pixel_values_videos must be (batch, frames, channels, height, width) or (batch, views, frames, channels, "
            f"height, width); got shape {tuple(pixel_values_videos.shape)}."
        )

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.LongTensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ChatVideoOutput:
        r"""
        Encode videos into the visual tokens that replace the placeholders.

        pixel_values_videos (`torch.FloatTensor`):
            `(batch, frames, channels, height, width)`: one view per row (a one-frame row is an image and takes the
            image position table). Or `(batch, views, frames, channels, height, width)`: HD views, the same number
            per video, as [`InternVideo2ChatProcessor`] tiles them ([`split_video_into_hd_views`]; the model never
            tiles). Videos with different view counts in one batch: pass all their views as one flat 5-D batch; the
            placeholders decide the grouping.
        qformer_input_ids (`torch.LongTensor` of shape `(batch or num_views, text_length)`, *optional*):
            Instruction text for the Q-Former (BERT vocabulary). One row per video (repeated for its views) or one
            per view.
        qformer_attention_mask (`torch.LongTensor`, *optional*):
            Padding mask of `qformer_input_ids`.
        interpolate_pos_encoding (`bool`, *optional*):
            The package policy: `None` (default) resamples the vision position embeddings when the frame count or
            resolution differs from the configuration, `False` raises instead.
        """
        config = self.config
        batch_size = pixel_values_videos.shape[0]
        views, num_views = self._views(pixel_values_videos)
        select_hidden = config.vision_feature_layer != -1
        if select_hidden:
            kwargs = {**kwargs, "output_hidden_states": self._vision_hidden_states_to_capture(kwargs)}
        vision_outputs = self.vision_model(views, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        if select_hidden:
            vision_tokens = vision_outputs.hidden_states[config.vision_feature_layer]
        else:
            vision_tokens = vision_outputs.last_hidden_state
        vision_tokens = self.vision_layernorm(vision_tokens)

        if qformer_input_ids is not None:
            if not config.qformer_text_input:
                raise ValueError("qformer_input_ids given but config.qformer_text_input is False.")
            if num_views is not None and qformer_input_ids.shape[0] == batch_size and views.shape[0] != batch_size:
                # one instruction per video: every view of the video gets it (as the original HD chat)
                qformer_input_ids = qformer_input_ids.repeat_interleave(num_views, dim=0)
                if qformer_attention_mask is not None:
                    qformer_attention_mask = qformer_attention_mask.repeat_interleave(num_views, dim=0)
            if qformer_input_ids.shape[0] != views.shape[0]:
                raise ValueError(
                    f"qformer_input_ids has {qformer_input_ids.shape[0]} rows; expected one per video ({batch_size}) "
                    f"or one per view ({views.shape[0]})."
                )
        elif qformer_attention_mask is not None:
            raise ValueError("qformer_attention_mask given without qformer_input_ids.")

        queries = self.query_tokens.expand(views.shape[0], -1, -1)
        qformer_outputs = self.qformer(
            query_embeds=queries,
            encoder_hidden_states=vision_tokens,
            input_ids=qformer_input_ids,
            attention_mask=qformer_attention_mask,
        )
        query_output = qformer_outputs.last_hidden_state[:, : queries.shape[1]]
        visual_tokens = self.multi_modal_projector(query_output.to(self.multi_modal_projector.weight.dtype))
        if num_views is not None:  # one entry per video, its views concatenated in order (as the placeholders)
            visual_tokens = visual_tokens.reshape(batch_size, -1, visual_tokens.shape[-1])
            vision_tokens = vision_tokens.reshape(batch_size, -1, vision_tokens.shape[-1])
        return InternVideo2ChatVideoOutput(
            last_hidden_state=vision_tokens,
            pooler_output=visual_tokens,
            hidden_states=vision_outputs.hidden_states,
            attentions=vision_outputs.attentions,
            qformer_last_hidden_state=qformer_outputs.last_hidden_state,
        )

    def _vision_hidden_states_to_capture(self, kwargs: dict) -> bool | list[int]:
        """`output_hidden_states` for the vision encoder when the Q-Former reads an intermediate block: that block,
        plus what the caller asked for (a flag or indices; the vision config's default when not given). Capturing
        every block when none was asked for would keep all of them in memory and return them."""
        requested = kwargs.get("output_hidden_states")
        if requested is None:
            requested = self.vision_model.config.output_hidden_states
        indices = selected_hidden_states(requested)
        if indices is None:
            return True if requested else [self.config.vision_feature_layer]
        return [*indices, self.config.vision_feature_layer]

    def get_placeholder_mask(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, video_features: torch.Tensor
    ) -> torch.Tensor:
        """Boolean mask `(batch, seq, hidden)` of the placeholder positions; checks there is one per visual token."""
        token_id = self.config.video_token_id
        if token_id is None:
            raise ValueError("config.video_token_id is not set: the model cannot find where the video goes.")
        if input_ids is None:
            placeholder = self.get_input_embeddings()(torch.tensor(token_id, device=inputs_embeds.device))
            mask = (inputs_embeds == placeholder.to(inputs_embeds.dtype)).all(-1)
        else:
            mask = input_ids == token_id
        num_placeholders, num_visual = int(mask.sum()), video_features.shape[:-1].numel()
        if num_placeholders != num_visual:
            raise ValueError(
                f"The prompt has {num_placeholders} video placeholder tokens (id {token_id}) but the videos give "
                f"{num_visual} visual tokens ({self.config.num_visual_tokens_per_view} per view). Build the prompt "
                "with the processor, which expands each video placeholder to the right count."
            )
        return mask.unsqueeze(-1).expand_as(inputs_embeds)

    # -- forward ----------------------------------------------------------------------------------------------------
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        interpolate_pos_encoding: bool | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ChatCausalLMOutputWithPast:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Prompt ids with `num_visual_tokens_per_view` copies of `config.video_token_id` per view, in video order.
        pixel_values_videos (`torch.FloatTensor`, *optional*):
            Videos, see [`~InternVideo2ForConditionalGeneration.get_video_features`].
        qformer_input_ids, qformer_attention_mask (`torch.LongTensor`, *optional*):
            Instruction text for the Q-Former, see [`~InternVideo2ForConditionalGeneration.get_video_features`].
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Target ids aligned with `input_ids` (shifted inside the loss); -100 = not supervised (prompt, placeholders,
            padding). `num_items_in_batch` (passed by the Trainer) makes gradient accumulation exact.
        shift_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*, keyword):
            Targets already aligned with the logits (position `i` holds the id that position `i` should predict), as
            the Trainer passes them under sequence/context parallelism, where the shift must happen on the whole
            sequence before it is sharded. When given they replace `labels` in the loss and are not shifted again.
        interpolate_pos_encoding (`bool`, *optional*):
            The package policy: `None` (default) resamples the vision position embeddings when the frame count or
            resolution differs from the configuration, `False` raises instead.
        mm_encoder_outputs (`dict`, *optional*):
            `{"video": get_video_features(...)}` computed beforehand (what `generate()` does, once, before the
            prefill). Exclusive with `pixel_values_videos`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        positions = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if past_key_values is not None:
            positions += past_key_values.get_seq_length()
        self._check_context_length(positions)
        if pixel_values_videos is not None and mm_encoder_outputs is not None:
            raise ValueError("Pass either pixel_values_videos or mm_encoder_outputs, not both.")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        video_features = None
        if mm_encoder_outputs is not None and mm_encoder_outputs.get("video") is not None:
            video_features = mm_encoder_outputs["video"].pooler_output
        elif pixel_values_videos is not None:
            video_features = self.get_video_features(
                pixel_values_videos,
                qformer_input_ids=qformer_input_ids,
                qformer_attention_mask=qformer_attention_mask,
                interpolate_pos_encoding=interpolate_pos_encoding,
            ).pooler_output
        elif qformer_input_ids is not None:
            raise ValueError("qformer_input_ids given without a video (pixel_values_videos).")

        if video_features is not None:
            video_features = video_features.to(inputs_embeds.device, inputs_embeds.dtype)
            mask = self.get_placeholder_mask(input_ids, inputs_embeds, video_features)
            inputs_embeds = inputs_embeds.masked_scatter(mask, video_features)
        elif input_ids is not None and self._is_prefill(past_key_values):
            token_id = self.config.video_token_id
            if token_id is not None and bool((input_ids == token_id).any()):
                raise ValueError(
                    f"The prompt contains video placeholder tokens (id {token_id}) but no video was given "
                    "(pixel_values_videos)."
                )

        # the loss is computed here, over the spliced sequence; the LLM only produces logits
        loss_kwargs = {key: kwargs.pop(key) for key in ("num_items_in_batch", "ignore_index") if key in kwargs}
        shift_labels = kwargs.pop("shift_labels", None)
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            return_dict=True,
            **kwargs,
        )
        loss = None
        # labels all -100 (nothing to learn from in this batch) give 0, not NaN
        if shift_labels is not None:  # pre-aligned targets: shifting them again would train on the wrong tokens
            loss = token_cross_entropy(outputs.logits, shift_labels, shift=False, **loss_kwargs)
        elif labels is not None:
            loss = token_cross_entropy(outputs.logits, labels, shift=True, **loss_kwargs)
        return InternVideo2ChatCausalLMOutputWithPast(
            loss=loss,
            logits=outputs.logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_hidden_states=video_features,
        )

    # -- context length ---------------------------------------------------------------------------------------------
    def context_length(self) -> int | None:
        """Positions the language model was built for (`max_position_embeddings` of its config), or `None`."""
        return getattr(self.language_model.config, "max_position_embeddings", None)

    def _check_context_length(self, positions: int, max_new_tokens: int = 0) -> None:
        limit = self.context_length()
        if limit is None or positions + max_new_tokens <= limit:
            return
        if positions > limit:
            raise ValueError(
                f"The sequence has {positions} tokens but the language model has {limit} positions "
                "(max_position_embeddings); beyond them it produces garbage. Shorten the prompt (fewer turns or "
                "frames, a shorter text)."
            )
        raise ValueError(
            f"A {positions}-token prompt leaves {limit - positions} of the language model's {limit} positions "
            f"(max_position_embeddings), but {max_new_tokens} new tokens were asked for; lower max_new_tokens to at "
            f"most {limit - positions} or shorten the prompt."
        )

    def generate(self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs):
        """`GenerationMixin.generate`, with two guards:

        * a right-padded batch (a tokenizer saved with `padding_side="right"`) is first moved to left padding, row by
          row, so every prompt ends at the last column and batched answers equal one-by-one answers whatever padding
          side the inputs were made with (the returned sequences hold the left-padded prompts);
        * a prompt that, with the tokens to generate, does not fit in the language model's positions is refused
          before any computation: beyond them a model answers garbage.
        """
        if input_ids is not None and attention_mask is not None and attention_mask.ndim == 2:
            input_ids, attention_mask = left_align_padding(input_ids, attention_mask)
        prompt = input_ids if input_ids is not None else kwargs.get("inputs_embeds")
        if torch.is_tensor(prompt) and prompt.ndim >= 2:
            config = kwargs.get("generation_config") or self.generation_config
            max_new_tokens = kwargs.get("max_new_tokens", getattr(config, "max_new_tokens", None))
            if max_new_tokens is None:  # then `max_length` counts the prompt too
                max_length = kwargs.get("max_length", getattr(config, "max_length", None)) or 0
                max_new_tokens = max(max_length - prompt.shape[1], 0)
            self._check_context_length(prompt.shape[1], max_new_tokens)
        return super().generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    @staticmethod
    def _is_prefill(past_key_values: Cache | None) -> bool:
        return past_key_values is None or past_key_values.get_seq_length() == 0


__all__ = [
    "InternVideo2QFormerPreTrainedModel",
    "InternVideo2QFormerModel",
    "InternVideo2ChatPreTrainedModel",
    "InternVideo2ForConditionalGeneration",
    "InternVideo2ChatVideoOutput",
    "InternVideo2ChatCausalLMOutputWithPast",
    "left_align_padding",
]

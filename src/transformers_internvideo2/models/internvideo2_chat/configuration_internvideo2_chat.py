"""Configuration of the InternVideo2 video chat model (VideoChat2 on InternVideo2, "InternVideo2-Chat-8B").

    video -> InternVideo2 vision encoder (stage-2 encoder without its last block) -> LayerNorm
          -> Q-Former (BERT-base, learned queries, cross-attention every other layer, optional instruction text)
          -> linear projector -> spliced into the language model's input embeddings at the video placeholder tokens

The language model is any Transformers causal LM (`text_config`), built with `AutoModelForCausalLM.from_config`.
"""

import copy

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig


@strict
class InternVideo2QFormerConfig(PreTrainedConfig):
    r"""
    Configuration of the BERT-base-style Querying Transformer that turns the vision tokens into a fixed number of
    query embeddings ([`InternVideo2QFormerModel`]).

    Every layer has bidirectional self-attention over `[queries, instruction text]`, two feed-forward networks (one for
    the query positions, one for the text positions) and, in layers `0, f, 2f, ...` (`f = cross_attention_frequency`),
    cross-attention from the query positions to the vision tokens. The text positions never see the video directly.

    Args:
        vocab_size (`int`, defaults to 30523): BERT-base-uncased vocabulary plus the `[DEC]` token the original adds.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: BERT-base sizes by default.
        hidden_act (`str`, defaults to `"gelu"`): activation of both feed-forward networks (exact GELU, as BERT).
        hidden_dropout_prob, attention_probs_dropout_prob: dropouts (0.1 in the original, training only).
        drop_path_rate (`float`, defaults to 0.0): stochastic depth on every residual branch, increasing linearly over
            the layers from 0 to this value (the original trains with 0.2).
        max_position_embeddings (`int`, defaults to 512): length of the learned text position table.
        layer_norm_eps (`float`, defaults to 1e-12): epsilon of all LayerNorms.
        cross_attention_frequency (`int`, defaults to 2): a layer `i` cross-attends when `i % frequency == 0`.
        encoder_hidden_size (`int`, defaults to 1408): width of the vision tokens (set from the vision config by
            [`InternVideo2ChatConfig`]).
    """

    model_type = "internvideo2_qformer"
    base_config_key = "qformer_config"

    vocab_size: int = 30523
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    drop_path_rate: float | int = 0.0
    max_position_embeddings: int = 512
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    cross_attention_frequency: int = 2
    encoder_hidden_size: int = 1408

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"Q-Former hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.cross_attention_frequency < 1:
            raise ValueError(f"cross_attention_frequency must be >= 1, got {self.cross_attention_frequency}.")


# ----------------------------------------------------------------------------------------------------------------------
# Released checkpoints (spec_stage3_chat.md §2-§5, §8, §9). The vision encoder is the InternVideo2-1B stage-2 encoder
# with its last (40th) block removed: the original builds `depth + x_vis_return_idx + 1 = 39` blocks and feeds the
# output of block 39 (cls token included, no final norm) to a LayerNorm(eps 1e-12) and the Q-Former. It runs the
# pure-PyTorch path (exact GELU, LayerScale as plain parameters multiplied in the activation dtype) with a separate
# learned position table for single images.
# ----------------------------------------------------------------------------------------------------------------------
_CHAT_VISION_1B = dict(
    hidden_size=1408,
    num_hidden_layers=39,
    num_attention_heads=16,
    intermediate_size=6144,
    hidden_act="gelu",
    image_size=224,
    patch_size=14,
    num_frames=8,
    tubelet_size=1,
    qkv_bias=False,
    use_qk_norm=True,
    rms_norm_eps=1e-6,
    layer_scale_init_value=1e-5,
    layer_scale_force_fp32=False,
    position_embedding_type="joint",
    image_position_embedding_type="separate",
)

_CHAT_QFORMER = dict(
    vocab_size=30523,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    drop_path_rate=0.2,
    cross_attention_frequency=2,
    encoder_hidden_size=1408,
)

# Mistral-7B-Instruct-v0.3 (public config values).
_MISTRAL_7B_V03 = dict(
    model_type="mistral",
    vocab_size=32768,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    hidden_act="silu",
    max_position_embeddings=32768,
    rms_norm_eps=1e-5,
    rope_theta=1000000.0,
    sliding_window=None,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
)

# InternLM2.5-7B-Chat-1M expressed in the Llama layout (see conversion/internvideo2_chat.py for the weight split).
_INTERNLM2_5_7B_AS_LLAMA = dict(
    model_type="llama",
    vocab_size=92544,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    hidden_act="silu",
    max_position_embeddings=262144,
    rms_norm_eps=1e-5,
    rope_parameters={"rope_type": "dynamic", "factor": 2.5, "rope_theta": 50000000.0},
    attention_bias=False,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
)

INTERNVIDEO2_CHAT_PRESETS: dict[str, dict] = {
    # OpenGVLab/InternVideo2-Chat-8B: 8 frames at 224 px, one view per video, no Q-Former instruction at inference.
    "internvideo2-chat-8b": dict(
        vision_config=_CHAT_VISION_1B,
        qformer_config=_CHAT_QFORMER,
        text_config=_MISTRAL_7B_V03,
        num_query_tokens=32,
        num_extra_query_tokens=64,
        # "[control_12]" of the Mistral v0.3 tokenizer: an unused control token (the original splices into dummy
        # ids 0 = <unk>, which is also its padding id, so it cannot serve as a placeholder with left padding).
        video_token="[control_12]",
        video_token_id=14,
    ),
    # OpenGVLab/InternVideo2_chat_8B_HD: same weights layout; every video becomes 2x1 tiles + a global view (model
    # card recipe: fixed 2x1 grid), each view encoded separately -> 3 x 96 visual tokens.
    "internvideo2-chat-8b-hd": dict(
        vision_config=_CHAT_VISION_1B,
        qformer_config=_CHAT_QFORMER,
        text_config=_MISTRAL_7B_V03,
        num_query_tokens=32,
        num_extra_query_tokens=64,
        video_token="[control_12]",
        video_token_id=14,
        use_hd=True,
        hd_num=6,
        hd_fix_ratio=[2, 1],
        hd_add_global_view=True,
    ),
    # OpenGVLab/InternVideo2_Chat_8B_InternLM2_5 with the LLM converted to the Llama layout. Its checkpoint has HD
    # training; the released inference recipe is not published, so HD is off by default (turn it on per use).
    "internvideo2-chat-8b-internlm2.5": dict(
        vision_config=_CHAT_VISION_1B,
        qformer_config=_CHAT_QFORMER,
        text_config=_INTERNLM2_5_7B_AS_LLAMA,
        num_query_tokens=32,
        num_extra_query_tokens=64,
        # InternLM2's <unk> (id 0) is never produced by its byte-fallback tokenizer and is not its padding id (2): the
        # original's dummy placeholder id can be kept.
        video_token="<unk>",
        video_token_id=0,
    ),
}


@strict
class InternVideo2ChatConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2ForConditionalGeneration`]. Build the released architectures with
    [`InternVideo2ChatConfig.from_preset`] (`"internvideo2-chat-8b"`, `"internvideo2-chat-8b-hd"`,
    `"internvideo2-chat-8b-internlm2.5"`).

    Args:
        vision_config (`dict` or [`InternVideo2VisionConfig`]): the video encoder. Defaults to the released models'
            one: the InternVideo2-1B stage-2 encoder with 39 of its 40 blocks (the original never builds the last one).
        qformer_config (`dict` or [`InternVideo2QFormerConfig`]): the Q-Former (defaults to the released one).
            `encoder_hidden_size` is set to the vision width.
        text_config (`dict` or any causal-LM config, defaults to Mistral): the language model, built with
            `AutoModelForCausalLM.from_config` (Mistral, Llama, Qwen2, InternLM2.5 converted to Llama, ...).
        num_query_tokens (`int`, defaults to 32): learned queries of the Q-Former (the original `query_tokens`).
        num_extra_query_tokens (`int`, defaults to 64): extra learned queries appended after them (the original
            `extra_query_tokens`, initialised to zero). A view yields `num_query_tokens + num_extra_query_tokens`
            visual tokens.
        vision_feature_layer (`int`, defaults to -1): which vision hidden state feeds the Q-Former: an index into
            `(embeddings, block 1, ..., block N)`. The released models build 39 blocks and use the last one (-1).
        use_vision_layernorm (`bool`, defaults to `True`): LayerNorm on all vision tokens before the Q-Former (the
            original `vision_layernorm`, `vit_add_ln=True`).
        vision_layernorm_eps (`float`, defaults to 1e-12): its epsilon.
        projector_bias (`bool`, defaults to `True`): bias of the Q-Former -> LLM projection (the original
            `project_up`).
        qformer_text_input (`bool`, defaults to `True`): whether the Q-Former may be conditioned on instruction text
            (`qformer_input_ids`). With `False` the model refuses Q-Former text.
        video_token (`str`, defaults to `"<video>"`) / video_token_id (`int`): the placeholder token. The processor
            repeats it once per visual token; the model overwrites those embedding rows with the visual features.
        use_hd (`bool`, defaults to `False`): HD mode. Each video becomes several 224 px views (tiles of an aspect-ratio
            grid plus a global view), each encoded separately; their visual tokens are concatenated in view order.
        hd_num (`int`, defaults to 6): the largest number of tiles of the grid search (`rows * cols <= hd_num`).
        hd_local_size (`int`, defaults to 224): side of one view.
        hd_fix_ratio (`list[int]` of `[cols, rows]`, *optional*): a fixed grid instead of the aspect-ratio search (the
            HD model card uses `[2, 1]`).
        hd_add_global_view (`bool`, defaults to `True`): append a view of the whole frame after the tiles.
    """

    model_type = "internvideo2_chat"
    sub_configs_defaults = {
        "vision_config": InternVideo2VisionConfig,
        "qformer_config": InternVideo2QFormerConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="mistral"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    num_query_tokens: int = 32
    num_extra_query_tokens: int = 64
    vision_feature_layer: int = -1
    use_vision_layernorm: bool = True
    vision_layernorm_eps: float = 1e-12
    projector_bias: bool = True
    qformer_text_input: bool = True
    video_token: str = "<video>"
    video_token_id: int | None = None
    use_hd: bool = False
    hd_num: int = 6
    hd_local_size: int = 224
    hd_fix_ratio: list[int] | None = None
    hd_add_global_view: bool = True
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        # Unspecified encoders default to the released chat model's (a 39-block InternVideo2-1B, its Q-Former).
        if self.vision_config is None:
            self.vision_config = dict(_CHAT_VISION_1B)
        if self.qformer_config is None:
            self.qformer_config = dict(_CHAT_QFORMER)
        super().__post_init__(**kwargs)
        # the Q-Former cross-attends to the vision tokens: its key/value input width is the vision width
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size

    def validate_architecture(self):
        if self.num_query_tokens + self.num_extra_query_tokens < 1:
            raise ValueError("num_query_tokens + num_extra_query_tokens must be at least 1.")
        num_states = self.vision_config.num_hidden_layers + 1
        if not -num_states <= self.vision_feature_layer < num_states:
            raise ValueError(
                f"vision_feature_layer={self.vision_feature_layer} is outside the {num_states} vision hidden states "
                "(embeddings + one per block)."
            )
        if self.hd_fix_ratio is not None and (len(self.hd_fix_ratio) != 2 or min(self.hd_fix_ratio) < 1):
            raise ValueError(f"hd_fix_ratio must be [cols, rows] with positive entries, got {self.hd_fix_ratio}.")
        if self.hd_num < 1:
            raise ValueError(f"hd_num must be >= 1, got {self.hd_num}.")

    @property
    def num_visual_tokens_per_view(self) -> int:
        """Visual tokens one view (one 224 px clip) contributes to the LLM input."""
        return self.num_query_tokens + self.num_extra_query_tokens

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "InternVideo2ChatConfig":
        """Configuration of a released chat model (`internvideo2-chat-8b`, `-8b-hd`, `-8b-internlm2.5`).

        `overrides` replace top-level fields; sub-config dicts given in `overrides` update the preset's sub-config
        field by field (e.g. `text_config={"num_hidden_layers": 2}`)."""
        key = name.lower()
        if key not in INTERNVIDEO2_CHAT_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(INTERNVIDEO2_CHAT_PRESETS)}.")
        kwargs = copy.deepcopy(INTERNVIDEO2_CHAT_PRESETS[key])
        for field, value in overrides.items():
            if field in ("vision_config", "qformer_config", "text_config") and isinstance(value, dict):
                kwargs[field] = {**kwargs[field], **value}
            else:
                kwargs[field] = value
        return cls(**kwargs)


__all__ = ["InternVideo2ChatConfig", "InternVideo2QFormerConfig", "INTERNVIDEO2_CHAT_PRESETS"]

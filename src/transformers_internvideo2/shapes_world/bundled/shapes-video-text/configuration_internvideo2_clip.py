"""Configurations of the InternVideo2-CLIP models: the MobileCLIP text transformer of the S/B/L14 models, and the
composite CLIP configuration (InternVideo2 vision tower + LLaMA or MobileCLIP text tower)."""

import copy
import math

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig, PreTrainedConfig

from .configuration_internvideo2_vision import InternVideo2VisionConfig


@strict
class InternVideo2MobileCLIPTextConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2MobileCLIPTextModel`], Apple's MobileCLIP text transformer as the InternVideo2-CLIP
    S14/B14/L14 models use it (the `mobileclip_b` json of the original: 12 pre-norm layers of width 512, 8 heads, FFN
    2048, causal attention, a learned 77-row position table, CLIP BPE vocabulary of 49408).

    Args:
        vocab_size (`int`, defaults to 49408): CLIP BPE vocabulary; the end-of-text token must be the largest id (the
            pooled token is found by `argmax(input_ids)`).
        hidden_size (`int`, defaults to 512), num_hidden_layers (`int`, defaults to 12),
        num_attention_heads (`int`, defaults to 8): width, depth and heads.
        intermediate_size (`int`, defaults to 2048): FFN width. The original derives it as
            `ceil(hidden_size * ffn_multiplier / 16) * 16`; [`from_mobileclip_json`] does the same.
        max_position_embeddings (`int`, defaults to 77): rows of the learned position table (the context length).
            Other lengths resample it bilinearly, as the original.
        hidden_act (`str`, defaults to `"gelu"`): FFN activation (exact erf GELU in the original).
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm (all computed in float32).
        causal_attention (`bool`, defaults to `True`): causal self-attention (the released models); without it, a
            padding mask is applied instead.
        projection_dim (`int`, defaults to 512): width of the text projection (`projection_layer`).
        attention_dropout, hidden_dropout (`float`, defaults to 0.0): training-only dropouts (0 in the release).
    """

    model_type = "internvideo2_mobileclip_text"
    base_config_key = "text_config"

    vocab_size: int = 49408
    hidden_size: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    max_position_embeddings: int = 77
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    causal_attention: bool = True
    projection_dim: int = 512
    attention_dropout: float | int = 0.0
    hidden_dropout: float | int = 0.0
    pad_token_id: int | None = 0
    bos_token_id: int | None = 49406
    eos_token_id: int | None = 49407
    initializer_range: float = 0.02

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )

    @classmethod
    def from_mobileclip_json(cls, text_cfg: dict, projection_dim: int, **overrides) -> "InternVideo2MobileCLIPTextConfig":
        """Build the configuration from the original json's `text_cfg` and its `embed_dim` (the projection width)."""
        unsupported = {
            key: text_cfg[key]
            for key in ("no_scale_embedding", "no_pos_embedding")
            if text_cfg.get(key) not in (None, False)
        }
        if text_cfg.get("model_name", "base") != "base":
            unsupported["model_name"] = text_cfg["model_name"]
        if text_cfg.get("norm_layer", "layer_norm_fp32") not in ("layer_norm_fp32", "layer_norm"):
            unsupported["norm_layer"] = text_cfg["norm_layer"]
        multipliers, heads = text_cfg["ffn_multiplier_per_layer"], text_cfg["n_heads_per_layer"]
        if isinstance(multipliers, (list, tuple)):
            if len(set(multipliers)) != 1:
                unsupported["ffn_multiplier_per_layer"] = multipliers
            multipliers = multipliers[0]
        if isinstance(heads, (list, tuple)):
            if len(set(heads)) != 1:
                unsupported["n_heads_per_layer"] = heads
            heads = heads[0]
        if unsupported:
            raise ValueError(f"Unsupported MobileCLIP text settings (the InternVideo2 models never use them): {unsupported}")
        width = text_cfg["dim"]
        kwargs = dict(
            vocab_size=text_cfg["vocab_size"],
            hidden_size=width,
            num_hidden_layers=text_cfg["n_transformer_layers"],
            num_attention_heads=heads,
            intermediate_size=int(math.ceil(width * multipliers / 16.0) * 16),
            max_position_embeddings=text_cfg["context_length"],
            causal_attention=bool(text_cfg.get("causal_masking", False)),
            projection_dim=projection_dim,
            hidden_dropout=text_cfg.get("embed_dropout", 0.0),
            # CLIP BPE convention: <start_of_text> and <end_of_text> are the last two ids
            bos_token_id=text_cfg["vocab_size"] - 2,
            eos_token_id=text_cfg["vocab_size"] - 1,
        )
        kwargs.update(overrides)
        return cls(**kwargs)


TEXT_TOWER_LLAMA = "llama"
TEXT_TOWER_MOBILECLIP = InternVideo2MobileCLIPTextConfig.model_type

# chinese_alpaca_lora_7b, the LLaMA-7B the InternVL-C text tower was built on (vocab extended to 49954).
_LLAMA_7B = dict(
    vocab_size=49954,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=2048,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)
_CLIP_VISION_COMMON = dict(
    num_frames=8,
    image_position_embedding_type="temporal_mean",
    layer_scale_init_value=0.1,
    layer_scale_force_fp32=False,
)
# Official models (multi_modality/scripts/evaluation/clip/*). 1B/6B: the stage-2 vision encoder (4 -> 8 frames) with
# a re-trained attention pooler; its 768-wide output IS the embedding. S/B/L14: distilled students + LayerNorm/Linear
# alignment to the 512-wide MobileCLIP-B space.
INTERNVIDEO2_CLIP_PRESETS: dict[str, dict] = {
    "internvideo2-clip-1b": dict(
        vision_config=dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=16,
                           intermediate_size=int(1408 * 48 / 11), **_CLIP_VISION_COMMON),
        text_config=dict(model_type=TEXT_TOWER_LLAMA, **_LLAMA_7B),
        projection_dim=768,
    ),
    "internvideo2-clip-6b": dict(
        vision_config=dict(hidden_size=3200, num_hidden_layers=48, num_attention_heads=25, intermediate_size=12800,
                           **_CLIP_VISION_COMMON),
        text_config=dict(model_type=TEXT_TOWER_LLAMA, **_LLAMA_7B),
        projection_dim=768,
    ),
    "internvideo2-clip-s14": dict(
        vision_config=dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                           **_CLIP_VISION_COMMON),
        text_config=dict(model_type=TEXT_TOWER_MOBILECLIP),
        projection_dim=512,
        use_vision_alignment=True,
    ),
    "internvideo2-clip-b14": dict(
        vision_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                           **_CLIP_VISION_COMMON),
        text_config=dict(model_type=TEXT_TOWER_MOBILECLIP),
        projection_dim=512,
        use_vision_alignment=True,
    ),
    "internvideo2-clip-l14": dict(
        vision_config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                           **_CLIP_VISION_COMMON),
        text_config=dict(model_type=TEXT_TOWER_MOBILECLIP),
        projection_dim=512,
        use_vision_alignment=True,
    ),
}


def _text_config_from(value) -> PreTrainedConfig:
    """A LLaMA or MobileCLIP text config from a config object or a dict carrying its `model_type`."""
    if isinstance(value, PreTrainedConfig):
        return value
    value = dict(value or {})
    model_type = value.pop("model_type", TEXT_TOWER_LLAMA)
    if model_type == TEXT_TOWER_LLAMA:
        return LlamaConfig(**value)
    if model_type == TEXT_TOWER_MOBILECLIP:
        return InternVideo2MobileCLIPTextConfig(**value)
    raise ValueError(
        f"text_config.model_type must be {TEXT_TOWER_LLAMA!r} (InternVideo2-CLIP-1B/6B) or {TEXT_TOWER_MOBILECLIP!r} "
        f"(S14/B14/L14); got {model_type!r}."
    )


class _SubConfigs:
    """`sub_configs` of [`InternVideo2ClipConfig`]: the text tower's config class depends on the instance (LLaMA or
    MobileCLIP). Transformers iterates it to propagate settings such as the attention implementation."""

    def __get__(self, instance, owner) -> dict:
        text_class = PreTrainedConfig if instance is None else type(instance.text_config)
        return {"vision_config": InternVideo2VisionConfig, "text_config": text_class}


@strict
class InternVideo2ClipConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2ClipModel`], the InternVideo2-CLIP video-text models. Official sizes:
    [`InternVideo2ClipConfig.from_preset`] with `internvideo2-clip-1b`, `-6b` (LLaMA-7B text tower of InternVL-C),
    `-s14`, `-b14`, `-l14` (MobileCLIP-B text tower).

    Args:
        vision_config (`dict` or [`InternVideo2VisionConfig`]): the video tower: InternVideo2 blocks + attention pooler
            (the original `clip_vision` encoder: LayerScale 0.1 applied in the input dtype, single images embedded with
            the time-mean of the video position table).
        text_config (`dict`, [`LlamaConfig`] or [`InternVideo2MobileCLIPTextConfig`]): the text tower; a dict selects
            the tower with its `model_type` (`"llama"` or `"internvideo2_mobileclip_text"`).
        projection_dim (`int`): width of the shared embedding space: 768 for 1B/6B (the pooler output itself, no
            vision projection), 512 for S/B/L14.
        use_vision_alignment (`bool`, defaults to `False`): S/B/L14: `LayerNorm + Linear(pooler_output_size ->
            projection_dim)` after the pooler (the original `vision_align`). Without it the pooler output must already
            be `projection_dim` wide.
        temperature_init (`float`, defaults to 0.01): initial contrastive temperature (the original `temp`).
        temperature_min (`float`, defaults to 0.01): the temperature is clamped to at least this value (in place at
            every training forward, and on use), never from above, as the original.
    """

    model_type = "internvideo2_clip"
    sub_configs_defaults = {"vision_config": InternVideo2VisionConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 768
    use_vision_alignment: bool = False
    temperature_init: float = 0.01
    temperature_min: float = 0.01
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.text_config = _text_config_from(self.text_config)
        super().__post_init__(**kwargs)

    sub_configs = _SubConfigs()

    @property
    def text_tower(self) -> str:
        """`"llama"` (1B/6B) or `"internvideo2_mobileclip_text"` (S/B/L14)."""
        return TEXT_TOWER_LLAMA if isinstance(self.text_config, LlamaConfig) else TEXT_TOWER_MOBILECLIP

    def validate_architecture(self):
        if not self.use_vision_alignment and self.vision_config.pooler_output_size != self.projection_dim:
            raise ValueError(
                f"Without use_vision_alignment the pooler output ({self.vision_config.pooler_output_size}) is the "
                f"embedding and must be projection_dim ({self.projection_dim}) wide."
            )
        if self.text_tower == TEXT_TOWER_MOBILECLIP and self.text_config.projection_dim != self.projection_dim:
            raise ValueError(
                f"text_config.projection_dim ({self.text_config.projection_dim}) must equal projection_dim "
                f"({self.projection_dim})."
            )
        if not 0.0 < self.temperature_min <= self.temperature_init:
            raise ValueError("Expected 0 < temperature_min <= temperature_init.")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "InternVideo2ClipConfig":
        """Configuration of an official CLIP model; `vision_config` / `text_config` overrides are merged into the
        preset's sub-config dicts."""
        key = name.lower()
        if key not in INTERNVIDEO2_CLIP_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(INTERNVIDEO2_CLIP_PRESETS)}.")
        kwargs = copy.deepcopy(INTERNVIDEO2_CLIP_PRESETS[key])
        for sub in ("vision_config", "text_config"):
            kwargs[sub].update(overrides.pop(sub, None) or {})
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = [
    "INTERNVIDEO2_CLIP_PRESETS",
    "InternVideo2ClipConfig",
    "InternVideo2MobileCLIPTextConfig",
]

"""Conversion of the original stage-2 video-text checkpoints (`multi_modality/`) to [`InternVideo2Model`] /
[`InternVideo2ForRetrieval`], and of a stage-2 vision encoder alone to [`InternVideo2ForPreTraining`].

| original class                                  | keys                                                          |
| ----------------------------------------------- | ------------------------------------------------------------- |
| `InternVideo2_Stage2_visual` (1B)               | `vision_encoder.*`, `text_encoder.bert.*` + `text_encoder.cls.*` (or `text_encoder.*` when saved as a BertModel), `vision_proj`, `text_proj`, `itm_head`, `temp` |
| `InternVideo2_Stage2_audiovisual` (6B)          | the above (no image position tables) + `av_concat_vision_proj` + audio: `audio_encoder.*` (BEATs), `audio_proj`, `av_concat_audio_proj`, `av_fusion`, `avtm_head`, `atm_head` |
| `PretrainInternVideo2` (stage-2 vision encoder) | the `vision_encoder.*` keys without the prefix (the form the original builders load) |

Rules (strict, as the single-modality converter): every key is renamed by one rule, or dropped with a stated reason;
the result is checked against the target model's own names and shapes.

* Stage-1 distillation heads of the vision encoder (`clip_decoder.*`, `final_clip_decoder.*`, `clip_pos_embed`,
  `clip_img_pos_embed`): unused by every video-text output. Dropped with that reason by default; kept (in
  [`InternVideo2ForPreTraining`] as `vision_model`) with `keep_vision_distillation_heads=True`.
* `text_encoder.cls.*` (MLM head): kept by [`InternVideo2ForRetrieval`]; its `decoder.weight` is the word-embedding
  matrix and its `decoder.bias` the prediction bias (both tied in the original, checked equal, stored once).
  Dropped with a reason when converting to the dual encoder [`InternVideo2Model`], as is `itm_head`.
* `embeddings.position_ids`: a buffer equal to `arange` (checked), recomputed at forward time.
* 6B audio (`audio_encoder.*`, `audio_proj.*`, `av_concat_audio_proj.*`, `av_fusion.*`, `avtm_head.*`, `atm_head.*`):
  converted into the audio-video-text model (`config.audio_config`, a [`BeatsConfig`]). The stage-2 file carries no
  BEATs cfg: it comes from the `beats.pth` the model was built from (`beats_cfg`) or a preset (`"beats-iter3"`, the
  released structure). The BEATs keys are renamed by the rules of `conversion/beats.py` under the prefixes
  `audio_encoder.` -> `audio_model.` (its tied relative-bias copies checked equal and stored once). Dropping the
  audio instead is an explicit opt-in (`drop_audio=True`, CLI `--drop-audio`); audio keys with neither are an error.
* The frame count is read from the tensors (`pos_embed` rows), never assumed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..assets import load_bert_uncased_tokenizer
from ..models.beats import BeatsFeatureExtractor
from ..models.beats.configuration_beats import BEATS_PRESETS, BeatsConfig
from ..models.internvideo2_video_text.configuration_internvideo2_video_text import (
    InternVideo2Config,
    InternVideo2TextConfig,
)
from ..models.internvideo2_video_text.modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
)
from ..models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from ..models.internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig
from ..models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForPreTraining
from ..models.model_card import build_model_card, card_metadata, install_section, push_folder_to_hub, usage_section
from .beats import (
    STAGE2_AUDIO_PREFIX,
    beats_config_from_original,
    beats_key_mapping,
    drop_shared_relative_bias_copies,
    load_beats_checkpoint,
)
from .core import (
    ConversionError,
    KeyMapping,
    check_against,
    check_finite,
    check_output_dir,
    conversion_failed,
    dropped_reason_counts,
    expected_tensors,
    print_dropped_reasons,
    read_checkpoint_file,
    save_and_verify,
    unwrap_state_dict,
)
from .internvideo2_vision import _BACKBONE_RULES, _CLIP_TARGET_POSITION_RULES, _decoder_rules, original_kwargs_to_config


FAMILY_STAGE2 = "stage2"
FAMILY_STAGE2_VISION = "stage2_vision"

_IMAGE_POSITION_RULE = ("img_pos_embed", "embeddings.position_embeddings.image")
_CLIP_IMAGE_POSITION_RULE = ("clip_img_pos_embed", "clip_position_embeddings.image")

DISTILLATION_HEAD_REASON = (
    "stage-1 distillation head of the vision encoder (unused by every video-text output; keep it with "
    "keep_vision_distillation_heads=True)"
)
_DISTILLATION_HEAD_PATTERNS = ("clip_decoder.*", "final_clip_decoder.*", "clip_pos_embed", "clip_img_pos_embed")
AUDIO_REASON = "6B audio encoder / audio-video heads: dropped on request (drop_audio=True / --drop-audio)"
AUDIO_MATCHING_HEAD_REASON = "audio(-video)-text matching head; convert to InternVideo2ForRetrieval to keep it"
_AUDIO_PREFIXES = ("audio_encoder.", "audio_proj.", "av_concat_audio_proj.", "av_fusion.", "avtm_head.", "atm_head.")
MLM_HEAD_REASON = "MLM head (training only); convert to InternVideo2ForRetrieval to keep it"
MATCHING_HEAD_REASON = "video-text matching head; convert to InternVideo2ForRetrieval to keep it"


@dataclass
class VideoTextConversionResult:
    state_dict: dict[str, torch.Tensor]
    dropped: dict[str, str]  # original key -> reason
    renamed: dict[str, str]  # our key -> original key


# ----------------------------------------------------------------------------------------------------------------
# Unwrapping and inspection
# ----------------------------------------------------------------------------------------------------------------
def unwrap_stage2_checkpoint(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The state dict inside `{"model": sd}`, `{"module": sd}` (DeepSpeed) or a bare `sd` (the original loaders'
    order), keys unchanged (the stage-2 rules read the `vision_encoder.`/`text_encoder.` prefixes)."""
    return unwrap_state_dict(checkpoint, strip_prefixes=())


def _text_prefix(state_dict: Mapping[str, torch.Tensor]) -> str:
    """`text_encoder.bert.` (saved as BertForMaskedLM, the official `mode="pt"`) or `text_encoder.` (BertModel)."""
    if any(key.startswith("text_encoder.bert.") for key in state_dict):
        return "text_encoder.bert."
    if any(key.startswith("text_encoder.embeddings.") for key in state_dict):
        return "text_encoder."
    raise ConversionError("No text encoder keys (`text_encoder.bert.*` or `text_encoder.embeddings.*`) found.")


def audio_keys(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    return [key for key in state_dict if key.startswith(_AUDIO_PREFIXES)]


def infer_stage2_num_frames(state_dict: Mapping[str, torch.Tensor], image_size: int, prefix: str = "") -> int:
    """Frames the video position table was learned for: `(rows - 1) / grid**2 * tubelet`."""
    kernel = state_dict[f"{prefix}patch_embed.proj.weight"]
    tubelet, patch = kernel.shape[2], kernel.shape[3]
    grid_area = (image_size // patch) ** 2
    rows = state_dict[f"{prefix}pos_embed"].shape[1] - 1
    if rows % grid_area:
        raise ConversionError(
            f"{prefix}pos_embed has 1 + {rows} rows, not 1 + t * {grid_area} for image_size {image_size} / patch "
            f"{patch}: the image size is probably wrong."
        )
    return rows // grid_area * tubelet


def _layer_indices(state_dict: Mapping[str, torch.Tensor], prefix: str, marker: str = "") -> list[int]:
    indices = set()
    for key in state_dict:
        if key.startswith(prefix) and (not marker or marker in key):
            indices.add(int(key[len(prefix) :].split(".", 1)[0]))
    return sorted(indices)


def text_config_from_state_dict(state_dict: Mapping[str, torch.Tensor], **overrides) -> InternVideo2TextConfig:
    """BERT sizes read from the tensors. The head count is not visible in the weights: BERT's 64-wide heads are
    assumed (BERT-large: 16) unless `num_attention_heads` is given."""
    prefix = _text_prefix(state_dict)
    words = state_dict[f"{prefix}embeddings.word_embeddings.weight"]
    layers = _layer_indices(state_dict, f"{prefix}encoder.layer.")
    fusion = _layer_indices(state_dict, f"{prefix}encoder.layer.", ".crossattention.")
    if layers != list(range(len(layers))):
        raise ConversionError(f"Text encoder layers are not numbered 0..n-1: {layers}.")
    if fusion and fusion != list(range(fusion[0], len(layers))):
        raise ConversionError(f"Cross-attention must be in a contiguous block of final layers; found it in {fusion}.")
    kwargs = dict(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=len(layers),
        num_attention_heads=words.shape[1] // 64,
        intermediate_size=state_dict[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state_dict[f"{prefix}embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state_dict[f"{prefix}embeddings.token_type_embeddings.weight"].shape[0],
        fusion_layer=fusion[0] if fusion else len(layers),
        encoder_width=(
            state_dict[f"{prefix}encoder.layer.{fusion[0]}.crossattention.self.key.weight"].shape[1]
            if fusion
            else words.shape[1]
        ),
    )
    kwargs.update(overrides)
    return InternVideo2TextConfig(**kwargs)


def stage2_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    vision_overrides: Mapping | None = None,
    text_overrides: Mapping | None = None,
    audio_config: BeatsConfig | None = None,
    **overrides,
) -> InternVideo2Config:
    """Configuration of an official stage-2 checkpoint: the preset of its vision width (1408 -> 1B, 3200 -> 6B),
    completed from the tensors (frames, image position table, distillation heads, BERT sizes, projection width)."""
    width = state_dict["vision_encoder.patch_embed.proj.weight"].shape[0]
    presets = {1408: "internvideo2-stage2-1b", 3200: "internvideo2-stage2-6b"}
    if width not in presets:
        raise ConversionError(
            f"Vision width {width} is not an official stage-2 size (1408, 3200); build the config yourself "
            "(stage2_config_from_original) and call convert_stage2_state_dict."
        )
    preset = InternVideo2Config.from_preset(presets[width])
    vision = preset.vision_config
    heads = _layer_indices(state_dict, "vision_encoder.clip_decoder.")
    vision_kwargs = dict(
        num_frames=infer_stage2_num_frames(state_dict, vision.image_size, "vision_encoder."),
        image_position_embedding_type="separate" if "vision_encoder.img_pos_embed" in state_dict else "temporal_mean",
        clip_num_return_layers=len(heads) or vision.clip_num_return_layers,
    )
    if heads:
        vision_kwargs["clip_teacher_hidden_size"] = state_dict["vision_encoder.clip_decoder.0.head.weight"].shape[0]
    if "vision_encoder.final_clip_decoder.head.weight" in state_dict:
        vision_kwargs["clip_teacher_final_size"] = state_dict["vision_encoder.final_clip_decoder.head.weight"].shape[0]
    vision_kwargs.update(vision_overrides or {})
    text_config = text_config_from_state_dict(state_dict, **(text_overrides or {}))
    use_projection = any(key.startswith("av_concat_vision_proj.") for key in state_dict)
    kwargs = dict(
        vision_config=_replace_config(vision, **vision_kwargs),
        text_config=text_config,
        projection_dim=state_dict["vision_proj.weight"].shape[0],
        use_vision_token_projection=use_projection,
    )
    if use_projection:
        kwargs["vision_token_projection_size"] = state_dict["av_concat_vision_proj.0.weight"].shape[0]
    if audio_config is not None:
        kwargs["audio_config"] = audio_config
        kwargs["use_audio_matching_head"] = "atm_head.weight" in state_dict
    kwargs.update(overrides)
    return InternVideo2Config(**kwargs)


def audio_config_for(
    state_dict: Mapping[str, torch.Tensor],
    beats_cfg: str | Path | Mapping | None = None,
    audio_preset: str | None = None,
    drop_audio: bool = False,
) -> BeatsConfig | None:
    """The BEATs config of a stage-2 checkpoint's audio encoder: `None` without audio keys or with `drop_audio`;
    otherwise from `beats_cfg` (a `beats.pth` path, whose cfg is read, or the cfg dict) or `audio_preset`. The
    released stage-2 file does not carry the cfg, so one of them is required (a clear error otherwise)."""
    if beats_cfg is not None and audio_preset is not None:
        raise ConversionError("Give either beats_cfg or audio_preset, not both.")
    if not audio_keys(state_dict):
        if beats_cfg is not None or audio_preset is not None:
            raise ConversionError("A BEATs cfg was given but the checkpoint holds no audio_encoder.* keys.")
        return None
    if drop_audio:
        if beats_cfg is not None or audio_preset is not None:
            raise ConversionError("drop_audio=True together with a BEATs cfg: choose one.")
        return None
    if beats_cfg is not None:
        cfg = beats_cfg if isinstance(beats_cfg, Mapping) else load_beats_checkpoint(beats_cfg)[0]
        return beats_config_from_original(cfg)
    if audio_preset is not None:
        if audio_preset.lower() not in BEATS_PRESETS:
            raise ConversionError(f"Unknown audio preset {audio_preset!r}; expected one of {sorted(BEATS_PRESETS)}.")
        return BeatsConfig.from_preset(audio_preset)
    _check_audio_request(state_dict, InternVideo2Config(), drop_audio=False)  # raises the explanatory error
    return None


def _replace_config(config: InternVideo2VisionConfig, **changes) -> InternVideo2VisionConfig:
    values = {key: value for key, value in config.to_dict().items() if key in InternVideo2VisionConfig.__dataclass_fields__}
    values.update(changes)
    return InternVideo2VisionConfig(**values)


def vision_config_from_original(vision_kwargs: Mapping, **overrides) -> InternVideo2VisionConfig:
    """Config of a stage-2 vision encoder from the original `PretrainInternVideo2` constructor kwargs (stage-2 adds
    `sep_image_video_pos_embed` to the stage-1 student's kwargs)."""
    kwargs = dict(vision_kwargs)
    separate = kwargs.pop("sep_image_video_pos_embed", False)
    overrides.setdefault("image_position_embedding_type", "separate" if separate else "temporal_mean")
    return original_kwargs_to_config(kwargs, "distill", **overrides)


def stage2_config_from_original(
    vision_kwargs: Mapping, bert_config: Mapping, projection_dim: int, temperature: float = 0.07, **overrides
) -> InternVideo2Config:
    """Config of a stage-2 model from the original pieces: the vision encoder's constructor kwargs, the BERT json
    (with `fusion_layer` and `encoder_width`, as `build_bert` sets them) and `embed_dim`."""
    bert = dict(bert_config)
    text_fields = InternVideo2TextConfig.__dataclass_fields__
    unknown = sorted(
        key for key in bert
        if key not in text_fields
        and key not in {"architectures", "model_type", "position_embedding_type", "use_cache", "cross_module"}
    )
    if unknown:
        raise ConversionError(f"Unsupported BERT config entries: {unknown}.")
    if bert.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError("Only absolute BERT position embeddings exist in the original stage-2 models.")
    text_config = InternVideo2TextConfig(**{key: value for key, value in bert.items() if key in text_fields})
    return InternVideo2Config(
        vision_config=vision_config_from_original(vision_kwargs),
        text_config=text_config,
        projection_dim=projection_dim,
        temperature_init=temperature,
        **overrides,
    )


# ----------------------------------------------------------------------------------------------------------------
# Renaming tables
# ----------------------------------------------------------------------------------------------------------------
def stage2_vision_rules(config: InternVideo2VisionConfig, with_heads: bool) -> list[tuple[str, str]]:
    """Original (un-prefixed) stage-2 vision encoder keys -> our names: `InternVideo2VisionModel` names, or
    `InternVideo2ForPreTraining` names (backbone under `internvideo2.`) with the distillation heads."""
    backbone = list(_BACKBONE_RULES) + [_IMAGE_POSITION_RULE]
    if not with_heads:
        return backbone
    prefix = InternVideo2ForPreTraining.base_model_prefix + "."
    rules = [(src, prefix + dst) for src, dst in backbone]
    return rules + list(_CLIP_TARGET_POSITION_RULES) + [_CLIP_IMAGE_POSITION_RULE] + _decoder_rules(
        config.clip_decoder_type
    )


def _text_rules(text_prefix: str) -> list[tuple[str, str]]:
    return [
        (f"{text_prefix}embeddings.word_embeddings.weight", "text_model.embeddings.word_embeddings.weight"),
        (f"{text_prefix}embeddings.position_embeddings.weight", "text_model.embeddings.position_embeddings.weight"),
        (f"{text_prefix}embeddings.token_type_embeddings.weight", "text_model.embeddings.token_type_embeddings.weight"),
        (f"{text_prefix}embeddings.LayerNorm.*", "text_model.embeddings.LayerNorm.*"),
        # BERT layer names are kept (attention.self.query, crossattention.output.LayerNorm, intermediate.dense, ...)
        (f"{text_prefix}encoder.layer.{{i}}.*", "text_model.encoder.layer.{i}.*"),
    ]


_MLM_RULES = [
    ("text_encoder.cls.predictions.transform.dense.*", "mlm_head.dense.*"),
    ("text_encoder.cls.predictions.transform.LayerNorm.*", "mlm_head.LayerNorm.*"),
    ("text_encoder.cls.predictions.bias", "mlm_head.decoder.bias"),
]
_HEAD_RULES = [
    ("vision_proj.*", "vision_projection.*"),
    ("text_proj.*", "text_projection.*"),
    ("temp", "temperature"),
]
_TOKEN_PROJECTION_RULES = [
    ("av_concat_vision_proj.0.*", "vision_token_projection.dense.*"),
    ("av_concat_vision_proj.1.*", "vision_token_projection.layer_norm.*"),
]
_AUDIO_RULES = [
    ("audio_proj.*", "audio_projection.*"),
    ("av_concat_audio_proj.0.*", "audio_token_projection.dense.*"),
    ("av_concat_audio_proj.1.*", "audio_token_projection.layer_norm.*"),
    ("av_fusion.*", "audio_video_fusion.*"),
]
_AUDIO_MATCHING_RULES = [("avtm_head.*", "audio_video_matching_head.*"), ("atm_head.*", "audio_matching_head.*")]


def stage2_key_mapping(
    config: InternVideo2Config, text_prefix: str, for_retrieval: bool, drop_audio: bool = False
) -> KeyMapping:
    keep_heads = config.keep_vision_distillation_heads
    rules = [
        (f"vision_encoder.{src}", f"vision_model.{dst}")
        for src, dst in stage2_vision_rules(config.vision_config, keep_heads)
    ]
    rules += _text_rules(text_prefix) + _HEAD_RULES
    if config.use_vision_token_projection:
        rules += _TOKEN_PROJECTION_RULES
    audio_mapping = None
    if config.has_audio and not drop_audio:  # BEATs by its own table, under the stage-2 prefixes
        audio_mapping = beats_key_mapping(config.audio_config, STAGE2_AUDIO_PREFIX, "audio_model.")
        rules += audio_mapping.rules + _AUDIO_RULES
    dropped = [(f"{text_prefix}embeddings.position_ids", "buffer equal to arange(max_positions): recomputed")]
    # tied copies, checked equal to their source in `convert_stage2_state_dict`
    dropped += [
        ("text_encoder.cls.predictions.decoder.weight", "tied to the word embeddings (stored once)"),
        ("text_encoder.cls.predictions.decoder.bias", "tied to text_encoder.cls.predictions.bias (stored once)"),
    ]
    if audio_mapping is not None:
        dropped += audio_mapping.dropped
    if for_retrieval:  # the dual encoder is `internvideo2.*` inside InternVideo2ForRetrieval, next to the heads
        prefix = InternVideo2ForRetrieval.base_model_prefix + "."
        rules = [(src, prefix + dst) for src, dst in rules] + _MLM_RULES + [("itm_head.*", "matching_head.*")]
        if audio_mapping is not None:
            rules += _AUDIO_MATCHING_RULES
    else:
        dropped += [("text_encoder.cls.*", MLM_HEAD_REASON), ("itm_head.*", MATCHING_HEAD_REASON)]
        if audio_mapping is not None:
            dropped += [(src, AUDIO_MATCHING_HEAD_REASON) for src, _ in _AUDIO_MATCHING_RULES]
    if not keep_heads:
        dropped += [(f"vision_encoder.{pattern}", DISTILLATION_HEAD_REASON) for pattern in _DISTILLATION_HEAD_PATTERNS]
    if drop_audio:
        dropped += [(f"{prefix}*", AUDIO_REASON) for prefix in _AUDIO_PREFIXES]
    return KeyMapping(rules, dropped)


def _check_audio_request(state_dict: Mapping[str, torch.Tensor], config: InternVideo2Config, drop_audio: bool) -> None:
    audio = audio_keys(state_dict)
    if drop_audio and config.has_audio:
        raise ConversionError("drop_audio=True with a config that has audio_config: choose one.")
    if audio and not drop_audio and not config.has_audio:
        raise ConversionError(
            f"The checkpoint holds {len(audio)} keys of the 6B audio encoder and audio-video heads (e.g. {audio[:3]}) "
            "but the config has no audio_config. Give the BEATs cfg (beats_cfg= the beats.pth the model was built "
            "from, or audio_preset='beats-iter3'; CLI --beats-cfg / --audio-preset), or pass drop_audio=True (CLI: "
            "--drop-audio) to drop them and convert the video-text part."
        )
    if config.has_audio and not audio:
        raise ConversionError("The config has an audio_config but the checkpoint holds no audio_encoder.* keys.")


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def _check_tied_copies(state_dict: Mapping[str, torch.Tensor], text_prefix: str) -> None:
    pairs = [
        ("text_encoder.cls.predictions.decoder.weight", f"{text_prefix}embeddings.word_embeddings.weight"),
        ("text_encoder.cls.predictions.decoder.bias", "text_encoder.cls.predictions.bias"),
    ]
    # meta tensors (key-layout checks) carry no values to compare
    for copy_key, source_key in pairs:
        if copy_key in state_dict and source_key in state_dict and not state_dict[copy_key].is_meta:
            if not torch.equal(state_dict[copy_key], state_dict[source_key]):
                raise ConversionError(
                    f"{copy_key} differs from {source_key}: the MLM decoder is not tied, which this port requires."
                )
    position_ids = state_dict.get(f"{text_prefix}embeddings.position_ids")
    if position_ids is not None and not position_ids.is_meta and not torch.equal(
        position_ids.reshape(-1).long(), torch.arange(position_ids.numel())
    ):
        raise ConversionError(f"{text_prefix}embeddings.position_ids is not arange(n); this port recomputes it.")


def convert_stage2_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2Config,
    for_retrieval: bool = True,
    drop_audio: bool = False,
    expected: Mapping[str, torch.Size] | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> VideoTextConversionResult:
    """Rename a stage-2 checkpoint (unwrapped, original keys) for [`InternVideo2ForRetrieval`] (`for_retrieval`) or
    [`InternVideo2Model`]. `expected` (our names -> shapes) makes any missing/unexpected key or shape mismatch an
    error. Floating tensors are cast to `dtype` (the released files are bf16; upcasting is exact)."""
    _check_audio_request(state_dict, config, drop_audio)
    text_prefix = _text_prefix(state_dict)
    _check_tied_copies(state_dict, text_prefix)
    shared_bias_dropped = {}
    if config.has_audio:  # BEATs stores its one relative-bias table under every layer: checked equal, kept once
        state_dict, shared_bias_dropped = drop_shared_relative_bias_copies(state_dict, STAGE2_AUDIO_PREFIX)
    mapping = stage2_key_mapping(config, text_prefix, for_retrieval, drop_audio)
    converted, renamed, dropped, unmapped = mapping.apply(state_dict, dtype)
    dropped.update(shared_bias_dropped)
    if unmapped:
        raise ConversionError(
            f"{len(unmapped)} key(s) of the stage-2 checkpoint have no counterpart (neither renamed nor dropped with "
            f"a reason): {unmapped[:20]}{' ...' if len(unmapped) > 20 else ''}."
        )
    if expected is not None:
        # the MLM decoder weight is tied to the word embeddings: it is provided by them
        expected = {k: v for k, v in expected.items() if k != "mlm_head.decoder.weight"}
        check_against(converted, renamed, expected)
    return VideoTextConversionResult(converted, dropped, renamed)


def convert_stage2_vision_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2VisionConfig,
    with_heads: bool = True,
    expected: Mapping[str, torch.Size] | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> VideoTextConversionResult:
    """Rename a bare stage-2 vision encoder state dict (`PretrainInternVideo2` of multi_modality, the form the
    original builders load) for [`InternVideo2ForPreTraining`] (`with_heads`) or [`InternVideo2VisionModel`]."""
    mapping = KeyMapping(
        stage2_vision_rules(config, with_heads),
        [] if with_heads else [(pattern, DISTILLATION_HEAD_REASON) for pattern in _DISTILLATION_HEAD_PATTERNS],
    )
    converted, renamed, dropped, unmapped = mapping.apply(state_dict, dtype)
    if unmapped:
        raise ConversionError(f"Keys without a counterpart in the stage-2 vision encoder: {unmapped[:20]}.")
    if expected is not None:
        check_against(converted, renamed, expected)
    return VideoTextConversionResult(converted, dropped, renamed)


def build_stage2_model(config: InternVideo2Config, for_retrieval: bool = True, device="meta"):
    model_class = InternVideo2ForRetrieval if for_retrieval else InternVideo2Model
    with torch.device(device):
        return model_class(config)


def convert_stage2_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2Config | None = None,
    for_retrieval: bool = True,
    drop_audio: bool = False,
    dtype: torch.dtype = torch.float32,
    beats_cfg: str | Path | Mapping | None = None,
    audio_preset: str | None = None,
) -> tuple[InternVideo2Model, VideoTextConversionResult]:
    """Convert and load strictly: config from the tensors unless given (the BEATs sizes of a 6B audio-video-text
    checkpoint from `beats_cfg` or `audio_preset`, see [`audio_config_for`]), model built on the meta device, renamed
    weights assigned (`load_state_dict(strict=True, assign=True)`), MLM decoder re-tied, `eval()` mode."""
    state_dict = unwrap_stage2_checkpoint(state_dict)
    if config is None:
        config = stage2_config_from_state_dict(
            state_dict, audio_config=audio_config_for(state_dict, beats_cfg, audio_preset, drop_audio)
        )
    model = build_stage2_model(config, for_retrieval)
    result = convert_stage2_state_dict(state_dict, config, for_retrieval, drop_audio, expected_tensors(model), dtype)
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False, assign=True)
    tied = {"mlm_head.decoder.weight"} if for_retrieval else set()
    if set(missing) - tied or unexpected:
        raise ConversionError(f"Loading left missing {sorted(set(missing) - tied)} / unexpected {sorted(unexpected)}.")
    if for_retrieval:
        model.tie_weights()
        if model.mlm_head.decoder.weight is not model.get_input_embeddings().weight:
            raise ConversionError("The MLM decoder could not be tied to the word embeddings.")
    model.eval()
    return model, result


# ----------------------------------------------------------------------------------------------------------------
# Files and command line
# ----------------------------------------------------------------------------------------------------------------
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_stage2_checkpoint(path) -> dict[str, torch.Tensor]:
    """`torch.load` (weights only, memory-mapped when possible) or safetensors, then unwrap; non-finite tensors, and
    truncated or non-tensor files, are refused with a `ConversionError`."""
    state_dict = unwrap_stage2_checkpoint(read_checkpoint_file(path))
    check_finite(state_dict, f"the source file {path}")
    return state_dict


# OpenGVLab's Hub repositories of the official stage-2 sizes, by vision width
_STAGE2_BASE_MODELS = {1408: "OpenGVLab/InternVideo2-Stage2_1B-224p-f4", 3200: "OpenGVLab/InternVideo2-Stage2_6B"}


def stage2_model_card(model, result: VideoTextConversionResult, checkpoint_name: str, files: list[str],
                      base_model: str | None = None):  # fmt: skip
    """The README.md of a converted stage-2 folder: Hub metadata, usage (package and `trust_remote_code`), what was
    verified (measured at conversion, and the parity tests of the converter) and what was dropped."""
    config = model.config
    vision, text = config.vision_config, config.text_config
    retrieval = isinstance(model, InternVideo2ForRetrieval)
    base_model = base_model or _STAGE2_BASE_MODELS.get(vision.hidden_size)
    metadata = card_metadata(
        "zero-shot-video-classification",
        ["video-text-retrieval", "zero-shot-video-classification", "feature-extraction", "converted"],
        base_model,
    )
    reasons = dropped_reason_counts(result.dropped)
    dropped = "".join(f"\n| {count} | {reason} |" for reason, count in reasons.items())
    dropped = f"| dropped source keys | reason |\n| --- | --- |{dropped}" if reasons else "No source key was dropped."
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    example = """inputs = processor(text=["a dog plays in the snow"], videos="video.mp4", return_tensors="pt")
video = model.get_video_features(inputs["pixel_values"]).pooler_output           # L2-normalised
text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
similarity = video @ text.T"""
    sections = [
        f"InternVideo2 stage-2 video-text model ([arXiv 2403.15377](https://arxiv.org/abs/2403.15377), OpenGVLab), "
        f"converted from `{checkpoint_name}` to `{type(model).__name__}` of `transformers-internvideo2`: a "
        f"{vision.num_hidden_layers}-block, {vision.hidden_size}-wide video encoder ({vision.num_frames} frames at "
        f"{vision.image_size} px), a {text.num_hidden_layers}-layer BERT text encoder with fusion layers from layer "
        f"{text.fusion_layer}, projections to {config.projection_dim} dimensions"
        + (", the video-text matching head and the MLM head" if retrieval else "")
        + f"; {num_parameters:,} parameters.",
        install_section(),
        usage_section(
            "AutoModelForPreTraining" if retrieval else "AutoModel",
            "AutoProcessor",
            example,
            pipeline_task="zero-shot-video-classification",
            pipeline_call='classifier("video.mp4", candidate_labels=["playing with a dog", "skiing", "cooking"])',
        ),
        f"""## Verification

Measured at conversion: the {len(result.renamed)} converted tensors were saved ({", ".join(files)}), re-read and
compared bit-exactly (max |diff| 0) with the converted model; every model parameter came from the checkpoint (strict
key mapping, no missing or unexpected key, every shape equal) and every source tensor was finite.

Parity of the converter with the ORIGINAL implementation (the package's `tests/test_video_text_parity.py`, on small
random models run through the original code, float32): max |diff| 9.5e-7 (eager) / 7.2e-7 (SDPA) on the full
stage-2 model (embeddings, similarities, matching logits, MLM logits, the original `evaluation()` matrices). The
outputs of *this* file were not compared with the original code.

{dropped}""",
        """## License

The original InternVideo2 code and OpenGVLab's InternVideo2 model repositories are published under the Apache License
2.0 (<https://github.com/OpenGVLab/InternVideo/blob/main/LICENSE>); check the license of the source checkpoint before
publishing a conversion.""",
    ]
    return build_model_card(metadata, f"InternVideo2 stage 2 ({type(model).__name__}), converted", sections)


def convert_and_save_stage2(
    checkpoint,
    output_dir,
    for_retrieval: bool = True,
    drop_audio: bool = False,
    keep_vision_distillation_heads: bool = False,
    exact_gelu: bool = False,
    dtype: str = "float32",
    save_processor: bool = True,
    config: InternVideo2Config | None = None,
    base_model: str | None = None,
    push_to_hub: str | None = None,
    beats_cfg: str | Path | Mapping | None = None,
    audio_preset: str | None = None,
) -> tuple[InternVideo2Model, VideoTextConversionResult]:
    """Convert an original stage-2 file into a `save_pretrained` folder (config, sharded safetensors, processor).
    The configuration is derived from the tensors for the official sizes, or given as `config`.
    `exact_gelu` switches the vision MLP to the exact GELU of the original pure-PyTorch path (its demo); the
    default is the tanh approximation of the fused MLP the checkpoints were trained and evaluated with.
    `output_dir` only ever holds a complete, verified folder (`core.save_and_verify`) with a model card (`base_model`
    defaults to the OpenGVLab repository of the official size); `push_to_hub` uploads it to that repository."""
    if dtype not in _DTYPES:
        raise ConversionError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
    output_dir = check_output_dir(output_dir)
    state_dict = load_stage2_checkpoint(checkpoint)
    if config is None:  # an official size: preset completed from the tensors
        vision_overrides = {"hidden_act": "gelu"} if exact_gelu else None
        config = stage2_config_from_state_dict(
            state_dict, vision_overrides,
            audio_config=audio_config_for(state_dict, beats_cfg, audio_preset, drop_audio),
            keep_vision_distillation_heads=keep_vision_distillation_heads,
        )  # fmt: skip
    model, result = convert_stage2_checkpoint(state_dict, config, for_retrieval, drop_audio, _DTYPES[dtype])

    def write_processor(folder: Path) -> None:
        if not save_processor:
            return
        try:
            processor = InternVideo2Processor.for_stage2(
                num_frames=config.vision_config.num_frames,
                image_size=config.vision_config.image_size,
                tokenizer=load_bert_uncased_tokenizer(),
                # audio-video-text models: the original's audio preprocessing (fixed settings) goes with the folder
                feature_extractor=BeatsFeatureExtractor() if config.has_audio else None,
            )
            processor.save_pretrained(str(folder))
        except OSError as error:  # the BERT tokenizer's files are missing (FileNotFoundError: no asset package)
            print(f"note: processor not saved ({error}); save InternVideo2Processor next to the weights yourself.")

    def write_processor_and_card(folder: Path) -> None:
        write_processor(folder)
        files = sorted(path.name for path in folder.glob("*.safetensors"))
        card = stage2_model_card(model, result, Path(checkpoint).name, files, base_model)
        card.save(str(folder / "README.md"))

    save_and_verify(model, output_dir, write_processor_and_card)
    if push_to_hub:
        push_folder_to_hub(output_dir, push_to_hub)
    return model, result


def build_argument_parser(parser=None):
    parser = parser or argparse.ArgumentParser(
        description="Convert an original InternVideo2 stage-2 video-text checkpoint (1B, or the video-text part of "
        "6B) to a Transformers folder."
    )
    parser.add_argument("--checkpoint", required=True, help="original .pth/.pt/.safetensors file")
    parser.add_argument("--output", required=True, help="output folder (save_pretrained layout)")
    parser.add_argument("--family", choices=[FAMILY_STAGE2], default=FAMILY_STAGE2, help="checkpoint family")
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument("--beats-cfg", metavar="BEATS.PTH",
                       help="6B with audio: the beats.pth the audio encoder was built from (its cfg gives the sizes)")
    audio.add_argument("--audio-preset", choices=sorted(BEATS_PRESETS),
                       help="6B with audio: a named BEATs structure (the released model: beats-iter3)")
    audio.add_argument("--drop-audio", action="store_true",
                       help="6B: drop the audio encoder and audio-video heads by name and convert the video-text part")
    parser.add_argument("--dual-encoder-only", action="store_true",
                        help="save InternVideo2Model (drop the matching and MLM heads, with reasons)")
    parser.add_argument("--keep-distillation-heads", action="store_true",
                        help="keep the vision encoder's stage-1 distillation heads (unused at inference)")
    parser.add_argument("--exact-gelu", action="store_true",
                        help="exact-GELU vision MLP (the original demo); default: tanh GELU of the fused MLP")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float32")
    parser.add_argument("--base-model", help="Hub id of the source for the card's base_model (default: OpenGVLab's "
                        "repository of the official size)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload the finished folder to this Hub repository")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    try:
        model, result = convert_and_save_stage2(
            args.checkpoint,
            args.output,
            for_retrieval=not args.dual_encoder_only,
            drop_audio=args.drop_audio,
            beats_cfg=args.beats_cfg,
            audio_preset=args.audio_preset,
            keep_vision_distillation_heads=args.keep_distillation_heads,
            exact_gelu=args.exact_gelu,
            dtype=args.dtype,
            base_model=args.base_model,
            push_to_hub=args.push_to_hub,
        )
    except ConversionError as error:
        return conversion_failed(error)
    config = model.config
    print(
        f"Converted {args.checkpoint} -> {args.output} ({type(model).__name__}): "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, {config.vision_config.num_frames} frames, "
        f"{len(result.renamed)} tensors renamed, {len(result.dropped)} dropped."
    )
    print_dropped_reasons(result.dropped)
    return 0


__all__ = [
    "FAMILY_STAGE2",
    "build_argument_parser",
    "convert_and_save_stage2",
    "stage2_model_card",
    "load_stage2_checkpoint",
    "main",
    "FAMILY_STAGE2_VISION",
    "VideoTextConversionResult",
    "audio_keys",
    "audio_config_for",
    "build_stage2_model",
    "convert_stage2_checkpoint",
    "convert_stage2_state_dict",
    "convert_stage2_vision_state_dict",
    "infer_stage2_num_frames",
    "stage2_config_from_original",
    "stage2_config_from_state_dict",
    "stage2_key_mapping",
    "stage2_vision_rules",
    "text_config_from_state_dict",
    "unwrap_stage2_checkpoint",
    "vision_config_from_original",
]

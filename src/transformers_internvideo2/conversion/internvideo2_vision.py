"""Conversion of the original single-modality InternVideo2 checkpoints to this package's models.

The original code (OpenGVLab/InternVideo, `InternVideo2/single_modality/models/`) saves four kinds of vision
checkpoints (plus heads-stripped backbones), all with the same backbone key names:

* `classifier`: fine-tuned `InternVideo2` (internvideo2.py), has `head.weight`
  -> `InternVideo2ForVideoClassification`;
* `attentive_probe`: `InternVideo2` of internvideo2_ap.py, `head.weight` + `extra_mlp.*`
  -> `InternVideo2ForVideoClassification(use_extra_mlp=True)`;
* `pretrain`: stage-1 `PretrainInternVideo2` (1B/6B), has `mae_decoder.*` -> `InternVideo2ForPreTraining`;
* `distill`: `DistInternVideo2` (S14/B14/L14 students), `clip_decoder.*` without `mae_decoder.*`
  -> `InternVideo2ForPreTraining`;
* `backbone`: none of the above (heads stripped) -> `InternVideo2VisionModel`. Any family can also be converted to
  a backbone only (`target="backbone"`), the heads being dropped with a reason each.

The `_cat` linear-probing variant (`internvideo2_cat.py`, features concatenated before the head) has no
counterpart here and is refused with an explicit error.

Conversion is strict: every source key is renamed by exactly one rule of the family's table, or listed in the
returned `dropped` mapping with the reason; the result is then checked against the target model's own parameter
names and shapes, so an unknown key, a missing key or a shape mismatch raises `ConversionError` naming the key.

Public entry points: `load_original_checkpoint` (torch.load + unwrap), `detect_family`, `original_kwargs_to_config`,
`config_from_preset`, `make_config`, `infer_num_frames`, `convert_state_dict`, `convert_checkpoint` (build on the
meta device + strict load), `to_original_state_dict` (reverse renaming), and `convert_and_save` / `main` (the whole
file -> `save_pretrained` folder pipeline behind conversion/convert_internvideo2_to_hf.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import ModelCard

from ..models.internvideo2_vision.configuration_internvideo2_vision import (
    INTERNVIDEO2_VISION_PRESETS,
    InternVideo2VisionConfig,
)
from ..models.internvideo2_vision.modeling_internvideo2_vision import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
    InternVideo2VisionPreTrainedModel,
)
from ..models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..models.model_card import card_metadata, install_section, push_folder_to_hub, usage_section
from .core import (
    DTYPES,
    ConversionError,
    ConversionResult,
    KeyMapping,
    check_against,
    check_output_dir,
    conversion_failed,
    expected_shapes,
    expected_tensors,
    file_sha256,
    load_original_checkpoint,
    save_and_verify,
    unwrap_state_dict,
)


FAMILY_CLASSIFIER = "classifier"
FAMILY_ATTENTIVE_PROBE = "attentive_probe"
FAMILY_PRETRAIN = "pretrain"
FAMILY_DISTILL = "distill"
FAMILY_BACKBONE = "backbone"
FAMILIES = (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE, FAMILY_PRETRAIN, FAMILY_DISTILL, FAMILY_BACKBONE)

FAMILY_MODEL_CLASSES: dict[str, type[InternVideo2VisionPreTrainedModel]] = {
    FAMILY_CLASSIFIER: InternVideo2ForVideoClassification,
    FAMILY_ATTENTIVE_PROBE: InternVideo2ForVideoClassification,
    FAMILY_PRETRAIN: InternVideo2ForPreTraining,
    FAMILY_DISTILL: InternVideo2ForPreTraining,
    FAMILY_BACKBONE: InternVideo2VisionModel,
}

FAMILY_DESCRIPTIONS = {
    FAMILY_CLASSIFIER: "fine-tuned video classifier (original `InternVideo2`, single_modality/models/internvideo2.py)",
    FAMILY_ATTENTIVE_PROBE: "attentive-probing classifier (original `InternVideo2` of internvideo2_ap.py, extra MLP)",
    FAMILY_PRETRAIN: "stage-1 pretraining student (original `PretrainInternVideo2`, internvideo2_pretrain.py)",
    FAMILY_DISTILL: "distilled student (original `DistInternVideo2`, internvideo2_distill.py)",
    FAMILY_BACKBONE: "vision backbone with attention pooler, no task head",
}


# ----------------------------------------------------------------------------------------------------------------
# Loading and unwrapping
# ----------------------------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------------------------
# Family detection
# ----------------------------------------------------------------------------------------------------------------
def _has_prefix(keys, prefix: str) -> bool:
    return any(key.startswith(prefix) for key in keys)


def detect_family(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Tell the checkpoint family from its keys (see the module docstring)."""
    keys = list(state_dict)
    if not _has_prefix(keys, "patch_embed.") or not _has_prefix(keys, "blocks."):
        raise ConversionError(
            "Not an InternVideo2 single-modality vision checkpoint: no `patch_embed.*`/`blocks.*` keys (first keys: "
            f"{keys[:5]}). Multi-modality checkpoints (`vision_encoder.*`, `text_encoder.*`) have their own converter."
        )
    if _has_prefix(keys, "down.") or _has_prefix(keys, "down_norm."):
        raise ConversionError(
            "This is a checkpoint of the `_cat` linear-probing variant (internvideo2_cat.py: `down`/`down_norm` "
            "modules, cls/average features concatenated before the head), which is not supported."
        )
    if "head.weight" in state_dict and "fc_norm.weight" in state_dict:
        head_shape, norm_shape = tuple(state_dict["head.weight"].shape), tuple(state_dict["fc_norm.weight"].shape)
        if len(head_shape) != 2 or len(norm_shape) != 1:  # checked first: the comparison below indexes both
            raise ConversionError(
                f"head.weight must be (num_classes, features) and fc_norm.weight (features,); got {head_shape} and "
                f"{norm_shape}."
            )
        if state_dict["head.weight"].shape[1] != state_dict["fc_norm.weight"].shape[0]:
            raise ConversionError(
                f"head.weight takes {state_dict['head.weight'].shape[1]} features but fc_norm has "
                f"{state_dict['fc_norm.weight'].shape[0]}: this is the `_cat` linear-probing variant "
                "(internvideo2_cat.py, concatenated features), which is not supported."
            )
    if _has_prefix(keys, "mae_decoder."):
        return FAMILY_PRETRAIN
    if _has_prefix(keys, "clip_decoder."):
        return FAMILY_DISTILL
    if "head.weight" in state_dict:
        return FAMILY_ATTENTIVE_PROBE if _has_prefix(keys, "extra_mlp.") else FAMILY_CLASSIFIER
    return FAMILY_BACKBONE


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------
# Sizes fixed by the original registered builders (`internvideo2_{small,base,large,1B,6B}_patch14_224`, the same for
# the `_ap`, `pretrain_` and `distill_` builders). Used when the kwargs name a `builder` (as the keys fixtures do).
_BUILDER_SIZES = {
    "small": dict(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4),
    "base": dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4),
    "large": dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4),
    "1B": dict(embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11),
    "6B": dict(embed_dim=3200, depth=48, num_heads=25, mlp_ratio=4),
}
_BUILDER_COMMON = dict(img_size=224, patch_size=14, attn_pool_num_heads=16, clip_embed_dim=768)
_BUILDER_PATTERN = re.compile(r"(?:^|\.)(?:internvideo2(?:_ap)?|pretrain_internvideo2|distill_internvideo2)_"
                              r"(small|base|large|1B|6B)_patch14_224$")

# Original constructor kwargs that only select kernels, memory savers or initialisation: no effect on the weights
# or (in eval mode) on the outputs, so they are accepted and ignored.
_IGNORED_KWARGS = {
    "use_flash_attn": "attention kernel choice (we use Transformers' attention implementations)",
    "use_fused_rmsnorm": "RMSNorm kernel choice (same maths)",
    "fused_mlp_heuristic": "FusedMLP kernel heuristic",
    "use_checkpoint": "gradient checkpointing (use model.gradient_checkpointing_enable())",
    "checkpoint_num": "gradient checkpointing",
    "init_scale": "initialisation of the head only",
    "head_drop_path_rate": "DropPath of the attention pooler: no parameters, identity in eval (not ported)",
    "qk_scale": "None in every official configuration (scale = head_dim ** -0.5)",
}
_REQUIRED_KWARGS = ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "img_size")
_DECODER_NAMES = {"Linear_Decoder": "linear", "MLP_Decoder": "mlp"}


def _expand_builder(kwargs: Mapping) -> dict:
    kwargs = dict(kwargs)
    builder = kwargs.pop("builder", None)
    if builder is None:
        return kwargs
    match = _BUILDER_PATTERN.search(builder)
    if match is None:
        raise ConversionError(f"Unknown original builder {builder!r} (expected e.g. internvideo2_1B_patch14_224).")
    defaults = {**_BUILDER_COMMON, **_BUILDER_SIZES[match.group(1)]}
    for name, value in defaults.items():
        if name in kwargs and kwargs[name] != value:
            raise ConversionError(f"Builder {builder!r} fixes {name}={value}, but the kwargs give {kwargs[name]}.")
    return {**defaults, **kwargs}


def original_kwargs_to_config(
    kwargs: Mapping,
    family: str,
    num_frames_from_tensors: int | None = None,
    **overrides,
) -> InternVideo2VisionConfig:
    """Translate the original constructor keyword arguments (exactly `case.json["constructor_kwargs"]`, or the
    keys fixtures' `kwargs` with a `builder`) into an [`InternVideo2VisionConfig`].

    `num_frames_from_tensors` (see [`infer_num_frames`]) wins over a missing `num_frames` and must agree with a
    given one. `overrides` are set on the config last (e.g. `hidden_act="gelu_pytorch_tanh"`).
    """
    if family not in FAMILIES:
        raise ConversionError(f"Unknown family {family!r}; expected one of {FAMILIES}.")
    remaining = _expand_builder(kwargs)
    missing = [name for name in _REQUIRED_KWARGS if name not in remaining]
    if missing:
        raise ConversionError(f"The original kwargs lack {missing} (or a `builder` that fixes them).")

    def take(name, default=None):
        return remaining.pop(name, default)

    embed_dim, mlp_ratio = take("embed_dim"), take("mlp_ratio")
    init_values = take("init_values", 1e-5)
    num_frames = take("num_frames", None)
    if num_frames is None:
        num_frames = num_frames_from_tensors
    elif num_frames_from_tensors is not None and num_frames != num_frames_from_tensors:
        raise ConversionError(
            f"The kwargs say num_frames={num_frames} but the position embeddings were learned for "
            f"{num_frames_from_tensors} frames."
        )
    if num_frames is None:
        raise ConversionError("num_frames is neither in the kwargs nor inferable from the checkpoint.")
    config_kwargs = dict(
        hidden_size=embed_dim,
        num_hidden_layers=take("depth"),
        num_attention_heads=take("num_heads"),
        # the original computes the MLP width exactly like this (48/11 * 1408 -> 6144, 4.3637 * 64 -> 279)
        intermediate_size=int(embed_dim * mlp_ratio),
        # flash-attn FusedMLP (the official setting) computes tanh-approximate GELU; the pure-PyTorch Mlp exact GELU
        hidden_act="gelu_pytorch_tanh" if take("use_fused_mlp", True) else "gelu",
        image_size=take("img_size"),
        patch_size=take("patch_size"),
        num_channels=take("in_chans", 3),
        num_frames=num_frames,
        tubelet_size=take("tubelet_size", 1),
        qkv_bias=take("qkv_bias", False),
        use_qk_norm=take("qk_normalization", True),
        layer_scale_init_value=float(init_values or 0.0),
        layer_scale_force_fp32=not take("layerscale_no_force_fp32", False),
        position_embedding_type="separable" if take("sep_pos_embed", False) else "joint",
        pooler_output_size=take("clip_embed_dim", 768),
        pooler_num_attention_heads=take("attn_pool_num_heads", 16),
        drop_path_rate=take("drop_path_rate", 0.0),
    )
    # classification heads
    num_classes = take("num_classes", None)
    fc_drop_rate = take("fc_drop_rate", 0.0)
    if family in (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE):
        if num_classes is None:
            raise ConversionError("A classifier needs `num_classes` in the original kwargs.")
        config_kwargs.update(num_labels=num_classes, classifier_dropout=fc_drop_rate,
                             use_extra_mlp=family == FAMILY_ATTENTIVE_PROBE)
    # stage-1 / distillation alignment heads
    if family in (FAMILY_PRETRAIN, FAMILY_DISTILL):
        clip_count = take("clip_return_layer", 1)
        clip_index = take("clip_student_return_index", None)
        if clip_index is not None:
            clip_index = sorted(clip_index)
            if len(clip_index) < clip_count:
                raise ConversionError(
                    f"clip_student_return_index {clip_index} names fewer layers than clip_return_layer={clip_count}."
                )
            # the original applies its `clip_return_layer` decoders to the first (shallowest) returned layers only
            clip_index = clip_index[:clip_count]
        decoder = take("clip_student_decoder", "Linear_Decoder" if family == FAMILY_PRETRAIN else None)
        if decoder is not None and decoder not in _DECODER_NAMES:
            raise ConversionError(f"clip_student_decoder must be one of {list(_DECODER_NAMES)}, got {decoder!r}.")
        config_kwargs.update(
            clip_teacher_hidden_size=take("clip_teacher_embed_dim"),
            clip_teacher_final_size=take("clip_teacher_final_dim", 0) or 0,
            clip_num_return_layers=clip_count,
            clip_return_interval=take("clip_student_return_interval", 1),
            clip_return_indices=clip_index,
            clip_norm_type=take("clip_norm_type", "l2"),
        )
        if decoder is not None:
            config_kwargs["clip_decoder_type"] = _DECODER_NAMES[decoder]
        if config_kwargs["clip_teacher_hidden_size"] is None:
            raise ConversionError(f"A {family} checkpoint needs `clip_teacher_embed_dim` in the original kwargs.")
    if family == FAMILY_PRETRAIN:
        config_kwargs.update(
            mae_teacher_hidden_size=take("mae_teacher_embed_dim", 0) or 0,
            mae_num_return_layers=take("mae_return_layer", 1),
            mae_return_interval=take("mae_student_return_interval", 1),
            mae_norm_type=take("mae_norm_type", "l2"),
        )
    for name in _IGNORED_KWARGS:
        remaining.pop(name, None)
    # kwargs of another family's head that this family does not build (e.g. num_classes of a backbone-only export)
    head_kwargs = {"num_classes", "fc_drop_rate", "clip_teacher_embed_dim", "clip_teacher_final_dim", "clip_norm_type",
                   "clip_return_layer", "clip_student_return_interval", "clip_student_return_index",
                   "clip_student_decoder", "mae_teacher_embed_dim", "mae_norm_type", "mae_return_layer",
                   "mae_student_return_interval"}
    if family == FAMILY_BACKBONE:
        for name in head_kwargs:
            remaining.pop(name, None)
    if remaining:
        raise ConversionError(f"Unknown or unsupported original kwargs for a {family} checkpoint: {sorted(remaining)}.")
    config_kwargs.update(overrides)
    return InternVideo2VisionConfig(**config_kwargs)


def _patch_geometry(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
    """(hidden_size, tubelet_size, patch_size) read from the Conv3d kernel `(C, in, t, p, p)`."""
    weight = state_dict["patch_embed.proj.weight"]
    if weight.ndim != 5 or weight.shape[3] != weight.shape[4]:
        raise ConversionError(
            f"patch_embed.proj.weight must be a (C, in, t, p, p) Conv3d kernel, got {tuple(weight.shape)}."
        )
    return weight.shape[0], weight.shape[2], weight.shape[3]


def infer_num_frames(state_dict: Mapping[str, torch.Tensor], image_size: int, patch_size: int | None = None) -> int:
    """Number of frames the position embeddings were learned for: temporal rows x tubelet size, where the temporal
    rows are `(rows - 1) / grid**2` of the joint `pos_embed` or the rows of the separable `pos_embed_temporal`."""
    _, tubelet, kernel_patch = _patch_geometry(state_dict)
    patch_size = patch_size or kernel_patch
    if image_size % patch_size:
        raise ConversionError(f"image_size {image_size} is not a multiple of patch_size {patch_size}.")
    grid_area = (image_size // patch_size) ** 2
    if "pos_embed_temporal" in state_dict:
        spatial_rows = state_dict["pos_embed_spatial"].shape[1]
        if spatial_rows != grid_area:
            raise ConversionError(
                f"pos_embed_spatial has {spatial_rows} rows, but image_size {image_size} / patch_size {patch_size} "
                f"gives a {int(math.isqrt(grid_area))}x{int(math.isqrt(grid_area))} grid ({grid_area} rows)."
            )
        temporal_rows = state_dict["pos_embed_temporal"].shape[1]
    elif "pos_embed" in state_dict:
        rows = state_dict["pos_embed"].shape[1] - 1
        if rows % grid_area:
            raise ConversionError(
                f"pos_embed has 1 + {rows} rows, not 1 + t * {grid_area} for image_size {image_size} / patch_size "
                f"{patch_size}: the image size (or the preset) does not describe this checkpoint."
            )
        temporal_rows = rows // grid_area
    else:
        raise ConversionError("The checkpoint has neither `pos_embed` nor `pos_embed_temporal`.")
    return temporal_rows * tubelet


def _count_prefixed(state_dict: Mapping, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    return len(indices)


def config_from_preset(
    preset: str, state_dict: Mapping[str, torch.Tensor], family: str, **overrides
) -> InternVideo2VisionConfig:
    """Configuration of an official size (`internvideo2-s14`, `-b14`, `-l14`, `-1b`, `-6b`; fused GELU, 224 px,
    patch 14) completed from the tensors: frame count, tubelet, position-embedding layout, number of classes, and
    the alignment heads' widths/counts/decoder type. Settings that tensors cannot show take the official values
    (return interval 1, L2-normalised targets)."""
    if preset.lower() not in INTERNVIDEO2_VISION_PRESETS:
        raise ConversionError(f"Unknown preset {preset!r}; expected one of {sorted(INTERNVIDEO2_VISION_PRESETS)}.")
    base = InternVideo2VisionConfig.from_preset(preset)
    _, tubelet, _ = _patch_geometry(state_dict)
    kwargs = dict(
        tubelet_size=tubelet,
        num_frames=infer_num_frames(state_dict, base.image_size, base.patch_size),
        position_embedding_type="separable" if "pos_embed_temporal" in state_dict else "joint",
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        use_qk_norm="blocks.0.attn.q_norm.weight" in state_dict,
    )
    if "blocks.0.ls1.gamma" not in state_dict:
        kwargs["layer_scale_init_value"] = 0.0
    if family in (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE):
        kwargs.update(num_labels=state_dict["head.weight"].shape[0], use_extra_mlp=family == FAMILY_ATTENTIVE_PROBE)
    if family in (FAMILY_PRETRAIN, FAMILY_DISTILL):
        mlp_decoder = "clip_decoder.0.head.0.weight" in state_dict
        head = "head.2" if mlp_decoder else "head"
        kwargs.update(
            clip_teacher_hidden_size=state_dict[f"clip_decoder.0.{head}.weight"].shape[0],
            clip_teacher_final_size=(
                state_dict[f"final_clip_decoder.{head}.weight"].shape[0]
                if f"final_clip_decoder.{head}.weight" in state_dict
                else 0
            ),
            clip_num_return_layers=_count_prefixed(state_dict, "clip_decoder."),
            clip_decoder_type="mlp" if mlp_decoder else "linear",
        )
    if family == FAMILY_PRETRAIN:
        kwargs.update(
            mae_teacher_hidden_size=state_dict["mae_decoder.0.head.2.weight"].shape[0],
            mae_num_return_layers=_count_prefixed(state_dict, "mae_decoder."),
        )
    kwargs.update(overrides)
    return InternVideo2VisionConfig.from_preset(preset, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Key renaming
# ----------------------------------------------------------------------------------------------------------------
# Rules are (original, ours) templates: `{i}` is a block/decoder index, a trailing `*` the rest of the key (parameter
# name). Every source key must match exactly one rule of its family's table.
_BACKBONE_RULES = [
    ("patch_embed.proj.*", "embeddings.patch_embeddings.projection.*"),
    ("cls_token", "embeddings.cls_token"),
    ("pos_embed", "embeddings.position_embeddings.joint"),
    ("pos_embed_spatial", "embeddings.position_embeddings.spatial"),
    ("pos_embed_temporal", "embeddings.position_embeddings.temporal"),
    ("pos_embed_cls", "embeddings.position_embeddings.cls"),
    ("blocks.{i}.norm1.*", "encoder.layer.{i}.norm1.*"),
    ("blocks.{i}.norm2.*", "encoder.layer.{i}.norm2.*"),
    ("blocks.{i}.attn.*", "encoder.layer.{i}.attention.*"),  # qkv, proj, q_norm, k_norm
    ("blocks.{i}.ls1.gamma", "encoder.layer.{i}.layer_scale1.lambda1"),
    ("blocks.{i}.ls2.gamma", "encoder.layer.{i}.layer_scale2.lambda1"),
    ("blocks.{i}.mlp.*", "encoder.layer.{i}.mlp.*"),  # fc1, fc2
    # attention pooler: LayerNorms on the query/key/value inputs, bias-free Linears + separate bias vectors
    ("clip_projector.norm1_q.*", "pooler.query_norm.*"),
    ("clip_projector.norm1_k.*", "pooler.key_norm.*"),
    ("clip_projector.norm1_v.*", "pooler.value_norm.*"),
    ("clip_projector.cross_attn.q.weight", "pooler.q_proj.weight"),
    ("clip_projector.cross_attn.k.weight", "pooler.k_proj.weight"),
    ("clip_projector.cross_attn.v.weight", "pooler.v_proj.weight"),
    ("clip_projector.cross_attn.q_bias", "pooler.q_proj.bias"),
    ("clip_projector.cross_attn.k_bias", "pooler.k_proj.bias"),
    ("clip_projector.cross_attn.v_bias", "pooler.v_proj.bias"),
    ("clip_projector.cross_attn.proj.*", "pooler.out_proj.*"),
]
_CLASSIFIER_RULES = [("fc_norm.*", "fc_norm.*"), ("head.*", "classifier.*")]
_EXTRA_MLP_RULES = [
    ("extra_mlp.0.*", "extra_mlp.norm.*"),
    ("extra_mlp.1.fc1.*", "extra_mlp.fc1.*"),
    ("extra_mlp.1.fc2.*", "extra_mlp.fc2.*"),
]
_CLIP_TARGET_POSITION_RULES = [
    ("clip_pos_embed", "clip_position_embeddings.joint"),
    ("clip_pos_embed_spatial", "clip_position_embeddings.spatial"),
    ("clip_pos_embed_temporal", "clip_position_embeddings.temporal"),
    ("clip_pos_embed_cls", "clip_position_embeddings.cls"),
]
_MAE_RULES = [
    ("mae_pos_embed", "mae_position_embeddings.joint"),
    ("mae_pos_embed_spatial", "mae_position_embeddings.spatial"),
    ("mae_pos_embed_temporal", "mae_position_embeddings.temporal"),
    ("mae_decoder.{i}.head.0.*", "mae_decoders.{i}.fc1.*"),
    ("mae_decoder.{i}.head.2.*", "mae_decoders.{i}.fc2.*"),
    ("mae_decoder.{i}.norm.*", "mae_decoders.{i}.norm.*"),
]


def _decoder_rules(decoder_type: str) -> list[tuple[str, str]]:
    # Linear_Decoder: `head` is one Linear; MLP_Decoder: `head` is Sequential(Linear, GELU, Linear).
    if decoder_type == "mlp":
        heads = [("head.0.*", "fc1.*"), ("head.2.*", "fc2.*")]
    else:
        heads = [("head.*", "fc2.*")]
    rules = []
    for original, ours in heads + [("norm.*", "norm.*")]:
        rules.append((f"clip_decoder.{{i}}.{original}", f"clip_decoders.{{i}}.{ours}"))
        rules.append((f"final_clip_decoder.{original}", f"clip_final_decoder.{ours}"))
    return rules


# Source keys that exist in some original checkpoints but carry nothing our models use, with the reason. Matched
# before the renaming rules. (The official single-modality checkpoints have none: the pooler's DropPath and the
# fused kernels hold no tensors.)
_ALWAYS_DROPPED: list[tuple[str, str]] = []

# What a backbone-only conversion of a checkpoint with heads leaves out, with the reason.
_HEAD_DROP_REASONS = [
    ("fc_norm.*", "classification head (fc_norm) is not part of the backbone"),
    ("head.*", "classification head is not part of the backbone"),
    ("extra_mlp.*", "attentive-probing MLP is part of the classification head, not the backbone"),
    ("clip_pos_embed*", "stage-1 alignment target position table (training only)"),
    ("clip_decoder.*", "stage-1 CLIP alignment decoder (training only)"),
    ("final_clip_decoder.*", "stage-1 final CLIP alignment decoder (training only)"),
    ("mae_pos_embed*", "stage-1 MAE alignment target position table (training only)"),
    ("mae_decoder.*", "stage-1 MAE alignment decoder (training only)"),
]


def key_mapping(family: str, config: InternVideo2VisionConfig, target: str | None = None) -> KeyMapping:
    """The renaming table for `family`, converted to `target` (a family name; defaults to the family itself,
    `"backbone"` keeps only the encoder and pooler). Our names are those of the target model class, e.g. with the
    `internvideo2.` prefix for the head models."""
    target = target or family
    if target not in (family, FAMILY_BACKBONE):
        raise ConversionError(f"A {family} checkpoint converts to {family!r} or {FAMILY_BACKBONE!r}, not {target!r}.")
    dropped = list(_ALWAYS_DROPPED)
    if target == FAMILY_BACKBONE:
        return KeyMapping(list(_BACKBONE_RULES), dropped + (_HEAD_DROP_REASONS if family != FAMILY_BACKBONE else []))
    prefix = FAMILY_MODEL_CLASSES[target].base_model_prefix + "."
    rules = [(src, prefix + dst) for src, dst in _BACKBONE_RULES]
    if family in (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE):
        rules += _CLASSIFIER_RULES
    if family == FAMILY_ATTENTIVE_PROBE:
        rules += _EXTRA_MLP_RULES
    if family in (FAMILY_PRETRAIN, FAMILY_DISTILL):
        rules += _CLIP_TARGET_POSITION_RULES + _decoder_rules(config.clip_decoder_type)
    if family == FAMILY_PRETRAIN:
        rules += _MAE_RULES
    return KeyMapping(rules, dropped)


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    family: str,
    config: InternVideo2VisionConfig,
    expected: Mapping[str, torch.Size] | None = None,
    target: str | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> ConversionResult:
    """Rename `state_dict` (original keys, unwrapped) to our names.

    Args:
        expected: our parameter names and shapes (e.g. `{k: v.shape for k, v in model.state_dict().items()}`);
            when given, any source key without a counterpart, any of ours left without a source and any shape
            mismatch raises `ConversionError` naming the keys.
        target: convert to the family's own class (default) or to `"backbone"` (heads dropped, with reasons).
        dtype: floating-point tensors are cast to it (`None` keeps them; bf16 checkpoints are upcast by default).
    """
    mapping = key_mapping(family, config, target)
    converted, renamed, dropped, unmapped = mapping.apply(state_dict, dtype)
    if unmapped:
        try:
            detected = detect_family(state_dict)
        except ConversionError:
            detected = family
        hint = f" The keys look like a {detected!r} checkpoint." if detected != family else ""
        raise ConversionError(
            f"{len(unmapped)} key(s) of the {family} checkpoint have no counterpart (neither renamed nor dropped "
            f"with a reason): {unmapped[:20]}{' ...' if len(unmapped) > 20 else ''}.{hint}"
        )
    if expected is not None:
        check_against(converted, renamed, expected)
    return ConversionResult(converted, dropped, renamed)


def build_model(
    config: InternVideo2VisionConfig, family: str, target: str | None = None, device: str | torch.device = "meta"
) -> InternVideo2VisionPreTrainedModel:
    """Instantiate the target class of `family` (on the meta device by default: no memory, no initialisation)."""
    model_class = FAMILY_MODEL_CLASSES[target or family]
    with torch.device(device):
        return model_class(config)


def convert_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2VisionConfig,
    family: str,
    target: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[InternVideo2VisionPreTrainedModel, ConversionResult]:
    """Convert and load: build the model on the meta device, rename strictly, then
    `load_state_dict(strict=True, assign=True)` (the converted tensors become the parameters, in `dtype`)."""
    model = build_model(config, family, target)
    result = convert_state_dict(state_dict, family, config, expected_tensors(model), target, dtype)
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    left_on_meta = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if left_on_meta:  # strict loading covers persistent tensors; this would catch a non-persistent buffer
        raise ConversionError(f"Tensors left uninitialised after loading: {left_on_meta}.")
    model.eval()
    return model, result


def to_original_state_dict(
    state_dict: Mapping[str, torch.Tensor], family: str, config: InternVideo2VisionConfig
) -> dict[str, torch.Tensor]:
    """Reverse renaming: our keys of a `family` model back to the original names (every key must map)."""
    mapping = key_mapping(family, config)
    out = {}
    for key, tensor in state_dict.items():
        original = mapping.to_original(key)
        if original is None:
            raise ConversionError(f"Key {key!r} has no original counterpart in the {family} table.")
        out[original] = tensor
    return out


# ----------------------------------------------------------------------------------------------------------------
# End-to-end: original file -> `save_pretrained` folder (used by conversion/convert_internvideo2_to_hf.py)
# ----------------------------------------------------------------------------------------------------------------



@dataclass
class SavedConversion:
    output_dir: Path
    family: str
    target: str
    config: InternVideo2VisionConfig
    num_parameters: int
    dropped: dict[str, str]
    num_renamed: int
    source_sha256: str
    files: list[str]


def _resolve_num_frames(state_dict, image_size: int, patch_size: int, requested: int | None) -> int | None:
    """Frames from the tensors; `requested` (`--num-frames`) is only a fallback and must agree with them."""
    if "pos_embed" not in state_dict and "pos_embed_temporal" not in state_dict:
        return requested
    inferred = infer_num_frames(state_dict, image_size, patch_size)
    if requested is not None and requested != inferred:
        raise ConversionError(
            f"--num-frames {requested} contradicts the checkpoint: its position embeddings were learned for "
            f"{inferred} frames (temporal rows x tubelet size)."
        )
    return inferred


def make_config(
    state_dict: Mapping[str, torch.Tensor],
    family: str,
    preset: str | None = None,
    original_kwargs: Mapping | None = None,
    num_frames: int | None = None,
) -> InternVideo2VisionConfig:
    """The configuration from either an official preset or the original constructor kwargs (exactly one)."""
    if (preset is None) == (original_kwargs is None):
        raise ConversionError("Give exactly one of a preset or the original constructor kwargs.")
    if preset is not None:
        if preset.lower() not in INTERNVIDEO2_VISION_PRESETS:
            raise ConversionError(f"Unknown preset {preset!r}; expected one of {sorted(INTERNVIDEO2_VISION_PRESETS)}.")
        base = InternVideo2VisionConfig.from_preset(preset)
        # validates --num-frames against the tensors; config_from_preset then reads the same count from them
        _resolve_num_frames(state_dict, base.image_size, base.patch_size, num_frames)
        return config_from_preset(preset, state_dict, family)
    kwargs = _expand_builder(original_kwargs)
    if "img_size" not in kwargs or "patch_size" not in kwargs:
        raise ConversionError("The original kwargs need img_size and patch_size (or a builder).")
    frames = _resolve_num_frames(state_dict, kwargs["img_size"], kwargs["patch_size"], num_frames)
    original_kwargs = dict(original_kwargs)
    if family == FAMILY_DISTILL and "clip_student_decoder" not in original_kwargs:
        # not stated: read it from the tensors (MLP_Decoder's `head` is a Sequential, Linear_Decoder's a Linear)
        mlp = "clip_decoder.0.head.0.weight" in state_dict
        original_kwargs["clip_student_decoder"] = "MLP_Decoder" if mlp else "Linear_Decoder"
    return original_kwargs_to_config(original_kwargs, family, frames)


def _save_video_processor(output_dir: Path, config: InternVideo2VisionConfig):
    processor = InternVideo2VideoProcessor(
        num_frames=config.num_frames,
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
    )
    processor.save_pretrained(str(output_dir))
    return processor


def _model_card(saved: SavedConversion, checkpoint_name: str, config_source: str, base_model: str | None = None):
    config = saved.config
    auto_class = {
        InternVideo2ForVideoClassification: "AutoModelForVideoClassification",
        InternVideo2ForPreTraining: "AutoModelForPreTraining",
        InternVideo2VisionModel: "AutoModel",
    }[FAMILY_MODEL_CLASSES[saved.target]]
    pipeline_tag = "video-classification" if saved.target in (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE) else None
    data = card_metadata(pipeline_tag, ["vision", "converted"], base_model)
    example = """inputs = processor(video, return_tensors="pt")  # pixel_values (batch, frames, 3, height, width)
outputs = model(**inputs)"""
    usage = usage_section(auto_class, "AutoVideoProcessor", example, pipeline_task=pipeline_tag,
                          pipeline_call='classifier("video.mp4", top_k=5)')  # fmt: skip
    gelu = ("tanh-approximate GELU, `gelu_pytorch_tanh`, as the original fused MLP"
            if config.hidden_act == "gelu_pytorch_tanh" else "exact GELU, `gelu`, as the original pure-PyTorch MLP")
    dropped = "".join(f"\n| `{key}` | {reason} |" for key, reason in sorted(saved.dropped.items()))
    dropped_section = (f"| dropped source key | reason |\n| --- | --- |{dropped}" if saved.dropped
                       else "No source key was dropped: every tensor of the original file is in this model.")
    content = f"""---
{data.to_yaml()}
---

# InternVideo2 ({saved.family.replace('_', ' ')}), converted

InternVideo2 ([arXiv 2403.15377](https://arxiv.org/abs/2403.15377), OpenGVLab) vision encoder in the
`transformers-internvideo2` format: **{FAMILY_DESCRIPTIONS[saved.family]}**, loaded as
`{FAMILY_MODEL_CLASSES[saved.target].__name__}`.

## Source

| | |
| --- | --- |
| original file | `{checkpoint_name}` |
| sha256 | `{saved.source_sha256}` |
| detected family | `{saved.family}` |
| configuration from | {config_source} |

## Architecture

{config.hidden_size} wide, {config.num_hidden_layers} blocks, {config.num_attention_heads} heads,
MLP {config.intermediate_size} with {gelu}; {config.num_frames} frames (tubelet {config.tubelet_size})
at {config.image_size} px, patch {config.patch_size}, {config.position_embedding_type} position embeddings;
attention pooler to {config.pooler_output_size}; {saved.num_parameters:,} parameters. Other frame counts and
resolutions run with `interpolate_pos_encoding=True`.

{install_section()}
{usage}
## Conversion and what was verified

Converted with `conversion/convert_internvideo2_to_hf.py` (package `transformers-internvideo2`):

* strict key mapping: all {saved.num_renamed} tensors renamed by the family's rule table, none left over, every model
  parameter provided, every shape equal (any deviation is an error);
* the number of parameters equals the number of elements in the source file's mapped tensors;
* every source tensor was finite; the saved safetensors were re-read and compared bit-exactly with the converted
  tensors (measured max |diff| 0);
* the frame count ({config.num_frames}) was read from the position-embedding tensors, not assumed;
* the conversion code itself is tested for numerical parity (max |diff| < 1e-5 in float32, observed 1.1e-6, every
  intermediate output; the package's `tests/test_conversion_parity.py`) against outputs of the original
  implementation on small random classifier, stage-1 and distillation models.
  The outputs of *this* file were not compared with the original code.

{dropped_section}

## License and citation

The original InternVideo2 code and OpenGVLab's model repositories are published under the Apache License 2.0
(<https://github.com/OpenGVLab/InternVideo/blob/main/LICENSE>); check the license of the source checkpoint before
publishing a conversion.

```bibtex
@article{{wang2024internvideo2,
  title={{InternVideo2: Scaling Foundation Models for Multimodal Video Understanding}},
  author={{Wang, Yi and Li, Kunchang and Li, Xinhao and Yu, Jiashuo and He, Yinan and others}},
  journal={{arXiv preprint arXiv:2403.15377}},
  year={{2024}}
}}
```
"""
    return ModelCard(content)


def _read_labels(path: str | Path) -> list[str]:
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith(("[", "{")):
        loaded = json.loads(text)
        if isinstance(loaded, dict):  # {"0": "abseiling", ...}
            return [loaded[str(i)] for i in range(len(loaded))]
        return list(loaded)
    return [line.strip() for line in text.splitlines() if line.strip()]


def convert_and_save(
    checkpoint: str | Path,
    output_dir: str | Path,
    preset: str | None = None,
    original_kwargs: Mapping | None = None,
    num_frames: int | None = None,
    family: str | None = None,
    backbone_only: bool = False,
    dtype: str = "float32",
    labels: list[str] | None = None,
    push_to_hub: str | None = None,
    base_model: str | None = None,
) -> SavedConversion:
    """Convert an original checkpoint file into a `save_pretrained` folder: config, safetensors (2 GB shards), video
    processor config (when the processor module is available) and a README.md model card."""
    if dtype not in DTYPES:
        raise ConversionError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    checkpoint, output_dir = Path(checkpoint), check_output_dir(output_dir)
    state_dict = load_original_checkpoint(checkpoint)
    detected = detect_family(state_dict)
    family = family or detected
    if family not in FAMILIES:
        raise ConversionError(f"Unknown family {family!r}; expected one of {FAMILIES}.")
    target = FAMILY_BACKBONE if backbone_only else family
    # a backbone-only export gets a backbone config (no head settings), whatever the source family
    config = make_config(state_dict, target, preset, original_kwargs, num_frames)
    if labels is not None:
        if target not in (FAMILY_CLASSIFIER, FAMILY_ATTENTIVE_PROBE):
            raise ConversionError("Class labels only apply to a classifier conversion.")
        if len(labels) != config.num_labels:
            raise ConversionError(f"{len(labels)} labels given for a {config.num_labels}-class head.")
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: index for index, label in enumerate(labels)}
    model, result = convert_checkpoint(state_dict, config, family, target, DTYPES[dtype])
    config_source = f"preset `{preset}`" if preset else "the original constructor kwargs"
    saved = SavedConversion(
        output_dir=output_dir,
        family=family,
        target=target,
        config=config,
        num_parameters=sum(p.numel() for p in model.parameters()),
        dropped=result.dropped,
        num_renamed=len(result.renamed),
        source_sha256=file_sha256(checkpoint),
        files=[],
    )
    card = _model_card(saved, checkpoint.name, config_source, base_model)

    def write_processor_and_card(folder: Path) -> None:
        _save_video_processor(folder, config)
        card.save(str(folder / "README.md"))

    saved.files = save_and_verify(model, output_dir, write_processor_and_card)
    if push_to_hub:
        push_folder_to_hub(output_dir, push_to_hub)
    return saved


def build_argument_parser(parser=None):
    """Arguments of the converter (shared by the script and the `internvideo2 convert` command)."""
    parser = parser or argparse.ArgumentParser(
        description="Convert an original single-modality InternVideo2 checkpoint to a Transformers folder."
    )
    parser.add_argument("--checkpoint", required=True, help="original .pth/.bin/.safetensors file")
    parser.add_argument("--output", required=True, help="output folder (save_pretrained layout)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=sorted(INTERNVIDEO2_VISION_PRESETS), help="official size")
    source.add_argument("--original-kwargs", metavar="FILE.json",
                        help="JSON object of the original constructor keyword arguments")
    parser.add_argument("--num-frames", type=int, help="only needed when the checkpoint has no position embeddings; "
                        "otherwise it must agree with them")
    parser.add_argument("--family", choices=FAMILIES, help="force the family instead of detecting it from the keys")
    parser.add_argument("--backbone-only", action="store_true",
                        help="save only the encoder + attention pooler (InternVideo2VisionModel), dropping heads")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                        help="dtype of the saved weights (bf16 sources are upcast to float32 by default)")
    parser.add_argument("--labels", metavar="FILE", help="class names: one per line, or a JSON list / id->name dict")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload the finished folder to this Hub repository")
    parser.add_argument("--base-model", help="Hub id of the source checkpoint, for the card's base_model")
    return parser


def run_from_args(args) -> SavedConversion:
    original_kwargs = None
    if args.original_kwargs:
        original_kwargs = json.loads(Path(args.original_kwargs).read_text(encoding="utf-8"))
        if not isinstance(original_kwargs, dict):
            raise ConversionError(f"{args.original_kwargs} must hold a JSON object of keyword arguments.")
    saved = convert_and_save(
        args.checkpoint,
        args.output,
        preset=args.preset,
        original_kwargs=original_kwargs,
        num_frames=args.num_frames,
        family=args.family,
        backbone_only=args.backbone_only,
        dtype=args.dtype,
        labels=_read_labels(args.labels) if args.labels else None,
        push_to_hub=args.push_to_hub,
        base_model=args.base_model,
    )
    print(f"Converted {args.checkpoint} ({saved.family}) -> {saved.output_dir}: {saved.num_parameters:,} parameters, "
          f"{saved.config.num_frames} frames, {len(saved.dropped)} dropped key(s); files: {', '.join(saved.files)}")
    for key, reason in sorted(saved.dropped.items()):
        print(f"  dropped {key}: {reason}")
    return saved


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    try:
        run_from_args(args)
    except ConversionError as error:
        return conversion_failed(error)
    return 0

__all__ = [
    "ConversionError",
    "ConversionResult",
    "FAMILIES",
    "FAMILY_MODEL_CLASSES",
    "build_argument_parser",
    "build_model",
    "convert_and_save",
    "check_against",
    "config_from_preset",
    "convert_checkpoint",
    "convert_state_dict",
    "detect_family",
    "expected_shapes",
    "infer_num_frames",
    "key_mapping",
    "load_original_checkpoint",
    "main",
    "make_config",
    "original_kwargs_to_config",
    "to_original_state_dict",
    "unwrap_state_dict",
]

"""Conversion of the InternVideo2-CLIP models into one self-contained [`InternVideo2ClipModel`] folder.

The released CLIP files are *deltas*: they hold only what the CLIP stage trained (the vision attention pooler, the
S/B/L14 `vision_align`, `temp`, and for 1B/6B the LLaMA rotary `inv_freq` buffers). The rest comes from two other
files, exactly as the original `load_checkpoint` assembles it:

| model         | vision source                                        | text source                                 |
| ------------- | ---------------------------------------------------- | ------------------------------------------- |
| CLIP-1B / 6B  | stage-2 checkpoint (`vision_encoder.*`, 4 frames; the position table is resampled linearly to 8 frames) | InternVL-C `internvl_c_13b_224px.pth` (`transformer.*` LLaMA + `text_projection`) |
| CLIP-S/B/L14  | distilled stage-1 student (un-prefixed keys, 8 frames)  | Apple `mobileclip_blt.pt` (`text_encoder.*`) |

Later sources override earlier ones (vision, text, then the CLIP delta), every key of every source is either mapped
or dropped with a stated reason, and the assembled state dict must cover the model exactly (strict).

LoRA (CLIP-1B/6B text tower, PEFT `r=16, alpha=32` on `q_proj`/`v_proj`): `W + (alpha / r) B A` is merged into the
plain LLaMA weight at conversion; no PEFT wrapper exists at run time. Both PEFT namings are recognised: the old one
(`q_proj.weight` + `q_proj.lora_A.default.weight`) and the one of PEFT >= 0.7 (`q_proj.base_layer.weight`). A LoRA
factor without its partner or without its base weight is an error, never skipped (third-party loaders silently left
the q/v weights of all 32 layers random with the new naming).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import LlamaConfig

from ..models.internvideo2_clip.configuration_internvideo2_clip import (
    TEXT_TOWER_LLAMA,
    InternVideo2ClipConfig,
    InternVideo2MobileCLIPTextConfig,
)
from ..assets import load_clip_bpe_tokenizer, load_llama_tokenizer
from ..models.internvideo2_clip.modeling_internvideo2_clip import InternVideo2ClipModel
from ..models.internvideo2_clip.processing_internvideo2_clip import InternVideo2ClipProcessor
from ..models.internvideo2_vision.modeling_internvideo2_vision import _resample_time
from .core import (
    DTYPES,
    ConversionError,
    KeyMapping,
    check_against,
    check_output_dir,
    conversion_failed,
    load_original_checkpoint,
    print_dropped_reasons,
    save_and_verify,
    unwrap_state_dict,
)
from .internvideo2_vision import _BACKBONE_RULES, FAMILY_BACKBONE, original_kwargs_to_config


logger = logging.getLogger(__name__)

FAMILY_CLIP = "clip"
DEFAULT_LORA_ALPHA = 32.0  # the original LoraConfig(r=16, lora_alpha=32)

_VISION_RULES = [(f"vision_encoder.{src}", f"vision_model.{dst}") for src, dst in _BACKBONE_RULES] + [
    ("vision_align.0.*", "vision_alignment.layer_norm.*"),
    ("vision_align.1.*", "vision_alignment.dense.*"),
    ("temp", "temperature"),
]
_LLAMA_RULES = [
    ("text_encoder.transformer.embed_tokens.weight", "text_model.embed_tokens.weight"),
    ("text_encoder.transformer.layers.{i}.*", "text_model.layers.{i}.*"),
    ("text_encoder.transformer.norm.weight", "text_model.norm.weight"),
    ("text_encoder.text_projection", "text_projection.weight"),
]
_MOBILECLIP_RULES = [
    ("text_encoder.embedding_layer.weight", "text_model.token_embedding.weight"),
    ("text_encoder.positional_embedding.pos_embed.pos_embed", "text_model.position_embedding"),
    ("text_encoder.transformer.{i}.pre_norm_mha.0.*", "text_model.layers.{i}.attention_norm.*"),
    ("text_encoder.transformer.{i}.pre_norm_mha.1.*", "text_model.layers.{i}.attention.*"),  # qkv_proj, out_proj
    ("text_encoder.transformer.{i}.pre_norm_ffn.0.*", "text_model.layers.{i}.mlp_norm.*"),
    ("text_encoder.transformer.{i}.pre_norm_ffn.1.*", "text_model.layers.{i}.mlp.fc1.*"),
    ("text_encoder.transformer.{i}.pre_norm_ffn.4.*", "text_model.layers.{i}.mlp.fc2.*"),
    ("text_encoder.final_layer_norm.*", "text_model.final_layer_norm.*"),
    ("text_encoder.projection_layer", "text_projection.weight"),
]
ROTARY_REASON = (
    "LLaMA rotary inv_freq buffer: recomputed in float32 from the config (the released buffers are bf16-rounded)"
)
LORA_MERGED_REASON = "LoRA factor merged into the base weight (W + alpha/r * B @ A)"
_LLAMA_DROPPED = [("text_encoder.transformer.layers.{i}.self_attn.rotary_emb.inv_freq", ROTARY_REASON)]
# the original stores these projections as `x @ P` matrices (in, out); ours are `nn.Linear` weights (out, in)
_TRANSPOSED = ("text_projection.weight",)


@dataclass
class ClipConversionResult:
    state_dict: dict[str, torch.Tensor]
    dropped: dict[str, str]  # source key -> reason
    renamed: dict[str, str]  # our key -> source key
    merged_lora: list[str] = field(default_factory=list)  # base weights that received a LoRA update


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------
_IGNORED_MODEL_KEYS = {
    # training switches of the original config: which parts are frozen, where the sources are
    "model_cls", "freeze_vision", "open_vision_clip_projector", "freeze_text", "open_text_projection",
    "open_text_lora", "vision_ckpt_path", "load_vision_ckpt_from_internvideo2_stage2", "vision_ckpt_t_size",
    "text_ckpt_path", "extra_ckpt_path", "tokenizer_path",
}  # fmt: skip


def clip_config_from_original(model_config: Mapping, text_config: Mapping, **overrides) -> InternVideo2ClipConfig:
    """Config from the original `config.model` dict and the text tower's json: the LLaMA `config.json` (1B/6B) or
    the MobileCLIP json (`{"embed_dim", "text_cfg"}`, S/B/L14)."""
    model = dict(model_config)
    unknown = sorted(set(model) - _IGNORED_MODEL_KEYS - {"vision_encoder", "text_encoder", "temp", "temp_min"})
    if unknown:
        raise ConversionError(f"Unsupported original CLIP config entries: {unknown}.")
    vision_kwargs = dict(model["vision_encoder"])
    vision_kwargs.pop("name", None)
    align_dim = vision_kwargs.pop("align_dim", None)
    if vision_kwargs.pop("drop_cls_token", False):
        raise ConversionError("drop_cls_token=True is not used by any InternVideo2-CLIP model and is not supported.")
    # the CLIP vision encoder: LayerScale in the input dtype (layerscale_no_force_fp32), images = time-mean table
    vision = original_kwargs_to_config(vision_kwargs, FAMILY_BACKBONE, image_position_embedding_type="temporal_mean")
    if "text_cfg" in text_config:  # MobileCLIP json
        text = InternVideo2MobileCLIPTextConfig.from_mobileclip_json(text_config["text_cfg"], text_config["embed_dim"])
        if align_dim is None:
            raise ConversionError("The S/B/L14 CLIP models need vision_encoder.align_dim (the vision_align width).")
        if align_dim != text.projection_dim:
            raise ConversionError(f"align_dim {align_dim} differs from the MobileCLIP embed_dim {text.projection_dim}.")
        projection_dim, use_alignment = align_dim, True
    else:
        llama = {key: value for key, value in text_config.items() if key not in ("architectures", "model_type")}
        text = LlamaConfig(**llama)
        projection_dim, use_alignment = vision.pooler_output_size, False
    kwargs = dict(
        vision_config=vision,
        text_config=text,
        projection_dim=projection_dim,
        use_vision_alignment=use_alignment,
        temperature_init=float(model.get("temp", 0.01)),
        temperature_min=float(model.get("temp_min", 0.01)),
    )
    kwargs.update(overrides)
    return InternVideo2ClipConfig(**kwargs)


# ----------------------------------------------------------------------------------------------------------------
# LoRA merging
# ----------------------------------------------------------------------------------------------------------------
_LORA_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<factor>[AB])(?:\.(?P<adapter>[^.]+))?\.weight\Z")
_BASE_LAYER = re.compile(r"(?P<module>.+)\.base_layer\.(?P<rest>[^.]+)\Z")


def merge_lora(
    state_dict: Mapping[str, torch.Tensor], lora_alpha: float = DEFAULT_LORA_ALPHA
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Merge PEFT LoRA factors into their base weights: `W + (lora_alpha / r) * B @ A`, `r` read from the factors.

    Returns `(state_dict without LoRA keys and with `base_layer.` removed, dropped {lora key: reason}, merged base
    keys)`. Raises on an unpaired factor, a factor without base weight, several adapters on one module, and a module
    saved under both namings."""
    out = dict(state_dict)
    dropped: dict[str, str] = {}
    # new PEFT naming: `x.base_layer.weight` -> `x.weight`
    for key in [k for k in out if _BASE_LAYER.match(k)]:
        match = _BASE_LAYER.match(key)
        plain = f"{match['module']}.{match['rest']}"
        if plain in out:
            raise ConversionError(f"Both {key!r} and {plain!r} are present: two copies of one base weight.")
        out[plain] = out.pop(key)
    factors: dict[str, dict] = {}
    for key in [k for k in out if ".lora_" in k]:
        match = _LORA_KEY.match(key)
        if match is None:
            raise ConversionError(
                f"{key!r} looks like a LoRA parameter of a kind this converter does not merge (only PEFT lora_A / "
                "lora_B Linear factors are)."
            )
        entry = factors.setdefault(match["module"], {"adapters": set()})
        entry["adapters"].add(match["adapter"] or "")
        entry[match["factor"]] = (key, out.pop(key))
    merged = []
    for module, parts in sorted(factors.items()):
        if len(parts["adapters"]) > 1:
            raise ConversionError(f"{module} carries several LoRA adapters {sorted(parts['adapters'])}; merge one.")
        if "A" not in parts or "B" not in parts:
            present = (parts.get("A") or parts.get("B"))[0]
            raise ConversionError(f"LoRA factor {present!r} has no partner (lora_A and lora_B come in pairs).")
        (key_a, lora_a), (key_b, lora_b) = parts["A"], parts["B"]
        base_key = f"{module}.weight"
        if base_key not in out:
            raise ConversionError(
                f"LoRA factors {key_a!r} / {key_b!r} have no base weight ({base_key!r} or {module}.base_layer.weight)."
            )
        base = out[base_key]
        rank = lora_a.shape[0]
        if lora_b.shape[1] != rank or (lora_b.shape[0], lora_a.shape[1]) != tuple(base.shape):
            raise ConversionError(
                f"LoRA shapes do not fit {base_key} {tuple(base.shape)}: A {tuple(lora_a.shape)}, B {tuple(lora_b.shape)}."
            )
        if not base.is_meta:
            update = (lora_b.float() @ lora_a.float()) * (lora_alpha / rank)
            out[base_key] = (base.float() + update).to(base.dtype)
        merged.append(base_key)
        dropped[key_a] = dropped[key_b] = LORA_MERGED_REASON
    return out, dropped, merged


# ----------------------------------------------------------------------------------------------------------------
# Renaming (a full original CLIP state dict -> ours)
# ----------------------------------------------------------------------------------------------------------------
def clip_key_mapping(config: InternVideo2ClipConfig) -> KeyMapping:
    if config.text_tower == TEXT_TOWER_LLAMA:
        return KeyMapping(_VISION_RULES + _LLAMA_RULES, list(_LLAMA_DROPPED))
    return KeyMapping(_VISION_RULES + _MOBILECLIP_RULES)


def _check_rotary(state_dict: Mapping[str, torch.Tensor], config: InternVideo2ClipConfig) -> None:
    """The dropped `inv_freq` buffers must describe the rotary embedding the config computes (bf16 tolerance)."""
    text = config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    theta = (getattr(text, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    expected = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    for key, tensor in state_dict.items():
        if key.endswith("rotary_emb.inv_freq") and not tensor.is_meta:
            if tensor.shape != expected.shape or not torch.allclose(tensor.float(), expected, rtol=1e-2, atol=0):
                raise ConversionError(
                    f"{key} does not match the rotary embedding of the config (head_dim {head_dim}, theta {theta})."
                )


def _reshape_to_model(
    converted: dict[str, torch.Tensor], renamed: Mapping[str, str], expected: Mapping[str, torch.Size] | None
) -> None:
    for key in _TRANSPOSED:
        if key in converted:
            converted[key] = converted[key].t().contiguous() if not converted[key].is_meta else converted[key].t()
    position_key = "text_model.position_embedding"
    if position_key in converted and converted[position_key].ndim == 4:
        table = converted[position_key]
        if tuple(table.shape[:2]) != (1, 1):
            raise ConversionError(f"{renamed[position_key]} must be (1, 1, context, width); got {tuple(table.shape)}.")
        converted[position_key] = table.reshape(table.shape[2], table.shape[3])


def convert_clip_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2ClipConfig,
    expected: Mapping[str, torch.Size] | None = None,
    lora_alpha: float = DEFAULT_LORA_ALPHA,
    dtype: torch.dtype | None = torch.float32,
) -> ClipConversionResult:
    """Rename a complete original CLIP state dict (`vision_encoder.*`, `vision_align.*`, `text_encoder.*`, `temp`)
    for [`InternVideo2ClipModel`], merging LoRA. With `expected` (our names -> shapes), any missing or unexpected key
    or shape mismatch is an error."""
    merged_state, lora_dropped, merged = merge_lora(state_dict, lora_alpha)
    if config.text_tower == TEXT_TOWER_LLAMA:
        _check_rotary(merged_state, config)
    converted, renamed, dropped, unmapped = clip_key_mapping(config).apply(merged_state, dtype)
    if unmapped:
        raise ConversionError(
            f"{len(unmapped)} key(s) of the CLIP checkpoint have no counterpart (neither renamed nor dropped with a "
            f"reason): {unmapped[:20]}{' ...' if len(unmapped) > 20 else ''}."
        )
    _reshape_to_model(converted, renamed, expected)
    if expected is not None:
        check_against(converted, renamed, expected)
    return ClipConversionResult(converted, {**lora_dropped, **dropped}, renamed, merged)


def build_clip_model(config: InternVideo2ClipConfig, device="meta") -> InternVideo2ClipModel:
    with torch.device(device):
        return InternVideo2ClipModel(config)


def convert_clip_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2ClipConfig,
    lora_alpha: float = DEFAULT_LORA_ALPHA,
    dtype: torch.dtype = torch.float32,
) -> tuple[InternVideo2ClipModel, ClipConversionResult]:
    """Convert a complete original CLIP state dict and load it strictly into a fresh model (built on the meta
    device, weights assigned), in `eval()` mode."""
    model = build_clip_model(config)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    result = convert_clip_state_dict(unwrap_state_dict(state_dict), config, expected, lora_alpha, dtype)
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    _restore_non_persistent_buffers(model)
    model.eval()
    return model, result


def _restore_non_persistent_buffers(model: InternVideo2ClipModel) -> None:
    """Buffers that are not saved (LLaMA's rotary `inv_freq`) stay on the meta device after an assigned load:
    rebuild the module that owns them on the CPU, from its config, and take its buffers."""
    for module in model.modules():
        meta = [name for name, buffer in module.named_buffers(recurse=False) if buffer.is_meta]
        if meta and "Rotary" in type(module).__name__ and hasattr(module, "config"):
            with torch.device("cpu"):
                fresh = type(module)(module.config)
            for name in meta:
                setattr(module, name, getattr(fresh, name))
    leftovers = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if leftovers:
        raise ConversionError(f"Buffers left uninitialised after loading: {leftovers}.")


# ----------------------------------------------------------------------------------------------------------------
# Assembly from the 2-3 source files
# ----------------------------------------------------------------------------------------------------------------
NOT_CLIP_REASON = "part of the stage-2 model that the CLIP model does not contain (text encoder / heads)"
DISTILLATION_REASON = "stage-1 distillation head / teacher position table of the vision source (unused by CLIP)"
INTERNVL_OTHER_REASON = "InternVL-C part other than its LLaMA text transformer and text_projection (unused by CLIP)"
MOBILECLIP_OTHER_REASON = "MobileCLIP part other than its text encoder (image encoder, logit scale; unused)"
IMAGE_TABLE_REASON = "learned single-image position table of the 1B stage-2 encoder (CLIP images use the time-mean)"
_DISTILLATION_NAMES = ("clip_decoder.", "final_clip_decoder.", "mae_decoder.")
_DISTILLATION_TABLES = ("clip_pos_embed", "clip_img_pos_embed", "mae_pos_embed")


@dataclass
class AssembledClipCheckpoint:
    state_dict: dict[str, torch.Tensor]  # original full-model key names
    dropped: dict[str, str]  # "<source>:<key>" -> reason
    origin: dict[str, str]  # full-model key -> source name


def _vision_source_keys(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Vision tower keys of a stage-2 checkpoint (`vision_encoder.*`) or of a distilled/stage-1 student (bare)."""
    kept, dropped = {}, {}
    prefixed = any(key.startswith("vision_encoder.") for key in state_dict)
    for key, tensor in state_dict.items():
        name = key
        if prefixed:
            if not key.startswith("vision_encoder."):
                dropped[key] = NOT_CLIP_REASON
                continue
            name = key[len("vision_encoder.") :]
        if name.startswith(_DISTILLATION_NAMES) or name in _DISTILLATION_TABLES:
            dropped[key] = DISTILLATION_REASON
        elif name == "img_pos_embed":
            dropped[key] = IMAGE_TABLE_REASON
        else:
            kept[f"vision_encoder.{name}"] = tensor
    return kept, dropped


def _text_source_keys(
    state_dict: Mapping[str, torch.Tensor], config: InternVideo2ClipConfig
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    kept, dropped = {}, {}
    llama = config.text_tower == TEXT_TOWER_LLAMA
    for key, tensor in state_dict.items():
        if llama:
            if key.startswith("transformer.") or key == "text_projection":
                kept[f"text_encoder.{key}"] = tensor
            elif key.startswith("text_encoder."):  # an already prefixed (CLIP-model) text checkpoint
                kept[key] = tensor
            else:
                dropped[key] = INTERNVL_OTHER_REASON
        elif key.startswith("text_encoder."):
            kept[key] = tensor
        else:
            dropped[key] = MOBILECLIP_OTHER_REASON
    if not kept:
        expected = "`transformer.*` + `text_projection` (InternVL-C)" if llama else "`text_encoder.*` (MobileCLIP)"
        raise ConversionError(f"The text checkpoint holds no text tower keys: expected {expected}.")
    return kept, dropped


def _resample_positions(table: torch.Tensor, config: InternVideo2ClipConfig, source: str) -> torch.Tensor:
    """Linear temporal resampling of a `(1, 1 + t*g*g, C)` table to the config's frame count (the original
    `interpolate_pos_embed` of the CLIP loader, 4 -> 8 frames for the stage-2 sources)."""
    vision = config.vision_config
    grid_area = vision.spatial_patches**2
    rows = table.shape[1] - 1
    if rows % grid_area:
        raise ConversionError(f"{source} pos_embed has 1 + {rows} rows, not 1 + t * {grid_area}.")
    source_t, target_t = rows // grid_area, vision.temporal_patches
    if source_t == target_t:
        return table
    if table.is_meta:
        return torch.empty(1, 1 + target_t * grid_area, table.shape[2], device="meta", dtype=table.dtype)
    logger.info("Resampling the vision position table from %d to %d temporal patches.", source_t, target_t)
    patches = table[0, 1:].float().reshape(source_t, grid_area, -1)
    patches = _resample_time(patches, target_t).reshape(1, target_t * grid_area, -1)
    return torch.cat([table[:, :1].float(), patches], dim=1).to(table.dtype)


def assemble_clip_checkpoint(
    config: InternVideo2ClipConfig,
    vision: Mapping[str, torch.Tensor] | None = None,
    text: Mapping[str, torch.Tensor] | None = None,
    clip: Mapping[str, torch.Tensor] | None = None,
) -> AssembledClipCheckpoint:
    """Build the complete original-named CLIP state dict from the sources, in the original's order (vision, text,
    then the CLIP delta, each overriding the previous). Every source key is kept or dropped with a reason."""
    full: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    dropped: dict[str, str] = {}
    if vision is not None:
        kept, skipped = _vision_source_keys(unwrap_state_dict(vision))
        if "vision_encoder.pos_embed" in kept:
            kept["vision_encoder.pos_embed"] = _resample_positions(kept["vision_encoder.pos_embed"], config, "vision")
        full.update(kept)
        origin.update(dict.fromkeys(kept, "vision"))
        dropped.update({f"vision:{key}": reason for key, reason in skipped.items()})
    if text is not None:
        kept, skipped = _text_source_keys(unwrap_state_dict(text), config)
        full.update(kept)
        origin.update(dict.fromkeys(kept, "text"))
        dropped.update({f"text:{key}": reason for key, reason in skipped.items()})
    if clip is not None:
        delta = unwrap_state_dict(clip)
        if "vision_encoder.pos_embed" in delta:
            delta = {**delta, "vision_encoder.pos_embed": _resample_positions(delta["vision_encoder.pos_embed"],
                                                                              config, "clip")}  # fmt: skip
        full.update(delta)
        origin.update(dict.fromkeys(delta, "clip"))
    if not full:
        raise ConversionError("No source given: pass the vision, text and CLIP checkpoints.")
    return AssembledClipCheckpoint(full, dropped, origin)


def _missing_hint(error: ConversionError, origin: Mapping[str, str]) -> ConversionError:
    sources = sorted(set(origin.values()))
    return ConversionError(
        f"{error} The assembled checkpoint came from the {sources} source(s); the CLIP release is a delta, so the "
        "vision checkpoint (stage-2 for 1B/6B, distilled student for S/B/L14), the text checkpoint (InternVL-C or "
        "mobileclip_blt.pt) and the CLIP file are all needed."
    )


def convert_clip_sources(
    config: InternVideo2ClipConfig,
    vision: Mapping[str, torch.Tensor] | None,
    text: Mapping[str, torch.Tensor] | None,
    clip: Mapping[str, torch.Tensor] | None,
    lora_alpha: float = DEFAULT_LORA_ALPHA,
    dtype: torch.dtype = torch.float32,
) -> tuple[InternVideo2ClipModel, ClipConversionResult]:
    assembled = assemble_clip_checkpoint(config, vision, text, clip)
    try:
        model, result = convert_clip_checkpoint(assembled.state_dict, config, lora_alpha, dtype)
    except ConversionError as error:
        raise _missing_hint(error, assembled.origin) from error
    result.dropped.update(assembled.dropped)
    return model, result


# ----------------------------------------------------------------------------------------------------------------
# Files and command line
# ----------------------------------------------------------------------------------------------------------------
def _load_json(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"No json at {path}.")
    return json.loads(path.read_text(encoding="utf-8"))


def official_clip_config(size: str, text_config: Mapping | None = None, exact_gelu: bool = False) -> InternVideo2ClipConfig:
    """Config of an official CLIP size (`1b`, `6b`, `s14`, `b14`, `l14`); the LLaMA json (1B/6B) can replace the
    assumed chinese_alpaca_lora_7b one."""
    overrides = {}
    if text_config is not None:
        overrides["text_config"] = {key: value for key, value in text_config.items() if key != "architectures"}
    config = InternVideo2ClipConfig.from_preset(f"internvideo2-clip-{size.lower()}", **overrides)
    if exact_gelu:
        config.vision_config.hidden_act = "gelu"
    return config


def convert_and_save_clip(
    output_dir,
    config: InternVideo2ClipConfig,
    vision_checkpoint=None,
    text_checkpoint=None,
    clip_checkpoint=None,
    tokenizer=None,
    lora_alpha: float = DEFAULT_LORA_ALPHA,
    dtype: str = "float32",
) -> tuple[InternVideo2ClipModel, ClipConversionResult]:
    """Assemble, convert strictly, save (`core.save_and_verify`: the folder appears only complete, its safetensors
    re-read and compared bit-exactly) with the processor: the LLaMA SentencePiece tokenizer given as `tokenizer` (a folder or `tokenizer.model`) for
    1B/6B, the CLIP BPE of the `open_clip` package for S/B/L14."""
    if dtype not in DTYPES:
        raise ConversionError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    check_output_dir(output_dir)  # before any work
    sources = {}
    for name, path in (("vision", vision_checkpoint), ("text", text_checkpoint), ("clip", clip_checkpoint)):
        sources[name] = load_original_checkpoint(path) if path is not None else None
    model, result = convert_clip_sources(config, sources["vision"], sources["text"], sources["clip"], lora_alpha,
                                         DTYPES[dtype])  # fmt: skip
    tokenizer = resolve_clip_tokenizer(config, tokenizer)
    if len(tokenizer) > config.text_config.vocab_size:
        logger.warning(
            "The tokenizer has %d tokens but the text tower's vocabulary only %d: ids beyond it cannot be embedded. "
            "Is it the tokenizer of this model?", len(tokenizer), config.text_config.vocab_size,
        )  # fmt: skip
    processor = InternVideo2ClipProcessor.for_config(config, tokenizer=tokenizer)
    # the folder appears only complete and verified (weights re-read bit-exactly, then the processor)
    save_and_verify(model, output_dir, processor.save_pretrained)
    return model, result


def resolve_clip_tokenizer(config: InternVideo2ClipConfig, tokenizer=None):
    """The text tower's tokenizer: a tokenizer object as given; for LLaMA a SentencePiece `.model` file or a folder
    (required: the InternVL-C tokenizer is not redistributable here); for MobileCLIP the CLIP BPE of the installed
    open_clip package unless another is given."""
    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        return tokenizer
    if config.text_tower == TEXT_TOWER_LLAMA:
        if tokenizer is None:
            raise ConversionError(
                "The 1B/6B CLIP models need their LLaMA SentencePiece tokenizer (--tokenizer: chinese_alpaca_lora_7b's "
                "tokenizer.model or its folder); it is saved with the model."
            )
        return load_llama_tokenizer(tokenizer)
    return load_clip_bpe_tokenizer() if tokenizer is None else load_llama_tokenizer(tokenizer)


def build_argument_parser(parser=None):
    parser = parser or argparse.ArgumentParser(
        description="Assemble an InternVideo2-CLIP model (1B/6B with LLaMA, S/B/L14 with MobileCLIP) from its "
        "vision, text and CLIP-delta checkpoints into one Transformers folder."
    )
    parser.add_argument("--family", choices=[FAMILY_CLIP], default=FAMILY_CLIP)
    parser.add_argument("--size", choices=["1b", "6b", "s14", "b14", "l14"], type=str.lower,
                        help="an official size (its preset); or give --config")
    parser.add_argument("--config", help="a saved InternVideo2ClipConfig (config.json or its folder) instead of --size")
    parser.add_argument("--vision-checkpoint", required=True,
                        help="1B/6B: the stage-2 checkpoint; S/B/L14: the distilled student (e.g. B14_dist_1B_stage2)")
    parser.add_argument("--text-checkpoint", required=True,
                        help="1B/6B: InternVL-C internvl_c_13b_224px.pth; S/B/L14: Apple's mobileclip_blt.pt")
    parser.add_argument("--checkpoint", "--clip-checkpoint", dest="clip_checkpoint", required=True,
                        help="the released CLIP file (1B_clip.pth, clip/<size>/pytorch_model.bin)")
    parser.add_argument("--tokenizer", help="1B/6B: folder (or tokenizer.model) of the LLaMA SentencePiece tokenizer")
    parser.add_argument("--text-config", help="1B/6B: the LLaMA config.json (default: chinese_alpaca_lora_7b sizes)")
    parser.add_argument("--lora-alpha", type=float, default=DEFAULT_LORA_ALPHA,
                        help="LoRA alpha of the text tower (the original: 32 with r=16)")
    parser.add_argument("--exact-gelu", action="store_true",
                        help="exact-GELU vision MLP; default: the tanh GELU of the fused MLP the models were trained with")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--output", required=True, help="output folder (save_pretrained layout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    if (args.size is None) == (args.config is None):
        print("error: give exactly one of --size (an official model) or --config (a saved config).", file=sys.stderr)
        return 2
    try:
        if args.config:
            config = InternVideo2ClipConfig.from_dict(_load_json(args.config))
        else:
            text_json = _load_json(args.text_config) if args.text_config else None
            config = official_clip_config(args.size, text_json, args.exact_gelu)
        if config.text_tower == TEXT_TOWER_LLAMA and not args.tokenizer:
            print("error: the LLaMA text tower (1B/6B) needs --tokenizer (its SentencePiece tokenizer).", file=sys.stderr)
            return 2
        model, result = convert_and_save_clip(
            args.output, config, args.vision_checkpoint, args.text_checkpoint, args.clip_checkpoint,
            tokenizer=args.tokenizer, lora_alpha=args.lora_alpha, dtype=args.dtype,
        )  # fmt: skip
    except (ConversionError, FileNotFoundError) as error:
        return conversion_failed(error)
    print(
        f"Converted InternVideo2-CLIP ({config.text_tower} text tower) -> {args.output}: "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, {len(result.renamed)} tensors, "
        f"{len(result.merged_lora)} LoRA merges, {len(result.dropped)} keys dropped."
    )
    print_dropped_reasons(result.dropped)
    return 0


__all__ = [
    "FAMILY_CLIP",
    "AssembledClipCheckpoint",
    "ClipConversionResult",
    "assemble_clip_checkpoint",
    "build_argument_parser",
    "build_clip_model",
    "clip_config_from_original",
    "clip_key_mapping",
    "convert_and_save_clip",
    "convert_clip_checkpoint",
    "convert_clip_sources",
    "convert_clip_state_dict",
    "main",
    "merge_lora",
    "official_clip_config",
    "resolve_clip_tokenizer",
]

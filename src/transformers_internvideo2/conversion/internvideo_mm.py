# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Conversion of InternVideo-MM checkpoints (InternVideo v1's multimodal video encoder) to [`InternVideoMMModel`] /
[`InternVideoMMForCaptioning`].

Sources (all read with `weights_only=True`):

* the released pre-training files `InternVideo-MM-B-16.ckpt` / `-L-14.ckpt`: pytorch-lightning checkpoints
  `{'state_dict': {'clip.<key>': ..., ['caption_decoder.<key>': ...]}, ...}` (the other lightning entries, such as
  `epoch` or `optimizer_states`, are ignored);
* the CLIP4Clip-style retrieval fine-tunes (`pytorch_model.bin`): a bare dict with `clip.<key>` at the top level;
* a bare `VideoIntern` state dict, or one wrapped as `{'model': sd}` / `{'module': sd}`.

Every key is mapped, or the conversion stops and names it: task heads of other fine-tunes (e.g. the VQA
classifier) are only set aside with an explicit `ignore_prefixes` (`--ignore-prefix`), and then listed with a reason.

Sizes are read from the tensors (as the original `build_model`): widths, depths, patch, grid, context, vocabulary,
projection width, the number of extractors (on the last blocks, as every released model has them); attention heads
are `width // 64` (the released rule) unless a configuration is given.

**Zero-shot weight merging (explicit option, never applied by default).** The published zero-shot numbers were
computed with weights averaged with OpenAI CLIP ([`merge_with_openai_clip`], `--merge-clip-weights PATH`):

* `protocol="retrieval"` (the retrieval scripts' `--mergeclip`): every tensor present in both models (after
  inflating CLIP's patch convolution to a time kernel of 1) becomes `w * CLIP + (1 - w) * InternVideo`; the temporal
  modules, `visual_ln_post`, `visual_proj` and `text_mask_embedding` stay InternVideo's;
* `protocol="k400-wiseft"` (CoTrain's zero-shot K400 `clip_wiseft_coef`): the keys matched by CoTrain's B/16 key list
  (embeddings, `ln_pre`, CLIP's `ln_post`/`proj` as `visual_ln_post`/`visual_proj`, **visual blocks 0-11 only**, the
  text tower, `ln_final`, `text_projection`); for L/14 visual blocks 12-23 and `logit_scale` stay InternVideo's.
"""

from __future__ import annotations

import argparse
import logging
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models.internvideo_mm.configuration_internvideo_mm import InternVideoMMConfig
from ..models.internvideo_mm.modeling_internvideo_mm import InternVideoMMForCaptioning, InternVideoMMModel
from ..models.internvideo_mm.processing_internvideo_mm import InternVideoMMProcessor
from .core import (
    DTYPES,
    ConversionError,
    ConversionResult,
    KeyMapping,
    check_against,
    check_finite,
    check_output_dir,
    conversion_failed,
    expected_shapes,
    read_checkpoint_file,
    save_and_verify,
    unwrap_state_dict,
)


__all__ = [
    "CAPTION_DECODER_PREFIX",
    "CLIP_PREFIX",
    "MERGE_PROTOCOLS",
    "caption_decoder_rules",
    "convert_and_save_internvideo_mm",
    "convert_internvideo_mm_state_dict",
    "internvideo_mm_config_from_state_dict",
    "internvideo_mm_key_mapping",
    "load_internvideo_mm_checkpoint",
    "main",
    "merge_with_openai_clip",
    "video_intern_rules",
]

logger = logging.getLogger(__name__)

CLIP_PREFIX = "clip."
CAPTION_DECODER_PREFIX = "caption_decoder."
MERGE_PROTOCOLS = ("retrieval", "k400-wiseft")

_BLOCK_RULES = [
    ("ln_1.*", "layer_norm1.*"),
    ("attn.in_proj_weight", "self_attn.qkv.weight"),
    ("attn.in_proj_bias", "self_attn.qkv.bias"),
    ("attn.out_proj.*", "self_attn.out_proj.*"),
    ("ln_2.*", "layer_norm2.*"),
    ("mlp.c_fc.*", "mlp.fc1.*"),
    ("mlp.c_proj.*", "mlp.fc2.*"),
]
_EXTRACTOR_RULES = [
    ("ln_1.*", "query_layernorm.*"),
    ("ln_3.*", "key_value_layernorm.*"),
    ("ln_2.*", "mlp_layernorm.*"),
    ("attn.in_proj_weight", "cross_attn.qkv.weight"),
    ("attn.in_proj_bias", "cross_attn.qkv.bias"),
    ("attn.out_proj.*", "cross_attn.out_proj.*"),
    ("mlp.c_fc.*", "mlp.fc1.*"),
    ("mlp.c_proj.*", "mlp.fc2.*"),
]


def video_intern_rules() -> list[tuple[str, str]]:
    """(original `VideoIntern` key, our `InternVideoMMModel` key) templates."""
    rules = [
        ("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"),
        ("visual.class_embedding", "vision_model.embeddings.class_embedding"),
        ("visual.positional_embedding", "vision_model.embeddings.position_embedding"),
        ("visual.ln_pre.*", "vision_model.embeddings.pre_layernorm.*"),
        ("visual.transformer.temporal_cls_token", "vision_model.temporal.temporal_class_embedding"),
        ("visual.transformer.balance", "vision_model.temporal.balance"),
        ("visual.transformer.dpe.{i}.*", "vision_model.temporal.position_convs.{i}.*"),
        ("visual_ln_post.*", "visual_layernorm.*"),
        ("visual_proj", "visual_projection"),
        ("text_projection", "text_projection"),
        ("text_mask_embedding", "text_mask_embedding"),
        ("logit_scale", "logit_scale"),
        ("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
        ("positional_embedding", "text_model.embeddings.position_embedding"),
        ("ln_final.*", "text_model.final_layer_norm.*"),
    ]
    for source, target in _BLOCK_RULES:
        rules.append((f"visual.transformer.resblocks.{{i}}.{source}", f"vision_model.layers.{{i}}.{target}"))
        rules.append((f"transformer.resblocks.{{i}}.{source}", f"text_model.layers.{{i}}.{target}"))
    for source, target in _EXTRACTOR_RULES:
        rules.append((f"visual.transformer.dec.{{i}}.{source}", f"vision_model.temporal.extractors.{{i}}.{target}"))
    return rules


def caption_decoder_rules() -> list[tuple[str, str]]:
    """(original CoTrain `CaptionDecoder` key, our `InternVideoMMCaptionDecoder` key) templates."""
    rules = [
        ("visual_queries", "visual_queries"),
        ("visual_attn_pooler.norm.gamma", "visual_pooler.norm.weight"),
        ("visual_attn_pooler.norm.beta", "visual_pooler.norm.bias"),
        ("visual_attn_pooler.context_norm.gamma", "visual_pooler.context_norm.weight"),
        ("visual_attn_pooler.context_norm.beta", "visual_pooler.context_norm.bias"),
        ("visual_attn_pooler.to_q.weight", "visual_pooler.q_proj.weight"),
        ("visual_attn_pooler.to_kv.weight", "visual_pooler.kv_proj.weight"),
        ("visual_attn_pooler.to_out.weight", "visual_pooler.out_proj.weight"),
        ("visual_pooler_norm.*", "visual_pooler_norm.*"),
        ("text_norm.*", "text_norm.*"),
        ("predictor.*", "predictor.*"),
        ("multimodal_layers.{i}.0.fn.norm.gamma", "layers.{i}.self_block.norm.weight"),
        ("multimodal_layers.{i}.0.fn.norm.beta", "layers.{i}.self_block.norm.bias"),
        ("multimodal_layers.{i}.0.fn.rotary_emb.inv_freq", "layers.{i}.self_block.rotary.inv_freq"),
        ("multimodal_layers.{i}.0.fn.fused_attn_ff_proj.weight", "layers.{i}.self_block.fused_proj.weight"),
        ("multimodal_layers.{i}.0.fn.attn_out.weight", "layers.{i}.self_block.attn_out.weight"),
        ("multimodal_layers.{i}.0.fn.ff_out.1.weight", "layers.{i}.self_block.ff_out.weight"),
        ("multimodal_layers.{i}.1.fn.norm.gamma", "layers.{i}.cross_block.norm.weight"),
        ("multimodal_layers.{i}.1.fn.norm.beta", "layers.{i}.cross_block.norm.bias"),
        ("multimodal_layers.{i}.1.fn.to_q.weight", "layers.{i}.cross_block.q_proj.weight"),
        ("multimodal_layers.{i}.1.fn.to_kv.weight", "layers.{i}.cross_block.kv_proj.weight"),
        ("multimodal_layers.{i}.1.fn.to_out.weight", "layers.{i}.cross_block.out_proj.weight"),
        ("multimodal_layers.{i}.1.fn.ff.0.weight", "layers.{i}.cross_block.ff_in.weight"),
        ("multimodal_layers.{i}.1.fn.ff.2.weight", "layers.{i}.cross_block.ff_out.weight"),
    ]
    return rules


def internvideo_mm_key_mapping(with_caption_decoder: bool, clip_prefix: str = CLIP_PREFIX) -> KeyMapping:
    """Renaming table for a checkpoint whose `VideoIntern` keys carry `clip_prefix` (and, with the decoder,
    `caption_decoder.` keys) to [`InternVideoMMModel`] (or [`InternVideoMMForCaptioning`] with the decoder)."""
    target = "internvideo_mm." if with_caption_decoder else ""
    rules = [(clip_prefix + source, target + ours) for source, ours in video_intern_rules()]
    if with_caption_decoder:
        rules += [(CAPTION_DECODER_PREFIX + s, CAPTION_DECODER_PREFIX + o) for s, o in caption_decoder_rules()]
    return KeyMapping(rules)


# ------------------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------------------
def _unwrap(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    # Lightning checkpoints keep the weights under `state_dict` next to optimiser states; keys are read as stored.
    return unwrap_state_dict(checkpoint, wrappers=("state_dict", "model", "module"), strip_prefixes=())


def load_internvideo_mm_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an original InternVideo-MM file (lightning `.ckpt`, retrieval `pytorch_model.bin`, `.pth`,
    `.safetensors`) and return its state dict with the `clip.` / `caption_decoder.` keys as stored; bare
    `VideoIntern` dicts get the `clip.` prefix so that every source looks the same. Truncated or non-tensor files
    and NaN/inf tensors are refused with a one-line `ConversionError`."""
    state_dict = _unwrap(read_checkpoint_file(path))
    check_finite(state_dict, f"the source file {path}")
    return add_clip_prefix_if_bare(state_dict)


def add_clip_prefix_if_bare(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(key.startswith(CLIP_PREFIX) for key in state_dict):
        return dict(state_dict)
    if "visual.conv1.weight" in state_dict:
        return {CLIP_PREFIX + key: value for key, value in state_dict.items()}
    raise ConversionError(
        "Not an InternVideo-MM checkpoint: neither 'clip.visual.conv1.weight' nor 'visual.conv1.weight' found."
    )


# ------------------------------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------------------------------
def _count(state_dict: Mapping, pattern: str) -> int:
    compiled = re.compile(pattern)
    return len({match.group(1) for key in state_dict if (match := compiled.match(key))})


def internvideo_mm_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_frames: int = 8, **overrides
) -> InternVideoMMConfig:
    """The configuration a `clip.`-prefixed state dict implies (heads `width // 64`, as the released builder);
    `overrides` (e.g. `vision_config={...}`) win."""
    p = CLIP_PREFIX
    try:
        conv = state_dict[p + "visual.conv1.weight"]
        width, patch = conv.shape[0], conv.shape[-1]
        grid = round((state_dict[p + "visual.positional_embedding"].shape[0] - 1) ** 0.5)
        layers = _count(state_dict, re.escape(p) + r"visual\.transformer\.resblocks\.(\d+)\.")
        extractors = _count(state_dict, re.escape(p) + r"visual\.transformer\.dec\.(\d+)\.")
        text_width = state_dict[p + "ln_final.weight"].shape[0]
        text_layers = _count(state_dict, re.escape(p) + r"transformer\.resblocks\.(\d+)\.")
        context, _ = state_dict[p + "positional_embedding"].shape
        vocab = state_dict[p + "token_embedding.weight"].shape[0]
        projection_dim = state_dict[p + "text_projection"].shape[1]
        mlp = state_dict[p + "visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        text_mlp = state_dict[p + "transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        extractor_mlp = state_dict[p + "visual.transformer.dec.0.mlp.c_fc.weight"].shape[0]
    except KeyError as error:
        raise ConversionError(f"The checkpoint misses {error.args[0]!r}, which gives the model's sizes.") from error
    vision = dict(
        hidden_size=width, num_hidden_layers=layers, num_attention_heads=max(1, width // 64), intermediate_size=mlp,
        patch_size=patch, image_size=patch * grid, num_frames=num_frames,
        extractor_layers=list(range(layers - extractors, layers)), extractor_num_attention_heads=max(1, width // 64),
        extractor_mlp_ratio=extractor_mlp / width,
    )  # fmt: skip
    text = dict(
        hidden_size=text_width, num_hidden_layers=text_layers, num_attention_heads=max(1, text_width // 64),
        intermediate_size=text_mlp, max_position_embeddings=context, vocab_size=vocab,
    )  # fmt: skip
    kwargs: dict = dict(projection_dim=projection_dim)
    decoder_layers = _count(state_dict, re.escape(CAPTION_DECODER_PREFIX) + r"multimodal_layers\.(\d+)\.")
    if decoder_layers:
        inv_freq = state_dict[f"{CAPTION_DECODER_PREFIX}multimodal_layers.0.0.fn.rotary_emb.inv_freq"]
        kwargs.update(
            caption_decoder_layers=decoder_layers,
            caption_decoder_heads=text_width // (2 * inv_freq.shape[0]),
            caption_vocab_size=state_dict[f"{CAPTION_DECODER_PREFIX}predictor.4.weight"].shape[0],
            caption_num_visual_queries=state_dict[f"{CAPTION_DECODER_PREFIX}visual_queries"].shape[0],
        )
    vision.update(overrides.pop("vision_config", None) or {})
    text.update(overrides.pop("text_config", None) or {})
    kwargs.update(overrides)
    return InternVideoMMConfig(vision_config=vision, text_config=text, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# Merging with OpenAI CLIP (explicit option)
# ------------------------------------------------------------------------------------------------------------------
def _wiseft_key_list(num_blocks: int = 12) -> list[str]:
    """CoTrain's `clip_param_keys` (the B/16 list, used for every size): matched as substrings."""
    names = [
        "positional_embedding", "text_projection", "visual.class_embedding", "visual.positional_embedding",
        "visual.conv1.weight", "visual.ln_pre.weight", "visual.ln_pre.bias", "visual.ln_post.weight",
        "visual.ln_post.bias", "visual_ln_post.weight", "visual_ln_post.bias", "token_embedding.weight",
        "visual.proj", "visual_proj", "ln_final.weight", "ln_final.bias",
    ]  # fmt: skip
    block_keys = [source for source, _ in _BLOCK_RULES if not source.endswith("*")]
    block_keys += [source[:-1] + suffix for source, _ in _BLOCK_RULES if source.endswith("*")
                   for suffix in ("weight", "bias")]  # fmt: skip
    for tower in ("visual.transformer", "transformer"):
        names += [f"{tower}.resblocks.{i}.{key}" for i in range(num_blocks) for key in block_keys]
    return names


def _openai_clip_as_video_intern(clip_state_dict: Mapping[str, torch.Tensor], rename_head: bool) -> dict:
    clip = {key: value for key, value in clip_state_dict.items()
            if key not in ("input_resolution", "context_length", "vocab_size")}  # fmt: skip
    conv = clip.get("visual.conv1.weight")
    if conv is None:
        raise ConversionError("The OpenAI CLIP state dict has no 'visual.conv1.weight'.")
    if conv.ndim == 4:  # Conv2d (C, 3, p, p) -> time kernel 1 (C, 3, 1, p, p)
        clip["visual.conv1.weight"] = conv.unsqueeze(2)
    if rename_head:  # CoTrain's CLIP initialisation renames CLIP's final norm and projection
        for old, new in (("visual.proj", "visual_proj"), ("visual.ln_post.weight", "visual_ln_post.weight"),
                         ("visual.ln_post.bias", "visual_ln_post.bias")):  # fmt: skip
            if old in clip:
                clip[new] = clip.pop(old)
    return clip


def merge_with_openai_clip(
    state_dict: Mapping[str, torch.Tensor],
    clip_state_dict: Mapping[str, torch.Tensor],
    weight: float = 0.5,
    protocol: str = "retrieval",
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Average a `clip.`-prefixed InternVideo-MM state dict with OpenAI CLIP (`w * CLIP + (1 - w) * InternVideo`)
    as the original zero-shot evaluations did (see the module docstring for the two protocols). Returns the merged
    state dict and the merged (original) keys. Shapes must agree on every merged key."""
    if protocol not in MERGE_PROTOCOLS:
        raise ConversionError(f"Unknown merge protocol {protocol!r}; expected one of {MERGE_PROTOCOLS}.")
    if not 0.0 <= weight <= 1.0:
        raise ConversionError(f"The merge weight must lie in [0, 1], got {weight}.")
    clip = _openai_clip_as_video_intern(clip_state_dict, rename_head=protocol == "k400-wiseft")
    wiseft = _wiseft_key_list() if protocol == "k400-wiseft" else None
    merged = dict(state_dict)
    keys = []
    for key, value in state_dict.items():
        if not key.startswith(CLIP_PREFIX):
            continue
        bare = key[len(CLIP_PREFIX) :]
        if bare not in clip:
            continue
        if wiseft is not None and not any(name in bare for name in wiseft):
            continue
        if tuple(clip[bare].shape) != tuple(value.shape):
            raise ConversionError(
                f"Cannot merge {bare!r}: OpenAI CLIP {tuple(clip[bare].shape)} vs InternVideo {tuple(value.shape)} "
                "(use the CLIP model of the same size: ViT-B/16 for B/16, ViT-L/14 for L/14)."
            )
        merged[key] = (clip[bare].to(value.dtype) * weight + value * (1.0 - weight)).to(value.dtype)
        keys.append(key)
    if not keys:
        raise ConversionError("No key was merged: is the second file an OpenAI CLIP state dict?")
    return merged, keys


def load_openai_clip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """An OpenAI CLIP file: the JIT archive of the `clip` package (`ViT-L-14.pt`), a plain state dict or
    safetensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No OpenAI CLIP file at {path}.")
    if _is_torchscript_archive(path):
        with warnings.catch_warnings():  # torch.jit.load is deprecated, but it is the format OpenAI released
            warnings.simplefilter("ignore", FutureWarning)
            state_dict = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    else:  # a state dict (.pth / .bin / .safetensors): one-line errors for truncated or non-tensor files
        state_dict = _unwrap(read_checkpoint_file(path))
    check_finite(state_dict, f"the OpenAI CLIP file {path}")
    return state_dict


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


# ------------------------------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------------------------------
def convert_internvideo_mm_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideoMMConfig | None = None,
    with_caption_decoder: bool | None = None,
    ignore_prefixes: Iterable[str] = (),
    dtype: torch.dtype | None = None,
) -> tuple[ConversionResult, InternVideoMMConfig]:
    """Map a `clip.`-prefixed state dict (see [`load_internvideo_mm_checkpoint`]) to our model's keys, strictly.

    `with_caption_decoder`: `None` keeps the decoder when the checkpoint has one (target
    [`InternVideoMMForCaptioning`]); `False` drops it (listed in `dropped`); `True` requires it.
    `ignore_prefixes`: top-level prefixes (e.g. `"vqa_classifier."`) set aside with a reason instead of refused.
    """
    state_dict = add_clip_prefix_if_bare(state_dict)
    has_decoder = any(key.startswith(CAPTION_DECODER_PREFIX) for key in state_dict)
    if with_caption_decoder and not has_decoder:
        raise ConversionError("with_caption_decoder=True, but the checkpoint has no 'caption_decoder.*' keys.")
    keep_decoder = has_decoder if with_caption_decoder is None else with_caption_decoder
    dropped_rules = [(prefix + "*", f"explicitly ignored prefix {prefix!r}") for prefix in ignore_prefixes]
    if has_decoder and not keep_decoder:
        dropped_rules.append((CAPTION_DECODER_PREFIX + "*", "caption decoder not requested (with_caption_decoder=False)"))
    if config is None:
        config = internvideo_mm_config_from_state_dict(state_dict)
    mapping = internvideo_mm_key_mapping(keep_decoder)
    mapping = KeyMapping(mapping.rules, dropped_rules)
    converted, renamed, dropped, unmapped = mapping.apply(state_dict, dtype)
    if unmapped:
        raise ConversionError(
            f"Keys no rule maps: {sorted(unmapped)[:20]}{' ...' if len(unmapped) > 20 else ''}. InternVideo-MM "
            "checkpoints hold 'clip.*' (and optionally 'caption_decoder.*'); task heads of other fine-tunes can be "
            "set aside explicitly with ignore_prefixes / --ignore-prefix."
        )
    model_class = InternVideoMMForCaptioning if keep_decoder else InternVideoMMModel
    with torch.device("meta"):
        model = model_class(config)
    check_against(converted, renamed, expected_shapes(model))
    return ConversionResult(state_dict=converted, dropped=dropped, renamed=renamed), config


@dataclass
class SavedInternVideoMMConversion:
    output_dir: Path
    config: InternVideoMMConfig
    result: ConversionResult
    model_class: str
    merged_keys: list[str]
    files: list[str]


def convert_and_save_internvideo_mm(
    checkpoint: str | Path,
    output_dir: str | Path,
    config: InternVideoMMConfig | None = None,
    num_frames: int = 8,
    with_caption_decoder: bool | None = None,
    ignore_prefixes: Iterable[str] = (),
    merge_clip_weights: str | Path | None = None,
    merge_weight: float = 0.5,
    merge_protocol: str = "retrieval",
    dtype: str = "float32",
    save_processor: bool = True,
) -> SavedInternVideoMMConversion:
    """Convert a checkpoint file into a `save_pretrained` folder (weights re-read and compared bit-exactly, built aside
    and moved into place by `core.save_and_verify`), with the processor (CLIP BPE tokenizer + the original demo video
    transform) unless `save_processor=False`."""
    check_output_dir(output_dir)
    state_dict = load_internvideo_mm_checkpoint(checkpoint)
    merged_keys: list[str] = []
    if merge_clip_weights is not None:
        state_dict, merged_keys = merge_with_openai_clip(
            state_dict, load_openai_clip_state_dict(merge_clip_weights), merge_weight, merge_protocol
        )
        logger.warning(
            "Merged %d tensors with OpenAI CLIP (%s protocol, weight %.3f): this is the original zero-shot protocol, "
            "not the released InternVideo-MM weights.", len(merged_keys), merge_protocol, merge_weight,
        )  # fmt: skip
    if config is None:
        config = internvideo_mm_config_from_state_dict(state_dict, num_frames=num_frames)
    result, config = convert_internvideo_mm_state_dict(
        state_dict, config, with_caption_decoder, ignore_prefixes, DTYPES[dtype]
    )
    keep_decoder = any(key.startswith(CAPTION_DECODER_PREFIX) for key in result.state_dict)
    model_class = InternVideoMMForCaptioning if keep_decoder else InternVideoMMModel
    model = model_class(config)
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    model.eval()
    output_dir = check_output_dir(output_dir)

    def write_processor(folder: Path) -> None:
        if save_processor:
            InternVideoMMProcessor(context_length=config.text_config.max_position_embeddings).save_pretrained(folder)

    files = save_and_verify(model, output_dir, write_processor)
    return SavedInternVideoMMConversion(output_dir, config, result, model_class.__name__, merged_keys, files)


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        description="Convert an InternVideo-MM checkpoint (InternVideo v1: lightning .ckpt, retrieval "
        "pytorch_model.bin) to a Transformers folder."
    )
    parser.add_argument("--family", choices=["internvideo-mm"], default="internvideo-mm")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-frames", type=int, default=8, help="frames recorded in the config (8 as released)")
    parser.add_argument("--no-caption-decoder", action="store_true", help="drop 'caption_decoder.*' if present")
    parser.add_argument("--ignore-prefix", action="append", default=[],
                        help="set aside keys with this prefix (e.g. vqa_classifier.) instead of refusing them")
    parser.add_argument("--merge-clip-weights", metavar="PATH",
                        help="OpenAI CLIP file of the same size to average with (the original zero-shot protocol)")
    parser.add_argument("--merge-weight", type=float, default=0.5, help="weight of CLIP in the average")
    parser.add_argument("--merge-protocol", choices=MERGE_PROTOCOLS, default="retrieval",
                        help="retrieval: every shared tensor; k400-wiseft: CoTrain's key list (visual blocks 0-11)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--no-processor", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    try:
        saved = convert_and_save_internvideo_mm(
            args.checkpoint, args.output, num_frames=args.num_frames,
            with_caption_decoder=False if args.no_caption_decoder else None, ignore_prefixes=args.ignore_prefix,
            merge_clip_weights=args.merge_clip_weights, merge_weight=args.merge_weight,
            merge_protocol=args.merge_protocol, dtype=args.dtype, save_processor=not args.no_processor,
        )  # fmt: skip
    except (ConversionError, FileNotFoundError) as error:
        return conversion_failed(error)
    print(
        f"Converted {args.checkpoint} -> {saved.output_dir} ({saved.model_class}): {len(saved.result.renamed)} "
        f"tensors renamed, {len(saved.result.dropped)} dropped, {len(saved.merged_keys)} merged with OpenAI CLIP; "
        f"files: {', '.join(saved.files)}"
    )
    return 0

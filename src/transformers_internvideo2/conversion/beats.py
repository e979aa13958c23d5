# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Conversion of BEATs checkpoints (InternVideo2's audio encoder) to [`BeatsModel`].

Sources:

* `beats.pth`, the file InternVideo2's 6B stage-2 constructor reads: `{'cfg': dict, 'model': state_dict}` (keys
  without prefix). The cfg is the only place the encoder's sizes are written down.
* the `audio_encoder.*` keys inside a stage-2 checkpoint (`InternVideo2_Stage2_audiovisual`; the released
  `..._with_audio_encoder.pt`). That file carries no cfg: take it from `beats.pth` or use
  [`BeatsConfig.from_preset`]`("beats-iter3")`. The full-model converter combines [`beats_key_mapping`] and
  [`drop_shared_relative_bias_copies`] with its own rules, under the `audio_encoder.` prefix.

[`convert_and_save_beats`] (`--family beats` of the conversion script and `internvideo2 convert`) writes a
`save_pretrained` folder (config, safetensors re-read and compared bit-exactly, the [`BeatsFeatureExtractor`]) from
either source; the stage-2 file's other keys are dropped with a reason.

Renaming (original -> ours; every key is mapped or dropped with a reason, loading is strict):

| original | ours |
|---|---|
| `patch_embedding.*` | `embeddings.patch_embedding.*` |
| `layer_norm.*` | `embeddings.layer_norm.*` |
| `post_extract_proj.*` | `embeddings.projection.*` |
| `encoder.pos_conv.0.bias` | `encoder.pos_conv_embed.conv.bias` |
| `encoder.pos_conv.0.weight_g` | `encoder.pos_conv_embed.conv.parametrizations.weight.original0` |
| `encoder.pos_conv.0.weight_v` | `encoder.pos_conv_embed.conv.parametrizations.weight.original1` |
| `encoder.layer_norm.*` | `encoder.layer_norm.*` |
| `encoder.layers.0.self_attn.relative_attention_bias.weight` | `encoder.relative_position_bias.embedding.weight` |
| `encoder.layers.{i>0}.self_attn.relative_attention_bias.weight` | dropped: the same tied table (checked equal) |
| `encoder.layers.{i}.self_attn.{q,k,v,out}_proj.*` | `encoder.layers.{i}.attention.{q,k,v,out}_proj.*` |
| `encoder.layers.{i}.self_attn.grep_linear.*` / `grep_a` | `encoder.layers.{i}.attention.gate_proj.*` / `gate_scale` |
| `encoder.layers.{i}.self_attn_layer_norm.*` | `encoder.layers.{i}.attention_layer_norm.*` |
| `encoder.layers.{i}.fc1.*`, `fc2.*` | `encoder.layers.{i}.feed_forward.fc1.*`, `fc2.*` |
| `encoder.layers.{i}.final_layer_norm.*` | `encoder.layers.{i}.final_layer_norm.*` |
| `predictor.*` | dropped: AudioSet head of a fine-tuned BEATs, unused by InternVideo2 |

Weight norm: the original registers `nn.utils.weight_norm` (keys `weight_g` (1, 1, K) and `weight_v` (D, D/G, K));
our convolution uses PyTorch's weight-norm *parametrisation*, which keeps the same two tensors (`original0` = g,
`original1` = v) and computes the same `g * v / ||v||` with the same kernel (`torch._weight_norm`), so nothing is
folded and the decomposition stays trainable. Checkpoints saved by a newer PyTorch with the parametrisation
(`pos_conv.0.parametrizations.weight.original0/1`) are accepted too.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError

from ..models.beats.configuration_beats import BEATS_PRESETS, BeatsConfig
from ..models.beats.feature_extraction_beats import BeatsFeatureExtractor
from ..models.beats.modeling_beats import BeatsModel
from .core import (
    DTYPES,
    ConversionError,
    ConversionResult,
    KeyMapping,
    check_against,
    check_finite,
    check_output_dir,
    conversion_failed,
    expected_tensors,
    file_sha256,
    print_dropped_reasons,
    read_checkpoint_file,
    save_and_verify,
    unwrap_state_dict,
)


__all__ = [
    "BEATS_ORIGINAL_DEFAULTS",
    "STAGE2_AUDIO_PREFIX",
    "SavedBeatsConversion",
    "beats_config_from_original",
    "build_argument_parser",
    "convert_and_save_beats",
    "beats_key_mapping",
    "convert_beats_checkpoint",
    "convert_beats_state_dict",
    "drop_shared_relative_bias_copies",
    "load_beats_checkpoint",
    "beats_state_dict_to_original",
    "main",
    "split_beats_checkpoint",
]

# The original `BEATsConfig` defaults: a cfg dict only overrides them, so a missing key means these values.
BEATS_ORIGINAL_DEFAULTS: dict = {
    "input_patch_size": -1,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 1.0,
    "layer_norm_first": False,
    "deep_norm": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "finetuned_model": False,
    "predictor_dropout": 0.1,
    "predictor_class": 527,
}

# original cfg key -> BeatsConfig attribute
_CFG_NAMES = {
    "input_patch_size": "patch_size",
    "embed_dim": "patch_embed_dim",
    "conv_bias": "patch_embedding_bias",
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
    "activation_fn": "hidden_act",
    "layer_wise_gradient_decay_ratio": "layer_wise_gradient_decay_ratio",
    "layer_norm_first": "layer_norm_first",
    "deep_norm": "deep_norm",
    "dropout": "hidden_dropout",
    "attention_dropout": "attention_dropout",
    "activation_dropout": "activation_dropout",
    "encoder_layerdrop": "layerdrop",
    "dropout_input": "input_dropout",
    "conv_pos": "num_conv_pos_embeddings",
    "conv_pos_groups": "num_conv_pos_embedding_groups",
    "relative_position_embedding": "relative_position_embedding",
    "num_buckets": "num_buckets",
    "max_distance": "max_distance",
    "gru_rel_pos": "gated_relative_position_bias",
}
# cfg keys of the fine-tuned AudioSet classifier head, which InternVideo2's `forward(fbank)` never uses
_HEAD_CFG_KEYS = ("finetuned_model", "predictor_dropout", "predictor_class")

SHARED_BIAS_REASON = (
    "relative position bias table of a layer > 0: the original ties every layer's table to layer 0's (one module), "
    "checked equal to it; ours holds it once (encoder.relative_position_bias)"
)
PREDICTOR_REASON = "AudioSet classifier of a fine-tuned BEATs (predictor): InternVideo2's forward(fbank) never uses it"

_SHARED_BIAS_KEY = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight\Z")


def beats_config_from_original(cfg: Mapping, num_mel_bins: int = 64, **overrides) -> BeatsConfig:
    """Build [`BeatsConfig`] from a `beats.pth` cfg dict (missing keys take the original `BEATsConfig` defaults;
    unknown keys are an error). `num_mel_bins` is InternVideo2's filterbank width (64), not part of the cfg."""
    if not isinstance(cfg, Mapping):
        raise ConversionError(f"Expected the BEATs cfg to be a dict, got {type(cfg).__name__}.")
    unknown = sorted(set(cfg) - set(BEATS_ORIGINAL_DEFAULTS))
    if unknown:
        raise ConversionError(
            f"Unknown BEATs cfg key(s) {unknown}; expected a subset of {sorted(BEATS_ORIGINAL_DEFAULTS)}."
        )
    merged = {**BEATS_ORIGINAL_DEFAULTS, **cfg}
    if merged["activation_fn"] == "glu":
        raise ConversionError("BEATs with activation_fn='glu' (GLU FFN) is not supported.")
    kwargs = {ours: merged[original] for original, ours in _CFG_NAMES.items()}
    kwargs["num_mel_bins"] = num_mel_bins
    kwargs.update(overrides)
    try:
        return BeatsConfig(**kwargs)
    except (TypeError, ValueError, StrictDataclassError) as error:  # the strict config's validation errors
        raise ConversionError(f"The BEATs cfg does not give a valid configuration: {error}") from error


def beats_key_mapping(
    config: BeatsConfig, source_prefix: str = "", target_prefix: str = "", accept_parametrized: bool = True
) -> KeyMapping:
    """Renaming table original -> ours for a BEATs encoder, with `source_prefix` / `target_prefix` on every key
    (e.g. `"audio_encoder."` for the stage-2 checkpoint). The tied bias copies of layers > 0 are not in the table:
    remove them first with [`drop_shared_relative_bias_copies`]. `accept_parametrized` also renames the
    weight-norm parametrisation names a newer PyTorch would save (leave it off for the reverse direction, which then
    names the tensors `weight_g` / `weight_v` as the original)."""
    rules = [
        ("patch_embedding.*", "embeddings.patch_embedding.*"),
        ("layer_norm.*", "embeddings.layer_norm.*"),
        ("post_extract_proj.*", "embeddings.projection.*"),
        ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
        ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
        ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
        ("encoder.layer_norm.*", "encoder.layer_norm.*"),
        ("encoder.layers.0.self_attn.relative_attention_bias.weight",
         "encoder.relative_position_bias.embedding.weight"),
        ("encoder.layers.{i}.self_attn.q_proj.*", "encoder.layers.{i}.attention.q_proj.*"),
        ("encoder.layers.{i}.self_attn.k_proj.*", "encoder.layers.{i}.attention.k_proj.*"),
        ("encoder.layers.{i}.self_attn.v_proj.*", "encoder.layers.{i}.attention.v_proj.*"),
        ("encoder.layers.{i}.self_attn.out_proj.*", "encoder.layers.{i}.attention.out_proj.*"),
        ("encoder.layers.{i}.self_attn.grep_linear.*", "encoder.layers.{i}.attention.gate_proj.*"),
        ("encoder.layers.{i}.self_attn.grep_a", "encoder.layers.{i}.attention.gate_scale"),
        ("encoder.layers.{i}.self_attn_layer_norm.*", "encoder.layers.{i}.attention_layer_norm.*"),
        ("encoder.layers.{i}.fc1.*", "encoder.layers.{i}.feed_forward.fc1.*"),
        ("encoder.layers.{i}.fc2.*", "encoder.layers.{i}.feed_forward.fc2.*"),
        ("encoder.layers.{i}.final_layer_norm.*", "encoder.layers.{i}.final_layer_norm.*"),
    ]  # fmt: skip
    if accept_parametrized:
        rules += [
            ("encoder.pos_conv.0.parametrizations.weight.original0",
             "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
            ("encoder.pos_conv.0.parametrizations.weight.original1",
             "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
        ]  # fmt: skip
    dropped = [(source_prefix + "predictor.*", PREDICTOR_REASON)]
    return KeyMapping([(source_prefix + src, target_prefix + dst) for src, dst in rules], dropped)


def drop_shared_relative_bias_copies(
    state_dict: Mapping[str, torch.Tensor], source_prefix: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Remove the per-layer copies (layers > 0) of the tied relative position bias table, after checking that each
    equals layer 0's (values are compared unless the tensors are on the meta device; shapes always). Returns the
    remaining state dict and `{removed key: reason}`. Keys outside `source_prefix` pass through untouched."""
    first_key = f"{source_prefix}encoder.layers.0.self_attn.relative_attention_bias.weight"
    first = state_dict.get(first_key)
    kept: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    for key, tensor in state_dict.items():
        match = _SHARED_BIAS_KEY.match(key[len(source_prefix):]) if key.startswith(source_prefix) else None
        if match is None or match.group(1) == "0":
            kept[key] = tensor
            continue
        if first is None:
            raise ConversionError(f"{key} is present but {first_key}, the table it is tied to, is not.")
        if tuple(tensor.shape) != tuple(first.shape):
            raise ConversionError(
                f"{key} {tuple(tensor.shape)} differs in shape from {first_key} {tuple(first.shape)}."
            )
        if not (tensor.is_meta or first.is_meta) and not torch.equal(tensor, first):
            raise ConversionError(
                f"{key} differs from {first_key}: the relative position bias is expected to be one table shared by "
                "all layers (as the original builds it), which this port requires."
            )
        dropped[key] = SHARED_BIAS_REASON
    return kept, dropped


def convert_beats_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: BeatsConfig,
    expected: Mapping[str, torch.Size] | None = None,
    source_prefix: str = "",
    target_prefix: str = "",
    dtype: torch.dtype | None = torch.float32,
) -> ConversionResult:
    """Rename a BEATs state dict (the keys under `source_prefix`; any other key is an error) to ours under
    `target_prefix`. With `expected` (our names -> shapes), unexpected/missing keys and shape mismatches raise
    [`ConversionError`] naming them."""
    outside = [key for key in state_dict if not key.startswith(source_prefix)]
    if outside:
        raise ConversionError(f"{len(outside)} key(s) lie outside the BEATs prefix {source_prefix!r}: {outside[:10]}.")
    remaining, dropped = drop_shared_relative_bias_copies(state_dict, source_prefix)
    mapping = beats_key_mapping(config, source_prefix, target_prefix)
    converted, renamed, dropped_by_rule, unmapped = mapping.apply(remaining, dtype)
    if unmapped:
        raise ConversionError(
            f"{len(unmapped)} BEATs key(s) have no counterpart (neither renamed nor dropped with a reason): "
            f"{unmapped[:20]}{' ...' if len(unmapped) > 20 else ''}."
        )
    if expected is not None:
        check_against(converted, renamed, expected)
    return ConversionResult(converted, {**dropped, **dropped_by_rule}, renamed)


def beats_state_dict_to_original(state_dict: Mapping[str, torch.Tensor], config: BeatsConfig) -> dict:
    """Our [`BeatsModel`] state dict back to the original key names (the shared bias table repeated under every
    layer, as the original's `state_dict()` lists it), e.g. to write a `beats.pth` `{'cfg', 'model'}`."""
    mapping = beats_key_mapping(config, accept_parametrized=False)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        original = mapping.to_original(key)
        if original is None:
            raise ConversionError(f"Key {key!r} has no original BEATs counterpart.")
        out[original] = tensor
        if original == "encoder.layers.0.self_attn.relative_attention_bias.weight":
            for index in range(1, config.num_hidden_layers):
                out[f"encoder.layers.{index}.self_attn.relative_attention_bias.weight"] = tensor
    return out


def load_beats_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read a `beats.pth` (`torch.load(weights_only=True)`): returns `(cfg, state_dict)`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No BEATs checkpoint at {path}.")
    cfg, state_dict = split_beats_checkpoint(read_checkpoint_file(path))
    check_finite(state_dict, f"the source file {path}")
    return cfg, state_dict


def split_beats_checkpoint(checkpoint: Mapping) -> tuple[dict, dict[str, torch.Tensor]]:
    """`(cfg, state_dict)` of an in-memory `{'cfg': dict, 'model': state_dict}`."""
    if not isinstance(checkpoint, Mapping) or "cfg" not in checkpoint or "model" not in checkpoint:
        keys = sorted(checkpoint)[:10] if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ConversionError(
            f"Expected a BEATs checkpoint {{'cfg': dict, 'model': state_dict}} (the beats.pth format), got {keys}."
        )
    cfg, state_dict = checkpoint["cfg"], checkpoint["model"]
    if not isinstance(cfg, Mapping) or not isinstance(state_dict, Mapping):
        raise ConversionError("In a BEATs checkpoint 'cfg' and 'model' must both be dicts.")
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ConversionError(f"BEATs checkpoint entries that are not tensors: {not_tensors[:10]}.")
    return dict(cfg), dict(state_dict)


def convert_beats_checkpoint(
    checkpoint: str | os.PathLike | Mapping,
    num_mel_bins: int = 64,
    dtype: torch.dtype = torch.float32,
    **config_overrides,
) -> tuple[BeatsModel, ConversionResult]:
    """Convert a `beats.pth` (path or loaded dict) into a [`BeatsModel`] in eval mode: config from its cfg, model
    built on the meta device, keys renamed strictly, `load_state_dict(strict=True, assign=True)`."""
    if isinstance(checkpoint, Mapping):
        cfg, state_dict = split_beats_checkpoint(checkpoint)
    else:
        cfg, state_dict = load_beats_checkpoint(checkpoint)
    config = beats_config_from_original(cfg, num_mel_bins=num_mel_bins, **config_overrides)
    with torch.device("meta"):
        model = BeatsModel(config)
    result = convert_beats_state_dict(state_dict, config, expected_tensors(model), dtype=dtype)
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    left_on_meta = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left_on_meta:
        raise ConversionError(f"Tensors left uninitialised after loading: {left_on_meta}.")
    model.eval()
    return model, result


# ------------------------------------------------------------------------------------------------------------------
# Folder export (`--family beats`)
# ------------------------------------------------------------------------------------------------------------------
STAGE2_AUDIO_PREFIX = "audio_encoder."
NOT_AUDIO_REASON = (
    "not part of the audio encoder (a stage-2 audio-video-text checkpoint: `--family beats` extracts only "
    "audio_encoder.*; the whole model is converted with `--family stage2`)"
)


@dataclass
class SavedBeatsConversion:
    output_dir: Path
    source: str  # "beats.pth" or "stage2"
    config: BeatsConfig
    num_parameters: int
    result: ConversionResult
    files: list[str]
    source_sha256: str


def _read_source(path: Path) -> tuple[str, dict | None, dict[str, torch.Tensor]]:
    """`(kind, cfg or None, state dict)`: a `beats.pth` (`{'cfg', 'model'}`) gives its cfg and BEATs keys; anything
    else is unwrapped as an original checkpoint and must hold `audio_encoder.*` keys (a stage-2 audio-video-text
    checkpoint, whose non-audio keys are then dropped with a reason) or bare BEATs keys."""
    checkpoint = read_checkpoint_file(path)  # a 6B stage-2 file is memory-mapped: only its audio encoder is read
    if isinstance(checkpoint, Mapping) and "cfg" in checkpoint and "model" in checkpoint:
        cfg, state_dict = split_beats_checkpoint(checkpoint)
        return "beats.pth", cfg, state_dict
    state_dict = unwrap_state_dict(checkpoint)
    if any(key.startswith(STAGE2_AUDIO_PREFIX) for key in state_dict):
        return "stage2", None, state_dict
    if "patch_embedding.weight" in state_dict:
        return "state_dict", None, state_dict
    raise ConversionError(
        f"{path} is neither a beats.pth ({{'cfg', 'model'}}) nor a checkpoint with BEATs keys (audio_encoder.* of a "
        "stage-2 audio-video-text model, or bare patch_embedding.* / encoder.*); first keys: "
        f"{sorted(state_dict)[:8]}."
    )


def convert_and_save_beats(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    beats_cfg: str | os.PathLike | Mapping | None = None,
    preset: str | None = None,
    num_mel_bins: int = 64,
    dtype: str = "float32",
    save_feature_extractor: bool = True,
) -> SavedBeatsConversion:
    """Convert a BEATs encoder into a `save_pretrained` folder: config, safetensors (re-read and compared bit-exactly)
    and, by default, the [`BeatsFeatureExtractor`] of InternVideo2's audio path (`preprocessor_config.json`).

    `checkpoint` is a `beats.pth` (its cfg gives the sizes), or a stage-2 audio-video-text checkpoint (the
    `audio_encoder.*` keys are taken, every other key is dropped with a reason) or a bare BEATs state dict; those two
    carry no cfg, so give `beats_cfg` (the `beats.pth` the model was built from, or its cfg dict) or `preset`
    (`"beats-iter3"`, the released model's structure). A cfg in the checkpoint and a `beats_cfg`/`preset` together
    are an error (which one would win is not obvious)."""
    if dtype not in DTYPES:
        raise ConversionError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    if beats_cfg is not None and preset is not None:
        raise ConversionError("Give either beats_cfg or preset, not both.")
    checkpoint, output_dir = Path(checkpoint), check_output_dir(output_dir)
    source, cfg, state_dict = _read_source(checkpoint)
    if cfg is not None and (beats_cfg is not None or preset is not None):
        raise ConversionError(f"{checkpoint} is a beats.pth and carries its own cfg; do not pass beats_cfg/preset.")
    if cfg is not None:
        config = beats_config_from_original(cfg, num_mel_bins=num_mel_bins)
    elif beats_cfg is not None:
        cfg = beats_cfg if isinstance(beats_cfg, Mapping) else load_beats_checkpoint(beats_cfg)[0]
        config = beats_config_from_original(cfg, num_mel_bins=num_mel_bins)
    elif preset is not None:
        if preset.lower() not in BEATS_PRESETS:
            raise ConversionError(f"Unknown preset {preset!r}; expected one of {sorted(BEATS_PRESETS)}.")
        config = BeatsConfig.from_preset(preset, num_mel_bins=num_mel_bins)
    else:
        raise ConversionError(
            f"{checkpoint} carries no BEATs cfg: give beats_cfg (the beats.pth it was built from) or preset "
            f"({sorted(BEATS_PRESETS)})."
        )
    dropped_outside: dict[str, str] = {}
    prefix = ""
    if source == "stage2":
        prefix = STAGE2_AUDIO_PREFIX
        dropped_outside = {key: NOT_AUDIO_REASON for key in state_dict if not key.startswith(prefix)}
        state_dict = {key: tensor for key, tensor in state_dict.items() if key.startswith(prefix)}
    check_finite(state_dict, f"the source file {checkpoint}")  # only the tensors that are converted
    with torch.device("meta"):
        model = BeatsModel(config)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    result = convert_beats_state_dict(state_dict, config, expected, source_prefix=prefix, dtype=DTYPES[dtype])
    result = ConversionResult(result.state_dict, {**dropped_outside, **result.dropped}, result.renamed)
    model.load_state_dict(result.state_dict, strict=True, assign=True)
    model.eval()

    def write_feature_extractor(folder: Path) -> None:
        if save_feature_extractor:
            BeatsFeatureExtractor(num_mel_bins=config.num_mel_bins).save_pretrained(str(folder))

    files = save_and_verify(model, output_dir, write_feature_extractor)
    return SavedBeatsConversion(
        output_dir=output_dir,
        source=source,
        config=config,
        num_parameters=sum(p.numel() for p in model.parameters()),
        result=result,
        files=files,
        source_sha256=file_sha256(checkpoint),
    )


def build_argument_parser(parser=None):
    """Arguments of `--family beats` (the conversion script and `internvideo2 convert`)."""
    parser = parser or argparse.ArgumentParser(
        description="Convert a BEATs audio encoder (beats.pth, or the audio_encoder of a stage-2 audio-video-text "
        "checkpoint) to a Transformers folder with its Kaldi-fbank feature extractor."
    )
    parser.add_argument("--family", choices=["beats"], default="beats", help="checkpoint family")
    parser.add_argument("--checkpoint", required=True, help="beats.pth, or a stage-2 .pt/.pth/.safetensors file")
    parser.add_argument("--output", required=True, help="output folder (save_pretrained layout)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--beats-cfg", metavar="BEATS.PTH",
                        help="for a checkpoint without cfg: the beats.pth whose cfg gives the sizes")
    source.add_argument("--preset", choices=sorted(BEATS_PRESETS),
                        help="for a checkpoint without cfg: a named structure")
    parser.add_argument("--num-mel-bins", type=int, default=64, help="filterbank width (InternVideo2: 64)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--no-feature-extractor", action="store_true",
                        help="do not write preprocessor_config.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    try:
        saved = convert_and_save_beats(
            args.checkpoint,
            args.output,
            beats_cfg=args.beats_cfg,
            preset=args.preset,
            num_mel_bins=args.num_mel_bins,
            dtype=args.dtype,
            save_feature_extractor=not args.no_feature_extractor,
        )
    except (ConversionError, FileNotFoundError) as error:
        return conversion_failed(error)
    config = saved.config
    print(
        f"Converted {args.checkpoint} ({saved.source}) -> {saved.output_dir} (BeatsModel): "
        f"{saved.num_parameters:,} parameters, {config.num_hidden_layers} layers of width {config.hidden_size}, "
        f"{len(saved.result.renamed)} tensors renamed, {len(saved.result.dropped)} dropped; files: "
        f"{', '.join(saved.files)}"
    )
    print_dropped_reasons(saved.result.dropped)
    return 0

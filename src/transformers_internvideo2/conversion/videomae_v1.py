# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Conversion of the VideoMAE v1 classifiers released with InternVideo (v1) (`Pretrain/VideoMAE`,
`modeling_finetune.VisionTransformer`: `vit_{b,l}_hybrid_pt_800e_{k400,k710,k700,ssv2}_ft.pth`, the ViT-H K400
32-frame 384 px file, ...) to [`InternVideoMAEForVideoClassification`], Transformers' `VideoMAEForVideoClassification`
with the original's position-table rule (see `models/videomae_v1`). The weights use Transformers' key names: they also
load into `VideoMAEForVideoClassification` itself.

Checkpoints are `{'module': sd}` (DeepSpeed), `{'model': sd}` or bare; `backbone.`/`encoder.` prefixes are stripped as
the original loader does. The position table is not in the files (the original computes it); the grid it is resized
to comes from `image_size` / `num_frames`, which the files do not record either: give them for models fine-tuned at
other sizes (ViT-H K400: `--image-size 384 --num-frames 32`).

| original | ours |
| --- | --- |
| `patch_embed.proj.*` | `videomae.embeddings.patch_embeddings.projection.*` |
| `blocks.{i}.norm1.*` / `norm2.*` | `videomae.encoder.layer.{i}.layernorm_before.*` / `layernorm_after.*` |
| `blocks.{i}.attn.qkv.weight` (rows q, k, v) | `...attention.attention.{query,key,value}.weight` (split) |
| `blocks.{i}.attn.q_bias` / `v_bias` | `...attention.attention.query.bias` / `value.bias` (the key has none) |
| `blocks.{i}.attn.proj.*` | `...attention.output.dense.*` |
| `blocks.{i}.mlp.fc1.*` / `fc2.*` | `...intermediate.dense.*` / `...output.dense.*` |
| `fc_norm.*` / `norm.*` | `fc_norm.*` (mean pooling) / `videomae.layernorm.*` (no mean pooling) |
| `head.*` | `classifier.*` |
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..models.videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification
from .core import (
    DTYPES,
    ConversionError,
    ConversionResult,
    KeyMapping,
    check_against,
    check_output_dir,
    conversion_failed,
    expected_shapes,
    load_original_checkpoint,
    save_and_verify,
)


__all__ = [
    "HEADS_BY_WIDTH",
    "convert_and_save_videomae_v1",
    "convert_videomae_v1_state_dict",
    "main",
    "videomae_v1_config_from_state_dict",
    "videomae_v1_key_mapping",
]

# The released builders (vit_small/base/large/huge_patch16_224): heads by width.
HEADS_BY_WIDTH = {384: 6, 768: 12, 1024: 16, 1280: 16}

_LAYER = "videomae.encoder.layer.{i}."


def videomae_v1_key_mapping() -> KeyMapping:
    rules = [
        ("patch_embed.proj.*", "videomae.embeddings.patch_embeddings.projection.*"),
        ("blocks.{i}.norm1.*", _LAYER + "layernorm_before.*"),
        ("blocks.{i}.norm2.*", _LAYER + "layernorm_after.*"),
        ("blocks.{i}.attn.q.weight", _LAYER + "attention.attention.query.weight"),
        ("blocks.{i}.attn.k.weight", _LAYER + "attention.attention.key.weight"),
        ("blocks.{i}.attn.v.weight", _LAYER + "attention.attention.value.weight"),
        ("blocks.{i}.attn.q_bias", _LAYER + "attention.attention.query.bias"),
        ("blocks.{i}.attn.v_bias", _LAYER + "attention.attention.value.bias"),
        ("blocks.{i}.attn.proj.*", _LAYER + "attention.output.dense.*"),
        ("blocks.{i}.mlp.fc1.*", _LAYER + "intermediate.dense.*"),
        ("blocks.{i}.mlp.fc2.*", _LAYER + "output.dense.*"),
        ("fc_norm.*", "fc_norm.*"),
        ("norm.*", "videomae.layernorm.*"),
        ("head.*", "classifier.*"),
    ]
    return KeyMapping(rules)


_QKV = re.compile(r"blocks\.(\d+)\.attn\.qkv\.weight\Z")


def _split_qkv(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`attn.qkv.weight` (rows q, k, v) -> `attn.q.weight`, `attn.k.weight`, `attn.v.weight`."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _QKV.match(key)
        if match is None:
            out[key] = value
            continue
        if value.shape[0] % 3:
            raise ConversionError(f"{key} has {value.shape[0]} rows, not 3 x width.")
        prefix = f"blocks.{match.group(1)}.attn."
        for name, part in zip("qkv", value.chunk(3, dim=0)):
            out[prefix + name + ".weight"] = part
    return out


def videomae_v1_config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], image_size: int = 224, num_frames: int = 16, **overrides
) -> InternVideoMAEConfig:
    """Sizes from the tensors (heads from the width, as the released builders); `image_size` / `num_frames` are the
    input the model was fine-tuned for (the files do not record them)."""
    try:
        width, _, tubelet, patch, _ = state_dict["patch_embed.proj.weight"].shape
        intermediate = state_dict["blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as error:
        raise ConversionError(f"Not a VideoMAE v1 classifier: {error.args[0]!r} is missing.") from error
    depth = len({m.group(1) for k in state_dict if (m := re.match(r"blocks\.(\d+)\.", k))})
    if "num_attention_heads" not in overrides and width not in HEADS_BY_WIDTH:
        raise ConversionError(f"Width {width} is not a released size {sorted(HEADS_BY_WIDTH)}: give the heads.")
    kwargs = dict(
        image_size=image_size, patch_size=patch, num_frames=num_frames, tubelet_size=tubelet, hidden_size=width,
        num_hidden_layers=depth, num_attention_heads=HEADS_BY_WIDTH.get(width), intermediate_size=intermediate,
        hidden_act="gelu", layer_norm_eps=1e-6, qv_bias="blocks.0.attn.q_bias" in state_dict,
        use_mean_pooling="fc_norm.weight" in state_dict,
        num_labels=state_dict["head.weight"].shape[0] if "head.weight" in state_dict else 0,
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideoMAEConfig(**kwargs)


def convert_videomae_v1_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: InternVideoMAEConfig, dtype: torch.dtype | None = None
) -> ConversionResult:
    """Strict conversion: every key mapped, every parameter provided, shapes checked."""
    if "pos_embed" in state_dict:
        raise ConversionError(
            "The checkpoint stores 'pos_embed' (a learned table): the released v1 classifiers compute a fixed one."
        )
    if any(key.startswith(("gamma_", "blocks.0.gamma")) for key in state_dict):
        raise ConversionError("LayerScale (gamma_1/gamma_2) is not part of the released v1 classifiers.")
    converted, renamed, dropped, unmapped = videomae_v1_key_mapping().apply(_split_qkv(state_dict), dtype)
    if unmapped:
        raise ConversionError(f"Keys no rule maps: {sorted(unmapped)[:20]}.")
    with torch.device("meta"):
        model = InternVideoMAEForVideoClassification(config)
    check_against(converted, renamed, expected_shapes(model))
    return ConversionResult(state_dict=converted, dropped=dropped, renamed=renamed)


def convert_and_save_videomae_v1(
    checkpoint: str | Path,
    output_dir: str | Path,
    image_size: int = 224,
    num_frames: int = 16,
    id2label: dict[int, str] | None = None,
    dtype: str = "float32",
) -> tuple[InternVideoMAEForVideoClassification, list[str]]:
    check_output_dir(output_dir)
    state_dict = load_original_checkpoint(checkpoint)
    overrides = {"id2label": id2label} if id2label else {}
    config = videomae_v1_config_from_state_dict(state_dict, image_size, num_frames, **overrides)
    result = convert_videomae_v1_state_dict(state_dict, config, DTYPES[dtype])
    model = InternVideoMAEForVideoClassification(config)
    model.load_state_dict(result.state_dict, strict=True)
    model.eval()

    def write_video_processor(folder: Path) -> None:
        # The evaluation transform the `classify` command then uses: short side to the input size, centre crop,
        # ImageNet mean/std (as the original); frames by segment sampling (the original's Kinetics protocol samples
        # 16 consecutive-stride-4 frames per view, which is not one of the package's sampling modes).
        InternVideo2VideoProcessor(
            num_frames=num_frames,
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        ).save_pretrained(folder)

    files = save_and_verify(model, output_dir, write_video_processor)
    return model, files


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        description="Convert a VideoMAE v1 classifier of InternVideo (v1) to a Transformers VideoMAE folder."
    )
    parser.add_argument("--family", choices=["videomae-v1"], default="videomae-v1")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--image-size", type=int, default=224, help="input size of the fine-tune (ViT-H K400: 384)")
    parser.add_argument("--num-frames", type=int, default=16, help="frames of the fine-tune (ViT-H K400: 32)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_argument_parser().parse_args(argv)
    try:
        model, files = convert_and_save_videomae_v1(
            args.checkpoint, args.output, args.image_size, args.num_frames, dtype=args.dtype
        )
    except (ConversionError, FileNotFoundError) as error:
        return conversion_failed(error)
    config = model.config
    print(
        f"Converted {args.checkpoint} -> {args.output} (InternVideoMAEForVideoClassification): "
        f"{config.num_hidden_layers} layers of width {config.hidden_size}, {config.num_labels} classes, "
        f"{config.image_size} px, {config.num_frames} frames; files: {', '.join(files)}"
    )
    return 0

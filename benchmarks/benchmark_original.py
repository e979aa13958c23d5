#!/usr/bin/env python
"""Ours against the original on the same weights: `InternVideo2ForVideoClassification` and the original classifier's
pure-PyTorch path (`original_path.py`), timed interleaved round by round in every mode.

For each `--models` preset a random-weight classifier of ours is built with the original pure path's exact GELU,
its state dict is renamed to the original keys (`conversion.internvideo2_vision.to_original_state_dict`) and loaded
strictly into the original-path model, so both compute the same function of the same weights. Then, per mode
(`fp32`, `bf16` weights, `autocast-bf16`: float32 weights under `torch.autocast`), every round times the original
and ours per `--attn` setting (the fastest of `--passes` forwards each), order alternating; the ratio original ÷ ours
is taken per round (> 1: ours is faster) and its median reported. The largest logit difference against the original
in the same mode is printed as well: it shows that the two compute the same thing (rounding aside).

    python benchmarks/benchmark_original.py --models internvideo2-s14 internvideo2-b14 --rounds 5 --threads 2 \
        --json benchmarks/results/original_vs_ours_cpu.json

A measurement tool, not a test: nothing asserts a speed. The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import interleaved_rounds, load_average, ratio_summary, start_report, vision_config, write_json  # noqa: E402
# the modes (`fp32`, `bf16`, `autocast-bf16`, ...) and their dtypes and contexts are the vision benchmark's
from benchmark_vision import (  # noqa: E402
    AUTOCAST_MODES,
    DTYPES,
    compute_dtype,
    compute_dtype_name,
    forward_context,
    forward_flops,
    measure_matmul_peak,
    synchronize,
    weight_dtype,
)
from original_path import OriginalInternVideo2Classifier  # noqa: E402


def build_pair(model: str, frames: int, num_classes: int, device: torch.device):
    """Ours (random weights, seeded) and the original-path model holding the same weights, both float32, eval."""
    from transformers_internvideo2 import InternVideo2ForVideoClassification
    from transformers_internvideo2.conversion.internvideo2_vision import FAMILY_CLASSIFIER, to_original_state_dict

    config = vision_config(model, hidden_act="gelu", num_frames=frames, num_labels=num_classes)
    torch.manual_seed(0)
    with torch.device(device):
        ours = InternVideo2ForVideoClassification._from_config(config, attn_implementation="sdpa").eval()
        original = OriginalInternVideo2Classifier(
            embed_dim=config.hidden_size,
            depth=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            mlp_hidden=config.intermediate_size,
            num_frames=config.num_frames,
            img_size=config.image_size,
            patch_size=config.patch_size,
            tubelet_size=config.tubelet_size,
            in_chans=config.num_channels,
            qk_normalization=config.use_qk_norm,
            attn_pool_num_heads=config.pooler_num_attention_heads,
            clip_embed_dim=config.pooler_output_size,
            num_classes=num_classes,
        ).eval()
    original.load_state_dict(to_original_state_dict(ours.state_dict(), FAMILY_CLASSIFIER, config), strict=True)
    return ours, original, config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["internvideo2-s14"], help="Vision presets, or `tiny`.")
    parser.add_argument(
        "--modes", nargs="+", choices=[*DTYPES, *AUTOCAST_MODES], default=["fp32", "bf16", "autocast-bf16"]
    )
    parser.add_argument("--attn", nargs="+", default=["sdpa", "eager"], help="Our attn_implementation settings.")
    parser.add_argument("--frames", type=int, default=8, help="Frames per clip (the original needs the trained count).")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=2, help="Forwards per variant and round; the fastest counts.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--matmul-size", type=int, default=4096, help="Side of the square matmul of the peak.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if min(args.frames, args.batch_size, args.rounds, args.passes, args.num_classes) < 1:
        parser.error("--frames, --batch-size, --rounds, --passes and --num-classes must be positive.")
    return args


def main(argv=None, log=print) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    report = start_report("benchmark_original.py", argv, args.threads, str(device), log=log)
    report.update(frames=args.frames, batch_size=args.batch_size, rounds=args.rounds, passes=args.passes, results=[])
    # The ceiling of any speed-up: the original's time over the time the clip's matmul FLOPs take at the practical
    # matmul peak of this device, measured in this run. Where the original already runs near that peak, no
    # implementation can be much faster than it.
    peaks = {}
    for mode in args.modes:
        name = compute_dtype_name(mode)
        if name not in peaks:
            peaks[name] = measure_matmul_peak(device, compute_dtype(mode), args.matmul_size)
            log(f"# matmul peak {name} ({args.matmul_size}^3): {peaks[name] / 1e9:.0f} GFLOP/s")
    report["matmul_peak_flops_per_second"] = peaks
    for model_name in args.models:
        ours, original, config = build_pair(model_name, args.frames, args.num_classes, device)
        generator = torch.Generator().manual_seed(0)
        shape = (args.batch_size, config.num_frames, config.num_channels, config.image_size, config.image_size)
        video = torch.randn(shape, generator=generator).to(device)  # ours: (B, T, C, H, W)
        for mode in args.modes:
            ours.to(weight_dtype(mode))
            original.to(weight_dtype(mode))
            inputs = video.to(weight_dtype(mode))
            original_inputs = inputs.permute(0, 2, 1, 3, 4)  # the original takes (B, C, T, H, W)

            def timed(name):
                def run():  # the fastest of `--passes` forwards: a pass slowed by another process is dropped
                    prepare(name)
                    seconds = []
                    for _ in range(args.passes):
                        with torch.inference_mode(), forward_context(mode, device):
                            synchronize(device)
                            start = time.perf_counter()
                            forwards[name]()
                            synchronize(device)
                            seconds.append(time.perf_counter() - start)
                    return min(seconds)

                return run

            def prepare(name):  # outside the timed span: switching our attention setting walks the modules
                if name.startswith("ours "):
                    ours.set_attn_implementation(name.removeprefix("ours "))

            forwards = {"original": lambda: original(original_inputs)}
            forwards.update({f"ours {attn}": lambda: ours(pixel_values=inputs).logits for attn in args.attn})
            logits = {}
            for name, forward in forwards.items():  # warm-up, and the agreement check
                prepare(name)
                with torch.inference_mode(), forward_context(mode, device):
                    logits[name] = forward().float()
            log(f"# {model_name} {mode}, seconds per forward (batch {args.batch_size}, {config.num_frames} frames):")
            measured = interleaved_rounds({name: timed(name) for name in forwards}, args.rounds, log)
            peak = peaks[compute_dtype_name(mode)]
            flops = forward_flops(config, config.num_frames)["total"] * args.batch_size  # encoder and pooler matmuls
            original_s = statistics.median(measured["original"])
            row = {"model": model_name, "mode": mode, "flops_per_forward": flops, "original_median_s": original_s,
                   "original_per_round_s": measured["original"], "original_fraction_of_matmul_peak": flops / original_s / peak,
                   "largest_possible_speedup": original_s / (flops / peak), "ours": {}}  # fmt: skip
            log(f"{model_name} {mode} original: {original_s:.3f} s, {flops / original_s / 1e9:.0f} GFLOP/s "
                f"({row['original_fraction_of_matmul_peak']:.0%} of the matmul peak): no implementation can be more "
                f"than {row['largest_possible_speedup']:.2f}x faster here")  # fmt: skip
            for attn in args.attn:
                name = f"ours {attn}"
                speedup = ratio_summary(measured["original"], measured[name])
                ours_s = statistics.median(measured[name])
                row["ours"][attn] = {
                    "median_s": ours_s,
                    "fraction_of_matmul_peak": flops / ours_s / peak,
                    "per_round_s": measured[name],
                    "speedup_over_original": speedup,
                    "max_abs_logit_difference": (logits[name] - logits["original"]).abs().max().item(),
                }
                log(f"{model_name} {mode} ours {attn}: {ours_s:.3f} s "
                    f"({row['ours'][attn]['fraction_of_matmul_peak']:.0%} of the peak) vs original "
                    f"{original_s:.3f} s, original / ours per round: median {speedup['median']:.2f}x "
                    f"(min {speedup['min']:.2f}, max {speedup['max']:.2f}); "
                    f"max |logit difference| {row['ours'][attn]['max_abs_logit_difference']:.2e}")  # fmt: skip
            report["results"].append(row)
        del ours, original
    report["load_average_after"] = load_average()
    log(f"# load average before / after: {report['load_average_before']} / {report['load_average_after']}")
    write_json(report, args.json, log)
    return report


if __name__ == "__main__":
    main()

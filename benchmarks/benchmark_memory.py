#!/usr/bin/env python
"""Peak memory of the InternVideo2 vision encoder: inference per clip and batch size, and what gradient checkpointing
saves in training.

Every setting runs in a **fresh Python subprocess** (this script with `--worker`), so that nothing one setting
allocated (allocator caches, oneDNN primitive caches, freed-but-kept heap) inflates or hides the next one's peak.

* Inference: `InternVideo2VisionModel` (random weights, `--dtype`, `--attn`) in eval mode under `torch.no_grad()`,
  one untimed warm-up pass, then the peak over one pass on a random `(batch, frames, 3, H, W)` clip for each
  `--batch-sizes` value. Reported: the size of the weights, the process peak, the increase over what was in use
  before the pass ("+fwd") and that increase per clip.
* Training: `InternVideo2ForVideoClassification` in train mode, cross-entropy on random labels, one warm-up
  forward + backward (so the gradients exist and are kept, zeroed in place), then the peak increase of one forward +
  backward, with and without `model.gradient_checkpointing_enable()`, same model, batch and seed. The increase is then
  activations and temporaries, the part checkpointing trades for recomputation.

How the peak is measured (`benchmark_vision.PeakMemoryMeter`): CUDA `torch.cuda.max_memory_allocated` (tensors only);
CPU the process's resident-set high-water mark `VmHWM`, reset through `/proc/self/clear_refs` after `malloc_trim`
(falls back to psutil RSS sampled every 5 ms). `tracemalloc` is not used: it does not see torch's allocations.

    python benchmarks/benchmark_memory.py --model internvideo2-s14 --frames 8 --batch-sizes 1 2 4 \
        --train-batch-size 2 --json benchmarks/results/memory_cpu_s14.json

Memory does not depend on the machine's load, but the process peak on CPU includes Python and the libraries; the
"+fwd" columns are the ones that belong to the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import MIB, describe_machine, load_average, vision_config, write_json  # noqa: E402


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# ------------------------------------------------------------------------------------------------------------------
# Worker: one setting, in its own process
# ------------------------------------------------------------------------------------------------------------------
def _measure(setting: dict) -> dict:
    from benchmark_vision import PeakMemoryMeter

    from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionModel

    if setting.get("threads"):
        torch.set_num_threads(setting["threads"])
    device = torch.device(setting["device"])
    dtype = DTYPES[setting["dtype"]]
    config = vision_config(setting["model"])
    frames, batch = setting["frames"], setting["batch_size"]
    meter = PeakMemoryMeter(device)
    torch.manual_seed(0)
    training = setting["mode"] == "train"
    model_class = InternVideo2ForVideoClassification if training else InternVideo2VisionModel
    if training:
        config.num_labels = setting.get("num_labels", 10)
    with torch.device(device):
        model = model_class._from_config(config, dtype=dtype, attn_implementation=setting["attn"])
    clip = torch.randn(batch, frames, 3, config.image_size, config.image_size, device=device, dtype=dtype)
    interpolate = frames != config.num_frames
    result = {**setting, "memory_method": meter.method, "parameters": sum(p.numel() for p in model.parameters()),
              "weights_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}  # fmt: skip

    if not training:
        model.eval()

        def step():
            with torch.no_grad():
                model(clip, interpolate_pos_encoding=interpolate)

    else:
        model.train()
        if setting["gradient_checkpointing"]:
            # Transformers 5.2x renamed it (the old name still works, with a FutureWarning)
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
        labels = torch.randint(0, config.num_labels, (batch,), device=device)

        def step():
            logits = model(clip, interpolate_pos_encoding=interpolate).logits
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()

    step()  # warm-up: first-call caches, and in training the gradient buffers (kept, zeroed in place)
    model.zero_grad(set_to_none=False)
    meter.start()
    step()
    peak, increase = meter.stop()
    result.update(peak_bytes=peak, increase_bytes=increase, increase_per_clip_bytes=increase / batch)
    return result


# ------------------------------------------------------------------------------------------------------------------
# Parent: one subprocess per setting
# ------------------------------------------------------------------------------------------------------------------
def run_setting(setting: dict, in_process: bool = False) -> dict:
    if in_process:  # smoke tests only: the earlier settings' caches stay in the process
        return _measure(setting)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(setting)]
    completed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if completed.returncode != 0:
        raise RuntimeError(f"memory worker failed for {setting}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def format_report(report: dict) -> str:
    lines = ["inference: model | attn | dtype | frames | batch | weights MiB | peak MiB | +fwd MiB | +fwd MiB/clip"]
    for row in report["inference"]:
        weights = f"{row['weights_bytes'] / MIB:.0f}"
        lines.append(
            f"{row['model']} | {row['attn']} | {row['dtype']} | {row['frames']} | {row['batch_size']} | {weights} | "
            f"{row['peak_bytes'] / MIB:.0f} | {row['increase_bytes'] / MIB:.0f} | "
            f"{row['increase_per_clip_bytes'] / MIB:.0f}"
        )
    if report.get("training"):
        lines += ["", "training (forward + backward): model | attn | dtype | frames | batch | checkpointing | "
                      "+fwd+bwd MiB | peak MiB"]  # fmt: skip
        for row in report["training"]:
            lines.append(
                f"{row['model']} | {row['attn']} | {row['dtype']} | {row['frames']} | {row['batch_size']} | "
                f"{'on' if row['gradient_checkpointing'] else 'off'} | {row['increase_bytes'] / MIB:.0f} | "
                f"{row['peak_bytes'] / MIB:.0f}"
            )
        saving = report["gradient_checkpointing_saving"]
        lines.append(f"gradient checkpointing saves {100 * saving:.0f} % of the training step's activation memory")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", metavar="SETTING_JSON", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="internvideo2-s14", help="Vision preset, or `tiny`.")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--train-batch-size", type=int, default=2, help="0 skips the training comparison.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--in-process", action="store_true",
                        help="Measure in this process instead of a fresh one per setting (fast smoke runs only).")
    parser.add_argument("--json", metavar="OUT")
    return parser.parse_args(argv)


def main(argv=None, log=print) -> dict:
    args = parse_args(argv)
    if args.worker:
        result = _measure(json.loads(args.worker))
        print(json.dumps(result))
        return result
    common = dict(model=args.model, frames=args.frames, dtype=args.dtype, attn=args.attn, device=args.device,
                  threads=args.threads)  # fmt: skip
    report = {"machine": describe_machine(args.device), "load_average_before": load_average(),
              "fresh_process_per_setting": not args.in_process,
              "command": " ".join(["benchmark_memory.py", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    report["inference"] = []
    for batch in args.batch_sizes:
        row = run_setting({**common, "mode": "inference", "batch_size": batch}, args.in_process)
        report["inference"].append(row)
        log(f"  inference batch {batch}: +fwd {row['increase_bytes'] / MIB:.0f} MiB")
    report["training"] = []
    if args.train_batch_size:
        for checkpointing in (False, True):
            row = run_setting({**common, "mode": "train", "batch_size": args.train_batch_size,
                               "gradient_checkpointing": checkpointing}, args.in_process)  # fmt: skip
            report["training"].append(row)
            log(f"  training, checkpointing {checkpointing}: +fwd+bwd {row['increase_bytes'] / MIB:.0f} MiB")
        without, with_ = (row["increase_bytes"] for row in report["training"])
        report["gradient_checkpointing_saving"] = 1 - with_ / without if without else None
    report["load_average_after"] = load_average()
    log(format_report(report))
    log(f"# load average before / after: {report['load_average_before']} / {report['load_average_after']}")
    write_json(report, args.json, log)
    return report


if __name__ == "__main__":
    main()

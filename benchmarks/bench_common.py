"""Helpers shared by the benchmark scripts of this folder: load average, machine description, interleaved timing
rounds, summaries of per-round ratios and JSON output.

Comparisons (ours against a reference) are run *interleaved*: every round times each variant once, in an order that
alternates from round to round, and the ratio is taken per round. On a machine shared with other jobs the load
changes from minute to minute; a ratio of two measurements taken seconds apart is far less affected by it than a ratio
of two medians taken minutes apart.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch


try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


# A 2-layer, 28-px vision encoder: the smoke tests' model.
TINY_VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
                   patch_size=14, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4)  # fmt: skip
MIB = 1024**2


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine(device: str = "cpu") -> dict:
    import transformers

    info = {
        "cpu": cpu_model_name(),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def vision_config(model: str, **overrides):
    """`InternVideo2VisionConfig` of a preset name, or of `tiny` (the smoke tests' 2-layer model)."""
    from transformers_internvideo2 import InternVideo2VisionConfig

    if model == "tiny":
        return InternVideo2VisionConfig(**{**TINY_VISION, **overrides})
    return InternVideo2VisionConfig.from_preset(model, **overrides)


def interleaved_rounds(variants: dict[str, Callable[[], float]], rounds: int, log=print) -> dict[str, list[float]]:
    """Call every variant once per round (each returns the number it measured), the order reversed every other
    round so that neither variant always runs first. Returns the measurements of each variant, round by round."""
    names = list(variants)
    results = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(variants[name]())
        log(f"  round {index + 1}/{rounds}: " + ", ".join(f"{name} {results[name][-1]:.4g}" for name in names))
    return results


def ratio_summary(numerators: list[float], denominators: list[float]) -> dict:
    """Per-round ratios `numerators[i] / denominators[i]` with their median, minimum and maximum."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return {"per_round": ratios, "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def write_json(report: dict, path: str | os.PathLike | None, log=print) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {path}")


def start_report(script: str, argv, threads: int | None, device: str = "cpu", log=print) -> dict:
    """Set the torch thread count (when given) and open a benchmark's JSON report: the machine, the load average
    before the run and the command line; the load average is logged too."""
    if threads:
        torch.set_num_threads(threads)
    report = {"machine": describe_machine(device), "load_average_before": load_average(),
              "command": " ".join([script, *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    log(f"# load average before: {report['load_average_before']}")
    return report

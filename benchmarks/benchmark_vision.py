#!/usr/bin/env python
"""Forward-pass benchmark of the InternVideo2 vision encoder (`InternVideo2VisionModel`) with random weights.

For every model x attention implementation x dtype x frame count it reports the median latency of `--repeats` timed
forward passes (after `--warmup` untimed ones), the throughput in clips/s, the peak memory, the analytic FLOPs per clip
and the FLOP/s achieved against a square-matmul peak measured on the same device, in the same dtype, in the same run.

    python benchmarks/benchmark_vision.py --models internvideo2-s14 internvideo2-1b --device cuda --json out.json

This is a measurement tool, not a test: nothing here asserts a speed. Combinations whose single forward pass is
estimated to take longer than `--max-seconds` are reported as skipped instead of being run (see `estimate_seconds`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch


try:
    from transformers_internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from transformers_internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cpu_model_name, load_average  # noqa: E402


# A deliberately small model, so that the whole script can be exercised in a second (smoke tests, CI).
TINY_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=28,
    patch_size=14,
    num_frames=4,
    pooler_output_size=16,
    pooler_num_attention_heads=4,
)
MODEL_CHOICES = ("internvideo2-s14", "internvideo2-b14", "internvideo2-l14", "internvideo2-1b", "internvideo2-6b", "tiny")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Mixed-precision modes: float32 weights, the forward under `torch.autocast` in the compute dtype (the usual recipe).
AUTOCAST_MODES = {"autocast-bf16": torch.bfloat16, "autocast-fp16": torch.float16}
PEER_CHOICES = ("videomae", "vjepa2")


def weight_dtype(mode: str) -> torch.dtype:
    return torch.float32 if mode in AUTOCAST_MODES else DTYPES[mode]


def compute_dtype(mode: str) -> torch.dtype:
    """The dtype the matmuls run in: the one whose matmul peak the mode is compared against."""
    return AUTOCAST_MODES.get(mode) or DTYPES[mode]


def compute_dtype_name(mode: str) -> str:
    """`fp32` / `bf16` / `fp16`: the name of the dtype the matmuls of `mode` run in."""
    return next(name for name, dtype in DTYPES.items() if dtype == compute_dtype(mode))


def forward_context(mode: str, device: torch.device):
    if mode in AUTOCAST_MODES:
        return torch.autocast(device.type, dtype=AUTOCAST_MODES[mode])
    return contextlib.nullcontext()
MIB = 1024**2


# ------------------------------------------------------------------------------------------------------------------
# Analytic FLOPs
# ------------------------------------------------------------------------------------------------------------------
def forward_flops(config: InternVideo2VisionConfig, frames: int, height: int | None = None, width: int | None = None):
    """Matmul FLOPs of one clip through `InternVideo2VisionModel` (encoder + attention pooler), counting a
    multiply-add as 2 FLOPs. Norms, softmax, GELU, LayerScale and residual additions are elementwise and left out;
    they are a fraction of a percent of the total at these sizes.

    Returns a dict of the components and their sum under `"total"`.
    """
    height = height or config.image_size
    width = width or config.image_size
    hidden, inner = config.hidden_size, config.intermediate_size
    patches = (frames // config.tubelet_size) * (height // config.patch_size) * (width // config.patch_size)
    tokens = 1 + patches  # cls + patches
    patch_volume = config.num_channels * config.tubelet_size * config.patch_size**2

    per_block = {
        "qkv": 2 * tokens * hidden * 3 * hidden,
        # QK^T and AV: each is, summed over heads, tokens x tokens x hidden multiply-adds
        "attention_scores_and_values": 2 * (2 * tokens * tokens * hidden),
        "attention_output_proj": 2 * tokens * hidden * hidden,
        "mlp": 2 * (2 * tokens * hidden * inner),
    }
    pooler = (
        2 * hidden * hidden  # query projection of the single (mean) token
        + 2 * (2 * tokens * hidden * hidden)  # key and value projections
        + 2 * (2 * tokens * hidden)  # one query against all tokens (heads span the full width): scores, values
        + 2 * hidden * config.pooler_output_size  # output projection
    )
    flops = {"patch_embedding": 2 * patches * patch_volume * hidden}
    for name, value in per_block.items():
        flops[name] = value * config.num_hidden_layers
    flops["pooler"] = pooler
    flops["total"] = sum(flops.values())
    flops["tokens"] = tokens
    return flops


def encoder_flops(tokens: int, patch_volume: int, hidden: int, inner: int, layers: int) -> int:
    """Matmul FLOPs of a plain pre-norm ViT encoder over `tokens` patch tokens (no cls token, no pooler): the peers'
    count, on the same rules as `forward_flops`."""
    per_block = 2 * tokens * hidden * 4 * hidden + 2 * (2 * tokens * tokens * hidden) + 2 * (2 * tokens * hidden * inner)
    return 2 * tokens * patch_volume * hidden + layers * per_block


def build_peer(peer: str, config: InternVideo2VisionConfig, frames: int, dtype, attn_implementation: str, device):
    """A Transformers peer with random weights at our model's width, depth and heads, and the same number of patch
    tokens: 16-px patches over 2-frame tubelets, so the side is `(image_size / patch_size) * 16` pixels and the clip
    has `2 * frames / tubelet_size` frames. Returns the model, its input and its FLOPs per clip."""
    from transformers import VideoMAEConfig, VideoMAEModel, VJEPA2Config, VJEPA2Model

    grid = config.image_size // config.patch_size
    side, peer_frames = grid * 16, 2 * (frames // config.tubelet_size)
    dims = dict(hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
                num_attention_heads=config.num_attention_heads)  # fmt: skip
    if peer == "videomae":
        peer_config = VideoMAEConfig(image_size=side, patch_size=16, num_frames=peer_frames, tubelet_size=2,
                                     intermediate_size=config.intermediate_size, **dims)  # fmt: skip
        model_class, input_name = VideoMAEModel, "pixel_values"
    elif peer == "vjepa2":
        peer_config = VJEPA2Config(crop_size=side, patch_size=16, frames_per_clip=peer_frames, tubelet_size=2,
                                   mlp_ratio=config.intermediate_size / config.hidden_size, pred_num_hidden_layers=1,
                                   **dims)  # fmt: skip
        model_class, input_name = VJEPA2Model, "pixel_values_videos"
    else:
        raise ValueError(f"unknown peer {peer!r}; expected one of {PEER_CHOICES}.")
    torch.manual_seed(0)
    with torch.device(device):
        model = model_class._from_config(peer_config, dtype=dtype, attn_implementation=attn_implementation).eval()
    tokens = (peer_frames // 2) * grid * grid
    flops = encoder_flops(tokens, 3 * 2 * 16 * 16, config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    inputs = {input_name: torch.randn(1, peer_frames, 3, side, side)}
    if peer == "vjepa2":
        inputs["skip_predictor"] = True  # the encoder only, as ours
    return model, inputs, flops, tokens


# ------------------------------------------------------------------------------------------------------------------
# Device helpers
# ------------------------------------------------------------------------------------------------------------------
def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, size: int, min_seconds: float = 1.0) -> float:
    """Best FLOP/s of a `size x size @ size x size` matmul in `dtype` on `device` (the practical peak that the
    model's own matmuls are compared with)."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    left = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    right = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    for _ in range(2):  # warm-up: library initialisation, kernel selection, clock ramp-up
        torch.matmul(left, right)
    synchronize(device)
    best, spent, runs = math.inf, 0.0, 0
    while spent < min_seconds or runs < 3:
        start = time.perf_counter()
        torch.matmul(left, right)
        synchronize(device)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    del left, right
    return 2 * size**3 / best


class PeakMemoryMeter:
    """Peak memory over a block of work, and its increase over what was in use when the block started.

    CUDA: `torch.cuda.max_memory_allocated` (tensors only, no allocator cache), reset at `start`.
    CPU, in order of preference:
      * `VmHWM`: Linux lets a process reset its own resident-set high-water mark (`/proc/self/clear_refs`, "5"),
        so the peak is exact and costs nothing while timing;
      * `psutil`: RSS sampled every 5 ms by a background thread (can miss short-lived peaks);
      * `ru_maxrss`: `resource.getrusage` high-water mark; it cannot be reset, so the increase is only seen when the
        block goes above every earlier peak of the process (a lower bound).
    On CPU freed heap memory is handed back to the OS first (glibc `malloc_trim`) so the baseline is the live memory.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._libc = None
        if device.type == "cuda":
            self.method = "cuda.max_memory_allocated"
            return
        try:
            self._libc = ctypes.CDLL("libc.so.6")
        except OSError:
            self._libc = None
        if self._can_reset_hwm():
            self.method = "VmHWM (reset via /proc/self/clear_refs)"
        else:
            try:
                import psutil

                self._process = psutil.Process()
                self.method = "psutil RSS sampled every 5 ms"
            except ImportError:
                self.method = "resource.getrusage ru_maxrss (lower bound)"

    @staticmethod
    def _can_reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return PeakMemoryMeter._status_bytes("VmHWM") is not None
        except OSError:
            return False

    @staticmethod
    def _status_bytes(key: str) -> int | None:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
        return None

    def start(self):
        gc.collect()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
            return
        if self._libc is not None and hasattr(self._libc, "malloc_trim"):
            self._libc.malloc_trim(0)
        if self.method.startswith("VmHWM"):
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._baseline = self._status_bytes("VmRSS")
        elif self.method.startswith("psutil"):
            self._baseline = self._process.memory_info().rss
            self._peak = self._baseline
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux

    def _sample(self):
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def stop(self) -> tuple[int, int]:
        """Return `(peak_bytes, peak_bytes - baseline_bytes)`."""
        if self.device.type == "cuda":
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method.startswith("VmHWM"):
            peak = self._status_bytes("VmHWM")
        elif self.method.startswith("psutil"):
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, self._process.memory_info().rss)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return peak, max(0, peak - self._baseline)


# ------------------------------------------------------------------------------------------------------------------
# Benchmark
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class BenchmarkRow:
    model: str
    attn_implementation: str
    dtype: str
    frames: int
    batch_size: int
    tokens: int
    flops_per_clip: int
    status: str = "ok"
    estimated_seconds: float | None = None
    latencies_s: list[float] = field(default_factory=list)
    latency_median_s: float | None = None
    clips_per_second: float | None = None
    peak_memory_bytes: int | None = None
    forward_memory_bytes: int | None = None
    achieved_flops_per_second: float | None = None
    matmul_peak_flops_per_second: float | None = None
    fraction_of_matmul_peak: float | None = None
    # --datasheet-peak-tflops: achieved FLOP/s over the vendor's dense peak of the compute dtype (MFU as papers quote it)
    fraction_of_datasheet_peak: float | None = None
    # --compile: the same forward through torch.compile(fullgraph=True)
    compile_seconds: float | None = None
    compiled_latency_median_s: float | None = None
    compile_speedup: float | None = None


@dataclass
class PeerRow:
    """A Transformers peer at the same width, depth and token count, timed right after our row (`--peers`)."""

    peer: str
    model: str
    attn_implementation: str
    dtype: str
    frames: int
    tokens: int
    flops_per_clip: int
    status: str = "ok"
    latency_median_s: float | None = None
    achieved_flops_per_second: float | None = None
    ours_achieved_flops_per_second: float | None = None
    ours_over_peer: float | None = None


def load_model_config(name: str) -> InternVideo2VisionConfig:
    """A preset name, `tiny`, or the path of a JSON file of `InternVideo2VisionConfig` arguments."""
    if name == "tiny":
        return InternVideo2VisionConfig(**TINY_CONFIG)
    path = Path(name)
    if name.endswith(".json") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--config-json {name}: no such file.")
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{name} must hold a JSON object of InternVideo2VisionConfig arguments.")
        return InternVideo2VisionConfig(**values)
    return InternVideo2VisionConfig.from_preset(name)


def build_model(name: str, dtype: torch.dtype, attn_implementation: str, device: torch.device):
    """Random-weight model, built directly in `dtype` on `device`, in eval mode."""
    config = load_model_config(name)
    torch.manual_seed(0)
    with torch.device(device):
        model = InternVideo2VisionModel._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    return model.eval()


def estimate_seconds(flops: float, flops_per_second: float) -> float:
    return flops / flops_per_second


@torch.no_grad()
def time_forward(model, pixel_values, interpolate: bool, warmup: int, repeats: int, meter: PeakMemoryMeter,
                 context=contextlib.nullcontext):
    """Run `warmup` untimed and `repeats` timed forward passes (each inside `context()`); return the latencies and
    the peak memory over the timed ones. `pixel_values` is a tensor (ours) or a dict of keyword inputs (peers)."""
    if isinstance(pixel_values, dict):
        inputs = pixel_values
        device = next(iter(inputs.values())).device
    else:
        inputs = {"pixel_values": pixel_values, "interpolate_pos_encoding": interpolate}
        device = pixel_values.device
    for _ in range(warmup):
        with context():
            model(**inputs)
    synchronize(device)
    latencies = []
    meter.start()
    for _ in range(repeats):
        start = time.perf_counter()
        with context():
            model(**inputs)
        synchronize(device)
        latencies.append(time.perf_counter() - start)
    peak, increase = meter.stop()
    return latencies, peak, increase


def time_compiled(model, pixel_values, interpolate, args, meter, context) -> tuple[float, float]:
    """Compile `model` (full graph), return (seconds of the first, compiling call, median latency afterwards)."""
    compiled = torch.compile(model, fullgraph=True)
    start = time.perf_counter()
    with torch.no_grad(), context():
        compiled(pixel_values, interpolate_pos_encoding=interpolate)
    synchronize(pixel_values.device)
    compile_seconds = time.perf_counter() - start
    latencies, _, _ = time_forward(compiled, pixel_values, interpolate, args.warmup, args.repeats, meter, context)
    return compile_seconds, statistics.median(latencies)


def time_peer(peer: str, config, row: BenchmarkRow, args, device, meter) -> PeerRow:
    model, inputs, flops, tokens = build_peer(
        peer, config, row.frames, weight_dtype(row.dtype), row.attn_implementation, device
    )
    inputs = {k: v.to(device=device, dtype=weight_dtype(row.dtype)) if torch.is_tensor(v) else v for k, v in inputs.items()}
    peer_row = PeerRow(peer=peer, model=row.model, attn_implementation=row.attn_implementation, dtype=row.dtype,
                       frames=row.frames, tokens=tokens, flops_per_clip=flops)  # fmt: skip
    latencies, _, _ = time_forward(
        model, inputs, False, args.warmup, args.repeats, meter, lambda: forward_context(row.dtype, device)
    )
    peer_row.latency_median_s = statistics.median(latencies)
    peer_row.achieved_flops_per_second = flops / peer_row.latency_median_s
    peer_row.ours_achieved_flops_per_second = row.flops_per_clip / row.latency_median_s
    peer_row.ours_over_peer = peer_row.ours_achieved_flops_per_second / peer_row.achieved_flops_per_second
    del model
    return peer_row


def _is_out_of_memory(error: Exception) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def run_benchmark(args: argparse.Namespace, log=print) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but torch.cuda.is_available() is False.")
    if args.threads:
        torch.set_num_threads(args.threads)
    meter = PeakMemoryMeter(device)
    machine = describe_machine(device)
    machine["memory_method"] = meter.method
    log(f"# machine: {machine['summary']}")
    log(f"# peak memory: {meter.method}")
    log(f"# load average (1, 5, 15 min) before: {machine['load_average_before']}")

    matmul_size = args.matmul_size or (8192 if device.type == "cuda" else 4096)
    peaks, peak_by_dtype = {}, {}
    for dtype_name in args.dtypes:
        matmul_dtype = compute_dtype(dtype_name)
        if matmul_dtype not in peak_by_dtype:
            peak_by_dtype[matmul_dtype] = measure_matmul_peak(device, matmul_dtype, matmul_size)
        peaks[dtype_name] = peak_by_dtype[matmul_dtype]
        log(f"# matmul peak {dtype_name} ({matmul_size}^3): {format_rate(peaks[dtype_name], device)}")
    peer_rows: list[PeerRow] = []

    models = list(args.models) + list(args.config_json or [])
    frames_list = sorted(set(args.frames))  # ascending, so a measured rate can refine the next estimate
    rows: list[BenchmarkRow] = []
    for model_name in models:
        config = load_model_config(model_name)
        for dtype_name in args.dtypes:
            dtype = weight_dtype(dtype_name)
            plans = []
            for attn in args.attn:
                for frames in frames_list:
                    flops = forward_flops(config, frames)
                    plans.append(
                        BenchmarkRow(
                            model=model_name,
                            attn_implementation=attn,
                            dtype=dtype_name,
                            frames=frames,
                            batch_size=args.batch_size,
                            tokens=flops["tokens"],
                            flops_per_clip=flops["total"],
                            matmul_peak_flops_per_second=peaks[dtype_name],
                        )
                    )
            for row in plans:
                row.estimated_seconds = estimate_seconds(row.flops_per_clip * row.batch_size, peaks[dtype_name])
            if all(row.estimated_seconds > args.max_seconds for row in plans):
                for row in plans:
                    row.status = f"skipped (estimated {row.estimated_seconds:.1f} s)"
                    log(format_progress(row))
                rows.extend(plans)
                continue

            log(f"# building {model_name} in {dtype_name} ...")
            model = build_model(model_name, dtype, args.attn[0], device)
            for attn in args.attn:
                model.set_attn_implementation(attn)
                achieved_rate = None  # measured at the previous frame count, a better estimate than the matmul peak
                for row in (r for r in plans if r.attn_implementation == attn):
                    if achieved_rate is not None:
                        row.estimated_seconds = estimate_seconds(row.flops_per_clip * row.batch_size, achieved_rate)
                    if row.estimated_seconds > args.max_seconds:
                        row.status = f"skipped (estimated {row.estimated_seconds:.1f} s)"
                        rows.append(row)
                        log(format_progress(row))
                        continue
                    generator = torch.Generator(device="cpu").manual_seed(row.frames)
                    shape = (row.batch_size, row.frames, config.num_channels, config.image_size, config.image_size)
                    pixel_values = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
                    try:
                        latencies, peak, increase = time_forward(
                            model,
                            pixel_values,
                            interpolate=row.frames != config.num_frames,
                            warmup=args.warmup,
                            repeats=args.repeats,
                            meter=meter,
                            context=lambda: forward_context(dtype_name, device),
                        )
                    except (torch.OutOfMemoryError, RuntimeError) as error:
                        if not _is_out_of_memory(error):
                            raise
                        row.status = "out of memory"
                        rows.append(row)
                        log(format_progress(row))
                        del pixel_values
                        empty_cache(device)
                        continue
                    row.latencies_s = latencies
                    row.latency_median_s = statistics.median(latencies)
                    row.clips_per_second = row.batch_size / row.latency_median_s
                    row.peak_memory_bytes, row.forward_memory_bytes = peak, increase
                    row.achieved_flops_per_second = row.flops_per_clip * row.batch_size / row.latency_median_s
                    row.fraction_of_matmul_peak = row.achieved_flops_per_second / peaks[dtype_name]
                    datasheet = args.datasheet_peak_tflops.get(compute_dtype_name(dtype_name))
                    if datasheet:
                        row.fraction_of_datasheet_peak = row.achieved_flops_per_second / (datasheet * 1e12)
                    achieved_rate = row.achieved_flops_per_second
                    if args.compile:
                        row.compile_seconds, row.compiled_latency_median_s = time_compiled(
                            model, pixel_values, row.frames != config.num_frames, args, meter,
                            lambda: forward_context(dtype_name, device),
                        )  # fmt: skip
                        row.compile_speedup = row.latency_median_s / row.compiled_latency_median_s
                        torch._dynamo.reset()
                    del pixel_values
                    rows.append(row)
                    log(format_progress(row))
                    for peer in args.peers or ():
                        peer_row = time_peer(peer, config, row, args, device, meter)
                        peer_rows.append(peer_row)
                        log(
                            f"  peer {peer}: {peer_row.tokens} tokens, {peer_row.latency_median_s * 1e3:.1f} ms, "
                            f"ours/peer FLOP/s {peer_row.ours_over_peer:.2f}"
                        )
                        empty_cache(device)
            del model
            empty_cache(device)

    machine["load_average_after"] = load_average()
    log(f"# load average (1, 5, 15 min) after: {machine['load_average_after']}")
    rows.sort(
        key=lambda r: (models.index(r.model), args.attn.index(r.attn_implementation), args.dtypes.index(r.dtype), r.frames)
    )
    return {
        "machine": machine,
        "command": " ".join([Path(sys.argv[0]).name, *args.argv]) if args.argv is not None else None,
        "settings": {
            "warmup": args.warmup,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "max_seconds": args.max_seconds if math.isfinite(args.max_seconds) else None,
            "matmul_size": matmul_size,
            "datasheet_peak_tflops": args.datasheet_peak_tflops or None,
        },
        "matmul_peak_flops_per_second": peaks,
        "results": [asdict(row) for row in rows],
        "peers": [asdict(row) for row in peer_rows],
    }


def empty_cache(device: torch.device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------------------------
def describe_machine(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "logical_cpus": os.cpu_count(),
        "cpu": cpu_model_name(),
        "device": str(device),
        # other processes competing for the cores distort CPU timings; recorded so a reader can tell
        "load_average_before": load_average(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = properties.name
        info["gpu_memory_gib"] = round(properties.total_memory / 1024**3, 1)
        info["cuda"] = torch.version.cuda
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        info["summary"] = f"{info['gpu']} ({info['gpu_memory_gib']} GiB), CUDA {info['cuda']}, torch {info['torch']}"
    else:
        info["summary"] = (
            f"{info['cpu']}, {info['logical_cpus']} logical CPUs, {info['torch_threads']} torch threads, "
            f"torch {info['torch']}"
        )
    return info


def format_rate(flops_per_second: float, device: torch.device) -> str:
    if device.type == "cuda":
        return f"{flops_per_second / 1e12:.1f} TFLOP/s"
    return f"{flops_per_second / 1e9:.1f} GFLOP/s"


def format_progress(row: BenchmarkRow) -> str:
    head = f"{row.model} {row.attn_implementation} {row.dtype} {row.frames}f x{row.batch_size}"
    if row.status != "ok":
        return f"  {head}: {row.status}"
    line = f"  {head}: {row.latency_median_s * 1e3:.1f} ms, {row.clips_per_second:.2f} clips/s"
    if row.fraction_of_matmul_peak is not None:
        line += f", MFU {100 * row.fraction_of_matmul_peak:.0f} % of the measured matmul peak"
    if row.fraction_of_datasheet_peak is not None:
        line += f", {100 * row.fraction_of_datasheet_peak:.0f} % of the datasheet peak"
    return line


def _format_gflop(flops: int) -> str:
    gflop = flops / 1e9
    return f"{gflop:.1f}" if gflop >= 10 else f"{gflop:.4g}"


def format_table(report: dict) -> str:
    """Fixed-width table of the results (one line per combination)."""
    device = torch.device(report["machine"]["device"])
    unit, scale = ("TFLOP/s", 1e12) if device.type == "cuda" else ("GFLOP/s", 1e9)
    headers = [
        "model",
        "attn",
        "dtype",
        "frames",
        "batch",
        "tokens",
        "GFLOP/clip",
        "median ms",
        "min ms",
        "clips/s",
        "peak MiB",
        "+fwd MiB",
        f"achieved {unit}",
        f"matmul peak {unit}",
        # on a GPU this is the model FLOPs utilisation against the matmul peak measured in the same run
        "MFU %" if device.type == "cuda" else "% of peak",
    ]
    lines = []
    for row in report["results"]:
        cells = [
            row["model"],
            row["attn_implementation"],
            row["dtype"],
            str(row["frames"]),
            str(row["batch_size"]),
            str(row["tokens"]),
            _format_gflop(row["flops_per_clip"]),
        ]
        if row["status"] == "ok":
            cells += [
                f"{row['latency_median_s'] * 1e3:.1f}",
                f"{min(row['latencies_s']) * 1e3:.1f}",
                f"{row['clips_per_second']:.3g}",
                f"{row['peak_memory_bytes'] / MIB:.0f}",
                f"{row['forward_memory_bytes'] / MIB:.0f}",
                f"{row['achieved_flops_per_second'] / scale:.3g}",
                f"{row['matmul_peak_flops_per_second'] / scale:.3g}",
                f"{100 * row['fraction_of_matmul_peak']:.0f}",
            ]
        else:
            cells += [row["status"]]
        lines.append(cells)
    # Skipped and failed rows carry their status message in place of the measurement columns.
    widths = [len(header) for header in headers]
    for cells in lines:
        if len(cells) == len(headers):
            widths = [max(width, len(cell)) for width, cell in zip(widths, cells)]
    for cells in lines:
        widths[:7] = [max(width, len(cell)) for width, cell in zip(widths[:7], cells[:7])]

    def render(cells):
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    out = [render(headers), "-+-".join("-" * width for width in widths)]
    out += [render(cells) for cells in lines]
    datasheet = [row for row in report["results"] if row.get("fraction_of_datasheet_peak")]
    if datasheet:
        out += ["", "MFU against the datasheet peak (--datasheet-peak-tflops): model | attn | dtype | frames | MFU %"]
        out += [
            f"{r['model']} | {r['attn_implementation']} | {r['dtype']} | {r['frames']} | "
            f"{100 * r['fraction_of_datasheet_peak']:.1f}"
            for r in datasheet
        ]
    compiled = [row for row in report["results"] if row.get("compile_speedup")]
    if compiled:
        out += ["", "torch.compile(fullgraph=True): model | attn | dtype | frames | compile s | eager ms | compiled ms | speed-up"]
        out += [
            f"{r['model']} | {r['attn_implementation']} | {r['dtype']} | {r['frames']} | {r['compile_seconds']:.1f} | "
            f"{r['latency_median_s'] * 1e3:.1f} | {r['compiled_latency_median_s'] * 1e3:.1f} | {r['compile_speedup']:.2f}x"
            for r in compiled
        ]
    if report.get("peers"):
        out += ["", f"peers (same width, depth, tokens): peer | model | attn | dtype | frames | tokens | peer ms | "
                    f"peer {unit} | ours {unit} | ours/peer"]  # fmt: skip
        out += [
            f"{p['peer']} | {p['model']} | {p['attn_implementation']} | {p['dtype']} | {p['frames']} | {p['tokens']} | "
            f"{p['latency_median_s'] * 1e3:.1f} | {p['achieved_flops_per_second'] / scale:.3g} | "
            f"{p['ours_achieved_flops_per_second'] / scale:.3g} | {p['ours_over_peer']:.2f}"
            for p in report["peers"]
        ]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["internvideo2-s14", "internvideo2-1b"],
        choices=MODEL_CHOICES,
        help="Presets of InternVideo2VisionConfig.from_preset, or `tiny` (a 2-layer, 28 px model for smoke tests).",
    )
    parser.add_argument(
        "--config-json",
        nargs="+",
        metavar="PATH",
        help="Extra models: JSON files of InternVideo2VisionConfig arguments (benchmarked after --models).",
    )
    parser.add_argument("--frames", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument(
        "--dtypes", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES) + sorted(AUTOCAST_MODES),
        help="Weight dtypes, or autocast-bf16/autocast-fp16: float32 weights under torch.autocast.",
    )
    parser.add_argument("--autocast", action="store_true", help="Add the autocast-bf16 mode next to the others.")
    parser.add_argument("--compile", action="store_true", help="Also time torch.compile(fullgraph=True): speed-up.")
    parser.add_argument(
        "--peers", nargs="*", choices=PEER_CHOICES, default=None,
        help="Also time Transformers peers (VideoMAEModel, VJEPA2Model encoder) with random weights at the same "
        "width, depth and token count in every dtype and attention mode; reports ours / peer achieved FLOP/s. "
        "Without values: all peers.",
    )  # fmt: skip
    parser.add_argument("--attn", nargs="+", default=["eager", "sdpa"], help="attn_implementation values to compare.")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="Untimed forward passes before the timed ones.")
    parser.add_argument("--repeats", type=int, default=10, help="Timed forward passes; the median is reported.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=math.inf,
        help="Skip a combination whose single forward pass is estimated to take longer: analytic FLOPs / the "
        "measured matmul peak, or / the FLOP/s measured at the previous frame count of the same model, dtype and "
        "attention once one was measured.",
    )
    parser.add_argument("--matmul-size", type=int, default=None, help="Side of the peak matmul (8192 CUDA, 4096 CPU).")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU).")
    parser.add_argument(
        "--datasheet-peak-tflops", nargs="+", default=[], metavar="DTYPE=TFLOPS",
        help="The vendor's dense peak per compute dtype (e.g. H100 SXM: bf16=989 fp32=67): also report MFU against "
        "it. Without it, MFU is against the matmul peak measured in the same run.",
    )  # fmt: skip
    parser.add_argument("--json", metavar="OUT", help="Also write the machine description and all rows as JSON.")
    args = parser.parse_args(argv)
    for name, value in (("--batch-size", args.batch_size), ("--repeats", args.repeats)):
        if value < 1:
            parser.error(f"{name} must be at least 1, got {value}.")
    if args.warmup < 0:
        parser.error(f"--warmup must be non-negative, got {args.warmup}.")
    if any(frames < 1 for frames in args.frames):
        parser.error(f"--frames must be positive, got {args.frames}.")
    peaks = {}
    for item in args.datasheet_peak_tflops:
        name, _, value = item.partition("=")
        try:
            peaks[name] = float(value)
        except ValueError:
            parser.error(f"--datasheet-peak-tflops takes DTYPE=TFLOPS items (e.g. bf16=989); got {item!r}.")
        if name not in DTYPES or peaks[name] <= 0:
            parser.error(f"--datasheet-peak-tflops: dtype must be one of {sorted(DTYPES)} and the peak positive; "
                         f"got {item!r}.")  # fmt: skip
    args.datasheet_peak_tflops = peaks
    if args.autocast and "autocast-bf16" not in args.dtypes:
        args.dtypes.append("autocast-bf16")
    if args.peers is not None and not args.peers:
        args.peers = list(PEER_CHOICES)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = run_benchmark(args)
    print()
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Clips/s of `internvideo2 embed` on the local engine and on Ray (1 and 2 workers), the Ray overhead per batch, and a
FLOPs-based projection for a GPU cluster.

    python benchmarks/benchmark_engines.py --clips 48 --json benchmarks/results/engines_cpu.json

* **Local / Ray runs**: `--clips` shapes-world clips (written here as mp4) embedded with the bundled video-text
  model by the same job code (`tasks.inference.load_batch_job`): the local engine (`run_batch`, model loaded before the
  clock starts) and `run_ray_job` on a local Ray (`ray.init(num_cpus=--ray-cpus)`) with 1 and 2 actors. Ray times are
  wall clock of the whole run (actor start, model load per actor, decode, forward, Parquet write), so they include
  the fixed start-up cost that a long run amortises; each Ray row therefore also gives the rate once started.
* **Ray overhead per batch**: a no-op `map_batches` actor pipeline whose batches stamp their arrival; the median gap
  between arrivals is what Ray adds per batch once running (scheduling, object store, serialisation), the rest of
  the wall clock its fixed start-up.
* **GPU projection**: analytic forward FLOPs of a real model (`benchmark_vision.forward_flops`) divided by an
  assumed sustained FLOP/s per GPU (`--gpu-peak-tflops` x `--mfu`), capped by CPU decoding (`--decode-clips-per-core`
  x `--cpu-cores-per-gpu`). Every assumption is printed with the result. No GPU was used unless stated.

The load average (1/5/15 min) is printed next to every number: on a shared machine it moves the timings.
A measurement tool: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


HERE = Path(__file__).resolve().parent
try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def write_clips(folder: Path, count: int) -> list[str]:
    from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"clip{index:04d}.mp4"
        write_mp4(render_clip(sample_clip_spec(index)), path)
        paths.append(str(path))
    return paths


def run_local(model: str, paths: list[str], batch_size: int) -> dict:
    from transformers_internvideo2.tasks.batch import MemoryOutput, run_batch
    from transformers_internvideo2.tasks.inference import load_batch_job

    job = load_batch_job("embed", model, device="cpu")
    load = load_average()
    began = time.perf_counter()
    summary = run_batch(paths, job.prepare, job.compute, MemoryOutput(), batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - began
    return {"engine": "local", "workers": 1, "clips": summary.computed, "seconds": seconds,
            "clips_per_second": summary.computed / seconds, "decode_seconds": summary.prepare_seconds,
            "forward_seconds": summary.compute_seconds, "load_average": f"{load} -> {load_average()}"}  # fmt: skip


def run_ray(model: str, paths: list[str], batch_size: int, workers: int, output: Path) -> dict:
    from transformers_internvideo2.tasks.ray_engine import JobSpec, run_ray_job

    shutil.rmtree(output, ignore_errors=True)
    load = load_average()
    began = time.perf_counter()
    summary = run_ray_job(JobSpec(kind="embed", model=model, device="cpu"), paths, output, batch_size=batch_size,
                          concurrency=workers)  # fmt: skip
    seconds = time.perf_counter() - began
    return {"engine": "ray", "workers": workers, "clips": summary.computed, "seconds": seconds,
            "clips_per_second": summary.computed / seconds, "load_average": f"{load} -> {load_average()}"}  # fmt: skip


class _Stamp:
    """A no-op actor UDF that stamps when each batch reached it."""

    def __call__(self, batch):
        return {"x": batch["x"], "arrived": np.full(len(batch["x"]), time.perf_counter())}


def ray_overhead(batches: int = 64, batch_size: int = 4) -> dict:
    """Steady-state Ray cost per batch: a no-op actor pipeline (1 actor) whose batches record their arrival time; the
    median gap between consecutive arrivals is what Ray spends per batch (scheduling, object store, (de)serialisation)
    once the actor runs. The wall clock minus `batches` x gap is the fixed start-up (actor, pipeline)."""
    import ray

    load = load_average()
    began = time.perf_counter()
    dataset = ray.data.from_items([{"x": i} for i in range(batches * batch_size)], override_num_blocks=batches)
    rows = dataset.map_batches(_Stamp, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=1),
                               num_cpus=1).take_all()  # fmt: skip
    wall = time.perf_counter() - began
    arrivals = np.unique([row["arrived"] for row in rows])
    gaps = np.diff(np.sort(arrivals))
    per_batch = float(np.median(gaps))
    return {"batches": batches, "wall_seconds": wall, "overhead_ms_per_batch_median": 1000 * per_batch,
            "overhead_ms_per_batch_p90": 1000 * float(np.percentile(gaps, 90)),
            "fixed_startup_seconds": wall - batches * per_batch, "load_average": f"{load} -> {load_average()}"}  # fmt: skip


def gpu_projection(args) -> dict:
    from benchmark_vision import forward_flops, load_model_config

    config = load_model_config(args.projection_model)
    flops = forward_flops(config, args.projection_frames)["total"]
    sustained = args.gpu_peak_tflops * 1e12 * args.mfu
    forward_rate = sustained / flops
    decode_rate = args.decode_clips_per_core * args.cpu_cores_per_gpu
    return {
        "model": args.projection_model, "frames": args.projection_frames, "forward_gflops_per_clip": flops / 1e9,
        "assumptions": {"gpu_peak_tflops_bf16_dense": args.gpu_peak_tflops, "model_flops_utilisation": args.mfu,
                        "decode_clips_per_second_per_cpu_core": args.decode_clips_per_core,
                        "cpu_cores_per_gpu": args.cpu_cores_per_gpu, "measured_on_gpu": False},
        "forward_bound_clips_per_second_per_gpu": forward_rate,
        "decode_bound_clips_per_second_per_gpu": decode_rate,
        "projected_clips_per_second_per_gpu": min(forward_rate, decode_rate),
    }  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--ray-cpus", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default=None, help="default: the bundled shapes-world video-text model")
    parser.add_argument("--projection-model", default="internvideo2-1b")
    parser.add_argument("--projection-frames", type=int, default=8)
    parser.add_argument("--gpu-peak-tflops", type=float, default=989.0, help="H100 SXM bf16 dense peak")
    parser.add_argument("--mfu", type=float, default=0.4, help="sustained fraction of the peak in the forward pass")
    parser.add_argument("--decode-clips-per-core", type=float, default=4.0,
                        help="8-frame clips decoded + preprocessed per second per CPU core (ffmpeg, 720p sources)")
    parser.add_argument("--cpu-cores-per-gpu", type=int, default=12)
    parser.add_argument("--skip-runs", action="store_true", help="only the projection")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    report = {"cpu_count": os.cpu_count(), "settings": vars(args), "runs": []}
    if not args.skip_runs:
        from transformers_internvideo2.shapes_world.bundled import bundled_model_dir

        import ray

        model = args.model or str(bundled_model_dir("shapes-video-text"))
        work = Path(tempfile.mkdtemp(prefix="engines-"))
        paths = write_clips(work / "clips", args.clips)
        row = run_local(model, paths, args.batch_size)
        print(f"local      : {row['clips_per_second']:6.2f} clips/s ({row['clips']} clips in {row['seconds']:.1f} s) "
              f"load {row['load_average']}", flush=True)  # fmt: skip
        report["runs"].append(row)
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        for workers in args.workers:
            row = run_ray(model, paths, args.batch_size, workers, work / f"ray{workers}")
            print(f"ray x{workers}     : {row['clips_per_second']:6.2f} clips/s ({row['clips']} clips in "
                  f"{row['seconds']:.1f} s, start-up included) load {row['load_average']}", flush=True)  # fmt: skip
            report["runs"].append(row)
        report["ray_overhead"] = overhead = ray_overhead(batch_size=args.batch_size)
        print(f"ray overhead: {overhead['overhead_ms_per_batch_median']:.1f} ms per batch (median; p90 "
              f"{overhead['overhead_ms_per_batch_p90']:.1f} ms), fixed start-up {overhead['fixed_startup_seconds']:.1f} "
              f"s; load {overhead['load_average']}", flush=True)  # fmt: skip
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    report["gpu_projection"] = projection = gpu_projection(args)
    print(f"projection : {projection['forward_gflops_per_clip']:.0f} GFLOP/clip ({projection['model']}, "
          f"{projection['frames']} frames) -> forward-bound {projection['forward_bound_clips_per_second_per_gpu']:.0f} "
          f"clips/s/GPU, decode-bound {projection['decode_bound_clips_per_second_per_gpu']:.0f} clips/s/GPU "
          f"(assumptions: {projection['assumptions']})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

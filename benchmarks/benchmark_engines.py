#!/usr/bin/env python
"""Clips/s of `internvideo2 embed` on the local engine and on Ray (1 and 2 workers), the Ray overhead per batch, and a
FLOPs-based projection for a GPU cluster.

    python benchmarks/benchmark_engines.py --clips 48 --json benchmarks/results/engines_cpu.json

* **Local / Ray runs**: `--clips` shapes-world clips (written here as mp4) embedded with the bundled video-text
  model by the same job code (`tasks.inference.load_batch_job`): the local engine (`run_batch`, model loaded before the
  clock starts) and `run_ray_job` on a local Ray (`ray.init(num_cpus=--ray-cpus)`) with 1 and 2 actors, each actor
  reserving `--ray-cpus / workers` CPUs (and as many torch threads) unless `--cpus-per-worker` says otherwise. A Ray
  run's wall clock is split with timestamps the actors write (a `ClipWorker` subclass defined here): **start-up**
  (run start -> first batch starts: Ray Data plan, actor processes spawned, Python + torch + transformers + this
  package imported, model loaded), **steady state** (first batch start -> last batch end: the rate a long run
  approaches) and **tail** (last batch end -> Parquet files written, pool gone).
* **Local cold start**: a fresh Python process that imports the package and loads the model (what each Ray actor
  pays too), and `ray.init` itself, timed separately.
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

    import torch

    job = load_batch_job("embed", model, device="cpu")
    load = load_average()
    began = time.perf_counter()
    summary = run_batch(paths, job.prepare, job.compute, MemoryOutput(), batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - began
    return {"engine": "local", "workers": 1, "clips": summary.computed, "seconds": seconds,
            "clips_per_second": summary.computed / seconds, "decode_seconds": summary.prepare_seconds,
            "forward_seconds": summary.compute_seconds, "torch_threads": torch.get_num_threads(),
            "load_average": f"{load} -> {load_average()}"}  # fmt: skip


def local_cold_start(model: str) -> dict:
    """What a fresh process pays before its first batch on the local engine: Python + torch + transformers + this
    package imported, and the model loaded (the same cost every Ray actor pays; measured in a subprocess)."""
    import subprocess

    code = ("import time; t = time.perf_counter(); from transformers_internvideo2.tasks.inference import load_batch_job; "
            "i = time.perf_counter(); load_batch_job('embed', %r, device='cpu'); "
            "print(i - t, time.perf_counter() - i)" % model)  # fmt: skip
    load = load_average()
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - began
    imports, model_load = (float(x) for x in done.stdout.split()[-2:])
    return {"process_seconds": wall, "import_seconds": imports, "model_load_seconds": model_load,
            "load_average": f"{load} -> {load_average()}"}  # fmt: skip


def _timed_worker_class(stamps: Path):
    """A `ClipWorker` that appends `(event, pid, wall time)` lines to `stamps`: when its `__init__` starts (the actor
    process is up and has unpickled the class, i.e. imported Ray and this package), when the model is loaded, and
    when each batch starts and ends. Defined here, so Ray pickles it by value (`__main__`)."""
    from transformers_internvideo2.tasks.ray_engine import ClipWorker

    def stamp(event, **extra):
        with open(stamps, "a") as handle:
            handle.write(json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **extra}) + "\n")

    class TimedClipWorker(ClipWorker):
        def __init__(self, *args, **kwargs):
            stamp("init_start")
            super().__init__(*args, **kwargs)
            import torch

            stamp("init_end", torch_threads=torch.get_num_threads())

        def __call__(self, batch):
            stamp("batch_start", size=len(batch["id"]))
            table = super().__call__(batch)
            stamp("batch_end", size=len(batch["id"]))
            return table

    return TimedClipWorker


def run_ray(model: str, paths: list[str], batch_size: int, workers: int, output: Path, cpus_per_worker: float = 1) -> dict:
    """One Ray run, split into its fixed start-up (run start -> first batch starts: Ray Data plan, actor processes
    spawned, imports, model load), its steady state (first batch start -> last batch end) and its tail (last batch
    end -> files written and the pool torn down)."""
    from transformers_internvideo2.tasks.ray_engine import JobSpec, run_ray_job

    shutil.rmtree(output, ignore_errors=True)
    stamps = output.with_suffix(".stamps.jsonl")
    stamps.unlink(missing_ok=True)
    load = load_average()
    start_wall, began = time.time(), time.perf_counter()
    summary = run_ray_job(JobSpec(kind="embed", model=model, device="cpu"), paths, output, batch_size=batch_size,
                          concurrency=workers, num_cpus=cpus_per_worker, worker_class=_timed_worker_class(stamps))  # fmt: skip
    seconds = time.perf_counter() - began
    end_wall = start_wall + seconds
    events = [json.loads(line) for line in stamps.read_text().splitlines()]
    first = {e: min(x["time"] for x in events if x["event"] == e) for e in ("init_start", "init_end", "batch_start")}
    last_end = max(x["time"] for x in events if x["event"] == "batch_end")
    batch_seconds = [b["time"] - a["time"] for a, b in zip(
        [x for x in events if x["event"] == "batch_start"], [x for x in events if x["event"] == "batch_end"])]  # fmt: skip
    steady = last_end - first["batch_start"]
    return {"engine": "ray", "workers": workers, "cpus_per_worker": cpus_per_worker, "clips": summary.computed,
            "seconds": seconds, "clips_per_second": summary.computed / seconds,
            "startup_seconds": first["batch_start"] - start_wall,
            "until_first_actor_init_seconds": first["init_start"] - start_wall,
            "actor_init_seconds": first["init_end"] - first["init_start"],
            "steady_seconds": steady, "steady_clips_per_second": summary.computed / steady,
            "batch_seconds_median": float(np.median(batch_seconds)), "batches": len(batch_seconds),
            "tail_seconds": end_wall - last_end,
            "torch_threads_per_actor": sorted({x["torch_threads"] for x in events if x["event"] == "init_end"}),
            "load_average": f"{load} -> {load_average()}"}  # fmt: skip


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
    parser.add_argument("--local-threads", type=int, default=None,
                        help="torch threads of the local engine (default: torch's, one per core)")
    parser.add_argument("--cpus-per-worker", type=float, default=None,
                        help="CPUs reserved per actor (default: --ray-cpus / workers, so every run uses all of them)")
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
    if args.local_threads:
        import torch

        torch.set_num_threads(args.local_threads)
    if not args.skip_runs:
        from transformers_internvideo2.shapes_world.bundled import bundled_model_dir

        import ray

        model = args.model or str(bundled_model_dir("shapes-video-text"))
        work = Path(tempfile.mkdtemp(prefix="engines-"))
        paths = write_clips(work / "clips", args.clips)
        report["local_cold_start"] = cold = local_cold_start(model)
        print(f"cold start : {cold['process_seconds']:.1f} s for a fresh process (imports {cold['import_seconds']:.1f} s, "
              f"model load {cold['model_load_seconds']:.1f} s) load {cold['load_average']}", flush=True)  # fmt: skip
        row = run_local(model, paths, args.batch_size)
        print(f"local      : {row['clips_per_second']:6.2f} clips/s ({row['clips']} clips in {row['seconds']:.1f} s, "
              f"{row['torch_threads']} torch thread(s)) load {row['load_average']}", flush=True)  # fmt: skip
        report["runs"].append(row)
        load = load_average()
        began = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        report["ray_init"] = {"seconds": time.perf_counter() - began, "load_average": f"{load} -> {load_average()}"}
        print(f"ray.init   : {report['ray_init']['seconds']:.1f} s", flush=True)
        for workers in args.workers:
            cpus = max(1, args.ray_cpus // workers) if args.cpus_per_worker is None else args.cpus_per_worker
            row = run_ray(model, paths, args.batch_size, workers, work / f"ray{workers}", cpus)
            print(f"ray x{workers}     : {row['clips_per_second']:6.2f} clips/s end to end ({row['clips']} clips in "
                  f"{row['seconds']:.1f} s = start-up {row['startup_seconds']:.1f} s (first actor up after "
                  f"{row['until_first_actor_init_seconds']:.1f} s, model load {row['actor_init_seconds']:.1f} s) + steady "
                  f"{row['steady_seconds']:.1f} s + tail {row['tail_seconds']:.1f} s); steady state "
                  f"{row['steady_clips_per_second']:.2f} clips/s, {cpus:g} CPU(s) and "
                  f"{row['torch_threads_per_actor']} torch thread(s) per actor; load {row['load_average']}",
                  flush=True)  # fmt: skip
            report["runs"].append(row)
        # the local engine again after the Ray runs: the machine's load moves, so the Ray rows are bracketed
        row = run_local(model, paths, args.batch_size)
        row["engine"] = "local (after the Ray runs)"
        print(f"local again: {row['clips_per_second']:6.2f} clips/s ({row['clips']} clips in {row['seconds']:.1f} s) "
              f"load {row['load_average']}", flush=True)  # fmt: skip
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

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 classify`: top-k labels of video files with a converted classifier (what
`pipeline("video-classification")` computes), through the batch engine (:mod:`transformers_internvideo2.tasks.batch`):
bad videos skipped and named, results written as they go, `--resume`."""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..tasks.batch import BatchOutput, MemoryOutput, prepare_output, read_records, run_batch
from ..tasks.inference import collect_video_paths, load_batch_job
from .common import (
    add_batch_arguments,
    add_engine_arguments,
    add_runtime_arguments,
    default_model,
    positive_int,
    resolve_dtype,
    run_on_ray,
)


def add_parser(commands) -> None:
    classify = commands.add_parser(
        "classify",
        help="classify videos with a converted InternVideo2 classifier",
        description="Top-k labels per video, as pipeline('video-classification') computes them. Exit codes: 0 all "
        "done, 1 failed, 2 bad arguments, 3 done but some videos skipped, 130 interrupted.",
    )
    classify.add_argument("--model", default=None,
                          help="converted folder or Hub id (default: the bundled shapes-world direction classifier)")
    classify.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders of videos")
    classify.add_argument("--num-frames", type=positive_int, default=None,
                          help="frames sampled per video (default: the model's; others resample the position "
                          "embeddings)")  # fmt: skip
    classify.add_argument("--top-k", type=positive_int, default=5, help="labels per video (default 5)")
    classify.add_argument("--output", "--output-json", dest="output", default=None, metavar="FILE.jsonl|FILE.json",
                          help="also write the predictions: .jsonl (one line per video, written as they come) or "
                          ".json (one document)")  # fmt: skip
    add_batch_arguments(classify)
    add_runtime_arguments(classify)
    add_engine_arguments(classify)
    classify.set_defaults(handler=run)


def _print_table(predictions: list[dict]) -> None:
    if not predictions:
        return
    names = [os.path.basename(p["video"]) for p in predictions]
    if len(set(names)) < len(names):  # same file name in several folders: show the paths as given
        names = [p["video"] for p in predictions]
    name_width = max(12, *(len(n) for n in names))
    label_width = max(10, *(len(label) for p in predictions for label in p["labels"]))
    header = f"{'video':<{name_width}}  {'rank':>4}  {'label':<{label_width}}  {'score':>8}"
    print(header)
    print("-" * len(header))
    for name, prediction in zip(names, predictions):
        for rank, (label, score) in enumerate(zip(prediction["labels"], prediction["scores"]), start=1):
            shown = name if rank == 1 else ""
            print(f"{shown:<{name_width}}  {rank:>4}  {label:<{label_width}}  {score:8.4f}")


def run(args: argparse.Namespace) -> int:
    if args.output is None and (args.resume or args.overwrite):
        raise ValueError("--resume and --overwrite apply to an output file: give --output FILE.jsonl (or .json).")
    videos = collect_video_paths(args.videos)  # fail on a bad path before loading a model
    default_model(args, "shapes-direction-classifier")
    if args.engine == "ray":
        return run_on_ray(args, "classify", videos, top_k=args.top_k)
    output = None
    if args.output is not None:  # checked before any work: format, folder, an existing file
        prepare_output(args.output, (".jsonl", ".json"), overwrite=args.overwrite, resume=args.resume)
    start = time.perf_counter()
    job = load_batch_job("classify", args.model, device=args.device, dtype=resolve_dtype(args.dtype),
                         num_frames=args.num_frames, top_k=args.top_k, video_backend=args.video_backend)  # fmt: skip
    load_seconds = time.perf_counter() - start
    model = job.model
    print(
        f"model: {args.model} ({type(model).__name__}, {model.config.num_labels} labels, trained at "
        f"{model.config.num_frames} frames) on {job.device}, loaded in {load_seconds:.2f} s",
        file=sys.stderr,
    )
    if args.output is not None:
        output = BatchOutput(args.output, settings=job.settings, header={"model": str(args.model),
                             "num_frames": job.num_frames}, records_key="predictions", formats=(".jsonl", ".json"),
                             overwrite=args.overwrite, resume=args.resume)  # fmt: skip
    else:
        output = MemoryOutput()
    try:
        summary = run_batch(videos, job.prepare, job.compute, output, batch_size=args.batch_size,
                            on_error=args.on_error, progress=not args.no_progress, description="classifying",
                            num_workers=args.num_workers)
    except KeyboardInterrupt:
        if args.output is not None:
            print(f"internvideo2 classify: results so far are kept in {output.partial}; rerun with --resume to "
                  "continue", file=sys.stderr)  # fmt: skip
        raise
    predictions = output.records if args.output is None else read_records(summary.output, records_key="predictions")
    _print_table(predictions)
    rate = summary.computed / max(summary.prepare_seconds + summary.compute_seconds, 1e-9)
    print(
        f"\n{summary.computed} video(s) x {job.num_frames} frames: decode + preprocess {summary.prepare_seconds:.2f} "
        f"s, forward {summary.compute_seconds:.2f} s, {rate:.2f} videos/s"
    )
    print(summary.line("classified"), file=sys.stderr)
    return summary.exit_code

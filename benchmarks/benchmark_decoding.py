#!/usr/bin/env python
"""Data-path benchmark: video decoding per clip by backend, and `classify` end to end against the forward alone.

1. Decoding: milliseconds per clip with each usable backend (torchcodec, PyAV, and decord when installed) on the
   packaged sample clip and on a larger clip made from it (`--large`: the sample re-encoded with PyAV at 640x480,
   looped to 30 s), decoding the whole file against decoding only the `--frames` frames the segment sampler picks.
2. End to end: clips/s of the `classify` batch engine (decode + preprocess + forward) for each `--num-workers` value
   (decoding overlapped with the forward) against the forward alone on one preprocessed batch, for a random-weight
   classifier (`--model`, a vision preset), over `--videos` copies of the largest clip.

    python benchmarks/benchmark_decoding.py --large --model internvideo2-s14 --json out.json

A measurement tool, not a test: nothing here asserts a speed. Numbers taken on a shared, loaded machine are only
indicative; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch


try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from transformers_internvideo2.media.frame_sampling import sample_frame_indices
from transformers_internvideo2.media.video_decoding import available_backends, decode_video_frames
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (
    InternVideo2VideoProcessor,
)


SAMPLE_CLIP = Path(__file__).resolve().parent.parent / "src" / "transformers_internvideo2" / "samples" / "example1.mp4"
TINY_VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
                   patch_size=14, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4)  # fmt: skip


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def make_large_clip(
    source: Path, target: Path, width: int = 640, height: int = 480, seconds: float = 30.0, fps: int = 30
) -> Path:
    """Re-encode `source` with PyAV (H.264, yuv420p) at `width` x `height` and `fps`, looping it (each source frame
    held for its own duration) until `seconds` long."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or Fraction(fps))
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    if not frames:
        raise ValueError(f"{source} has no video frames.")
    total = int(round(fps * seconds))
    with av.open(str(target), mode="w") as output:
        out_stream = output.add_stream("libx264", rate=fps)
        out_stream.width, out_stream.height, out_stream.pix_fmt = width, height, "yuv420p"
        for index in range(total):
            frame = av.VideoFrame.from_ndarray(frames[int(index * source_fps / fps) % len(frames)], format="rgb24")
            frame = frame.reformat(width=width, height=height)
            for packet in out_stream.encode(frame):
                output.mux(packet)
        for packet in out_stream.encode():
            output.mux(packet)
    return target


def time_call(function, repeats: int) -> float:
    """Median seconds of `repeats` calls after one untimed call."""
    function()
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


def benchmark_decoding(clips: dict[str, Path], backends: list[str], num_frames: int, repeats: int, log=print):
    rows = []
    for clip_name, path in clips.items():
        for backend in backends:
            frames, metadata = decode_video_frames(path, backend=backend)
            total = len(frames)
            indices = sample_frame_indices(total, num_frames, "middle", warn_on_repeat=False)
            for mode, selection in (("whole file", None), (f"{num_frames} sampled", indices)):
                seconds = time_call(lambda: decode_video_frames(path, indices=selection, backend=backend), repeats)
                row = dict(clip=clip_name, width=metadata.width, height=metadata.height, frames_in_file=total,
                           backend=backend, mode=mode, ms_per_clip=seconds * 1e3)  # fmt: skip
                rows.append(row)
                log(f"{clip_name} ({metadata.width}x{metadata.height}, {total} frames) {backend:10s} {mode:12s} "
                    f"{seconds * 1e3:9.1f} ms/clip")  # fmt: skip
    return rows


def build_classifier(model: str, num_labels: int = 10):
    from transformers_internvideo2 import InternVideo2VisionConfig
    from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
        InternVideo2ForVideoClassification,
    )

    vision = InternVideo2VisionConfig(**TINY_VISION) if model == "tiny" else InternVideo2VisionConfig.from_preset(model)
    vision.num_labels = num_labels
    torch.manual_seed(0)
    classifier = InternVideo2ForVideoClassification(vision).eval()
    size = vision.image_size
    processor = InternVideo2VideoProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                           num_frames=vision.num_frames)  # fmt: skip
    return classifier, processor


def benchmark_end_to_end(model: str, clips: list[Path], batch_size: int, workers: list[int], rounds: int = 1,
                         log=print) -> dict:
    """The `classify` batch engine (`run_batch` + `ClassificationJob`, what the command runs) over `clips` for each
    `--num-workers` value, against the forward alone over the same clips, preprocessed beforehand. Every round times
    the forward alone and then each engine run, so that each ratio compares runs seconds apart (the machine's speed
    drifts by more than the 10 % being measured over minutes); the median per-round ratio is reported."""
    from transformers_internvideo2.tasks.batch import MemoryOutput, run_batch
    from transformers_internvideo2.tasks.inference import ClassificationJob

    classifier, processor = build_classifier(model)
    job = ClassificationJob(classifier, processor)
    names = [str(clip) for clip in clips]
    batches = [torch.cat([job.prepare(name) for name in names[i : i + batch_size]])
               for i in range(0, len(names), batch_size)]  # fmt: skip

    def forward_only():
        with torch.inference_mode():
            for inputs in batches:
                classifier(pixel_values=inputs, interpolate_pos_encoding=True)

    forward_only()  # warm-up
    result = dict(model=model, clips=len(clips), batch_size=batch_size, rounds=[])
    for round_index in range(rounds):
        start = time.perf_counter()
        forward_only()
        forward_seconds = time.perf_counter() - start
        entry = dict(forward_only_clips_per_second=len(clips) / forward_seconds, runs=[])
        log(f"classify {model}, round {round_index + 1}: forward only {entry['forward_only_clips_per_second']:.3g} clips/s")
        for num_workers in workers:
            start = time.perf_counter()
            summary = run_batch(names, job.prepare, job.compute, MemoryOutput(), batch_size=batch_size,
                                progress=False, num_workers=num_workers)  # fmt: skip
            seconds = time.perf_counter() - start
            run = dict(num_workers=num_workers, end_to_end_clips_per_second=len(clips) / seconds,
                       end_to_end_over_forward_only=forward_seconds / seconds,
                       prepare_wait_seconds=summary.prepare_seconds, compute_seconds=summary.compute_seconds)  # fmt: skip
            entry["runs"].append(run)
            log(f"  --num-workers {num_workers}: end to end {run['end_to_end_clips_per_second']:.3g} clips/s "
                f"({100 * run['end_to_end_over_forward_only']:.0f} % of forward only); waiting for decode "
                f"{summary.prepare_seconds:.1f} s, forward {summary.compute_seconds:.1f} s")  # fmt: skip
        result["rounds"].append(entry)
    result["median_end_to_end_over_forward_only"] = {
        str(num_workers): statistics.median(
            entry["runs"][position]["end_to_end_over_forward_only"] for entry in result["rounds"]
        )
        for position, num_workers in enumerate(workers)
    }
    log("median per-round end to end / forward only: " + ", ".join(
        f"--num-workers {key}: {100 * value:.0f} %" for key, value in result["median_end_to_end_over_forward_only"].items()))
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=SAMPLE_CLIP, help="Source clip (default: the packaged sample).")
    parser.add_argument("--large", action="store_true", help="Also benchmark a 640x480 clip re-encoded from --clip.")
    parser.add_argument("--large-seconds", type=float, default=30.0, help="Length of the --large clip.")
    parser.add_argument("--large-fps", type=int, default=30, help="Frame rate of the --large clip.")
    parser.add_argument("--backends", nargs="+", default=None, help="Default: every usable backend.")
    parser.add_argument("--frames", type=int, default=8, help="Frames of the sampled decode.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="Vision preset (or `tiny`) for the end-to-end classify row.")
    parser.add_argument("--videos", type=int, default=4, help="Videos (copies of the largest clip) for end to end.")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2], help="End-to-end runs to compare.")
    parser.add_argument("--rounds", type=int, default=1, help="End-to-end rounds (forward alone, then each run).")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="OUT")
    return parser.parse_args(argv)


def main(argv=None, log=print) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {"load_average_before": load_average(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    log(f"# load average (1, 5, 15 min) before: {report['load_average_before']}")
    backends = args.backends or available_backends()
    with tempfile.TemporaryDirectory() as workdir:
        clips = {args.clip.name: args.clip}
        if args.large:
            large = make_large_clip(args.clip, Path(workdir) / "large_640x480.mp4", seconds=args.large_seconds,
                                   fps=args.large_fps)
            clips[f"{args.clip.stem} 640x480 {args.large_seconds:g}s"] = large
        report["decoding"] = benchmark_decoding(clips, backends, args.frames, args.repeats, log)
        if args.model:
            source = list(clips.values())[-1]
            videos = []
            for index in range(args.videos):  # distinct files, so no cache helps
                copy = Path(workdir) / f"video_{index}{source.suffix}"
                copy.write_bytes(source.read_bytes())
                videos.append(copy)
            report["end_to_end"] = benchmark_end_to_end(args.model, videos, args.batch_size, args.num_workers, args.rounds,
                                                      log)
    report["load_average_after"] = load_average()
    log(f"# load average (1, 5, 15 min) after: {report['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()

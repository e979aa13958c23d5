#!/usr/bin/env python
"""A local Ray cluster end to end: embed clips with `--engine ray`, index them, search them.

    python examples/ray_local_cluster.py [--workdir DIR] [--clips 12] [--workers 2]

What it does (the commands of docs/scale_out.md, with a cluster started in this process instead of `ray start`):

1. Writes `--clips` shapes-world clips, the package's sample video, and one broken file into `DIR/clips`.
2. `ray.init(num_cpus=2)`: a local cluster (on a real cluster: `ray start --head` here, `ray start --address=...`
   on the workers, then `--ray-address auto`).
3. `internvideo2 embed --engine ray --workers N DIR/clips --output DIR/embeddings`: Parquet files, one row per clip,
   the broken file as a row with status "error" (exit code 3: done, an input skipped).
4. The same command again: every finished id is skipped.
5. `internvideo2 index DIR/embeddings --output DIR/index` and `internvideo2 search "a red circle moves left"`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path


try:
    import transformers_internvideo2  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def main(argv=None) -> int:
    import ray

    from transformers_internvideo2 import cli
    from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4
    from transformers_internvideo2.tasks.ray_engine import read_engine_output

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=None, help="where clips, embeddings and the index go (default: a temp dir)")
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ray-example-"))
    clips = work / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for index in range(args.clips):
        write_mp4(render_clip(sample_clip_spec(index)), clips / f"shapes{index:03d}.mp4")
    sample = Path(transformers_internvideo2.__file__).parent / "samples" / "example1.mp4"
    shutil.copy(sample, clips / "sample.mp4")
    (clips / "broken.mp4").write_bytes(b"this is not a video")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        embeddings, index = work / "embeddings", work / "index"
        command = ["embed", str(clips), "--engine", "ray", "--workers", str(args.workers), "--batch-size", "4",
                   "--output", str(embeddings)]  # fmt: skip
        first = cli.main(command)
        rows = read_engine_output(embeddings, include_errors=True)
        print(f"first run: exit code {first}; {sum(r['status'] == 'ok' for r in rows)} clip(s) embedded, "
              f"{sum(r['status'] == 'error' for r in rows)} reported as errors")  # fmt: skip
        second = cli.main(command)
        print(f"second run: exit code {second} (finished ids skipped, the broken file tried again)")
        assert cli.main(["index", str(embeddings), "--output", str(index)]) == 0
        print("search 'a red circle moves left':")
        assert cli.main(["search", "a red circle moves left", "--index", str(index), "--top-k", "3"]) == 0
        print(f"outputs in {work}")
    finally:
        ray.shutdown()
    return 0 if first == 3 and second == 3 else 1


if __name__ == "__main__":
    sys.exit(main())

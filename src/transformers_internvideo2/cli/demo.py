# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 demo`: the bundled tiny models end to end, offline
(:mod:`transformers_internvideo2.shapes_world.demo`)."""

from __future__ import annotations

import argparse


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the bundled tiny models end to end, offline: shapes-world clips and a real video",
        description="Render fresh held-out shapes-world clips, classify their motion, answer zero-shot and "
        "retrieval queries with the bundled models, then run them on a real video (the sample video) and say what "
        "a model trained on shapes can and cannot tell about it.",
    )
    demo.add_argument("--video", default=None, help="real video to use instead of the sample video")
    demo.add_argument("--clips", type=int, default=16, help="fresh shapes-world clips to render (default 16)")
    demo.add_argument("--seed", type=int, default=None, help="which block of held-out clips (default: a new one)")
    demo.add_argument("--top-k", type=int, default=3, help="results shown per query (default 3)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..shapes_world.demo import run_demo  # on use: the demo loads the training stack (Trainer, PEFT)

    return run_demo(video=args.video, num_clips=args.clips, seed=args.seed, top_k=args.top_k,
                    progress=not args.no_progress)  # fmt: skip

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 retrieve`: text <-> video (or audio, audio+video: `--modality`) retrieval
(:func:`transformers_internvideo2.tasks.retrieval.retrieve_main`, which owns the options). Without `--model`, the
bundled shapes-world video-text model is used, with a note."""

from __future__ import annotations

import sys
from collections.abc import Sequence


HELP = ("text <-> video retrieval with a video-text model (default: the bundled shapes-world one); --modality "
        "audio|audio_video with an audio-video-text model")


def main(argv: Sequence[str]) -> int:
    from ..tasks.retrieval import retrieve_main

    argv = list(argv)
    has_model = any(a == "--model" or a.startswith("--model=") for a in argv)
    if not has_model and not any(a in ("-h", "--help") for a in argv):
        from ..shapes_world.bundled import bundled_model_dir

        argv = ["--model", str(bundled_model_dir("shapes-video-text")), *argv]
        print("no --model given: using the bundled shapes-video-text model (trained on the shapes world only)",
              file=sys.stderr)  # fmt: skip
    return retrieve_main(argv)

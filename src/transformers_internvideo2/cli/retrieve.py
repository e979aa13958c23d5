# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 retrieve`: text <-> video (or audio, audio+video: `--modality`) retrieval
(:func:`transformers_internvideo2.tasks.retrieval.retrieve_main`, which owns the options). Without `--model`, the
bundled shapes-world video-text model is used (the audio-video-text one for `--modality audio|audio_video`), with
a note."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..shapes_world.bundled import bundled_model_dir
from ..tasks.retrieval import retrieve_main


HELP = ("text <-> video retrieval with a video-text model (default: the bundled shapes-world one); --modality "
        "audio|audio_video with an audio-video-text model (default: the bundled shapes-world one)")


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    has_model = any(a == "--model" or a.startswith("--model=") for a in argv)
    if not has_model and not any(a in ("-h", "--help") for a in argv):
        name = "shapes-video-text" if _modality(argv) == "video" else "shapes-audio-video-text"
        argv = ["--model", str(bundled_model_dir(name)), *argv]
        print(f"no --model given: using the bundled {name} model (trained on the shapes world only)", file=sys.stderr)
    return retrieve_main(argv)


def _modality(argv: list[str]) -> str:
    """The `--modality` value of `argv` (default "video"); the parser validates it later."""
    for index, argument in enumerate(argv):
        if argument.startswith("--modality="):
            return argument.split("=", 1)[1]
        if argument == "--modality" and index + 1 < len(argv):
            return argv[index + 1]
    return "video"

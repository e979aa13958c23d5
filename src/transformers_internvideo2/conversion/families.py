"""One dispatcher for every checkpoint family: `conversion/convert_internvideo2_to_hf.py` and `internvideo2 convert`
both call [`main`]."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


__all__ = ["FAMILY_MODULES", "main"]

# `--family` value -> the module whose `main(argv)` converts it; every other value (and no `--family`) is one of the
# single-modality families that `internvideo2_vision` detects and validates itself.
FAMILY_MODULES = {
    "stage2": "internvideo2_video_text",
    "chat": "internvideo2_chat",
    "beats": "beats",
    "transnetv2": "shot_boundary",
    "autoshot": "shot_boundary",
    "clip": "internvideo2_clip",
    "internvideo-mm": "internvideo_mm",
    "videomae-v1": "videomae_v1",
}
DEFAULT_MODULE = "internvideo2_vision"


def _requested_family(argv: Sequence[str]) -> str | None:
    for index, argument in enumerate(argv):
        if argument.startswith("--family="):
            return argument.split("=", 1)[1]
        if argument == "--family" and index + 1 < len(argv):
            return argv[index + 1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    module = FAMILY_MODULES.get(_requested_family(argv), DEFAULT_MODULE)
    return importlib.import_module(f"{__package__}.{module}").main(argv)

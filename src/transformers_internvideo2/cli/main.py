# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Command-line interface: ``internvideo2 <command>`` (installed as a console script; also ``python -m
transformers_internvideo2.cli``). This module only builds the parser and dispatches; each command lives in its own
module of this folder:

* ``demo``      -- :mod:`.demo`: the bundled tiny models end to end, offline.
* ``classify``  -- :mod:`.classify`: top-k labels of video files (what ``pipeline("video-classification")`` computes).
* ``embed``     -- :mod:`.embed`: video features to ``.safetensors`` / ``.parquet`` / ``.jsonl``.
* ``index``     -- :mod:`.index`: a FAISS index of ``embed``'s Parquet output.
* ``search``    -- :mod:`.search`: top-k clips of an index for a text query or a video.
* ``retrieve``  -- :mod:`.retrieve`: text <-> video retrieval (options of ``tasks.retrieval.retrieve_main``).
* ``convert``   -- :mod:`.convert`: the checkpoint converter (options of ``conversion/convert_internvideo2_to_hf.py``).
* ``chat``      -- :mod:`.chat`: video chat.
* ``segment``   -- :mod:`.segment`: shots and clips of raw videos (the InternVideo2 clip rules), clip table, cut files.
* ``curate``    -- :mod:`.curate`: raw videos to stage-2 training data (segment, caption, fuse; JSON lines).

Exit codes: 0 success; 1 the work failed (one ``internvideo2 COMMAND: error: ...`` line on stderr, the traceback too
with ``--debug``); 2 invalid arguments; 3 a batch command finished but skipped inputs (each named on stderr);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import classify, convert, curate, demo, embed, index, retrieve, search, segment
from .chat import chat_main
from .common import EXIT_USAGE, run_command


def _chat_main(argv: Sequence[str]) -> int:
    return chat_main(list(argv))


_CHAT_HELP = "chat about a video with an InternVideo2 chat model"


__all__ = ["build_parser", "main"]

# Commands whose modules own their options (`internvideo2 convert --help` prints the converter's own help).
_PASSTHROUGH = {
    "retrieve": (retrieve.main, retrieve.HELP),
    "convert": (convert.main, convert.HELP),
    "chat": (_chat_main, _CHAT_HELP),
    "segment": (segment.main, segment.HELP),
    "curate": (curate.main, curate.HELP),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="internvideo2",
        description="InternVideo2 video models for Hugging Face Transformers.",
        epilog="Run `internvideo2 COMMAND --help` for the options of a command. Exit codes: 0 success, 1 failure "
        "(one error line), 2 invalid arguments, 3 done but inputs skipped, 130 interrupted.",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure (any position)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (demo, classify, embed, index, search):
        module.add_parser(commands)
    # Listed for --help only: main() hands everything after these command names to their own parsers.
    for name, (_, text) in _PASSTHROUGH.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def _run_passthrough(command: str, rest: list[str], debug: bool) -> int:
    # The delegated parsers name themselves after sys.argv[0]; make their usage lines read `internvideo2 <command>`.
    program = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = f"internvideo2 {command}"
    try:
        return run_command(command, lambda: _PASSTHROUGH[command][0](rest), debug=debug)
    finally:
        if sys.argv:
            sys.argv[0] = program


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere, also after a delegated command's name
    argv = [a for a in argv if a != "--debug"]
    if argv and argv[0] in _PASSTHROUGH:
        return _run_passthrough(argv[0], argv[1:], debug)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help / invalid arguments: return argparse's code instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_USAGE)
    return run_command(args.command, lambda: args.handler(args), debug=debug)


if __name__ == "__main__":
    sys.exit(main())

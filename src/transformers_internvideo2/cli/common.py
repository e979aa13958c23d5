# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""What every `internvideo2` command shares: the runtime options (one `--device` default for all), the batch options,
the bundled-model default, and the one-line error / interruption handling with its exit codes."""

from __future__ import annotations

import argparse
import shutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from ..media.video_decoding import SUPPORTED_BACKENDS
from ..shapes_world.bundled import bundled_model_dir
from ..tasks.batch import positive_int
from ..tasks.ray_engine import JobSpec, run_ray_job


__all__ = [
    "DEVICE_HELP",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "add_batch_arguments",
    "add_engine_arguments",
    "add_runtime_arguments",
    "default_model",
    "positive_int",
    "resolve_dtype",
    "run_command",
    "run_on_ray",
]

EXIT_ERROR = 1  # the work failed: one `internvideo2 COMMAND: error: ...` line on stderr
EXIT_USAGE = 2  # invalid arguments (argparse's code)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
# EXIT_SKIPPED (3: a batch finished but skipped inputs) lives with the batch engine, tasks/batch.py.

DEVICE_HELP = "cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)"


def resolve_dtype(name: str | None):
    return None if name is None else getattr(torch, name)


def add_runtime_arguments(parser: argparse.ArgumentParser, batch_flag: str = "--batch-size") -> None:
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="weights and inputs dtype (default: as saved)")  # fmt: skip
    parser.add_argument(batch_flag, type=positive_int, default=1, help="videos per forward pass (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """`--on-error`, `--resume`, `--overwrite` of the batch commands (docs/reliability.md), `--video-backend`,
    `--num-workers`."""
    parser.add_argument("--on-error", choices=["skip", "fail"], default="skip",
                        help="a video that cannot be decoded: skip it (named on stderr and in the summary; exit code "
                        "3 at the end) or stop with exit code 1 (default: skip)")  # fmt: skip
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (or extend a finished output): inputs whose results the "
                        "output already holds are not computed again")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (refused otherwise)")
    parser.add_argument("--video-backend", choices=list(SUPPORTED_BACKENDS), default=None,
                        help="video decoder (default: the model's saved choice, normally auto = torchcodec when "
                        "usable, else PyAV; decord, the original's reader, needs the [decord] extra); every one gives "
                        "the same frames")  # fmt: skip
    parser.add_argument("--num-workers", type=int, default=0, metavar="N",
                        help="threads that decode and preprocess the next batch while the model runs the current "
                        "one (default 0: decode in turn); the output is the same")  # fmt: skip


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """`--engine local|ray` and the Ray pool's options (docs/scale_out.md)."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: this process (default); ray: Ray Data on an actor pool (a local Ray, or the "
                       "cluster of --ray-address); --output is then a folder of Parquet files")  # fmt: skip
    group.add_argument("--ray-address", default=None,
                       help="Ray cluster to join ('auto' = the one `ray start` runs on this node; default: a new "
                       "local one)")  # fmt: skip
    group.add_argument("--workers", type=positive_int, default=1, help="Ray actors, each with its own model (default 1)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs reserved per Ray actor (default 1)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0,
                       help="GPUs per Ray actor (default 0; 1 = one GPU each, 0.5 = two actors share one)")  # fmt: skip


def run_on_ray(args: argparse.Namespace, kind: str, videos: list[str], top_k: int = 5) -> int:
    """The `--engine ray` branch of a batch command: the same job as the local engine, on Ray Data."""
    if args.output is None:
        raise ValueError("--engine ray writes Parquet files into a folder: give --output FOLDER.")
    if args.overwrite and Path(args.output).is_dir():
        shutil.rmtree(args.output)
    device = args.device if args.device is not None else ("cuda" if args.gpus_per_worker > 0 else "cpu")
    spec = JobSpec(kind=kind, model=str(args.model), num_frames=args.num_frames, device=device, dtype=args.dtype,
                   top_k=top_k, video_backend=args.video_backend)  # fmt: skip
    summary = run_ray_job(spec, videos, args.output, batch_size=args.batch_size, concurrency=args.workers,
                          num_cpus=args.cpus_per_worker, num_gpus=args.gpus_per_worker, on_error=args.on_error,
                          ray_address=args.ray_address)  # fmt: skip
    for name, reason in summary.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(
        f"ray: {summary.computed} new, {summary.resumed} already finished, {len(summary.skipped)} failed of "
        f"{summary.total} video(s) -> {summary.output} ({summary.compute_seconds:.2f} s on {args.workers} worker(s))",
        file=sys.stderr,
    )
    return summary.exit_code


def default_model(args: argparse.Namespace, bundled_name: str) -> None:
    """`--model` omitted: use the model bundled with the package (trained on the shapes world) and say so."""
    if args.model is None:
        args.model = str(bundled_model_dir(bundled_name))
        print(f"no --model given: using the bundled {bundled_name} model (trained on the shapes world only)",
              file=sys.stderr)  # fmt: skip


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (OSError, ValueError, ImportError, LookupError)):
        return text  # user errors: the message says what was wrong
    return f"{type(error).__name__}: {text} (run with --debug for the traceback)"


def run_command(command: str, call: Callable[[], int], debug: bool = False) -> int:
    """Run a command and turn what escapes it into an exit code: every failure is one `error:` line on stderr (the
    traceback too with `debug`), Ctrl-C is `interrupted` and 130, a delegated parser's exit keeps its code."""
    try:
        return call()
    except SystemExit as exit_:  # a delegated parser rejected its arguments or printed its help
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"internvideo2 {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the command line's last line of defence: one line, not a traceback
        if debug:
            traceback.print_exc()
        print(f"internvideo2 {command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR

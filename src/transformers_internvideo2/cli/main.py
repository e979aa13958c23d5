# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Command-line interface: ``internvideo2 <command>`` (installed as a console script; also ``python -m
transformers_internvideo2.cli.main``).

Commands:

* ``demo``      -- the bundled tiny models end to end, offline (see :mod:`transformers_internvideo2.shapes_world.demo`).
* ``classify``  -- top-k labels of video files with a converted classifier (what ``pipeline("video-classification")``
  computes), with a progress bar and timings.
* ``embed``     -- video features to a ``.safetensors`` file: the backbone's ``pooler_output`` for single-modality
  folders; stage-2 video-text folders are handled by :func:`transformers_internvideo2.tasks.retrieval.embed_main`.
* ``retrieve``  -- text <-> video retrieval (:func:`transformers_internvideo2.tasks.retrieval.retrieve_main`).
* ``convert``   -- the checkpoint converter (``conversion/convert_internvideo2_to_hf.py``).
* ``chat``      -- video chat (:mod:`transformers_internvideo2.cli.chat`).
* ``segment``   -- shots and clips of raw videos, the InternVideo2 clip rules (:mod:`transformers_internvideo2.cli.segment`).
* ``curate``    -- raw videos to stage-2 training data: segment, caption, fuse (:mod:`transformers_internvideo2.cli.curate`).

Each command returns the process exit code: 0 on success, 1 when the work failed (a clear ``error:`` line on stderr),
2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence


__all__ = ["build_parser", "main"]

# Failures we report as one `error:` line rather than a traceback: bad paths, undecodable videos (VideoDecodingError
# is a ValueError), models that cannot be loaded or do not fit the command.
_USER_ERRORS = (OSError, ValueError, ImportError)  # OSError covers FileNotFoundError and NotADirectoryError


def _dtype(name: str | None):
    import torch

    return None if name is None else getattr(torch, name)


# ----------------------------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from ..shapes_world.demo import run_demo

    return run_demo(video=args.video, num_clips=args.clips, seed=args.seed, top_k=args.top_k,
                    progress=not args.no_progress)  # fmt: skip


def _default_model(args: argparse.Namespace, bundled_name: str) -> None:
    """`--model` omitted: use the model bundled with the package (trained on the shapes world) and say so."""
    if args.model is None:
        from ..shapes_world.bundled import bundled_model_dir

        args.model = str(bundled_model_dir(bundled_name))
        print(f"no --model given: using the bundled {bundled_name} model (trained on the shapes world only)",
              file=sys.stderr)


def _print_classification_table(run) -> None:
    names = [os.path.basename(p.video) for p in run.predictions]
    if len(set(names)) < len(names):  # same file name in several folders: show the paths as given
        names = [p.video for p in run.predictions]
    name_width = max(12, *(len(n) for n in names))
    label_width = max(10, *(len(label) for p in run.predictions for label in p.labels))
    header = f"{'video':<{name_width}}  {'rank':>4}  {'label':<{label_width}}  {'score':>8}"
    print(header)
    print("-" * len(header))
    for name, prediction in zip(names, run.predictions):
        for rank, (label, score) in enumerate(zip(prediction.labels, prediction.scores), start=1):
            shown = name if rank == 1 else ""
            print(f"{shown:<{name_width}}  {rank:>4}  {label:<{label_width}}  {score:8.4f}")


def _cmd_classify(args: argparse.Namespace) -> int:
    import time

    from ..tasks.inference import classify_videos, collect_video_paths, load_video_classifier

    videos = collect_video_paths(args.videos)  # fail on a bad path before loading a model
    _default_model(args, "shapes-direction-classifier")
    start = time.perf_counter()
    model, processor = load_video_classifier(args.model, device=args.device, dtype=_dtype(args.dtype))
    load_seconds = time.perf_counter() - start
    device = next(model.parameters()).device
    print(
        f"model: {args.model} ({type(model).__name__}, {model.config.num_labels} labels, trained at "
        f"{model.config.num_frames} frames) on {device}, loaded in {load_seconds:.2f} s",
        file=sys.stderr,
    )
    run = classify_videos(
        model,
        processor,
        videos,
        num_frames=args.num_frames,
        top_k=args.top_k,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    _print_classification_table(run)
    count = len(run.predictions)
    print(
        f"\n{count} video(s) x {run.num_frames} frames: decode + preprocess {run.decode_seconds:.2f} s, "
        f"forward {run.forward_seconds:.2f} s, {count / max(run.total_seconds, 1e-9):.2f} videos/s"
    )
    if args.output_json:
        import json

        records = [{"video": p.video, "labels": p.labels, "scores": p.scores} for p in run.predictions]
        with open(args.output_json, "w", encoding="utf-8") as handle:
            json.dump({"model": str(args.model), "num_frames": run.num_frames, "predictions": records}, handle, indent=2)
        print(f"wrote {args.output_json}")
    return 0


def _is_video_text_folder(model_id: str) -> bool:
    from ..tasks.inference import load_model_config

    config = load_model_config(model_id)
    return getattr(config, "vision_config", None) is not None and getattr(config, "text_config", None) is not None


def _video_text_embed_argv(args: argparse.Namespace, videos: list[str]) -> list[str]:
    argv = [*videos, "--model", str(args.model), "--output", str(args.output)]
    argv += ["--video-batch-size", str(args.batch_size)]
    for flag, value in (("--num-frames", args.num_frames), ("--device", args.device), ("--dtype", args.dtype)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--no-progress"] if args.no_progress else [])


def _cmd_embed(args: argparse.Namespace) -> int:
    from ..tasks.inference import collect_video_paths, embed_videos_vision, load_vision_backbone, save_vision_embeddings

    videos = collect_video_paths(args.videos)
    _default_model(args, "shapes-video-text")
    if _is_video_text_folder(args.model):
        # projected, L2-normalised video-text embeddings (+ pooled features): the retrieval module's command
        from ..tasks import retrieval

        return retrieval.embed_main(_video_text_embed_argv(args, videos))
    if not str(args.output).lower().endswith(".safetensors"):
        raise ValueError(f"--output must be a .safetensors file for vision models, got {args.output}")
    backbone, processor = load_vision_backbone(args.model, device=args.device, dtype=_dtype(args.dtype))
    embeddings = embed_videos_vision(
        backbone,
        processor,
        videos,
        num_frames=args.num_frames,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    path = save_vision_embeddings(embeddings, args.output)
    print(
        f"encoded {len(embeddings.names)} video(s) x {embeddings.num_frames} frames: pooler_output "
        f"{tuple(embeddings.pooler_output.shape)} -> {path} (decode + preprocess {embeddings.decode_seconds:.2f} s, "
        f"forward {embeddings.forward_seconds:.2f} s)"
    )
    return 0


def _cmd_retrieve(argv: Sequence[str]) -> int:
    argv = list(argv)
    has_model = any(a == "--model" or a.startswith("--model=") for a in argv)
    if not has_model and not any(a in ("-h", "--help") for a in argv):
        from ..shapes_world.bundled import bundled_model_dir

        argv = ["--model", str(bundled_model_dir("shapes-video-text")), *argv]
        print("no --model given: using the bundled shapes-video-text model (trained on the shapes world only)",
              file=sys.stderr)
    from ..tasks.retrieval import retrieve_main

    return retrieve_main(argv)


def _cmd_convert(argv: Sequence[str]) -> int:
    from ..conversion.families import main as convert_main

    return convert_main(list(argv))


def _cmd_chat(argv: Sequence[str]) -> int:
    from .chat import chat_main

    return chat_main(list(argv))


def _cmd_segment(argv: Sequence[str]) -> int:
    from .segment import segment_main

    return segment_main(list(argv))


def _cmd_curate(argv: Sequence[str]) -> int:
    from .curate import curate_main

    return curate_main(list(argv))


# ----------------------------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------------------------
def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="weights and inputs dtype (default: as saved)")
    parser.add_argument("--batch-size", type=int, default=1, help="videos per forward pass (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="internvideo2",
        description="InternVideo2 video models for Hugging Face Transformers.",
        epilog="Run `internvideo2 COMMAND --help` for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

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
    demo.set_defaults(handler=_cmd_demo)

    classify = commands.add_parser(
        "classify",
        help="classify videos with a converted InternVideo2 classifier",
        description="Top-k labels per video, as pipeline('video-classification') computes them.",
    )
    classify.add_argument("--model", default=None,
                          help="converted folder or Hub id (default: the bundled shapes-world direction classifier)")
    classify.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders of videos")
    classify.add_argument("--num-frames", type=int, default=None,
                          help="frames sampled per video (default: the model's; others resample the position "
                          "embeddings)")
    classify.add_argument("--top-k", type=int, default=5, help="labels per video (default 5)")
    classify.add_argument("--output-json", default=None, metavar="FILE", help="also write the predictions as JSON")
    _add_runtime_arguments(classify)
    classify.set_defaults(handler=_cmd_classify)

    embed = commands.add_parser(
        "embed",
        help="write video embeddings to a .safetensors file",
        description="Vision folders (classifier, backbone, student): the attention-pooled `pooler_output` of the "
        "backbone. Video-text (stage-2) folders: projected, L2-normalised embeddings (see `retrieval`).",
    )
    embed.add_argument("--model", default=None,
                       help="converted folder or Hub id (default: the bundled shapes-world video-text model)")
    embed.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER", help="video files and/or folders of videos")
    embed.add_argument("--output", required=True, metavar="FILE.safetensors", help="output file")
    embed.add_argument("--num-frames", type=int, default=None, help="frames per video (default: the processor's)")
    _add_runtime_arguments(embed)
    embed.set_defaults(handler=_cmd_embed)

    # Listed for --help only: main() hands everything after these command names to their own parsers.
    for name, text in _PASSTHROUGH_HELP.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


# Commands whose modules own their options (`internvideo2 convert --help` prints the converter's own help).
_PASSTHROUGH_COMMANDS = {"retrieve": _cmd_retrieve, "convert": _cmd_convert, "chat": _cmd_chat,
                         "segment": _cmd_segment, "curate": _cmd_curate}  # fmt: skip
_PASSTHROUGH_HELP = {
    "retrieve": "text <-> video retrieval with a video-text model (default: the bundled shapes-world one)",
    "convert": "convert an original InternVideo2 checkpoint (options of conversion/convert_internvideo2_to_hf.py)",
    "chat": "chat about a video with an InternVideo2 chat model",
    "segment": "cut raw videos into shots and clips (TransNetV2 / AutoShot / PySceneDetect, the clip rules)",
    "curate": "raw videos to stage-2 training data: shots, clips, video/speech captions fused by a language model",
}


def _run(command: str, call: Callable[[], int]) -> int:
    try:
        return call()
    except SystemExit as exit_:  # a delegated parser rejected its arguments or printed its help
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    except _USER_ERRORS as error:
        print(f"internvideo2 {command}: error: {error}", file=sys.stderr)
        return 1


def _run_passthrough(command: str, rest: list[str]) -> int:
    # The delegated parsers name themselves after sys.argv[0]; make their usage lines read `internvideo2 <command>`.
    program = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = f"internvideo2 {command}"
    try:
        return _run(command, lambda: _PASSTHROUGH_COMMANDS[command](rest))
    finally:
        if sys.argv:
            sys.argv[0] = program


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PASSTHROUGH_COMMANDS:
        return _run_passthrough(argv[0], argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help / invalid arguments: return argparse's code instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    return _run(args.command, lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())

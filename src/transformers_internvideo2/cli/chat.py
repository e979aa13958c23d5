# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 chat VIDEO "question"`: ask an InternVideo2 chat model about a video.

    internvideo2 chat clip.mp4 "Which way does it move?"                     # the bundled shapes-world chat model
    internvideo2 chat clip.mp4 "Describe the video." --model converted/InternVideo2-Chat-8B --max-new-tokens 128

`--model` takes a chat bundle (a folder with `shapes_chat.json`, such as the bundled `shapes-chat`), or a converted
chat folder / Hub id in the local cache (`InternVideo2ForConditionalGeneration` + its `InternVideo2ChatProcessor`).
The video is decoded and sampled by the processor (`--num-frames`, default the model's; other counts resample the
position embeddings), the question is written with the processor's chat template, and the answer is generated
greedily (or sampled with `--sample`).

The bundled model was instruction-tuned on shapes-world clips only (one coloured shape moving on a plain background):
it answers questions about such clips, and on any other video it still answers, with shapes-world words that have
nothing to do with what the video shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from ..shapes_world.chat_bundle import SHAPES_ONLY_NOTE, bundled_chat_dir, is_chat_bundle, load_chat_bundle
from ..tasks.chat import answer_question, load_chat_model
from ..tasks.inference import quiet_transformers_logging, resolve_device
from .common import DEVICE_HELP


__all__ = ["build_parser", "chat_main", "load_chat_model_or_bundle"]


def load_chat_model_or_bundle(model: str | None = None, device: str | None = None):
    """`(model, processor, description, is_shapes_model)` for a chat bundle, the bundled model (`None`), or a converted
    chat folder / cached Hub id."""
    if model is None or is_chat_bundle(model):
        folder = bundled_chat_dir() if model is None else Path(model)
        if not is_chat_bundle(folder):
            raise FileNotFoundError(
                f"No trained chat model is bundled at {folder}; pass --model FOLDER (a converted chat model or a chat "
                "bundle), or build one with `python examples/shapes_world_chat.py --output-dir runs/shapes-chat` and "
                "pass --model runs/shapes-chat/shapes-chat."
            )
        chat_model, processor = load_chat_bundle(folder, device=device)
        name = "bundled shapes-world chat model" if model is None else f"chat bundle {folder}"
        return chat_model, processor, f"{name} (SmolLM2-135M-Instruct + LoRA, tiny InternVideo2 + Q-Former)", True
    chat_model, processor = load_chat_model(model, device=device)
    return chat_model, processor, f"{model} ({type(chat_model.language_model).__name__})", False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="internvideo2 chat",
        description="Ask an InternVideo2 chat model a question about a video. Default model: the bundled "
        "shapes-world chat model (it only knows shapes-world clips).",
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("question", help='the question, e.g. "Which way does it move?"')
    parser.add_argument("--model", default=None,
                        help="chat bundle folder, converted chat folder or cached Hub id (default: the bundled "
                        "shapes-world chat model)")  # fmt: skip
    parser.add_argument("--max-new-tokens", type=int, default=32, help="answer length limit (default 32)")
    parser.add_argument("--num-frames", type=int, default=None, help="frames sampled from the video (default: the model's)")
    parser.add_argument("--sample", action="store_true", help="sample (temperature/top-p) instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=0.7, help="with --sample (default 0.7)")
    parser.add_argument("--top-p", type=float, default=0.9, help="with --sample (default 0.9)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (for --sample)")
    parser.add_argument("--system", default=None, help="system text put before the conversation")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    return parser


def chat_main(argv=None) -> int:
    """Entry point of `internvideo2 chat` (the CLI dispatches here). Returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if not os.path.isfile(args.video):
        raise FileNotFoundError(f"Video not found: {args.video}")
    if not args.question.strip():
        raise ValueError("The question is empty; ask something about the video.")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be positive, got {args.max_new_tokens}.")

    if args.seed is not None:
        torch.manual_seed(args.seed)
    with quiet_transformers_logging():
        return _chat(args)


def _chat(args) -> int:
    start = time.perf_counter()
    device = resolve_device(args.device)  # the same default as every command: cuda when available, else cpu
    model, processor, description, shapes_model = load_chat_model_or_bundle(args.model, device=device)
    load_seconds = time.perf_counter() - start
    print(f"model: {description}, loaded in {load_seconds:.2f} s")
    answer = answer_question(
        model, processor, args.video, args.question, num_frames=args.num_frames, max_new_tokens=args.max_new_tokens,
        do_sample=args.sample, temperature=args.temperature, top_p=args.top_p, system=args.system,
    )  # fmt: skip
    print(f"video: {args.video} ({answer.num_frames} frames)")
    print(f"question: {args.question}")
    print(f"answer: {answer.text}")
    rate = answer.new_tokens / max(answer.generate_seconds, 1e-9)
    print(f"timings: decode + preprocess {answer.preprocess_seconds * 1000:.1f} ms, generate "
          f"{answer.generate_seconds * 1000:.1f} ms ({answer.new_tokens} new tokens after a {answer.prompt_tokens}-token "
          f"prompt, {rate:.1f} tokens/s, {'sampling' if args.sample else 'greedy'})")  # fmt: skip
    if shapes_model:
        print(SHAPES_ONLY_NOTE)
    return 0

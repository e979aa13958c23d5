# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 chat VIDEO "question"`: ask an InternVideo2 chat model about a video.

    internvideo2 chat clip.mp4 "Which way does it move?"                     # the bundled shapes-world chat model
    internvideo2 chat clip.mp4 "Describe the video." --model converted/InternVideo2-Chat-8B --max-new-tokens 128

`--model` takes a chat bundle (a folder with `shapes_chat.json`, such as the bundled `bundled/shapes-chat`), or a
converted chat folder / Hub id in the local cache (`InternVideo2ForConditionalGeneration` + its
`InternVideo2ChatProcessor`). The video is decoded and sampled by the processor (`--num-frames`, default the model's;
other counts resample the position embeddings), the question is written with the processor's chat template, and the
answer is generated greedily (or sampled with `--sample`).

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


__all__ = ["ChatAnswer", "answer_question", "build_parser", "chat_main", "demo_chat_section", "load_chat_model"]

SHAPES_ONLY_NOTE = (
    "note: the bundled chat model was trained only on shapes-world clips (one coloured shape moving on a plain "
    "background); on any other video its answers are shapes-world words, not a description of the video."
)


def load_chat_model(model: str | None = None, device: str | None = None):
    """`(model, processor, description, is_shapes_model)` for a chat bundle, the bundled model (`None`), or a converted
    chat folder / cached Hub id."""
    from .bundled_chat import bundled_chat_dir, is_chat_bundle, load_chat_bundle

    if model is None or is_chat_bundle(model):
        folder = bundled_chat_dir() if model is None else Path(model)
        if not is_chat_bundle(folder):
            raise FileNotFoundError(
                f"No trained chat model is bundled at {folder}; pass --model FOLDER (a converted chat model or a chat "
                "bundle), or build the bundle with `python examples/shapes_world_chat.py --output-dir runs/shapes-chat "
                f"--bundle-dir {folder}`."
            )
        chat_model, processor = load_chat_bundle(folder, device=device)
        name = "bundled shapes-world chat model" if model is None else f"chat bundle {folder}"
        return chat_model, processor, f"{name} (SmolLM2-135M-Instruct + LoRA, tiny InternVideo2 + Q-Former)", True

    from transformers import AutoProcessor

    from .modeling_internvideo2_chat import InternVideo2ForConditionalGeneration
    from .processing_internvideo2_chat import InternVideo2ChatProcessor

    chat_model = InternVideo2ForConditionalGeneration.from_pretrained(model).eval()
    processor = AutoProcessor.from_pretrained(model)
    if not isinstance(processor, InternVideo2ChatProcessor):
        raise ValueError(f"{model} has a {type(processor).__name__}, not an InternVideo2ChatProcessor.")
    if device is not None:
        chat_model.to(device)
    return chat_model, processor, f"{model} ({type(chat_model.language_model).__name__})", False


class ChatAnswer:
    """What [`answer_question`] returns: the answer text and where the time went."""

    def __init__(self, text: str, num_frames: int, new_tokens: int, prompt_tokens: int, preprocess_s: float,
                 generate_s: float):  # fmt: skip
        self.text, self.num_frames = text, num_frames
        self.new_tokens, self.prompt_tokens = new_tokens, prompt_tokens
        self.preprocess_seconds, self.generate_seconds = preprocess_s, generate_s


def answer_question(
    model,
    processor,
    video,
    question: str,
    num_frames: int | None = None,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 0.7,
    top_p: float = 0.9,
    system: str | None = None,
) -> ChatAnswer:
    """Ask `question` about `video` (a path, or `uint8 (T, H, W, 3)` frames) in a fresh conversation."""
    import torch

    trained_frames = model.config.vision_config.num_frames
    num_frames = num_frames or trained_frames
    if num_frames < 1:
        raise ValueError(f"--num-frames must be positive, got {num_frames}.")
    content = [{"type": "video"}, {"type": "text", "text": question}]
    messages = ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else [])
    messages.append({"role": "user", "content": content})
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    start = time.perf_counter()
    video_input = os.fspath(video) if isinstance(video, (str, os.PathLike)) else video
    inputs = processor(text=prompt, videos=[video_input], num_frames=num_frames, return_tensors="pt")
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    preprocessed = time.perf_counter()
    generation = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                      suppress_tokens=[model.config.video_token_id])  # fmt: skip
    if do_sample:
        generation.update(temperature=temperature, top_p=top_p)
    else:  # the LLM's generation config may ask for sampling; greedy means greedy
        generation.update(temperature=None, top_p=None, top_k=None)
    if processor.tokenizer.pad_token_id is not None:
        generation["pad_token_id"] = processor.tokenizer.pad_token_id
    with torch.inference_mode():
        output = model.generate(**inputs, interpolate_pos_encoding=num_frames != trained_frames, **generation)
    generated = time.perf_counter()
    new_ids = output[0, inputs["input_ids"].shape[1] :]
    text = processor.decode(new_ids, skip_special_tokens=True).strip()
    return ChatAnswer(text, num_frames, int(new_ids.numel()), int(inputs["input_ids"].shape[1]),
                      preprocessed - start, generated - preprocessed)  # fmt: skip


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
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    return parser


def chat_main(argv=None) -> int:
    """Entry point of `internvideo2 chat` (the CLI dispatches here). Returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if not os.path.isfile(args.video):
        raise FileNotFoundError(f"Video not found: {args.video}")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be positive, got {args.max_new_tokens}.")

    import torch

    from .inference import quiet_transformers_logging

    if args.seed is not None:
        torch.manual_seed(args.seed)
    with quiet_transformers_logging():
        return _chat(args)


def _chat(args) -> int:
    start = time.perf_counter()
    model, processor, description, shapes_model = load_chat_model(args.model, device=args.device)
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


def demo_chat_section(clips, real_video=None, questions=None, log=print) -> dict | None:
    """The chat step of `internvideo2 demo`: ask the bundled chat model the shapes-world questions about the first
    fresh held-out clip of `clips` (`[(ShapesClipSpec, uint8 video), ...]`), printed next to the true answers, and one
    about `real_video`. Returns `{"answers": [(question, answer, truth)], ...}`, or None (with a printed reason)
    when no chat model can be loaded (no bundle, no SmolLM2 asset)."""
    from .bundled_chat import bundled_chat_dir, read_bundle_manifest
    from .recipes.shapes_world_chat import QUESTION_TYPES, answer_is_correct

    questions = questions or list(QUESTION_TYPES)
    start = time.perf_counter()
    try:
        model, processor, description, _ = load_chat_model(None)
    except (FileNotFoundError, ImportError) as error:
        log(f"  skipped: {error}")
        return None
    log(f"  model: {description}, loaded in {time.perf_counter() - start:.1f} s")
    spec, video = clips[0]
    log(f"  clip: {spec.caption}")
    answers = []
    for kind in questions:
        question = QUESTION_TYPES[kind]
        truth = dict(spec.questions_and_answers)[question]
        reply = answer_question(model, processor, video, question, max_new_tokens=6)
        mark = "right" if answer_is_correct(reply.text, truth) else "WRONG"
        log(f"  Q: {question:<40} A: {reply.text:<12} truth: {truth:<10} {mark}  ({reply.generate_seconds * 1000:.0f} ms)")
        answers.append((question, reply.text, truth))
    right = sum(answer_is_correct(reply, truth) for _, reply, truth in answers)
    held_out = read_bundle_manifest(bundled_chat_dir()).get("metrics", {}).get("held_out")
    recorded = f"{held_out['overall']:.1%} of the questions on {held_out['num_clips']} clips" if held_out else "none"
    log(f"  {right}/{len(answers)} right on this clip (recorded held-out accuracy: {recorded})")
    result = {"answers": answers}
    if real_video is not None:
        question = "What colour is the shape at the start?"
        reply = answer_question(model, processor, real_video, question, max_new_tokens=6)
        log(f"  real video: Q: {question}  A: {reply.text}")
        log(f"  {SHAPES_ONLY_NOTE}")
        result["real_video_answer"] = reply.text
    return result


if __name__ == "__main__":
    sys.exit(chat_main())

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Ask an InternVideo2 chat model about a video: [`load_chat_model`] for a converted chat folder, [`answer_question`]
for one question in a fresh conversation (the processor samples the frames and writes the prompt with its chat
template; the answer is generated greedily or sampled). `internvideo2 chat` (cli/chat.py) is the command line."""

from __future__ import annotations

import os
import time

import torch
from transformers import AutoProcessor

from ..models.internvideo2_chat import InternVideo2ChatProcessor, InternVideo2ForConditionalGeneration


__all__ = [
    "ORIGINAL_GENERATION_DEFAULTS",
    "ChatAnswer",
    "answer_question",
    "chat",
    "chat_messages",
    "check_question",
    "load_chat_model",
]

# `generate_caption`'s defaults in the original remote code: note do_sample=True (the model cards pass
# generation_config={"do_sample": False} for greedy answers).
ORIGINAL_GENERATION_DEFAULTS = dict(
    num_beams=1, max_new_tokens=200, do_sample=True, min_length=1, top_p=0.9, top_k=None, temperature=1.0,
    length_penalty=1.0, repetition_penalty=1.0,
)


def load_chat_model(model: str, device: str | None = None):
    """`(model, processor)` of a converted chat folder or cached Hub id: [`InternVideo2ForConditionalGeneration`] and
    its [`InternVideo2ChatProcessor`]."""
    chat_model = InternVideo2ForConditionalGeneration.from_pretrained(model).eval()
    processor = AutoProcessor.from_pretrained(model)
    if not isinstance(processor, InternVideo2ChatProcessor):
        raise ValueError(f"{model} has a {type(processor).__name__}, not an InternVideo2ChatProcessor.")
    if device is not None:
        chat_model.to(device)
    return chat_model, processor


class ChatAnswer:
    """What [`answer_question`] returns: the answer text and where the time went."""

    def __init__(self, text: str, num_frames: int, new_tokens: int, prompt_tokens: int, preprocess_s: float,
                 generate_s: float):  # fmt: skip
        self.text, self.num_frames = text, num_frames
        self.new_tokens, self.prompt_tokens = new_tokens, prompt_tokens
        self.preprocess_seconds, self.generate_seconds = preprocess_s, generate_s


def check_question(question) -> None:
    """Refuse an empty or blank question (a model would answer it with whatever it generates unprompted)."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"The question is empty; ask something about the video (got {question!r}).")


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
    """Ask `question` about `video` (a path, or `uint8 (T, H, W, 3)` frames) in a fresh conversation.

    Raises `ValueError` for an empty question, and (from the model's `generate`) for a prompt that, with
    `max_new_tokens`, does not fit in the language model's positions (`max_position_embeddings`)."""
    check_question(question)
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
    extra = {"qformer_text": system} if system and getattr(processor, "qformer_instruction", False) else {}
    inputs = processor(text=prompt, videos=[video_input], num_frames=num_frames, return_tensors="pt", **extra)
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


def chat_messages(
    user_prompt: str,
    media_type: str = "video",
    msg: str = "",
    instruction: str | None = None,
    chat_history: list[tuple[str, str]] | None = None,
) -> list[dict]:
    """The Transformers chat messages of one original `chat()` call: the system `instruction`, the media turn (the
    video or image, with `msg` inside it), the `chat_history` `(question, answer)` pairs, then `user_prompt`. The
    bundled templates render them to the original prompt string (docs/videochat.md)."""
    if media_type not in ("video", "image"):
        raise ValueError(f"media_type must be 'video' or 'image', got {media_type!r}.")
    messages = []
    if instruction:
        messages.append({"role": "system", "content": [{"type": "text", "text": instruction}]})
    media_turn = [{"type": media_type}]
    if msg:
        media_turn.append({"type": "text", "text": msg})
    messages.append({"role": "user", "content": media_turn})
    for question, answer in chat_history or []:
        messages.append({"role": "user", "content": [{"type": "text", "text": question}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    messages.append({"role": "user", "content": [{"type": "text", "text": user_prompt}]})
    return messages


def chat(
    model,
    processor,
    user_prompt: str,
    media,
    media_type: str = "video",
    msg: str = "",
    instruction: str | None = None,
    chat_history: list[tuple[str, str]] | None = None,
    return_history: bool = False,
    generation_config: dict | None = None,
    answer_prompt: str | None = None,
    **processor_kwargs,
):
    """One turn of a conversation about a video or an image, with the semantics of the original remote code's
    `model.chat(tokenizer, msg, user_prompt, media_type, media_tensor, instruction, chat_history, return_history,
    generation_config, answer_prompt)` (docs/videochat.md maps the arguments).

    `media` is what the processor reads (a path, decoded frames, a tensor; `processor_kwargs` such as
    `do_normalize=False` go to it, e.g. for frames that are already normalised). The prompt is the original's: system
    text, the media turn with `msg`, the history turns, `user_prompt`, then `answer_prompt`; with the HD processor the
    instruction also conditions the Q-Former. Generation uses the original `generate_caption` defaults
    ([`ORIGINAL_GENERATION_DEFAULTS`], sampling!) updated by `generation_config`.

    Returns the decoded answer, or `(answer, history)` with `return_history`: the history is a new list, the input
    `chat_history` plus `(user_prompt, answer)` (the original appends to the list it was given). As in the original, the
    next turn re-tokenises the decoded answer text (its ids may differ from the generated ones). An empty or blank
    `user_prompt` raises `ValueError` (as [`answer_question`]).
    """
    check_question(user_prompt)  # before the processor or the model is touched
    chat_history = list(chat_history or [])
    messages = chat_messages(user_prompt, media_type, msg, instruction, chat_history)
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                           answer_prompt=answer_prompt)  # fmt: skip
    media_kwargs = {"videos" if media_type == "video" else "images": [media]}
    if instruction and getattr(processor, "qformer_instruction", False):
        processor_kwargs["qformer_text"] = instruction
    inputs = processor(text=prompt, return_tensors="pt", **media_kwargs, **processor_kwargs)
    inputs = inputs.to(next(model.parameters()).device)
    generation = {**ORIGINAL_GENERATION_DEFAULTS, **(generation_config or {})}
    if not generation.get("do_sample"):  # greedy: the LLM's own generation config may hold sampling settings
        generation.update(top_p=None, top_k=None, temperature=None)
    with torch.inference_mode():
        output = model.generate(**inputs, **generation)
    answer = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
    if not return_history:
        return answer
    return answer, chat_history + [(user_prompt, answer)]

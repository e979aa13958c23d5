# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Ask an InternVideo2 chat model about a video: [`load_chat_model`] for a converted chat folder, [`answer_question`]
for one question in a fresh conversation (the processor samples the frames and writes the prompt with its chat
template; the answer is generated greedily or sampled). `internvideo2 chat` (cli/chat.py) is the command line."""

from __future__ import annotations

import os
import time


__all__ = ["ChatAnswer", "answer_question", "load_chat_model"]


def load_chat_model(model: str, device: str | None = None):
    """`(model, processor)` of a converted chat folder or cached Hub id: [`InternVideo2ForConditionalGeneration`] and
    its [`InternVideo2ChatProcessor`]."""
    from transformers import AutoProcessor

    from ..models.internvideo2_chat import InternVideo2ChatProcessor, InternVideo2ForConditionalGeneration

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
    import torch

    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"The question is empty; ask something about the video (got {question!r}).")
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

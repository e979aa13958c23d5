"""`pipeline("image-text-to-text")` / `pipeline("any-to-any")` with chat messages that contain a video path."""

import pytest
import torch
from transformers import pipeline

from offline_assets import requires_smollm2
from test_processing_internvideo2_chat import (
    smollm2_tokenizer_with_video_token,
    tiny_chat_config,
    tiny_chat_model,
    video_message,
)
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor


@pytest.fixture(scope="module")
def model_and_processor():
    tokenizer = smollm2_tokenizer_with_video_token()
    config = tiny_chat_config(tokenizer)
    processor = InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="chatml")
    return tiny_chat_model(config), processor


def _reference_answer(model, processor, messages, max_new_tokens):
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")  # fmt: skip
    generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.batch_decode(generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]


@requires_smollm2
@pytest.mark.parametrize("task", ["image-text-to-text", "any-to-any"])
def test_pipeline_with_video_messages(model_and_processor, sample_video_path, task):
    model, processor = model_and_processor
    chat = pipeline(task, model=model, processor=processor)
    messages = video_message(sample_video_path)
    output = chat(text=messages, max_new_tokens=6, generate_kwargs={"do_sample": False})
    reply = output[0]["generated_text"][-1]
    assert reply["role"] == "assistant"
    assert reply["content"] == _reference_answer(model, processor, messages, 6)
    assert len(reply["content"]) > 0


@requires_smollm2
def test_pipeline_from_a_saved_folder(model_and_processor, sample_video_path, tmp_path):
    model, processor = model_and_processor
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    chat = pipeline("image-text-to-text", model=str(tmp_path))
    assert isinstance(chat.processor, InternVideo2ChatProcessor)
    messages = video_message(sample_video_path, "Describe it.")
    reply = chat(text=messages, max_new_tokens=5, generate_kwargs={"do_sample": False})[0]["generated_text"][-1]
    assert reply["content"] == _reference_answer(model, processor, messages, 5)
    # batched chats, left padded by the pipeline
    replies = chat(text=[messages, video_message(sample_video_path, "Longer question about the video?")],
                   max_new_tokens=4, batch_size=2, generate_kwargs={"do_sample": False})  # fmt: skip
    assert len(replies) == 2 and all(r[0]["generated_text"][-1]["content"] for r in replies)

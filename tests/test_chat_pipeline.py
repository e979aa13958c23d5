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


# ----------------------------------------------------------------------------------------------------------------
# batched chat through the pipelines (issue: right-padded batches gave wrong answers)
# ----------------------------------------------------------------------------------------------------------------
def _pipeline_tasks():
    from transformers.pipelines import SUPPORTED_TASKS

    return [task for task in ("image-text-to-text", "any-to-any") if task in SUPPORTED_TASKS]


@pytest.fixture(scope="module")
def exported_shapes_chat(tmp_path_factory):
    from transformers_internvideo2.shapes_world import write_mp4
    from transformers_internvideo2.shapes_world.chat_bundle import bundled_chat_dir, export_chat_model, is_chat_bundle
    from transformers_internvideo2.shapes_world.recipes.chat import ChatRecipeSettings, chat_records

    if not is_chat_bundle(bundled_chat_dir()):
        pytest.skip("the package ships no trained shapes chat bundle")
    folder = tmp_path_factory.mktemp("shapes-chat-export")
    export_chat_model(bundled_chat_dir(), folder / "model")
    conversations = []
    # three clips, three kinds of question: prompts of different lengths, so the batch is padded
    for record, question_index in zip(chat_records("test", 3, ChatRecipeSettings()), (3, 0, 2)):
        path = write_mp4(record["video"], folder / f"clip{record['seed']}.mp4")
        turn = record["QA"][question_index]
        conversations.append(
            ([{"role": "user", "content": [{"type": "video", "path": str(path)}, {"type": "text", "text": turn["q"]}]}],
             turn["a"])
        )
    return folder / "model", conversations


def _answers(chat, conversations, **kwargs):
    outputs = chat(text=[messages for messages, _ in conversations], max_new_tokens=6,
                   generate_kwargs={"do_sample": False}, **kwargs)  # fmt: skip
    return [output[0]["generated_text"][-1]["content"].strip() for output in outputs]


@requires_smollm2
@pytest.mark.slow
@pytest.mark.parametrize("task", _pipeline_tasks())
def test_batched_pipeline_answers_equal_one_by_one_answers(exported_shapes_chat, task):
    from transformers import AutoTokenizer

    folder, conversations = exported_shapes_chat
    assert AutoTokenizer.from_pretrained(folder).padding_side == "left"  # saved for batched generation
    chat = pipeline(task, model=str(folder))
    one_by_one = [_answers(chat, [conversation])[0] for conversation in conversations]
    # the shipped model answers these held-out clips correctly (shape, direction, colour)
    assert [answer.lower().rstrip(".") for answer in one_by_one] == [answer for _, answer in conversations]
    assert _answers(chat, conversations, batch_size=3) == one_by_one
    # a tokenizer switched to right padding (as exported folders used to be saved) gives the same answers: the
    # model moves right-padded prompts to left padding before generating
    chat.processor.tokenizer.padding_side = "right"
    assert _answers(chat, conversations, batch_size=3) == one_by_one


@requires_smollm2
def test_the_bundle_folder_is_refused_with_how_to_export_it():
    from transformers_internvideo2.shapes_world.chat_bundle import bundled_chat_dir, is_chat_bundle

    if not is_chat_bundle(bundled_chat_dir()):
        pytest.skip("the package ships no trained shapes chat bundle")
    with pytest.raises(ValueError, match="export_chat_model"):
        pipeline("image-text-to-text", model=str(bundled_chat_dir()))


def test_right_padded_rows_are_left_aligned_for_generation():
    from transformers_internvideo2.models.internvideo2_chat.modeling_internvideo2_chat import left_align_padding

    ids = torch.tensor([[5, 6, 7, 0, 0], [0, 8, 9, 1, 2], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    new_ids, new_mask = left_align_padding(ids, mask)
    assert new_ids.tolist() == [[0, 0, 5, 6, 7], [0, 8, 9, 1, 2], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0]]
    assert new_mask.tolist() == [[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]
    left = torch.tensor([[0, 1, 1]])
    assert left_align_padding(torch.tensor([[0, 3, 4]]), left)[1] is left  # already left padded: untouched


@requires_smollm2
def test_generate_is_right_regardless_of_the_padding_side(model_and_processor, sample_video_path):
    model, processor = model_and_processor
    texts = [processor.apply_chat_template(video_message(sample_video_path, question), add_generation_prompt=True)
             for question in ("Hi?", "A much longer question about the whole video?")]  # fmt: skip
    videos = [str(sample_video_path)] * 2
    results = {}
    for side in ("left", "right"):
        inputs = processor(text=texts, videos=videos, padding_side=side, return_tensors="pt")
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        results[side] = generated[:, inputs["input_ids"].shape[1] :].tolist()
    single = []
    for text in texts:
        inputs = processor(text=text, videos=videos[:1], return_tensors="pt")
        single.append(model.generate(**inputs, max_new_tokens=4, do_sample=False)[0, inputs["input_ids"].shape[1] :].tolist())
    assert results["left"] == results["right"] == single

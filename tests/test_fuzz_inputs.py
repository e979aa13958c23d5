"""Property-based fuzzing (Hypothesis) of the processors and the converters (issue 10, item 8).

Every generated case must either give a valid output -- the documented shape, finite values -- or raise one of the
package's documented exception types (`ValueError`, with its subclasses `ConversionError` and `VideoDecodingError`,
or `TypeError`). Any other exception, and any NaN or infinite output, fails the test.

The suite never fails by chance: every test runs a fixed set of examples (`derandomize=True`: Hypothesis derives
them from the test itself, not from a random seed) and keeps no example database between runs, so CI and a developer
see the same cases. Inputs are small (frames up to 40x40, tiny fixture models) and each test stays under ~10 s.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from transformers_internvideo2.models.beats.feature_extraction_beats import BeatsFeatureExtractor  # noqa: E402
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (  # noqa: E402
    InternVideo2VideoProcessor,
)


DOCUMENTED_ERRORS = (ValueError, TypeError)  # ConversionError, VideoDecodingError, AudioDecodingError: ValueErrors
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ_FEW = settings(FUZZ, max_examples=30)  # the converters: each example builds a model


def _fixtures_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    shared = Path(env).expanduser() if env else Path(__file__).resolve().parent.parent.parent / "shared"
    return shared / "fixtures" / "original"


FIXTURES = _fixtures_root()


def _documented_outcome(run):
    """`run()`'s result, or `None` when it raised a documented error; anything else propagates (and fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # repeated frames, PCM-scale audio: documented warnings, not failures
        try:
            result = run()
        except DOCUMENTED_ERRORS as error:
            event(f"raised {type(error).__name__}: {str(error)[:45]}")  # `pytest --hypothesis-show-statistics`: the mix
            return None
    event("valid output")
    return result


# ----------------------------------------------------------------------------------------------------------------------
# videos: shapes, dtypes, value ranges, frame counts, sizes, containers
# ----------------------------------------------------------------------------------------------------------------------
# Repeated entries weight the draw towards inputs a user would send, so that valid outputs are checked as often as
# errors (`pytest --hypothesis-show-statistics` prints the mix).
DTYPES = ["uint8"] * 4 + ["int16", "int64", "float16", "float32", "float64", "bool"]
VALUE_RANGES = ["pixels"] * 4 + ["unit", "normalised", "huge", "nan", "inf", "constant"]
CONTAINERS = ["numpy"] * 3 + ["torch", "numpy_frames", "torch_frames", "pil_frames", "batch_list", "batch_5d"]
LAYOUTS = ["channels_last"] * 3 + ["channels_first", "channel_first_video", "grey_3d"]
CHANNELS = [3] * 4 + [1, 2, 4, 5]


def _values(rng: np.random.Generator, shape: tuple, value_range: str, dtype: str) -> np.ndarray:
    if value_range == "pixels":
        data = rng.integers(0, 256, shape).astype(np.float64)
    elif value_range == "unit":
        data = rng.random(shape)
    elif value_range == "normalised":
        data = rng.normal(0.0, 1.2, shape)
    elif value_range == "huge":
        data = rng.normal(0.0, 1e6, shape)
    elif value_range == "constant":
        data = np.full(shape, float(rng.integers(0, 256)))
    else:
        data = rng.integers(0, 256, shape).astype(np.float64)
        if data.size:
            data.flat[rng.integers(0, data.size)] = np.nan if value_range == "nan" else -np.inf
    if dtype == "bool":
        return data > 0
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.nan_to_num(data), info.min, info.max).astype(dtype)
    return data.astype(dtype)


@st.composite
def video_inputs(draw):
    """`(videos, description)`: one video (or a batch) in any container, layout, dtype and value range."""
    seed = draw(st.integers(0, 2**16))
    # the first branch of each `one_of` (and the first entry of each list) is what Hypothesis tries first
    frames = draw(st.sampled_from([4, 8, 1, 2, 3, 5, 6, 7, 9, 10, 0]))
    height, width = (draw(st.sampled_from([24, 8, 13, 32, 40, 17, 1, 3, 0])) for _ in range(2))
    channels = draw(st.sampled_from(CHANNELS))
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from(DTYPES))
    value_range = draw(st.sampled_from(VALUE_RANGES))
    container = draw(st.sampled_from(CONTAINERS))
    rng = np.random.default_rng(seed)
    if layout == "grey_3d":
        shape = (frames, height, width)
    elif layout == "channels_last":
        shape = (frames, height, width, channels)
    elif layout == "channels_first":
        shape = (frames, channels, height, width)
    else:
        shape = (channels, frames, height, width)
    video = _values(rng, shape, value_range, dtype)
    if container == "torch":
        video = torch.from_numpy(np.ascontiguousarray(video))
    elif container == "numpy_frames":
        video = list(video)
    elif container == "torch_frames":
        video = [torch.from_numpy(np.ascontiguousarray(frame)) for frame in video]
    elif container == "pil_frames":  # PIL holds uint8 RGB / RGBA / grey frames (H, W[, C])
        if layout == "channels_last" and channels in (3, 4) or layout == "grey_3d":
            pixels = _values(rng, shape, "pixels", "uint8")
            video = [Image.fromarray(frame) for frame in pixels]
    elif container == "batch_list":
        video = [video, video]
    elif container == "batch_5d":
        copies = draw(st.integers(0, 2))
        video = np.stack([video] * copies) if copies else np.asarray(video)[None][:0]
    description = dict(shape=shape, layout=layout, dtype=dtype, value_range=value_range, container=container)
    return video, description


@st.composite
def processor_settings(draw):
    sampling = draw(st.sampled_from(["num_frames", "num_frames", "all", "fps"]))
    call = {}
    if sampling == "num_frames":
        call["num_frames"] = draw(st.sampled_from([4, 1, 2, 3, 8, 9, 16, 0, -1]))
    elif sampling == "fps":
        call["fps"] = draw(st.sampled_from([2.0, 0.5, 0]))
    else:
        call["do_sample_frames"] = False
    short = draw(st.sampled_from([8, 14, 24]))
    crop = draw(st.sampled_from([8, 14]))
    do_center_crop = draw(st.booleans())
    do_rescale = draw(st.sampled_from([True, True, True, False]))
    init = dict(size={"shortest_edge": short}, crop_size={"height": crop, "width": crop},
                do_center_crop=do_center_crop, do_rescale=do_rescale)  # fmt: skip
    return init, call


def _check_pixel_values(pixel_values: torch.Tensor, description) -> None:
    assert pixel_values.ndim == 5 and pixel_values.shape[2] == 3, (tuple(pixel_values.shape), description)
    assert pixel_values.dtype == torch.float32, (pixel_values.dtype, description)
    assert torch.isfinite(pixel_values).all(), f"non-finite pixel values for {description}"


@FUZZ
@given(video_inputs(), processor_settings())
def test_video_processor_gives_finite_pixels_or_a_documented_error(case, settings_):
    videos, description = case
    init, call = settings_
    processor = InternVideo2VideoProcessor(num_frames=4, **init)
    out = _documented_outcome(lambda: processor(videos, return_tensors="pt", **call))
    if out is not None:
        pixel_values = out["pixel_values"]
        _check_pixel_values(pixel_values, description)
        if "num_frames" in call:
            assert pixel_values.shape[1] == call["num_frames"]


@FUZZ
@given(video_inputs(), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3, 8]))
def test_multi_view_gives_finite_views_or_a_documented_error(case, num_clips, num_crops, num_frames):
    videos, description = case
    processor = InternVideo2VideoProcessor(size={"shortest_edge": 12}, crop_size={"height": 10, "width": 10})
    views = _documented_outcome(
        lambda: processor.multi_view(videos, num_clips=num_clips, num_crops=num_crops, num_frames=num_frames)
    )
    if views is not None:
        assert views.shape == (num_clips * num_crops, num_frames, 3, 10, 10), (tuple(views.shape), description)
        assert torch.isfinite(views).all(), description


@pytest.fixture(scope="module")
def video_text_processor():
    from transformers_internvideo2.models.internvideo2_video_text import InternVideo2Processor
    from transformers_internvideo2.shapes_world.bundled import BUNDLED_VIDEO_TEXT, bundled_model_dir

    return InternVideo2Processor.from_pretrained(bundled_model_dir(BUNDLED_VIDEO_TEXT), local_files_only=True)


GOOD_TEXTS = st.one_of(st.text(max_size=40), st.lists(st.text(max_size=20), min_size=1, max_size=3), st.none())
BAD_TEXTS = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.just([]),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), min_size=1, max_size=3),
)
TEXTS = st.one_of(GOOD_TEXTS, GOOD_TEXTS, BAD_TEXTS)


@FUZZ
@given(video_inputs(), TEXTS, st.sampled_from([None, 3, 1, 8]))
def test_video_text_processor_gives_valid_outputs_or_a_documented_error(video_text_processor, case, text, num_frames):
    videos, description = case
    out = _documented_outcome(lambda: video_text_processor(text=text, videos=videos, num_frames=num_frames))
    if out is not None:
        _check_pixel_values(out["pixel_values"], description)
        if text is not None:
            assert out["input_ids"].shape == out["attention_mask"].shape
            assert out["input_ids"].shape[1] == video_text_processor.max_length


@FUZZ
@given(
    st.integers(0, 2**16),
    st.sampled_from(["mono", "batch_2d", "batch_3d", "list", "list_of_floats", "empty_batch", "samples_channels"]),
    st.integers(0, 24000),
    st.sampled_from(["float32", "float64", "int16", "float16"]),
    st.sampled_from(["speech", "loud", "nan", "silence"]),
    st.sampled_from([None, 8000, 16000, 44100, 0, -5]),
)
def test_beats_feature_extractor_gives_finite_features_or_a_documented_error(seed, container, samples, dtype,
                                                                           content, rate):  # fmt: skip
    rng = np.random.default_rng(seed)
    wave = rng.normal(0, 0.3 if content != "loud" else 300.0, samples)
    if content == "silence":
        wave[:] = 0
    elif content == "nan" and samples:
        wave[rng.integers(0, samples)] = np.nan
    if dtype == "int16":
        wave = np.clip(np.nan_to_num(wave) * 1000, -32768, 32767).astype(np.int16)
    else:
        wave = wave.astype(dtype)
    clip = {
        "mono": wave,
        "batch_2d": np.stack([wave, wave]),
        "batch_3d": np.stack([wave, wave])[:, None],
        "list": [wave, wave[: samples // 2]],
        "list_of_floats": wave.tolist()[:2000],
        "empty_batch": wave[None][:0],
        "samples_channels": np.stack([wave, wave], axis=-1),
    }[container]
    extractor = BeatsFeatureExtractor()
    out = _documented_outcome(lambda: extractor(clip, sampling_rate=rate, return_tensors="pt"))
    if out is not None:
        features = out["input_features"]
        assert features.shape[1:] == (extractor.num_frames, extractor.num_mel_bins)
        assert torch.isfinite(features).all()


# ----------------------------------------------------------------------------------------------------------------------
# converters: key drops, renames, shape and dtype changes on tiny original-layout checkpoints
# ----------------------------------------------------------------------------------------------------------------------
MUTATIONS = ["drop", "rename", "duplicate_prefix", "narrow", "widen", "transpose", "to_dtype", "add_key",
             "scalar", "none"]  # fmt: skip
TARGET_DTYPES = [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.bool, torch.complex64]


@st.composite
def mutations(draw):
    count = draw(st.integers(1, 3))
    return [
        (draw(st.sampled_from(MUTATIONS)), draw(st.integers(0, 10**6)), draw(st.sampled_from(TARGET_DTYPES)))
        for _ in range(count)
    ]


def _mutate(state_dict: dict, steps) -> dict:
    state_dict = dict(state_dict)
    for kind, pick, dtype in steps:
        keys = sorted(state_dict)
        if not keys:
            break
        key = keys[pick % len(keys)]
        tensor = state_dict[key]
        if kind == "drop":
            del state_dict[key]
        elif kind == "rename":
            state_dict[key.replace(".", "_", 1) if "." in key else key + "_renamed"] = state_dict.pop(key)
        elif kind == "duplicate_prefix":
            state_dict["backbone." + key] = tensor
        elif kind == "narrow" and tensor.ndim and tensor.shape[0] > 1:
            state_dict[key] = tensor[: tensor.shape[0] - 1].clone()
        elif kind == "widen":
            state_dict[key] = torch.cat([tensor.reshape(-1), tensor.reshape(-1)[:1]]) if tensor.numel() else tensor
        elif kind == "transpose" and tensor.ndim >= 2:
            state_dict[key] = tensor.transpose(0, 1).contiguous()
        elif kind == "to_dtype":
            state_dict[key] = tensor.to(dtype)
        elif kind == "add_key":
            state_dict[f"extra.layer{pick % 7}.weight"] = torch.zeros(3)
        elif kind == "scalar":
            state_dict[key] = tensor.reshape(-1)[:1].reshape(()).clone() if tensor.numel() else tensor
    return state_dict


def _load_fixture(case: str):
    folder = FIXTURES / case
    if not (folder / "checkpoint.pth").is_file():
        pytest.skip(f"reference fixture {case} not found under {FIXTURES}")
    return folder


@pytest.fixture(scope="module")
def vision_fixture():
    from safetensors.torch import load_file

    from transformers_internvideo2.conversion import internvideo2_vision as co

    folder = _load_fixture("sm01_cls_joint_t1")
    kwargs = json.loads((folder / "case.json").read_text())["constructor_kwargs"]
    pixel_values = load_file(str(folder / "inputs.safetensors"))["pixel_values"][:1].transpose(1, 2)
    return co.load_original_checkpoint(folder / "checkpoint.pth"), kwargs, pixel_values


@FUZZ_FEW
@given(mutations())
def test_vision_converter_converts_exactly_or_raises_a_conversion_error(vision_fixture, steps):
    from transformers_internvideo2.conversion import internvideo2_vision as co

    original, kwargs, pixel_values = vision_fixture
    state_dict = _mutate(original, steps)

    def convert_and_run():
        family = co.detect_family(state_dict)
        config = co.make_config(state_dict, family, original_kwargs=kwargs)
        model, _ = co.convert_checkpoint(state_dict, config, family)
        with torch.no_grad():
            return model(pixel_values)

    outputs = _documented_outcome(convert_and_run)
    if outputs is not None:
        assert outputs.logits.shape == (1, kwargs["num_classes"]) and torch.isfinite(outputs.logits).all(), steps


@pytest.mark.parametrize("key", ["head.weight", "fc_norm.weight"])
def test_vision_converter_refuses_a_flattened_head_or_norm(vision_fixture, key):
    # found by the fuzz test above (a "widen" mutation of head.weight): an IndexError before the check existed
    from transformers_internvideo2.conversion import internvideo2_vision as co

    state_dict = dict(vision_fixture[0])
    state_dict[key] = torch.cat([state_dict[key].reshape(-1), state_dict[key].reshape(-1)[:1]]).reshape(1, 1, -1)
    with pytest.raises(co.ConversionError, match="head.weight must be"):
        co.detect_family(state_dict)


@pytest.fixture(scope="module")
def beats_fixture():
    from safetensors.torch import load_file

    folder = _load_fixture("au01_beats_tiny")
    checkpoint = torch.load(folder / "checkpoint.pth", map_location="cpu", weights_only=True)
    features = load_file(str(folder / "inputs.safetensors"))["fbank"][:1, :200]
    return checkpoint, features


@FUZZ_FEW
@given(mutations())
def test_beats_converter_converts_exactly_or_raises_a_conversion_error(beats_fixture, steps):
    from transformers_internvideo2.conversion.beats import convert_beats_checkpoint

    checkpoint, features = beats_fixture
    mutated = {"cfg": dict(checkpoint["cfg"]), "model": _mutate(checkpoint["model"], steps)}

    def convert_and_run():
        model, _ = convert_beats_checkpoint(mutated)
        with torch.no_grad():
            return model(features).last_hidden_state

    hidden = _documented_outcome(convert_and_run)
    if hidden is not None:
        assert hidden.ndim == 3 and torch.isfinite(hidden).all(), steps


@pytest.fixture(scope="module")
def stage2_fixture():
    from safetensors.torch import load_file

    from transformers_internvideo2.conversion import internvideo2_video_text as cv

    folder = _load_fixture("mm03_stage2_full_bert")
    info = json.loads((folder / "case.json").read_text())
    config = cv.stage2_config_from_original(
        info["vision_encoder_kwargs"],
        json.loads((folder / "config_bert_tiny.json").read_text()),
        projection_dim=info["config"]["model"]["embed_dim"],
        temperature=info["config"]["model"]["temp"],
    )
    checkpoint = torch.load(folder / "checkpoint.pth", map_location="cpu", weights_only=True)
    inputs = load_file(str(folder / "inputs.safetensors"))
    return cv.unwrap_stage2_checkpoint(checkpoint), config, inputs


@FUZZ_FEW
@given(mutations(), st.sampled_from([False, False, False, True]))
def test_stage2_converter_converts_exactly_or_raises_a_conversion_error(stage2_fixture, steps, infer_config):
    from transformers_internvideo2.conversion import internvideo2_video_text as cv

    original, config, inputs = stage2_fixture
    state_dict = _mutate(original, steps)

    def convert_and_run():
        # the configuration read from the (mutated) tensors, or the one of the fixture
        model, _ = cv.convert_stage2_checkpoint(state_dict, None if infer_config else config)
        with torch.no_grad():
            video = model.get_video_features(inputs["video"]).pooler_output
            text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
        return video @ text.t()

    similarity = _documented_outcome(convert_and_run)
    if similarity is not None:
        assert similarity.shape == (2, 3) and torch.isfinite(similarity).all(), steps


@pytest.fixture(scope="module")
def chat_processor():
    from test_processing_internvideo2_chat import smollm2_tokenizer_with_video_token, tiny_chat_config

    from transformers_internvideo2.models.internvideo2_chat import InternVideo2ChatProcessor

    tokenizer = smollm2_tokenizer_with_video_token()
    return InternVideo2ChatProcessor.from_model_config(tiny_chat_config(tokenizer), tokenizer, "chatml")


BAD_CHAT_TEXTS = [123, 4.5, [], [1, "a"], ("<video>",), None, b"<video>"]


@FUZZ
@given(video_inputs(), st.text(max_size=30), st.sampled_from([1, 1, 1, 2, 0]),
       st.sampled_from([None] * 4 + BAD_CHAT_TEXTS))  # fmt: skip
def test_chat_processor_gives_valid_outputs_or_a_documented_error(chat_processor, case, text, video_tokens, bad_text):
    videos, description = case
    text = "<video>" * video_tokens + text if bad_text is None else bad_text
    out = _documented_outcome(lambda: chat_processor(text=text, videos=videos, return_tensors="pt"))
    if out is not None:
        assert out["input_ids"].shape == out["attention_mask"].shape
        if "pixel_values_videos" in out:
            _check_pixel_values(out["pixel_values_videos"], description)

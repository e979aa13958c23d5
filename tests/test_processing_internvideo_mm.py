"""InternVideo-MM processor: the original demo transform and CLIP tokenizer reproduced exactly on fixture
`v103_mm_processor` (real frames of the sample clip, awkward texts), plus the rules one by one (bilinear name swap,
truncated long side, banker's-rounded crop offset, linspace sampling), save/load and clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from transformers_internvideo2.media.frame_sampling import sample_frame_indices
from transformers_internvideo2.models.internvideo_mm.processing_internvideo_mm import (
    InternVideoMMProcessor,
    InternVideoMMTokenizer,
    InternVideoMMVideoProcessor,
    center_crop_offsets,
    resize_short_side_pil,
)


REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


CASE = _shared_root() / "fixtures" / "original" / "v103_mm_processor"
needs_fixture = pytest.mark.skipif(not (CASE / "case.json").is_file(), reason=f"fixture not found at {CASE}")


@pytest.fixture(scope="module")
def processor() -> InternVideoMMProcessor:
    return InternVideoMMProcessor()


@needs_fixture
def test_v103_video_transform_is_exact(processor):
    frames = load_file(str(CASE / "inputs.safetensors"))["frames_uint8"].numpy()
    expected = load_file(str(CASE / "outputs.safetensors"))["pixel_values"]  # (C, T, H, W)
    ours = processor(videos=[frames], do_sample_frames=False)["pixel_values"]
    assert ours.shape == (1, 2, 3, 224, 224)
    torch.testing.assert_close(ours[0].transpose(0, 1), expected, atol=0, rtol=0)


@needs_fixture
def test_v103_tokenizer_is_exact(processor):
    case = json.loads((CASE / "case.json").read_text())
    expected = load_file(str(CASE / "outputs.safetensors"))
    out = processor(text=case["tokenizer"]["texts"])
    assert out["input_ids"].dtype == torch.long
    assert torch.equal(out["input_ids"], expected["input_ids"])
    assert torch.equal(out["special_tokens_mask"], expected["special_tokens_mask"])
    for text, ids in zip(case["tokenizer"]["texts"], case["tokenizer"]["bpe_ids_without_specials"]):
        assert processor.tokenizer.encode(text) == ids


@needs_fixture
def test_v103_file_frames_are_the_linspace_frames(processor, sample_video_path):
    case = json.loads((CASE / "case.json").read_text())
    assert sample_frame_indices(40, 8, "linspace").tolist() == case["video"]["frame_indices_load_video"]
    expected = load_file(str(CASE / "outputs.safetensors"))["pixel_values"]
    video = processor(videos=str(sample_video_path))["pixel_values"]
    assert video.shape == (1, 8, 3, 224, 224)
    torch.testing.assert_close(video[0, [0, 4]].transpose(0, 1), expected, atol=0, rtol=0)


def test_resize_rules():
    frame = np.random.default_rng(0).integers(0, 256, (480, 641, 3), dtype=np.uint8)
    resized = resize_short_side_pil(frame, 256)
    assert resized.shape == (256, int(256 * 641 / 480), 3)  # 341.86 -> 341 (truncated)
    expected = np.asarray(Image.fromarray(frame).resize((341, 256), Image.BILINEAR))
    assert np.array_equal(resized, expected)
    assert resize_short_side_pil(frame.transpose(1, 0, 2), 256).shape == (341, 256, 3)
    # banker's rounding: (341 - 224) / 2 = 58.5 -> 58; (259 - 224) / 2 = 17.5 -> 18
    assert center_crop_offsets(256, 341, 224, 224) == (16, 58)
    assert center_crop_offsets(259, 256, 224, 224) == (18, 16)
    with pytest.raises(ValueError, match="Cannot crop"):
        center_crop_offsets(200, 300, 224, 224)


def test_tokenizer_rules():
    tokenizer = InternVideoMMTokenizer(context_length=8)
    out = tokenizer(["a dog", "one two three four five six seven eight"])
    ids = out["input_ids"]
    assert ids.shape == (2, 8)
    assert ids[0, 0] == 49406 and ids[0, 3] == 49407 and ids[0, 4:].eq(0).all()
    assert ids[1, -1] == 49407 and int(out["attention_mask"][1].sum()) == 8  # truncated, last id overwritten
    assert tokenizer.decode(ids[0]).strip() == "a dog"
    with pytest.raises(ValueError, match="more than the context length"):
        tokenizer(["one two three four five six seven eight"], truncate=False)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tokenizer([1, 2])


def test_images_and_save_load(processor, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = processor(images=[image, image], text="a cat")
    assert out["pixel_values"].shape == (2, 1, 3, 224, 224)
    assert out["input_ids"].shape == (1, 77)
    processor.save_pretrained(tmp_path)
    loaded = InternVideoMMProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.video_processor, InternVideoMMVideoProcessor)
    assert loaded.context_length == 77 and (tmp_path / "bpe_simple_vocab_16e6.txt.gz").is_file()
    again = loaded(images=[image], text="a cat")
    assert torch.equal(again["pixel_values"][0], out["pixel_values"][0])
    assert torch.equal(again["input_ids"], out["input_ids"])
    with pytest.raises(ValueError, match="Give videos"):
        processor()

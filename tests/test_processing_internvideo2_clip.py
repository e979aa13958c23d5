"""The InternVideo2-CLIP processor: the original text formats (LLaMA `summarize:` + BOS/EOS, 80 ids, pad 0; open_clip's
CLIP BPE with its cleaning, 77 ids) with real tokenizers, the 8-frame evaluation video pipeline, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transformers_internvideo2 import InternVideo2ClipConfig, InternVideo2ClipProcessor
from transformers_internvideo2.assets import load_clip_bpe_tokenizer, mistral_tokenizer_model_path
from transformers_internvideo2.conversion.internvideo2_clip import resolve_clip_tokenizer


TRICKY = [
    "A Dog runs  in the SNOW!",
    "café &amp;amp; crème brûlée",
    "中文 emoji \U0001f600 test",
    "don't stop-me now's 123 4567",
    " ".join(["word"] * 100),  # longer than the context: cut, last id = end of text
    "Ã©tÃ© mojibake",
]


@pytest.fixture(scope="module")
def clip_bpe():
    try:
        return load_clip_bpe_tokenizer()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def llama_tokenizer_file():
    try:
        return mistral_tokenizer_model_path("v1")  # a real LLaMA-style SentencePiece model
    except FileNotFoundError as error:
        pytest.skip(str(error))


def test_clip_bpe_matches_open_clip(clip_bpe):
    open_clip = pytest.importorskip("open_clip")
    processor = InternVideo2ClipProcessor(tokenizer=clip_bpe, text_format="clip_bpe", clean_text=False)
    ours = processor.tokenize(TRICKY)
    reference = open_clip.get_tokenizer("ViT-B-16")(TRICKY)
    assert ours["input_ids"].shape == (len(TRICKY), 77)
    assert torch.equal(ours["input_ids"], reference)
    assert ours["input_ids"][4, -1] == 49407 and ours["input_ids"][:, 0].eq(49406).all()
    # the model pools at argmax(ids): the end-of-text token
    lengths = ours["attention_mask"].sum(1)
    assert torch.equal(ours["input_ids"].argmax(-1), lengths - 1)


def test_caption_cleaning_is_applied_first(clip_bpe):
    processor = InternVideo2ClipProcessor(tokenizer=clip_bpe, text_format="clip_bpe")
    cleaned = processor.tokenize(["A man -- playing/singing!"])["input_ids"]
    plain = processor.tokenize(["a man playing singing"], clean_text=False)["input_ids"]
    assert torch.equal(cleaned, plain)


def test_llama_format(llama_tokenizer_file):
    import sentencepiece

    config = InternVideo2ClipConfig.from_preset("internvideo2-clip-1b")
    processor = InternVideo2ClipProcessor.for_config(config, resolve_clip_tokenizer(config, llama_tokenizer_file))
    assert processor.max_length == 80 and processor.text_prefix == "summarize:"
    spm = sentencepiece.SentencePieceProcessor(model_file=str(llama_tokenizer_file))
    out = processor.tokenize(["A dog runs in the snow.", " ".join(["zebra"] * 200)])
    ids = out["input_ids"]
    assert ids.shape == (2, 80)
    expected = [1, *spm.encode("summarize:a dog runs in the snow"), 2]
    assert ids[0, : len(expected)].tolist() == expected and ids[0, len(expected):].eq(0).all()
    assert ids[1, 0] == 1 and ids[1, -1] == 2  # truncated, the EOS kept (the original's add_eos_token)
    # the pooled index the model uses (count of ids > 0, minus one) is the EOS
    assert ids[0, out["attention_mask"][0].sum() - 1] == 2
    with pytest.raises(ValueError, match="needs the text tower's tokenizer"):
        InternVideo2ClipProcessor(text_format="llama")


def test_videos_and_save_load(clip_bpe, tmp_path):
    config = InternVideo2ClipConfig.from_preset("internvideo2-clip-s14", vision_config={"image_size": 28})
    processor = InternVideo2ClipProcessor.for_config(config, clip_bpe)
    assert processor.video_processor.num_frames == 8 and processor.text_format == "clip_bpe"
    video = np.random.default_rng(0).integers(0, 255, (20, 40, 50, 3), dtype=np.uint8)
    batch = processor(text=["a dog"], videos=[video])
    assert batch["pixel_values"].shape == (1, 8, 3, 28, 28) and batch["input_ids"].shape == (1, 77)
    processor.save_pretrained(tmp_path)
    reloaded = InternVideo2ClipProcessor.from_pretrained(tmp_path)
    assert reloaded.text_format == "clip_bpe" and reloaded.max_length == 77
    assert torch.equal(reloaded.tokenize(TRICKY)["input_ids"], processor.tokenize(TRICKY)["input_ids"])
    with pytest.raises(ValueError, match="text_format"):
        InternVideo2ClipProcessor(tokenizer=clip_bpe, text_format="bert")

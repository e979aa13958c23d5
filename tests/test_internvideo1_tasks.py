"""The package's tasks accept the InternVideo (v1) models: retrieval and the zero-shot pipeline with an InternVideo-MM
folder (its own demo processor and CLIP tokenizer), video classification with a VideoMAE v1 classifier folder."""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

from transformers_internvideo2.models.internvideo_mm import InternVideoMMConfig, InternVideoMMModel, InternVideoMMProcessor
from transformers_internvideo2.tasks.retrieval import load_model_and_processor, retrieve


@pytest.fixture(scope="module")
def mm_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("internvideo_mm")
    config = InternVideoMMConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           image_size=224, patch_size=56, num_frames=4, extractor_layers=[0],
                           extractor_num_attention_heads=2),
        text_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        projection_dim=8, caption_decoder_layers=0,
    )  # fmt: skip
    torch.manual_seed(0)
    InternVideoMMModel(config).save_pretrained(folder)
    InternVideoMMProcessor().save_pretrained(folder)
    return folder


def test_retrieval_with_an_internvideo_mm_folder(mm_folder, sample_video_path):
    model, processor = load_model_and_processor(mm_folder)
    assert isinstance(model, InternVideoMMModel) and isinstance(processor, InternVideoMMProcessor)
    results = retrieve(model, processor, [str(sample_video_path)], ["a dog", "a plane"], rerank=False, num_frames=4,
                       progress=False)  # fmt: skip
    assert results.similarity.shape == (1, 2)
    with torch.no_grad():
        pixel_values = processor(videos=str(sample_video_path), num_frames=4)["pixel_values"]
        video = model.get_video_features(pixel_values).pooler_output
        text = model.get_text_features(processor(text=["a dog", "a plane"])["input_ids"]).pooler_output
    torch.testing.assert_close(results.similarity, video @ text.t(), atol=1e-5, rtol=0)


def test_zero_shot_pipeline_with_an_internvideo_mm_folder(mm_folder, sample_video_path):
    classifier = pipeline("zero-shot-video-classification", model=str(mm_folder))
    result = classifier(str(sample_video_path), candidate_labels=["dog", "plane"], hypothesis_template="a {}",
                        num_frames=4)  # fmt: skip
    assert sorted(r["label"] for r in result) == ["dog", "plane"]
    assert abs(sum(r["score"] for r in result) - 1) < 1e-5

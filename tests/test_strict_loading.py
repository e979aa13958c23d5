"""Strict loading: a saved folder with a missing or an unexpected weight is refused, with the keys named, by the model
classes, the Auto classes, the pipelines and the CLI; the documented opt-ins (new labels, `allow_missing_weights`,
`ignore_mismatched_sizes`, `output_loading_info`) load it; a stage-2 folder gives a classifier with a new head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForVideoClassification, pipeline

import transformers_internvideo2  # noqa: F401  (registers the Auto classes and the pipelines)
from transformers_internvideo2 import cli
from transformers_internvideo2.models.internvideo2_video_text.configuration_internvideo2_video_text import (
    InternVideo2Config,
)
from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2TextForMaskedLM,
    InternVideo2TextModel,
)
from transformers_internvideo2.models.internvideo2_vision.configuration_internvideo2_vision import (
    InternVideo2VisionConfig,
)
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
)
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (
    InternVideo2VideoProcessor,
)
from transformers_internvideo2.models.strict_loading import StrictLoadingError


LABELS = ("left", "right", "up")
VISION = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=28, patch_size=14,
    num_frames=4, pooler_output_size=24, pooler_num_attention_heads=4,
)


def tiny_vision_config(**overrides) -> InternVideo2VisionConfig:
    kwargs = dict(VISION, id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
    kwargs.update(overrides)
    return InternVideo2VisionConfig(**kwargs)


def tiny_stage2_config(**overrides) -> InternVideo2Config:
    vision = dict(VISION, image_position_embedding_type="separate", clip_teacher_hidden_size=16,
                  clip_teacher_final_size=12, clip_num_return_layers=2)  # fmt: skip
    text = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=24, fusion_layer=1, encoder_width=32, cls_token_id=2, mask_token_id=3)  # fmt: skip
    return InternVideo2Config(vision_config=vision, text_config=text, projection_dim=16, **overrides)


def save(model, folder: Path, processor: bool = False) -> Path:
    model.save_pretrained(folder)
    if processor:
        InternVideo2VideoProcessor(num_frames=4, size={"shortest_edge": 28},
                                   crop_size={"height": 28, "width": 28}).save_pretrained(folder)  # fmt: skip
    return folder


def edit_weights(folder: Path, drop: str | None = None, add: str | None = None) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    if drop is not None:
        del weights[drop]
    if add is not None:
        weights[add] = torch.zeros(3)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return InternVideo2ForVideoClassification(tiny_vision_config()).eval()


@pytest.fixture()
def classifier_dir(classifier, tmp_path) -> Path:
    return save(classifier, tmp_path / "classifier", processor=True)


MISSING_KEY = "internvideo2.encoder.layer.1.mlp.fc2.weight"


def test_complete_folder_loads_bit_exactly(classifier, classifier_dir):
    reloaded = InternVideo2ForVideoClassification.from_pretrained(classifier_dir)
    for key, tensor in classifier.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], tensor), key


@pytest.mark.parametrize("load", [
    lambda path, **kw: InternVideo2ForVideoClassification.from_pretrained(path, **kw),
    lambda path, **kw: AutoModelForVideoClassification.from_pretrained(path, **kw),
    lambda path, **kw: pipeline("video-classification", model=str(path), model_kwargs=kw),
], ids=["class", "auto", "pipeline"])  # fmt: skip
def test_missing_weight_is_refused_with_its_name(classifier_dir, load):
    edit_weights(classifier_dir, drop=MISSING_KEY)
    # (the pipeline factory re-raises a ValueError that quotes ours)
    with pytest.raises(ValueError, match=r"missing weights .*1: \[internvideo2\.encoder\.layer\.1\.mlp\.fc2"):
        load(classifier_dir)
    # the documented opt-in loads it (with a newly initialised tensor)
    loaded = load(classifier_dir, allow_missing_weights=True)
    assert loaded is not None


def test_unexpected_weight_is_refused_with_its_name(classifier_dir):
    edit_weights(classifier_dir, add="internvideo2.encoder.layer.0.stray.weight")
    with pytest.raises(StrictLoadingError, match=r"unexpected weights .*stray\.weight.*allow_unexpected_weights=True"):
        InternVideo2ForVideoClassification.from_pretrained(classifier_dir)
    with pytest.raises(StrictLoadingError, match="stray"):  # the backbone only drops the classifier's head
        AutoModel.from_pretrained(classifier_dir)
    InternVideo2ForVideoClassification.from_pretrained(classifier_dir, allow_unexpected_weights=True)


def test_loading_info_is_returned_instead_of_raising(classifier_dir):
    """Transformers' own `output_loading_info=True`: the caller gets the report (what its tests rely on)."""
    edit_weights(classifier_dir, drop=MISSING_KEY)
    _, info = InternVideo2ForVideoClassification.from_pretrained(classifier_dir, output_loading_info=True)
    assert info["missing_keys"] == {MISSING_KEY}


def test_cli_refuses_an_incomplete_folder(classifier_dir, sample_video_path, capsys):
    edit_weights(classifier_dir, drop=MISSING_KEY)
    code = cli.main(["classify", str(sample_video_path), "--model", str(classifier_dir), "--no-progress"])
    assert code == 1
    assert MISSING_KEY in capsys.readouterr().err


def test_backbone_from_head_folders_drops_only_the_heads(classifier, classifier_dir, tmp_path):
    backbone = AutoModel.from_pretrained(classifier_dir)
    assert isinstance(backbone, InternVideo2VisionModel)
    assert torch.equal(backbone.encoder.layer[1].mlp.fc2.weight, classifier.internvideo2.encoder.layer[1].mlp.fc2.weight)
    student = InternVideo2ForPreTraining(tiny_vision_config(clip_teacher_hidden_size=16, clip_teacher_final_size=12,
                                                            mae_teacher_hidden_size=20))  # fmt: skip
    AutoModel.from_pretrained(save(student, tmp_path / "student"))


def test_new_labels_on_a_backbone_folder_are_the_intended_exception(tmp_path):
    backbone_dir = save(InternVideo2VisionModel(tiny_vision_config()), tmp_path / "backbone")
    # the folder's own labels: no new head was asked for, a missing head is an error
    with pytest.raises(StrictLoadingError, match=r"classifier\.weight"):
        InternVideo2ForVideoClassification.from_pretrained(backbone_dir)
    model = InternVideo2ForVideoClassification.from_pretrained(backbone_dir, num_labels=7)
    assert model.classifier.out_features == 7
    names = {0: "a", 1: "b"}
    model = AutoModelForVideoClassification.from_pretrained(backbone_dir, id2label=names, label2id={"a": 0, "b": 1})
    assert model.config.id2label == names
    # a backbone folder missing a backbone weight stays an error even with new labels
    edit_weights(backbone_dir, drop="encoder.layer.0.mlp.fc1.weight")
    with pytest.raises(StrictLoadingError, match=r"internvideo2\.encoder\.layer\.0\.mlp\.fc1\.weight"):
        InternVideo2ForVideoClassification.from_pretrained(backbone_dir, num_labels=7)


def test_other_number_of_labels_needs_ignore_mismatched_sizes(classifier_dir):
    with pytest.raises(RuntimeError):  # Transformers' own refusal of a shape mismatch
        InternVideo2ForVideoClassification.from_pretrained(classifier_dir, num_labels=5)
    model = InternVideo2ForVideoClassification.from_pretrained(classifier_dir, num_labels=5, ignore_mismatched_sizes=True)
    assert model.classifier.out_features == 5


def test_tied_weights_and_heads_do_not_count_as_missing(tmp_path):
    """The MLM decoder is tied to the word embeddings (stored once); base models drop a head folder's heads."""
    torch.manual_seed(0)
    retrieval_dir = save(InternVideo2ForRetrieval(tiny_stage2_config()), tmp_path / "retrieval")
    reloaded = InternVideo2ForRetrieval.from_pretrained(retrieval_dir)
    assert reloaded.mlm_head.decoder.weight is reloaded.get_input_embeddings().weight
    InternVideo2Model.from_pretrained(retrieval_dir)
    mlm_dir = save(InternVideo2TextForMaskedLM(tiny_stage2_config().text_config), tmp_path / "mlm")
    InternVideo2TextForMaskedLM.from_pretrained(mlm_dir)
    InternVideo2TextModel.from_pretrained(mlm_dir)
    # a dual-encoder folder has no matching head: the retrieval class refuses it
    dual_dir = save(InternVideo2Model(tiny_stage2_config()), tmp_path / "dual")
    with pytest.raises(StrictLoadingError, match="matching_head"):
        InternVideo2ForRetrieval.from_pretrained(dual_dir)


# ------------------------------------------------------------------------------------------------------------------
# stage-2 video-text folder -> video classifier
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class,keep_heads", [
    (InternVideo2ForRetrieval, False), (InternVideo2Model, False), (InternVideo2ForRetrieval, True),
], ids=["retrieval", "dual-encoder", "distillation-heads"])  # fmt: skip
def test_classifier_from_stage2_folder_takes_the_vision_tower(tmp_path, model_class, keep_heads):
    torch.manual_seed(0)
    stage2 = model_class(tiny_stage2_config(keep_vision_distillation_heads=keep_heads)).eval()
    folder = save(stage2, tmp_path / "stage2")
    with pytest.raises(ValueError, match="num_labels"):
        InternVideo2ForVideoClassification.from_pretrained(folder)
    classifier = InternVideo2ForVideoClassification.from_pretrained(folder, id2label=dict(enumerate(LABELS)))
    assert classifier.config.num_labels == 3 and classifier.config.id2label[2] == "up"
    tower = stage2.internvideo2 if isinstance(stage2, InternVideo2ForRetrieval) else stage2
    backbone = tower.vision_backbone
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(classifier.internvideo2.state_dict()[key], tensor), key
    pixel_values = torch.randn(2, 4, 3, 28, 28)
    with torch.no_grad():
        expected = backbone(pixel_values).pooler_output
        torch.testing.assert_close(classifier.internvideo2(pixel_values).pooler_output, expected)
        assert classifier(pixel_values).logits.shape == (2, 3)
    # the classifier saves and reloads as an ordinary classifier folder
    again = InternVideo2ForVideoClassification.from_pretrained(save(classifier, tmp_path / "classifier"))
    assert torch.equal(again.classifier.weight, classifier.classifier.weight)


def test_classifier_from_stage2_folder_refuses_an_incomplete_tower(tmp_path):
    folder = save(InternVideo2ForRetrieval(tiny_stage2_config()), tmp_path / "stage2")
    edit_weights(folder, drop="internvideo2.vision_model.encoder.layer.0.mlp.fc1.weight")
    with pytest.raises(StrictLoadingError, match=r"internvideo2\.encoder\.layer\.0\.mlp\.fc1\.weight"):
        InternVideo2ForVideoClassification.from_pretrained(folder, num_labels=4)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "internvideo2"


def test_package_loaders_are_strict_for_transformers_classes_too(tmp_path):
    """`classify` accepts any video classifier; Transformers' own classes (VideoMAE of InternVideo v1) get the same
    check on their loading report."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from transformers_internvideo2.tasks.inference import load_video_classifier

    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, num_labels=3)  # fmt: skip
    folder = save(VideoMAEForVideoClassification(config), tmp_path / "videomae")
    model, _ = load_video_classifier(folder, device="cpu")
    assert isinstance(model, VideoMAEForVideoClassification)
    edit_weights(folder, drop="videomae.encoder.layer.0.output.dense.weight")
    with pytest.raises(StrictLoadingError, match=r"videomae\.encoder\.layer\.0\.output\.dense\.weight"):
        load_video_classifier(folder, device="cpu")

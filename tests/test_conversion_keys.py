"""Key coverage of the converter on every official single-modality layout, and its strictness.

`shared/fixtures/original/keys/s1_*.json` list, for every released single-modality checkpoint family, the key
names and shapes the ORIGINAL model has at full size. The HF model is built on the meta device (nothing is
allocated, so the 6B layouts cost nothing), the listed keys are renamed with the package converter, and every key
must land on an existing parameter of the same shape, with no parameter left over and the same parameter count.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

from transformers_internvideo2 import (
    InternVideo2ForVideoClassification,
    InternVideo2VisionConfig,
)
from transformers_internvideo2.conversion import internvideo2_vision as co
from transformers_internvideo2.conversion.core import ConversionError


REPO_ROOT = Path(__file__).resolve().parent.parent


def _fixtures_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    shared = Path(env).expanduser() if env else REPO_ROOT.parent / "shared"
    return shared / "fixtures" / "original"


FIXTURES = _fixtures_root()
KEY_FILES = sorted(path.name for path in (FIXTURES / "keys").glob("s1_*.json"))
SM01 = FIXTURES / "sm01_cls_joint_t1"
needs_keys = pytest.mark.skipif(not KEY_FILES, reason=f"key layouts not found under {FIXTURES / 'keys'}")
needs_sm01 = pytest.mark.skipif(not (SM01 / "checkpoint.pth").is_file(), reason="fixture sm01 not found")

PRESET_OF_BUILDER_SIZE = {"small": "internvideo2-s14", "base": "internvideo2-b14", "large": "internvideo2-l14",
                          "1B": "internvideo2-1b", "6B": "internvideo2-6b"}
EXPECTED_FAMILY_OF_CLASS = {"InternVideo2": "classifier", "PretrainInternVideo2": "pretrain",
                            "DistInternVideo2": "distill"}


def _layout(name: str) -> dict:
    return json.loads((FIXTURES / "keys" / name).read_text())


def _meta_state_dict(layout: dict) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in layout["state_dict"].items()}


def _check_full_coverage(state_dict, family, config, layout):
    model = co.build_model(config, family)  # meta device
    assert all(p.is_meta for p in model.parameters())
    expected = co.expected_shapes(model)
    result = co.convert_state_dict(state_dict, family, config, expected, dtype=None)
    assert result.dropped == {}
    assert set(result.state_dict) == set(expected)  # every parameter provided ...
    assert len(result.renamed) == len(state_dict)  # ... by exactly one source key each
    for our_key, tensor in result.state_dict.items():
        assert tuple(tensor.shape) == tuple(expected[our_key]), our_key
    assert sum(p.numel() for p in model.parameters()) == layout["num_parameters"]
    # the reverse renaming gives back the original names
    assert set(co.to_original_state_dict(result.state_dict, family, config)) == set(state_dict)
    return model


@needs_keys
@pytest.mark.parametrize("name", KEY_FILES)
def test_original_kwargs_cover_every_key(name):
    layout = _layout(name)
    state_dict = _meta_state_dict(layout)
    family = co.detect_family(state_dict)
    assert family == EXPECTED_FAMILY_OF_CLASS[layout["class"]]
    kwargs = layout["kwargs"]  # with the original `builder` name, which fixes the size
    config = co.make_config(state_dict, family, original_kwargs=kwargs)
    assert config.num_frames == kwargs["num_frames"]
    _check_full_coverage(state_dict, family, config, layout)


@needs_keys
@pytest.mark.parametrize("name", KEY_FILES)
def test_preset_covers_every_key(name):
    layout = _layout(name)
    state_dict = _meta_state_dict(layout)
    family = co.detect_family(state_dict)
    size = re.search(r"_(small|base|large|1B|6B)_patch14_224$", layout["kwargs"]["builder"]).group(1)
    config = co.make_config(state_dict, family, preset=PRESET_OF_BUILDER_SIZE[size])
    assert config.hidden_act == "gelu_pytorch_tanh"  # presets describe the official fused build
    assert config.num_frames == layout["kwargs"]["num_frames"]  # read from pos_embed, not assumed
    _check_full_coverage(state_dict, family, config, layout)


# ------------------------------------------------------------------------------------------------------------------
# Strictness on a real (tiny) checkpoint
# ------------------------------------------------------------------------------------------------------------------
def _sm01():
    info = json.loads((SM01 / "case.json").read_text())
    return co.load_original_checkpoint(SM01 / "checkpoint.pth"), info["constructor_kwargs"]


def _convert(state_dict, kwargs, **make_config_kwargs):
    family = co.detect_family(state_dict)
    config = co.make_config(state_dict, family, original_kwargs=kwargs, **make_config_kwargs)
    return co.convert_checkpoint(state_dict, config, family)


@needs_sm01
def test_unknown_key_is_an_error_naming_it():
    state_dict, kwargs = _sm01()
    state_dict["blocks.0.attn.rel_pos_bias"] = torch.zeros(4)
    with pytest.raises(ConversionError, match=r"blocks\.0\.attn\.rel_pos_bias"):
        _convert(state_dict, kwargs)
    state_dict, _ = _sm01()
    state_dict["some_teacher.weight"] = torch.zeros(4)  # no rule at all
    with pytest.raises(ConversionError, match=r"some_teacher\.weight"):
        _convert(state_dict, kwargs)


@needs_sm01
def test_missing_key_is_an_error_naming_it():
    state_dict, kwargs = _sm01()
    del state_dict["blocks.1.mlp.fc2.bias"]
    with pytest.raises(ConversionError, match=r"internvideo2\.encoder\.layer\.1\.mlp\.fc2\.bias"):
        _convert(state_dict, kwargs)


@needs_sm01
def test_shape_mismatch_is_an_error_naming_it():
    state_dict, kwargs = _sm01()
    state_dict["blocks.2.mlp.fc1.weight"] = torch.zeros(280, 64)
    with pytest.raises(ConversionError, match=r"blocks\.2\.mlp\.fc1\.weight.*\(280, 64\).*\(279, 64\)"):
        _convert(state_dict, kwargs)


@needs_sm01
def test_wrong_kwargs_are_errors():
    state_dict, kwargs = _sm01()
    with pytest.raises(ConversionError, match="num_frames=8"):
        _convert(state_dict, dict(kwargs, num_frames=8))
    with pytest.raises(ConversionError, match="contradicts the checkpoint"):
        _convert(state_dict, kwargs, num_frames=8)
    with pytest.raises(ConversionError, match="merge_method"):
        _convert(state_dict, dict(kwargs, merge_method="cls_avg1"))
    without_depth = {k: v for k, v in kwargs.items() if k != "depth"}
    with pytest.raises(ConversionError, match="depth"):
        _convert(state_dict, without_depth)
    with pytest.raises(ConversionError, match="image size"):
        _convert(state_dict, dict(kwargs, img_size=42))  # 1 + 4*4 rows are not 1 + t*3*3


@needs_sm01
def test_cat_variant_is_refused():
    state_dict, kwargs = _sm01()
    cat = dict(state_dict)
    cat["down_norm.running_mean"] = torch.zeros(64)
    with pytest.raises(ConversionError, match="_cat"):
        co.detect_family(cat)
    cat = dict(state_dict)
    cat["head.weight"] = torch.zeros(10, 2 * 64)  # cls_avg1: head over concatenated cls + average features
    with pytest.raises(ConversionError, match="_cat"):
        co.detect_family(cat)


@needs_sm01
def test_wrappers_prefixes_and_bf16():
    state_dict, kwargs = _sm01()
    reference, _ = _convert(state_dict, kwargs)
    for wrapped in ({"model": state_dict}, {"module": state_dict}, dict(state_dict),
                    {"module": {f"backbone.{k}": v for k, v in state_dict.items()}},
                    {"model": {f"encoder.{k}": v for k, v in state_dict.items()}}):
        model, _ = _convert(co.unwrap_state_dict(wrapped), kwargs)
        for key, tensor in model.state_dict().items():
            assert torch.equal(tensor, reference.state_dict()[key]), key
    with pytest.raises(ConversionError, match="not a tensor"):
        co.unwrap_state_dict({"epoch": 3, "cls_token": torch.zeros(1)})

    bf16 = {k: v.to(torch.bfloat16) for k, v in state_dict.items()}
    model, _ = _convert(bf16, kwargs)  # upcast to float32 by default
    for key, tensor in model.state_dict().items():
        assert tensor.dtype == torch.float32, key
        original = bf16[co.to_original_state_dict({key: tensor}, "classifier", model.config).popitem()[0]]
        assert torch.equal(tensor, original.float()), key


@needs_sm01
def test_forced_family_must_match_the_keys():
    state_dict, kwargs = _sm01()
    config = co.original_kwargs_to_config(dict(kwargs, clip_teacher_embed_dim=8), "distill", 4)
    with pytest.raises(ConversionError, match=r"head\.weight.*look like a 'classifier' checkpoint"):
        co.convert_checkpoint(state_dict, config, "distill")


@needs_sm01
def test_backbone_only_conversion_lists_dropped_keys(tmp_path):
    state_dict, kwargs = _sm01()
    config = co.original_kwargs_to_config(kwargs, "backbone", 4)
    model, result = co.convert_checkpoint(state_dict, config, "classifier", target="backbone")
    assert set(result.dropped) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert all("head" in reason for reason in result.dropped.values())
    classifier, _ = _convert(state_dict, kwargs)
    pixel_values = torch.randn(1, 4, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            model(pixel_values).pooler_output, classifier.internvideo2(pixel_values).pooler_output, atol=0, rtol=0
        )

    saved = co.convert_and_save(SM01 / "checkpoint.pth", tmp_path, original_kwargs=kwargs, backbone_only=True)
    card = (tmp_path / "README.md").read_text()
    assert saved.target == "backbone" and "`head.weight`" in card


@pytest.mark.skipif(not (FIXTURES / "sm05_distill_mlpdec_joint").is_dir(), reason="fixture sm05 not found")
@pytest.mark.parametrize("case", ["sm05_distill_mlpdec_joint", "sm06_distill_lindec_sep_index"])
def test_distill_decoder_type_read_from_tensors_when_not_given(case):
    folder = FIXTURES / case
    kwargs = json.loads((folder / "case.json").read_text())["constructor_kwargs"]
    state_dict = co.load_original_checkpoint(folder / "checkpoint.pth")
    stated = co.make_config(state_dict, "distill", original_kwargs=kwargs)
    unstated = {k: v for k, v in kwargs.items() if k != "clip_student_decoder"}
    inferred = co.make_config(state_dict, "distill", original_kwargs=unstated)
    assert inferred.clip_decoder_type == stated.clip_decoder_type
    assert inferred.clip_decoder_type == {"MLP_Decoder": "mlp", "Linear_Decoder": "linear"}[kwargs["clip_student_decoder"]]


def test_attentive_probe_round_trip():
    """No fixture holds an attentive-probing checkpoint: build one in the original layout from a random HF model
    through the reverse mapping, and check detection and conversion give it back exactly."""
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=28,
        num_frames=2, pooler_output_size=16, pooler_num_attention_heads=2, use_extra_mlp=True, num_labels=5,
    )
    torch.manual_seed(0)
    model = InternVideo2ForVideoClassification(config).eval()
    original = co.to_original_state_dict(model.state_dict(), "attentive_probe", config)
    assert {"extra_mlp.0.weight", "extra_mlp.1.fc1.weight", "extra_mlp.1.fc2.bias", "head.weight"} <= set(original)
    assert co.detect_family(original) == "attentive_probe"
    converted, _ = co.convert_checkpoint(original, config, "attentive_probe")
    pixel_values = torch.randn(1, 2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(converted(pixel_values).logits, model(pixel_values).logits, atol=0, rtol=0)


def test_not_a_single_modality_checkpoint():
    with pytest.raises(ConversionError, match="Not an InternVideo2 single-modality"):
        co.detect_family({"vision_encoder.patch_embed.proj.weight": torch.zeros(1)})

"""Conversion of BEATs checkpoints: the beats.pth cfg, strict renaming, the tied relative-bias copies, the weight-norm
tensors, the real-size key layout of the 6B stage-2 checkpoint (on the meta device), and save/load round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.conversion.beats import (
    BEATS_ORIGINAL_DEFAULTS,
    PREDICTOR_REASON,
    SHARED_BIAS_REASON,
    beats_config_from_original,
    beats_state_dict_to_original,
    convert_beats_checkpoint,
    convert_beats_state_dict,
    load_beats_checkpoint,
)
from transformers_internvideo2.models.beats import BeatsConfig, BeatsModel


REPO_ROOT = Path(__file__).resolve().parent.parent


def _fixtures() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    return (Path(env).expanduser() if env else REPO_ROOT.parent / "shared") / "fixtures" / "original"


CASE = _fixtures() / "au01_beats_tiny"
KEYS_6B = _fixtures() / "keys" / "mm_stage2_6B.json"
needs_case = pytest.mark.skipif(not (CASE / "checkpoint.pth").is_file(), reason=f"fixture not found at {CASE}")
needs_keys = pytest.mark.skipif(not KEYS_6B.is_file(), reason=f"key layout not found at {KEYS_6B}")


@pytest.fixture(scope="module")
def checkpoint():
    cfg, state_dict = load_beats_checkpoint(CASE / "checkpoint.pth")
    return cfg, state_dict


def _expected(config: BeatsConfig, prefix: str = "") -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = BeatsModel(config)
    return {prefix + name: tensor.shape for name, tensor in model.state_dict().items()}


# ------------------------------------------------------------------------------------------------------------------
# cfg
# ------------------------------------------------------------------------------------------------------------------
def test_missing_cfg_keys_take_the_original_defaults():
    config = beats_config_from_original({"input_patch_size": 16})
    assert config.hidden_dropout == BEATS_ORIGINAL_DEFAULTS["dropout"] == 0.1
    assert config.max_distance == 1280 and not config.deep_norm and not config.relative_position_embedding
    assert config.layer_wise_gradient_decay_ratio == 1.0 and config.layerdrop == 0.0
    assert config.num_mel_bins == 64


def test_bad_cfgs_are_errors():
    with pytest.raises(ConversionError, match="Unknown BEATs cfg key"):
        beats_config_from_original({"input_patch_size": 16, "encoder_width": 3})
    with pytest.raises(ConversionError, match="glu"):
        beats_config_from_original({"input_patch_size": 16, "activation_fn": "glu"})
    with pytest.raises(ConversionError, match="valid configuration"):
        beats_config_from_original({})  # the original default patch size is -1
    with pytest.raises(ConversionError, match="dict"):
        beats_config_from_original([("input_patch_size", 16)])


@needs_keys
def test_the_preset_is_the_assumed_iter3_cfg_of_the_key_layout():
    assumed = json.loads(KEYS_6B.read_text())["assumed_beats_cfg"]
    assert beats_config_from_original(assumed).to_diff_dict() == BeatsConfig.from_preset("beats-iter3").to_diff_dict()
    assert BeatsConfig().to_diff_dict() == BeatsConfig.from_preset("beats-iter3").to_diff_dict()


# ------------------------------------------------------------------------------------------------------------------
# The real-size layout (keys/mm_stage2_6B.json): every audio_encoder.* key maps, on the meta device
# ------------------------------------------------------------------------------------------------------------------
@needs_keys
def test_6b_stage2_audio_encoder_layout_maps_completely():
    layout = json.loads(KEYS_6B.read_text())["state_dict"]
    audio = {k: torch.empty(shape, device="meta") for k, shape in layout.items() if k.startswith("audio_encoder.")}
    assert len(audio) == 250
    config = BeatsConfig.from_preset("beats-iter3")
    expected = _expected(config, "audio_encoder.")
    result = convert_beats_state_dict(
        audio, config, expected, source_prefix="audio_encoder.", target_prefix="audio_encoder."
    )
    assert set(result.state_dict) == set(expected)  # nothing missing, nothing extra, every shape checked
    assert len(result.dropped) == 11 and set(result.dropped.values()) == {SHARED_BIAS_REASON}
    original_parameters = sum(t.numel() for t in audio.values())
    ours = sum(t.numel() for t in result.state_dict.values())
    assert round(original_parameters / 1e6, 2) == 90.35  # the figure of the spec (11 tied copies counted)
    assert original_parameters - ours == 11 * 320 * 12


@needs_keys
def test_keys_outside_the_prefix_are_an_error():
    config = BeatsConfig.from_preset("beats-iter3")
    with pytest.raises(ConversionError, match="outside the BEATs prefix"):
        convert_beats_state_dict({"audio_proj.weight": torch.empty(768, 768, device="meta")}, config,
                                 source_prefix="audio_encoder.")  # fmt: skip


# ------------------------------------------------------------------------------------------------------------------
# Strictness on the real fixture checkpoint
# ------------------------------------------------------------------------------------------------------------------
@needs_case
def test_strict_errors_name_the_keys(checkpoint):
    cfg, state_dict = checkpoint
    config = beats_config_from_original(cfg)
    expected = _expected(config)

    extra = {**state_dict, "encoder.layers.0.self_attn.bias_k": torch.zeros(1, 1, 64)}
    with pytest.raises(ConversionError, match="bias_k"):
        convert_beats_state_dict(extra, config, expected)

    missing = {k: v for k, v in state_dict.items() if k != "encoder.layers.2.fc2.weight"}
    with pytest.raises(ConversionError, match=r"encoder\.layers\.2\.feed_forward\.fc2\.weight"):
        convert_beats_state_dict(missing, config, expected)

    wrong_shape = {**state_dict, "encoder.pos_conv.0.weight_v": torch.zeros(64, 8, 128)}
    with pytest.raises(ConversionError, match="weight_v.*checkpoint \\(64, 8, 128\\)"):
        convert_beats_state_dict(wrong_shape, config, expected)

    untied = dict(state_dict)
    untied["encoder.layers.2.self_attn.relative_attention_bias.weight"] = torch.zeros(320, 4)
    with pytest.raises(ConversionError, match="differs from encoder.layers.0"):
        convert_beats_state_dict(untied, config, expected)

    orphan = {k: v for k, v in state_dict.items() if k != "encoder.layers.0.self_attn.relative_attention_bias.weight"}
    with pytest.raises(ConversionError, match="tied to"):
        convert_beats_state_dict(orphan, config, expected)


@needs_case
def test_wrappers_and_heads(checkpoint, tmp_path):
    cfg, state_dict = checkpoint
    with pytest.raises(ConversionError, match="beats.pth format"):
        convert_beats_checkpoint({"module": state_dict})
    torch.save({"cfg": cfg, "model": {"x": 1}}, tmp_path / "bad.pth")
    with pytest.raises(ConversionError, match="not tensors"):
        convert_beats_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError):
        convert_beats_checkpoint(tmp_path / "missing.pth")
    # a fine-tuned BEATs' AudioSet head is dropped with its reason
    with_head = {**state_dict, "predictor.weight": torch.zeros(527, 64), "predictor.bias": torch.zeros(527)}
    _, result = convert_beats_checkpoint({"cfg": {**cfg, "finetuned_model": True}, "model": with_head})
    assert result.dropped["predictor.weight"] == PREDICTOR_REASON


@needs_case
def test_weight_norm_tensors_are_kept_and_recombined_exactly(checkpoint):
    cfg, state_dict = checkpoint
    model, _ = convert_beats_checkpoint({"cfg": cfg, "model": state_dict})
    conv = model.encoder.pos_conv_embed.conv
    assert torch.equal(conv.parametrizations.weight.original0, state_dict["encoder.pos_conv.0.weight_g"])
    assert torch.equal(conv.parametrizations.weight.original1, state_dict["encoder.pos_conv.0.weight_v"])
    g, v = state_dict["encoder.pos_conv.0.weight_g"], state_dict["encoder.pos_conv.0.weight_v"]
    torch.testing.assert_close(conv.weight, v * g / v.norm(dim=(0, 1), keepdim=True))
    # a checkpoint written with PyTorch's parametrisation names converts to the same model
    renamed = {
        k.replace("pos_conv.0.weight_g", "pos_conv.0.parametrizations.weight.original0").replace(
            "pos_conv.0.weight_v", "pos_conv.0.parametrizations.weight.original1"
        ): v
        for k, v in state_dict.items()
    }
    other, _ = convert_beats_checkpoint({"cfg": cfg, "model": renamed})
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name


@needs_case
def test_round_trip_to_original_names(checkpoint):
    cfg, state_dict = checkpoint
    model, _ = convert_beats_checkpoint({"cfg": cfg, "model": state_dict})
    back = beats_state_dict_to_original(model.state_dict(), model.config)
    assert set(back) == set(state_dict)
    for key, tensor in state_dict.items():
        assert torch.equal(back[key], tensor), key


@needs_case
def test_save_pretrained_round_trip(checkpoint, tmp_path):
    cfg, state_dict = checkpoint
    model, _ = convert_beats_checkpoint({"cfg": cfg, "model": state_dict})
    model.save_pretrained(tmp_path)
    reloaded = BeatsModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.to_diff_dict() == model.config.to_diff_dict()
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name
    features = torch.randn(2, 160, 64)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(features).last_hidden_state, model(features).last_hidden_state,
                                   rtol=0, atol=0)  # fmt: skip

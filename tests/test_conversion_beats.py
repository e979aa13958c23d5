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


# ------------------------------------------------------------------------------------------------------------------
# The folder export: `--family beats` (script / `internvideo2 convert`)
# ------------------------------------------------------------------------------------------------------------------
AU02 = _fixtures() / "au02_stage2_av_tiny"
needs_au02 = pytest.mark.skipif(not (AU02 / "checkpoint.pth").is_file(), reason=f"fixture not found at {AU02}")


def _assert_same_weights(folder: Path, reference: BeatsModel):
    from transformers import AutoModel

    loaded = AutoModel.from_pretrained(folder)
    saving_only = ("architectures", "auto_map", "dtype")  # written by save_pretrained
    loaded_config = {k: v for k, v in loaded.config.to_diff_dict().items() if k not in saving_only}
    assert type(loaded) is BeatsModel
    assert loaded_config == {k: v for k, v in reference.config.to_diff_dict().items() if k not in saving_only}
    reference_state = reference.state_dict()
    assert set(loaded.state_dict()) == set(reference_state)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference_state[name]), name


@needs_case
def test_family_beats_writes_model_and_feature_extractor(checkpoint, tmp_path, capsys):
    from transformers import AutoFeatureExtractor

    from transformers_internvideo2.conversion.families import main as convert_main
    from transformers_internvideo2.models.beats import BeatsFeatureExtractor

    output = tmp_path / "beats"
    argv = ["--family", "beats", "--checkpoint", str(CASE / "checkpoint.pth"), "--output", str(output)]
    assert convert_main(argv) == 0
    assert "(beats.pth)" in capsys.readouterr().out
    reference, _ = convert_beats_checkpoint(CASE / "checkpoint.pth")
    _assert_same_weights(output, reference)
    extractor = AutoFeatureExtractor.from_pretrained(output)
    assert type(extractor) is BeatsFeatureExtractor
    assert extractor.to_dict() == {**BeatsFeatureExtractor().to_dict(), "auto_map": extractor.auto_map}
    # a cfg-carrying beats.pth refuses a second source of sizes
    assert convert_main(["--family", "beats", "--checkpoint", str(CASE / "checkpoint.pth"), "--output",
                         str(tmp_path / "x"), "--preset", "beats-iter3"]) == 1  # fmt: skip
    assert "carries its own cfg" in capsys.readouterr().err


@needs_au02
def test_family_beats_extracts_the_audio_encoder_of_a_stage2_checkpoint(tmp_path, capsys):
    from transformers_internvideo2.conversion.beats import NOT_AUDIO_REASON, convert_and_save_beats, main

    # without a cfg the sizes are unknown: a clear error, no folder
    assert main(["--checkpoint", str(AU02 / "checkpoint.pth"), "--output", str(tmp_path / "none")]) == 1
    assert "carries no BEATs cfg" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()

    saved = convert_and_save_beats(AU02 / "checkpoint.pth", tmp_path / "audio", beats_cfg=AU02 / "beats.pth")
    assert saved.source == "stage2"
    # the tiny stage-2 model was trained with a frozen audio encoder: its audio_encoder.* equal beats.pth
    reference, _ = convert_beats_checkpoint(AU02 / "beats.pth")
    _assert_same_weights(tmp_path / "audio", reference)
    not_audio = {key for key, reason in saved.result.dropped.items() if reason == NOT_AUDIO_REASON}
    assert not_audio and all(not key.startswith("audio_encoder.") for key in not_audio)
    assert {key.split(".")[0] for key in not_audio} >= {"vision_encoder", "text_encoder", "audio_proj", "atm_head"}
    tied = [key for key, reason in saved.result.dropped.items() if reason == SHARED_BIAS_REASON]
    assert tied == ["audio_encoder.encoder.layers.1.self_attn.relative_attention_bias.weight"]


def test_family_beats_rejects_unrelated_checkpoints(tmp_path):
    from transformers_internvideo2.conversion.beats import convert_and_save_beats

    torch.save({"model": {"vision_encoder.patch_embed.weight": torch.zeros(2, 3)}}, tmp_path / "video.pth")
    with pytest.raises(ConversionError, match="neither a beats.pth"):
        convert_and_save_beats(tmp_path / "video.pth", tmp_path / "out", preset="beats-iter3")
    with pytest.raises(ConversionError, match="dtype"):
        convert_and_save_beats(tmp_path / "video.pth", tmp_path / "out", dtype="int8")

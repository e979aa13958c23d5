"""VideoMAE v1 classifiers of InternVideo (v1) in Transformers' VideoMAE: parity with the ORIGINAL code on fixture
`v102_videomae_v1_tiny` (48 px / 4 frames: the 224/16 sinusoid table resized bicubic then linear), every saved output
within 1e-5 with eager and SDPA attention; the released key layouts (`keys/v1_videomae_{B,L,H}_ft_k400.json`) map
completely; the weights load into Transformers' own `VideoMAEForVideoClassification`; what differs from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForVideoClassification, VideoMAEConfig, VideoMAEForVideoClassification

from transformers_internvideo2.conversion.core import ConversionError, load_original_checkpoint
from transformers_internvideo2.conversion.families import main as convert_main
from transformers_internvideo2.conversion.videomae_v1 import (
    convert_videomae_v1_state_dict,
    videomae_v1_config_from_state_dict,
)
from transformers_internvideo2.models.videomae_v1 import (
    InternVideoMAEConfig,
    InternVideoMAEForVideoClassification,
    videomae_v1_position_table,
)


REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


FIXTURES = _shared_root() / "fixtures" / "original"
CASE = FIXTURES / "v102_videomae_v1_tiny"
needs_fixture = pytest.mark.skipif(not (CASE / "case.json").is_file(), reason=f"fixture not found at {CASE}")


def _case_model() -> tuple[InternVideoMAEForVideoClassification, dict]:
    kwargs = json.loads((CASE / "case.json").read_text())["constructor_kwargs"]
    state_dict = load_original_checkpoint(CASE / "checkpoint.pth")
    config = videomae_v1_config_from_state_dict(state_dict, kwargs["img_size"], kwargs["all_frames"],
                                                num_attention_heads=kwargs["num_heads"])  # fmt: skip
    model = InternVideoMAEForVideoClassification(config).eval()
    model.load_state_dict(convert_videomae_v1_state_dict(state_dict, config).state_dict, strict=True)
    return model, state_dict


@needs_fixture
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_v102_every_output_matches_the_original(attention):
    model, _ = _case_model()
    model.set_attn_implementation(attention)
    pixel_values = load_file(str(CASE / "inputs.safetensors"))["pixel_values"].transpose(1, 2)
    reference = load_file(str(CASE / "outputs.safetensors"))
    fc_norm_inputs = []
    model.fc_norm.register_forward_hook(lambda m, i, o: fc_norm_inputs.append(o))
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True)
    source = InternVideoMAEConfig(hidden_size=model.config.hidden_size)
    ours = {
        "logits": out.logits,
        "fc_norm_out": fc_norm_inputs[0],
        "embeddings": out.hidden_states[0],
        "pos_embed_used": model.videomae.embeddings.position_embeddings,
        "pos_embed_sinusoid_224x16": videomae_v1_position_table(source),
        **{f"hidden_states.block{i}": state for i, state in enumerate(out.hidden_states[1:])},
    }
    assert sorted(ours) == sorted(reference)
    for name, expected in reference.items():
        diff = (ours[name] - expected).abs().max().item()
        assert diff <= 1e-5, f"{name}: {diff:.2e}"


@needs_fixture
def test_v102_differs_from_a_recomputed_sinusoid_table():
    """The trap: Transformers' VideoMAE recomputes the table for the new grid, which is not what the model learned."""
    model, _ = _case_model()
    plain = VideoMAEForVideoClassification(VideoMAEConfig(**{
        k: v for k, v in model.config.to_dict().items() if k in VideoMAEConfig.__dataclass_fields__}))  # fmt: skip
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=True), None
    assert unexpected is None and not missing.missing_keys  # same keys: the weights are Transformers' VideoMAE
    plain.eval()
    pixel_values = load_file(str(CASE / "inputs.safetensors"))["pixel_values"].transpose(1, 2)
    reference = load_file(str(CASE / "outputs.safetensors"))["logits"]
    with torch.no_grad():
        assert (plain(pixel_values).logits - reference).abs().max() > 1e-3


def test_table_is_transformers_at_the_source_grid_and_resized_otherwise():
    same = InternVideoMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    torch.testing.assert_close(videomae_v1_position_table(same), get_sinusoid_encoding_table(1568, 32), atol=1e-7, rtol=0)
    h = InternVideoMAEConfig(hidden_size=32, num_attention_heads=2, image_size=384, num_frames=32)
    assert videomae_v1_position_table(h).shape == (1, 16 * 24 * 24, 32)
    with pytest.raises(Exception, match="multiple of 16"):
        InternVideoMAEConfig(image_size=200)


@needs_fixture
@pytest.mark.parametrize("size", ["B", "L", "H"])
def test_released_layouts_map_completely(size):
    layout = json.loads((FIXTURES / "keys" / f"v1_videomae_{size}_ft_k400.json").read_text())
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in layout["state_dict"].items()}
    config = videomae_v1_config_from_state_dict(state_dict, **({"image_size": 384, "num_frames": 32} if size == "H" else {}))
    result = convert_videomae_v1_state_dict(state_dict, config)
    with torch.device("meta"):
        model = InternVideoMAEForVideoClassification(config)
    assert set(result.state_dict) == set(model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == layout["num_parameters"]
    assert config.num_labels == 400 and config.layer_norm_eps == 1e-6


@needs_fixture
def test_cli_folder_loads_with_auto_class(tmp_path):
    kwargs = json.loads((CASE / "case.json").read_text())["constructor_kwargs"]
    # the tiny fixture's width (48) is not a released size: the converter refuses to guess its heads
    assert convert_main(["--family", "videomae-v1", "--checkpoint", str(CASE / "checkpoint.pth"),
                         "--output", str(tmp_path), "--image-size", "48", "--num-frames", "4"]) == 1  # fmt: skip
    model, state_dict = _case_model()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForVideoClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, InternVideoMAEForVideoClassification)
    assert torch.equal(loaded.videomae.embeddings.position_embeddings, model.videomae.embeddings.position_embeddings)
    pixel_values = torch.randn(1, kwargs["all_frames"], 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, model(pixel_values).logits)
    bad = dict(state_dict, **{"pos_embed": torch.zeros(1, 18, 48)})
    with pytest.raises(ConversionError, match="pos_embed"):
        convert_videomae_v1_state_dict(bad, model.config)

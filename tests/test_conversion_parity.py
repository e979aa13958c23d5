"""Numerical parity of converted single-modality checkpoints with the ORIGINAL implementation.

Every `sm*` fixture case (see shared/fixtures/original/README.md) holds a checkpoint with the original key names,
inputs and the original model's outputs and intermediates. Each case is converted with the package converter from
`case.json["constructor_kwargs"]`, run in float32 eval mode, and EVERY saved tensor is compared at 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2.conversion import internvideo2_vision as co


REPO_ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5


def _fixtures_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    shared = Path(env).expanduser() if env else REPO_ROOT.parent / "shared"
    return shared / "fixtures" / "original"


FIXTURES = _fixtures_root()
SM_CASES = sorted(path.name for path in FIXTURES.glob("sm*") if (path / "case.json").is_file())
EXPECTED_FAMILIES = {
    "sm01_cls_joint_t1": "classifier",
    "sm02_cls_sep_t2": "classifier",
    "sm03_pretrain_joint_mask": "pretrain",
    "sm04_pretrain_sep_t2_final0": "pretrain",
    "sm05_distill_mlpdec_joint": "distill",
    "sm06_distill_lindec_sep_index": "distill",
}
# (case, outputs file, hidden_act): the fixtures use the pure-PyTorch path (exact GELU); sm01 also stores the
# tanh-GELU outputs that the official fused MLP computes.
VARIANTS = [(case, "outputs.safetensors", "gelu") for case in SM_CASES] + [
    (case, "outputs_fused_mlp_tanh_gelu.safetensors", "gelu_pytorch_tanh")
    for case in SM_CASES
    if (FIXTURES / case / "outputs_fused_mlp_tanh_gelu.safetensors").is_file()
]

needs_fixtures = pytest.mark.skipif(not SM_CASES, reason=f"reference fixtures not found under {FIXTURES}")


def _convert_case(case: str, hidden_act: str | None = None, attn_implementation: str = "eager"):
    folder = FIXTURES / case
    info = json.loads((folder / "case.json").read_text())
    state_dict = co.load_original_checkpoint(folder / "checkpoint.pth")
    family = co.detect_family(state_dict)
    kwargs = info["constructor_kwargs"]
    num_frames = co.infer_num_frames(state_dict, kwargs["img_size"], kwargs["patch_size"])
    overrides = {"hidden_act": hidden_act} if hidden_act else {}
    config = co.original_kwargs_to_config(kwargs, family, num_frames, **overrides)
    model, result = co.convert_checkpoint(state_dict, config, family)
    model.set_attn_implementation(attn_implementation)
    return model, family, result


def _run_case(model, family: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """All tensors the fixture stores, under the fixture's names, from one forward per mask setting."""
    # the fixtures hold [B, C, T, H, W] videos; our models take [B, T, C, H, W]
    pixel_values = inputs["pixel_values"].transpose(1, 2)
    got: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if family in ("classifier", "attentive_probe"):
            captured = {}
            hooks = [
                model.internvideo2.pooler.register_forward_hook(lambda m, a, out: captured.update(pool=out[0])),
                model.fc_norm.register_forward_hook(lambda m, a, out: captured.update(fc_norm=out)),
            ]
            try:
                outputs = model(pixel_values, output_hidden_states=True)
            finally:
                for hook in hooks:
                    hook.remove()
            got.update(logits=outputs.logits, clip_projector_out=captured["pool"], fc_norm_out=captured["fc_norm"])
        else:
            mask = inputs["bool_masked_pos"]
            outputs = model(pixel_values, bool_masked_pos=mask, output_hidden_states=True)
            got.update(
                x_clip_align=outputs.clip_aligned, x_align=outputs.clip_final_aligned,
                clip_projector_out=outputs.pooler_output,
            )
            if outputs.mae_aligned is not None:
                got["x_mae_align"] = outputs.mae_aligned
            # the original classes have no mask=None path: "all visible" is an all-False mask
            visible = model(pixel_values, bool_masked_pos=torch.zeros_like(mask))
            got["allvisible.x_clip_align"] = visible.clip_aligned
            got["allvisible.x_align"] = visible.clip_final_aligned
            if visible.mae_aligned is not None:
                got["allvisible.x_mae_align"] = visible.mae_aligned
        hidden_states = outputs.hidden_states
        got["embeddings"] = hidden_states[0]
        for index, state in enumerate(hidden_states[1:]):
            got[f"hidden_states.block{index}"] = state
    return got


def _compare(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, float]:
    unchecked = sorted(set(expected) - set(got))
    assert not unchecked, f"fixture outputs the test does not reproduce: {unchecked}"
    diffs = {}
    for name, reference in expected.items():
        assert got[name].shape == reference.shape, f"{name}: shape {tuple(got[name].shape)} != {tuple(reference.shape)}"
        diffs[name] = (got[name].float() - reference).abs().max().item()
    failing = {name: diff for name, diff in diffs.items() if not diff <= ATOL}
    assert not failing, f"outputs beyond {ATOL}: {failing}"
    return diffs


@needs_fixtures
@pytest.mark.parametrize("case", SM_CASES)
def test_family_detection(case):
    state_dict = co.load_original_checkpoint(FIXTURES / case / "checkpoint.pth")
    assert co.detect_family(state_dict) == EXPECTED_FAMILIES[case]


@needs_fixtures
@pytest.mark.parametrize("case,outputs_file,hidden_act", VARIANTS, ids=[f"{c}-{a}" for c, _, a in VARIANTS])
def test_parity_with_original(case, outputs_file, hidden_act):
    folder = FIXTURES / case
    model, family, result = _convert_case(case, hidden_act)
    assert model.config.hidden_act == hidden_act
    assert result.dropped == {}  # the original files carry nothing our models lack
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / outputs_file))
    diffs = _compare(_run_case(model, family, inputs), expected)
    assert "embeddings" in diffs and any(name.startswith("hidden_states.block") for name in diffs)


@needs_fixtures
def test_tanh_gelu_fixture_is_distinguishable():
    """The tanh-GELU reference differs from the exact one by more than our tolerance's resolution, so the two
    parity runs above really check which activation the converted config selects."""
    folder = FIXTURES / "sm01_cls_joint_t1"
    exact = load_file(str(folder / "outputs.safetensors"))["logits"]
    tanh = load_file(str(folder / "outputs_fused_mlp_tanh_gelu.safetensors"))["logits"]
    model, family, _ = _convert_case("sm01_cls_joint_t1", "gelu")
    got = _run_case(model, family, load_file(str(folder / "inputs.safetensors")))["logits"]
    assert (got - exact).abs().max() < (got - tanh).abs().max()
    assert (exact - tanh).abs().max() > 5e-6


@needs_fixtures
@pytest.mark.parametrize("case", SM_CASES)
def test_eager_and_sdpa_agree(case):
    folder = FIXTURES / case
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "outputs.safetensors"))
    eager_model, family, _ = _convert_case(case, attn_implementation="eager")
    sdpa_model, _, _ = _convert_case(case, attn_implementation="sdpa")
    assert sdpa_model.config._attn_implementation == "sdpa"
    eager, sdpa = _run_case(eager_model, family, inputs), _run_case(sdpa_model, family, inputs)
    _compare(sdpa, expected)
    for name in eager:
        torch.testing.assert_close(sdpa[name], eager[name], atol=ATOL, rtol=0)


@needs_fixtures
def test_original_fused_kwargs_select_tanh_gelu():
    """`use_fused_mlp=True` (the official setting) -> tanh GELU; the fixture's pure path -> exact GELU."""
    kwargs = json.loads((FIXTURES / "sm01_cls_joint_t1" / "case.json").read_text())["constructor_kwargs"]
    assert co.original_kwargs_to_config(kwargs, "classifier", 4).hidden_act == "gelu"
    fused = dict(kwargs, use_fused_mlp=True, use_flash_attn=True, use_fused_rmsnorm=True)
    assert co.original_kwargs_to_config(fused, "classifier", 4).hidden_act == "gelu_pytorch_tanh"


@needs_fixtures
def test_cli_end_to_end(tmp_path):
    """Run the script on sm01, reload the folder through the Auto classes, reproduce the original logits."""
    from transformers import AutoConfig, AutoModelForVideoClassification

    import transformers_internvideo2  # noqa: F401  (registers the Auto classes)

    folder = FIXTURES / "sm01_cls_joint_t1"
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(json.loads((folder / "case.json").read_text())["constructor_kwargs"]))
    out_dir = tmp_path / "converted"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT / "src"))
    process = subprocess.run(
        [sys.executable, str(REPO_ROOT / "conversion" / "convert_internvideo2_to_hf.py"),
         "--checkpoint", str(folder / "checkpoint.pth"), "--output", str(out_dir),
         "--original-kwargs", str(kwargs_file)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert process.returncode == 0, process.stderr
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (out_dir / name).is_file(), name
    try:
        import transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2  # noqa: F401
    except ImportError:
        pass
    else:
        processor_config = json.loads((out_dir / "video_preprocessor_config.json").read_text())
        assert processor_config["num_frames"] == 4
    card = (out_dir / "README.md").read_text()
    assert co.file_sha256(folder / "checkpoint.pth") in card and "classifier" in card

    assert AutoConfig.from_pretrained(out_dir).hidden_act == "gelu"
    model = AutoModelForVideoClassification.from_pretrained(out_dir).eval()
    inputs = load_file(str(folder / "inputs.safetensors"))
    with torch.no_grad():
        logits = model(inputs["pixel_values"].transpose(1, 2)).logits
    expected = load_file(str(folder / "outputs.safetensors"))["logits"]
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)


@needs_fixtures
def test_cli_reports_contradicting_num_frames(tmp_path):
    folder = FIXTURES / "sm01_cls_joint_t1"
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps(json.loads((folder / "case.json").read_text())["constructor_kwargs"]))
    exit_code = co.main(["--checkpoint", str(folder / "checkpoint.pth"), "--output", str(tmp_path / "out"),
                         "--original-kwargs", str(kwargs_file), "--num-frames", "8"])
    assert exit_code == 1
    assert not (tmp_path / "out" / "model.safetensors").exists()


@needs_fixtures
@pytest.mark.parametrize("case", ["sm03_pretrain_joint_mask", "sm06_distill_lindec_sep_index"])
def test_backbone_only_export_of_students_matches_original(case):
    """A stage-1/distilled student exported without its alignment heads still gives the original's encoder
    states and pooled feature (on the same masked input)."""
    folder = FIXTURES / case
    kwargs = json.loads((folder / "case.json").read_text())["constructor_kwargs"]
    state_dict = co.load_original_checkpoint(folder / "checkpoint.pth")
    config = co.make_config(state_dict, "backbone", original_kwargs=kwargs)
    model, result = co.convert_checkpoint(state_dict, config, co.detect_family(state_dict), target="backbone")
    assert result.dropped and all(key.startswith(("clip_", "final_clip_", "mae_")) for key in result.dropped)
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "outputs.safetensors"))
    with torch.no_grad():
        outputs = model(inputs["pixel_values"].transpose(1, 2), bool_masked_pos=inputs["bool_masked_pos"],
                        output_hidden_states=True)
    got = {"clip_projector_out": outputs.pooler_output, "embeddings": outputs.hidden_states[0]}
    got.update({f"hidden_states.block{i}": state for i, state in enumerate(outputs.hidden_states[1:])})
    _compare(got, {name: expected[name] for name in got})

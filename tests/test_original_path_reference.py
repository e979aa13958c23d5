"""`benchmarks/original_path.py`, the baseline of `benchmark_original.py`, computes what the original computes.

It is checked against the fixture made by running the original classifier (logits and every intermediate at 1e-5),
and on shared weights against ours: our eager setting follows the original's order of operations, so in float32 and
in bfloat16 it must give the original's bits, and the sdpa setting the same function to rounding.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2.conversion import internvideo2_vision as conversion

from benchmark_scripts import load_benchmark


original_path = load_benchmark("original_path")
benchmark_original = load_benchmark("benchmark_original")
ATOL = 1e-5


def test_the_rebuild_reproduces_the_original_classifier_fixture(fixtures_dir):
    case = fixtures_dir / "sm01_cls_joint_t1"
    if not (case / "checkpoint.pth").is_file():
        pytest.skip("fixture sm01 not found")
    kwargs = json.loads((case / "case.json").read_text())["constructor_kwargs"]
    model = original_path.from_original_kwargs(kwargs).eval()
    model.load_state_dict(conversion.load_original_checkpoint(case / "checkpoint.pth"), strict=True)
    expected = load_file(case / "outputs.safetensors")
    captured = {}
    for index, block in enumerate(model.blocks):
        block.register_forward_hook(lambda m, i, o, index=index: captured.__setitem__(f"hidden_states.block{index}", o))
    model.clip_projector.register_forward_hook(lambda m, i, o: captured.__setitem__("clip_projector_out", o))
    model.fc_norm.register_forward_hook(lambda m, i, o: captured.__setitem__("fc_norm_out", o))
    with torch.no_grad():
        captured["logits"] = model(load_file(case / "inputs.safetensors")["pixel_values"])
    compared = [name for name in expected if name in captured]
    assert "logits" in compared and len(compared) == len(expected) - 1  # all but `embeddings` (no hook point)
    for name in compared:
        torch.testing.assert_close(captured[name], expected[name], atol=ATOL, rtol=0, msg=name)


def test_settings_outside_the_rebuild_are_refused():
    kwargs = dict(embed_dim=32, depth=1, num_heads=4, mlp_ratio=4.0, num_frames=2, img_size=28, init_values=1e-5)
    original_path.from_original_kwargs(kwargs)  # the official settings
    for name, value in [("sep_pos_embed", True), ("qkv_bias", True), ("use_fused_mlp", True), ("init_values", 0.0)]:
        with pytest.raises(ValueError, match=name):
            original_path.from_original_kwargs({**kwargs, name: value})


@pytest.fixture(scope="module")
def pair():
    return benchmark_original.build_pair("tiny", frames=4, num_classes=5, device=torch.device("cpu"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_our_eager_setting_gives_the_original_bits_on_the_same_weights(pair, dtype):
    ours, original, config = pair
    ours, original = ours.to(dtype), original.to(dtype)
    video = torch.randn(2, config.num_frames, 3, config.image_size, config.image_size).to(dtype)
    ours.set_attn_implementation("eager")
    with torch.inference_mode():
        expected = original(video.permute(0, 2, 1, 3, 4))
        assert torch.equal(ours(pixel_values=video).logits, expected)
        ours.set_attn_implementation("sdpa")
        sdpa = ours(pixel_values=video).logits
    tolerance = dict(atol=ATOL, rtol=1e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(sdpa, expected, **tolerance)


def test_the_benchmark_runs_every_mode_and_reports_speedups(tmp_path):
    out = tmp_path / "original.json"
    argv = ["--models", "tiny", "--rounds", "2", "--passes", "1", "--matmul-size", "256", "--json", str(out)]
    report = benchmark_original.main(argv, log=lambda *a: None)
    assert json.loads(out.read_text())["results"] == json.loads(json.dumps(report["results"]))
    assert [row["mode"] for row in report["results"]] == ["fp32", "bf16", "autocast-bf16"]
    for row in report["results"]:
        assert row["original_median_s"] > 0 and len(row["original_per_round_s"]) == 2
        # the ceiling is the original's time over the time of its FLOPs at the peak measured in the same run
        peak = report["matmul_peak_flops_per_second"]["fp32" if row["mode"] == "fp32" else "bf16"]
        assert row["largest_possible_speedup"] == pytest.approx(row["original_median_s"] * peak / row["flops_per_forward"])
        for attn in ("sdpa", "eager"):
            speedup = row["ours"][attn]["speedup_over_original"]
            assert len(speedup["per_round"]) == 2 and speedup["min"] <= speedup["median"] <= speedup["max"]
        assert row["ours"]["eager"]["max_abs_logit_difference"] == 0 or row["mode"] == "autocast-bf16"

"""Smoke tests of `benchmarks/benchmark_vision.py` on a tiny model: it runs end to end and its FLOP count is right.

Nothing here asserts a speed; the numbers only have to be measurements (positive, finite).
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode


SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "benchmark_vision.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_vision", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the file executes
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


FAST = ["--device", "cpu", "--warmup", "0", "--repeats", "1", "--matmul-size", "256"]


def test_main_runs_every_combination_on_tiny_model(bench, tmp_path, capsys):
    out = tmp_path / "result.json"
    report = bench.main(["--models", "tiny", "--frames", "4", "8", "--json", str(out), *FAST])

    rows = report["results"]
    combos = {(r["attn_implementation"], r["dtype"], r["frames"]) for r in rows}
    assert combos == {(a, d, f) for a in ("eager", "sdpa") for d in ("fp32", "bf16") for f in (4, 8)}
    for row in rows:
        assert row["status"] == "ok", row
        assert row["latency_median_s"] > 0 and len(row["latencies_s"]) == 1
        assert row["clips_per_second"] > 0
        assert row["flops_per_clip"] > 0 and row["achieved_flops_per_second"] > 0
        assert row["peak_memory_bytes"] > 0 and row["forward_memory_bytes"] >= 0
        assert row["tokens"] == 1 + row["frames"] * 2 * 2  # 28 px / patch 14 -> 2x2 patches per frame
    assert all(peak > 0 for peak in report["matmul_peak_flops_per_second"].values())

    # the JSON file holds the same report, and is strict JSON (no Infinity/NaN)
    written = json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    assert len(written["results"]) == len(rows)

    printed = capsys.readouterr().out
    assert "median ms" in printed and "clips/s" in printed
    assert printed.count("\ntiny ") == len(rows)  # one table line per combination


def test_config_json_model_and_batch(bench, tmp_path):
    config_path = tmp_path / "small.json"
    config_path.write_text(json.dumps({**bench.TINY_CONFIG, "num_hidden_layers": 1, "hidden_size": 48}))
    report = bench.main(
        ["--models", "tiny", "--config-json", str(config_path), "--dtypes", "fp32", "--attn", "sdpa",
         "--frames", "4", "--batch-size", "2", *FAST]
    )
    custom = [r for r in report["results"] if r["model"] == str(config_path)]
    assert len(custom) == 1 and custom[0]["status"] == "ok" and custom[0]["batch_size"] == 2
    assert custom[0]["clips_per_second"] == pytest.approx(2 / custom[0]["latency_median_s"])


def test_max_seconds_skips_with_estimate(bench):
    report = bench.main(["--models", "tiny", "--dtypes", "fp32", "--attn", "eager", "--max-seconds", "0", *FAST])
    assert report["results"], "skipped combinations must still be reported"
    for row in report["results"]:
        assert row["status"].startswith("skipped (estimated ") and row["status"].endswith(" s)")
        assert row["estimated_seconds"] > 0 and row["latency_median_s"] is None


@pytest.mark.parametrize("frames", [1, 4, 8])
def test_analytic_flops_match_flop_counter(bench, frames):
    # Eager attention runs every product through aten matmuls, which FlopCounterMode counts exactly.
    model = bench.build_model("tiny", torch.float32, "eager", torch.device("cpu"))
    pixel_values = torch.randn(2, frames, 3, 28, 28)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values, interpolate_pos_encoding=frames != model.config.num_frames)
    assert counter.get_total_flops() == 2 * bench.forward_flops(model.config, frames)["total"]


def test_one_billion_flop_count_is_plausible(bench):
    # ~1.0e9 parameters, ~2 FLOPs per parameter per token, plus attention: a sanity check of the preset wiring.
    config = bench.load_model_config("internvideo2-1b")
    flops = bench.forward_flops(config, 8)
    assert flops["tokens"] == 1 + 8 * 16 * 16
    linear = flops["total"] - flops["attention_scores_and_values"]
    assert math.isclose(linear / (2 * flops["tokens"]), 1.0e9, rel_tol=0.05)


def test_bad_arguments_are_rejected(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--models", "internvideo2-unknown"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        bench.load_model_config("/nonexistent/config.json")


def test_autocast_mode_and_peers_on_tiny_model(bench, capsys):
    """`--autocast` adds float32 weights under autocast (compared with the bf16 matmul peak); `--peers` times VideoMAE
    and the V-JEPA 2 encoder at the same width, depth and token count, and reports ours / peer FLOP/s."""
    report = bench.main(["--models", "tiny", "--frames", "4", "--dtypes", "fp32", "--attn", "sdpa", "--autocast",
                         "--peers", *FAST])  # fmt: skip
    assert {row["dtype"] for row in report["results"]} == {"fp32", "autocast-bf16"}
    peaks = report["matmul_peak_flops_per_second"]
    assert peaks["autocast-bf16"] > 0 and set(peaks) == {"fp32", "autocast-bf16"}
    peers = report["peers"]
    assert {(p["peer"], p["dtype"]) for p in peers} == {
        (peer, dtype) for peer in ("videomae", "vjepa2") for dtype in ("fp32", "autocast-bf16")
    }
    ours_tokens = report["results"][0]["tokens"]
    for peer in peers:
        assert peer["tokens"] == ours_tokens - 1  # the same patch tokens; ours adds a cls token
        assert peer["flops_per_clip"] > 0 and peer["latency_median_s"] > 0
        assert peer["ours_over_peer"] == pytest.approx(
            peer["ours_achieved_flops_per_second"] / peer["achieved_flops_per_second"]
        )
    assert "ours/peer" in capsys.readouterr().out


def test_peer_flop_count_matches_the_flop_counter(bench):
    """The analytic FLOPs of the peers are what torch's FLOP counter measures on the real Transformers models."""
    config = bench.load_model_config("tiny")
    for peer in ("videomae", "vjepa2"):
        model, inputs, flops, tokens = bench.build_peer(peer, config, 4, torch.float32, "eager", torch.device("cpu"))
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(**inputs)
        assert counter.get_total_flops() == pytest.approx(flops, rel=0.02), peer


def test_mfu_against_a_datasheet_peak_and_the_cuda_table_header(bench, capsys):
    report = bench.main(["--models", "tiny", "--frames", "4", "--dtypes", "fp32", "autocast-bf16", "--attn", "sdpa",
                         "--datasheet-peak-tflops", "fp32=0.5", "bf16=2", *FAST])  # fmt: skip
    fp32, autocast = report["results"]
    assert fp32["fraction_of_datasheet_peak"] == pytest.approx(fp32["achieved_flops_per_second"] / 0.5e12)
    # autocast runs its matmuls in bf16: its MFU is against the bf16 peak
    assert autocast["fraction_of_datasheet_peak"] == pytest.approx(autocast["achieved_flops_per_second"] / 2e12)
    assert report["settings"]["datasheet_peak_tflops"] == {"fp32": 0.5, "bf16": 2.0}
    printed = capsys.readouterr().out
    assert "MFU against the datasheet peak" in printed and "% of the measured matmul peak" in printed
    as_gpu = {**report, "machine": {**report["machine"], "device": "cuda"}}
    assert "MFU %" in bench.format_table(as_gpu).splitlines()[0]
    assert "MFU %" not in bench.format_table(report).splitlines()[0]
    with pytest.raises(SystemExit):
        bench.parse_args(["--datasheet-peak-tflops", "bf16"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--datasheet-peak-tflops", "int8=100"])

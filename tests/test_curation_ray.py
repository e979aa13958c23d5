"""`--engine ray` for the curation steps (curation/ray_engine.py): the local engine's per-video segmentation and
per-clip captioning on Ray Data actor pools give the same clip table, cut files and training records; a corrupt video
is reported, not fatal; a rerun skips what is done.

The fast tests call the workers in-process (no Ray); the slow ones share one local Ray cluster (2 CPUs) per module."""

import functools
import json
import shutil

import numpy as np
import pytest

from transformers_internvideo2.cli.main import main
from transformers_internvideo2.curation.captions import caption_clips
from transformers_internvideo2.curation.pipeline import segment_one_video, segment_videos
from transformers_internvideo2.curation.ray_engine import CaptionWorker, SegmentWorker
from transformers_internvideo2.curation.shots import get_shot_detector
from transformers_internvideo2.tasks.ray_engine import clip_id

from curation_helpers import CUT_BACKGROUNDS, shapes_video


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory, shared_dir):
    """Two shapes-world videos with hard cuts (one with sound), the real sample clip, and a corrupt file."""
    folder = tmp_path_factory.mktemp("raw_ray")
    shapes_video(folder / "a.mp4", seeds=[301, 302, 303], frames_per_shot=[12, 40, 30], backgrounds=CUT_BACKGROUNDS,
                 sound=False)  # fmt: skip
    shapes_video(folder / "b.mp4", seeds=[304, 305], frames_per_shot=[32, 24], backgrounds=CUT_BACKGROUNDS[1:])
    sample = shared_dir / "media" / "example1.mp4"
    if sample.is_file():
        shutil.copy(sample, folder / "c_sample.mp4")
    (folder / "d_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated, not a video")
    return folder


def _videos(folder):
    return sorted(str(p) for p in folder.iterdir())


def _batch(videos):
    import os

    return {"id": np.array([clip_id(v) for v in videos]), "source_path": np.array([os.path.abspath(v) for v in videos]),
            "video": np.array(videos)}  # fmt: skip


def _echo_components():
    """Caption components without a model: the video caption names the clip's frame span (the actor builds this
    from the factory, as it builds the chat model from the command line's)."""

    def video_caption(clip):
        if clip.start_frame > 10_000:
            raise ValueError("frame out of range")
        return f"{clip.video.rsplit('/', 1)[-1]} frames {clip.start_frame}-{clip.end_frame}"

    return {"video_caption": video_caption, "audio_caption": None, "asr": lambda clip: f"{clip.duration:.2f}"}, (
        lambda video, audio, asr: f"{video} | {asr}")


# ---------------------------------------------------------------------------------------------------------------
# Fast: the workers in-process
# ---------------------------------------------------------------------------------------------------------------
def test_segment_worker_rows_hold_the_local_segments_and_report_the_corrupt_video(raw_folder):
    videos = _videos(raw_folder)
    worker = SegmentWorker("pyscenedetect", {}, seed=0, min_seconds=2.0, max_seconds=30.0)
    table = worker(_batch(videos))
    assert table["status"].to_pylist() == ["ok"] * (len(videos) - 1) + ["error"]
    assert "d_broken.mp4" in table["error"].to_pylist()[-1]
    detector = get_shot_detector("pyscenedetect")
    for row, video in zip(table.to_pylist()[:-1], videos):
        local = segment_one_video(video, detector)
        assert row["shots"] == local.shots and row["shortened"] == local.shortened
        assert [c["clip_id"] for c in row["clips"]] == [c.clip_id for c in local.clips]
        assert row["clips"] == [c.__dict__ for c in local.clips] and len(row["dropped"]) == len(local.dropped)
    assert table.to_pylist()[0]["clips"]  # the shapes video with cuts has clips to compare


def test_caption_worker_runs_the_local_per_clip_code_and_reports_a_failing_clip(raw_folder):
    import dataclasses
    import os

    summary, _ = segment_videos(_videos(raw_folder), get_shot_detector("pyscenedetect"), progress=False)
    clips = summary.clips
    assert len(clips) >= 3
    bad = dataclasses.replace(clips[0], clip_id="bad#0", start_frame=20_000)
    batch = {"id": np.array([c.clip_id for c in [*clips, bad]]),
             "source_path": np.array([os.path.abspath(c.video) for c in [*clips, bad]]),
             "clip": np.array([dataclasses.asdict(c) for c in [*clips, bad]], dtype=object)}  # fmt: skip
    table = CaptionWorker(_echo_components)(batch)
    assert table["status"].to_pylist() == ["ok"] * len(clips) + ["error"]
    assert "frame out of range" in table["error"].to_pylist()[-1]
    components, fuser = _echo_components()
    local = caption_clips(clips, components["video_caption"], asr=components["asr"], fuser=fuser, progress=False)
    rows = table.to_pylist()[:-1]
    assert [{k: r[k] for k in local[0]} for r in rows] == local


# ---------------------------------------------------------------------------------------------------------------
# Slow: one local Ray cluster for the module
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    import sys

    ray = pytest.importorskip("ray")
    # the caption factory of these tests lives in this test module, which Ray's workers cannot import: send it by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_segment_on_ray_writes_the_local_clip_table_and_cut_files_and_rerun_skips(ray_cluster, raw_folder, tmp_path,
                                                                                capsys):  # fmt: skip
    common = [str(raw_folder), "--detector", "transnetv2", "--device", "cpu", "--no-progress"]
    assert main(["segment", *common, "--output", str(tmp_path / "local.jsonl"), "--cut-dir", str(tmp_path / "cut_l")]) == 3
    local_out = capsys.readouterr().out
    ray_args = ["--engine", "ray", "--workers", "2", "--batch-size", "2", "--output", str(tmp_path / "ray.jsonl")]
    assert main(["segment", *common, *ray_args, "--cut-dir", str(tmp_path / "cut_r")]) == 3
    ray_out = capsys.readouterr().out
    local_table, ray_table = (tmp_path / "local.jsonl").read_text(), (tmp_path / "ray.jsonl").read_text()
    assert ray_table == local_table and len(local_table.splitlines()) >= 4
    assert ray_out.replace("ray.jsonl", "local.jsonl").replace("cut_r", "cut_l") == local_out
    assert "videos: 3 read, 1 failed" in ray_out and "d_broken.mp4" in ray_out
    local_cuts, ray_cuts = sorted((tmp_path / "cut_l").iterdir()), sorted((tmp_path / "cut_r").iterdir())
    assert [p.name for p in ray_cuts] == [p.name for p in local_cuts]
    assert [p.stat().st_size for p in ray_cuts] == [p.stat().st_size for p in local_cuts]

    segments = tmp_path / "ray.ray" / "segments"
    files = sorted(segments.glob("*.parquet"))
    assert main(["segment", *common, *ray_args]) == 3  # rerun: only the corrupt video is tried again
    capsys.readouterr()
    new = sorted(set(segments.glob("*.parquet")) - set(files))
    import pyarrow.parquet as pq

    assert [pq.read_table(p)["source_path"].to_pylist() for p in new] == [[str(raw_folder / "d_broken.mp4")]]
    assert (tmp_path / "ray.jsonl").read_text() == local_table
    assert main(["segment", *common, *ray_args[:-2], "--output", str(tmp_path / "ray.jsonl"), "--seed", "1"]) == 1
    assert "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_caption_on_ray_gives_the_local_captions(ray_cluster, raw_folder, tmp_path):
    """Captioning with a picklable factory on two actors: the same fields as the local engine, per clip."""
    from transformers_internvideo2.curation.ray_engine import caption_clips_on_ray

    summary, _ = segment_videos(_videos(raw_folder), get_shot_detector("pyscenedetect"), progress=False)
    components, fuser = _echo_components()
    local = caption_clips(summary.clips, components["video_caption"], asr=components["asr"], fuser=fuser,
                          progress=False)  # fmt: skip
    captions, failures = caption_clips_on_ray(summary.clips, functools.partial(_echo_components), {"echo": 1},
                                              tmp_path / "captions", batch_size=2, concurrency=2)  # fmt: skip
    assert captions == local and not failures


@pytest.mark.slow
def test_curate_on_ray_writes_the_local_training_records(ray_cluster, raw_folder, tmp_path, capsys):
    """The whole `curate` chain with the bundled shapes chat model (no fusion, to stay short) on both engines."""
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    for name in ("a.mp4", "d_broken.mp4"):
        shutil.copy(raw_folder / name, shapes / name)
    common = [str(shapes), "--detector", "pyscenedetect", "--no-fusion", "--max-new-tokens", "8", "--no-progress",
              "--device", "cpu"]  # fmt: skip
    assert main(["curate", *common, "--output", str(tmp_path / "local.jsonl")]) == 3
    assert main(["curate", *common, "--output", str(tmp_path / "ray.jsonl"), "--engine", "ray", "--workers", "1"]) == 3
    out = capsys.readouterr().out
    local = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    ray_rows = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert ray_rows == local and local and all(r["caption"] for r in local)
    assert f"captioned clips: {len(local)}," in out and "videos: 1 read, 1 failed" in out
    assert (tmp_path / "ray.clips.jsonl").read_text() == (tmp_path / "local.clips.jsonl").read_text()

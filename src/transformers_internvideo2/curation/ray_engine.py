# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""``--engine ray`` for the curation steps: segmentation (``internvideo2 segment`` / ``curate``) and captioning
(``internvideo2 curate``) on Ray Data, running the local engine's per-item code on an actor pool
(:func:`~tasks.ray_engine.run_actor_pool`: ``from_items`` -> ``map_batches(callable class)`` -> ``write_parquet``).

* **segment**: one row per video. [`SegmentWorker`] builds the shot detector once per actor and runs
  [`~curation.pipeline.segment_one_video`] (thumbnails -> shots -> the clip rules) on each video of a batch; the row
  holds the video's clips and dropped shots as nested columns (``clips``, ``dropped``), its shot count, or
  ``status="error"`` with the decoder's reason (a corrupt video is reported, never fatal). The driver then gathers the
  rows in input order into the same [`CurationSummary`] and the same clip table as the local engine.
* **cut files** (``--cut-dir``): one Ray task per batch of clips (no model, so no actor), named as the local engine
  names them (the clip's position in the clip table).
* **caption**: one row per clip. [`CaptionWorker`] builds the captioning components once per actor (from a picklable
  factory: the command line's, so both engines build them the same way) and runs
  [`~curation.captions.caption_one_clip`]; ``video_caption``, ``audio_caption``, ``asr``, ``caption`` columns.

State lives in Parquet folders (``segments/``, ``captions/`` under the work folder): a rerun skips the videos and
clips they hold with status ``ok`` and refuses a folder made with other settings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..tasks.batch import INPUT_ERRORS
from ..tasks.ray_engine import (
    STATUS_ERROR,
    STATUS_OK,
    check_pool_options,
    clip_id,
    configure_actor_threads,
    finished_ids,
    prepare_output_folder,
    read_engine_output,
    require_ray,
    run_actor_pool,
)
from .captions import STEPS, caption_one_clip
from .clips import MAX_CLIP_SECONDS, MIN_CLIP_SECONDS, Clip, DroppedShot, cut_clip
from .pipeline import DECODE_ERRORS, CurationSummary, VideoSegments, cut_file_name, segment_one_video
from .shots import get_shot_detector


logger = logging.getLogger(__name__)

__all__ = [
    "CaptionWorker",
    "SegmentWorker",
    "caption_clips_on_ray",
    "cut_clips_on_ray",
    "segment_videos_on_ray",
]


def _struct_type(cls):
    import pyarrow as pa

    kinds = {"str": pa.string(), "float": pa.float64(), "int": pa.int64()}
    return pa.struct([(f.name, kinds[f.type if isinstance(f.type, str) else f.type.__name__])
                      for f in dataclasses.fields(cls)])  # fmt: skip


def _status_columns(ids: Sequence[str], paths: Sequence[str], errors: dict) -> dict:
    import pyarrow as pa

    return {
        "id": pa.array(ids, pa.string()),
        "source_path": pa.array(paths, pa.string()),
        "status": pa.array([STATUS_ERROR if c in errors else STATUS_OK for c in ids], pa.string()),
        "error": pa.array([errors.get(c) for c in ids], pa.string()),
    }


# ----------------------------------------------------------------------------------------------------------------
# Segmentation
# ----------------------------------------------------------------------------------------------------------------
class SegmentWorker:
    """The callable class of the segmentation ``map_batches``: the detector built once per actor.

    A batch has the columns ``id`` (hash of the absolute path), ``source_path`` (absolute, what is read) and
    ``video`` (the path as the user gave it: it names the clips and seeds their positions, as in the local engine).
    """

    def __init__(self, detector: str, detector_options: dict, seed: int, min_seconds: float, max_seconds: float):
        configure_actor_threads()
        self.detector = get_shot_detector(detector, **detector_options)
        self.seed, self.min_seconds, self.max_seconds = seed, min_seconds, max_seconds

    def __call__(self, batch: dict) -> "pyarrow.Table":  # noqa: F821
        import pyarrow as pa

        ids, paths, videos = ([str(v) for v in batch[k]] for k in ("id", "source_path", "video"))
        found, errors = {}, {}
        for clip, path, video in zip(ids, paths, videos):
            try:
                found[clip] = segment_one_video(video, self.detector, self.seed, self.min_seconds, self.max_seconds,
                                                source_path=path)  # fmt: skip
            except DECODE_ERRORS as error:  # the local engine's policy: this video is reported, the run goes on
                errors[clip] = str(error)
        columns = _status_columns(ids, paths, errors)
        columns["video"] = pa.array(videos, pa.string())
        columns["shots"] = pa.array([found[c].shots if c in found else None for c in ids], pa.int64())
        columns["shortened"] = pa.array([found[c].shortened if c in found else None for c in ids], pa.int64())
        for name, cls in (("clips", Clip), ("dropped", DroppedShot)):
            values = [[dataclasses.asdict(x) for x in getattr(found[c], name)] if c in found else None for c in ids]
            columns[name] = pa.array(values, pa.list_(_struct_type(cls)))
        columns["detector"] = pa.array([self.detector.name] * len(ids), pa.string())
        return pa.table(columns)


def _segments_from_row(row: dict) -> VideoSegments:
    return VideoSegments(shots=row["shots"], clips=[Clip(**c) for c in row["clips"]],
                         dropped=[DroppedShot(**d) for d in row["dropped"]], shortened=row["shortened"])  # fmt: skip


def segment_videos_on_ray(
    videos: Sequence[str],
    detector: str,
    detector_options: dict,
    folder: str | os.PathLike,
    seed: int = 0,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    batch_size: int = 4,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    ray_address: str | None = None,
) -> CurationSummary:
    """The local engine's `segment_videos` (without the clip table and cut files) on Ray: the per-video rows go to the
    Parquet folder `folder` (videos it already holds with status ok are not segmented again), and the summary is
    gathered from them in the order of `videos`, so its clips are the local engine's, in the same order."""
    check_pool_options(batch_size, concurrency)
    require_ray()
    min_seconds = MIN_CLIP_SECONDS if min_seconds is None else min_seconds
    max_seconds = MAX_CLIP_SECONDS if max_seconds is None else max_seconds
    settings = {"step": "segment", "detector": detector, "detector_options": detector_options, "seed": seed,
                "min_seconds": min_seconds, "max_seconds": max_seconds}  # fmt: skip
    folder = prepare_output_folder(folder, settings)
    videos = list(dict.fromkeys(os.fspath(v) for v in videos))
    items = [{"id": clip_id(v), "source_path": os.path.abspath(v), "video": v} for v in videos]
    done = finished_ids(folder)
    todo = [item for item in items if item["id"] not in done]
    if todo:
        worker_options = {"detector": detector, "detector_options": detector_options, "seed": seed,
                          "min_seconds": min_seconds, "max_seconds": max_seconds}  # fmt: skip
        seconds = run_actor_pool(SegmentWorker, worker_options, todo, folder, batch_size=batch_size,
                                 concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus,
                                 ray_address=ray_address)  # fmt: skip
        logger.info("segmented %d video(s) on Ray in %.1f s (%d finished before)", len(todo), seconds, len(done))
    rows = {row["id"]: row for row in read_engine_output(folder, include_errors=True)}
    summary = CurationSummary()
    for item in items:
        row = rows.get(item["id"])
        if row is None:
            raise RuntimeError(f"{item['source_path']} has no row in {folder} after the run (a lost write).")
        if row["status"] == STATUS_OK:
            summary.add(_segments_from_row(row))
        else:
            summary.failed_videos[item["video"]] = row["error"]
            logger.warning("skipping %s: %s", item["video"], row["error"])
    return summary


def _cut_batch(batch: dict, cut_mode: str) -> dict:
    modes = []
    for index, path, fields in zip(batch["index"], batch["source_path"], batch["clip"]):
        clip = Clip(**fields)
        output = cut_file_name(batch["cut_dir"][0], int(index), clip)
        modes.append(cut_clip(dataclasses.replace(clip, video=str(path)), output, cut_mode))
    return {"clip_id": np.asarray([f["clip_id"] for f in batch["clip"]]), "mode": np.asarray(modes),
            "path": np.asarray([str(cut_file_name(batch["cut_dir"][0], int(i), Clip(**f)))
                                for i, f in zip(batch["index"], batch["clip"])])}  # fmt: skip


def cut_clips_on_ray(clips: Sequence[Clip], cut_dir: str | os.PathLike, cut_mode: str = "auto",
                     batch_size: int = 8, num_cpus: float = 1) -> tuple[dict, dict[str, str]]:  # fmt: skip
    """Write every clip to its own file in `cut_dir` with Ray tasks (cutting needs no model: no actor), named as the
    local engine names them; returns `({mode: count}, {clip_id: file})`."""
    ray = require_ray()
    if not clips:
        return Counter(), {}
    Path(cut_dir).mkdir(parents=True, exist_ok=True)
    items = [{"index": i, "source_path": os.path.abspath(c.video), "clip": dataclasses.asdict(c),
              "cut_dir": os.path.abspath(cut_dir)} for i, c in enumerate(clips)]  # fmt: skip
    dataset = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // batch_size)))
    rows = dataset.map_batches(_cut_batch, fn_kwargs={"cut_mode": cut_mode}, batch_size=batch_size,
                               batch_format="numpy", num_cpus=num_cpus).take_all()  # fmt: skip
    return Counter(str(r["mode"]) for r in rows), {str(r["clip_id"]): str(r["path"]) for r in rows}


# ----------------------------------------------------------------------------------------------------------------
# Captioning
# ----------------------------------------------------------------------------------------------------------------
class CaptionWorker:
    """The callable class of the captioning ``map_batches``: `components_factory()` (a picklable callable, e.g. a
    ``functools.partial`` of a module-level function) builds ``({"video_caption": ..., "audio_caption": ...,
    "asr": ...}, fuser)`` once per actor -- the models load once, then serve every batch."""

    def __init__(self, components_factory: Callable[[], tuple[dict, Callable | None]]):
        configure_actor_threads()
        self.components, self.fuser = components_factory()

    def __call__(self, batch: dict) -> "pyarrow.Table":  # noqa: F821
        import pyarrow as pa

        ids, paths = [str(v) for v in batch["id"]], [str(v) for v in batch["source_path"]]
        captions, errors = {}, {}
        for clip_key, path, fields in zip(ids, paths, batch["clip"]):
            clip = dataclasses.replace(Clip(**fields), video=path)  # read from the absolute path, named as given
            try:
                captions[clip_key] = caption_one_clip(clip, self.components, self.fuser)
            except INPUT_ERRORS as error:  # one clip fails alone, as one video does in the batch engine
                errors[clip_key] = f"{type(error).__name__}: {error}"
        columns = _status_columns(ids, paths, errors)
        for step in STEPS:
            columns[step] = pa.array([captions[c][step] if c in captions else None for c in ids], pa.string())
        return pa.table(columns)


def caption_clips_on_ray(
    clips: Sequence[Clip],
    components_factory: Callable[[], tuple[dict, Callable | None]],
    settings: dict,
    folder: str | os.PathLike,
    batch_size: int = 4,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    ray_address: str | None = None,
) -> tuple[list[dict[str, str] | None], dict[str, str]]:
    """The local engine's `caption_clips` on Ray: the per-clip rows go to the Parquet folder `folder` (clips it holds
    with status ok are not captioned again; `settings`, what the components were built from, must match the
    folder's). Returns the captions in the order of `clips` (`None` for a clip that failed) and `{clip_id: reason}`
    of the failures."""
    check_pool_options(batch_size, concurrency)
    require_ray()
    folder = prepare_output_folder(folder, {"step": "caption", **settings})
    items = [{"id": c.clip_id, "source_path": os.path.abspath(c.video), "clip": dataclasses.asdict(c)} for c in clips]
    if len({item["id"] for item in items}) != len(items):
        raise ValueError("Clip ids repeat: two videos are listed under the same path.")
    done = finished_ids(folder)
    todo = [item for item in items if item["id"] not in done]
    if todo:
        seconds = run_actor_pool(CaptionWorker, {"components_factory": components_factory}, todo, folder,
                                 batch_size=batch_size, concurrency=concurrency, num_cpus=num_cpus,
                                 num_gpus=num_gpus, ray_address=ray_address)  # fmt: skip
        logger.info("captioned %d clip(s) on Ray in %.1f s (%d finished before)", len(todo), seconds, len(done))
    rows = {row["id"]: row for row in read_engine_output(folder, include_errors=True)}
    captions, failures = [], {}
    for item in items:
        row = rows.get(item["id"])
        if row is None:
            raise RuntimeError(f"clip {item['id']} has no row in {folder} after the run (a lost write).")
        if row["status"] == STATUS_OK:
            captions.append({step: row[step] for step in STEPS})
        else:
            captions.append(None)
            failures[item["id"]] = row["error"]
    return captions, failures

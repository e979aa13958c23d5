# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""The Ray engine behind ``--engine ray`` of ``internvideo2 embed`` / ``classify``: the same per-video job code as the
local batch engine (:mod:`.batch` with the jobs of :mod:`.inference`), run by Ray Data on an actor pool, so one
command scales from a laptop (``ray.init()`` in-process) to a cluster (``ray start --head`` + workers) unchanged.

How a run goes (see ``docs/scale_out.md``):

1. The driver lists the inputs, gives each an ``id`` (a hash of the absolute source path: stable across runs and
   machines that mount the data at the same path), and drops the ids the output folder already holds with status
   ``ok`` (a rerun skips finished ids; inputs that failed before are tried again, as the local engine does).
2. ``ray.data.from_items(...)`` -> ``map_batches(ClipWorker, concurrency=N, num_cpus=..., num_gpus=...,
   batch_size=B)``: each actor loads the model once, then for each batch runs ``job.prepare`` (decode + preprocess,
   one video at a time so a bad one fails alone) and ``job.compute`` (one forward for the good ones). A video that
   cannot be decoded becomes a row with ``status="error"`` and its reason, never a failed task. An actor that dies
   (out of memory, a lost node) is restarted by Ray and its batch retried (``max_restarts`` / ``max_task_retries``).
3. ``write_parquet(output_folder)``: one file per block, new files per run (Ray names them by run), so an earlier
   run's files are never rewritten. Columns: ``id``, ``source_path``, ``span_start_s``, ``span_end_s``, ``status``,
   ``error``, the job's fields (embeddings as fixed-size float32 lists, or labels / scores), ``model``, ``revision``.
   :func:`read_engine_output` reads a folder back: ``ok`` rows, one per id (the newest run's wins).

Ray is optional (``pip install 'transformers-internvideo2[ray]'``); nothing here imports it before it is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .batch import INPUT_ERRORS, ON_ERROR_CHOICES, BatchInputError, BatchSummary
from .inference import load_batch_job


logger = logging.getLogger(__name__)

__all__ = [
    "ClipWorker",
    "JobSpec",
    "clip_id",
    "configure_actor_threads",
    "finished_ids",
    "model_revision",
    "prepare_output_folder",
    "read_engine_output",
    "require_ray",
    "run_actor_pool",
    "run_ray_job",
]

RAY_EXTRA_HINT = "pip install 'transformers-internvideo2[ray]'"
STATUS_OK, STATUS_ERROR = "ok", "error"
JOB_KINDS = ("embed", "classify")


def require_ray():
    """Import Ray (with Ray Data) or say which extra installs it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is what the engine uses; `ray` alone lacks its dependencies
    except ImportError as error:
        raise ImportError(
            f"--engine ray needs Ray Data, which is not installed ({error}). Install the optional extra: "
            f"{RAY_EXTRA_HINT} (or `pip install 'ray[data]'`)."
        ) from error
    return ray


def clip_id(source_path: str | os.PathLike, span: tuple[float, float] | None = None) -> str:
    """The id of a clip: a hash of its absolute source path (and span, for clips cut from a longer video)."""
    key = os.path.abspath(os.fspath(source_path))
    if span is not None:
        key += f"#{float(span[0]):.3f}-{float(span[1]):.3f}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def model_revision(model_id: str | os.PathLike) -> str:
    """What identifies the weights: a SHA-256 (first 16 hex digits) over the folder's config and weight files, so two
    folders with the same weights agree and a retrained folder differs. A name that is not a folder is its own
    revision (a Hub id is resolved from the local cache by the jobs)."""
    folder = Path(model_id)
    if not folder.is_dir():
        return str(model_id)
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") or p.name == "config.json")
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _clip_span(path: str) -> tuple[float, float | None]:
    """`(0, duration)` of a whole file from its container header (no decoding); `None` when the header lacks it."""
    import av

    with av.open(path) as container:
        if container.duration is not None:
            return 0.0, container.duration / av.time_base
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return 0.0, float(stream.duration * stream.time_base)
    return 0.0, None


@dataclass
class JobSpec:
    """What a worker needs to build its job: which computation (``kind``: ``"embed"`` picks the vision or the
    video-text job from the folder, ``"classify"``), the model folder, and the job's options. Plain data, so Ray sends
    it to every actor, and the same for every engine."""

    kind: str
    model: str
    num_frames: int | None = None
    device: str | None = None
    dtype: str | None = None
    top_k: int = 5
    revision: str = ""
    video_backend: str | None = None

    def __post_init__(self):
        if self.kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {JOB_KINDS}, got {self.kind!r}")

    def build(self):
        """Load the model and return the job of :mod:`.inference` (the local engine's code)."""
        return load_batch_job(self.kind, self.model, device=self.device, dtype=self.dtype,
                              num_frames=self.num_frames, top_k=self.top_k, video_backend=self.video_backend)  # fmt: skip


class ClipWorker:
    """The callable class of ``map_batches``: one per actor, the model loaded once in ``__init__``.

    ``crash_once_marker`` is a fault drill (used by the tests and ``docs/scale_out.md``): when that file exists, the
    first worker to see it deletes it and kills its own process (``os._exit``), as an out-of-memory kill would; Ray
    restarts the actor and retries the batch.
    """

    def __init__(self, spec: JobSpec | dict, crash_once_marker: str | None = None):
        self.spec = spec if isinstance(spec, JobSpec) else JobSpec(**spec)
        configure_actor_threads()
        self.job = self.spec.build()
        self.crash_once_marker = crash_once_marker

    def _maybe_crash(self) -> None:
        if self.crash_once_marker is None:
            return
        try:
            os.unlink(self.crash_once_marker)
        except FileNotFoundError:
            return
        logger.warning("fault drill: worker %d exits mid-batch", os.getpid())
        os._exit(1)

    def __call__(self, batch: dict) -> "pyarrow.Table":  # noqa: F821
        ids, paths = [str(i) for i in batch["id"]], [str(p) for p in batch["source_path"]]
        self._maybe_crash()
        good, prepared, errors, spans = [], [], {}, {}
        for clip, path in zip(ids, paths):
            try:
                prepared_one = self.job.prepare(path)  # first: its errors are the local engine's messages
                spans[clip] = _clip_span(path)
                prepared.append(prepared_one)
                good.append(clip)
            except INPUT_ERRORS as error:  # the local engine's policy: this input is bad, the run goes on
                errors[clip] = f"{type(error).__name__}: {error}"
        records = {}
        if good:
            by_id = dict(zip(ids, paths))
            computed = self.job.compute([by_id[c] for c in good], prepared)
            records = dict(zip(good, computed))
        return self._table(ids, paths, spans, errors, records)

    def _table(self, ids, paths, spans, errors, records) -> "pyarrow.Table":  # noqa: F821
        import pyarrow as pa

        columns = {
            "id": pa.array(ids, pa.string()),
            "source_path": pa.array(paths, pa.string()),
            "span_start_s": pa.array([spans.get(c, (None, None))[0] for c in ids], pa.float64()),
            "span_end_s": pa.array([spans.get(c, (None, None))[1] for c in ids], pa.float64()),
            "status": pa.array([STATUS_ERROR if c in errors else STATUS_OK for c in ids], pa.string()),
            "error": pa.array([errors.get(c) for c in ids], pa.string()),
        }
        for name, values in _job_columns(self.job, ids, records).items():
            columns[name] = values
        columns["model"] = pa.array([self.spec.model] * len(ids), pa.string())
        columns["revision"] = pa.array([self.spec.revision] * len(ids), pa.string())
        return pa.table(columns)


def _job_columns(job, ids: Sequence[str], records: dict) -> dict:
    """The job's record fields as Arrow columns (None for failed inputs): vectors as fixed-size float32 lists whose
    width comes from the job (known once a batch ran; a batch of failures only has nulls)."""
    import pyarrow as pa

    fields = [k for k in (next(iter(records.values())) if records else {}) if k != job.id_key]
    columns = {}
    for name in job.vector_fields:
        width = job.widths.get(name)
        if width is None:
            columns[name] = pa.nulls(len(ids))
            continue
        rows = [np.asarray(records[c][name], dtype=np.float32) if c in records else None for c in ids]
        columns[name] = pa.array(rows, type=pa.list_(pa.float32(), width))
    for name in fields:
        if name in job.vector_fields:
            continue
        columns[name] = pa.array([records[clip][name] if clip in records else None for clip in ids])
    return columns


# ----------------------------------------------------------------------------------------------------------------
# Output folders
# ----------------------------------------------------------------------------------------------------------------
def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _read_tables(folder: str | os.PathLike, columns: Sequence[str] | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = _parquet_files(folder) if folder.is_dir() else []
    if not files:
        return None
    # Files of batches where every input failed hold null-typed vector columns: promotion unifies them.
    tables = [pq.read_table(path, columns=columns) for path in files]
    return pa.concat_tables(tables, promote_options="default")


def finished_ids(folder: str | os.PathLike) -> set[str]:
    """Ids the output folder holds with status ``ok`` (what a rerun skips)."""
    table = _read_tables(folder, columns=["id", "status"])
    if table is None:
        return set()
    return {clip for clip, status in zip(table["id"].to_pylist(), table["status"].to_pylist()) if status == STATUS_OK}


def read_engine_output(folder: str | os.PathLike, include_errors: bool = False) -> list[dict]:
    """The rows of an engine output folder, one per id: its ``ok`` row (vectors as float32 arrays) or, with
    `include_errors`, the error row of an id that never succeeded."""
    table = _read_tables(folder)
    if table is None:
        return []
    kept: dict[str, dict] = {}
    for row in table.to_pylist():
        previous = kept.get(row["id"])
        if previous is None or (previous["status"] != STATUS_OK and row["status"] == STATUS_OK):
            kept[row["id"]] = row
    rows = [r for r in kept.values() if include_errors or r["status"] == STATUS_OK]
    for row in rows:
        for name, value in row.items():
            if isinstance(value, list) and value and isinstance(value[0], float) and name != "scores":
                row[name] = np.asarray(value, dtype=np.float32)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------
def run_ray_job(
    spec: JobSpec,
    videos: Sequence[str],
    output: str | os.PathLike,
    batch_size: int = 4,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    on_error: str = "skip",
    max_restarts: int = 3,
    crash_once_marker: str | None = None,
    ray_address: str | None = None,
    worker_class: type | None = None,
) -> BatchSummary:
    """Run `spec` over `videos` on Ray Data and write Parquet files into the folder `output`; returns the local
    engine's [`BatchSummary`] (`compute_seconds`: the Ray run's wall clock).

    Args:
        spec: the job (see [`JobSpec`]); its `revision` is filled from the model folder when empty.
        videos: video files.
        output: a folder (created); a rerun into it skips the ids it holds with status ok.
        batch_size: videos per `map_batches` call (one forward per batch).
        concurrency: actors in the pool (each loads the model once).
        num_cpus, num_gpus: resources per actor (`num_gpus=1`: one GPU each; fractions share a GPU).
        on_error: `"skip"`: failures are rows with status error, the run succeeds; `"fail"`: the same rows are
            written, then [`BatchInputError`] names the first failure (Ray cannot stop the other actors' batches
            half-way without losing them).
        max_restarts: restarts of a dead actor, and retries of its unfinished batch.
        ray_address: a running cluster (`"auto"`, `"ray://host:10001"`); default: the one `ray.init` already
            connected to, else a new local one.
        worker_class: a subclass of [`ClipWorker`] to run instead (e.g. one that records timings, as
            `benchmarks/benchmark_engines.py` does).
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    check_pool_options(batch_size, concurrency)
    require_ray()
    if not spec.revision:
        spec.revision = model_revision(spec.model)
    _adopt_settings_of_older_folder(Path(output))
    folder = prepare_output_folder(output, {k: asdict(spec)[k] for k in _SETTINGS_KEYS})
    write_run_metadata(folder, spec)
    unique = list(dict.fromkeys(os.fspath(v) for v in videos))
    done = finished_ids(folder)
    items = [{"id": clip_id(v), "source_path": os.path.abspath(v)} for v in unique]
    todo = [item for item in items if item["id"] not in done]
    summary = BatchSummary(total=len(items), resumed=len(items) - len(todo), output=folder)
    if not todo:
        return summary
    summary.compute_seconds = run_actor_pool(
        worker_class or ClipWorker, {"spec": asdict(spec), "crash_once_marker": crash_once_marker}, todo, folder,
        batch_size=batch_size, concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus,
        max_restarts=max_restarts, ray_address=ray_address,
    )  # fmt: skip
    rows = {row["id"]: row for row in read_engine_output(folder, include_errors=True)}
    for item in todo:
        row = rows.get(item["id"])
        if row is None:
            raise RuntimeError(f"{item['source_path']} has no row in {folder} after the run (a lost write).")
        if row["status"] == STATUS_OK:
            summary.computed += 1
        else:
            summary.skipped.append((item["source_path"], row["error"]))
    if summary.skipped and on_error == "fail":
        name, reason = summary.skipped[0]
        raise BatchInputError(name, reason)
    return summary


def configure_actor_threads() -> int | None:
    """Inside a Ray actor: give torch as many intra-op threads as Ray reserved CPUs for the actor (at least one), so
    N actors x T threads match the reserved cores: neither oversubscribed (every actor spawning a thread per core of
    the node) nor a reserved core left idle (`--cpus-per-worker 4` with one thread). Outside an actor (the worker
    called in-process, the local engine) nothing changes and `None` is returned."""
    ray = sys.modules.get("ray")  # an actor has imported Ray already; without Ray this is not an actor
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:
        return None

    threads = max(1, int(context.get_assigned_resources().get("CPU", 1.0)))
    torch.set_num_threads(threads)
    return threads


def run_actor_pool(
    worker_class,
    constructor_kwargs: dict,
    items: Sequence[dict],
    folder: str | os.PathLike,
    batch_size: int,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_restarts: int = 3,
    ray_address: str | None = None,
) -> float:
    """The Ray Data part every ``--engine ray`` step shares: ``from_items(items)`` -> ``map_batches(worker_class)``
    on an actor pool of `concurrency` actors (`num_cpus` / `num_gpus` each; a dead actor is restarted and its batch
    retried up to `max_restarts` times) -> ``write_parquet(folder)``. `worker_class(**constructor_kwargs)` is built
    once per actor; its ``__call__`` takes a numpy batch of `items`' columns and returns a pyarrow table. Returns the
    wall-clock seconds of the run (actor start-up included)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    began = time.perf_counter()
    blocks = max(1, -(-len(items) // batch_size))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    dataset = ray.data.from_items(list(items), override_num_blocks=blocks)
    with warnings.catch_warnings():
        # Ray Data's own default is unlimited actor restarts and task retries; a bounded number keeps an input that
        # kills its worker every time (a decoder crash) from looping forever. Ray 2.60 accepts them only through
        # the `**ray_remote_args` it has deprecated (removal announced for 2.64; the pin is 2.60).
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        results = dataset.map_batches(
            worker_class,
            fn_constructor_kwargs=constructor_kwargs,
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(concurrency, blocks)),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_restarts,
            max_task_retries=max_restarts,
        )
    # The write tasks only move finished Arrow tables to files. Measured (docs/scale_out.md): with a CPU each they
    # wait behind the actors' reservation until the pool ends, then Ray spawns fresh worker processes for them, and
    # with a fraction of a CPU each it spawns one process per concurrent task (a storm of imports on a small node):
    # the run's tail grew to most of its wall clock. One write task at a time, reserving no CPU, starts while the
    # actors compute and reuses one worker process.
    results.write_parquet(str(folder), ray_remote_args={"num_cpus": 0}, concurrency=1)
    return time.perf_counter() - began


_SETTINGS_KEYS = ("kind", "model", "revision", "num_frames", "dtype", "top_k")
_SETTINGS_FILE = "_settings.json"


def _adopt_settings_of_older_folder(folder: Path) -> None:
    """Folders written before ``_settings.json`` existed kept their settings only in ``_run.json``: take them from
    there, so a rerun with other settings is still refused."""
    legacy, settings = folder / "_run.json", folder / _SETTINGS_FILE
    if legacy.is_file() and not settings.is_file():
        earlier = json.loads(legacy.read_text())
        settings.write_text(json.dumps({k: earlier.get(k) for k in _SETTINGS_KEYS}, indent=2))


def check_pool_options(batch_size: int, concurrency: int) -> None:
    for name, value in (("batch_size", batch_size), ("concurrency", concurrency)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def prepare_output_folder(output: str | os.PathLike, settings: dict) -> Path:
    """Create the output folder, or check that the one there was made with the same `settings` (a folder holds one
    model's results: rows computed with other settings are never mixed in, as `--resume` of the local engine refuses
    other settings). The settings are kept in ``_settings.json``."""
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--engine ray writes a folder of Parquet files; {folder} is a file.")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _SETTINGS_FILE
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples become lists)
    if path.is_file():
        earlier = json.loads(path.read_text())
        differing = [k for k in sorted(set(earlier) | set(settings)) if earlier.get(k) != settings.get(k)]
        if differing:
            details = ", ".join(f"{k}: {earlier.get(k)!r} there, {settings.get(k)!r} now" for k in differing)
            raise ValueError(f"{folder} holds results made with other settings ({details}); write to another folder "
                             "or pass --overwrite to start over.")  # fmt: skip
    else:
        path.write_text(json.dumps(settings, indent=2))
    return folder


def write_run_metadata(folder: str | os.PathLike, spec: JobSpec, feature: str | None = None) -> Path:
    """``_run.json`` next to the Parquet files: the model, revision and job options (read by ``internvideo2 index``)."""
    path = Path(folder) / "_run.json"
    path.write_text(json.dumps({**asdict(spec), "feature": feature}, indent=2))
    return path

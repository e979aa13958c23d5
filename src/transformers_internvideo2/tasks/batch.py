# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""The batch engine behind ``internvideo2 classify`` and ``internvideo2 embed``: many inputs, one output file, results
kept as they are computed, bad inputs skipped (or not), interrupted runs resumed.

How a run goes (see ``docs/reliability.md``):

1. :func:`prepare_output` checks the output before any work: a known extension, not a folder, its folder created
   and writable, an existing output refused unless ``overwrite`` (replace it) or ``resume`` (continue it).
2. :func:`run_batch` walks the inputs **in order**, in fixed slices of ``batch_size`` (slice ``k`` is always inputs
   ``[k*B, (k+1)*B)``, so a resumed run forms the same batches as an uninterrupted one and its numbers are the
   same bit for bit). Each input is prepared (decoded, preprocessed) on its own: an input that fails is *skipped*
   -- named on stderr with the reason -- or, with ``on_error="fail"``, stops the run with a
   :class:`BatchInputError`. The good inputs of a slice go through the model together.
3. Results go to ``<output>.partial/`` as they are computed: shards (``.safetensors``, each written to a temporary
   file and renamed) every ``flush_every`` results, and on an interruption (``KeyboardInterrupt``) before it
   propagates. ``resume=True`` reads them back and skips the inputs they hold.
4. At the end the final file is written (temporary file in the same folder, then ``os.replace``), in input order,
   streamed shard by shard, and the partial folder is removed. An interrupted run never leaves a half-written
   final file: either the old one or the new one exists.

Output formats, by extension: ``.jsonl`` (one JSON object per input), ``.json`` (one document, for small outputs),
``.parquet`` (one row per input, vectors as fixed-size float lists), ``.safetensors`` (one ``(N, D)`` float32 tensor
per vector field, the input names as a JSON list in the metadata ``names``). Which of them a command accepts is its
choice (``formats=``).

The settings a run's numbers depend on (model, frame count, ...) travel with its output, so that ``--resume`` can
refuse to mix results made with other settings: in the document (``.json``), the metadata (``.parquet``,
``.safetensors``), and for ``.jsonl`` -- whose every line is a record, so that any JSON-lines reader keeps working --
in a sidecar ``<output>.settings.json`` (:func:`settings_sidecar`), written atomically after the output itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load, load_file, save
from tqdm.auto import tqdm


logger = logging.getLogger(__name__)

__all__ = [
    "EXIT_SKIPPED",
    "BatchInputError",
    "BatchOutput",
    "BatchSummary",
    "INPUT_ERRORS",
    "MemoryOutput",
    "atomic_write",
    "positive_int",
    "prepare_output",
    "read_records",
    "run_batch",
    "settings_sidecar",
]

# Exit code of a batch command that finished but skipped inputs (documented in docs/cli.md).
EXIT_SKIPPED = 3
# What counts as "this input is bad" while preparing one input (VideoDecodingError is a ValueError; a missing or
# unreadable file an OSError; a decoder's internal failure a RuntimeError). Other exceptions are bugs and propagate.
INPUT_ERRORS = (ValueError, OSError, RuntimeError, IndexError)
ON_ERROR_CHOICES = ("skip", "fail")
FORMATS = (".jsonl", ".json", ".parquet", ".safetensors")
_PARTIAL_SUFFIX = ".partial"
_MANIFEST = "manifest.json"


class BatchInputError(ValueError):
    """An input could not be processed and the run was told to stop (`on_error="fail"`)."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


def positive_int(text: str) -> int:
    """argparse type of counts (`--top-k`, `--batch-size`, ...): an integer >= 1; 0 and negatives are refused with
    argparse's exit code 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# Atomic files
# ----------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file next to `path` and rename it onto `path` when the block succeeds; on any exception
    (an interruption included) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _partial_dir(path: Path) -> Path:
    return path.with_name(path.name + _PARTIAL_SUFFIX)


def prepare_output(
    path: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    overwrite: bool = False,
    resume: bool = False,
) -> Path:
    """Check an output path before any work starts and create its folder.

    Raises:
        ValueError: an extension not in `formats`, or both `overwrite` and `resume`.
        IsADirectoryError: `path` is a folder.
        FileExistsError: `path` (or an interrupted run's `<path>.partial`) exists and neither `overwrite` nor
            `resume` was given.
        PermissionError: the folder cannot be written.
    """
    path = Path(path)
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other: start over, or continue the existing output.")
    if path.is_dir():
        raise IsADirectoryError(f"Output {path} is a folder; give a file name inside it, e.g. {path / ('out' + formats[0])}")
    if path.suffix.lower() not in formats:
        raise ValueError(f"Output {path} must end in one of {', '.join(formats)} (the format follows the extension).")
    partial = _partial_dir(path)
    if not (overwrite or resume):
        if path.exists():
            raise FileExistsError(f"Output {path} exists; pass --overwrite to replace it or --resume to complete it.")
        if partial.exists():
            raise FileExistsError(
                f"An interrupted run left {partial}; pass --resume to continue it or --overwrite to start over."
            )
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(f"Cannot write {path}: {path.parent} is a file, not a folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"Cannot write to the folder {path.parent}.")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Records: {"<id_key>": name, <json fields>..., <vector fields>: 1-D float32 arrays}
# ----------------------------------------------------------------------------------------------------------------
def _split(record: dict, vector_fields: Sequence[str]) -> tuple[dict, dict]:
    plain = {k: v for k, v in record.items() if k not in vector_fields}
    return plain, {k: np.asarray(record[k], dtype=np.float32) for k in vector_fields}


def _jsonable(record: dict, vector_fields: Sequence[str]) -> dict:
    # float32 -> Python float is exact and JSON writes the shortest repr that reads back to it: no precision is lost.
    return {k: (np.asarray(v).tolist() if k in vector_fields else v) for k, v in record.items()}


def _write_shard(path: Path, records: list[dict], id_key: str, vector_fields: Sequence[str]) -> None:
    plains, vectors = zip(*(_split(r, vector_fields) for r in records))
    tensors = {name: np.stack([v[name] for v in vectors]) for name in vector_fields}
    metadata = {"records": json.dumps(list(plains)), "id_key": id_key}
    with atomic_write(path) as stream:
        stream.write(save(tensors, metadata=metadata))


def _read_shard(path: Path, vector_fields: Sequence[str]) -> list[dict]:
    data = path.read_bytes()
    tensors = load(data)
    records = json.loads(_safetensors_metadata(data)["records"])
    for row, record in enumerate(records):
        for name in vector_fields:
            record[name] = tensors[name][row]
    return records


def _safetensors_metadata(data: bytes) -> dict:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]).get("__metadata__", {})


# ----------------------------------------------------------------------------------------------------------------
# Readers of final outputs (for --resume from a finished file, and for users)
# ----------------------------------------------------------------------------------------------------------------
def read_records(path: str | os.PathLike, id_key: str = "video", vector_fields: Sequence[str] = (),
                 records_key: str = "predictions") -> list[dict]:  # fmt: skip
    """The records of a final output file written by [`run_batch`] (vectors as float32 numpy arrays)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as stream:
            records = [json.loads(line) for line in stream if line.strip()]
    elif suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))[records_key]
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
    elif suffix == ".safetensors":
        tensors = load_file(str(path))
        with open(path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            metadata = json.loads(stream.read(length)).get("__metadata__", {})
        names = json.loads(metadata.get("names", "[]"))
        records = [{id_key: name, **{k: tensors[k][i] for k in vector_fields}} for i, name in enumerate(names)]
    else:
        raise ValueError(f"Unsupported output format {suffix!r}; expected one of {', '.join(FORMATS)}.")
    for record in records:
        for name in vector_fields:
            record[name] = np.asarray(record[name], dtype=np.float32)
    return records


def settings_sidecar(path: str | os.PathLike) -> Path:
    """The file that records the settings of a `.jsonl` output: `<output>.settings.json` next to it (JSON lines hold
    records only). Written atomically after the output (an older one is removed first), so that an interruption
    between the two leaves an output without settings -- refused by `--resume` -- never one with another run's."""
    path = Path(path)
    return path.with_name(path.name + ".settings.json")


def _final_settings(path: Path) -> dict | None:
    """The settings a finished output was made with (`None` when it records none)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        sidecar = settings_sidecar(path)
        if not sidecar.is_file():
            return None
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        return recorded.get("settings") if recorded.get("output") == path.name else None
    if suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8")).get("settings")
    if suffix == ".safetensors":
        with open(path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            metadata = json.loads(stream.read(length)).get("__metadata__", {})
        return json.loads(metadata["settings"]) if "settings" in metadata else None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[b"settings"]) if b"settings" in metadata else None
    return None


# ----------------------------------------------------------------------------------------------------------------
# The resumable output
# ----------------------------------------------------------------------------------------------------------------
class BatchOutput:
    """Results of a batch run: kept in `<path>.partial/` shards while the run goes, written to `path` at the end.

    Args:
        path: the final output (checked by [`prepare_output`]).
        id_key: the record field naming the input (`"video"`).
        vector_fields: record fields that are float vectors (stored as tensors / fixed-size lists).
        settings: what the numbers depend on (model, frame count, ...). Stored with the partial results and with the
            final file (in it, or for `.jsonl` in [`settings_sidecar`]); `resume` refuses results made with other
            settings, and a finished output that records none.
        header: extra top-level fields of a `.json` document / metadata of `.safetensors` and `.parquet`.
        overwrite, resume: see [`prepare_output`].
        flush_every, flush_seconds: write a shard after this many new results or this many seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        id_key: str = "video",
        vector_fields: Sequence[str] = (),
        settings: dict | None = None,
        header: dict | None = None,
        records_key: str = "records",
        formats: Sequence[str] = FORMATS,
        overwrite: bool = False,
        resume: bool = False,
        flush_every: int = 64,
        flush_seconds: float = 30.0,
    ):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.path = prepare_output(path, formats, overwrite=overwrite, resume=resume)
        if self.path.suffix.lower() == ".safetensors" and not vector_fields:
            raise ValueError(f"{self.path}: .safetensors holds vectors only; use .jsonl or .json for these results.")
        self.id_key, self.vector_fields = id_key, tuple(vector_fields)
        self.settings = dict(settings or {})
        self.header, self.records_key = dict(header or {}), records_key
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.partial = _partial_dir(self.path)
        self._pending: list[dict] = []
        self._index: dict[str, tuple[Path, int]] = {}  # id -> (shard, row)
        self._last_flush = time.monotonic()
        if overwrite and self.partial.exists():
            shutil.rmtree(self.partial)
        self._open(resume)

    # -- setup ---------------------------------------------------------------------------------------------------
    def _check_settings(self, found: dict | None, where: Path) -> None:
        if found is None:
            return
        differing = sorted(k for k in set(found) | set(self.settings) if found.get(k) != self.settings.get(k))
        if differing:
            details = ", ".join(f"{k}: {found.get(k)!r} there, {self.settings.get(k)!r} now" for k in differing)
            raise ValueError(
                f"Cannot resume {where}: it was made with other settings ({details}); pass --overwrite to start over."
            )

    def _open(self, resume: bool) -> None:
        manifest = self.partial / _MANIFEST
        if resume and manifest.is_file():
            self._check_settings(json.loads(manifest.read_text())["settings"], self.partial)
            for stray in self.partial.glob(".*.tmp"):  # a shard whose write was interrupted: never renamed, never used
                stray.unlink()
            for shard in sorted(self.partial.glob("shard-*.safetensors")):
                for row, record in enumerate(_read_shard(shard, self.vector_fields)):
                    self._index[record[self.id_key]] = (shard, row)
            return
        resume_finished = resume and self.path.is_file()
        if resume_finished:  # checked before the partial folder exists: a refused resume leaves nothing behind
            found = _final_settings(self.path)
            if found is None:  # written by something else, or interrupted before its settings were recorded
                where = f" (no {settings_sidecar(self.path).name} next to it)" if self.path.suffix == ".jsonl" else ""
                raise ValueError(
                    f"Cannot resume {self.path}: it records no settings{where}, so its results may come from another "
                    "model or settings; pass --overwrite to start over."
                )
            self._check_settings(found, self.path)
        self.partial.mkdir(parents=True, exist_ok=True)
        with atomic_write(manifest, "w") as stream:
            json.dump({"output": self.path.name, "settings": self.settings}, stream)
        if resume_finished:  # a finished output: its records become the first shards
            records = read_records(self.path, self.id_key, self.vector_fields, self.records_key)
            for start in range(0, len(records), self.flush_every):
                self._pending = records[start : start + self.flush_every]
                self.flush()

    # -- during the run ------------------------------------------------------------------------------------------
    @property
    def done(self) -> set[str]:
        """Ids whose results are kept (flushed or pending)."""
        return set(self._index) | {r[self.id_key] for r in self._pending}

    def add(self, records: Sequence[dict]) -> None:
        self._pending.extend(records)
        if len(self._pending) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the pending results as one shard (atomically)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        number = len(list(self.partial.glob("shard-*.safetensors")))
        shard = self.partial / f"shard-{number:06d}.safetensors"
        _write_shard(shard, self._pending, self.id_key, self.vector_fields)
        for row, record in enumerate(self._pending):
            self._index[record[self.id_key]] = (shard, row)
        self._pending = []

    # -- the end -------------------------------------------------------------------------------------------------
    def _ordered(self, names: Sequence[str]) -> Iterator[dict]:
        # Shards are read on demand (a few kept), so memory stays flat however many results there are.
        cache: OrderedDict[Path, list[dict]] = OrderedDict()
        for name in names:
            shard, row = self._index[name]
            if shard not in cache:
                cache[shard] = _read_shard(shard, self.vector_fields)
                if len(cache) > 4:
                    cache.popitem(last=False)
            yield cache[shard][row]

    def finalize(self, names: Sequence[str]) -> Path:
        """Write the results of `names` (those that have one), in that order, to the final file; remove the partial
        folder. Results of inputs no longer asked for are dropped."""
        self.flush()
        names = [n for n in names if n in self._index]
        stale = len(self._index) - len(names)
        if stale:
            logger.warning("%d kept result(s) belong to inputs not given this time; they are left out.", stale)
        writer = {
            ".jsonl": self._write_jsonl,
            ".json": self._write_json,
            ".parquet": self._write_parquet,
            ".safetensors": self._write_safetensors,
        }[self.path.suffix.lower()]
        writer(names)
        shutil.rmtree(self.partial, ignore_errors=True)
        return self.path

    def _write_jsonl(self, names: Sequence[str]) -> None:
        sidecar = settings_sidecar(self.path)
        with atomic_write(self.path, "w") as stream:
            for record in self._ordered(names):
                stream.write(json.dumps(_jsonable(record, self.vector_fields)) + "\n")
            # the previous output's settings go just before the new output replaces it (see `settings_sidecar`)
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()
        with atomic_write(sidecar, "w") as stream:
            json.dump({**self.header, "output": self.path.name, "settings": self.settings}, stream, indent=2)

    def _write_json(self, names: Sequence[str]) -> None:
        records = [_jsonable(r, self.vector_fields) for r in self._ordered(names)]
        document = {**self.header, "settings": self.settings, self.records_key: records}
        with atomic_write(self.path, "w") as stream:
            json.dump(document, stream, indent=2)

    def _write_parquet(self, names: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        metadata = {"settings": json.dumps(self.settings), **{k: json.dumps(v) for k, v in self.header.items()}}
        with atomic_write(self.path) as stream:
            writer = None
            for start in range(0, len(names), self.flush_every):
                rows = [_jsonable(r, self.vector_fields) for r in self._ordered(names[start : start + self.flush_every])]
                columns = {k: [row[k] for row in rows] for k in rows[0]}
                arrays = {
                    k: pa.array(v, type=pa.list_(pa.float32(), len(v[0]))) if k in self.vector_fields else pa.array(v)
                    for k, v in columns.items()
                }
                table = pa.table(arrays)
                if writer is None:
                    writer = pq.ParquetWriter(stream, table.schema.with_metadata(metadata))
                writer.write_table(table)
            if writer is None:  # nothing succeeded: an empty table with the id column
                writer = pq.ParquetWriter(stream, pa.schema([(self.id_key, pa.string())], metadata=metadata))
            writer.close()

    def _write_safetensors(self, names: Sequence[str]) -> None:
        # The safetensors layout is a JSON header then each tensor's bytes: with the row count and widths known up
        # front, the tensors are streamed shard by shard instead of being assembled in memory.
        widths = {}
        if names:
            first = next(self._ordered(names[:1]))
            widths = {k: int(np.asarray(first[k]).shape[0]) for k in self.vector_fields}
        header, offset = {}, 0
        for name in self.vector_fields:
            size = len(names) * widths.get(name, 0) * 4
            header[name] = {"dtype": "F32", "shape": [len(names), widths.get(name, 0)], "data_offsets": [offset, offset + size]}
            offset += size
        header["__metadata__"] = {
            "names": json.dumps(list(names)),
            "settings": json.dumps(self.settings),
            **{k: str(v) for k, v in self.header.items()},
        }
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        with atomic_write(self.path) as stream:
            stream.write(len(encoded).to_bytes(8, "little"))
            stream.write(encoded)
            for name in self.vector_fields:
                for record in self._ordered(names):
                    vector = np.ascontiguousarray(record[name], dtype="<f4")
                    if vector.shape != (widths[name],):
                        raise ValueError(f"{record[self.id_key]}: {name} has shape {vector.shape}, expected ({widths[name]},)")
                    stream.write(vector.tobytes())


class MemoryOutput:
    """[`BatchOutput`]'s interface for a run without an output file: results kept in memory, in `records` (input
    order) after the run."""

    def __init__(self, id_key: str = "video"):
        self.id_key = id_key
        self._kept: dict[str, dict] = {}
        self.records: list[dict] = []

    @property
    def done(self) -> set[str]:
        return set(self._kept)

    def add(self, records: Sequence[dict]) -> None:
        self._kept.update((record[self.id_key], record) for record in records)

    def flush(self) -> None:
        pass

    def finalize(self, names: Sequence[str]) -> None:
        self.records = [self._kept[name] for name in names if name in self._kept]


# ----------------------------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """What a run did: `written` results in the output (resumed ones included), `skipped` `(input, reason)`."""

    total: int
    computed: int = 0
    resumed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    output: Path | None = None
    prepare_seconds: float = 0.0
    compute_seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.computed + self.resumed

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.skipped else 0

    def line(self, verb: str) -> str:
        """One summary line: counts, the output, and every skipped input by name."""
        text = f"{verb} {self.written} of {self.total} input(s)"
        if self.resumed:
            text += f" ({self.resumed} kept from the earlier run)"
        if self.output is not None:
            text += f" -> {self.output}"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + ", ".join(name for name, _ in self.skipped)
        return text


def _unique(inputs: Sequence[str]) -> list[str]:
    seen, unique = set(), []
    for name in inputs:
        if name not in seen:
            seen.add(name)
            unique.append(name)
    if len(unique) < len(inputs):
        logger.warning("%d input(s) were given more than once; each is processed once.", len(inputs) - len(unique))
    return unique


def _lower_this_threads_priority() -> None:
    """Decoding threads yield the cores to the model's threads: a forward on all cores waits at every parallel
    region for a thread the scheduler gave to decoding, so decoding should run in the forward's gaps instead.
    Linux only (per-thread nice); elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class _Prefetcher:
    """Prepares slices ahead of the model: with `num_workers` threads, slice `i + 1` is decoded while slice `i`
    computes. `slice(i)` returns, per input, a callable that gives the prepared input or raises its error (so errors
    surface in input order, where the sequential loop would meet them)."""

    def __init__(self, prepare: Callable[[str], object], slices: list[list[str]], num_workers: int):
        self.prepare, self.slices = prepare, slices
        self.executor = None
        self.futures: dict[int, list] = {}
        if num_workers > 0:
            self.executor = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="prepare",
                                               initializer=_lower_this_threads_priority)  # fmt: skip

    def _submit(self, index: int) -> None:
        if index < len(self.slices) and index not in self.futures:
            self.futures[index] = [self.executor.submit(self.prepare, name) for name in self.slices[index]]

    def slice(self, index: int) -> list[Callable[[], object]]:
        if self.executor is None:
            return [lambda name=name: self.prepare(name) for name in self.slices[index]]
        self._submit(index)
        self._submit(index + 1)  # the next slice decodes while this one computes
        return [future.result for future in self.futures.pop(index)]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def run_batch(
    inputs: Sequence[str],
    prepare: Callable[[str], object],
    compute: Callable[[list[str], list[object]], list[dict]],
    output: BatchOutput | MemoryOutput,
    batch_size: int = 1,
    on_error: str = "skip",
    progress: bool = True,
    description: str = "processing",
    report: Callable[[str], None] | None = None,
    num_workers: int = 0,
) -> BatchSummary:
    """Process `inputs` in order and keep every result in `output`; returns the [`BatchSummary`].

    Args:
        inputs: input names (video paths); repeated names are processed once.
        prepare: `name -> prepared input` (decoding, preprocessing). Raising one of [`INPUT_ERRORS`] marks the
            input as bad.
        compute: `(names, prepared) -> records` for one batch of good inputs (the model forward); one record per
            name, each holding `output.id_key`. Its exceptions stop the run (they are not about one input).
        output: the [`BatchOutput`] (resumed results are skipped; see its `resume`).
        batch_size: inputs per slice (fixed slices of the input list: a resumed run forms the same batches).
        on_error: `"skip"` (name the input through `report` and go on) or `"fail"` (raise [`BatchInputError`]).
        report: where per-input messages go (default: stderr).
        num_workers: threads that run `prepare` for the next slice while `compute` runs the current one (0: prepare
            in turn). Results, their order, skipping and `on_error` are the same for every value.

    A `KeyboardInterrupt` writes the pending results to the partial folder before it propagates, so a rerun with
    `resume=True` continues where this one stopped.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    report = report or (lambda message: print(message, file=sys.stderr, flush=True))
    names = _unique([os.fspath(name) for name in inputs])
    done = output.done
    summary = BatchSummary(total=len(names), resumed=sum(name in done for name in names))
    # Fixed slices; fully kept ones are skipped. A partly kept slice is recomputed whole (same batch, same numbers);
    # only its missing results are kept.
    slices = [names[start : start + batch_size] for start in range(0, len(names), batch_size)]
    slices = [batch for batch in slices if not all(name in done for name in batch)]
    prefetcher = _Prefetcher(prepare, slices, num_workers)
    try:
        with tqdm(total=len(names), initial=summary.resumed, desc=description, unit="input", disable=not progress) as bar:
            for index, batch in enumerate(slices):
                good, prepared = [], []
                began = time.perf_counter()
                for name, prepared_input in zip(batch, prefetcher.slice(index)):
                    try:
                        prepared.append(prepared_input())
                        good.append(name)
                    except INPUT_ERRORS as error:
                        reason = f"{type(error).__name__}: {error}"
                        if on_error == "fail":
                            raise BatchInputError(name, reason) from error
                        # (a bad input of an earlier run is tried and named again: the summary covers the output)
                        summary.skipped.append((name, reason))
                        report(f"skipped {name}: {reason}")
                summary.prepare_seconds += time.perf_counter() - began
                if good:
                    began = time.perf_counter()
                    records = compute(good, prepared)
                    summary.compute_seconds += time.perf_counter() - began
                    new = [record for record in records if record[output.id_key] not in done]
                    output.add(new)
                    summary.computed += len(new)
                bar.update(sum(name not in done for name in batch))
    except BaseException:
        prefetcher.close()
        output.flush()  # keep what was computed: `resume` continues from here
        raise
    prefetcher.close()
    summary.output = output.finalize(names)
    return summary

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""A FAISS index over clip embeddings (``internvideo2 index`` / ``internvideo2 search``).

* :func:`build_index` -- vectors + ids + paths -> :class:`VideoIndex`. Vectors are L2-normalised, so inner product is
  cosine similarity (the retrieval score of the video-text models). The kind follows the collection's size:
  exact inner product (``IndexFlatIP``) up to :data:`EXACT_SEARCH_LIMIT` vectors, HNSW above it (graph search: no
  training pass, recall@10 close to 1 at ``efSearch`` 128; measured by ``benchmarks/benchmark_index.py``, see
  ``docs/scale_out.md``). ``kind="ivfpq"`` (inverted lists + product quantisation) is the choice when the vectors no
  longer fit in memory uncompressed.
* :func:`load_embeddings` -- the embeddings written by ``internvideo2 embed`` (a local ``.parquet`` file) or by
  ``--engine ray`` (a folder of Parquet files), with the model they came from.
* :meth:`VideoIndex.save` / :func:`load_index` -- a folder: ``index.faiss``, ``items.parquet`` (row -> id, source
  path, span) and ``index.json`` (model, revision, feature, kind, dimension, count).

FAISS is optional: ``pip install 'transformers-internvideo2[index]'``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .batch import atomic_write
from .ray_engine import clip_id, read_engine_output


logger = logging.getLogger(__name__)

__all__ = [
    "EXACT_SEARCH_LIMIT",
    "EmbeddingTable",
    "VideoIndex",
    "build_index",
    "load_embeddings",
    "load_index",
    "require_faiss",
]

# Up to this many vectors, exact search is fast enough (a 512-d flat scan of 50k vectors is a few ms per query on one
# core) and has no recall loss; above it the default is HNSW.
EXACT_SEARCH_LIMIT = 50_000
INDEX_KINDS = ("auto", "flat", "hnsw", "ivfpq")
HNSW_NEIGHBOURS = 32  # graph degree M
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
_INDEX_FILE, _ITEMS_FILE, _META_FILE = "index.faiss", "items.parquet", "index.json"


def require_faiss():
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            f"The index needs FAISS, which is not installed ({error}). Install the optional extra: "
            "pip install 'transformers-internvideo2[index]' (or `pip install faiss-cpu`)."
        ) from error
    return faiss


def _normalised(vectors) -> np.ndarray:
    vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2:
        raise ValueError(f"Expected a (count, dimension) array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
        raise ValueError("Vectors must be finite and non-zero to be compared by cosine similarity.")
    return vectors / norms


@dataclass
class EmbeddingTable:
    """Vectors with their ids, source paths and spans, and where they came from (model, revision, feature)."""

    vectors: np.ndarray
    ids: list[str]
    source_paths: list[str]
    spans: list[tuple[float | None, float | None]] = field(default_factory=list)
    model: str | None = None
    revision: str | None = None
    feature: str = "video_embeds"
    modality: str = "video"  # what the vectors encode: video, audio or audio_video (``internvideo2 embed --modality``)


def load_embeddings(path: str | os.PathLike, feature: str | None = None) -> EmbeddingTable:
    """The embeddings of ``internvideo2 embed``: a ``.parquet`` file (local engine) or a folder of Parquet files
    (``--engine ray``; failed inputs left out, one row per id). `feature` defaults to the retrieval embedding of the
    modality the file records (``video_embeds``, ``audio_embeds``, ``audio_video_embeds``)."""
    path = Path(path)
    modality = "video"  # the Ray engine embeds video only; files written before audio existed record nothing
    if path.is_dir():
        rows = read_engine_output(path)
        run = json.loads((path / "_run.json").read_text()) if (path / "_run.json").is_file() else {}
        model, revision = run.get("model"), run.get("revision")
        if rows:
            model, revision = rows[0].get("model", model), rows[0].get("revision", revision)
        spans = [(r.get("span_start_s"), r.get("span_end_s")) for r in rows]
        ids, sources = [r["id"] for r in rows], [r["source_path"] for r in rows]
    elif path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = table.to_pylist()
        schema_metadata = table.schema.metadata or {}
        settings = json.loads(schema_metadata.get(b"settings", b"{}"))
        model, revision = settings.get("model"), None
        modality = settings.get("modality") or json.loads(schema_metadata.get(b"modality", b'"video"'))
        sources = [os.path.abspath(r["video"]) for r in rows]
        ids, spans = [clip_id(s) for s in sources], [(None, None)] * len(rows)
    else:
        raise ValueError(f"{path}: expected the .parquet file or the Parquet folder (--engine ray) of `internvideo2 embed`.")
    if not rows:
        raise ValueError(f"{path} holds no embeddings.")
    feature = feature or f"{modality}_embeds"
    if feature not in rows[0]:
        available = sorted(k for k, v in rows[0].items() if isinstance(v, (list, np.ndarray)))
        raise KeyError(f"{path} has no {feature!r} column; vector columns there: {available}")
    vectors = np.stack([np.asarray(r[feature], dtype=np.float32) for r in rows])
    return EmbeddingTable(vectors, ids, sources, spans, model=model, revision=revision, feature=feature,
                          modality=modality)  # fmt: skip


class VideoIndex:
    """A FAISS index and its row table. ``search(queries, k)`` -> per query, the top-k
    ``{"id", "source_path", "span", "score"}`` best first (score: cosine similarity, exact or approximate)."""

    def __init__(self, index, ids: Sequence[str], source_paths: Sequence[str], spans=None, metadata: dict | None = None):
        if index.ntotal != len(ids) or len(ids) != len(source_paths):
            raise ValueError(f"The index holds {index.ntotal} vectors but {len(ids)} ids / {len(source_paths)} paths.")
        self.index, self.ids, self.source_paths = index, list(ids), list(source_paths)
        self.spans = list(spans) if spans is not None else [(None, None)] * len(self.ids)
        self.metadata = dict(metadata or {})

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dimension(self) -> int:
        return self.index.d

    def search_vectors(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS search of (normalised) queries: `(scores, rows)`, each `(Q, k)`; rows are -1 past the end."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = _normalised(np.atleast_2d(queries))
        if queries.shape[1] != self.dimension:
            raise ValueError(
                f"Query vectors have dimension {queries.shape[1]}, the index {self.dimension} (feature "
                f"{self.metadata.get('feature')!r} of {self.metadata.get('model')!r}): encode queries with that model."
            )
        return self.index.search(queries, min(k, len(self)))

    def search(self, queries, k: int = 10) -> list[list[dict]]:
        scores, rows = self.search_vectors(queries, k)
        return [
            [
                {"id": self.ids[r], "source_path": self.source_paths[r], "span": self.spans[r], "score": float(s)}
                for s, r in zip(score_row, row_ids)
                if r >= 0
            ]
            for score_row, row_ids in zip(scores, rows)
        ]

    def save(self, folder: str | os.PathLike) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        faiss = require_faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / _INDEX_FILE) as stream:
            stream.write(faiss.serialize_index(self.index).tobytes())
        items = pa.table({
            "row": pa.array(range(len(self)), pa.int64()),
            "id": pa.array(self.ids, pa.string()),
            "source_path": pa.array(self.source_paths, pa.string()),
            "span_start_s": pa.array([s[0] for s in self.spans], pa.float64()),
            "span_end_s": pa.array([s[1] for s in self.spans], pa.float64()),
        })  # fmt: skip
        with atomic_write(folder / _ITEMS_FILE) as stream:
            pq.write_table(items, stream)
        with atomic_write(folder / _META_FILE, "w") as stream:
            json.dump({**self.metadata, "count": len(self), "dimension": self.dimension}, stream, indent=2)
        return folder


def _make_faiss_index(vectors: np.ndarray, kind: str, seed: int = 0):
    faiss = require_faiss()
    count, dimension = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:  # ivfpq: ~4 sqrt(N) lists, 8-bit codes of 4-dimension sub-vectors (8x smaller), 32 lists probed per query
        lists = max(1, min(int(4 * np.sqrt(count)), count // 39))
        subquantisers = next(m for m in (dimension // 4, dimension // 2, dimension, 1) if m and dimension % m == 0)
        quantiser = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(quantiser, dimension, lists, subquantisers, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = min(32, lists)
    index.add(vectors)
    return index


def build_index(vectors, ids: Sequence[str], source_paths: Sequence[str], spans=None, kind: str = "auto",
                metadata: dict | None = None) -> VideoIndex:  # fmt: skip
    """Index `vectors` (normalised here): `kind="auto"` is exact below [`EXACT_SEARCH_LIMIT`] vectors, HNSW above."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
    vectors = _normalised(vectors)
    if len(vectors) == 0:
        raise ValueError("Nothing to index: no vectors.")
    if len(set(ids)) != len(ids):
        raise ValueError("Ids must be unique: each row of the index is one clip.")
    if kind == "auto":
        kind = "flat" if len(vectors) <= EXACT_SEARCH_LIMIT else "hnsw"
    if kind == "ivfpq" and len(vectors) < 39 * 4:
        raise ValueError(f"IVF-PQ needs at least {39 * 4} vectors to train; use kind='flat' for {len(vectors)}.")
    index = _make_faiss_index(vectors, kind)
    logger.info("built a %s index of %d vectors of dimension %d", kind, len(vectors), vectors.shape[1])
    return VideoIndex(index, ids, source_paths, spans, metadata={**(metadata or {}), "kind": kind})


def index_embeddings(table: EmbeddingTable, kind: str = "auto") -> VideoIndex:
    """[`build_index`] of an [`EmbeddingTable`], its model / revision / feature / modality kept in the index's
    metadata (``search`` encodes video queries in that modality)."""
    metadata = {"model": table.model, "revision": table.revision, "feature": table.feature, "modality": table.modality}
    return build_index(table.vectors, table.ids, table.source_paths, table.spans, kind=kind, metadata=metadata)


def load_index(folder: str | os.PathLike) -> VideoIndex:
    import pyarrow.parquet as pq

    faiss = require_faiss()
    folder = Path(folder)
    missing = [name for name in (_INDEX_FILE, _ITEMS_FILE, _META_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not an index folder written by `internvideo2 index` (missing {missing}).")
    index = faiss.deserialize_index(np.frombuffer((folder / _INDEX_FILE).read_bytes(), dtype=np.uint8))
    items = pq.read_table(folder / _ITEMS_FILE).to_pydict()
    metadata = json.loads((folder / _META_FILE).read_text())
    spans = list(zip(items["span_start_s"], items["span_end_s"]))
    return VideoIndex(index, items["id"], items["source_path"], spans, metadata)

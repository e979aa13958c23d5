# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 index`: a FAISS index (:mod:`transformers_internvideo2.tasks.index`) from the embeddings of
`internvideo2 embed` (a .parquet file, or the Parquet folder of `--engine ray`), saved as a folder."""

from __future__ import annotations

import argparse
import sys

from ..tasks.index import index_embeddings, load_embeddings


def add_parser(commands) -> None:
    index = commands.add_parser(
        "index",
        help="build a FAISS index from `internvideo2 embed` Parquet output",
        description="Exact inner-product search up to 50,000 clips, HNSW above (or --kind). Vectors are "
        "L2-normalised: scores are cosine similarities. Writes index.faiss, items.parquet (row -> id, path, span) "
        "and index.json (model, revision, feature) into the output folder.",
    )
    index.add_argument("embeddings", metavar="EMBEDDINGS", help="a .parquet file or a Parquet folder (--engine ray)")
    index.add_argument("--output", required=True, metavar="FOLDER", help="the index folder (created)")
    index.add_argument("--feature", default=None,
                       help="vector column to index (default: the retrieval feature of the modality the embeddings "
                       "record: video_embeds, audio_embeds or audio_video_embeds)")  # fmt: skip
    index.add_argument("--kind", choices=["auto", "flat", "hnsw", "ivfpq"], default="auto",
                       help="auto (default): flat (exact) up to 50,000 vectors, hnsw above")  # fmt: skip
    index.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    table = load_embeddings(args.embeddings, feature=args.feature)
    index = index_embeddings(table, kind=args.kind)
    folder = index.save(args.output)
    print(f"indexed {len(index)} clip(s) ({index.metadata['kind']}, dimension {index.dimension}, {table.feature} "
          f"({table.modality}) of {table.model}) -> {folder}", file=sys.stderr)  # fmt: skip
    return 0

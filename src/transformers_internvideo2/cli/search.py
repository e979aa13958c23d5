# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 search`: the top-k clips of an index (`internvideo2 index`) for a text query, or for a video with
`--video` (video-to-video). The query is encoded by the model the embeddings came from (named in the index), a
`--video` query in the modality the index records (`embed --modality audio`: the query file's sound)."""

from __future__ import annotations

import argparse
import json

from ..tasks.index import load_index
from ..tasks.inference import is_video_text_folder, resolve_device
from ..tasks.retrieval import load_model_and_processor, search_index
from .common import DEVICE_HELP, positive_int


def add_parser(commands) -> None:
    search = commands.add_parser(
        "search",
        help="search an index for a text query or a video (--video)",
        description="Prints rank, score (cosine similarity) and clip path; --json prints one JSON document.",
    )
    search.add_argument("query", nargs="?", default=None, help="a text query (omit with --video)")
    search.add_argument("--index", required=True, metavar="FOLDER", help="a folder written by `internvideo2 index`")
    search.add_argument("--video", default=None, metavar="PATH", help="find clips like this video instead")
    search.add_argument("--top-k", type=positive_int, default=10, help="results per query (default 10)")
    search.add_argument("--model", default=None,
                        help="the video-text model encoding the query (default: the one named in the index)")  # fmt: skip
    search.add_argument("--device", default=None, help=DEVICE_HELP)
    search.add_argument("--json", action="store_true", help="print the results as JSON")
    search.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.video is None):
        raise ValueError("Give a text query or --video PATH (one of them).")
    index = load_index(args.index)
    model_id = args.model or index.metadata.get("model")
    if not model_id:
        raise ValueError(f"{args.index} does not name the model of its embeddings; pass --model.")
    if not is_video_text_folder(model_id):
        raise ValueError(f"{model_id} is not a video-text model: text queries need one (embed with a stage-2 model).")
    model, processor = load_model_and_processor(model_id, device=resolve_device(args.device))
    texts = None if args.query is None else [args.query]
    videos = None if args.video is None else [args.video]
    hits = search_index(index, model, processor, texts=texts, videos=videos, k=args.top_k)[0]
    if args.json:
        print(json.dumps({"query": args.query or args.video, "results": hits}, indent=2))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:>4}  {hit['score']:.4f}  {hit['source_path']}")
    return 0

#!/usr/bin/env python
"""Recall and latency of the approximate FAISS indexes of `internvideo2 index` against exact search.

    python benchmarks/benchmark_index.py --count 100000 --dimension 512 --json benchmarks/results/index.json

Synthetic L2-normalised vectors (``--distribution clustered``: a mixture of 1,000 Gaussian clusters, like embeddings of
a real collection; ``uniform``: directions uniform on the sphere, the hardest case for approximate search). For each
index kind it reports the build time, recall@10 against the exact ``IndexFlatIP`` top-10 of the same queries, and the
median per-query latency (one query at a time, and batched). The load average of the machine is printed next to the
numbers: on a shared machine the timings move with it. A measurement tool: nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


try:
    from transformers_internvideo2.tasks.index import build_index
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from transformers_internvideo2.tasks.index import build_index


def synthetic_vectors(count: int, dimension: int, distribution: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if distribution == "uniform":
        vectors = rng.standard_normal((count, dimension), dtype=np.float32)
    else:
        centres = rng.standard_normal((1000, dimension), dtype=np.float32)
        vectors = centres[rng.integers(0, len(centres), count)] + 0.5 * rng.standard_normal((count, dimension), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def measure(index, queries: np.ndarray, k: int) -> dict:
    single = []
    for query in queries[:200]:
        began = time.perf_counter()
        index.search_vectors(query[None], k)
        single.append(time.perf_counter() - began)
    began = time.perf_counter()
    _, rows = index.search_vectors(queries, k)
    batched = time.perf_counter() - began
    return {
        "latency_ms_single_query_median": 1000 * statistics.median(single),
        "latency_ms_per_query_batched": 1000 * batched / len(queries),
        "rows": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", nargs="+", default=["hnsw", "ivfpq"], choices=["hnsw", "ivfpq"])
    parser.add_argument("--distribution", choices=["clustered", "uniform"], default="clustered")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[128, 256, 512],
                        help="HNSW efSearch values measured on the same graph (the first is the index default)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[32, 64, 128],
                        help="IVF-PQ lists probed per query, measured on the same index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    import faiss

    vectors = synthetic_vectors(args.count, args.dimension, args.distribution, args.seed)
    queries = synthetic_vectors(args.queries, args.dimension, args.distribution, args.seed + 1)
    ids = [str(i) for i in range(args.count)]
    report = {"settings": vars(args), "faiss": faiss.__version__, "threads": faiss.omp_get_max_threads(),
              "cpu_count": os.cpu_count(), "results": {}}  # fmt: skip
    truth = None
    for kind in ["flat", *args.kinds]:
        load_before = load_average()
        began = time.perf_counter()
        index = build_index(vectors, ids, ids, kind=kind)
        build_seconds = time.perf_counter() - began
        knobs = {"hnsw": ("efSearch", args.ef_search), "ivfpq": ("nprobe", args.nprobe)}.get(kind, (None, [None]))
        for value in knobs[1]:
            if kind == "hnsw":
                index.index.hnsw.efSearch = value
            elif kind == "ivfpq":
                index.index.nprobe = value
            result = measure(index, queries, args.k)
            rows = result.pop("rows")
            if truth is None:
                truth = rows
            recall = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(rows, truth)]))
            result.update(build_seconds=build_seconds, recall_at_k=recall,
                          load_average_1_5_15=f"{load_before} -> {load_average()}")  # fmt: skip
            name = kind if value is None else f"{kind} {knobs[0]}={value}"
            report["results"][name] = result
            print(f"{name:>20}: recall@{args.k} {recall:.4f}  build {build_seconds:7.1f} s  query "
                  f"{result['latency_ms_single_query_median']:.3f} ms (single, median)  "
                  f"{result['latency_ms_per_query_batched']:.3f} ms/query (batch of {args.queries})  "
                  f"load {result['load_average_1_5_15']}", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

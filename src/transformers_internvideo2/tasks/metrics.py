# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Retrieval and classification metrics.

Conventions (all functions):

* Ranks are **1-based**: the best-scored item has rank 1. ``R@K`` is the percentage of queries whose ground truth
  has rank ``<= K`` (the original ``itm_eval`` writes it as 0-based ``rank < K``: the same number). ``MedR`` and
  ``MeanR`` are the median and mean of the 1-based ranks.
* Several ground truths (e.g. MSR-VTT style: several captions per video): a query's rank is the **best (minimum)**
  rank over its ground-truth items, as in the original evaluation, in both directions.
* **Ties** (items with exactly the same score as the ground truth, e.g. the ``-100`` filler of re-ranked matrices
  outside the top-k): ``ties="pessimistic"`` (default) places the ground truth after every item with an equal score
  (``rank = #{score >= s_gt}``), ``"optimistic"`` before them (``rank = 1 + #{score > s_gt}``), ``"average"`` takes
  the mean of the two. The original evaluation sorts with ``np.argsort(...)[::-1]``, whose order among ties is an
  implementation detail of NumPy's sort; a constant score matrix therefore scores ``R@1 = 0`` here (for more than
  one candidate) instead of an arbitrary number. With real-valued similarities ties are rare and all three agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np


__all__ = [
    "TIES_POLICIES",
    "ground_truth_ranks",
    "retrieval_metrics",
    "topk_accuracy",
]

TIES_POLICIES = ("pessimistic", "optimistic", "average")
TiesPolicy = Literal["pessimistic", "optimistic", "average"]


def _to_numpy_2d(scores, name: str) -> np.ndarray:
    if hasattr(scores, "detach"):  # torch tensor, without importing torch here
        scores = scores.detach().float().cpu().numpy()
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D score matrix, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"`{name}` contains NaN scores")
    return array


def ground_truth_ranks(
    scores, ground_truth: Sequence[Sequence[int]], ties: TiesPolicy = "pessimistic"
) -> np.ndarray:
    """1-based rank of the best-ranked ground-truth item of every query.

    Args:
        scores: `(num_queries, num_items)` scores, higher is better (NumPy array or torch tensor).
        ground_truth: for each query, the non-empty list of its correct item indices.
        ties: how to rank the ground truth among items with an identical score (see module docstring).

    Returns:
        `np.ndarray` of shape `(num_queries,)`; `float64` (half-integers can occur with `ties="average"`).
    """
    if ties not in TIES_POLICIES:
        raise ValueError(f"`ties` must be one of {TIES_POLICIES}, got {ties!r}")
    scores = _to_numpy_2d(scores, "scores")
    num_queries, num_items = scores.shape
    if len(ground_truth) != num_queries:
        raise ValueError(f"Got {len(ground_truth)} ground-truth entries for {num_queries} queries")
    ranks = np.empty(num_queries, dtype=np.float64)
    for query, targets in enumerate(ground_truth):
        targets = np.asarray(list(targets), dtype=np.int64)
        if targets.size == 0:
            raise ValueError(f"Query {query} has no ground-truth item")
        if targets.min() < 0 or targets.max() >= num_items:
            raise ValueError(f"Query {query}: ground-truth index out of range [0, {num_items}): {targets.tolist()}")
        row = scores[query]
        target_scores = row[targets][:, None]
        better = (row[None, :] > target_scores).sum(axis=1)
        equal_or_better = (row[None, :] >= target_scores).sum(axis=1)  # includes the target itself
        if ties == "optimistic":
            candidate_ranks = better + 1.0
        elif ties == "pessimistic":
            candidate_ranks = equal_or_better.astype(np.float64)
        else:
            candidate_ranks = (better + 1.0 + equal_or_better) / 2.0
        ranks[query] = candidate_ranks.min()
    return ranks


def _normalise_text_to_video(text_to_video, num_texts: int, num_videos: int) -> list[list[int]]:
    if text_to_video is None:
        if num_texts != num_videos:
            raise ValueError(
                f"Without `text_to_video`, caption i must belong to video i, which needs a square matrix; got "
                f"{num_videos} videos x {num_texts} captions"
            )
        return [[i] for i in range(num_texts)]
    if len(text_to_video) != num_texts:
        raise ValueError(f"`text_to_video` has {len(text_to_video)} entries for {num_texts} captions")
    mapping = []
    for caption, videos in enumerate(text_to_video):
        videos = [int(videos)] if np.ndim(videos) == 0 else [int(v) for v in videos]
        if not videos:
            raise ValueError(f"Caption {caption} has no ground-truth video")
        for video in videos:
            if not 0 <= video < num_videos:
                raise ValueError(f"Caption {caption}: video index {video} out of range [0, {num_videos})")
        mapping.append(videos)
    return mapping


def retrieval_metrics(
    sim_v2t,
    text_to_video: Sequence[int] | Sequence[Sequence[int]] | None = None,
    sim_t2v=None,
    ks: Sequence[int] = (1, 5, 10),
    ties: TiesPolicy = "pessimistic",
) -> dict[str, float]:
    """Text-to-video and video-to-text retrieval metrics, in percent (R@K) and ranks (MedR, MeanR).

    Args:
        sim_v2t: `(num_videos, num_texts)` scores of every video against every caption (higher is better).
        text_to_video: ground-truth video of each caption: an `int` per caption, or a list of ints per caption when
            a caption describes several videos. `None` means caption `i` belongs to video `i` (square matrix).
            A video's ground-truth captions (video-to-text) are all captions mapped to it; every video needs one.
        sim_t2v: `(num_texts, num_videos)` scores for the text-to-video direction when they differ from
            `sim_v2t.T` (e.g. the re-ranked matrices of the original evaluation, or its dual-softmax ones).
        ks: the recall cut-offs.
        ties: tie policy (module docstring).

    Returns:
        `dict` with `t2v_r{K}`, `t2v_medr`, `t2v_meanr`, `v2t_r{K}`, `v2t_medr`, `v2t_meanr`, and `r_mean` (the
        mean of all recall values, as the original's `r_mean` for ks=(1, 5, 10)). Recalls are percentages
        (0-100), not rounded.
    """
    sim_v2t = _to_numpy_2d(sim_v2t, "sim_v2t")
    num_videos, num_texts = sim_v2t.shape
    if sim_t2v is None:
        sim_t2v = sim_v2t.T
    else:
        sim_t2v = _to_numpy_2d(sim_t2v, "sim_t2v")
        if sim_t2v.shape != (num_texts, num_videos):
            raise ValueError(
                f"`sim_t2v` must have shape (num_texts, num_videos) = {(num_texts, num_videos)}, got {sim_t2v.shape}"
            )
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"Recall cut-offs must be >= 1, got {list(ks)}")

    t2v_truth = _normalise_text_to_video(text_to_video, num_texts, num_videos)
    v2t_truth: list[list[int]] = [[] for _ in range(num_videos)]
    for caption, videos in enumerate(t2v_truth):
        for video in videos:
            v2t_truth[video].append(caption)
    missing = [v for v, captions in enumerate(v2t_truth) if not captions]
    if missing:
        raise ValueError(f"Videos {missing[:10]} have no ground-truth caption; video-to-text recall is undefined")

    results: dict[str, float] = {}
    recalls = []
    for direction, scores, truth in (("t2v", sim_t2v, t2v_truth), ("v2t", sim_v2t, v2t_truth)):
        ranks = ground_truth_ranks(scores, truth, ties=ties)
        for k in ks:
            value = 100.0 * float(np.mean(ranks <= int(k)))
            results[f"{direction}_r{int(k)}"] = value
            recalls.append(value)
        results[f"{direction}_medr"] = float(np.median(ranks))
        results[f"{direction}_meanr"] = float(np.mean(ranks))
    results["r_mean"] = float(np.mean(recalls))
    return results


def topk_accuracy(
    logits, labels: Sequence[int], ks: Sequence[int] = (1, 5), ties: TiesPolicy = "pessimistic"
) -> dict[str, float]:
    """Top-k classification accuracy in percent.

    Args:
        logits: `(num_samples, num_classes)` scores (logits, probabilities or similarities; only the order matters).
        labels: the true class index of each sample.
        ks: cut-offs; a `k` larger than the number of classes counts every sample as correct.
        ties: tie policy (module docstring); the default never credits a tie with the true class.

    Returns:
        `{"top{k}": accuracy}`.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    ranks = ground_truth_ranks(logits, [[int(label)] for label in labels], ties=ties)
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"Cut-offs must be >= 1, got {list(ks)}")
    return {f"top{int(k)}": 100.0 * float(np.mean(ranks <= int(k))) for k in ks}

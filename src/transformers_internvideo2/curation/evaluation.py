"""Shot-boundary evaluation: precision, recall and F1 of detected boundaries against known ones, and test videos made
by joining shots with known hard cuts and gradual transitions.

A boundary is a frame interval: a hard cut after frame `k` is `(k, k)` (the last frame of the shot that ends); a
gradual transition whose mixed frames are `a..b` is `(a - 1, b)` (from the last pure frame of the first shot to the
last mixed frame). Detected shots give one boundary frame between consecutive shots: the last frame of the first
shot when the next starts right after it, else the middle of the frames between them. A detection matches a true
boundary when it lies within `tolerance` frames of its interval; each is matched at most once (closest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .shots import Shot


__all__ = ["BoundaryScores", "boundary_scores", "join_shots", "shots_to_boundaries"]


@dataclass
class BoundaryScores:
    true_positives: int
    detected: int
    expected: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.detected if self.detected else float(self.expected == 0)

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def __add__(self, other: "BoundaryScores") -> "BoundaryScores":
        return BoundaryScores(
            self.true_positives + other.true_positives, self.detected + other.detected, self.expected + other.expected
        )


def shots_to_boundaries(shots: Sequence[Shot]) -> list[int]:
    """One boundary frame between each pair of consecutive shots (see the module docstring)."""
    boundaries = []
    for before, after in zip(shots, shots[1:]):
        if after.start_frame <= before.end_frame:
            raise ValueError(f"Shots overlap or are out of order: {before} then {after}.")
        boundaries.append((before.end_frame + after.start_frame - 1) // 2)
    return boundaries


def boundary_scores(
    detected: Sequence[int], expected: Sequence[tuple[int, int]], tolerance: int = 1
) -> BoundaryScores:
    """Match detected boundary frames to true boundary intervals `(first, last)` within `tolerance` frames."""
    pairs = []
    for d, frame in enumerate(detected):
        for e, (first, last) in enumerate(expected):
            if last < first:
                raise ValueError(f"A true boundary interval must have first <= last, got {(first, last)}.")
            distance = max(first - frame, frame - last, 0)
            if distance <= tolerance:
                pairs.append((distance, d, e))
    used_detected, used_expected = set(), set()
    for _, d, e in sorted(pairs):
        if d not in used_detected and e not in used_expected:
            used_detected.add(d)
            used_expected.add(e)
    return BoundaryScores(len(used_expected), len(detected), len(expected))


def join_shots(
    shots: Sequence[np.ndarray], transitions: Sequence[int]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Join `uint8 (T_i, H, W, 3)` shots into one video. `transitions[i]` is the number of frames of the transition
    between shot `i` and `i + 1`: 0 for a hard cut, `n > 0` for a dissolve in which the last `n` frames of shot `i`
    fade into the first `n` frames of shot `i + 1` (both keep moving). Returns the video and the true boundary
    intervals."""
    if not shots:
        raise ValueError("No shots to join.")
    if len(transitions) != len(shots) - 1:
        raise ValueError(f"{len(shots)} shots need {len(shots) - 1} transitions, got {len(transitions)}.")
    shape = shots[0].shape[1:]
    if any(shot.shape[1:] != shape or shot.dtype != np.uint8 for shot in shots):
        raise ValueError("Every shot must be uint8 with the same frame size.")
    video = np.asarray(shots[0])
    boundaries = []
    for shot, count in zip(shots[1:], transitions):
        if count < 0:
            raise ValueError(f"Transition lengths must be >= 0, got {count}.")
        if count >= min(len(video), len(shot)):
            raise ValueError(f"A {count}-frame transition does not fit shots of {len(video)} and {len(shot)} frames.")
        start = len(video) - count
        weights = (np.arange(1, count + 1) / (count + 1))[:, None, None, None]
        mixed = np.rint(video[start:] * (1 - weights) + shot[:count] * weights).astype(np.uint8)
        boundaries.append((start - 1, start + count - 1) if count else (start - 1, start - 1))
        video = np.concatenate([video[:start], mixed, shot[count:]])
    return video, boundaries

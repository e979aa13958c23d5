"""Which frames of a video a model sees: one sampler with named modes, the way each original protocol picks them.

Every mode maps `(total_frames, num_frames)` to `num_frames` int64 indices into the video; the processors select a
mode by name (`frame_sampling=...`) and the decoder then reads only those frames. When a video has fewer frames than
asked for, frames repeat (as in the original code) and a warning says so.

| mode | protocol | rule (`L` frames, `T` asked, `round` = half to even, `int` truncates) |
| --- | --- | --- |
| `"segments"` | single-modality evaluation (`val`) | `seg = (L-1)/T`; frame `i = round(seg*i) + int(seg/2)` |
| `"test_clips"` | the test protocol's clips (`test`) | `dur = seg/(num_clips+1)`; clip `k`: `min(round(seg*i) + int(dur*(k+1)), L-1)` |
| `"random_segments"` | training (`train`) | frame `i` uniform in `[round(seg*i), round(seg*(i+1))]` |
| `"middle"` | stage-2 evaluation (`sample_type="middle"`) | `T' = min(T, L)` equal segments of `linspace(0, L, T'+1)`, their middles |
| `"demo"` | the original demo | `frames[::L//T][:T]` |
| `"linspace"` | InternVideo (v1) demo `load_video` | `int(linspace(0, L-1, T))` (first and last frame included) |
| `"mvbench"` | VideoChat2 benchmark evaluation | inside `[start, end]` s: `seg = (end-start)/T`, `int(start + seg/2 + round(seg*i))` |

The single-modality names of the original (`val`, `test`, `train`) are accepted as aliases.
"""

from __future__ import annotations

import warnings

import numpy as np


__all__ = [
    "FRAME_SAMPLING_ALIASES",
    "FRAME_SAMPLING_MODES",
    "RepeatedFramesWarning",
    "canonical_frame_sampling",
    "sample_frame_indices",
]

FRAME_SAMPLING_MODES = ("segments", "test_clips", "random_segments", "middle", "demo", "linspace", "mvbench")
FRAME_SAMPLING_ALIASES = {"val": "segments", "test": "test_clips", "train": "random_segments"}


class RepeatedFramesWarning(UserWarning):
    """More frames were asked for than the video has: some frames repeat."""


def canonical_frame_sampling(mode: str) -> str:
    """The mode's canonical name (aliases resolved); a clear error for unknown names."""
    mode = FRAME_SAMPLING_ALIASES.get(mode, mode)
    if mode not in FRAME_SAMPLING_MODES:
        raise ValueError(
            f"Unknown frame sampling mode {mode!r}; expected one of {FRAME_SAMPLING_MODES} (or the aliases "
            f"{tuple(FRAME_SAMPLING_ALIASES)})."
        )
    return mode


def _segment_starts(total: int, count: int) -> tuple[np.ndarray, float]:
    seg = max(0.0, float(total - 1) / count)
    return np.round(seg * np.arange(count, dtype=np.float64)).astype(np.int64), seg


def _segments(total: int, count: int) -> np.ndarray:
    starts, seg = _segment_starts(total, count)
    return starts + int(seg / 2)


def _test_clips(total: int, count: int, clip_index: int, num_clips: int) -> np.ndarray:
    if num_clips < 1 or not 0 <= clip_index < num_clips:
        raise ValueError(f"`clip_index` must be in [0, num_clips={num_clips}), got {clip_index}")
    starts, seg = _segment_starts(total, count)
    return starts + int(seg / (num_clips + 1) * (clip_index + 1))


def _random_segments(total: int, count: int, generator: np.random.Generator | None) -> np.ndarray:
    starts, seg = _segment_starts(total, count)
    ends = np.round(seg * np.arange(1, count + 1, dtype=np.float64)).astype(np.int64)
    rng = generator if generator is not None else np.random.default_rng()
    return rng.integers(starts, ends + 1)


def _middle(total: int, count: int) -> np.ndarray:
    kept = min(count, total)
    edges = np.linspace(0, total, kept + 1).astype(np.int64)
    indices = (edges[:-1] + edges[1:] - 1) // 2
    return np.concatenate([indices, np.full(count - kept, indices[-1])]) if kept < count else indices


def _demo(total: int, count: int) -> np.ndarray:
    indices = np.arange(0, total, max(1, total // count))[:count]
    return np.concatenate([indices, np.full(count - len(indices), indices[-1])]) if len(indices) < count else indices


def _linspace(total: int, count: int) -> np.ndarray:
    # evenly spaced over [0, L-1], truncated toward zero (the original casts the float positions to int32)
    return np.linspace(0, total - 1, count).astype(np.int64)


def _mvbench(total: int, count: int, fps: float | None, start: float | None, end: float | None) -> np.ndarray:
    last = total - 1
    if (start is not None or end is not None) and not fps:
        raise ValueError("A start/end window needs the video's fps.")
    start_index = max(0, round(start * fps)) if start is not None else 0
    end_index = min(round(end * fps), last) if end is not None else last
    if end_index < start_index:
        raise ValueError(f"Empty window: start={start}s, end={end}s at {fps} fps ({total} frames).")
    seg = (end_index - start_index) / count
    return np.asarray([int(start_index + seg / 2 + round(seg * i)) for i in range(count)], dtype=np.int64)


def sample_frame_indices(
    total_frames: int,
    num_frames: int,
    mode: str = "segments",
    *,
    clip_index: int = 0,
    num_clips: int = 1,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    generator: np.random.Generator | None = None,
    warn_on_repeat: bool = True,
) -> np.ndarray:
    """`num_frames` frame indices (`int64`, each in `[0, total_frames)`) of a `total_frames`-frame video by `mode`
    (see the module table). `clip_index` / `num_clips` are for `"test_clips"`, `generator` (a
    `numpy.random.Generator`) for `"random_segments"`, `fps` / `start` / `end` (seconds) for `"mvbench"`.

    Raises `ValueError` for an empty video, a non-positive frame count or an unknown mode; warns
    ([`RepeatedFramesWarning`]) when the video has fewer frames than asked, because frames then repeat.
    """
    if isinstance(total_frames, bool) or int(total_frames) <= 0:
        raise ValueError(f"Cannot sample frames from a video with {total_frames} frames")
    if isinstance(num_frames, bool) or int(num_frames) <= 0:
        raise ValueError(f"`num_frames` must be a positive number of frames to sample, got {num_frames!r}")
    total, count = int(total_frames), int(num_frames)
    mode = canonical_frame_sampling(mode)
    if mode == "segments":
        indices = _segments(total, count)
    elif mode == "test_clips":
        indices = _test_clips(total, count, clip_index, num_clips)
    elif mode == "random_segments":
        indices = _random_segments(total, count, generator)
    elif mode == "middle":
        indices = _middle(total, count)
    elif mode == "demo":
        indices = _demo(total, count)
    elif mode == "linspace":
        indices = _linspace(total, count)
    else:
        indices = _mvbench(total, count, fps, start, end)
    if warn_on_repeat and count > total:
        warnings.warn(
            f"Asked for {count} frames of a video with {total}: frames repeat.", RepeatedFramesWarning, stacklevel=2
        )
    return np.minimum(indices, total - 1).astype(np.int64)

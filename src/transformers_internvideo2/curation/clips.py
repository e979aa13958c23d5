"""The original clip rules of InternVideo2's data pipeline, as separate functions, and the clip table.

From shots to training clips:

1. **drop** shots of 2 s or less ([`is_too_short`]);
2. a shot longer than 30 s gives **one 30-s segment** inside it, at a seeded random position ([`segment_inside`]);
3. a clip **never crosses a shot boundary**: every clip is a span of one shot ([`check_inside_shot`]).

[`clips_from_shots`] applies them to a video's shots and returns the kept clips and the dropped shots with the reason.
The clip table ([`write_clip_table`], JSON lines or CSV) has one row per clip: `video`, `start`, `end` (seconds,
end exclusive), `shot_id`, `score` (the detector's, see [`~curation.shots.Shot`]), plus `clip_id`, `start_frame`,
`end_frame` (inclusive). [`cut_clip`] writes a clip to its own file with PyAV: packets copied unchanged when the clip
starts on a keyframe, else decoded and re-encoded.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .shots import Shot


logger = logging.getLogger(__name__)

__all__ = [
    "MAX_CLIP_SECONDS",
    "MIN_CLIP_SECONDS",
    "Clip",
    "DroppedShot",
    "check_inside_shot",
    "clips_from_shots",
    "cut_clip",
    "is_too_short",
    "read_clip_table",
    "segment_inside",
    "write_clip_table",
]

MIN_CLIP_SECONDS = 2.0  # shots this long or shorter are dropped
MAX_CLIP_SECONDS = 30.0  # longer shots give one segment of this length


@dataclass(frozen=True)
class Clip:
    clip_id: str
    video: str
    start: float
    end: float
    shot_id: int
    score: float
    start_frame: int
    end_frame: int

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class DroppedShot:
    video: str
    shot_id: int
    start_frame: int
    end_frame: int
    reason: str
    seconds: float


def _check_fps(fps: float) -> None:
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}.")


def is_too_short(shot: Shot, fps: float, min_seconds: float = MIN_CLIP_SECONDS) -> bool:
    """Rule 1: a shot of `min_seconds` or less is dropped."""
    _check_fps(fps)
    return shot.num_frames / fps <= min_seconds


def segment_inside(
    shot: Shot, fps: float, rng: np.random.Generator, max_seconds: float = MAX_CLIP_SECONDS
) -> tuple[int, int]:
    """Rule 2: the frames `(first, last)` of the clip taken from a shot: the whole shot up to `max_seconds`, else
    one segment of `max_seconds` starting at a uniformly drawn frame of the shot (drawn from `rng`)."""
    _check_fps(fps)
    length = int(np.floor(max_seconds * fps + 1e-9))
    if length <= 0:
        raise ValueError(f"max_seconds={max_seconds} is shorter than one frame at {fps} fps.")
    if shot.num_frames <= length:
        return shot.start_frame, shot.end_frame
    first = shot.start_frame + int(rng.integers(0, shot.num_frames - length + 1))
    return first, first + length - 1


def check_inside_shot(first: int, last: int, shot: Shot) -> None:
    """Rule 3: raise if the frames `first..last` leave the shot (a clip must never cross a boundary)."""
    if not shot.start_frame <= first <= last <= shot.end_frame:
        raise ValueError(f"Clip frames {first}..{last} cross the boundaries of shot {shot}.")


def _video_rng(seed: int, video: str) -> np.random.Generator:
    # one stream per (seed, video), so a video's clips do not depend on which other videos are processed
    return np.random.default_rng([seed, zlib.crc32(video.encode("utf-8"))])


def clips_from_shots(
    video: str,
    shots: Sequence[Shot],
    fps: float,
    seed: int = 0,
    min_seconds: float = MIN_CLIP_SECONDS,
    max_seconds: float = MAX_CLIP_SECONDS,
) -> tuple[list[Clip], list[DroppedShot]]:
    """Apply the three rules to a video's shots (numbered from 0 in order)."""
    _check_fps(fps)
    rng = _video_rng(seed, video)
    clips, dropped = [], []
    for shot_id, shot in enumerate(shots):
        if is_too_short(shot, fps, min_seconds):
            reason = f"shot of {min_seconds:g} s or less"
            dropped.append(DroppedShot(video, shot_id, shot.start_frame, shot.end_frame, reason, shot.num_frames / fps))
            continue
        first, last = segment_inside(shot, fps, rng, max_seconds)
        check_inside_shot(first, last, shot)
        clips.append(
            Clip(
                clip_id=f"{video}#{shot_id}",
                video=video,
                start=round(first / fps, 6),
                end=round((last + 1) / fps, 6),
                shot_id=shot_id,
                score=round(float(shot.score), 6),
                start_frame=first,
                end_frame=last,
            )
        )
    return clips, dropped


_TABLE_FIELDS = [field for field in Clip.__dataclass_fields__]


def write_clip_table(clips: Iterable[Clip], path: str | os.PathLike) -> Path:
    """Write clips as JSON lines (`.jsonl`) or CSV (`.csv`)."""
    path = Path(path)
    rows = [asdict(clip) for clip in clips]
    ids = [row["clip_id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("Clip ids repeat: two videos are listed under the same path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    elif path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_TABLE_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"Clip tables are .jsonl or .csv files, got {path}.")
    return path


def read_clip_table(path: str | os.PathLike) -> list[Clip]:
    path = Path(path)
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    elif path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    else:
        raise ValueError(f"Clip tables are .jsonl or .csv files, got {path}.")
    missing = [name for name in _TABLE_FIELDS if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{path} lacks the clip table columns {missing}.")
    types = {"start": float, "end": float, "score": float, "shot_id": int, "start_frame": int, "end_frame": int}
    return [Clip(**{name: types.get(name, str)(row[name]) for name in _TABLE_FIELDS}) for row in rows]


def _keyframe_times(path: str) -> list[float]:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return [
            float(packet.pts * stream.time_base)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None
        ]


def cut_clip(clip: Clip, output: str | os.PathLike, mode: str = "auto") -> str:
    """Write `clip` (its `video` from `start` to `end`) to `output`, video and audio. `mode`: `"copy"` (packets copied
    unchanged; the clip must start on a keyframe), `"reencode"` (decoded and encoded again: H.264 when available,
    AAC), or `"auto"` (copy when the clip starts within half a frame of a keyframe). Returns the mode used."""
    import av

    if mode not in ("auto", "copy", "reencode"):
        raise ValueError(f"mode must be 'auto', 'copy' or 'reencode', got {mode!r}.")
    with av.open(clip.video) as probe:
        rate = probe.streams.video[0].average_rate
    half_frame = 0.5 / float(rate)
    on_keyframe = any(abs(time - clip.start) <= half_frame for time in _keyframe_times(clip.video))
    if mode == "copy" and not on_keyframe:
        raise ValueError(f"{clip.clip_id} starts at {clip.start} s, not on a keyframe: it cannot be stream-copied.")
    chosen = "copy" if mode == "copy" or (mode == "auto" and on_keyframe) else "reencode"
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    (_copy_packets if chosen == "copy" else _reencode)(clip, os.fspath(output), half_frame)
    return chosen


def _copy_packets(clip: Clip, output: str, half_frame: float) -> None:
    import av

    with av.open(clip.video) as source, av.open(output, mode="w") as target:
        streams = [s for s in source.streams if s.type in ("video", "audio")]
        mapping = {s.index: target.add_stream_from_template(s) for s in streams}
        offsets = {s.index: int(round(clip.start / s.time_base)) for s in streams}
        for packet in source.demux(streams):
            if packet.pts is None:
                continue
            time = float(packet.pts * packet.time_base)
            if time < clip.start - half_frame or time >= clip.end - half_frame:
                continue
            shift = offsets[packet.stream.index]
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = mapping[packet.stream.index]
            target.mux(packet)


def _reencode(clip: Clip, output: str, half_frame: float) -> None:
    import av

    with av.open(clip.video) as source, av.open(output, mode="w") as target:
        video_in = source.streams.video[0]
        rate = video_in.average_rate
        video_out = target.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "yuv420p"
        audio_in = source.streams.audio[0] if source.streams.audio else None
        audio_out = None
        if audio_in is not None:  # every stream is added before the first packet is written
            audio_out = target.add_stream("aac", rate=audio_in.rate or 48000)
            audio_out.layout = audio_in.layout.name
        count, written = 0, 0
        for frame in source.decode(video_in):
            time = float(frame.pts * video_in.time_base) if frame.pts is not None else count / float(rate)
            if clip.start - half_frame <= time < clip.end - half_frame:
                # renumbered from 0 at the stream rate: the clip's first frame is shown at time 0
                out = frame.reformat(format="yuv420p")
                out.pts, out.time_base = written, Fraction(rate.denominator, rate.numerator)
                written += 1
                for packet in video_out.encode(out):
                    target.mux(packet)
            count += 1
        for packet in video_out.encode():
            target.mux(packet)
        if audio_in is not None:
            source.seek(0)
            for frame in source.decode(audio_in):
                time = float(frame.pts * audio_in.time_base) if frame.pts is not None else None
                if time is None or not clip.start <= time < clip.end:
                    continue
                frame.pts = int(round((time - clip.start) * frame.sample_rate))
                frame.time_base = Fraction(1, frame.sample_rate)
                for packet in audio_out.encode(frame):
                    target.mux(packet)
            for packet in audio_out.encode(None):
                target.mux(packet)

"""The whole chain on raw videos: [`segment_videos`] (thumbnails -> shots -> clip rules -> clip table, optional cut
files) and [`curate_videos`] (segment, then per-clip captions -> stage-2 JSON lines), each with a summary of what was
kept and dropped and why. `internvideo2 segment` and `internvideo2 curate` are their command lines."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..media.video_decoding import VideoDecodingError
from .captions import caption_clips, training_record, write_training_jsonl
from .clips import MAX_CLIP_SECONDS, MIN_CLIP_SECONDS, Clip, DroppedShot, clips_from_shots, cut_clip, write_clip_table
from .shots import ShotDetector, decode_thumbnails


logger = logging.getLogger(__name__)

__all__ = ["DECODE_ERRORS", "CurationSummary", "VideoSegments", "curate_videos", "cut_file_name", "segment_one_video", "segment_videos"]


DECODE_ERRORS = (VideoDecodingError, FileNotFoundError)  # a video that cannot be read: reported, the run goes on


@dataclass
class VideoSegments:
    """What segmentation found in one video: its shot count, the kept clips, the dropped shots, and how many clips
    are one 30-s segment of a longer shot."""

    shots: int
    clips: list[Clip]
    dropped: list[DroppedShot]
    shortened: int


def segment_one_video(
    video: str,
    detector: ShotDetector,
    seed: int = 0,
    min_seconds: float = MIN_CLIP_SECONDS,
    max_seconds: float = MAX_CLIP_SECONDS,
    source_path: str | None = None,
) -> VideoSegments:
    """Shots and clips of one video (both engines run this per video). `video` names the clips (their ids and the
    seeded 30-s positions depend on it); `source_path` (default `video`) is the file read, e.g. its absolute path on
    a Ray worker. Raises one of `DECODE_ERRORS` when the video cannot be decoded."""
    thumbnails = decode_thumbnails(source_path or video)  # decoded once: the detector and the clip rules share it
    shots = detector.detect(thumbnails)
    clips, dropped = clips_from_shots(video, shots, thumbnails.fps, seed, min_seconds, max_seconds)
    shortened = sum(shots[c.shot_id].num_frames > c.end_frame - c.start_frame + 1 for c in clips)
    return VideoSegments(shots=len(shots), clips=clips, dropped=dropped, shortened=int(shortened))


@dataclass
class CurationSummary:
    """Counts of one run: videos read / failed, shots found, clips kept, shots dropped by reason, long shots cut to one
    segment, cut files by mode."""

    videos: int = 0
    failed_videos: dict[str, str] = field(default_factory=dict)
    shots: int = 0
    clips: list[Clip] = field(default_factory=list)
    dropped: list[DroppedShot] = field(default_factory=list)
    shortened: int = 0
    cut_modes: Counter = field(default_factory=Counter)
    captioned: int = 0
    fused: int = 0
    failed_clips: dict[str, str] = field(default_factory=dict)

    def add(self, segments: VideoSegments) -> None:
        """Count one segmented video."""
        self.videos += 1
        self.shots += segments.shots
        self.clips += segments.clips
        self.dropped += segments.dropped
        self.shortened += segments.shortened

    def lines(self) -> list[str]:
        kept_seconds = sum(clip.duration for clip in self.clips)
        lines = [
            f"videos: {self.videos} read, {len(self.failed_videos)} failed",
            f"shots: {self.shots}",
            f"clips kept: {len(self.clips)} ({kept_seconds:.1f} s), of which {self.shortened} one "
            f"{MAX_CLIP_SECONDS:g}-s segment of a longer shot",
            f"shots dropped: {len(self.dropped)}",
        ]
        for reason, count in sorted(Counter(d.reason for d in self.dropped).items()):
            lines.append(f"  {count} x {reason}")
        for video, error in self.failed_videos.items():
            lines.append(f"  video not read: {video}: {error}")
        if self.cut_modes:
            lines.append("cut files: " + ", ".join(f"{n} by {mode}" for mode, n in sorted(self.cut_modes.items())))
        if self.captioned:
            lines.append(f"captioned clips: {self.captioned}, fused by the language model: {self.fused}")
        for clip, error in self.failed_clips.items():
            lines.append(f"  clip not captioned: {clip}: {error}")
        return lines


def segment_videos(
    videos: list[str],
    detector: ShotDetector,
    seed: int = 0,
    min_seconds: float = MIN_CLIP_SECONDS,
    max_seconds: float = MAX_CLIP_SECONDS,
    clip_table: str | os.PathLike | None = None,
    cut_dir: str | os.PathLike | None = None,
    cut_mode: str = "auto",
    progress: bool = True,
) -> tuple[CurationSummary, dict[str, str]]:
    """Shots and clips of every video; returns the summary and `{clip_id: cut file}` (empty without `cut_dir`).
    A video that cannot be decoded is reported in the summary and skipped."""
    summary = CurationSummary()
    for video in tqdm(videos, desc=f"shots ({detector.name})", unit="video", disable=not progress):
        try:
            segments = segment_one_video(video, detector, seed, min_seconds, max_seconds)
        except DECODE_ERRORS as error:
            summary.failed_videos[video] = str(error)
            logger.warning("skipping %s: %s", video, error)
            continue
        summary.add(segments)
    if clip_table is not None:
        write_clip_table(summary.clips, clip_table)
    cut_paths = {}
    if cut_dir is not None:
        for index, clip in enumerate(tqdm(summary.clips, desc="cut files", unit="clip", disable=not progress)):
            output = cut_file_name(cut_dir, index, clip)
            summary.cut_modes[cut_clip(clip, output, cut_mode)] += 1
            cut_paths[clip.clip_id] = str(output)
    return summary, cut_paths


def cut_file_name(cut_dir: str | os.PathLike, index: int, clip: Clip) -> Path:
    """The file of the `index`-th clip of a run (in clip-table order) in `cut_dir`."""
    return Path(cut_dir) / f"{index:06d}_{Path(clip.video).stem}_shot{clip.shot_id}.mp4"


def curate_videos(
    videos: list[str],
    detector: ShotDetector,
    output: str | os.PathLike,
    video_captioner,
    audio_captioner=None,
    asr=None,
    fuser=None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    cut_dir: str | os.PathLike | None = None,
    cut_mode: str = "auto",
    progress: bool = True,
) -> CurationSummary:
    """Segment, caption and write the stage-2 JSON lines to `output` (and the clip table next to it,
    `<output stem>.clips.jsonl`). Captions are cached in `cache_dir` (default `<output stem>.cache/`)."""
    output = Path(output)
    table = output.with_name(output.stem + ".clips.jsonl")
    summary, cut_paths = segment_videos(videos, detector, seed=seed, clip_table=table, cut_dir=cut_dir,
                                        cut_mode=cut_mode, progress=progress)  # fmt: skip
    cache_dir = cache_dir if cache_dir is not None else output.with_name(output.stem + ".cache")
    captions = caption_clips(summary.clips, video_captioner, audio_captioner=audio_captioner, asr=asr, fuser=fuser,
                             cache_dir=cache_dir, progress=progress)  # fmt: skip
    summary.captioned = len(captions)
    summary.fused = sum(fuser is not None and bool(c["audio_caption"] or c["asr"]) for c in captions)
    write_training_jsonl(
        [training_record(clip, fields, cut_paths.get(clip.clip_id)) for clip, fields in zip(summary.clips, captions)],
        output,
    )
    return summary

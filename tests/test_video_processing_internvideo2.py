"""Tests of `InternVideo2VideoProcessor`: sampling, decoding of paths, transforms, multi-view, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import transformers_internvideo2.media.video_decoding as vd
from transformers_internvideo2.media.video_decoding import VideoDecodingError, decode_video_frames
from transformers_internvideo2.media.frame_sampling import sample_frame_indices
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (
    InternVideo2VideoProcessor,
    multi_view_crop_starts,
)
from transformers.video_utils import VideoMetadata


MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def cv2_linear_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Reference for OpenCV `INTER_LINEAR` (half-pixel centres, edge clamping, no antialiasing) on HWC uint8,
    computed in float64 and rounded: the behaviour the original evaluation relies on."""
    in_h, in_w = img.shape[:2]

    def axis(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, None)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w = np.where(i0 >= n_in - 1, 0.0, src - i0)
        return i0, i1, w

    y0, y1, wy = axis(out_h, in_h)
    x0, x1, wx = axis(out_w, in_w)
    f = img.astype(np.float64)
    top = f[y0][:, x0] * (1 - wx)[None, :, None] + f[y0][:, x1] * wx[None, :, None]
    bottom = f[y1][:, x0] * (1 - wx)[None, :, None] + f[y1][:, x1] * wx[None, :, None]
    out = top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def reference_eval_views(frames: np.ndarray, short=224, crop=224) -> np.ndarray:
    """Original validation transform on (T, H, W, 3) uint8: short side -> 224 (floor), centre crop, normalise.
    Returns (T, 3, crop, crop) float64."""
    h, w = frames.shape[1:3]
    if h <= w:
        oh, ow = short, int(short * w / h)
    else:
        oh, ow = int(short * h / w), short
    out = []
    for frame in frames:
        resized = cv2_linear_resize(frame, oh, ow) if (oh, ow) != (h, w) else frame
        top, left = int((oh - crop) / 2), int((ow - crop) / 2)
        patch = resized[top : top + crop, left : left + crop] / 255.0
        out.append(((patch - MEAN) / STD).transpose(2, 0, 1))
    return np.stack(out)


# ----------------------------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------------------------
def test_processor_sample_frames():
    proc = InternVideo2VideoProcessor()
    meta = VideoMetadata(total_num_frames=300, fps=30.0)
    assert proc.sample_frames(meta).tolist() == [18, 55, 93, 130, 168, 205, 242, 280]
    assert proc.sample_frames(meta, frame_sampling="test_clips", num_clips=4, clip_index=3).tolist()[0] == 29
    assert len(proc.sample_frames(meta, num_frames=16)) == 16
    assert len(proc.sample_frames(meta, fps=1)) == 10  # 300 frames at 30 fps = 10 s
    with pytest.raises(ValueError, match="mutually exclusive"):
        proc.sample_frames(meta, num_frames=8, fps=1)
    with pytest.raises(ValueError):
        proc.sample_frames(VideoMetadata(total_num_frames=300), fps=1)  # no fps in metadata
    tested = InternVideo2VideoProcessor(frame_sampling="test_clips", num_clips=4, clip_index=1)
    assert tested.sample_frames(meta).tolist()[0] == 14
    # configs saved before the shared sampler name the original's modes `sampling_mode="val" | "test"`
    legacy = InternVideo2VideoProcessor(sampling_mode="test", num_clips=4, clip_index=1)
    assert legacy.frame_sampling == "test_clips" and legacy.sample_frames(meta).tolist()[0] == 14
    with pytest.raises(ValueError, match="Unknown frame sampling mode"):
        InternVideo2VideoProcessor(frame_sampling="bogus")


# ----------------------------------------------------------------------------------------------------------------
# inputs and outputs
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def processor():
    return InternVideo2VideoProcessor()


@pytest.fixture(scope="module")
def random_video():
    return np.random.default_rng(0).integers(0, 256, (20, 90, 120, 3), dtype=np.uint8)


def _check(out, batch, frames=8):
    pv = out["pixel_values"]
    assert list(out.keys()) == ["pixel_values"]
    assert isinstance(pv, torch.Tensor) and pv.dtype == torch.float32
    assert tuple(pv.shape) == (batch, frames, 3, 224, 224)


def test_input_types(processor, random_video):
    video = random_video
    _check(processor(video, return_tensors="pt"), 1)  # numpy (T, H, W, C)
    _check(processor([Image.fromarray(f) for f in video], return_tensors="pt"), 1)  # PIL frames
    tchw = torch.from_numpy(video).permute(0, 3, 1, 2)
    _check(processor(tchw, return_tensors="pt"), 1)  # torch (T, C, H, W)
    _check(processor([video, video[:12, :80]], return_tensors="pt"), 2)  # batch of different sizes
    _check(processor(torch.stack([tchw, tchw]), return_tensors="pt"), 2)  # 5-D torch batch
    _check(processor([list(video), list(video)], return_tensors="pt"), 2)  # nested lists of frames
    _check(processor(video, num_frames=4, return_tensors="pt"), 1, frames=4)
    _check(processor(video, do_sample_frames=False, return_tensors="pt"), 1, frames=20)
    # all input types give the same numbers
    a = processor(video, return_tensors="pt")["pixel_values"]
    b = processor(tchw, return_tensors="pt")["pixel_values"]
    c = processor([Image.fromarray(f) for f in video], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_numpy_return_and_metadata(processor, random_video):
    out = processor(random_video, return_tensors="np", return_metadata=True)
    assert out["pixel_values"].shape == (1, 8, 3, 224, 224)
    assert list(out["video_metadata"][0].frames_indices) == sample_frame_indices(20, 8, "segments").tolist()


def test_file_path_input(processor, sample_video_path):
    out = processor(str(sample_video_path), return_tensors="pt", return_metadata=True)
    _check({"pixel_values": out["pixel_values"]}, 1)
    meta = out["video_metadata"][0]
    assert meta.total_num_frames == 40
    assert list(meta.frames_indices) == [2, 7, 12, 17, 22, 26, 31, 36] == sample_frame_indices(40, 8, "segments").tolist()
    # pathlib.Path and batches of paths
    _check(processor(sample_video_path, return_tensors="pt"), 1)
    _check(processor([sample_video_path, str(sample_video_path)], num_frames=4, return_tensors="pt"), 2, frames=4)


def test_forced_pyav_backend(sample_video_path, monkeypatch):
    """Paths decode without torchcodec: the per-call kwarg and the attribute both force PyAV."""
    by_kwarg = InternVideo2VideoProcessor()(
        str(sample_video_path), video_backend="pyav", return_tensors="pt", return_metadata=True
    )
    assert by_kwarg["video_metadata"][0].video_backend == "pyav"
    by_attr = InternVideo2VideoProcessor(video_backend="pyav")(
        str(sample_video_path), return_tensors="pt", return_metadata=True
    )
    assert by_attr["video_metadata"][0].video_backend == "pyav"
    torch.testing.assert_close(by_kwarg["pixel_values"], by_attr["pixel_values"], rtol=0, atol=0)
    # a machine without torchcodec: "auto" must still work
    monkeypatch.setattr(vd, "is_torchcodec_usable", lambda: False)
    auto = InternVideo2VideoProcessor()(str(sample_video_path), return_tensors="pt", return_metadata=True)
    assert auto["video_metadata"][0].video_backend == "pyav"
    torch.testing.assert_close(auto["pixel_values"], by_attr["pixel_values"], rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
def test_backends_give_identical_pixel_values(sample_video_path, backend):
    if backend not in vd.available_backends():
        pytest.skip(f"{backend} is not usable here")
    proc = InternVideo2VideoProcessor()
    a = proc(str(sample_video_path), video_backend=backend, return_tensors="pt", return_metadata=True)
    b = proc(str(sample_video_path), video_backend="pyav", return_tensors="pt")["pixel_values"]
    assert a["video_metadata"][0].video_backend == backend
    torch.testing.assert_close(a["pixel_values"], b, rtol=0, atol=0)
    # the backend also travels as the processor's attribute, through save_pretrained's config
    assert InternVideo2VideoProcessor(video_backend=backend).to_dict()["video_backend"] == backend


def test_invalid_backend_and_bad_paths(processor, tmp_path):
    with pytest.raises(ValueError, match="`video_backend` must be one of"):
        InternVideo2VideoProcessor(video_backend="opencv")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodingError, match="corrupt.mp4"):
        processor(str(corrupt), return_tensors="pt")
    with pytest.raises(VideoDecodingError, match="missing.mp4"):
        processor(str(tmp_path / "missing.mp4"), return_tensors="pt")
    with pytest.raises(ValueError, match="local files"):
        processor.fetch_videos("https://example.com/video.mp4")


# ----------------------------------------------------------------------------------------------------------------
# numerics
# ----------------------------------------------------------------------------------------------------------------
def test_normalisation_on_constant_colour(processor):
    colour = np.array([10, 128, 250], np.uint8)
    video = np.broadcast_to(colour, (8, 120, 160, 3)).copy()
    pv = processor(video, return_tensors="pt")["pixel_values"][0]
    expected = (colour / 255.0 - MEAN) / STD
    for c in range(3):
        np.testing.assert_allclose(pv[:, c].numpy(), expected[c], rtol=0, atol=1e-5)


def test_resize_is_bilinear_without_antialiasing(processor):
    """Downscaling noise: our resize equals the OpenCV INTER_LINEAR reference (+-1 grey level) and differs clearly
    from an antialiased resize."""
    img = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    tensor = torch.from_numpy(img).permute(2, 0, 1)[None]
    from transformers.image_utils import SizeDict

    ours = processor.resize(tensor, size=SizeDict(shortest_edge=224), resample=processor.resample)
    assert tuple(ours.shape[-2:]) == (224, 298)  # long side floored: int(224 * 640 / 480) = 298
    ref = cv2_linear_resize(img, 224, 298)
    diff = np.abs(ours[0].permute(1, 2, 0).numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 1
    antialiased = processor.resize(
        tensor, size=SizeDict(shortest_edge=224), resample=processor.resample, antialias=True
    )
    assert np.abs(antialiased[0].permute(1, 2, 0).numpy().astype(int) - ref.astype(int)).mean() > 5


def test_pipeline_matches_reference_on_real_video(processor, sample_video_path):
    out = processor(str(sample_video_path), return_tensors="pt")["pixel_values"][0].numpy()
    frames, _ = decode_video_frames(sample_video_path, sample_frame_indices(40, 8, "segments"), backend="pyav")
    ref = reference_eval_views(frames)
    # one grey level of rounding difference at most, in normalised units
    assert np.abs(out - ref).max() <= 1.0 / 255 / STD.min() + 1e-5


# ----------------------------------------------------------------------------------------------------------------
# multi-view
# ----------------------------------------------------------------------------------------------------------------
def test_crop_starts():
    assert multi_view_crop_starts(298, 224, 3) == [0, 37, 74]
    assert multi_view_crop_starts(298, 224, 1) == [37]
    assert multi_view_crop_starts(224, 224, 3) == [0, 0, 0]
    with pytest.raises(ValueError):
        multi_view_crop_starts(200, 224, 3)


def test_multi_view_layout_and_values(processor):
    video = np.random.default_rng(3).integers(0, 256, (30, 240, 320, 3), dtype=np.uint8)
    views = processor.multi_view(video, num_clips=4, num_crops=3)
    assert tuple(views.shape) == (12, 8, 3, 224, 224) and views.dtype == torch.float32
    for clip in range(4):
        idx = sample_frame_indices(30, 8, "test_clips", clip_index=clip, num_clips=4)
        resized = np.stack([cv2_linear_resize(f, 224, 298) for f in video[idx]])
        for crop, x in enumerate([0, 37, 74]):
            patch = resized[:, :, x : x + 224] / 255.0
            expected = ((patch - MEAN) / STD).transpose(0, 3, 1, 2)
            got = views[clip * 3 + crop].numpy()  # segment-major
            assert np.abs(got - expected).max() <= 1.0 / 255 / STD.min() + 1e-5, (clip, crop)


def test_multi_view_portrait_and_single_crop(processor):
    video = np.random.default_rng(4).integers(0, 256, (10, 300, 224, 3), dtype=np.uint8)  # short side already 224
    views = processor.multi_view(video, num_clips=2, num_crops=3, num_frames=4)
    assert tuple(views.shape) == (6, 4, 3, 224, 224)
    idx = sample_frame_indices(10, 4, "test_clips", clip_index=1, num_clips=2)
    for crop, y in enumerate([0, 38, 76]):
        expected = ((video[idx, y : y + 224] / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(views[3 + crop].numpy(), expected, atol=1e-5)
    centre = processor.multi_view(video, num_clips=1, num_crops=1, num_frames=4)
    assert tuple(centre.shape) == (1, 4, 3, 224, 224)


def test_multi_view_from_path_equals_from_frames(processor, sample_video_path):
    from_path = processor.multi_view(str(sample_video_path), num_clips=2, num_crops=3, video_backend="pyav")
    frames, _ = decode_video_frames(sample_video_path, backend="pyav")
    from_frames = processor.multi_view(frames, num_clips=2, num_crops=3)
    assert tuple(from_path.shape) == (6, 8, 3, 224, 224)
    torch.testing.assert_close(from_path, from_frames, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------
# serialisation
# ----------------------------------------------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path):
    proc = InternVideo2VideoProcessor(num_frames=16, video_backend="pyav", frame_sampling="test_clips", num_clips=4)
    proc.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    assert config["video_processor_type"] == "InternVideo2VideoProcessor"
    assert config["num_frames"] == 16 and config["video_backend"] == "pyav" and config["num_clips"] == 4
    assert config["image_mean"] == [0.485, 0.456, 0.406] and config["size"] == {"shortest_edge": 224}
    loaded = InternVideo2VideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == proc.to_dict()
    video = np.random.default_rng(5).integers(0, 256, (40, 64, 96, 3), dtype=np.uint8)
    torch.testing.assert_close(
        loaded(video, return_tensors="pt")["pixel_values"], proc(video, return_tensors="pt")["pixel_values"]
    )


def test_auto_video_processor(tmp_path):
    import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
    from transformers import AutoVideoProcessor

    InternVideo2VideoProcessor(num_frames=4).save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "InternVideo2VideoProcessor"
    assert loaded.num_frames == 4

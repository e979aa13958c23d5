# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Video processor for InternVideo2.

It reproduces the evaluation preprocessing of the original InternVideo2 code:

* **Frame sampling** (:mod:`transformers_internvideo2.media.frame_sampling`, selected by ``frame_sampling``) is by
  default segment-based sparse sampling: the video is cut into ``num_frames`` equal segments and one frame per
  segment is taken. ``"segments"`` (the default) takes the middle of each segment, as the original validation loop
  does; ``"test_clips"`` takes clip ``clip_index`` of ``num_clips`` evenly shifted clips, as the original multi-view
  test does; ``"middle"`` is the stage-2 evaluation's, ``"mvbench"`` the chat benchmark's.
* **Spatial**: resize the short side to ``size["shortest_edge"]`` (224; the long side is floored), centre crop
  ``crop_size`` (224x224), scale to ``[0, 1]`` and normalise with the ImageNet mean/std.
  The original uses OpenCV ``INTER_LINEAR`` on ``uint8`` frames, which does **not** antialias. Our resize is
  therefore bilinear with ``antialias=False`` (``torchvision.transforms.v2.functional.resize``), applied to the
  ``uint8`` frames as well; results agree with OpenCV to within one grey level (fixed-point rounding).
  A **bicubic** resize of ``uint8`` frames (the stage-2 evaluation's ``Resize``) is computed in float32 and rounded,
  as the original's torchvision did (:func:`resize_frames_bicubic_uint8`).
* **Test-time views** (the "8x3x4" protocol): :meth:`InternVideo2VideoProcessor.multi_view`.

File paths are decoded by :mod:`transformers_internvideo2.media.video_decoding` (torchcodec when usable, PyAV
otherwise), not by the torchcodec-only decoder of ``BaseVideoProcessor``.

The output is ``BatchFeature({"pixel_values": (B, T, C, H, W) float32})``.
"""

from __future__ import annotations

import contextvars
import os
from typing import Literal

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    PILImageResampling,
    SizeDict,
)
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.utils import TensorType, logging
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata, group_videos_by_shape, reorder_videos
from huggingface_hub.errors import StrictDataclassError

from ...media.frame_sampling import canonical_frame_sampling, sample_frame_indices
from ...media.video_decoding import SUPPORTED_BACKENDS, decode_video_frames
from ..remote_code import RemoteCodeMixin


logger = logging.get_logger(__name__)

__all__ = [
    "EXPECTED_VIDEO_INPUT",
    "InternVideo2VideoProcessor",
    "InternVideo2VideoProcessorKwargs",
    "check_pixel_range",
    "is_single_frame_array",
    "is_video_frame",
    "multi_view_crop_starts",
    "resize_frames_bicubic_uint8",
    "split_video_inputs",
    "standardize_video",
]

# The backend requested for the current `preprocess` call (fetch_videos has no kwargs of its own).
_CALL_BACKEND: contextvars.ContextVar[str | None] = contextvars.ContextVar("internvideo2_video_backend", default=None)


def multi_view_crop_starts(long_side: int, crop: int, num_crops: int) -> list[int]:
    """Start offsets of the test-time crops along the long axis (spec "8x3x4" protocol).

    ``num_crops == 1`` gives the centre ``int((long - crop) / 2)``; otherwise ``step = (long - crop) /
    (num_crops - 1)`` and crop ``k`` starts at ``int(k * step)`` (left/top, ..., right/bottom).
    E.g. ``multi_view_crop_starts(298, 224, 3) == [0, 37, 74]``.
    """
    if num_crops < 1:
        raise ValueError(f"`num_crops` must be >= 1, got {num_crops}")
    if long_side < crop:
        raise ValueError(f"Cannot crop {crop} pixels from a side of {long_side}")
    if num_crops == 1:
        return [int((long_side - crop) / 2)]
    step = (long_side - crop) / (num_crops - 1)
    return [int(k * step) for k in range(num_crops)]


class InternVideo2VideoProcessorKwargs(VideosKwargs, total=False):
    """Video-processor kwargs of InternVideo2 on top of [`~processing_utils.VideosKwargs`].

    video_backend (`str`, *optional*, defaults to `"auto"`):
        Decoder for file paths: `"auto"` (torchcodec when usable, else PyAV), `"torchcodec"`, `"pyav"` or
        `"decord"` (the optional extra `decord`).
    frame_sampling (`str`, *optional*, defaults to `"segments"`):
        A mode of `media.frame_sampling` (`"segments"`, `"test_clips"`, `"random_segments"`, `"middle"`, `"demo"`,
        `"mvbench"`; the original's `"val"` / `"test"` / `"train"` are aliases). `sampling_mode` is accepted as
        its former name.
    num_clips (`int`, *optional*, defaults to 1):
        Number of temporal clips of the test protocol (only used with `"test_clips"`).
    clip_index (`int`, *optional*, defaults to 0):
        Which clip to take with `"test_clips"`.
    """

    video_backend: Literal["auto", "torchcodec", "pyav", "decord"] | None
    frame_sampling: str | None
    num_clips: int | None
    clip_index: int | None


class InternVideo2VideoProcessor(RemoteCodeMixin, BaseVideoProcessor):
    r"""
    Constructs an InternVideo2 video processor (segment-based sparse sampling, short-side resize without
    antialiasing, centre crop, ImageNet normalisation). See the module docstring for the exact recipe.

    Inputs may be video file paths (`str` or `os.PathLike`), arrays or tensors `(T, H, W, C)` / `(T, C, H, W)`,
    lists of frames (PIL images, arrays), or batches (lists / 5-D arrays) of those ([`split_video_inputs`],
    [`standardize_video`]). Grey videos (`C = 1`, `(T, H, W)`, PIL `"L"`) are replicated to RGB; RGBA drops its
    alpha channel. Frames are `uint8` 0-255, or floats whose range must fit `do_rescale` ([`check_pixel_range`]:
    floats in [0, 1] need `do_rescale=False`). Bad input raises `ValueError` (shapes, layouts, ranges, NaN, empty
    input, bad `num_frames` / `fps`) or `TypeError` (types); docs/reliability.md lists every case. The output is a
    [`BatchFeature`] with `pixel_values` of shape `(batch, num_frames, 3, height, width)`.

    Frame sampling (`do_sample_frames=True`, the default) takes `num_frames` (8) frames by `frame_sampling`
    (`media.frame_sampling`); `fps=...` instead derives the number of frames from the video duration.
    """

    remote_code_auto_map = {
        "AutoVideoProcessor": "internvideo2_vision.video_processing_internvideo2.InternVideo2VideoProcessor"
    }
    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 8
    video_backend = "auto"
    frame_sampling = "segments"
    num_clips = 1
    clip_index = 0
    valid_kwargs = InternVideo2VideoProcessorKwargs
    model_input_names = ["pixel_values"]

    def __init__(self, **kwargs: Unpack[InternVideo2VideoProcessorKwargs]):
        _rename_sampling_mode(kwargs)  # configs saved before the shared sampler say `sampling_mode="val"`
        super().__init__(**kwargs)
        if self.video_backend is not None and self.video_backend not in SUPPORTED_BACKENDS:
            raise ValueError(f"`video_backend` must be one of {SUPPORTED_BACKENDS}, got {self.video_backend!r}")
        self.frame_sampling = canonical_frame_sampling(self.frame_sampling)

    # ----------------------------------------------------------------------------------------------------------
    # Entry point
    # ----------------------------------------------------------------------------------------------------------
    def preprocess(self, videos, **kwargs: Unpack[InternVideo2VideoProcessorKwargs]) -> BatchFeature:
        """Preprocess one video or a batch; see the class docstring. Extra keyword arguments override the
        processor's attributes for this call (`num_frames`, `fps`, `video_backend`, `frame_sampling`, ...)."""
        _rename_sampling_mode(kwargs)
        # `num_frames` and `fps` are mutually exclusive: asking for one in a call disables the other's default.
        if kwargs.get("fps") is not None and "num_frames" not in kwargs:
            kwargs["num_frames"] = None
        elif kwargs.get("num_frames") is not None and "fps" not in kwargs:
            kwargs["fps"] = None
        if kwargs.get("do_sample_frames", self.do_sample_frames):
            _check_sampling_arguments(kwargs.get("num_frames", self.num_frames), kwargs.get("fps", self.fps))
        if kwargs.get("num_frames") is not None:
            kwargs["num_frames"] = int(kwargs["num_frames"])
        videos = split_video_inputs(videos)
        num_paths = sum(isinstance(video, str) for video in videos)
        if 0 < num_paths < len(videos):
            raise ValueError(
                "A batch mixes video file paths and decoded frames; pass one kind per call (or decode the files "
                "with media.video_decoding.decode_video_frames first)."
            )
        if num_paths == 0:  # decoded frames: checked and brought to (T, 3, H, W) here, whatever their layout
            videos = [standardize_video(video, kwargs.get("input_data_format")) for video in videos]
            kwargs["input_data_format"] = ChannelDimension.FIRST
        else:
            kwargs["input_data_format"] = None  # the decoder's (T, H, W, 3)
        token = _CALL_BACKEND.set(kwargs.get("video_backend"))
        try:
            return super().preprocess(videos, **kwargs)
        except StrictDataclassError as error:  # Transformers' kwarg type check: a wrong argument type
            raise TypeError(str(error)) from error
        finally:
            _CALL_BACKEND.reset(token)

    # ----------------------------------------------------------------------------------------------------------
    # Sampling and decoding hooks of BaseVideoProcessor
    # ----------------------------------------------------------------------------------------------------------
    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: int | float | None = None,
        frame_sampling: str | None = None,
        num_clips: int | None = None,
        clip_index: int | None = None,
        **kwargs,
    ) -> np.ndarray:
        """Indices of the frames to keep ([`~media.frame_sampling.sample_frame_indices`]).

        Args:
            metadata (`VideoMetadata`):
                Metadata of the whole video; `total_num_frames` is required, `fps` too when sampling by `fps`.
            num_frames (`int`, *optional*):
                Number of frames. Defaults to `self.num_frames` (unless `fps` is given).
            fps (`int` or `float`, *optional*):
                Sample `max(1, int(total_num_frames / metadata.fps * fps))` frames instead. Mutually exclusive
                with `num_frames`.
            frame_sampling (`str`, *optional*): the sampling mode; defaults to `self.frame_sampling`.
            num_clips (`int`, *optional*): clips of the test protocol; defaults to `self.num_clips`.
            clip_index (`int`, *optional*): clip to take in `"test_clips"` mode; defaults to `self.clip_index`.

        Returns:
            `np.ndarray`: the frame indices (`int64`). With neither `num_frames` nor `fps` set, every frame.
        """
        if num_frames is not None and fps is not None:
            raise ValueError("`num_frames` and `fps` are mutually exclusive arguments, please use only one!")
        if num_frames is None and fps is None:
            num_frames = self.num_frames
            if num_frames is None:
                fps = self.fps
        total = metadata.total_num_frames
        if total is None or total <= 0:
            raise ValueError(f"Cannot sample frames: the video metadata reports {total} frames")
        if num_frames is None and fps is not None:
            if fps <= 0:
                raise ValueError(f"`fps` must be positive, got {fps}")
            if metadata.fps is None:
                raise ValueError(
                    f"Asked to sample {fps} frames per second but the video metadata has no `fps`; pass "
                    "`video_metadata` with `fps` or use `num_frames`."
                )
            num_frames = max(1, int(total / metadata.fps * fps))
        if num_frames is None:
            return np.arange(total, dtype=np.int64)
        return sample_frame_indices(
            total,
            num_frames,
            frame_sampling if frame_sampling is not None else self.frame_sampling,
            clip_index=clip_index if clip_index is not None else (self.clip_index or 0),
            num_clips=num_clips if num_clips is not None else (self.num_clips or 1),
            fps=metadata.fps,
        )

    def fetch_videos(self, video_url_or_urls, sample_indices_fn=None, video_backend: str | None = None):
        """Decode local video files with [`~video_decoding.decode_video_frames`].

        The backend is, in order: `video_backend` here, the one given to the current call, `self.video_backend`,
        `"auto"`. A list of paths returns `(list of videos, list of metadata)`; a single path returns
        `(video, metadata)`. Each video is a `uint8` array `(T, H, W, 3)`.
        """
        backend = video_backend or _CALL_BACKEND.get() or self.video_backend or "auto"
        if isinstance(video_url_or_urls, (list, tuple)):
            results = [self.fetch_videos(x, sample_indices_fn, video_backend=backend) for x in video_url_or_urls]
            return [r[0] for r in results], [r[1] for r in results]
        path = os.fspath(video_url_or_urls)
        if path.startswith(("http://", "https://")):
            raise ValueError(
                f"{type(self).__name__} only decodes local files; download {path!r} first (this package never "
                "fetches from the network)."
            )
        return decode_video_frames(path, sample_indices_fn, backend=backend)

    # ----------------------------------------------------------------------------------------------------------
    # Transforms
    # ----------------------------------------------------------------------------------------------------------
    def resize(self, image: torch.Tensor, size: SizeDict, resample=None, antialias: bool = False, **kwargs):
        """Resize **without antialiasing** by default (the original's OpenCV `INTER_LINEAR` for the bilinear
        default). Bicubic on `uint8` frames to a fixed size goes through [`resize_frames_bicubic_uint8`] (the
        original stage-2 evaluation's numbers)."""
        resample = self.resample if resample is None else resample
        is_bicubic = resample is not None and PILImageResampling(resample) == PILImageResampling.BICUBIC
        if is_bicubic and image.dtype == torch.uint8 and size.height and size.width and not antialias:
            frames = image.reshape(-1, *image.shape[-3:])
            resized = resize_frames_bicubic_uint8(frames, size.height, size.width)
            return resized.reshape(*image.shape[:-2], size.height, size.width)
        return super().resize(image, size=size, resample=resample, antialias=antialias, **kwargs)

    def _preprocess(
        self,
        videos: list[torch.Tensor],
        do_resize: bool,
        size: SizeDict,
        resample,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean,
        image_std,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ) -> BatchFeature:
        for video in videos:
            check_pixel_range(video, do_rescale, rescale_factor, do_normalize)
        grouped, grouped_index = group_videos_by_shape(videos)
        resized = {}
        for shape, stacked in grouped.items():
            if do_resize:
                stacked = self.resize(stacked, size=size, resample=resample)
            resized[shape] = stacked
        videos = reorder_videos(resized, grouped_index)

        grouped, grouped_index = group_videos_by_shape(videos)
        processed = {}
        for shape, stacked in grouped.items():
            if do_center_crop:
                stacked = self.center_crop(stacked, crop_size)
            processed[shape] = self.rescale_and_normalize(
                stacked, do_rescale, rescale_factor, do_normalize, image_mean, image_std
            )
        videos = reorder_videos(processed, grouped_index)
        return BatchFeature(data={"pixel_values": videos}, tensor_type=return_tensors)

    # ----------------------------------------------------------------------------------------------------------
    # Test-time multi-view
    # ----------------------------------------------------------------------------------------------------------
    def multi_view(
        self,
        video,
        num_clips: int = 4,
        num_crops: int = 3,
        num_frames: int | None = None,
        video_backend: str | None = None,
        input_data_format: str | ChannelDimension | None = None,
    ) -> torch.Tensor:
        """Test-time views of one video, as in the original "T x crops x clips" evaluation.

        * Temporal: clip `k` of `num_clips` uses the `"test_clips"` frame sampling.
        * Spatial: the short side is resized to `size["shortest_edge"]` (long side floored, bilinear, no
          antialiasing; skipped when already at that size), then `num_crops` crops of `crop_size` are taken
          along the long axis at [`multi_view_crop_starts`] (`num_crops=1`: centre); on the short axis the crop
          is centred (the full extent when it equals the crop size, as in the original).
        * Then rescale and normalise as in `preprocess`.

        Args:
            video: one video: a file path, an array `(L, H, W, C)`, a tensor `(L, C, H, W)` or a list of frames
                (all `L` frames of the video; sampling happens here).
            num_clips (`int`, defaults to 4): temporal clips. num_crops (`int`, defaults to 3): spatial crops.
            num_frames (`int`, *optional*): frames per view, defaults to `self.num_frames`.
            video_backend (`str`, *optional*): decoder for a path; defaults to `self.video_backend`.

        Returns:
            `torch.Tensor` of shape `(num_clips * num_crops, T, C, crop_h, crop_w)`, float32, **segment-major**:
            view `v = clip * num_crops + crop`. Average the per-view softmax probabilities to get the video
            prediction.
        """
        num_frames = num_frames if num_frames is not None else self.num_frames
        if num_frames is None:
            raise ValueError("`num_frames` must be set for multi_view")
        num_frames = _check_positive_int("num_frames", num_frames)
        num_clips = _check_positive_int("num_clips", num_clips)
        num_crops = _check_positive_int("num_crops", num_crops)
        clip_indices = None
        if isinstance(video, (str, os.PathLike)):
            backend = video_backend or self.video_backend or "auto"

            def all_clip_indices(metadata):
                nonlocal clip_indices
                clip_indices = [
                    sample_frame_indices(metadata.total_num_frames, num_frames, "test_clips", clip_index=k,
                                         num_clips=num_clips)
                    for k in range(num_clips)
                ]  # fmt: skip
                return sorted(set(np.concatenate(clip_indices).tolist()))

            frames, metadata = decode_video_frames(os.fspath(video), all_clip_indices, backend=backend)
            position = {idx: i for i, idx in enumerate(metadata.frames_indices)}
            clip_indices = [np.array([position[int(i)] for i in idx]) for idx in clip_indices]
            video = frames
        elif not isinstance(video, (np.ndarray, torch.Tensor, list, tuple)) and not _is_pil_image(video):
            raise TypeError(f"multi_view takes one video: {EXPECTED_VIDEO_INPUT}; got {type(video).__name__}.")
        videos = split_video_inputs(video)
        if len(videos) != 1:
            raise ValueError(f"multi_view takes one video, got a batch of {len(videos)}; call it once per video.")
        prepared = standardize_video(videos[0], input_data_format)  # (L, 3, H, W)
        if clip_indices is None:
            clip_indices = [
                sample_frame_indices(prepared.shape[0], num_frames, "test_clips", clip_index=k, num_clips=num_clips)
                for k in range(num_clips)
            ]

        size = SizeDict(**self.size) if isinstance(self.size, dict) else self.size
        crop = SizeDict(**self.crop_size) if isinstance(self.crop_size, dict) else self.crop_size
        needed = sorted(set(np.concatenate(clip_indices).tolist()))
        remap = {idx: i for i, idx in enumerate(needed)}
        frames = prepared[needed]
        check_pixel_range(frames, self.do_rescale, self.rescale_factor, self.do_normalize)
        if self.do_resize:
            frames = self.resize(frames, size=size, resample=self.resample)
        height, width = frames.shape[-2:]
        if not self.do_center_crop:  # `preprocess` gives the model whole frames: so does every view
            crop = SizeDict(height=height, width=width)
        if width >= height:  # landscape: crops move along x
            xs = multi_view_crop_starts(width, crop.width, num_crops)
            ys = [int((height - crop.height) / 2)] * num_crops
        else:
            ys = multi_view_crop_starts(height, crop.height, num_crops)
            xs = [int((width - crop.width) / 2)] * num_crops
        if min(ys) < 0 or min(xs) < 0:
            raise ValueError(f"Frames of size {height}x{width} are smaller than the crop {crop.height}x{crop.width}")

        views = []
        for idx in clip_indices:
            clip = frames[[remap[int(i)] for i in idx]]
            for y, x in zip(ys, xs):
                views.append(clip[..., y : y + crop.height, x : x + crop.width])
        views = torch.stack(views)  # (V, T, C, h, w)
        mean = tuple(self.image_mean) if isinstance(self.image_mean, list) else self.image_mean
        std = tuple(self.image_std) if isinstance(self.image_std, list) else self.image_std
        return self.rescale_and_normalize(
            views, self.do_rescale, self.rescale_factor, self.do_normalize, mean, std
        ).float()


def resize_frames_bicubic_uint8(frames, height: int, width: int) -> torch.Tensor:
    """Bicubic resize of `uint8` frames as the original evaluation (torchvision 0.14.1 on a `uint8` tensor): computed
    in float32 without antialiasing, then clamped to [0, 255], rounded and cast back to `uint8`.

    Current torchvision (>= 0.17) instead runs PyTorch's native `uint8` bicubic kernel on the CPU (fixed-point, with an
    intermediate rounding between the two passes) and the float path on the GPU; the CPU kernel differs from the
    original by up to 3 grey levels on ~10 % of the pixels. This function is the same on every device.

    Args:
        frames: `(T, H, W, C)` array/tensor or `(T, C, H, W)` tensor of `uint8`.

    Returns:
        `uint8` tensor `(T, C, height, width)`.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if tensor.dtype != torch.uint8 or tensor.ndim != 4:
        raise ValueError(
            f"Expected uint8 frames (T, H, W, C) or (T, C, H, W), got {tensor.dtype} {tuple(tensor.shape)}"
        )
    if tensor.shape[-1] in (1, 3) and tensor.shape[1] not in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2)
    if tuple(tensor.shape[-2:]) == (height, width):
        return tensor
    resized = torch.nn.functional.interpolate(
        tensor.float(), size=(height, width), mode="bicubic", align_corners=False, antialias=False
    )
    return resized.clamp_(0, 255).round_().to(torch.uint8)


def _rename_sampling_mode(kwargs: dict) -> None:
    """`sampling_mode` (the former name, with the original's `"val"` / `"test"` values) -> `frame_sampling`."""
    if "sampling_mode" in kwargs:
        mode = kwargs.pop("sampling_mode")
        if mode is not None:
            kwargs.setdefault("frame_sampling", mode)


# --------------------------------------------------------------------------------------------------------------
# Input checks shared by every processor that takes videos (video, video-text and chat processors)
# --------------------------------------------------------------------------------------------------------------
EXPECTED_VIDEO_INPUT = (
    "a video file path, a (T, H, W, C) array or a (T, C, H, W) array/tensor with C = 3 (RGB), 1 (grey) or 4 "
    "(RGBA), a (T, H, W) grey array, a list of frames (PIL images, (H, W, C) / (C, H, W) / (H, W) arrays), or a "
    "list or 5-D batch of those"
)
# Channel counts in order of preference when two axes of a 4-D array could hold the channels.
_CHANNEL_COUNTS = (3, 4, 1)
# PIL modes read as they are: RGB, RGBA (alpha dropped later, with a warning) and the grey modes.
_PIL_MODES_AS_IS = ("RGB", "RGBA", "L", "I", "I;16", "F")


def _is_pil_image(x) -> bool:
    return hasattr(x, "convert") and hasattr(x, "mode") and hasattr(x, "size")


def _is_array(x) -> bool:
    return isinstance(x, (np.ndarray, torch.Tensor))


def is_video_frame(x) -> bool:
    """One still frame: a PIL image, a grey `(H, W)` array or an `(H, W, C)` / `(C, H, W)` array."""
    return _is_pil_image(x) or (_is_array(x) and x.ndim in (2, 3))


def is_single_frame_array(array) -> bool:
    """Whether a 3-D array is one frame, `(H, W, C)` or `(C, H, W)`, rather than a grey video `(T, H, W)`: its last
    axis has 1, 3 or 4 entries, or its first 1 or 3 (the Transformers rule for inferring the channel axis)."""
    return array.shape[-1] in _CHANNEL_COUNTS or array.shape[0] in (1, 3)


def split_video_inputs(videos) -> list:
    """The videos of one call, one entry per video: a path (`str`), a 4-D array/tensor, or a list of frames (so that
    splitting the result again gives it back). Accepts one video or a batch: a list (nested lists are flattened, as
    chat templates pass one list of videos per conversation) or a 5-D array. A 3-D array is one frame or a grey video
    `(T, H, W)` ([`is_single_frame_array`]); a list of 3-D arrays is one video given as its frames.

    Raises:
        ValueError: no video at all (`None`, `[]`, a batch of 0), or an array of the wrong number of dimensions.
        TypeError: anything that is not a path, an array/tensor, a PIL image or a list of those.
    """
    if videos is None:
        raise ValueError(f"No video was given; expected {EXPECTED_VIDEO_INPUT}.")
    if isinstance(videos, (str, os.PathLike)):
        return [os.fspath(videos)]
    if _is_pil_image(videos):
        return [[videos]]
    if _is_array(videos):
        shape = tuple(videos.shape)
        if videos.ndim == 5:
            if shape[0] == 0:
                raise ValueError(f"Got a batch of 0 videos (an array of shape {shape}); expected at least one video.")
            return list(videos)
        if videos.ndim == 4:
            return [videos]
        if videos.ndim == 3:  # one frame, or a grey video given a channel axis (so that the result splits the same)
            return [[videos]] if is_single_frame_array(videos) else [videos[..., None]]
        if videos.ndim == 2:
            return [[videos]]  # one grey frame
        raise ValueError(f"Expected {EXPECTED_VIDEO_INPUT}; got an array of shape {shape}.")
    if isinstance(videos, (list, tuple)):
        if len(videos) == 0:
            raise ValueError(f"`videos` is (or holds) an empty list; expected {EXPECTED_VIDEO_INPUT}.")
        if all(is_video_frame(x) for x in videos):  # one video given as its frames
            return [list(videos)]
        out = []
        for item in videos:
            out.extend(split_video_inputs(item))
        return out
    raise TypeError(f"Expected {EXPECTED_VIDEO_INPUT}; got {type(videos).__name__}.")


def _stack_frames(frames) -> np.ndarray | torch.Tensor:
    """A list of frames -> one array `(T, ...)`: PIL images become arrays (palette and other modes via RGB), grey
    `(H, W)` frames get a channel axis."""
    if len(frames) == 0:
        raise ValueError("A video was given as an empty list of frames; expected at least one frame.")
    if all(isinstance(frame, torch.Tensor) for frame in frames):
        stacked = [frame[None] if frame.ndim == 2 else frame for frame in frames]
    else:
        stacked = []
        for frame in frames:
            if _is_pil_image(frame):
                frame = np.asarray(frame if frame.mode in _PIL_MODES_AS_IS else frame.convert("RGB"))
            elif isinstance(frame, torch.Tensor):
                frame = frame.detach().cpu().numpy()
            elif not isinstance(frame, np.ndarray):
                raise TypeError(f"A frame must be a PIL image or an array/tensor, got {type(frame).__name__}.")
            stacked.append(frame[..., None] if frame.ndim == 2 else frame)
    shapes = sorted({tuple(frame.shape) for frame in stacked})
    if len(shapes) > 1:
        raise ValueError(f"The frames of one video must all have the same shape, got {shapes}.")
    if len(shapes[0]) != 3:
        raise ValueError(f"A frame must be (H, W, C), (C, H, W) or (H, W); got one of shape {shapes[0]}.")
    if isinstance(stacked[0], torch.Tensor):
        return torch.stack(stacked)
    return np.stack(stacked)


def _to_tensor(video) -> torch.Tensor:
    """`uint8` stays `uint8`; every other real dtype becomes `float32`. Booleans, complex numbers and objects are
    refused: they are not pixel values."""
    if isinstance(video, np.ndarray):
        if video.dtype == np.uint8:
            return torch.from_numpy(np.ascontiguousarray(video))
        if video.dtype.kind not in "uif":
            raise TypeError(
                f"Frames of dtype {video.dtype} are not pixel values; expected uint8 (0-255) or floating-point frames."
            )
        with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
            return torch.from_numpy(np.ascontiguousarray(video, dtype=np.float32))
    video = video.detach()
    if video.dtype == torch.uint8:
        return video
    if video.dtype == torch.bool or video.is_complex():
        raise TypeError(
            f"Frames of dtype {video.dtype} are not pixel values; expected uint8 (0-255) or floating-point frames."
        )
    return video.float()


def _channel_axis(shape: tuple, input_data_format) -> int:
    """Axis 1 (`(T, C, H, W)`) or 3 (`(T, H, W, C)`) of a 4-D video."""
    if input_data_format is not None:
        axis = 1 if ChannelDimension(input_data_format) == ChannelDimension.FIRST else 3
        if shape[axis] not in _CHANNEL_COUNTS:
            raise ValueError(
                f"input_data_format={ChannelDimension(input_data_format).value!r} puts the channels on axis {axis} of a "
                f"video of shape {shape}, which has {shape[axis]} entries; expected 3 (RGB), 1 (grey) or 4 (RGBA)."
            )
        return axis
    first, last = shape[1] in _CHANNEL_COUNTS, shape[3] in _CHANNEL_COUNTS
    if first and last:
        return 1 if _CHANNEL_COUNTS.index(shape[1]) <= _CHANNEL_COUNTS.index(shape[3]) else 3
    if first or last:
        return 1 if first else 3
    if shape[0] in _CHANNEL_COUNTS:
        raise ValueError(
            f"A video of shape {shape} looks channel-first (C, T, H, W); the processors take (T, H, W, C) or "
            "(T, C, H, W): pass video.permute(1, 0, 2, 3) (torch) or video.transpose(1, 0, 2, 3) (numpy)."
        )
    raise ValueError(
        f"Cannot find the channel axis of a video of shape {shape}: expected (T, H, W, C) or (T, C, H, W) with "
        "C = 3 (RGB), 1 (grey) or 4 (RGBA)."
    )


def standardize_video(video, input_data_format=None) -> torch.Tensor:
    """One decoded video as a `(T, 3, H, W)` tensor (`uint8`, or `float32` for every other dtype).

    * Layouts: `(T, H, W, C)` and `(T, C, H, W)` (the channel axis is the one with 3, 4 or 1 entries; pass
      `input_data_format` when both could be), a list of frames, a grey `(T, H, W)` array. A 3-D array is one frame
      when its last axis has 1, 3 or 4 entries or its first has 1 or 3 (the Transformers rule), else a grey video.
    * Grey (one channel) is replicated to RGB. RGBA drops the alpha channel (it is not composited over a
      background), with a warning.

    Raises:
        ValueError: a channel-first `(C, T, H, W)` array, no channel axis, no frames, empty frames.
        TypeError: boolean, complex or object frames, or frames that are neither arrays nor PIL images.
    """
    if isinstance(video, (list, tuple)):
        video = _stack_frames(video)
    elif not _is_array(video):
        raise TypeError(f"Expected {EXPECTED_VIDEO_INPUT}; got {type(video).__name__}.")
    if video.ndim == 3:
        is_frame = input_data_format is not None or is_single_frame_array(video)
        video = video[None] if is_frame else video[..., None]  # one frame, or a grey (T, H, W) video
    if video.ndim != 4:
        raise ValueError(f"Expected {EXPECTED_VIDEO_INPUT}; got an array of shape {tuple(video.shape)}.")
    if video.shape[0] == 0:
        raise ValueError(f"The video has no frames (an array of shape {tuple(video.shape)}).")
    tensor = _to_tensor(video)
    if _channel_axis(tuple(tensor.shape), input_data_format) == 3:
        tensor = tensor.permute(0, 3, 1, 2)
    if 0 in tensor.shape[-2:]:
        raise ValueError(f"The frames are empty ({tensor.shape[-2]}x{tensor.shape[-1]} pixels).")
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)
    elif tensor.shape[1] == 4:
        logger.warning_once(
            "RGBA frames: the alpha channel is dropped (not composited over a background); the model sees the RGB "
            "channels."
        )
        tensor = tensor[:, :3]
    return tensor


def check_pixel_range(video: torch.Tensor, do_rescale: bool, rescale_factor: float | None, do_normalize: bool) -> None:
    """Refuse frames whose values contradict the rescaling about to be applied (which would give silently wrong
    pixel values). With the standard `rescale_factor = 1/255`:

    * `do_rescale=True` expects 0-255 pixel values: floating-point frames all within [0, 1] (and not all zero) are
      taken to be rescaled already (the case Transformers' image processors warn about: "It looks like you are
      trying to rescale already rescaled images"); values below -1 or above 256 are not 0-255 pixel values either.
    * `do_rescale=False` with `do_normalize=True` expects frames in [0, 1]: values below -1 or above 2 are refused.

    NaN and infinite values are always refused. Other rescale factors only get the finiteness check.

    Raises:
        ValueError: naming the range found and the setting that fits it.
    """
    if video.is_floating_point() and not bool(torch.isfinite(video).all()):
        raise ValueError("The frames hold NaN or infinite values; expected finite pixel values.")
    if video.numel() == 0:
        return
    low, high = float(video.amin()), float(video.amax())
    standard = rescale_factor is not None and abs(float(rescale_factor) * 255.0 - 1.0) < 1e-6
    if do_rescale and standard:
        if video.is_floating_point() and low >= 0.0 and 0.0 < high <= 1.0:
            raise ValueError(
                f"It looks like you are trying to rescale already rescaled frames: floating-point values in "
                f"[{low:g}, {high:g}] with do_rescale=True, which divides them by 255 again. Pass do_rescale=False "
                "for frames in [0, 1], or give 0-255 (uint8) frames."
            )
        if low < -1.0 or high > 256.0:
            raise ValueError(
                f"Frame values span [{low:g}, {high:g}], but do_rescale=True expects 0-255 pixel values. Normalised "
                "frames need do_rescale=False and do_normalize=False; frames in [0, 1] need do_rescale=False."
            )
    elif not do_rescale and do_normalize and (low < -1.0 or high > 2.0):
        raise ValueError(
            f"Frame values span [{low:g}, {high:g}], but do_rescale=False (with do_normalize=True) expects frames "
            "already in [0, 1]. Pass do_rescale=True for 0-255 frames, or do_normalize=False for normalised ones."
        )


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be a positive int, got {type(value).__name__} {value!r}.")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive number, got {value}.")
    return int(value)


def _check_sampling_arguments(num_frames, fps) -> None:
    """`num_frames` a positive int, `fps` a positive finite number; checked before any decoding, so that a bad
    request is not reported as a failure to decode the file."""
    if num_frames is not None:
        _check_positive_int("num_frames", num_frames)
    if fps is not None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
            raise TypeError(f"`fps` must be a positive number, got {type(fps).__name__} {fps!r}.")
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"`fps` must be a positive number of frames per second, got {fps}.")

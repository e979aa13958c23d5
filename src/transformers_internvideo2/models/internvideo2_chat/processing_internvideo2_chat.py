"""Processor of the InternVideo2 chat models: video processor + the language model's tokenizer + a chat template.

It turns chat messages with videos into the inputs of [`InternVideo2ForConditionalGeneration`]:
`input_ids`, `attention_mask` and `pixel_values_videos`.

**Videos.** Without HD, every video goes through the [`InternVideo2VideoProcessor`] (segment sampling, short-side
resize, centre crop, ImageNet normalisation) into one view `(T, C, H, W)`; the batch is `(num_videos, T, C, H, W)`.
With HD (`use_hd=True`, spec §8.1), every video is decoded and normalised at full resolution and then cut into views
by [`split_video_into_hd_views`] (the tiles of an aspect-ratio grid plus a global view, each `local_size` square);
the batch is `(num_videos, num_views, T, C, local_size, local_size)` and all videos of one call must give the same
number of views (use `hd_fix_ratio`, as the HD model card does, or one video per call).

**Placeholders.** The chat template writes the processor's `video_token` once per video. Each occurrence is
expanded to `num_video_tokens_per_view` copies of that token per view, the views of one HD video separated by
`view_separator` (the original repeats its whole `<Video>...</Video>` block per view). The model overwrites the
placeholder rows of the input embeddings with the visual tokens, in order.

**Segment-wise tokenisation.** As the original `build_input_ids`, the text between placeholders is tokenised
*segment by segment*: every segment gets its own SentencePiece prefix space, so ids next to a video are exactly the
original's. By default (`segment_special_tokens=True`) every segment also gets the tokenizer's special tokens, which
reproduces the original Hugging Face `chat()`: a `<s>` at the start, after every video and between the views of an
HD video. `add_special_tokens=False` in a call gives the original training and benchmark tokenisation (no BOS).

**The slow tokenizer's leading space.** The original loads the *slow* SentencePiece tokenizer, which writes a lone
`▁` before a segment that starts with a control token such as `[INST]` (a prompt without system text starts
`<s> ▁ [INST] ▁< Video >`); a fast tokenizer from `tokenizer.json` does not. With `space_before_leading_control=True`
(the default for the Mistral template) the processor inserts that `▁` itself, so the ids equal the original's
whichever tokenizer class is loaded.

**Images** (`images=`, or `{"type": "image"}` in a message) are one-frame videos: the model embeds them with its image
position table, and the templates write the original's `<Image>...</Image>` block. One call takes videos or images.

**Q-Former instruction** (HD models, `qformer_instruction=True`): `qformer_text=` (the original `instruction`, the
system text) is tokenised by the Q-Former's BERT tokenizer into `qformer_input_ids` / `qformer_attention_mask`, one
row per prompt, which the model repeats for every view (the original HD `chat()`); non-HD `chat()` never conditions
the Q-Former.
"""


import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import PILImageResampling
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, Unpack
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from ...media.frame_sampling import sample_frame_indices
from ...media.video_decoding import decode_video_frames
from ..internvideo2_vision.video_processing_internvideo2 import (
    EXPECTED_VIDEO_INPUT,
    InternVideo2VideoProcessor,
    InternVideo2VideoProcessorKwargs,
    is_video_frame,
    split_video_inputs,
)
from ..remote_code import RemoteCodeMixin
from .chat_templates import HD_VIEW_SEPARATORS, MISTRAL_VIDEO_CHAT_TEMPLATE, chat_template_for


__all__ = [
    "InternVideo2ChatProcessor",
    "InternVideo2ChatProcessorKwargs",
    "decode_clip",
    "hd_grid",
    "split_video_into_hd_views",
]


def decode_clip(
    path: str | os.PathLike, num_frames: int, start: float | None = None, end: float | None = None, backend: str = "auto"
) -> np.ndarray:
    """Decode `num_frames` frames of a video file by the benchmark rule (`"mvbench"` frame sampling, optionally inside
    `[start, end]` seconds). Returns `uint8 (T, H, W, 3)` frames, to be passed to the processor with
    `do_sample_frames=False`."""
    def indices(metadata):
        return sample_frame_indices(
            metadata.total_num_frames, num_frames, "mvbench", fps=metadata.fps, start=start, end=end
        )

    frames, _ = decode_video_frames(path, indices=indices, backend=backend)
    return frames


# ------------------------------------------------------------------------------------------------------------------
# HD views
# ------------------------------------------------------------------------------------------------------------------
def hd_grid(height: int, width: int, local_size: int, hd_num: int, fix_ratio=None) -> tuple[int, int]:
    """The `(cols, rows)` tile grid for a `height x width` frame.

    With `fix_ratio` the grid is fixed. Otherwise every grid with `cols * rows <= hd_num` is a candidate, visited from
    the fewest tiles up; the one whose `cols / rows` is closest to the frame's aspect ratio wins, and an equally close
    larger grid replaces it when the frame has more than half that grid's pixel area (the InternVL-1.5 rule the
    original HD preprocessing uses)."""
    if fix_ratio is not None:
        return int(fix_ratio[0]), int(fix_ratio[1])
    aspect = width / height
    candidates = sorted(
        {(c, r) for c in range(1, hd_num + 1) for r in range(1, hd_num + 1) if c * r <= hd_num},
        key=lambda grid: grid[0] * grid[1],
    )
    best, best_diff = (1, 1), math.inf
    for cols, rows in candidates:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and height * width > 0.5 * local_size * local_size * cols * rows:
            best = (cols, rows)
    return best


def split_video_into_hd_views(
    pixel_values_videos: torch.Tensor,
    local_size: int = 224,
    hd_num: int = 6,
    fix_ratio=None,
    add_global_view: bool = True,
) -> torch.Tensor:
    """Tile videos `(..., T, C, H, W)` into HD views `(..., N, T, C, local_size, local_size)`.

    Every frame is resized (bicubic, no crop, aspect ratio not preserved) to the `rows x cols` tile grid chosen by
    [`hd_grid`], cut into tiles in row-major order (top-left first) and, with `add_global_view`, followed by the whole
    resized frame downsized to one tile. All videos of the batch share H and W, hence the grid and N.

    The original tiles the raw 0-255 frames and normalises afterwards; bicubic resizing is linear with weights summing
    to one, so tiling normalised frames gives the same views."""
    *lead, frames, channels, height, width = pixel_values_videos.shape
    cols, rows = hd_grid(height, width, local_size, hd_num, fix_ratio)
    flat = pixel_values_videos.reshape(-1, channels, height, width)
    dtype = flat.dtype
    # bicubic kernels are not implemented for every low-precision dtype on CPU: resize in float32
    resized = F.interpolate(flat.float(), size=(rows * local_size, cols * local_size), mode="bicubic", align_corners=False)
    tiles = resized.reshape(-1, channels, rows, local_size, cols, local_size).permute(0, 2, 4, 1, 3, 5)
    views = [tiles.reshape(-1, rows * cols, channels, local_size, local_size)]
    if add_global_view:
        whole = F.interpolate(resized, size=(local_size, local_size), mode="bicubic", align_corners=False)
        views.append(whole[:, None])
    views = torch.cat(views, dim=1).to(dtype)  # (videos * T, N, C, s, s)
    num_views = views.shape[1]
    views = views.reshape(-1, frames, num_views, channels, local_size, local_size).transpose(1, 2)
    return views.reshape(*lead, num_views, frames, channels, local_size, local_size)


class InternVideo2ChatProcessorKwargs(ProcessingKwargs, total=False):
    videos_kwargs: InternVideo2VideoProcessorKwargs
    _defaults = {
        "text_kwargs": {"padding": True},
        "videos_kwargs": {},
    }

# the named special tokens of a tokenizer; other added tokens (`[INST]`, `[/INST]`, ...) are "control" tokens
_NAMED_SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")
QFORMER_TOKENIZER_SUBFOLDER = "qformer_tokenizer"


def _is_single_video(item) -> bool:
    """A path, a `(T, H, W, C)`/`(T, C, H, W)` array or tensor, a grey `(T, H, W)` array (or one frame), or a list
    of frames (PIL images, 2-D or 3-D arrays)."""
    if isinstance(item, (str, os.PathLike)):
        return True
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item.ndim in (3, 4)
    if isinstance(item, (list, tuple)) and item:
        return all(is_video_frame(frame) for frame in item)
    return False


def _flatten_videos(videos) -> list:
    """Videos of one call as a flat list, in placeholder order (accepts one video, a list of videos, or one list of
    videos per text as `apply_chat_template` passes them)."""
    if videos is None:
        return []
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 3:
        return split_video_inputs(videos)  # one frame or a grey video, in a form that splits unambiguously
    if _is_single_video(videos):
        return [videos]
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        if videos.shape[0] == 0:
            raise ValueError(f"Got a batch of 0 videos (an array of shape {tuple(videos.shape)}).")
        return list(videos)
    if isinstance(videos, (list, tuple)):
        flat = []
        for item in videos:
            flat.extend(_flatten_videos(item))
        return flat
    shape = f" of shape {tuple(videos.shape)}" if isinstance(videos, (np.ndarray, torch.Tensor)) else ""
    raise (ValueError if shape else TypeError)(f"videos: expected {EXPECTED_VIDEO_INPUT}; got {type(videos).__name__}{shape}.")


def _flatten_images(images) -> list:
    """Images of one call as a flat list: PIL images, `(H, W, C)` / `(C, H, W)` arrays or tensors, or `(1, C, H, W)`
    one-frame tensors (the original `chat(media_type="image")` input), or lists of those."""
    if isinstance(images, (list, tuple)):
        flat = []
        for item in images:
            flat.extend(_flatten_images(item))
        return flat
    return [images]


def _image_as_video(image):
    """One image as a one-frame video, in the layout the video processor reads."""
    if isinstance(image, (np.ndarray, torch.Tensor)):
        if image.ndim == 4 and image.shape[0] == 1:
            return image
        if image.ndim == 3:
            return image[None]
        raise ValueError(f"An image must be (H, W, C), (C, H, W) or (1, C, H, W); got shape {tuple(image.shape)}.")
    if hasattr(image, "convert"):  # PIL
        return np.asarray(image.convert("RGB"))[None]
    raise TypeError(f"images must be PIL images, arrays or tensors; got {type(image).__name__}.")


class InternVideo2ChatProcessor(RemoteCodeMixin, ProcessorMixin):
    r"""
    Processor of [`InternVideo2ForConditionalGeneration`]: an [`InternVideo2VideoProcessor`], the language model's
    tokenizer and a chat template (see [`chat_templates`]). Build one matching a model with
    [`InternVideo2ChatProcessor.from_model_config`].

    Args:
        video_processor ([`InternVideo2VideoProcessor`]): frame sampling and pixel preprocessing.
        tokenizer: the language model's tokenizer; it must know `video_token` as a single token.
        chat_template (`str`, *optional*): Jinja template, or the name of a bundled one (`"mistral"`, `"chatml"`,
            `"internlm2_5"`).
        video_token (`str`, defaults to `"<video>"`): the placeholder token (the model's `config.video_token`).
        num_video_tokens_per_view (`int`, defaults to 96): visual tokens per view (the model's
            `config.num_visual_tokens_per_view` = query tokens + extra query tokens).
        use_hd (`bool`, defaults to `False`) / hd_num / hd_local_size / hd_fix_ratio / hd_add_global_view: HD views,
            as the model's config fields of the same names.
        view_separator (`str`, *optional*): text between the placeholder runs of two views of one HD video. Defaults
            to the bundled template's block separator (`"</Video><Video>"` for Mistral, `"</vid><vid>"` for ChatML),
            else `""`.
        segment_special_tokens (`bool`, defaults to `True`): the default of `add_special_tokens`: the tokenizer's
            special tokens (BOS) on every text segment, as the original `chat()` (module docstring).
        space_before_leading_control (`bool`, *optional*): insert the slow SentencePiece tokenizer's lone `▁` before a
            segment that starts with a control token (module docstring). Defaults to `True` for the Mistral template.
        qformer_instruction (`bool`, defaults to `False`): tokenise `qformer_text` for the Q-Former (HD models).
        qformer_tokenizer (*optional*, keyword): the Q-Former's BERT tokenizer (saved in the `qformer_tokenizer/`
            subfolder); needed for `qformer_text`.
    """

    remote_code_auto_map = {
        "AutoProcessor": "internvideo2_chat.processing_internvideo2_chat.InternVideo2ChatProcessor"
    }

    valid_processor_kwargs = InternVideo2ChatProcessorKwargs

    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        chat_template: str | None = None,
        video_token: str = "<video>",
        num_video_tokens_per_view: int = 96,
        use_hd: bool = False,
        hd_num: int = 6,
        hd_local_size: int = 224,
        hd_fix_ratio: list[int] | None = None,
        hd_add_global_view: bool = True,
        view_separator: str | None = None,
        segment_special_tokens: bool = True,
        space_before_leading_control: bool | None = None,
        qformer_instruction: bool = False,
        **kwargs,
    ):
        # not a ProcessorMixin attribute (it is optional and saved in a subfolder): see save_pretrained/from_pretrained
        qformer_tokenizer = kwargs.pop("qformer_tokenizer", None)
        if tokenizer is None:
            raise ValueError("InternVideo2ChatProcessor needs the language model's tokenizer.")
        if video_processor is None:
            video_processor = InternVideo2VideoProcessor()
        if space_before_leading_control is None:
            space_before_leading_control = chat_template in ("mistral", MISTRAL_VIDEO_CHAT_TEMPLATE)
        if chat_template is not None and chat_template in HD_VIEW_SEPARATORS:
            if view_separator is None:
                view_separator = HD_VIEW_SEPARATORS[chat_template]
            chat_template = chat_template_for(chat_template)
        if num_video_tokens_per_view < 1:
            raise ValueError(f"num_video_tokens_per_view must be >= 1, got {num_video_tokens_per_view}.")
        if hd_fix_ratio is not None and (len(hd_fix_ratio) != 2 or min(hd_fix_ratio) < 1):
            raise ValueError(f"hd_fix_ratio must be [cols, rows] with positive entries, got {hd_fix_ratio}.")
        self.video_token = video_token
        self.num_video_tokens_per_view = int(num_video_tokens_per_view)
        self.use_hd = bool(use_hd)
        self.hd_num = int(hd_num)
        self.hd_local_size = int(hd_local_size)
        self.hd_fix_ratio = list(hd_fix_ratio) if hd_fix_ratio is not None else None
        self.hd_add_global_view = bool(hd_add_global_view)
        self.view_separator = view_separator or ""
        self.segment_special_tokens = bool(segment_special_tokens)
        self.space_before_leading_control = bool(space_before_leading_control)
        self.qformer_instruction = bool(qformer_instruction)
        self.qformer_tokenizer = qformer_tokenizer
        self.video_token_id = self._single_token_id(tokenizer, video_token)
        super().__init__(video_processor, tokenizer, chat_template=chat_template, **kwargs)
        self._control_tokens = None

    def _leading_control_tokens(self) -> tuple[tuple[str, ...], int | None]:
        """The tokenizer's added tokens that are not named special tokens (`[INST]`, ...), longest first, and the id of
        the lone SentencePiece word boundary `▁`."""
        if self._control_tokens is None:
            named = {getattr(self.tokenizer, name, None) for name in _NAMED_SPECIAL_TOKENS}
            added = [str(token) for token in self.tokenizer.get_added_vocab() if token not in named]
            boundary = self.tokenizer.convert_tokens_to_ids("\u2581")
            if boundary == self.tokenizer.unk_token_id:
                boundary = None
            self._control_tokens = (tuple(sorted(added, key=len, reverse=True)), boundary)
        return self._control_tokens

    def _encode_segments(self, segments: list[str], add_special_tokens: bool) -> list[list[int]]:
        encoded = self.tokenizer(segments, add_special_tokens=add_special_tokens, return_attention_mask=False)
        encoded = [list(ids) for ids in encoded["input_ids"]]
        if not self.space_before_leading_control:
            return encoded
        controls, boundary = self._leading_control_tokens()
        if boundary is None:
            raise ValueError(
                "space_before_leading_control=True needs a SentencePiece tokenizer with the piece '\u2581'; this one has "
                "none (set space_before_leading_control=False)."
            )
        bos = self.tokenizer.bos_token_id
        for segment, ids in zip(segments, encoded):
            if not any(segment.startswith(token) for token in controls):
                continue
            position = 1 if add_special_tokens and ids and ids[0] == bos else 0
            if ids[position : position + 1] != [boundary]:  # a slow tokenizer has written it already
                ids.insert(position, boundary)
        return encoded

    def check_argument_for_proper_class(self, argument_name, argument):
        # The base class resolves its accepted tokenizer classes by name, `MistralCommonBackend` included, and that
        # import fails when `mistral_common` lacks optional dependencies (it does here: the package only ships the
        # Mistral tokenizer files). Any Transformers tokenizer will do, so check for the base class.
        if argument_name == "tokenizer":
            if not isinstance(argument, PreTrainedTokenizerBase):
                raise TypeError(f"tokenizer must be a Transformers tokenizer, got {type(argument).__name__}.")
            return PreTrainedTokenizerBase
        return super().check_argument_for_proper_class(argument_name, argument)

    @staticmethod
    def _single_token_id(tokenizer, token: str) -> int:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1 or ids[0] == tokenizer.unk_token_id and token != tokenizer.unk_token:
            raise ValueError(
                f"The video token {token!r} is not a single token of the tokenizer (it encodes to {ids}). Add it as a "
                "special token first (transformers_internvideo2.assets.add_video_token) or use an existing control "
                "token, and set the model's config.video_token_id to its id."
            )
        return ids[0]

    # ------------------------------------------------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------------------------------------------------
    @classmethod
    def from_model_config(
        cls,
        config,
        tokenizer,
        chat_template: str = "mistral",
        video_processor: InternVideo2VideoProcessor | None = None,
        qformer_tokenizer=None,
        **video_processor_kwargs,
    ) -> "InternVideo2ChatProcessor":
        """The processor matching an [`InternVideo2ChatConfig`]: its video token, visual tokens per view and HD
        settings; the video processor samples `vision_config.num_frames` frames at `vision_config.image_size`
        (bicubic short-side resize + centre crop, as the chat model card), unless `video_processor` is given.
        `chat_template` is a bundled template name or a Jinja string."""
        if tokenizer.convert_tokens_to_ids(config.video_token) != config.video_token_id:
            raise ValueError(
                f"The tokenizer maps the video token {config.video_token!r} to "
                f"{tokenizer.convert_tokens_to_ids(config.video_token)}, but config.video_token_id is "
                f"{config.video_token_id}."
            )
        if video_processor is None:
            size = config.vision_config.image_size
            settings = dict(
                num_frames=config.vision_config.num_frames,
                size={"shortest_edge": size},
                crop_size={"height": size, "width": size},
                resample=PILImageResampling.BICUBIC,
            )
            settings.update(video_processor_kwargs)
            video_processor = InternVideo2VideoProcessor(**settings)
        elif video_processor_kwargs:
            raise ValueError("Pass either video_processor or video processor settings, not both.")
        return cls(
            video_processor=video_processor,
            tokenizer=tokenizer,
            chat_template=chat_template,
            video_token=config.video_token,
            num_video_tokens_per_view=config.num_visual_tokens_per_view,
            use_hd=config.use_hd,
            hd_num=config.hd_num,
            hd_local_size=config.hd_local_size,
            hd_fix_ratio=config.hd_fix_ratio,
            hd_add_global_view=config.hd_add_global_view,
            qformer_instruction=bool(config.use_hd and config.qformer_text_input and qformer_tokenizer is not None),
            qformer_tokenizer=qformer_tokenizer,
        )

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`ProcessorMixin.save_pretrained`, plus the Q-Former tokenizer (if any) in `qformer_tokenizer/`. The
        tokenizer's current `padding_side` is saved (a tokenizer writes only its init value otherwise)."""
        self.tokenizer.init_kwargs["padding_side"] = self.tokenizer.padding_side
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if self.qformer_tokenizer is not None:
            self.qformer_tokenizer.save_pretrained(os.path.join(save_directory, QFORMER_TOKENIZER_SUBFOLDER))
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`ProcessorMixin.from_pretrained`, plus the Q-Former tokenizer from `qformer_tokenizer/` when the folder has
        one (older folders load without it)."""
        processor = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        subfolder = os.path.join(str(pretrained_model_name_or_path), QFORMER_TOKENIZER_SUBFOLDER)
        if processor.qformer_tokenizer is None and os.path.isdir(subfolder):
            processor.qformer_tokenizer = AutoTokenizer.from_pretrained(subfolder)
        return processor

    # ------------------------------------------------------------------------------------------------------------
    # Videos
    # ------------------------------------------------------------------------------------------------------------
    def process_videos(self, videos, **videos_kwargs) -> tuple[torch.Tensor, list[int]]:
        """Decode and preprocess videos (paths, arrays, frame lists). Returns `pixel_values_videos`
        (`(V, T, C, H, W)`, or `(V, N, T, C, s, s)` with HD) and the number of views of each video."""
        videos = _flatten_videos(videos)
        if not videos:
            raise ValueError("process_videos needs at least one video.")
        videos_kwargs = {k: v for k, v in videos_kwargs.items() if v is not None}
        videos_kwargs["return_tensors"] = "pt"
        if not self.use_hd:
            pixel_values = self.video_processor(videos=videos, **videos_kwargs)["pixel_values"]
            return pixel_values, [1] * pixel_values.shape[0]
        # HD, in the order of the model card's `load_video`: the sampled frames at full resolution (no resize, no crop)
        # are tiled as 0-255 floats (bicubic, no clamp), then rescaled and normalised.
        rescale = videos_kwargs.pop("do_rescale", None)
        normalize = videos_kwargs.pop("do_normalize", None)
        rescale = self.video_processor.do_rescale if rescale is None else rescale
        normalize = self.video_processor.do_normalize if normalize is None else normalize
        rescale_factor = videos_kwargs.pop("rescale_factor", None) or self.video_processor.rescale_factor
        mean = torch.tensor(videos_kwargs.pop("image_mean", None) or self.video_processor.image_mean)
        std = torch.tensor(videos_kwargs.pop("image_std", None) or self.video_processor.image_std)
        videos_kwargs.update(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=False)
        per_video = []
        for video in videos:
            frames = self.video_processor(videos=[video], **videos_kwargs)["pixel_values"].float()
            views = split_video_into_hd_views(
                frames, self.hd_local_size, self.hd_num, self.hd_fix_ratio, self.hd_add_global_view
            )
            if rescale:
                views = views * rescale_factor
            if normalize:
                views = (views - mean[:, None, None]) / std[:, None, None]
            per_video.append(views)
        view_counts = [views.shape[1] for views in per_video]
        if len(set(view_counts)) > 1:
            raise ValueError(
                f"HD videos of one batch must give the same number of views, got {view_counts} (their aspect ratios "
                "select different tile grids). Set hd_fix_ratio, or process the videos one at a time."
            )
        return torch.cat(per_video, dim=0), view_counts

    def num_views(self, height: int, width: int) -> int:
        """Views of a `height x width` video: 1 without HD, the grid's tiles (+ the global view) with HD."""
        if not self.use_hd:
            return 1
        cols, rows = hd_grid(height, width, self.hd_local_size, self.hd_num, self.hd_fix_ratio)
        return cols * rows + int(self.hd_add_global_view)

    # ------------------------------------------------------------------------------------------------------------
    # Text
    # ------------------------------------------------------------------------------------------------------------
    def tokenize_with_videos(self, text: str, views_per_video: Sequence[int], add_special_tokens: bool = False) -> list[int]:
        """Token ids of `text`, whose `video_token` occurrences (one per video, in order) are expanded to
        `num_video_tokens_per_view` placeholders per view; the text around them is tokenised segment by segment (see
        the module docstring)."""
        pieces = text.split(self.video_token)
        if len(pieces) - 1 != len(views_per_video):
            raise ValueError(
                f"The text has {len(pieces) - 1} video tokens ({self.video_token!r}) but {len(views_per_video)} videos "
                "were given for it."
            )
        segments = [pieces[0]]
        for num_views, tail in zip(views_per_video, pieces[1:]):
            segments.extend([self.view_separator] * (num_views - 1))
            segments.append(tail)
        encoded = self._encode_segments(segments, add_special_tokens)
        ids = list(encoded[0])
        for segment_ids in encoded[1:]:
            ids.extend([self.video_token_id] * self.num_video_tokens_per_view)
            ids.extend(segment_ids)
        return ids

    # ------------------------------------------------------------------------------------------------------------
    # __call__
    # ------------------------------------------------------------------------------------------------------------
    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        images=None,
        audio=None,
        **kwargs: Unpack[InternVideo2ChatProcessorKwargs],
    ) -> BatchFeature:
        """Tokenise `text` (each `video_token` stands for the next video) and preprocess `videos`.

        Returns a [`BatchFeature`] with `input_ids`, `attention_mask` and, when videos are given,
        `pixel_values_videos`. Text kwargs: `padding` (default: pad to the longest), `padding_side`, `max_length`,
        `pad_to_multiple_of`, `add_special_tokens` (BOS before every segment, see the module docstring),
        `return_tensors`. Video kwargs go to the video processor (`num_frames`, `video_backend`, ...).
        """
        qformer_text = kwargs.pop("qformer_text", None)
        if images is not None:
            if videos is not None:
                raise ValueError("Pass videos or images in one call, not both (the original chat() takes one media).")
            videos = [_image_as_video(image) for image in _flatten_images(images)]
            kwargs.setdefault("do_sample_frames", False)
        if audio is not None:
            raise ValueError("InternVideo2 chat models take no audio.")
        if text is None:
            raise ValueError("InternVideo2ChatProcessor needs text (a prompt with one video token per video).")
        if not isinstance(text, (str, list, tuple)):
            raise TypeError(f"text: expected str or list of str, got {type(text).__name__}.")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("text: expected str or list of str, got an empty list.")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError(
                f"text: expected str or list of str, got a list holding {sorted({type(t).__name__ for t in texts})}."
            )

        output_kwargs = self._merge_kwargs(
            InternVideo2ChatProcessorKwargs, tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs
        )
        text_kwargs = output_kwargs["text_kwargs"]
        return_tensors = text_kwargs.pop("return_tensors", None) or output_kwargs.get("common_kwargs", {}).get("return_tensors")
        if text_kwargs.get("truncation") not in (None, False, "do_not_truncate"):
            raise ValueError(
                "InternVideo2ChatProcessor does not truncate: cutting a prompt could split a video's placeholders. "
                "Shorten the text instead."
            )
        if text_kwargs.get("return_offsets_mapping"):
            raise ValueError(
                "Assistant-token masks are not produced by this processor; for training use "
                "transformers_internvideo2.training.chat.InternVideo2ChatDataCollator, which masks every non-answer "
                "token."
            )

        data = {}
        flat_videos = _flatten_videos(videos)
        views_per_video: list[int] = []
        if flat_videos:
            videos_kwargs = dict(output_kwargs["videos_kwargs"])
            videos_kwargs.pop("return_tensors", None)
            data["pixel_values_videos"], views_per_video = self.process_videos(flat_videos, **videos_kwargs)

        counts = [t.count(self.video_token) for t in texts]
        if sum(counts) != len(views_per_video):
            raise ValueError(
                f"The text has {sum(counts)} video tokens ({self.video_token!r}) in total but {len(views_per_video)} "
                "videos were given; write one video token per video (the chat template does)."
            )
        add_special_tokens = text_kwargs.get("add_special_tokens")
        add_special_tokens = self.segment_special_tokens if add_special_tokens is None else bool(add_special_tokens)
        input_ids, start = [], 0
        for t, count in zip(texts, counts):
            input_ids.append(self.tokenize_with_videos(t, views_per_video[start : start + count], add_special_tokens))
            start += count

        pad_kwargs = {
            key: text_kwargs[key]
            for key in ("padding", "max_length", "pad_to_multiple_of", "padding_side")
            if text_kwargs.get(key) is not None
        }
        padded = self.tokenizer.pad(
            {"input_ids": input_ids}, return_attention_mask=True, return_tensors=return_tensors, **pad_kwargs
        )
        data["input_ids"] = padded["input_ids"]
        data["attention_mask"] = padded["attention_mask"]
        if qformer_text is not None:
            data.update(self.tokenize_qformer_text(qformer_text, len(texts)))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def tokenize_qformer_text(self, qformer_text: str | list[str], batch_size: int) -> dict:
        """`qformer_input_ids` / `qformer_attention_mask` of the Q-Former instruction, one row per prompt (a single
        string serves every prompt), as the original: BERT `[CLS] ... [SEP]`, left padding to the longest, left
        truncation to the Q-Former's 512 positions."""
        if not self.qformer_instruction:
            raise ValueError(
                "qformer_text given, but this processor has qformer_instruction=False (only the HD chat model "
                "conditions its Q-Former on the instruction)."
            )
        if self.qformer_tokenizer is None:
            raise ValueError("qformer_text needs the Q-Former tokenizer (qformer_tokenizer=...).")
        rows = [qformer_text] * batch_size if isinstance(qformer_text, str) else list(qformer_text)
        if len(rows) != batch_size:
            raise ValueError(f"qformer_text has {len(rows)} entries for {batch_size} prompts.")
        encoded = self.qformer_tokenizer(
            rows, padding="longest", truncation=True, max_length=512, padding_side="left", return_tensors="pt"
        )
        return {"qformer_input_ids": encoded["input_ids"], "qformer_attention_mask": encoded["attention_mask"]}

    def apply_chat_template(self, conversation, chat_template: str | None = None, **kwargs):
        """`ProcessorMixin.apply_chat_template` with the template variable `video_token` set to this processor's
        placeholder token. `chat_template` may also name a bundled template (`"mistral"`, `"chatml"`)."""
        kwargs.setdefault("video_token", self.video_token)
        if chat_template in HD_VIEW_SEPARATORS:
            chat_template = chat_template_for(chat_template)
        return super().apply_chat_template(conversation, chat_template=chat_template, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens: bool = True, **kwargs):
        """Decode generated ids to text (used by `pipeline("image-text-to-text")`)."""
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask", "pixel_values_videos"]
        return names + (["qformer_input_ids", "qformer_attention_mask"] if self.qformer_instruction else [])

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Processor of the InternVideo2 stage-2 video-text models: video processor + BERT uncased WordPiece tokenizer.

It reproduces the preprocessing of the original stage-2 retrieval evaluation.

**Text** (:meth:`InternVideo2Processor.tokenize`):

1. optional caption cleaning (``clean_text=True``, the original ``pre_text``; see :func:`clean_caption`);
2. uncased WordPiece (lower-casing, accent stripping, CJK splitting: the stock BERT uncased tokenizer);
3. ``[CLS] w1 ... w_{max_length-1}`` -- **no** ``[SEP]`` (the original stage-2 tokenizer never adds one; a stock
   ``BertTokenizer`` call does, and that changes every text feature). The format lives in the tokenizer itself:
   the processor turns the BERT tokenizer it is given into one whose post-processor writes ``[CLS] $A``
   (:func:`stage2_text_tokenizer`), and saves it that way, so ``tokenizer(texts)`` alone is right.
   ``add_sep=True`` gives the standard BERT ``[CLS] ... [SEP]`` instead, for models fine-tuned that way.
   Truncation keeps the first ``max_length - 1`` word-pieces (``max_length - 2`` with ``[SEP]``);
4. right padding with ``[PAD]`` (id 0) to ``max_length`` (``padding="max_length"``, as the original) or to the
   longest text (``padding="longest"``); ``attention_mask`` is 1 on ``[CLS]`` and the word-pieces. No
   ``token_type_ids`` unless ``return_token_type_ids=True`` (all zeros).

Defaults: ``max_length=32``, ``clean_text=True``, ``add_sep=False``, ``padding="max_length"`` -- the MSR-VTT /
LSMDC / VATEX evaluation setting. Other datasets of the original evaluation use other lengths
(:data:`TEXT_MAX_LENGTH_BY_DATASET`: DiDeMo and MSVD 64, ActivityNet 150); the original demo uses ``max_length=40``
and ``clean_text=False``.

**Video**: the video processor does all of it (:meth:`InternVideo2Processor.stage2_video_processor`): the
``"middle"`` frame sampling of the stage-2 evaluation (``media/frame_sampling.py``; the demo's is ``"demo"``),
resize to 224x224 bicubic without antialiasing on ``uint8`` (computed in float and rounded, as the original's
torchvision did), no crop, ImageNet mean/std.

**Audio** (6B audio-video-text models; optional): with a ``feature_extractor`` (a
:class:`~transformers_internvideo2.models.beats.BeatsFeatureExtractor`), ``audio=`` (file paths, waveforms with their
``sampling_rate``, :class:`~transformers_internvideo2.media.audio_decoding.DecodedAudio`) and
``audio_from_videos=True`` (the audio tracks of the video files in ``videos``) give ``input_features``
``(B, 998, 64)``. The two inputs follow the original's two loaders: audio given as such goes through its audio-file
path (the waveform is zero-padded to 10 s, ``padding_mode="waveform"``), the audio track of a video through its video
path (the filterbank is padded with zeros, ``padding_mode="fbank"``); ``audio_kwargs`` overrides either
(``padding_mode``, ``crop_mode``, ``generator``). A video without an audio stream gives all-zero features, as the
original, and a warning naming the file. See :meth:`InternVideo2Processor.process_audio`.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.image_utils import PILImageResampling
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast
from transformers.processing_utils import ProcessorMixin
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging

from ...media.audio_decoding import DecodedAudio, NoAudioStreamError, decode_audio
from ...media.frame_sampling import canonical_frame_sampling
from ..beats.feature_extraction_beats import BeatsFeatureExtractor
from ..internvideo2_vision.video_processing_internvideo2 import (
    InternVideo2VideoProcessor,
    is_single_frame_array,
    is_video_frame,
    split_video_inputs,
)
from ..remote_code import RemoteCodeMixin


logger = logging.get_logger(__name__)


__all__ = [
    "DEFAULT_TEXT_MAX_LENGTH",
    "TEXT_MAX_LENGTH_BY_DATASET",
    "InternVideo2Processor",
    "clean_caption",
    "stage2_text_tokenizer",
]

# `max_txt_l` of each evaluation dataset of the original code (configs/data.py); "demo" is the demo notebook.
TEXT_MAX_LENGTH_BY_DATASET: dict[str, int] = {
    "msrvtt": 32,
    "lsmdc": 32,
    "vatex": 32,
    "didemo": 64,
    "msvd": 64,
    "anet": 150,
    "demo": 40,
}
DEFAULT_TEXT_MAX_LENGTH = TEXT_MAX_LENGTH_BY_DATASET["msrvtt"]
PADDING_MODES = ("max_length", "longest")

_DELETED_CHARACTERS = re.compile(r"[,.'!?\"()*#:;~]")
_WHITESPACE_RUN = re.compile(r"\s{2,}")


def clean_caption(text: str) -> str:
    """The caption cleaning of the original training and evaluation (``pre_text``).

    Lower-case; delete ``, . ' ! ? " ( ) * # : ; ~``; replace ``-`` and ``/`` by a space; ``<person>`` -> ``person``;
    collapse runs of two or more whitespace characters into one space; drop trailing newlines and surrounding spaces.

    >>> clean_caption("A man -- in a gray/blue sweater -- plays fetch!")
    'a man in a gray blue sweater plays fetch'
    """
    if not isinstance(text, str):
        raise TypeError(f"Captions must be strings, got {type(text).__name__}: {text!r}")
    text = _DELETED_CHARACTERS.sub("", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = _WHITESPACE_RUN.sub(" ", text)
    return text.rstrip("\n").strip(" ")


def stage2_text_tokenizer(tokenizer: PreTrainedTokenizerBase, add_sep: bool = False) -> PreTrainedTokenizerFast:
    """A copy of a (fast) BERT WordPiece tokenizer whose post-processor writes the stage-2 format, `[CLS] $A`
    (`[CLS] $A [SEP]` with `add_sep`), saved as a plain `tokenizers` backend so that reloading keeps the format (a
    `BertTokenizer` re-applies its own `[CLS] $A [SEP]` template on load). Returns `tokenizer` itself when it already
    writes that format."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise TypeError(f"The stage-2 text format needs a fast (tokenizers-backed) tokenizer, got {type(tokenizer).__name__}.")
    missing = [name for name in ("cls_token", "pad_token") if getattr(tokenizer, name, None) is None]
    if missing:
        raise ValueError(f"The tokenizer has no {' / '.join(missing)}: not a BERT WordPiece tokenizer.")
    cls_token, sep_token = tokenizer.cls_token, tokenizer.sep_token
    special = [(cls_token, tokenizer.cls_token_id)]
    single = f"{cls_token} $A"
    if add_sep:
        if sep_token is None:
            raise ValueError("add_sep=True needs a tokenizer with a [SEP] token.")
        special.append((sep_token, tokenizer.sep_token_id))
        single += f" {sep_token}"
    template = TemplateProcessing(single=single, pair=f"{single} $B" + (f" {sep_token}" if add_sep else ""),
                                  special_tokens=special)  # fmt: skip
    probe = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("a")) or [tokenizer.pad_token_id]
    expected = [tokenizer.cls_token_id, *probe] + ([tokenizer.sep_token_id] if add_sep else [])
    if isinstance(tokenizer, PreTrainedTokenizerFast) and tokenizer("a")["input_ids"] == expected:
        return tokenizer
    backend = copy.deepcopy(backend)
    backend.post_processor = template
    special_tokens = {
        name: getattr(tokenizer, name)
        for name in ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token")
        if getattr(tokenizer, name, None) is not None
    }
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=tokenizer.model_max_length, padding_side="right", **special_tokens
    )


def _split_videos(videos) -> list:
    """The videos of a call, one entry per video ([`split_video_inputs`]); a single still frame is refused, since
    this model encodes images through their own path (`images=`)."""
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 3 and is_single_frame_array(videos):
        raise ValueError(
            f"Got an array of shape {tuple(videos.shape)}: a single image is not a video; pass it with `images=` "
            "(one frame), or a grey video as (T, H, W, 1)."
        )
    return split_video_inputs(videos)


def _split_audio(audio) -> list:
    """Normalise the accepted audio inputs into a list with one entry per clip (a path, a `DecodedAudio` or a
    waveform `(samples,)` / `(channels, samples)`)."""
    if isinstance(audio, (str, os.PathLike, DecodedAudio)):
        return [audio]
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        if audio.ndim == 1:
            return [audio]
        if audio.ndim == 2:  # (batch, samples): mono clips, as the feature extractor reads a 2-D array
            if audio.shape[1] <= 64 < audio.shape[0]:
                raise ValueError(
                    f"Got an array of shape {tuple(audio.shape)}: that looks like one (samples, channels) clip, but a "
                    "2-D array is a batch (batch, samples). Pass [clip.T] for a (channels, samples) clip."
                )
            return list(audio)
        raise ValueError(
            f"Expected audio of shape (samples,) or a batch (batch, samples), got an array of shape "
            f"{tuple(audio.shape)}; pass multi-channel clips `(channels, samples)` in a list."
        )
    if isinstance(audio, (list, tuple)):
        if len(audio) == 0:
            raise ValueError("`audio` is an empty list")
        if all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in audio):
            return [np.asarray(audio, dtype=np.float32)]  # one clip as a list of numbers
        for clip in audio:
            if not isinstance(clip, (str, os.PathLike, DecodedAudio, np.ndarray, torch.Tensor, list, tuple)):
                raise ValueError(
                    "Each audio clip must be a file path, a DecodedAudio or a waveform array; got "
                    f"{type(clip).__name__}"
                )
        return list(audio)
    raise ValueError(f"Unsupported `audio` input of type {type(audio).__name__}")


class InternVideo2Processor(RemoteCodeMixin, ProcessorMixin):
    r"""
    Processor for the InternVideo2 stage-2 dual encoder (`InternVideo2Model`, `InternVideo2ForRetrieval`): an
    [`InternVideo2VideoProcessor`] and a BERT uncased WordPiece tokenizer, with the text format of the original
    (see the module docstring for the exact recipe).

    Args:
        video_processor ([`InternVideo2VideoProcessor`], *optional*):
            Defaults to the stage-2 evaluation configuration of [`InternVideo2Processor.stage2_video_processor`]
            (4 frames, 224x224 bicubic resize without crop).
        tokenizer ([`BertTokenizer`], *optional*):
            The uncased BERT WordPiece tokenizer (required; offline: `assets.load_bert_uncased_tokenizer()`).
        max_length (`int`, *optional*, defaults to 32):
            Length of every tokenised text, `[CLS]` included (truncation and padding). See
            [`TEXT_MAX_LENGTH_BY_DATASET`] for the values of the original evaluation.
        clean_text (`bool`, *optional*, defaults to `True`):
            Apply [`clean_caption`] (the original `pre_text`) before tokenising. The original demo does not.
        add_sep (`bool`, *optional*, defaults to `False`):
            Append `[SEP]`. The original stage-2 models never saw one; keep `False` for them. The tokenizer is turned
            into one that writes this format ([`stage2_text_tokenizer`]).
        frame_sampling (`str`, *optional*):
            Sets the video processor's frame sampling (a mode of `media.frame_sampling`, e.g. `"middle"` (stage-2
            evaluation, the stage-2 video processor's default) or `"demo"` (the original demo)).

        feature_extractor ([`BeatsFeatureExtractor`], *optional*):
            The audio feature extractor of the 6B audio-video-text models (`BeatsFeatureExtractor()` is the original
            configuration). Without it the processor is video-and-text only and refuses `audio=`. Saved inside
            `processor_config.json` (key `"feature_extractor"`, `null` when absent) and restored by
            `from_pretrained`; folders saved before audio existed load without one.

    There is no `<video>` placeholder token: this is a dual encoder, text and video are encoded separately.
    """

    remote_code_auto_map = {
        "AutoProcessor": "internvideo2_video_text.processing_internvideo2_video_text.InternVideo2Processor"
    }


    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        max_length: int = DEFAULT_TEXT_MAX_LENGTH,
        clean_text: bool = True,
        add_sep: bool = False,
        frame_sampling: str | None = None,
        chat_template=None,
        feature_extractor=None,
        **kwargs,
    ):
        self.feature_extractor = self._check_feature_extractor(feature_extractor)
        if video_processor is None:
            video_processor = self.stage2_video_processor()
        if tokenizer is None:
            raise ValueError(
                "InternVideo2Processor needs the uncased BERT tokenizer of the stage-2 text encoder (`tokenizer=`); "
                "offline: transformers_internvideo2.assets.load_bert_uncased_tokenizer()."
            )
        if frame_sampling == "video_processor":  # the former "leave it to the video processor" setting
            frame_sampling = None
        if frame_sampling is not None:
            video_processor.frame_sampling = canonical_frame_sampling(frame_sampling)
        tokenizer = stage2_text_tokenizer(tokenizer, add_sep=bool(add_sep))
        self.max_length = self._check_max_length(max_length, tokenizer)
        self.clean_text = bool(clean_text)
        self.add_sep = bool(add_sep)
        super().__init__(video_processor, tokenizer, chat_template=chat_template, **kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # Construction helpers
    # ------------------------------------------------------------------------------------------------------------
    @staticmethod
    def stage2_video_processor(num_frames: int = 4, image_size: int = 224, **kwargs) -> InternVideo2VideoProcessor:
        """The video processor of the original stage-2 evaluation: `"middle"` frame sampling, `Resize((size, size))`
        bicubic, no antialiasing, on `uint8` frames (aspect ratio not kept), no crop, `/255`, ImageNet mean/std."""
        settings = dict(
            num_frames=num_frames,
            size={"height": image_size, "width": image_size},
            do_center_crop=False,
            resample=PILImageResampling.BICUBIC,
            frame_sampling="middle",
        )
        settings.update(kwargs)
        return InternVideo2VideoProcessor(**settings)

    @classmethod
    def for_stage2(
        cls,
        num_frames: int = 4,
        image_size: int = 224,
        max_length: int = DEFAULT_TEXT_MAX_LENGTH,
        clean_text: bool = True,
        tokenizer=None,
        **kwargs,
    ) -> InternVideo2Processor:
        """Processor reproducing the original stage-2 evaluation (4 frames for MSR-VTT/MSVD, 8 for DiDeMo/ANet/
        LSMDC/VATEX with the 1B model) around `tokenizer`, the uncased BERT tokenizer."""
        return cls(
            video_processor=cls.stage2_video_processor(num_frames=num_frames, image_size=image_size),
            tokenizer=tokenizer,
            max_length=max_length,
            clean_text=clean_text,
            **kwargs,
        )

    @staticmethod
    def _check_max_length(max_length, tokenizer) -> int:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"`max_length` must be a positive int ([CLS] included), got {max_length!r}")
        limit = getattr(tokenizer, "model_max_length", None)
        if limit is not None and limit < 10**9 and max_length > limit:
            raise ValueError(
                f"`max_length={max_length}` exceeds the tokenizer's `model_max_length={limit}` (the BERT position "
                "table); texts cannot be longer than the position table."
            )
        return max_length

    @classmethod
    def get_attributes(cls) -> list[str]:
        # The audio feature extractor is optional (video-only processors, and folders saved before audio existed).
        # Transformers' processor attributes are mandatory (construction, saving and loading all require them), so
        # `feature_extractor` is an ordinary init argument instead: `to_dict` serialises it (an init argument that is
        # a feature extractor is written as its dict, `null` when absent) and `from_pretrained` passes the dict back.
        return [name for name in super().get_attributes() if name != "feature_extractor"]

    @staticmethod
    def _check_feature_extractor(feature_extractor):
        if feature_extractor is None or isinstance(feature_extractor, FeatureExtractionMixin):
            return feature_extractor
        if isinstance(feature_extractor, dict):  # from processor_config.json
            settings = dict(feature_extractor)
            kind = settings.pop("feature_extractor_type", BeatsFeatureExtractor.__name__)
            if kind != BeatsFeatureExtractor.__name__:
                raise ValueError(
                    f"The saved feature extractor is a {kind}; InternVideo2Processor restores a "
                    f"{BeatsFeatureExtractor.__name__} (load the other one yourself, pass it as feature_extractor=)."
                )
            settings.pop("auto_map", None)  # written by a save of the extractor alone; the processor has its own
            return BeatsFeatureExtractor(**settings)
        raise TypeError(
            "`feature_extractor` must be an audio feature extractor (BeatsFeatureExtractor), its saved dict, or None; "
            f"got {type(feature_extractor).__name__}."
        )

    def check_argument_for_proper_class(self, argument_name, argument):
        # The base class resolves the accepted tokenizer classes by name, including `MistralCommonBackend`, whose
        # import fails whenever `mistral_common` is installed without its optional dependencies; that would make
        # this processor unusable for a reason unrelated to BERT. Check the tokenizer directly instead.
        if argument_name == "tokenizer":
            if not isinstance(argument, PreTrainedTokenizerBase):
                raise TypeError(f"`tokenizer` must be a Transformers tokenizer, got {type(argument).__name__}")
            return PreTrainedTokenizerBase
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def model_input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask", "pixel_values"]
        return names + (["input_features"] if self.feature_extractor is not None else [])

    # ------------------------------------------------------------------------------------------------------------
    # Text
    # ------------------------------------------------------------------------------------------------------------
    def tokenize(
        self,
        text: str | Sequence[str],
        max_length: int | None = None,
        clean_text: bool | None = None,
        add_sep: bool | None = None,
        padding: str | bool = "max_length",
        return_token_type_ids: bool = False,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """Tokenise captions in the original stage-2 format (module docstring). Arguments left to `None` take the
        processor's settings (`self.max_length`, `self.clean_text`, `self.add_sep`).

        Returns:
            [`BatchFeature`] with `input_ids` and `attention_mask` of shape `(num_texts, length)` (`int64`), where
            `length = max_length` with `padding="max_length"`.
        """
        if not isinstance(text, (str, list, tuple)):
            raise TypeError(f"text: expected str or list of str, got {type(text).__name__}: {text!r}")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("text: expected str or list of str, got an empty list")
        for item in texts:
            if not isinstance(item, str):
                raise TypeError(
                    f"text: expected str or list of str; an item is {type(item).__name__}: {item!r} (each text must be a "
                    "string)"
                )
        max_length = self._check_max_length(self.max_length if max_length is None else max_length, self.tokenizer)
        clean_text = self.clean_text if clean_text is None else clean_text
        add_sep = self.add_sep if add_sep is None else add_sep
        if padding is True:
            padding = "longest"
        if padding not in PADDING_MODES:
            raise ValueError(f"`padding` must be one of {PADDING_MODES} (or True for 'longest'), got {padding!r}")
        if add_sep != self.add_sep:  # another format for this call only
            tokenizer = stage2_text_tokenizer(self.tokenizer, add_sep=add_sep)
        else:
            tokenizer = self.tokenizer
        if max_length < (2 if add_sep else 1):
            raise ValueError(f"`max_length={max_length}` leaves no room for the special tokens")
        if clean_text:
            texts = [clean_caption(t) for t in texts]
        data = tokenizer(
            texts,
            padding=padding,
            truncation=True,
            max_length=max_length,
            return_attention_mask=True,
            return_token_type_ids=return_token_type_ids,
            verbose=False,
        ).data
        return BatchFeature(data, tensor_type=return_tensors)

    # ------------------------------------------------------------------------------------------------------------
    # Video
    # ------------------------------------------------------------------------------------------------------------
    def process_videos(self, videos=None, images=None, num_frames: int | None = None, **videos_kwargs) -> BatchFeature:
        """`pixel_values (B, T, C, H, W)` for videos (sampled by the video processor's `frame_sampling`) or still images
        (T = 1).

        `videos`: a file path, an array `(T, H, W, C)` / tensor `(T, C, H, W)`, a list of frames, or a list /
        5-D batch of those. `images`: one image (PIL, `(H, W, C)` array, `(C, H, W)` tensor) or a list; each becomes
        a one-frame video, which the model encodes through its image position-embedding path.
        Other keyword arguments go to the video processor.
        """
        if (videos is None) == (images is None):
            raise ValueError("Pass exactly one of `videos` or `images`")
        videos_kwargs.setdefault("return_tensors", "pt")
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            if not images:
                raise ValueError("`images` is an empty list; expected at least one image.")
            for image in images:
                if not is_video_frame(image):
                    raise ValueError(
                        "Each image must be a PIL image, an (H, W, C) / (C, H, W) array/tensor or an (H, W) grey "
                        f"array; got {type(image).__name__}"
                        + (f" of shape {tuple(image.shape)}" if hasattr(image, "shape") else "")
                    )
            clips = [[image] for image in images]  # each image is a one-frame video
            return self.video_processor(clips, do_sample_frames=False, **videos_kwargs)
        if num_frames is not None:
            videos_kwargs["num_frames"] = num_frames
        return self.video_processor(_split_videos(videos), **videos_kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # Audio
    # ------------------------------------------------------------------------------------------------------------
    def process_audio(
        self,
        audio=None,
        videos=None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **audio_kwargs,
    ) -> BatchFeature:
        """`input_features (B, num_frames, num_mel_bins)` of audio clips, or of the audio tracks of video files.

        Args:
            audio: one clip or a list of clips, each a file path (any file FFmpeg reads: wav, flac, mp3, a video's
                audio track), a [`DecodedAudio`], or a waveform — a float array/tensor `(samples,)` or
                `(channels, samples)` in [-1, 1] at `sampling_rate`. A 2-D array `(batch, samples)` is a batch of mono
                clips. Processed as the original's audio-file loader: `padding_mode="waveform"` by default.
            videos: instead of `audio`, video file paths whose audio tracks are read, as the original's video loader
                (`padding_mode="fbank"` by default). A video without an audio stream gives all-zero features (the
                original's behaviour) and a warning naming the file; other decoding errors are raised.
            sampling_rate: the rate of waveforms given as arrays (files and [`DecodedAudio`] carry their own).
                Without it arrays are taken to be at the feature extractor's rate (16 kHz), with a warning.
            audio_kwargs: `padding_mode`, `crop_mode`, `generator` for the feature extractor (see
                [`BeatsFeatureExtractor`]).

        Raises:
            ValueError: the processor has no feature extractor, both or neither of `audio`/`videos`, or video inputs
                that are not file paths.
            AudioDecodingError: a file that cannot be decoded (missing, corrupt, no samples).
        """
        extractor = self.feature_extractor
        if extractor is None:
            raise ValueError(
                "This processor has no audio feature extractor: build it with "
                "feature_extractor=BeatsFeatureExtractor() (the 6B audio-video-text models' preprocessing)."
            )
        if (audio is None) == (videos is None):
            raise ValueError("Pass exactly one of `audio` or `videos` (whose audio tracks are read)")
        unknown = set(audio_kwargs) - {"padding_mode", "crop_mode", "generator"}
        if unknown:
            raise TypeError(
                f"Unexpected audio arguments {sorted(unknown)}; expected padding_mode, crop_mode or generator"
            )
        rate = int(extractor.sampling_rate)
        if videos is not None:
            audio_kwargs.setdefault("padding_mode", "fbank")
            features = []
            for video in _split_videos(videos):
                if not isinstance(video, str):
                    raise ValueError(
                        "Reading the audio of videos needs video file paths; got decoded frames "
                        f"({type(video).__name__}). Pass their audio with `audio=` instead."
                    )
                try:
                    decoded = decode_audio(video, sampling_rate=rate)
                except NoAudioStreamError:
                    logger.warning(
                        f"{video} has no audio stream: its audio features are all zeros (as in the original "
                        "InternVideo2), which the model still encodes as audio."
                    )
                    features.append(torch.zeros(extractor.num_frames, extractor.num_mel_bins))
                    continue
                features.append(self._audio_features([decoded.waveform], rate, audio_kwargs)[0])
            return BatchFeature({"input_features": torch.stack(features)}, tensor_type=return_tensors)
        clips, rates = [], []
        for clip in _split_audio(audio):
            if isinstance(clip, (str, os.PathLike)):
                clip = decode_audio(clip, sampling_rate=rate)
            if isinstance(clip, DecodedAudio):
                clips.append(clip.waveform)
                rates.append(clip.sampling_rate)
            else:
                clips.append(clip)
                rates.append(sampling_rate)
        features = [self._audio_features([clip], clip_rate, audio_kwargs)[0] for clip, clip_rate in zip(clips, rates)]
        return BatchFeature({"input_features": torch.stack(features)}, tensor_type=return_tensors)

    def _audio_features(self, clips: list, sampling_rate: int | None, audio_kwargs: dict) -> torch.Tensor:
        return self.feature_extractor(clips, sampling_rate=sampling_rate, return_tensors="pt", **audio_kwargs)[
            "input_features"
        ]

    # ------------------------------------------------------------------------------------------------------------
    # Both
    # ------------------------------------------------------------------------------------------------------------
    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        videos=None,
        images=None,
        *,
        max_length: int | None = None,
        clean_text: bool | None = None,
        add_sep: bool | None = None,
        padding: str | bool = "max_length",
        return_token_type_ids: bool = False,
        num_frames: int | None = None,
        return_tensors: str | None = "pt",
        audio=None,
        sampling_rate: int | None = None,
        audio_from_videos: bool = False,
        audio_kwargs: dict | None = None,
        **videos_kwargs,
    ) -> BatchFeature:
        """Tokenise `text` ([`~InternVideo2Processor.tokenize`]), preprocess `videos` or `images`
        ([`~InternVideo2Processor.process_videos`]) and/or featurise `audio`, or the audio tracks of `videos` with
        `audio_from_videos=True` ([`~InternVideo2Processor.process_audio`]; `sampling_rate` is the rate of audio
        given as arrays, `audio_kwargs` goes to the feature extractor).

        Texts and videos are independent (no pairing is implied): the batch sizes may differ. Audio read from the
        videos pairs with them (row `i` of `input_features` is the sound of video `i`).

        Returns:
            [`BatchFeature`] with `input_ids`, `attention_mask` (text given), `pixel_values` (videos/images
            given, `(B, T, C, H, W)` float32) and `input_features` (audio given or read, `(B, 998, 64)` float32).
        """
        if text is None and videos is None and images is None and audio is None:
            raise ValueError("Provide at least one of `text`, `videos`, `images` or `audio`")
        if audio_from_videos and (videos is None or audio is not None):
            raise ValueError("`audio_from_videos=True` reads the audio of `videos`: pass videos, and no `audio`")
        data = {}
        if text is not None:
            data.update(
                self.tokenize(
                    text,
                    max_length=max_length,
                    clean_text=clean_text,
                    add_sep=add_sep,
                    padding=padding,
                    return_token_type_ids=return_token_type_ids,
                    return_tensors=None,
                )
            )
        if videos is not None or images is not None:
            visual = self.process_videos(
                videos=videos, images=images, num_frames=num_frames, return_tensors=return_tensors, **videos_kwargs
            )
            data["pixel_values"] = visual["pixel_values"]
        if audio is not None or audio_from_videos:
            sources = {"videos": videos} if audio_from_videos else {"audio": audio}
            heard = self.process_audio(**sources, sampling_rate=sampling_rate, return_tensors=None,
                                       **(audio_kwargs or {}))  # fmt: skip
            data["input_features"] = heard["input_features"]
        return BatchFeature(data, tensor_type=return_tensors)

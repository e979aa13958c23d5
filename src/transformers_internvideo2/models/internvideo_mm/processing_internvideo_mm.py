# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Processor of InternVideo-MM: the original demo preprocessing (`InternVideo.load_video` + `InternVideo.tokenize`).

**Video** ([`InternVideoMMVideoProcessor`]):

1. frame sampling `"linspace"`: `int(linspace(0, L - 1, 8))` (`media/frame_sampling.py`);
2. every frame through PIL: resize the short side to 256 with **bilinear** filtering (the original's `Resize`
   default is named `'nearest'` but mapped to `PIL.Image.BILINEAR`), the long side `int(256 * long / short)`
   (truncated);
3. centre crop 224 at offsets `round((W - 224) / 2)`, `round((H - 224) / 2)` (Python `round`: half to even);
4. `/ 255`, normalise with the CLIP mean/std.

**Text** ([`InternVideoMMTokenizer`]): OpenAI CLIP's byte-level BPE (`bpe_simple_vocab_16e6.txt.gz`, the file the
`open-clip-torch` package ships, byte-identical to the original's): `ftfy.fix_text`, HTML unescape twice, whitespace
collapse, lower-case, CLIP's regex, BPE; `<start_of_text> ids <end_of_text>`, zero padding to the context length
(77). Longer texts keep the first `context_length` ids with the last one overwritten by `<end_of_text>`.
`attention_mask` marks the ids before the padding; `special_tokens_mask` (as the original returns it) marks only the
padding.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import regex
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ProcessorMixin

from ..internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..remote_code import RemoteCodeMixin


__all__ = [
    "InternVideoMMProcessor",
    "InternVideoMMTokenizer",
    "InternVideoMMVideoProcessor",
    "center_crop_offsets",
    "resize_short_side_pil",
]

BPE_FILE_NAME = "bpe_simple_vocab_16e6.txt.gz"
TOKENIZER_CONFIG_NAME = "internvideo_mm_tokenizer.json"
CONTEXT_LENGTH = 77


# ------------------------------------------------------------------------------------------------------------------
# Video
# ------------------------------------------------------------------------------------------------------------------
def resize_short_side_pil(frame: np.ndarray, short_side: int) -> np.ndarray:
    """`(H, W, 3)` uint8 -> short side `short_side`, long side `int(short_side * long / short)`, PIL bilinear."""
    height, width = frame.shape[:2]
    if width < height:
        size = (short_side, int(short_side * height / width))
    else:
        size = (int(short_side * width / height), short_side)
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def center_crop_offsets(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """`(top, left)` of the centre crop, rounded half to even as the original's Python `round`."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"Cannot crop {crop_height}x{crop_width} from a {height}x{width} frame.")
    return round((height - crop_height) / 2), round((width - crop_width) / 2)


class InternVideoMMVideoProcessor(InternVideo2VideoProcessor):
    r"""
    The InternVideo-MM demo video transform (see the module docstring): `linspace` frame sampling (8 frames), PIL
    bilinear short-side resize to 256 with a truncated long side, banker's-rounded centre crop 224, CLIP mean/std.
    Decoding, inputs and outputs as [`InternVideo2VideoProcessor`] (`pixel_values` `(B, T, 3, 224, 224)`).
    """

    remote_code_auto_map = {
        "AutoVideoProcessor": "internvideo_mm.processing_internvideo_mm.InternVideoMMVideoProcessor"
    }
    resample = PILImageResampling.BILINEAR
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"shortest_edge": 256}
    crop_size = {"height": 224, "width": 224}
    num_frames = 8
    frame_sampling = "linspace"

    def resize(self, image: torch.Tensor, size: SizeDict, resample=None, **kwargs) -> torch.Tensor:
        """PIL bilinear per frame (the original's); `image` `(..., 3, H, W)` uint8."""
        if resample is not None and PILImageResampling(resample) != PILImageResampling.BILINEAR:
            raise ValueError("InternVideoMMVideoProcessor reproduces the original's PIL bilinear resize only.")
        if image.dtype != torch.uint8:
            raise ValueError(f"Expected uint8 frames (0-255) before the resize, got {image.dtype}.")
        if not size.shortest_edge:
            raise ValueError("InternVideoMMVideoProcessor resizes the short side: size must be {'shortest_edge': N}.")
        frames = image.reshape(-1, *image.shape[-3:]).permute(0, 2, 3, 1).cpu().numpy()
        resized = np.stack([resize_short_side_pil(frame, size.shortest_edge) for frame in frames])
        resized = torch.from_numpy(resized).permute(0, 3, 1, 2).to(image.device)
        return resized.reshape(*image.shape[:-2], *resized.shape[-2:])

    def rescale_and_normalize(self, images, do_rescale, rescale_factor, do_normalize, image_mean, image_std):
        """`float32(x) / 255`, then `(x - mean) / std` per channel, in float32 and in that order (the original's
        `ClipToTensor` + `Normalize`; a fused scale-and-shift differs in the last bit)."""
        images = images.float()
        if do_rescale:
            images = images.div(round(1 / rescale_factor)) if rescale_factor == 1 / 255 else images * rescale_factor
        if do_normalize:
            mean = torch.as_tensor(image_mean, dtype=images.dtype, device=images.device)[:, None, None]
            std = torch.as_tensor(image_std, dtype=images.dtype, device=images.device)[:, None, None]
            images = images.sub(mean).div(std)
        return images

    def center_crop(self, image: torch.Tensor, size: SizeDict, **kwargs) -> torch.Tensor:
        top, left = center_crop_offsets(image.shape[-2], image.shape[-1], size.height, size.width)
        return image[..., top : top + size.height, left : left + size.width]


# ------------------------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------------------------
def _packaged_bpe_file() -> Path:
    try:
        from open_clip.tokenizer import default_bpe
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The InternVideo-MM tokenizer reads CLIP's BPE merges from the `open-clip-torch` package "
            "(pip install 'open-clip-torch>=3.3'), or from a folder saved by this processor."
        ) from error
    return Path(default_bpe())


class InternVideoMMTokenizer:
    """OpenAI CLIP's BPE tokenizer exactly as InternVideo's `tokenize` (see the module docstring).

    Args:
        bpe_file (`str`, *optional*): the gzipped merges; default the file of the `open-clip-torch` package.
        context_length (`int`, defaults to 77).
    """

    sot_token = "<start_of_text>"
    eot_token = "<end_of_text>"

    def __init__(self, bpe_file: str | os.PathLike | None = None, context_length: int = CONTEXT_LENGTH):
        import ftfy  # noqa: F401  (the text cleaning needs it; fail early with the import error)
        from open_clip.tokenizer import SimpleTokenizer

        self.bpe_file = Path(bpe_file) if bpe_file is not None else _packaged_bpe_file()
        if not self.bpe_file.is_file():
            raise FileNotFoundError(f"No BPE merges file at {self.bpe_file}.")
        if context_length < 2:
            raise ValueError(f"context_length must be at least 2 (start and end tokens), got {context_length}.")
        self.context_length = context_length
        # the merges, byte table, regex and BPE of CLIP as `open-clip-torch` implements them
        self._bpe = SimpleTokenizer(bpe_path=str(self.bpe_file), context_length=context_length)
        self.sot_token_id = self._bpe.sot_token_id
        self.eot_token_id = self._bpe.eot_token_id
        self.pad_token_id = 0

    @property
    def vocab_size(self) -> int:
        return self._bpe.vocab_size

    @staticmethod
    def clean(text: str) -> str:
        """ftfy, HTML unescape twice, whitespace collapse, lower-case (the original order)."""
        import ftfy

        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        return regex.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without the start/end tokens."""
        ids: list[int] = []
        for piece in regex.findall(self._bpe.pat, self.clean(text)):
            piece = "".join(self._bpe.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self._bpe.encoder[token] for token in self._bpe.bpe(piece).split(" "))
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids]
        if skip_special_tokens:
            if self.eot_token_id in ids:
                ids = ids[: ids.index(self.eot_token_id)]
            ids = [i for i in ids if i != self.sot_token_id]
        return self._bpe.decode(ids)

    def __call__(
        self,
        text: str | Sequence[str],
        context_length: int | None = None,
        truncate: bool = True,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """`input_ids`, `attention_mask` and `special_tokens_mask`, each `(N, context_length)` (int64/bool)."""
        if not isinstance(text, (str, list, tuple)):
            raise TypeError(f"text: expected str or list of str, got {type(text).__name__}.")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("text must be a string or a non-empty list of strings.")
        length = context_length or self.context_length
        input_ids = torch.zeros(len(texts), length, dtype=torch.long)
        attention_mask = torch.zeros(len(texts), length, dtype=torch.long)
        for row, item in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(item), self.eot_token_id]
            if len(ids) > length:
                if not truncate:
                    raise ValueError(f"Text {row} has {len(ids)} tokens, more than the context length {length}.")
                ids = ids[:length]
                ids[-1] = self.eot_token_id
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        data = {"input_ids": input_ids, "attention_mask": attention_mask, "special_tokens_mask": attention_mask == 0}
        return BatchFeature(data=data, tensor_type=return_tensors)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.bpe_file.resolve() != (folder / BPE_FILE_NAME).resolve():
            shutil.copyfile(self.bpe_file, folder / BPE_FILE_NAME)
        (folder / TOKENIZER_CONFIG_NAME).write_text(json.dumps({"context_length": self.context_length}, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "InternVideoMMTokenizer":
        folder = Path(folder)
        config = json.loads((folder / TOKENIZER_CONFIG_NAME).read_text()) if (folder / TOKENIZER_CONFIG_NAME).is_file() else {}
        bpe = folder / BPE_FILE_NAME
        return cls(bpe if bpe.is_file() else None, **config)


def _check_bpe_file(path: Path) -> None:
    with gzip.open(path) as handle:
        first = handle.readline()
    if not first.startswith(b"\"bpe_simple_vocab_16e6"):
        raise ValueError(f"{path} is not CLIP's bpe_simple_vocab_16e6 merges file.")


# ------------------------------------------------------------------------------------------------------------------
# Processor
# ------------------------------------------------------------------------------------------------------------------
class InternVideoMMProcessor(RemoteCodeMixin, ProcessorMixin):
    r"""
    InternVideo-MM processor: [`InternVideoMMVideoProcessor`] for videos, [`InternVideoMMTokenizer`] (CLIP BPE,
    context 77) for texts. `processor(videos=..., text=...)` returns `pixel_values` `(B, T, 3, 224, 224)`,
    `input_ids`, `attention_mask`, `special_tokens_mask`.

    Args:
        video_processor ([`InternVideoMMVideoProcessor`], *optional*): default the original demo transform.
        context_length (`int`, defaults to 77): text length (ids are zero-padded or truncated to it).
        bpe_file (`str`, *optional*): CLIP's merges; default the one saved with the processor, else open-clip-torch's.
    """

    attributes = ["video_processor"]
    remote_code_auto_map = {
        "AutoProcessor": "internvideo_mm.processing_internvideo_mm.InternVideoMMProcessor",
        "AutoVideoProcessor": "internvideo_mm.processing_internvideo_mm.InternVideoMMVideoProcessor",
    }

    def __init__(self, video_processor=None, context_length: int = CONTEXT_LENGTH, bpe_file=None, **kwargs):
        video_processor = video_processor or InternVideoMMVideoProcessor()
        super().__init__(video_processor, **kwargs)
        self.context_length = context_length
        self.tokenizer = InternVideoMMTokenizer(bpe_file, context_length)

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and isinstance(argument, InternVideoMMVideoProcessor):
            return
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values", "input_ids", "attention_mask"]

    def __call__(self, videos=None, text=None, images=None, num_frames: int | None = None, **kwargs) -> BatchFeature:
        r"""
        videos: file paths, `(T, H, W, 3)` uint8 arrays, lists of frames, or batches of those.
        images: single images (each becomes a 1-frame clip, as the original's image mode).
        text (`str` or `list[str]`): texts (one list for the whole batch).
        num_frames (`int`, *optional*): frames per video (default 8).
        """
        if videos is None and text is None and images is None:
            raise ValueError("Give videos, images and/or text.")
        data: dict = {}
        if videos is not None:
            extra = {"num_frames": num_frames} if num_frames is not None else {}
            data.update(self.video_processor(videos, return_tensors="pt", **extra, **kwargs))
        if images is not None:
            frames = [images] if not isinstance(images, (list, tuple)) else list(images)
            pixel = [self.video_processor([np.asarray(image)[None]], do_sample_frames=False, return_tensors="pt")
                     ["pixel_values"] for image in frames]  # fmt: skip
            data["pixel_values"] = torch.cat(pixel)
        if text is not None:
            data.update(self.tokenizer(text))
        return BatchFeature(data=data)

    # the package's task API (retrieval, zero-shot pipeline), shared with the InternVideo2 processor
    def process_videos(self, videos=None, images=None, num_frames: int | None = None, **kwargs) -> BatchFeature:
        return self(videos=videos, images=images, num_frames=num_frames, **kwargs)

    def tokenize(self, texts, max_length: int | None = None, clean_text: bool | None = None) -> BatchFeature:
        """CLIP BPE ids; `max_length` overrides the context length; `clean_text` must stay `None`/`True` (the
        tokenizer always applies the original cleaning)."""
        if clean_text is False:
            raise ValueError("The InternVideo-MM tokenizer always cleans the text as the original (ftfy, HTML, spaces).")
        return self.tokenizer(texts, context_length=max_length or self.context_length)

    def batch_decode(self, ids, **kwargs) -> list[str]:
        return [self.tokenizer.decode(row, **kwargs) for row in ids]

    def decode(self, ids, **kwargs) -> str:
        return self.tokenizer.decode(ids, **kwargs)

    def save_pretrained(self, save_directory, **kwargs):
        saved = super().save_pretrained(save_directory, **kwargs)
        self.tokenizer.save_pretrained(save_directory)
        return saved

    def to_dict(self) -> dict:
        output = super().to_dict()
        output["context_length"] = self.context_length
        output.pop("tokenizer", None)
        return output

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a folder written by `save_pretrained` (local folders only: this package never downloads)."""
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            raise OSError(f"{folder} is not a local folder saved by InternVideoMMProcessor.save_pretrained.")
        config_file = folder / "processor_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        context_length = kwargs.pop("context_length", config.get("context_length", CONTEXT_LENGTH))
        video_processor = InternVideoMMVideoProcessor.from_pretrained(folder)
        bpe = folder / BPE_FILE_NAME
        if bpe.is_file():
            _check_bpe_file(bpe)
        return cls(video_processor, context_length=context_length, bpe_file=bpe if bpe.is_file() else None)

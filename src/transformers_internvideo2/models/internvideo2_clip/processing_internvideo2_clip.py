"""Processor of the InternVideo2-CLIP models: the stage-2 evaluation video pipeline at 8 frames and the text formats
of the two text towers, exactly as the original CLIP evaluation (`tasks_clip/`) writes them.

* LLaMA (CLIP-1B/6B, `text_format="llama"`): the InternVL-C SentencePiece tokenizer (`LlamaTokenizer`, legacy off).
  Each text becomes `"summarize:" + text` (no space), then `<s> pieces </s>`, truncated to 80 ids (the EOS is kept),
  right-padded with id 0. The model pools the state at `count(ids > 0) - 1`, the EOS.
* CLIP BPE (CLIP-S/B/L14, `text_format="clip_bpe"`): open_clip's `ViT-B-16` tokenizer: ftfy + twice HTML-unescaped +
  whitespace-collapsed + lower-cased text, `<start_of_text> tokens <end_of_text>`, 77 ids (a longer text is cut and
  its last id replaced by `<end_of_text>`), zero-padded. The model pools at `argmax(ids)`, the end-of-text id.

Captions are first cleaned with the original `pre_text` (`clean_text=True`, as every dataset of the original does;
zero-shot prompts too).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from ...media.frame_sampling import canonical_frame_sampling
from ..internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor, clean_caption
from ..internvideo_mm.processing_internvideo_mm import InternVideoMMTokenizer


TEXT_FORMATS = ("llama", "clip_bpe")
LLAMA_TEXT_PREFIX = "summarize:"
DEFAULT_MAX_LENGTH = {"llama": 80, "clip_bpe": 77}
CLIP_NUM_FRAMES = 8  # every CLIP evaluation of the original samples 8 frames


def clip_bpe_clean(text: str) -> str:
    """open_clip's text cleaning before its BPE (the `"lower"` mode of the `ViT-B-16` tokenizer): ftfy's `fix_text`,
    HTML entities unescaped twice, runs of whitespace collapsed, stripped, lower-cased. The same cleaning as the
    InternVideo (v1) multimodal tokenizer, whose implementation is used."""
    return InternVideoMMTokenizer.clean(text)


class InternVideo2ClipProcessor(InternVideo2Processor):
    r"""
    Processor for [`InternVideo2ClipModel`]: an [`InternVideo2VideoProcessor`] (the original evaluation pipeline:
    `"middle"` sampling of 8 frames, 224x224 bicubic resize without crop, ImageNet normalisation) and the text
    tower's tokenizer, with the original text format (module docstring).

    Args:
        video_processor ([`InternVideo2VideoProcessor`], *optional*): defaults to the CLIP evaluation pipeline.
        tokenizer: the LLaMA SentencePiece tokenizer (1B/6B) or the CLIP BPE tokenizer (S/B/L14; offline:
            `transformers_internvideo2.assets.load_clip_bpe_tokenizer()`).
        text_format (`str`): `"llama"` or `"clip_bpe"`.
        max_length (`int`, *optional*): ids per text; 80 (LLaMA) / 77 (CLIP BPE) by default, as the original.
        clean_text (`bool`, defaults to `True`): apply the original `pre_text` caption cleaning first.
        text_prefix (`str`, *optional*): LLaMA only; defaults to `"summarize:"`, the InternVL-C prompt.
        add_eos (`bool`, defaults to `True`): end every text with the EOS id (the original; the model pools the last
            non-padding id). `False` pools the last text token instead, for language models that never learned to
            summarise a text into their EOS state (a deviation, used by the shapes-world CLIP recipe with SmolLM2).
    """

    remote_code_auto_map = {
        "AutoProcessor": "internvideo2_clip.processing_internvideo2_clip.InternVideo2ClipProcessor"
    }

    def __init__(
        self,
        video_processor=None,
        tokenizer=None,
        text_format: str = "llama",
        max_length: int | None = None,
        clean_text: bool = True,
        text_prefix: str | None = None,
        add_eos: bool = True,
        frame_sampling: str | None = None,
        chat_template=None,
        **kwargs,
    ):
        if text_format not in TEXT_FORMATS:
            raise ValueError(f"text_format must be one of {TEXT_FORMATS}, got {text_format!r}.")
        if tokenizer is None:
            raise ValueError(
                "InternVideo2ClipProcessor needs the text tower's tokenizer (`tokenizer=`): the LLaMA SentencePiece "
                "tokenizer for 1B/6B, the CLIP BPE (transformers_internvideo2.assets.load_clip_bpe_tokenizer()) for "
                "S/B/L14."
            )
        if video_processor is None:
            video_processor = self.stage2_video_processor(num_frames=CLIP_NUM_FRAMES)
        if frame_sampling is not None:
            video_processor.frame_sampling = canonical_frame_sampling(frame_sampling)
        self.feature_extractor = None
        self.text_format = text_format
        self.max_length = self._check_clip_max_length(DEFAULT_MAX_LENGTH[text_format] if max_length is None
                                                      else max_length)  # fmt: skip
        self.clean_text = bool(clean_text)
        self.text_prefix = (LLAMA_TEXT_PREFIX if text_prefix is None else text_prefix) if text_format == "llama" else ""
        self.add_sep = False
        self.add_eos = bool(add_eos)
        ProcessorMixin.__init__(self, video_processor, tokenizer, chat_template=chat_template, **kwargs)
        self._special_ids()  # fail early on a tokenizer without the needed special tokens

    @classmethod
    def for_config(cls, config, tokenizer, **kwargs) -> InternVideo2ClipProcessor:
        """The processor of the original evaluation for an [`InternVideo2ClipConfig`]: its tower's text format and
        8 frames at the config's image size, around `tokenizer` (the LLaMA SentencePiece tokenizer, or the CLIP BPE).
        """
        text_format = "llama" if config.text_tower == "llama" else "clip_bpe"
        video = cls.stage2_video_processor(num_frames=config.vision_config.num_frames,
                                           image_size=config.vision_config.image_size)  # fmt: skip
        return cls(video_processor=video, tokenizer=tokenizer, text_format=text_format, **kwargs)

    @staticmethod
    def _check_clip_max_length(max_length) -> int:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"`max_length` must be an int >= 2 (room for the start and end tokens), got {max_length!r}")
        return max_length

    def _special_ids(self) -> tuple[int, int]:
        tokenizer = self.tokenizer
        start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
        if start is None or end is None:
            raise ValueError(f"The {self.text_format} text format needs a tokenizer with BOS and EOS tokens.")
        if self.text_format == "clip_bpe" and end != len(tokenizer) - 1:
            raise ValueError(
                f"The CLIP BPE end-of-text id must be the largest id (the model pools at argmax); got {end} of "
                f"{len(tokenizer)}."
            )
        return start, end

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values"]

    def prepare_text(self, text: str, clean_text: bool | None = None) -> str:
        """The string the tokenizer sees: `pre_text` (optional), then the CLIP BPE cleaning or the LLaMA prefix."""
        if clean_text if clean_text is not None else self.clean_text:
            text = clean_caption(text)
        if self.text_format == "clip_bpe":
            return clip_bpe_clean(text)
        return self.text_prefix + text

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
        """Tokenise texts in the original CLIP format (module docstring): `input_ids` right-padded with 0 and the
        matching `attention_mask`. `padding="longest"` pads to the longest text instead of `max_length`."""
        if add_sep or return_token_type_ids:
            raise ValueError("The CLIP text formats have no [SEP] and no token types.")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("`text` is an empty list")
        for item in texts:
            if not isinstance(item, str):
                raise TypeError(f"Each text must be a string, got {type(item).__name__}: {item!r}")
        max_length = self._check_clip_max_length(self.max_length if max_length is None else max_length)
        if padding is True:
            padding = "longest"
        if padding not in ("max_length", "longest"):
            raise ValueError(f"`padding` must be 'max_length' or 'longest' (or True), got {padding!r}")
        start, end = self._special_ids()
        prepared = [self.prepare_text(item, clean_text) for item in texts]
        pieces = self.tokenizer(prepared, add_special_tokens=False, verbose=False)["input_ids"]
        if self.add_eos:
            rows = [[start, *ids[: max_length - 2], end] for ids in pieces]
        else:
            rows = [[start, *ids[: max_length - 1]] for ids in pieces]
        width = max_length if padding == "max_length" else max(len(row) for row in rows)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)  # the original pads with id 0
        attention_mask = torch.zeros(len(rows), width, dtype=torch.long)
        for index, row in enumerate(rows):
            input_ids[index, : len(row)] = torch.tensor(row)
            attention_mask[index, : len(row)] = 1
        if self.text_format == "llama":
            # the original's mask is `ids > 0`: an <unk> (id 0) inside a text shortens the pooled count, as there
            attention_mask = (input_ids > 0).long()
        data = {"input_ids": input_ids, "attention_mask": attention_mask}
        if return_tensors != "pt":
            data = {key: value.tolist() for key, value in data.items()}
        return BatchFeature(data, tensor_type=return_tensors)


__all__ = ["InternVideo2ClipProcessor", "clip_bpe_clean", "LLAMA_TEXT_PREFIX", "TEXT_FORMATS"]

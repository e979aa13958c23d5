# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`pipeline("zero-shot-video-classification")` for the InternVideo2 dual encoders: the stage-2 models and the
InternVideo2-CLIP models (the ones OpenGVLab recommends for zero-shot classification).

Scoring follows the original zero-shot action-recognition evaluation:

1. every candidate label is written into every hypothesis template (default: the 16 templates of
   :data:`~transformers_internvideo2.tasks.prompts.KINETICS_ACTION_TEMPLATES`) and tokenised by the processor (caption
   cleaning on by default, as the original cleans every prompt);
2. each prompt is encoded and L2-normalised **separately** (`get_text_features`), the video too
   (`get_video_features`);
3. the similarity of a label is the **mean over its templates of the per-template cosines** -- not the cosine with
   an averaged text embedding;
4. probabilities are ``softmax(similarity / temperature)`` over the candidate labels. ``temperature=0.01`` (a scale
   of 100) by default, the fixed scale of the original demo's ``softmax(100 * cos)``; ranking does not depend on it.

Registered on ``import transformers_internvideo2`` by :func:`register_video_text_tasks`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoConfig, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ..models.internvideo2_clip.configuration_internvideo2_clip import InternVideo2ClipConfig
from ..models.internvideo2_clip.modeling_internvideo2_clip import InternVideo2ClipModel
from ..models.internvideo2_video_text.modeling_internvideo2_video_text import (
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2PreTrainedModel,
)
from ..models.internvideo_mm.modeling_internvideo_mm import InternVideoMMForCaptioning, InternVideoMMModel
from .prompts import DEFAULT_HYPOTHESIS_TEMPLATES, expand_templates


__all__ = [
    "DEFAULT_TEMPERATURE",
    "ZERO_SHOT_VIDEO_CLASSIFICATION_TASK",
    "InternVideo2DualEncoderLoader",
    "ZeroShotVideoClassificationPipeline",
    "dual_encoder_class_for",
    "is_clip_config",
    "needs_position_interpolation",
    "register_video_text_tasks",
]

ZERO_SHOT_VIDEO_CLASSIFICATION_TASK = "zero-shot-video-classification"
DEFAULT_TEMPERATURE = 0.01
_TEXT_CACHE_SIZE = 4


def needs_position_interpolation(model, pixel_values: torch.Tensor) -> bool:
    """Whether `pixel_values (B, T, C, H, W)` differ from the frame count / resolution the position embeddings of
    `model` were learned for, so that `interpolate_pos_encoding=True` must be passed. Models without a readable
    vision config get `True` (resampling to the same grid is a no-op)."""
    config = getattr(model, "config", None)
    vision = getattr(config, "vision_config", None) or config
    try:
        num_frames, image_size = int(vision.num_frames), int(vision.image_size)
    except (AttributeError, TypeError):
        return True
    if pixel_values.ndim != 5:
        raise ValueError(f"Expected pixel_values of shape (B, T, C, H, W), got {tuple(pixel_values.shape)}")
    _, frames, _, height, width = pixel_values.shape
    # A single frame uses the image position table, which exists for T=1 inputs of video models.
    frames_ok = frames == num_frames or frames == 1
    return not (frames_ok and height == image_size and width == image_size)


def is_clip_config(config) -> bool:
    """Whether a config is an InternVideo2-CLIP one (LLaMA or MobileCLIP text tower, no matching head)."""
    return getattr(config, "model_type", None) == InternVideo2ClipConfig.model_type


def dual_encoder_class_for(config):
    """The model class a saved dual-encoder folder was written from: `InternVideo2ClipModel` for the CLIP models;
    for stage 2 `InternVideo2ForRetrieval` when its config names it, else `InternVideo2Model`. Loading with that class
    keeps every stored weight (loading a retrieval checkpoint with `AutoModel` would leave the matching and MLM heads
    out)."""
    if is_clip_config(config):
        return InternVideo2ClipModel

    architectures = list(getattr(config, "architectures", None) or [])
    if getattr(config, "model_type", None) == "internvideo_mm":  # InternVideo (v1) multimodal encoder
        return InternVideoMMForCaptioning if "InternVideoMMForCaptioning" in architectures else InternVideoMMModel
    return InternVideo2ForRetrieval if "InternVideo2ForRetrieval" in architectures else InternVideo2Model


class InternVideo2DualEncoderLoader:
    """`from_pretrained` front for the pipeline registry: loads a folder with [`dual_encoder_class_for`]."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        config = kwargs.get("config")
        if config is None or isinstance(config, str):
            hub_kwargs = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
            config = AutoConfig.from_pretrained(config or pretrained_model_name_or_path, **hub_kwargs)
        return dual_encoder_class_for(config).from_pretrained(pretrained_model_name_or_path, *args, **kwargs)


def _is_frame(x) -> bool:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.ndim == 3
    return hasattr(x, "convert") and hasattr(x, "size")


def _one_video_from_frames(frames: Sequence) -> np.ndarray | torch.Tensor:
    if isinstance(frames[0], torch.Tensor):
        return torch.stack(list(frames))
    return np.stack([np.asarray(frame) for frame in frames])


class ZeroShotVideoClassificationPipeline(Pipeline):
    """Zero-shot video classification with an InternVideo2 dual encoder (stage-2 `InternVideo2Model` or
    `InternVideo2ClipModel`) and its processor ([`InternVideo2Processor`] / [`InternVideo2ClipProcessor`]).

    Example:

    ```python
    >>> import transformers_internvideo2  # registers the task
    >>> from transformers import pipeline
    >>> classifier = pipeline("zero-shot-video-classification", model="path/to/converted-stage2-1b")
    >>> classifier("example1.mp4", candidate_labels=["playing with a dog", "cooking", "skiing"])
    [{'label': 'playing with a dog', 'score': 0.97, 'similarity': 0.41}, ...]
    ```

    Inputs: a video file path, an array `(T, H, W, C)` / tensor `(T, C, H, W)` of frames, a list of frames (PIL
    images or arrays: one video), or a list of paths/arrays (one result list per video).

    Call arguments:
        candidate_labels (`list[str]`, required): the classes. A single string is split on commas.
        hypothesis_template (`str` or `list[str]`, *optional*): template(s) with one `{}`; defaults to the 16
            templates of the original evaluation.
        temperature (`float`, *optional*, defaults to 0.01): softmax temperature of the returned probabilities.
        top_k (`int`, *optional*): return only the best `top_k` labels.
        num_frames (`int`, *optional*): frames sampled per video (default: the processor's).
        max_length (`int`), clean_text (`bool`): override the processor's text settings.

    Returns, per video, a list of `{"label", "score", "similarity"}` sorted by decreasing score, where `score` is the
    probability and `similarity` the mean cosine over templates.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None or not hasattr(self.processor, "tokenize"):
            raise ValueError(
                "zero-shot-video-classification needs an InternVideo2Processor: pass `processor=` or a model folder "
                "holding processor_config.json."
            )
        for method in ("get_video_features", "get_text_features"):
            if not hasattr(self.model, method):
                raise TypeError(
                    f"zero-shot-video-classification needs a video-text dual encoder with `{method}` (e.g. "
                    f"InternVideo2Model); got {type(self.model).__name__}."
                )
        self._text_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __call__(self, videos, **kwargs):
        # A list of still frames is one video, not a batch of inputs.
        if isinstance(videos, (list, tuple)) and videos and all(_is_frame(x) for x in videos):
            videos = _one_video_from_frames(videos)
        if kwargs.get("batch_size", 1) not in (None, 1):
            raise ValueError(
                "batch_size > 1 is not supported: videos are encoded one at a time and the prompt embeddings are "
                "cached across calls. Use transformers_internvideo2.tasks.retrieval.embed_videos for batched encoding."
            )
        return super().__call__(videos, **kwargs)

    def _sanitize_parameters(
        self,
        candidate_labels=None,
        hypothesis_template=None,
        hypothesis_templates=None,
        temperature=None,
        top_k=None,
        num_frames=None,
        max_length=None,
        clean_text=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"Unexpected argument(s) for zero-shot-video-classification: {sorted(kwargs)}")
        if hypothesis_template is not None and hypothesis_templates is not None:
            raise ValueError("Pass either `hypothesis_template` or `hypothesis_templates`, not both")
        preprocess = {}
        if candidate_labels is not None:
            if isinstance(candidate_labels, str):
                candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
            preprocess["candidate_labels"] = list(candidate_labels)
        templates = hypothesis_template if hypothesis_template is not None else hypothesis_templates
        if templates is not None:
            preprocess["hypothesis_templates"] = [templates] if isinstance(templates, str) else list(templates)
        for name, value in (("num_frames", num_frames), ("max_length", max_length), ("clean_text", clean_text)):
            if value is not None:
                preprocess[name] = value
        postprocess = {}
        if temperature is not None:
            if not temperature > 0:
                raise ValueError(f"`temperature` must be positive, got {temperature}")
            postprocess["temperature"] = float(temperature)
        if top_k is not None:
            if int(top_k) < 1:
                raise ValueError(f"`top_k` must be >= 1, got {top_k}")
            postprocess["top_k"] = int(top_k)
        return preprocess, {}, postprocess

    def preprocess(
        self,
        video,
        candidate_labels=None,
        hypothesis_templates=None,
        num_frames=None,
        max_length=None,
        clean_text=None,
    ):
        if not candidate_labels:
            raise ValueError("zero-shot-video-classification needs `candidate_labels` (a non-empty list of strings)")
        templates = list(DEFAULT_HYPOTHESIS_TEMPLATES if hypothesis_templates is None else hypothesis_templates)
        prompts = expand_templates(candidate_labels, templates)
        text = self.processor.tokenize(prompts, max_length=max_length, clean_text=clean_text)
        pixel_values = self.processor.process_videos(videos=video, num_frames=num_frames)["pixel_values"]
        if pixel_values.shape[0] != 1:
            raise ValueError(f"Expected one video per pipeline input, got a batch of {pixel_values.shape[0]}")
        return {
            "pixel_values": pixel_values.to(self.dtype) if self.dtype is not None else pixel_values,
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
            "candidate_labels": list(candidate_labels),
            "num_templates": len(templates),
        }

    def _text_embeddings(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        key = (tuple(input_ids.shape), input_ids.cpu().numpy().tobytes(), attention_mask.cpu().numpy().tobytes())
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        embeds = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        self._text_cache[key] = embeds
        if len(self._text_cache) > _TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return embeds

    def _forward(self, model_inputs):
        labels = model_inputs.pop("candidate_labels")
        num_templates = model_inputs.pop("num_templates")
        pixel_values = model_inputs["pixel_values"]
        video_embeds = self.model.get_video_features(
            pixel_values=pixel_values,
            interpolate_pos_encoding=needs_position_interpolation(self.model, pixel_values),
            normalize=True,
        ).pooler_output  # (1, D), unit norm
        text_embeds = self._text_embeddings(model_inputs["input_ids"], model_inputs["attention_mask"])  # (L*P, D)
        cosines = (video_embeds.float() @ text_embeds.float().T).reshape(len(labels), num_templates)
        return {"candidate_labels": labels, "similarities": cosines.mean(dim=-1)}

    def postprocess(self, model_outputs, temperature: float = DEFAULT_TEMPERATURE, top_k: int | None = None):
        labels = model_outputs["candidate_labels"]
        similarities = model_outputs["similarities"].float().cpu()
        probabilities = torch.softmax(similarities / temperature, dim=-1)
        order = torch.argsort(probabilities, descending=True, stable=True).tolist()
        if top_k is not None:
            order = order[:top_k]
        return [
            {"label": labels[i], "score": float(probabilities[i]), "similarity": float(similarities[i])} for i in order
        ]


def register_video_text_tasks() -> None:
    """Register the zero-shot video classification task with the pipeline registry, and with the stage-2 models'
    saved folders (`custom_pipelines` in their config, the pipeline's code next to the modeling code), so that
    `pipeline(task, model=<folder>, trust_remote_code=True)` works where the package is not installed (idempotent;
    the package import does it)."""
    InternVideo2PreTrainedModel.remote_code_custom_pipelines = {
        ZERO_SHOT_VIDEO_CLASSIFICATION_TASK: {
            "impl": f"{ZeroShotVideoClassificationPipeline.__module__}.{ZeroShotVideoClassificationPipeline.__name__}",
            # a retrieval folder loads whole; a dual-encoder folder is refused by the first (no matching head)
            "pt": ["AutoModelForPreTraining", "AutoModel"],
            "type": "multimodal",
        }
    }
    existing = PIPELINE_REGISTRY.supported_tasks.get(ZERO_SHOT_VIDEO_CLASSIFICATION_TASK)
    if existing is None or existing.get("impl") is not ZeroShotVideoClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            ZERO_SHOT_VIDEO_CLASSIFICATION_TASK,
            pipeline_class=ZeroShotVideoClassificationPipeline,
            pt_model=InternVideo2DualEncoderLoader,
            type="multimodal",
        )

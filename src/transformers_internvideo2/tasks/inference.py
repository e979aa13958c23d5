# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Batch inference over video files with the single-modality models: classification and vision features.

This is what ``internvideo2 classify`` and ``internvideo2 embed`` (for vision-only folders) run, usable from Python:

* :func:`collect_video_paths` -- expand files and folders into a list of video files (missing paths are an error).
* :func:`load_video_classifier` / :func:`load_vision_backbone` -- a converted folder (or a Hub id available offline)
  with its video processor.
* :func:`classify_videos` -- the same computation as ``pipeline("video-classification")`` (the processor samples
  ``config.num_frames`` frames unless told otherwise, softmax / sigmoid as the config's ``problem_type`` asks, top-k),
  batched, with a progress bar and timings.
* :func:`embed_videos_vision` -- the backbone's attention-pooled ``pooler_output`` per video.
* :class:`ClassificationJob`, :class:`VisionEmbeddingJob`, :class:`VideoTextEmbeddingJob` -- the same computations as
  ``prepare`` (one video) / ``compute`` (one batch) steps for the batch engine (:mod:`.batch`): results written as
  they go, bad videos skipped, interrupted runs resumed.

Any frame count works: the position embeddings are resampled at forward time (``interpolate_pos_encoding=True``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification, AutoVideoProcessor
from transformers.utils import logging as hf_logging

from ..media.video_decoding import VIDEO_EXTENSIONS, backends_for
from ..models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..models.strict_loading import from_pretrained_strictly
from .modalities import check_modality, embeddings_field, encode_media, prepare_media, require_modality


__all__ = [
    "ClassificationJob",
    "ClassificationRun",
    "VideoTextEmbeddingJob",
    "VisionEmbeddingJob",
    "VideoPrediction",
    "VisionEmbeddings",
    "classify_videos",
    "collect_video_paths",
    "embed_videos_vision",
    "load_batch_job",
    "load_model_config",
    "load_video_classifier",
    "load_video_processor",
    "load_vision_backbone",
    "quiet_transformers_logging",
    "resolve_device",
    "save_vision_embeddings",
    "set_video_backend",
]



# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------
def collect_video_paths(inputs: Sequence[str | os.PathLike], extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[str]:
    """Files are kept in the given order; a folder contributes its video files (non-recursive, sorted by name).

    Raises:
        FileNotFoundError: a path does not exist, or a folder holds no file with one of `extensions`.
        ValueError: nothing was given.
    """
    if not inputs:
        raise ValueError("No video given: pass one or more video files or folders.")
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                raise FileNotFoundError(
                    f"No video files in folder {path} (it holds no video file ending in {', '.join(extensions)})."
                )
            paths.extend(str(p) for p in found)
        elif path.is_file():
            paths.append(str(path))
        else:
            raise FileNotFoundError(f"Video not found: {path} (expected a video file or a folder of videos).")
    return paths


def resolve_device(device: str | None) -> torch.device:
    """`None` -> the first CUDA device when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"Invalid device {device!r} (expected e.g. 'cpu', 'cuda', 'cuda:1').") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} was requested but CUDA is not available on this machine.")
    return resolved


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------
def _looks_like_local_path(model_id: str) -> bool:
    # Hub ids are "name" or "namespace/name"; anything else is meant as a folder on this machine.
    return os.path.isabs(model_id) or model_id.startswith((".", "~")) or model_id.count("/") > 1 or "\\" in model_id


def load_model_config(model_id: str | os.PathLike):
    model_id = os.fspath(model_id)
    if os.path.isfile(model_id):
        raise NotADirectoryError(f"Expected a model folder, but {model_id} is a file.")
    if not os.path.isdir(model_id) and _looks_like_local_path(model_id):
        raise FileNotFoundError(
            f"Model folder not found: {model_id} (expected a folder written by `save_pretrained` or by "
            "conversion/convert_internvideo2_to_hf.py)."
        )
    try:
        return AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError) as error:
        raise OSError(
            f"Could not load a model configuration from {str(model_id)!r}: expected a folder written by "
            "`save_pretrained` or by conversion/convert_internvideo2_to_hf.py, or a Hub id that is already in the "
            f"local cache (the package never downloads by itself when HF_HUB_OFFLINE=1). Cause: {error}"
        ) from error


def load_video_processor(model_id: str | os.PathLike, config=None):
    """The folder's saved video processor; a folder without one gets the evaluation processor for the model's
    frame count and image size (what the converter would have written)."""
    try:
        return AutoVideoProcessor.from_pretrained(model_id)
    except (OSError, ValueError):
        config = config if config is not None else load_model_config(model_id)
        vision = getattr(config, "vision_config", None) or config
        return InternVideo2VideoProcessor(
            num_frames=vision.num_frames,
            size={"shortest_edge": vision.image_size},
            crop_size={"height": vision.image_size, "width": vision.image_size},
        )


def load_video_classifier(model_id: str | os.PathLike, device=None, dtype: torch.dtype | None = None):
    """`(model, video_processor)` of a saved `InternVideo2ForVideoClassification` (or any video classifier).

    A folder whose weights have no classification head (a backbone or a pre-training student) is refused rather than
    loaded with a randomly initialised head.
    """
    config = load_model_config(model_id)
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(name.endswith("ForVideoClassification") for name in architectures):
        raise ValueError(
            f"{model_id} is not a video classifier (its config lists architectures {architectures or 'none'}); "
            "`classify` needs a folder saved from InternVideo2ForVideoClassification, e.g. a converted fine-tuned "
            "checkpoint. Use `internvideo2 embed` for backbones."
        )

    kwargs = {"dtype": dtype} if dtype is not None else {}
    # strict whatever the class (a VideoMAE v1 classifier is Transformers' own)
    model = from_pretrained_strictly(AutoModelForVideoClassification, model_id, config=config, **kwargs).eval()
    model.to(resolve_device(device) if not isinstance(device, torch.device) else device)
    return model, load_video_processor(model_id, config)


def load_vision_backbone(model_id: str | os.PathLike, device=None, dtype: torch.dtype | None = None):
    """`(InternVideo2VisionModel, video_processor)` of any saved single-modality folder (classifier, backbone,
    pre-training student): `AutoModel` keeps the encoder and attention pooler weights and drops the heads."""
    config = load_model_config(model_id)
    if getattr(config, "model_type", None) != "internvideo2_vision":
        raise ValueError(
            f"{model_id} holds a {getattr(config, 'model_type', '?')!r} model, not an InternVideo2 vision encoder."
        )
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = AutoModel.from_pretrained(model_id, **kwargs).eval()
    model.to(resolve_device(device) if not isinstance(device, torch.device) else device)
    return model, load_video_processor(model_id, config)


def _device_dtype(model) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def _batches(items: list, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


# ----------------------------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class VideoPrediction:
    """Top-k labels of one video, best first."""

    video: str
    labels: list[str]
    scores: list[float]


@dataclass
class ClassificationRun:
    """Predictions plus where the time went (seconds, summed over batches)."""

    predictions: list[VideoPrediction]
    num_frames: int
    decode_seconds: float = 0.0
    forward_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return self.decode_seconds + self.forward_seconds


def _score_function(config, function_to_apply: str | None) -> str:
    # The same defaults as the video-classification pipeline's postprocess.
    if function_to_apply is not None:
        if function_to_apply not in ("softmax", "sigmoid", "none"):
            raise ValueError(f"function_to_apply must be 'softmax', 'sigmoid' or 'none', got {function_to_apply!r}")
        return function_to_apply
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification":
        return "sigmoid"
    return "softmax"


def _top_labels(config, names: Sequence[str], logits: torch.Tensor, score_function: str, top_k: int):
    if score_function == "softmax":
        scores = logits.softmax(-1)
    elif score_function == "sigmoid":
        scores = logits.sigmoid()
    else:
        scores = logits
    best_scores, best_ids = scores.topk(top_k, dim=-1)
    return [
        VideoPrediction(video=name, labels=[config.id2label[i] for i in row_ids], scores=row_scores)
        for name, row_scores, row_ids in zip(names, best_scores.tolist(), best_ids.tolist())
    ]


def classify_videos(
    model,
    video_processor,
    videos: Sequence[str | os.PathLike],
    num_frames: int | None = None,
    top_k: int = 5,
    batch_size: int = 1,
    function_to_apply: str | None = None,
    progress: bool = True,
) -> ClassificationRun:
    """Classify video files; the numbers equal `pipeline("video-classification", ...)(video, top_k=..., num_frames=...)`.

    Args:
        model: a video classifier (`InternVideo2ForVideoClassification`).
        video_processor: its video processor (decoding, segment sampling, resize/crop/normalise).
        videos: video files (see [`collect_video_paths`] for folders).
        num_frames: frames sampled per video; defaults to `model.config.num_frames`, as the pipeline does.
        top_k: labels kept per video (at most `num_labels`).
        batch_size: videos per forward pass.
        function_to_apply: `"softmax"`, `"sigmoid"` or `"none"`; defaults to what `config.problem_type` implies.
        progress: show a tqdm bar.
    """
    paths = [os.fspath(v) for v in videos]
    if not paths:
        raise ValueError("No video given.")
    if top_k < 1:
        raise ValueError(f"`top_k` must be >= 1, got {top_k}")
    config = model.config
    num_frames = int(num_frames if num_frames is not None else config.num_frames)
    if num_frames < 1:
        raise ValueError(f"`num_frames` must be >= 1, got {num_frames}")
    score_function = _score_function(config, function_to_apply)
    top_k = min(top_k, config.num_labels)
    device, dtype = _device_dtype(model)
    run = ClassificationRun(predictions=[], num_frames=num_frames)
    with torch.inference_mode(), tqdm(total=len(paths), desc="classifying", unit="video", disable=not progress) as bar:
        for batch in _batches(paths, batch_size):
            start = time.perf_counter()
            inputs = video_processor(batch, num_frames=num_frames, do_sample_frames=True, return_tensors="pt")
            pixel_values = inputs["pixel_values"].to(device=device, dtype=dtype)
            decoded = time.perf_counter()
            logits = model(pixel_values=pixel_values, interpolate_pos_encoding=True).logits.float()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            finished = time.perf_counter()
            run.decode_seconds += decoded - start
            run.forward_seconds += finished - decoded
            run.batch_sizes.append(len(batch))
            run.predictions.extend(_top_labels(config, batch, logits, score_function, top_k))
            bar.update(len(batch))
    return run


# ----------------------------------------------------------------------------------------------------------------
# Vision features
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class VisionEmbeddings:
    """`pooler_output[i]` (the attention-pooled clip feature, not normalised) belongs to `names[i]`."""

    names: list[str]
    pooler_output: torch.Tensor
    num_frames: int
    decode_seconds: float = 0.0
    forward_seconds: float = 0.0


def embed_videos_vision(
    backbone,
    video_processor,
    videos: Sequence[str | os.PathLike],
    num_frames: int | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> VisionEmbeddings:
    """Attention-pooled features (`InternVideo2VisionModel(...).pooler_output`) of video files, in float32 on the CPU.

    `num_frames` defaults to the video processor's frame count.
    """
    paths = [os.fspath(v) for v in videos]
    if not paths:
        raise ValueError("No video given.")
    device, dtype = _device_dtype(backbone)
    pooled, frames_used = [], None
    decode_seconds = forward_seconds = 0.0
    with torch.inference_mode(), tqdm(total=len(paths), desc="embedding", unit="video", disable=not progress) as bar:
        for batch in _batches(paths, batch_size):
            start = time.perf_counter()
            kwargs = {"num_frames": num_frames} if num_frames is not None else {}
            inputs = video_processor(batch, do_sample_frames=True, return_tensors="pt", **kwargs)
            pixel_values = inputs["pixel_values"].to(device=device, dtype=dtype)
            frames_used = pixel_values.shape[1]
            decoded = time.perf_counter()
            output = backbone(pixel_values=pixel_values, interpolate_pos_encoding=True)
            pooled.append(output.pooler_output.float().cpu())
            finished = time.perf_counter()
            decode_seconds += decoded - start
            forward_seconds += finished - decoded
            bar.update(len(batch))
    return VisionEmbeddings(
        names=paths,
        pooler_output=torch.cat(pooled),
        num_frames=int(frames_used),
        decode_seconds=decode_seconds,
        forward_seconds=forward_seconds,
    )


def save_vision_embeddings(embeddings: VisionEmbeddings, path: str | os.PathLike) -> Path:
    """Write `pooler_output` `(N, D)` float32 to a `.safetensors` file; the video names (JSON list) and the frame
    count go in its metadata, as `transformers_internvideo2.tasks.retrieval` does for the video-text models."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"Output {path} must end in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "names": json.dumps(list(embeddings.names)),
        "num_frames": str(embeddings.num_frames),
        "feature": "pooler_output: attention-pooled InternVideo2 vision feature, not normalised",
    }
    save_file({"pooler_output": embeddings.pooler_output.contiguous()}, str(path), metadata=metadata)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Batch jobs: one video prepared at a time (a bad one is skipped alone), one batch computed at a time
# ----------------------------------------------------------------------------------------------------------------
class _VideoJob:
    """`prepare(path)` -> `(1, T, C, H, W)` float tensor on the CPU; `compute(paths, prepared)` -> one record per
    path (`{"video": path, ...}`); `settings`: what the numbers depend on (a resumed run must use the same)."""

    id_key = "video"
    vector_fields: tuple[str, ...] = ()

    def __init__(self, model, processor, model_name: str, num_frames: int | None):
        self.model, self.processor = model, processor
        num_frames = int(num_frames if num_frames is not None else self._default_num_frames())
        if num_frames < 1:
            raise ValueError(f"`num_frames` must be >= 1, got {num_frames}")
        self.num_frames = num_frames
        self.device, self.dtype = _device_dtype(model)
        self.settings = {"model": str(model_name), "num_frames": num_frames, "dtype": str(self.dtype).replace("torch.", "")}
        self.widths: dict[str, int] = {}  # vector field -> its width, once a batch was computed

    def _default_num_frames(self) -> int:
        return self.processor.num_frames

    def _pixel_values(self, path: str) -> torch.Tensor:
        return self.processor(path, num_frames=self.num_frames, do_sample_frames=True, return_tensors="pt")["pixel_values"]

    def prepare(self, path: str) -> torch.Tensor:
        return self._pixel_values(path)

    def _stack(self, prepared: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(prepared)).to(device=self.device, dtype=self.dtype)


class ClassificationJob(_VideoJob):
    """Top-k labels per video, the numbers of [`classify_videos`] (records `{"video", "labels", "scores"}`)."""

    def __init__(self, model, video_processor, model_name: str = "", num_frames: int | None = None, top_k: int = 5,
                 function_to_apply: str | None = None):  # fmt: skip
        if top_k < 1:
            raise ValueError(f"`top_k` must be >= 1, got {top_k}")
        super().__init__(model, video_processor, model_name, num_frames)
        self.score_function = _score_function(model.config, function_to_apply)
        self.top_k = min(top_k, model.config.num_labels)
        self.settings.update(top_k=self.top_k, scores=self.score_function)

    def _default_num_frames(self) -> int:
        return self.model.config.num_frames  # as pipeline("video-classification")

    def compute(self, paths: Sequence[str], prepared: Sequence[torch.Tensor]) -> list[dict]:
        with torch.inference_mode():
            logits = self.model(pixel_values=self._stack(prepared), interpolate_pos_encoding=True).logits.float()
        predictions = _top_labels(self.model.config, paths, logits.cpu(), self.score_function, self.top_k)
        return [{"video": p.video, "labels": p.labels, "scores": p.scores} for p in predictions]


class VisionEmbeddingJob(_VideoJob):
    """The backbone's attention-pooled `pooler_output` per video (records `{"video", "pooler_output"}`)."""

    vector_fields = ("pooler_output",)
    feature = "pooler_output: attention-pooled InternVideo2 vision feature, not normalised"

    def compute(self, paths: Sequence[str], prepared: Sequence[torch.Tensor]) -> list[dict]:
        with torch.inference_mode():
            pooled = self.model(pixel_values=self._stack(prepared), interpolate_pos_encoding=True).pooler_output
        self.widths["pooler_output"] = int(pooled.shape[-1])
        return [{"video": p, "pooler_output": row.numpy()} for p, row in zip(paths, pooled.float().cpu())]


class VideoTextEmbeddingJob(_VideoJob):
    """A stage-2 model's projected, L2-normalised embeddings and raw pooled features per file, as
    `retrieval.embed_videos` computes them, for one `modality` (:mod:`.modalities`):

    * `"video"`: records `{"video", "video_embeds", "pooler_output"}` (the vision pooler's feature);
    * `"audio"` (audio-video-text models): `{"video", "audio_embeds", "pooler_output", "audio_track"}`, the sound of
      the file (a video's audio track or an audio file); `pooler_output` is the mean of the BEATs tokens;
    * `"audio_video"`: `{"video", "audio_video_embeds", "audio_track"}`, frames and sound fused.

    `audio_track` is False for a video without an audio stream (encoded from the original's all-zero features);
    `no_audio_track` lists them. The modality is part of `settings` for the audio ones (a resumed run cannot mix
    them) and of the output's header.
    """

    def __init__(self, model, processor, model_name: str = "", num_frames: int | None = None, modality: str = "video"):
        require_modality(model, modality, model_name or None)
        super().__init__(model, processor, model_name, num_frames)
        self.modality = modality
        embeds = embeddings_field(modality)
        self.vector_fields = (embeds,) if modality == "audio_video" else (embeds, "pooler_output")
        self.feature = {
            "video": "video_embeds: projected, L2-normalised (retrieval feature); pooler_output: raw attention-pooled",
            "audio": "audio_embeds: projected, L2-normalised audio feature (retrieval feature); pooler_output: mean of "
            "the raw BEATs tokens",
            "audio_video": "audio_video_embeds: fused audio+video feature, L2-normalised (retrieval feature)",
        }[modality]
        if modality != "video":  # the video settings stay as they were, so earlier partial outputs still resume
            self.settings["modality"] = modality
        if modality == "audio":  # no frames are read
            self.settings.pop("num_frames")
            self.num_frames = None
        self.no_audio_track: list[str] = []

    def _default_num_frames(self) -> int:
        return self.processor.video_processor.num_frames

    def prepare(self, path: str):
        return prepare_media(self.processor, path, self.modality, self.num_frames)

    def compute(self, paths: Sequence[str], prepared: Sequence) -> list[dict]:
        features = encode_media(self.model, prepared, self.modality)
        embeds_field = self.vector_fields[0]
        self.widths[embeds_field] = int(features.embeds.shape[-1])
        if features.pooled is not None:
            self.widths["pooler_output"] = int(features.pooled.shape[-1])
        records = []
        for row, (path, inputs) in enumerate(zip(paths, prepared)):
            record = {"video": path, embeds_field: features.embeds[row].numpy()}
            if features.pooled is not None:
                record["pooler_output"] = features.pooled[row].numpy()
            if self.modality != "video":
                record["audio_track"] = inputs.has_audio_track is not False
                if not record["audio_track"]:
                    self.no_audio_track.append(path)
            records.append(record)
        return records


def set_video_backend(processor, backend: str | None) -> None:
    """Make `processor` (a video processor, or a processor holding one as `video_processor`) decode files with
    `backend` (`"auto"`, `"torchcodec"`, `"pyav"` or `"decord"`); `None` keeps the saved choice. An unknown or
    unusable backend is refused here, once, rather than by every video of a batch. The backends give the same pixels,
    so the choice is not part of a job's `settings`: a run may resume with another one."""
    if backend is None:
        return
    backends_for(backend)
    getattr(processor, "video_processor", processor).video_backend = backend


def is_video_text_folder(model_id: str | os.PathLike) -> bool:
    """Whether a folder holds a video-text (stage-2) model rather than a vision-only one."""
    config = load_model_config(model_id)
    return getattr(config, "vision_config", None) is not None and getattr(config, "text_config", None) is not None


def load_batch_job(kind: str, model_id: str | os.PathLike, device=None, dtype: str | torch.dtype | None = None,
                   num_frames: int | None = None, top_k: int = 5, modality: str = "video",
                   video_backend: str | None = None) -> _VideoJob:  # fmt: skip
    """The job of a batch command, model loaded: `kind="embed"` gives a [`VideoTextEmbeddingJob`] for a video-text
    folder (of `modality`: `"audio"` / `"audio_video"` need an audio-video-text model) and a [`VisionEmbeddingJob`]
    otherwise; `kind="classify"` a [`ClassificationJob`]. Both engines (local and Ray, :mod:`.ray_engine`) build
    their jobs here, so they run the same code. `video_backend`: see [`set_video_backend`]."""
    if video_backend is not None:
        backends_for(video_backend)  # an unknown or uninstalled decoder is refused before the model loads
    job = _load_batch_job(kind, model_id, device, dtype, num_frames, top_k, modality)
    set_video_backend(job.processor, video_backend)
    return job


def _load_batch_job(kind, model_id, device, dtype, num_frames, top_k, modality) -> _VideoJob:
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if kind == "classify":
        model, processor = load_video_classifier(model_id, device=device, dtype=dtype)
        return ClassificationJob(model, processor, str(model_id), num_frames=num_frames, top_k=top_k)
    if kind != "embed":
        raise ValueError(f"kind must be 'embed' or 'classify', got {kind!r}")
    check_modality(modality)
    if is_video_text_folder(model_id):
        from .retrieval import load_model_and_processor

        require_modality(load_model_config(model_id), modality, model_id)  # before loading the weights
        model, processor = load_model_and_processor(model_id, device=resolve_device(device), dtype=dtype)
        return VideoTextEmbeddingJob(model, processor, str(model_id), num_frames=num_frames, modality=modality)
    if modality != "video":
        raise ValueError(f"--modality {modality} needs an audio-video-text model, but {model_id} is a vision-only "
                         "model (no audio encoder, no text): use --modality video.")  # fmt: skip
    backbone, processor = load_vision_backbone(model_id, device=device, dtype=dtype)
    return VisionEmbeddingJob(backbone, processor, str(model_id), num_frames=num_frames)


@contextlib.contextmanager
def quiet_transformers_logging():
    # Load reports and per-file progress bars of from_pretrained would bury a command's own output. The previous
    # settings are restored afterwards, so in-process callers (tests, notebooks) keep their logging.
    # bitsandbytes (imported by PEFT) warns on import that an optional CPU kernel package is missing; nothing here
    # uses 4-bit CPU kernels.
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    bnb_logger = logging.getLogger("bitsandbytes")
    bnb_level = bnb_logger.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    bnb_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        bnb_logger.setLevel(bnb_level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()

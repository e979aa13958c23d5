# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Which media a retrieval or embedding run encodes: ``video`` (frames), ``audio`` (the sound of a video file, or an
audio file) or ``audio_video`` (frames and sound of one video file, fused), for the video-text models and the 6B
audio-video-text model (``docs/audio.md``).

One file -> [`prepare_media`] (decoding and preprocessing: :class:`MediaInputs`) -> a batch of them ->
[`encode_media`] (the model's feature getter of that modality: :class:`MediaFeatures`). ``tasks.retrieval``
(``internvideo2 retrieve``, ``search``) and the embedding jobs of ``tasks.inference`` (``internvideo2 embed``) both
go through these two functions, so every command computes a modality's embeddings the same way.

Audio follows the stage-2 processor: an audio file (:data:`AUDIO_EXTENSIONS`) takes the original's audio-file path,
the sound of a video file its video path (``InternVideo2Processor.process_audio``); a video without an audio stream
gets all-zero filterbanks, as the original, and :attr:`MediaInputs.has_audio_track` says so, so that commands can
name such files in their output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

# AUDIO_EXTENSIONS: the files read through the original's audio-file loader
from ..media.audio_decoding import AUDIO_EXTENSIONS, has_audio_stream
from ..media.video_decoding import VIDEO_EXTENSIONS
from .pipelines import needs_position_interpolation


__all__ = [
    "AUDIO_EXTENSIONS",
    "MEDIA_MODALITIES",
    "MediaFeatures",
    "MediaInputs",
    "add_modality_argument",
    "check_modality",
    "embeddings_field",
    "encode_media",
    "is_audio_file",
    "media_extensions",
    "modality_label",
    "prepare_media",
    "refuse_audio_files_for_audio_video",
    "require_modality",
]

MEDIA_MODALITIES = ("video", "audio", "audio_video")


def add_modality_argument(parser, what: str = "encoded") -> None:
    """`--modality video|audio|audio_video` of `retrieve` and `embed`."""
    parser.add_argument("--modality", choices=list(MEDIA_MODALITIES), default="video",
                        help=f"what is {what}: video (the frames, default), audio (the audio track of each file, or "
                        "the audio file) or audio_video (frames and audio track fused); the audio ones need an "
                        "audio-video-text model. A video without an audio track gets the original's all-zero audio "
                        "features and is named in the output")  # fmt: skip


def check_modality(modality: str) -> str:
    if modality not in MEDIA_MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MEDIA_MODALITIES)}; got {modality!r}.")
    return modality


def modality_label(modality: str) -> str:
    """How printed output names the media: video, audio, audio+video."""
    return check_modality(modality).replace("_", "+")


def embeddings_field(modality: str) -> str:
    """The name of a modality's retrieval embedding in outputs: `video_embeds`, `audio_embeds`, `audio_video_embeds`."""
    return f"{check_modality(modality)}_embeds"


def is_audio_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def media_extensions(modality: str) -> tuple[str, ...]:
    """File extensions a folder contributes for a modality: audio takes audio files too."""
    return VIDEO_EXTENSIONS + AUDIO_EXTENSIONS if check_modality(modality) == "audio" else VIDEO_EXTENSIONS


def require_modality(model, modality: str, model_name: str | os.PathLike | None = None) -> None:
    """Refuse a modality the model cannot encode: audio ones need the audio-video-text model (an audio encoder)."""
    check_modality(modality)
    if modality == "video":
        return
    config = getattr(model, "config", model)
    if not getattr(config, "has_audio", False):
        name = f"{model_name} " if model_name is not None else "this model "
        raise ValueError(
            f"--modality {modality} needs an audio-video-text model, but {name}has no audio encoder "
            "(config.audio_config is None): use --modality video, or the 6B audio-video-text model."
        )


def refuse_audio_files_for_audio_video(paths: Sequence[str]) -> None:
    """audio_video pairs the frames and the sound of one video file: audio files have no frames."""
    audio_files = [p for p in paths if isinstance(p, (str, os.PathLike)) and is_audio_file(p)]
    if audio_files:
        raise ValueError(
            "--modality audio_video needs video files (frames and sound); audio files have no frames: "
            + ", ".join(str(p) for p in audio_files[:5])
            + (" ..." if len(audio_files) > 5 else "")
            + " (use --modality audio for them)."
        )


@dataclass
class MediaInputs:
    """One file, preprocessed for a modality: `pixel_values (1, T, C, H, W)` (video, audio_video), `input_features
    (1, frames, mel_bins)` (audio, audio_video); `has_audio_track` is False for a video without sound (its features
    are the original's zeros), None where no sound was read."""

    pixel_values: torch.Tensor | None = None
    input_features: torch.Tensor | None = None
    has_audio_track: bool | None = None


def _audio_inputs(processor, item) -> tuple[torch.Tensor, bool | None]:
    if getattr(processor, "feature_extractor", None) is None:
        raise ValueError(
            "The processor has no audio feature extractor: audio modalities need one "
            "(InternVideo2Processor(..., feature_extractor=BeatsFeatureExtractor()))."
        )
    if not isinstance(item, (str, os.PathLike)):  # a waveform or DecodedAudio: the audio-file path
        return processor.process_audio(audio=[item])["input_features"], None
    if is_audio_file(item):
        return processor.process_audio(audio=[os.fspath(item)])["input_features"], True
    # A video file: its sound through the original's video path (zeros and a warning when it has none).
    has_track = has_audio_stream(item)
    return processor.process_audio(videos=[os.fspath(item)])["input_features"], has_track


def prepare_media(processor, item, modality: str, num_frames: int | None = None) -> MediaInputs:
    """Decode and preprocess one file (or in-memory video for `video`) for `modality`. Decoding errors are raised
    (`VideoDecodingError`, `AudioDecodingError`: both `ValueError`s), so callers can skip the file."""
    check_modality(modality)
    inputs = MediaInputs()
    if modality in ("audio", "audio_video"):
        if modality == "audio_video":
            refuse_audio_files_for_audio_video([item])
        inputs.input_features, inputs.has_audio_track = _audio_inputs(processor, item)
    if modality in ("video", "audio_video"):
        inputs.pixel_values = processor.process_videos(videos=[item], num_frames=num_frames)["pixel_values"]
    return inputs


@dataclass
class MediaFeatures:
    """A batch encoded by [`encode_media`]: `embeds` (projected, L2-normalised: the retrieval feature),
    `pooled` (the raw pooled feature before the projection -- the vision pooler's for video, the mean of the BEATs
    tokens for audio; None for audio_video, whose embedding is a fusion of two projections) and `memory` (the fusion
    memory of the modality's matching head, when asked for)."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    memory: torch.Tensor | None = None


def _stacked(tensors: Sequence[torch.Tensor], device, dtype) -> torch.Tensor:
    return torch.cat(list(tensors)).to(device=device, dtype=dtype)


def encode_media(model, prepared: Sequence[MediaInputs], modality: str, keep_memory: bool = False) -> MediaFeatures:
    """The retrieval embeddings of prepared files with the model's feature getter of `modality`
    (`get_video_features`, `get_audio_features`, `get_audio_video_features`), normalised as the original's."""
    require_modality(model, modality)
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    pixel_values = input_features = None
    if modality in ("video", "audio_video"):
        pixel_values = _stacked([p.pixel_values for p in prepared], device, dtype)
        interpolate = needs_position_interpolation(model, pixel_values)
    if modality in ("audio", "audio_video"):
        input_features = _stacked([p.input_features for p in prepared], device, dtype)
    with torch.inference_mode():
        if modality == "video":
            features = model.get_video_features(pixel_values, interpolate_pos_encoding=interpolate, normalize=True)
            memory = model.fusion_tokens(features.last_hidden_state) if keep_memory else None
            pooled = features.vision_pooler_output
        elif modality == "audio":
            features = model.get_audio_features(input_features, normalize=True)
            memory = model.audio_fusion_tokens(features.last_hidden_state) if keep_memory else None
            pooled = features.audio_pooler_output
        else:
            features = model.get_audio_video_features(
                input_features, pixel_values, normalize=True, interpolate_pos_encoding=interpolate
            )
            memory = features.last_hidden_state if keep_memory else None
            pooled = None
    return MediaFeatures(
        embeds=features.pooler_output.float().cpu(),
        pooled=None if pooled is None else pooled.float().cpu(),
        memory=None if memory is None else memory.cpu(),
    )

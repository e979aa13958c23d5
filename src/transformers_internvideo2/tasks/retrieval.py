# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Video feature extraction and video-text retrieval over collections, with the stage-2 and the CLIP models.

Python API (see ``docs/video_text_tasks.md`` for a walk-through):

* :func:`embed_videos` -- batched, progress-barred video encoding of a folder / list of files / arrays: projected and
  L2-normalised embeddings (the retrieval feature), the raw attention-pooled feature, and optionally the video tokens
  the matching head needs. Any number of frames: the position embeddings are resampled at forward time when the
  frame count or resolution differs from the checkpoint's.
* :func:`embed_texts` -- batched caption encoding (the processor's text format: ``[CLS] tokens``, no ``[SEP]``).
* :func:`retrieve` -- both, then cosine similarity and (``rerank=True``, needs ``InternVideo2ForRetrieval``) the
  original evaluation's matching-head re-ranking of the top ``rerank_k`` candidates; returns
  :class:`RetrievalResults` with rankings in both directions and metrics against a ground truth.
* :func:`save_video_embeddings` / :func:`load_video_embeddings` -- ``.safetensors``, ``.npz`` or ``.npy``.

Command-line entry points: :func:`retrieve_main` (``internvideo2 retrieve``) and :func:`embed_main` (the Python entry
point older than ``internvideo2 embed``; it runs the same batch engine, in its own ``.safetensors`` / ``.npz`` /
``.npy`` formats).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm
from transformers import AutoConfig

from ..assets import load_bert_uncased_tokenizer
from ..media.video_decoding import VIDEO_EXTENSIONS
from ..models.beats import BeatsFeatureExtractor
from ..models.internvideo2_clip.processing_internvideo2_clip import InternVideo2ClipProcessor
from ..models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
from ..models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from ..models.internvideo_mm.processing_internvideo_mm import InternVideoMMProcessor
from .batch import (
    EXIT_SKIPPED,
    INPUT_ERRORS,
    BatchInputError,
    MemoryOutput,
    atomic_write,
    positive_int,
    prepare_output,
    run_batch,
)
from .index import VideoIndex, load_index
from .inference import VideoTextEmbeddingJob, collect_video_paths, resolve_device
from .metrics import TiesPolicy, retrieval_metrics
from .modalities import (
    MEDIA_MODALITIES,
    add_modality_argument,
    embeddings_field,
    encode_media,
    media_extensions,
    modality_label,
    prepare_media,
    refuse_audio_files_for_audio_video,
    require_modality,
)
from .pipelines import dual_encoder_class_for, is_clip_config


logger = logging.getLogger(__name__)

__all__ = [
    "RERANK_K",
    "RerankOutput",
    "RetrievalResults",
    "TextCollectionEmbeddings",
    "VideoCollectionEmbeddings",
    "embed_main",
    "embed_texts",
    "embed_videos",
    "list_videos",
    "load_model_and_processor",
    "load_video_embeddings",
    "original_evaluation_matrices",
    "rerank_with_matching_head",
    "retrieve",
    "search_index",
    "retrieve_main",
    "save_video_embeddings",
]



# ----------------------------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class VideoCollectionEmbeddings:
    """Encoded videos (or their audio, or both fused: `modality`), row `i` = `names[i]`.

    Attributes:
        names: file paths, or `video_<i>` for in-memory videos.
        video_embeds: `(N, projection_dim)` projected embeddings, L2-normalised (the retrieval feature) of the
            `modality`: video, audio (`get_audio_features`) or the fused audio+video feature.
        pooler_output: `(N, pooler_output_size)` raw pooled features before the projection: the vision encoder's
            attention-pooled feature (768 for the official models), or for audio the mean of the BEATs tokens;
            None for audio_video.
        video_tokens: `(N, num_tokens, encoder_width)` fusion memory of the modality's matching head, for
            re-ranking (only with `keep_tokens=True`; kept on the CPU).
        num_frames: frames per video (None for audio).
        modality: `"video"`, `"audio"` or `"audio_video"`.
        no_audio_track: names of video files without an audio stream (audio modalities): their audio features are
            the original's all-zero filterbanks.
    """

    names: list[str]
    video_embeds: torch.Tensor
    pooler_output: torch.Tensor | None
    video_tokens: torch.Tensor | None = None
    num_frames: int | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason) of videos left out (on_error="skip")
    modality: str = "video"
    no_audio_track: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class TextCollectionEmbeddings:
    """Encoded captions, row `i` = `texts[i]`: `text_embeds (N, projection_dim)` (L2-normalised) and the tokenised
    `input_ids` / `attention_mask` that re-ranking feeds to the fusion layers."""

    texts: list[str]
    text_embeds: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class RetrievalResults:
    """Scores of every (video, caption) pair.

    Attributes:
        video_names, captions: the collections (rows / columns of `similarity`).
        similarity: `(num_videos, num_texts)` cosine similarities (the original's ITC score, no temperature).
        video_to_text_reranked: `(num_videos, num_texts)` matching-head "match" logits of each video's top
            `rerank_k` captions by cosine, `-100` elsewhere (the original's `i2t` re-ranked scores); `None` without
            re-ranking.
        text_to_video_reranked: `(num_texts, num_videos)`, the same for each caption's top `rerank_k` videos.
        video_to_text_candidates, text_to_video_candidates: `(num_queries, rerank_k)` indices of the re-ranked
            candidates of each video / caption.
        rerank_k: candidates re-ranked per query.
    """

    video_names: list[str]
    captions: list[str]
    similarity: torch.Tensor
    video_to_text_reranked: torch.Tensor | None = None
    text_to_video_reranked: torch.Tensor | None = None
    video_to_text_candidates: torch.Tensor | None = None
    text_to_video_candidates: torch.Tensor | None = None
    rerank_k: int | None = None
    modality: str = "video"  # what the rows are: video, audio, or audio_video embeddings

    @property
    def has_rerank(self) -> bool:
        return self.video_to_text_reranked is not None

    def _scores(self, direction: str, reranked: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
        use_rerank = self.has_rerank if reranked is None else reranked
        if use_rerank and not self.has_rerank:
            raise ValueError("These results were computed without re-ranking (rerank=False)")
        cosine = self.similarity.float().cpu()
        if direction == "t2v":
            cosine = cosine.t()
            primary = self.text_to_video_reranked.float().cpu() if use_rerank else cosine
        else:
            primary = self.video_to_text_reranked.float().cpu() if use_rerank else cosine
        return primary, cosine

    def _candidates(self, direction: str) -> torch.Tensor | None:
        return self.text_to_video_candidates if direction == "t2v" else self.video_to_text_candidates

    def _ranked(self, direction: str, names: Sequence[str], k: int, reranked: bool | None) -> list[list[dict]]:
        if k < 1:
            raise ValueError(f"k must be >= 1 (results per query), got {k}")
        primary, cosine = self._scores(direction, reranked)
        use_rerank = self.has_rerank if reranked is None else reranked
        candidates = self._candidates(direction) if use_rerank else None
        primary, cosine = primary.numpy(), cosine.numpy()
        out = []
        for row in range(primary.shape[0]):
            # Sort by the primary score; the cosine breaks ties (the -100 filler outside the re-ranked candidates).
            order = np.lexsort((-cosine[row], -primary[row]))[:k]
            in_candidates = set(candidates[row].tolist()) if candidates is not None else set()
            entries = []
            for rank, j in enumerate(order.tolist(), start=1):
                entry = {"rank": rank, "index": j, "name": names[j], "similarity": float(cosine[row, j])}
                if use_rerank:
                    entry["match_logit"] = float(primary[row, j]) if j in in_candidates else None
                entries.append(entry)
            out.append(entries)
        return out

    def text_to_video(self, k: int = 5, reranked: bool | None = None) -> list[list[dict]]:
        """For each caption, its `k` best videos: dicts `{rank, index, name, similarity[, match_logit]}`.
        `reranked=None` uses the re-ranked scores when available; `match_logit` is `None` for videos outside the
        re-ranked candidates."""
        return self._ranked("t2v", self.video_names, k, reranked)

    def video_to_text(self, k: int = 5, reranked: bool | None = None) -> list[list[dict]]:
        """For each video, its `k` best captions (same format as [`text_to_video`])."""
        return self._ranked("v2t", self.captions, k, reranked)

    def metrics(
        self,
        text_to_video: Sequence[int] | Sequence[Sequence[int]] | None = None,
        reranked: bool | None = None,
        ties: TiesPolicy = "pessimistic",
    ) -> dict[str, float]:
        """R@1/5/10, median and mean rank in both directions ([`~metrics.retrieval_metrics`]) on the cosine
        (`reranked=False`) or re-ranked scores (default when available). `text_to_video[i]` is the index (or list of
        indices) of caption `i`'s video; `None` = caption `i` describes video `i`."""
        v2t, _ = self._scores("v2t", reranked)
        t2v, _ = self._scores("t2v", reranked)
        return retrieval_metrics(v2t, text_to_video, sim_t2v=t2v, ties=ties)


# ----------------------------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------------------------
def list_videos(videos: str | os.PathLike | Sequence, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list:
    """Expand a folder into its video files (sorted by name, non-recursive); a list keeps its order (folders in it
    are expanded in place). In-memory videos (arrays, tensors) pass through. `extensions`: the files a folder
    contributes (`modalities.media_extensions("audio")` adds audio files)."""
    items = [videos] if isinstance(videos, (str, os.PathLike)) else list(videos)
    out = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            out.extend(collect_video_paths([item], extensions))
        else:
            out.append(item)
    if not out:
        raise ValueError("No videos given")
    return out


def _model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def embed_videos(
    model,
    processor,
    videos: str | os.PathLike | Sequence,
    batch_size: int = 8,
    num_frames: int | None = None,
    keep_tokens: bool = False,
    progress: bool = True,
    on_error: str = "fail",
    modality: str = "video",
) -> VideoCollectionEmbeddings:
    """Encode a collection of videos in batches.

    Args:
        model: `InternVideo2Model`, `InternVideo2ForRetrieval` or `InternVideo2ClipModel`.
        processor: [`InternVideo2Processor`] (frame sampling, resize, normalisation; audio features).
        videos: a folder (its video files, sorted), or a list of paths / arrays `(T, H, W, C)` / tensors. With
            `modality="audio"`, audio files (wav, flac, mp3, ...) too.
        batch_size: videos per forward pass.
        num_frames: frames per video (default: the processor's). Frame counts or resolutions other than the
            checkpoint's resample the position embeddings at forward time (`interpolate_pos_encoding=True`).
        keep_tokens: also return the modality's fusion memory (needed for matching-head re-ranking; memory heavy:
            about `(1 + 256 T) x 1408` floats per video for the 1B model).
        progress: show a tqdm progress bar.
        on_error: `"fail"` (a video that cannot be decoded raises) or `"skip"` (it is left out, logged, and listed
            with its reason in the result's `skipped`; the other videos of its batch are still encoded).
        modality: what is encoded (audio-video-text models, `docs/audio.md`): `"video"` (the frames), `"audio"`
            (the sound of each video file, or the audio file: `get_audio_features`) or `"audio_video"` (frames and
            sound of each video file, fused: `get_audio_video_features`). A video file without an audio stream gets
            the original's all-zero audio features; it is named in the result's `no_audio_track`.

    Returns:
        [`VideoCollectionEmbeddings`] (tensors on the CPU, float32 except `video_tokens`, kept in the model dtype).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    require_modality(model, modality)
    items = list_videos(videos, media_extensions(modality))
    names = [item if isinstance(item, str) else f"video_{i}" for i, item in enumerate(items)]
    embeds, pooled, tokens = [], [], []
    kept, skipped, silent = [], [], []
    frames_used = None
    model_was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(items), batch_size), desc="videos", unit="batch", disable=not progress):
            prepared, prepared_names = [], []
            for item, name in zip(items[start : start + batch_size], names[start : start + batch_size]):
                try:  # one video at a time, so that a bad one is left out alone
                    prepared.append(prepare_media(processor, item, modality, num_frames))
                except INPUT_ERRORS as error:
                    if on_error == "fail":
                        raise
                    skipped.append((name, f"{type(error).__name__}: {error}"))
                    logger.warning("skipped video %s: %s", name, skipped[-1][1])
                    continue
                prepared_names.append(name)
                if prepared[-1].has_audio_track is False:
                    silent.append(name)
            if not prepared:
                continue
            kept.extend(prepared_names)
            if prepared[0].pixel_values is not None:
                frames_used = prepared[0].pixel_values.shape[1]
            features = encode_media(model, prepared, modality, keep_memory=keep_tokens)
            embeds.append(features.embeds)
            if features.pooled is not None:
                pooled.append(features.pooled)
            if keep_tokens:
                tokens.append(features.memory)
    finally:
        model.train(model_was_training)
    if not kept:
        raise ValueError(f"None of the {len(items)} videos could be decoded: " + "; ".join(f"{n} ({r})" for n, r in skipped))
    return VideoCollectionEmbeddings(
        names=kept,
        video_embeds=torch.cat(embeds),
        pooler_output=torch.cat(pooled) if pooled else None,
        video_tokens=torch.cat(tokens) if keep_tokens else None,
        num_frames=frames_used,
        skipped=skipped,
        modality=modality,
        no_audio_track=silent,
    )


def embed_texts(
    model,
    processor,
    texts: Sequence[str],
    batch_size: int = 256,
    max_length: int | None = None,
    clean_text: bool | None = None,
    progress: bool = True,
) -> TextCollectionEmbeddings:
    """Encode captions in batches (256 per batch, as the original evaluation).

    `max_length` / `clean_text` override the processor's settings (defaults 32 and `True`: the MSR-VTT evaluation).
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("No captions given")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    tokens = processor.tokenize(texts, max_length=max_length, clean_text=clean_text)
    device, _ = _model_device_dtype(model)
    embeds = []
    model_was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc="texts", unit="batch", disable=not progress):
                ids = tokens["input_ids"][start : start + batch_size].to(device)
                mask = tokens["attention_mask"][start : start + batch_size].to(device)
                features = model.get_text_features(input_ids=ids, attention_mask=mask, normalize=True)
                embeds.append(features.pooler_output.float().cpu())
    finally:
        model.train(model_was_training)
    return TextCollectionEmbeddings(
        texts=texts,
        text_embeds=torch.cat(embeds),
        input_ids=tokens["input_ids"],
        attention_mask=tokens["attention_mask"],
    )


def search_index(
    index,
    model,
    processor,
    texts: str | Sequence[str] | None = None,
    videos: str | os.PathLike | Sequence | None = None,
    k: int = 10,
    num_frames: int | None = None,
) -> list[list[dict]]:
    """Top-`k` clips of a FAISS index (:class:`~.index.VideoIndex` or its folder) for text queries (text-to-video)
    or video queries (video-to-video), encoded by `model` -- the video-text model the indexed embeddings came from.
    Video queries are encoded in the modality the index records (`audio`: their sound; `audio_video`: both).

    Returns, per query, `{"id", "source_path", "span", "score"}` best first (score: cosine similarity).
    """
    if not isinstance(index, VideoIndex):
        index = load_index(index)
    if (texts is None) == (videos is None):
        raise ValueError("Give either texts (text-to-video) or videos (video-to-video) as queries.")
    if texts is not None:
        queries = embed_texts(model, processor, texts, progress=False).text_embeds
    else:  # the query file is encoded in the modality of the indexed embeddings (its sound for an audio index)
        modality = index.metadata.get("modality") or "video"
        embedded = embed_videos(model, processor, videos, num_frames=num_frames, progress=False, modality=modality)
        queries = embedded.video_embeds if index.metadata.get("feature") != "pooler_output" else embedded.pooler_output
    return index.search(queries.numpy(), k)


def retrieve(
    model,
    processor,
    videos: str | os.PathLike | Sequence | VideoCollectionEmbeddings,
    captions: Sequence[str] | TextCollectionEmbeddings,
    rerank: bool | None = None,
    rerank_k: int | None = None,
    video_batch_size: int = 8,
    text_batch_size: int = 256,
    num_frames: int | None = None,
    progress: bool = True,
    modality: str = "video",
) -> RetrievalResults:
    """Score every caption against every video, as the original stage-2 retrieval evaluation.

    1. Embed videos and captions ([`embed_videos`], [`embed_texts`]; pre-computed embeddings are accepted).
    2. `similarity = video_embeds @ text_embeds.T` (cosine, no temperature).
    3. With `rerank=True` (needs the matching head of `InternVideo2ForRetrieval`; the default `None` re-ranks
       whenever the model has one, and ranks by cosine for `InternVideo2Model` and the CLIP models, which the
       original CLIP evaluation also ranks by cosine only): for every video its top
       `rerank_k` captions by cosine, and for every caption its top `rerank_k` videos, are re-scored by the matching
       head ("match" logit); everything else gets -100 ([`rerank`]). `rerank_k` defaults to 128, as the original.

    `modality` (audio-video-text models): the rows are the videos' `"video"`, `"audio"` or fused `"audio_video"`
    embeddings ([`embed_videos`]), re-ranked by that modality's matching head (`matching_head`, `audio_matching_head`
    = the original `atm_head`, `audio_video_matching_head` = `avtm_head`); `rerank=None` re-ranks when the model
    has that head. Pre-computed embeddings must be of `modality` (mixing them is an error).

    Returns:
        [`RetrievalResults`]; use `.text_to_video(k)`, `.video_to_text(k)`, `.metrics(ground_truth)`.
    """
    if rerank_k is not None and rerank_k < 1:
        raise ValueError(f"rerank_k must be >= 1 (candidates re-ranked per query), got {rerank_k}")
    require_modality(model, modality)
    if rerank is None:
        rerank = has_matching_head(model, modality)
    if rerank and not hasattr(model, "matching_head"):
        raise TypeError(
            f"Re-ranking needs the matching head (InternVideo2ForRetrieval); {type(model).__name__} has none. Pass "
            "rerank=False for cosine-only retrieval."
        )
    if rerank and modality != "video":
        model.matching_head_for(modality)  # a model without this modality's head: an error that says so
    if isinstance(videos, VideoCollectionEmbeddings):
        video_embeddings = videos
        if video_embeddings.modality != modality:
            raise ValueError(
                f"These embeddings are {video_embeddings.modality} embeddings, but modality={modality!r} was asked: "
                f"embed with modality={modality!r} (or pass modality={video_embeddings.modality!r})."
            )
        if rerank and video_embeddings.video_tokens is None:
            raise ValueError("Re-ranking needs video tokens: embed the videos with keep_tokens=True")
    else:
        video_embeddings = embed_videos(
            model, processor, videos, video_batch_size, num_frames, keep_tokens=rerank, progress=progress,
            modality=modality,
        )  # fmt: skip
    text_embeddings = (
        captions
        if isinstance(captions, TextCollectionEmbeddings)
        else embed_texts(model, processor, captions, text_batch_size, progress=progress)
    )
    similarity = video_embeddings.video_embeds @ text_embeddings.text_embeds.t()
    results = RetrievalResults(
        video_names=list(video_embeddings.names), captions=list(text_embeddings.texts), similarity=similarity,
        modality=modality,
    )  # fmt: skip
    if rerank:
        model_was_training = model.training
        model.eval()
        try:
            reranked = rerank_with_matching_head(
                model,
                similarity=similarity,
                video_tokens=video_embeddings.video_tokens,
                text_ids=text_embeddings.input_ids,
                text_mask=text_embeddings.attention_mask,
                k=RERANK_K if rerank_k is None else rerank_k,
                modality=modality,
            )
        finally:
            model.train(model_was_training)
        results.video_to_text_reranked = reranked.video_to_text.float().cpu()
        results.text_to_video_reranked = reranked.text_to_video.float().cpu()
        results.video_to_text_candidates = reranked.video_to_text_candidates.cpu()
        results.text_to_video_candidates = reranked.text_to_video_candidates.cpu()
        results.rerank_k = int(reranked.video_to_text_candidates.shape[1])
    return results


# ----------------------------------------------------------------------------------------------------------------
# Re-ranking with the matching head, and the original evaluation's score matrices
# ----------------------------------------------------------------------------------------------------------------
RERANK_K = 128  # candidates per query re-scored by the matching head (the original evaluation's `k_test`)


def has_matching_head(model, modality: str = "video") -> bool:
    """Whether `model` can re-rank `modality`: `InternVideo2ForRetrieval` with that modality's head (video: always;
    audio+video: audio-video-text models; audio: only those trained with `atm_head`)."""
    if not hasattr(model, "matching_head"):
        return False
    return modality == "video" or bool(getattr(model, "has_matching_head", lambda _: False)(modality))


@dataclass
class RerankOutput:
    """What [`rerank_with_matching_head`] returns.

    video_to_text (`(num_videos, num_texts)`): for each video, the matching-head "match" logit of its top-k texts by
        cosine; every other entry is `fill_value` (-100, as the original), so each candidate ranks above every other.
    text_to_video (`(num_texts, num_videos)`): the same for each text over its top-k videos.
    video_to_text_candidates, text_to_video_candidates (`(num_queries, k)`): the candidates' indices, by cosine.
    """

    video_to_text: torch.Tensor
    text_to_video: torch.Tensor
    video_to_text_candidates: torch.Tensor
    text_to_video_candidates: torch.Tensor


@torch.no_grad()
def rerank_with_matching_head(
    model,
    similarity: torch.Tensor,
    video_tokens: torch.Tensor,
    text_ids: torch.Tensor | None = None,
    text_mask: torch.Tensor | None = None,
    k: int = RERANK_K,
    text_hidden_states: torch.Tensor | None = None,
    batch_size: int = 32,
    fill_value: float = -100.0,
    modality: str = "video",
) -> RerankOutput:
    """Re-rank retrieval candidates with the matching head of an `InternVideo2ForRetrieval`, as the original
    `evaluation()`: for every video the `k` texts with the highest cosine similarity, and for every text the `k` best
    videos, are scored by the matching head (logit of "match"); the score replaces the similarity, every
    non-candidate gets `fill_value`. The cosine is not blended in: inside the top-k the order is the matching
    head's. Each (video, text) pair that is a candidate in either direction is scored once.

    Args:
        similarity (`(num_videos, num_texts)`): cosine similarities of the normalised embeddings.
        video_tokens (`(num_videos, num_tokens, encoder_width)`): the fusion memory,
            `model.fusion_tokens(model.get_video_features(...).last_hidden_state)` (may live on the CPU).
        text_ids, text_mask (`(num_texts, sequence_length)`): tokenised texts; or
        text_hidden_states: their text-path hidden states (`get_text_features(...).last_hidden_state`) with
            `text_mask`.
        k: candidates per query, capped by the collection size.
        batch_size: pairs per matching-head batch (32 as the original).
        modality: the media the rows are (audio-video-text models): `"video"` (the matching head), `"audio_video"`
            (the audio+video head; `video_tokens` = `get_audio_video_features(...).last_hidden_state`) or `"audio"`
            (the audio head, only in models trained with one; `video_tokens` =
            `audio_fusion_tokens(get_audio_features(...).last_hidden_state)`). The rows of `similarity` and
            `video_tokens` are then that media (the names keep saying video).
    """
    head = model.matching_head if modality == "video" else model.matching_head_for(modality)
    num_videos, num_texts = similarity.shape
    if k < 1:
        raise ValueError(f"The re-ranking depth k must be >= 1; got {k}.")
    if video_tokens.shape[0] != num_videos:
        raise ValueError(f"similarity has {num_videos} rows (videos) but video_tokens holds {video_tokens.shape[0]}.")
    if (text_ids is None) == (text_hidden_states is None):
        raise ValueError("Pass exactly one of `text_ids` and `text_hidden_states`.")
    device = head.weight.device
    if text_hidden_states is None:
        text_hidden_states = torch.cat(
            [
                model.get_text_features(
                    text_ids[i : i + batch_size].to(device),
                    None if text_mask is None else text_mask[i : i + batch_size].to(device),
                ).last_hidden_state
                for i in range(0, num_texts, batch_size)
            ]
        )
    if text_hidden_states.shape[0] != num_texts:
        raise ValueError(f"similarity has {num_texts} columns (texts) but {text_hidden_states.shape[0]} texts given.")
    k_texts, k_videos = min(k, num_texts), min(k, num_videos)
    text_candidates = similarity.topk(k_texts, dim=1).indices  # (num_videos, k)
    video_candidates = similarity.t().topk(k_videos, dim=1).indices  # (num_texts, k)

    pairs = torch.zeros(num_videos, num_texts, dtype=torch.bool, device=similarity.device)
    pairs.scatter_(1, text_candidates, True)
    pairs.t().scatter_(1, video_candidates, True)
    video_index, text_index = pairs.nonzero(as_tuple=True)
    scores = torch.empty(video_index.shape[0], dtype=torch.float32, device=similarity.device)
    for start in range(0, video_index.shape[0], batch_size):
        v = video_index[start : start + batch_size]
        t = text_index[start : start + batch_size]
        mask = None if text_mask is None else text_mask[t.to(text_mask.device)].to(device)
        cls = model.fusion_cls(
            text_hidden_states[t.to(text_hidden_states.device)].to(device),
            mask,
            video_tokens[v.to(video_tokens.device)].to(device),
        )
        scores[start : start + batch_size] = head(cls)[:, 1].float().to(scores.device)
    pair_scores = torch.full((num_videos, num_texts), fill_value, dtype=torch.float32, device=similarity.device)
    pair_scores[video_index, text_index] = scores

    video_to_text = torch.full_like(pair_scores, fill_value)
    video_to_text.scatter_(1, text_candidates, pair_scores.gather(1, text_candidates))
    text_to_video = torch.full_like(pair_scores.t(), fill_value)
    text_to_video.scatter_(1, video_candidates, pair_scores.t().gather(1, video_candidates))
    return RerankOutput(video_to_text, text_to_video, text_candidates, video_candidates)


def original_evaluation_matrices(similarity: torch.Tensor, rerank: RerankOutput | None = None) -> dict[str, torch.Tensor]:
    """The score matrices the original `evaluation()` returns, each row-softmaxed (rank-preserving):

    * `i2t_sim` / `t2i_sim`: cosine similarity (video->text rows, text->video rows);
    * `i2t_dsl` / `t2i_dsl`: dual-softmax `S * softmax(S)` over the other axis, no temperature;
    * `i2t_match` / `t2i_match` (with `rerank`): the matching-head re-ranked scores.
    """
    similarity = similarity.float()
    out = {
        "i2t_sim": similarity.softmax(dim=1),
        "t2i_sim": similarity.t().softmax(dim=1),
        "i2t_dsl": (similarity * similarity.softmax(dim=0)).softmax(dim=1),
        "t2i_dsl": (similarity.t() * similarity.t().softmax(dim=0)).softmax(dim=1),
    }
    if rerank is not None:
        out["i2t_match"] = rerank.video_to_text.softmax(dim=1)
        out["t2i_match"] = rerank.text_to_video.softmax(dim=1)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------------------------
def _npy_siblings(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.stem + "_pooled.npy"), path.with_name(path.stem + "_names.json")


def save_video_embeddings(embeddings: VideoCollectionEmbeddings, path: str | os.PathLike) -> list[Path]:
    """Save embeddings; the format follows the extension:

    * `.safetensors`: tensors `<modality>_embeds` (`video_embeds`, `audio_embeds`, `audio_video_embeds`) and
      `pooler_output` (absent for audio_video); the names, frame count and modality in the metadata.
    * `.npz`: arrays `<modality>_embeds`, `pooler_output`, `names`, `modality`.
    * `.npy`: the embeddings in `path`, `pooler_output` in `<stem>_pooled.npy`, names (and modality) in
      `<stem>_names.json`.

    Video tokens are not saved (re-ranking recomputes them). Returns the written paths.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    field_name = embeddings_field(embeddings.modality)
    arrays = {field_name: embeddings.video_embeds.float().contiguous()}
    if embeddings.pooler_output is not None:
        arrays["pooler_output"] = embeddings.pooler_output.float().contiguous()
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        metadata = {"names": json.dumps(list(embeddings.names)), "num_frames": str(embeddings.num_frames),
                    "modality": embeddings.modality}  # fmt: skip
        save_file(arrays, str(path), metadata=metadata)
        return [path]
    if suffix == ".npz":
        np.savez(path, **{k: v.numpy() for k, v in arrays.items()}, names=np.array(embeddings.names),
                 modality=np.array(embeddings.modality))  # fmt: skip
        return [path]
    if suffix == ".npy":
        pooled_path, names_path = _npy_siblings(path)
        np.save(path, arrays[field_name].numpy())
        written = [path]
        if "pooler_output" in arrays:
            np.save(pooled_path, arrays["pooler_output"].numpy())
            written.append(pooled_path)
        info = {"names": list(embeddings.names), "num_frames": embeddings.num_frames, "modality": embeddings.modality}
        names_path.write_text(json.dumps(info))
        return [*written, names_path]
    raise ValueError(f"Unsupported output format {suffix!r}: use .safetensors, .npz or .npy")


def _recorded_modality(path: Path, found: str | None, fields: Sequence[str]) -> str:
    """The modality a file records (files written before audio existed record none: video). Checked against the
    embedding it holds, so that a file can never be read as another modality's embeddings."""
    modality = found or "video"
    if modality not in MEDIA_MODALITIES:
        raise ValueError(f"{path} records an unknown modality {modality!r} (expected one of {MEDIA_MODALITIES}).")
    if embeddings_field(modality) not in fields:
        raise ValueError(f"{path} records modality {modality!r} but holds no {embeddings_field(modality)!r} (it has "
                         f"{sorted(fields)}): not a file written by `internvideo2 embed` or save_video_embeddings.")  # fmt: skip
    return modality


def load_video_embeddings(path: str | os.PathLike) -> VideoCollectionEmbeddings:
    """Read back what [`save_video_embeddings`] wrote, or the `.safetensors` output of `internvideo2 embed` with a
    video-text model; the result's `modality` is the one the file records (`retrieve` refuses to use it as another
    modality's embeddings)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            settings = json.loads(metadata.get("settings", "{}"))
            modality = _recorded_modality(path, metadata.get("modality") or settings.get("modality"), list(f.keys()))
            embeds = f.get_tensor(embeddings_field(modality))
            pooled = f.get_tensor("pooler_output") if "pooler_output" in f.keys() else None
        frames = metadata.get("num_frames")
        return VideoCollectionEmbeddings(
            names=json.loads(metadata.get("names", "[]")),
            video_embeds=embeds,
            pooler_output=pooled,
            num_frames=int(frames) if frames not in (None, "None") else None,
            modality=modality,
        )
    if suffix == ".npz":
        with np.load(path) as data:
            modality = _recorded_modality(path, str(data["modality"]) if "modality" in data else None, data.files)
            return VideoCollectionEmbeddings(
                names=[str(n) for n in data["names"]],
                video_embeds=torch.from_numpy(data[embeddings_field(modality)]),
                pooler_output=torch.from_numpy(data["pooler_output"]) if "pooler_output" in data else None,
                modality=modality,
            )
    if suffix == ".npy":
        pooled_path, names_path = _npy_siblings(path)
        info = json.loads(names_path.read_text())
        modality = info.get("modality", "video")
        return VideoCollectionEmbeddings(
            names=info["names"],
            video_embeds=torch.from_numpy(np.load(path)),
            pooler_output=torch.from_numpy(np.load(pooled_path)) if pooled_path.is_file() else None,
            num_frames=info.get("num_frames"),
            modality=_recorded_modality(path, modality, [embeddings_field(modality)]),
        )
    raise ValueError(f"Unsupported format {suffix!r}: use .safetensors, .npz or .npy")


# ----------------------------------------------------------------------------------------------------------------
# Loading and command line
# ----------------------------------------------------------------------------------------------------------------
def load_model_and_processor(model_path: str | os.PathLike, need_matching_head: bool = False, device=None, dtype=None):
    """Load a converted dual-encoder folder with the class its config names (`InternVideo2ForRetrieval`,
    `InternVideo2Model` or `InternVideo2ClipModel`) and its processor (for stage 2, the stage-2 evaluation processor
    when the folder has none; a CLIP folder must hold its processor, which carries the text tower's tokenizer)."""
    config = AutoConfig.from_pretrained(model_path)
    model_class = dual_encoder_class_for(config)
    clip = is_clip_config(config)
    if need_matching_head and model_class is not InternVideo2ForRetrieval:
        what = "an InternVideo2-CLIP model, which has" if clip else "an InternVideo2Model without"
        raise ValueError(
            f"{model_path} holds {what} no matching head; re-ranking needs an InternVideo2ForRetrieval checkpoint "
            "(or run without re-ranking)."
        )
    has_processor = (Path(model_path) / "processor_config.json").is_file()
    if clip and not has_processor:
        raise FileNotFoundError(
            f"{model_path} has no processor_config.json: a CLIP folder carries its text tower's tokenizer; convert it "
            "with `internvideo2 convert --family clip` (which saves the processor)."
        )
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = model_class.from_pretrained(model_path, **kwargs).eval()
    if device is not None:
        model = model.to(device)
    if getattr(config, "model_type", None) == "internvideo_mm":  # InternVideo (v1): its demo processor
        if has_processor:
            processor = InternVideoMMProcessor.from_pretrained(model_path)
        else:
            processor = InternVideoMMProcessor(context_length=config.text_config.max_position_embeddings)
    elif has_processor:
        processor = (InternVideo2ClipProcessor if clip else InternVideo2Processor).from_pretrained(model_path)
    else:
        vision = config.vision_config
        processor = InternVideo2Processor.for_stage2(
            num_frames=vision.num_frames, image_size=vision.image_size, tokenizer=load_bert_uncased_tokenizer()
        )
    if getattr(config, "has_audio", False) and getattr(processor, "feature_extractor", None) is None:
        # An audio-video-text folder whose processor was saved without the audio part (the stage-2 converter writes
        # the video-text processor): the original's audio preprocessing has fixed settings, BeatsFeatureExtractor().
        logger.info("%s: the processor has no audio feature extractor; using BeatsFeatureExtractor() (the "
                    "original's audio preprocessing).", model_path)  # fmt: skip
        processor.feature_extractor = BeatsFeatureExtractor()
    return model, processor


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    # `--model` is optional on the command line: `internvideo2 retrieve` / `embed` fill in the bundled model.
    parser.add_argument("--model", default=None,
                        help="folder of a converted stage-2 checkpoint (default with `internvideo2`: the bundled "
                        "shapes-world video-text model)")  # fmt: skip
    parser.add_argument("--num-frames", type=positive_int, default=None, help="frames per video (default: the processor's)")
    parser.add_argument("--video-batch-size", type=positive_int, default=8)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _dtype(name):
    return None if name is None else getattr(torch, name)


def build_embed_parser(prog: str = "internvideo2 embed") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Encode videos with a stage-2 model: projected + L2-normalised embeddings and raw pooled "
        "features, saved to .safetensors, .npz or .npy.",
    )
    parser.add_argument("videos", nargs="+", help="video files and/or folders")
    parser.add_argument("--output", required=True, help="output file: .safetensors, .npz or .npy")
    parser.add_argument("--on-error", choices=["skip", "fail"], default="skip",
                        help="a video that cannot be decoded: leave it out (named on stderr; exit code 3 at the end) "
                        "or stop with exit code 1, writing nothing (default: skip)")  # fmt: skip
    _common_arguments(parser)
    return parser


def embed_main(argv: Sequence[str] | None = None) -> int:
    """`VIDEOS... --model DIR --output FILE [--num-frames T] [--on-error skip|fail]`, the Python entry point that
    predates the `internvideo2 embed` command; returns the exit code.

    It runs the batch engine ([`~tasks.batch.run_batch`], the job of `internvideo2 embed` for a stage-2 folder): an
    undecodable video is skipped -- named on stderr with the reason, listed in the summary line, every other video
    written, exit code 3 -- or, with `--on-error fail`, stops the run (one `error:` line, exit 1, nothing written).
    It keeps its own formats (`.safetensors`, `.npz`, `.npy`, written by [`save_video_embeddings`] once all videos are
    done); for resumable outputs and `.parquet` / `.jsonl` use `internvideo2 embed`."""
    parser = build_embed_parser()
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error("--model is required here (`internvideo2 embed` defaults to the bundled model)")
    videos = collect_video_paths(args.videos)  # a missing path fails before the model is loaded
    model, processor = load_model_and_processor(args.model, device=resolve_device(args.device), dtype=_dtype(args.dtype))
    job = VideoTextEmbeddingJob(model, processor, str(args.model), num_frames=args.num_frames)
    output = MemoryOutput()
    try:
        summary = run_batch(videos, job.prepare, job.compute, output, batch_size=args.video_batch_size,
                            on_error=args.on_error, progress=not args.no_progress, description="embedding")  # fmt: skip
    except BatchInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not output.records:
        print(f"error: none of the {len(videos)} video(s) could be decoded; nothing written.", file=sys.stderr)
        return 1
    embeddings = VideoCollectionEmbeddings(
        names=[record["video"] for record in output.records],
        video_embeds=torch.from_numpy(np.stack([record["video_embeds"] for record in output.records])),
        pooler_output=torch.from_numpy(np.stack([record["pooler_output"] for record in output.records])),
        num_frames=job.num_frames,
    )
    written = save_video_embeddings(embeddings, args.output)
    print(
        f"encoded {len(embeddings)} videos x {embeddings.num_frames} frames: video_embeds "
        f"{tuple(embeddings.video_embeds.shape)}, pooler_output {tuple(embeddings.pooler_output.shape)} -> "
        + ", ".join(str(p) for p in written)
    )
    print(summary.line("embedded"), file=sys.stderr)
    return summary.exit_code


def build_retrieve_parser(prog: str = "internvideo2 retrieve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Text-to-video and video-to-text retrieval over a collection, with and without matching-head "
        "re-ranking (as the original stage-2 evaluation). With an audio-video-text model, --modality audio ranks "
        "the sound of the files (or audio files) and --modality audio_video their fused frames and sound.",
    )
    parser.add_argument("--videos", nargs="+", required=True,
                        help="video files and/or folders (with --modality audio: audio files too, e.g. wav, flac, "
                        "mp3)")  # fmt: skip
    add_modality_argument(parser, "ranked against the captions")
    captions = parser.add_mutually_exclusive_group(required=True)
    captions.add_argument("--captions", nargs="+", help="captions (quoted strings)")
    captions.add_argument("--captions-file", help="text file, one caption per line")
    captions.add_argument(
        "--annotations",
        help='JSON list of {"video": <file name>, "caption": <text>} (several captions per video allowed); '
        "gives the ground truth, so R@1/5/10 and ranks are printed",
    )
    parser.add_argument("--top-k", type=positive_int, default=5, help="results listed per query (>= 1)")
    rerank_choice = parser.add_mutually_exclusive_group()
    rerank_choice.add_argument("--rerank", dest="rerank", action="store_true", default=None,
                               help="re-rank with the modality's matching head (video: itm, audio: atm, audio_video: "
                               "avtm) even where the model's metrics.json says it does not beat cosine; an error "
                               "where the model has no such head (default: re-rank where it has one)")  # fmt: skip
    rerank_choice.add_argument("--no-rerank", dest="rerank", action="store_false",
                               help="cosine similarity only (no matching head)")  # fmt: skip
    parser.add_argument("--rerank-k", type=positive_int, default=None,
                        help="candidates re-ranked per query (>= 1, default 128)")  # fmt: skip
    parser.add_argument("--text-batch-size", type=positive_int, default=256)
    parser.add_argument("--on-error", choices=["skip", "fail"], default="skip",
                        help="a video that cannot be decoded: leave it out (named on stderr; exit code 3 at the end) "
                        "or stop (default: skip)")  # fmt: skip
    parser.add_argument("--output", default=None, metavar="FILE.json",
                        help="write the rankings (and metrics) as JSON here (an existing file needs --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    _common_arguments(parser)
    return parser


def _names_index(video_names: Sequence[str]) -> dict[str, int]:
    by_name = {}
    for index, name in enumerate(video_names):
        for key in (name, Path(name).name, Path(name).stem):
            by_name.setdefault(key, index)
    return by_name


def _read_annotations(path: str, video_names: list[str], skipped: Sequence[str] = ()) -> tuple[list[str], list[int]]:
    """Captions and the index of each caption's video in `video_names`; captions of `skipped` videos (left out
    because they could not be decoded) are dropped with a warning."""
    entries = json.loads(Path(path).read_text())
    required = {"video", "caption"}
    well_formed = isinstance(entries, list) and all(isinstance(e, dict) and required <= set(e) for e in entries)
    if not well_formed:
        raise ValueError(f'{path} must be a JSON list of {{"video": ..., "caption": ...}} objects')
    by_name, left_out = _names_index(video_names), _names_index(skipped)
    captions, truth = [], []
    for entry in entries:
        if entry["video"] in left_out and entry["video"] not in by_name:
            logger.warning("Caption %r left out: its video %s could not be decoded.", entry["caption"], entry["video"])
            continue
        if entry["video"] not in by_name:
            raise ValueError(f"Annotation video {entry['video']!r} is not among the given videos")
        captions.append(str(entry["caption"]))
        truth.append(by_name[entry["video"]])
    return captions, truth


# what each printed list is ordered by: the score shown first next to each hit
ORDER_DESCRIPTIONS = {
    "cosine": "ordered by cosine similarity (cos)",
    "reranked": "ordered by the matching head's match logit (match) among the re-ranked candidates, then by cosine "
    "(cos) for the rest",
}
# the matching head of each modality and the name its logit has in printed lists (video keeps the plain `match`)
MATCH_SCORE_NAMES = {"video": "match", "audio": "atm", "audio_video": "avtm"}
_HEAD_DESCRIPTIONS = {
    "audio": "the audio-text matching head's match logit (atm)",
    "audio_video": "the audio+video-text matching head's match logit (avtm)",
}


def order_description(label: str, modality: str = "video") -> str:
    """What a printed list is ordered by, naming the score (and, for audio modalities, the head)."""
    if label == "reranked" and modality in _HEAD_DESCRIPTIONS:
        return f"ordered by {_HEAD_DESCRIPTIONS[modality]} among the re-ranked candidates, then by cosine (cos) for the rest"
    return ORDER_DESCRIPTIONS[label]


def _shown_hit(hit: dict, modality: str = "video") -> str:
    """`name (match=..., cos=...)` for re-ranked hits (`atm=` / `avtm=` for the audio heads), `name (cos=...)`
    otherwise: the ranking score first."""
    scores = f"cos={hit['similarity']:.3f}"
    if hit.get("match_logit") is not None:
        scores = f"{MATCH_SCORE_NAMES[modality]}={hit['match_logit']:.3f}, {scores}"
    return f"{Path(hit['name']).name} ({scores})"


def reranking_hurts(model_path: str | os.PathLike) -> bool:
    """Whether the folder's `metrics.json` records that matching-head re-ranking does not beat cosine retrieval
    (`metrics.reranking_helps` false, as the matching-head tuning step writes); False when nothing is recorded."""
    path = Path(model_path) / "metrics.json"
    if not path.is_file():
        return False
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    metrics = recorded.get("metrics", {}) if isinstance(recorded, dict) else {}
    return metrics.get("reranking_helps") is False


def _is_clip_folder(model_path) -> bool:
    return is_clip_config(AutoConfig.from_pretrained(model_path))


def _rerank_for_modality(model_path, modality: str, rerank: bool, asked: bool | None) -> bool:
    """Audio modalities: re-rank only where the folder has the modality's head; asking for it otherwise is an error
    (checked on the config, before loading the weights)."""
    config = AutoConfig.from_pretrained(model_path)
    require_modality(config, modality, Path(model_path).name)
    if modality != "audio" or not rerank or getattr(config, "use_audio_matching_head", False):
        return rerank
    if asked:
        raise ValueError(f"--rerank --modality audio needs an audio-text matching head (atm_head), which "
                         f"{Path(model_path).name} does not have (the released 6B checkpoint has none): rank by "
                         "cosine similarity (--no-rerank).")  # fmt: skip
    print(f"note: {Path(model_path).name} has no audio-text matching head (atm_head): audio is ranked by cosine "
          "similarity.", file=sys.stderr)  # fmt: skip
    return False


def retrieve_main(argv: Sequence[str] | None = None) -> int:
    """`internvideo2 retrieve --model DIR --videos ... --captions ... [--modality audio|video|audio_video]`; prints
    the rankings, returns the exit code."""
    parser = build_retrieve_parser()
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error("--model is required here (`internvideo2 retrieve` defaults to the bundled model)")
    if args.output:  # checked before any work; written atomically at the end
        prepare_output(args.output, (".json",), overwrite=args.overwrite)
    modality = args.modality
    video_paths = list_videos(args.videos, media_extensions(modality))
    if modality == "audio_video":
        refuse_audio_files_for_audio_video(video_paths)
    rerank = args.rerank is not False
    if args.rerank is None and rerank and reranking_hurts(args.model):
        print(f"warning: {Path(args.model).name}'s metrics.json records that matching-head re-ranking does not beat "
              "cosine similarity for this model: ranking by cosine (pass --rerank to re-rank anyway).", file=sys.stderr)  # fmt: skip
        rerank = False
    if rerank and _is_clip_folder(args.model):
        print("note: InternVideo2-CLIP models rank by cosine similarity only (no matching head), as the original.")
        rerank = False
    rerank = _rerank_for_modality(args.model, modality, rerank, args.rerank)
    model, processor = load_model_and_processor(
        args.model, need_matching_head=rerank, device=resolve_device(args.device), dtype=_dtype(args.dtype)
    )
    if args.annotations:  # read (and checked against the given videos) before any decoding
        _read_annotations(args.annotations, video_paths)
    videos = embed_videos(
        model, processor, video_paths, args.video_batch_size, args.num_frames, keep_tokens=rerank,
        progress=not args.no_progress, on_error=args.on_error, modality=modality,
    )  # fmt: skip
    for name, reason in videos.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for name in videos.no_audio_track:
        print(f"note: {Path(name).name} has no audio track: its audio features are all zeros (as in the original "
              "InternVideo2), so its audio scores say nothing about its content")  # fmt: skip
    truth = None
    if args.annotations:
        captions, truth = _read_annotations(args.annotations, videos.names, skipped=[n for n, _ in videos.skipped])
    elif args.captions_file:
        captions = [line.strip() for line in Path(args.captions_file).read_text().splitlines() if line.strip()]
    else:
        captions = list(args.captions)
    results = retrieve(
        model,
        processor,
        videos,
        captions,
        rerank=rerank,
        rerank_k=args.rerank_k,
        video_batch_size=args.video_batch_size,
        text_batch_size=args.text_batch_size,
        num_frames=args.num_frames,
        progress=not args.no_progress,
        modality=modality,
    )
    report = {"modality": modality, "text_to_video": {}, "video_to_text": {}}
    if modality != "video":
        report["no_audio_track"] = list(videos.no_audio_track)
    media = modality_label(modality)
    for label, ranked in (("cosine", False), ("reranked", True)):
        if ranked and not results.has_rerank:
            continue
        t2v = results.text_to_video(args.top_k, reranked=ranked)
        v2t = results.video_to_text(args.top_k, reranked=ranked)
        report["text_to_video"][label] = {caption: hits for caption, hits in zip(results.captions, t2v)}
        report["video_to_text"][label] = {name: hits for name, hits in zip(results.video_names, v2t)}
        print(f"== text -> {media} ({label}) == {order_description(label, modality)}")
        for caption, hits in zip(results.captions, t2v):
            print(f"{caption!r}: " + ", ".join(_shown_hit(h, modality) for h in hits))
        if truth is not None:
            metrics = results.metrics(truth, reranked=ranked)
            report.setdefault("metrics", {})[label] = metrics
            print(f"metrics ({label}): " + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    if args.output:
        with atomic_write(args.output, "w") as stream:
            json.dump(report, stream, indent=2)
        print(f"wrote {args.output}")
    if videos.skipped:
        print(f"retrieved over {len(videos.names)} of {len(video_paths)} videos; skipped {len(videos.skipped)}: "
              + ", ".join(name for name, _ in videos.skipped), file=sys.stderr)  # fmt: skip
        return EXIT_SKIPPED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(retrieve_main())

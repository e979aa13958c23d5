"""Audio–video–text alignment in miniature: the shapes world with sound, on a CPU in minutes.

    python -m transformers_internvideo2.shapes_world.recipes.audio_video_text --output-dir runs/shapes-av

The shapes world's sound carries something the frames never show: the shape's **material** (rubber, wooden, metal,
glass), heard as the pitch of a hum, plus clicks when the shape starts and stops moving (see
`shapes_world.generator.render_audio`). This recipe gives the bundled `shapes-video-text` model (vision and text
towers, kept) a tiny BEATs audio encoder and trains InternVideo2's stage-2 audio objectives on 1-second clips:

* **audio batches** (captions = what is heard, "a metal hum, clicks at the start and in the middle"): audio–text
  contrastive (ATC);
* **audio+video batches** (captions = what is seen plus the material, "a red metal circle moves left then grows"):
  fused audio+video–text contrastive (AVTC), video–text contrastive (VTC) and matching (VTM).

Batches alternate between the two kinds (the stage-2 forward takes one caption per clip, and the two objectives want
different captions); both go through [`InternVideo2VideoTextTrainer`] with its `*_loss_weight` arguments, switched per
batch kind.

Model choices (the 6B structure, tiny sizes): BEATs with 2 post-norm layers of width 64 over a 1-s filterbank
(`BeatsFeatureExtractor(max_length_seconds=1.0)`: 98 frames x 64 mel bins -> 6 x 4 = 24 patch tokens);
`use_vision_token_projection=True` (the original's `av_concat` width, required with audio) at the video width, so
the text fusion layer keeps its input size; the audio+video fusion `Linear(2p -> p)` starts as "take the video
projection" (identity on the video half, zeros on the audio half), so the fused feature starts at video–text
quality and learns what the audio adds.

Held-out metrics (test split, seeds never seen in training; numbers are those of the saved, reloaded model):

* **audio–text**: each held-out clip's audio against the 12 possible audio captions (4 materials x 3 click
  patterns): audio-to-text R@1 (chance 1/12) and text-to-audio R@1 (a caption's top clip has that caption);
* **captions that mention the sound** (`av_caption`), `retrieval_clips` held-out clips with distinct captions:
  text-to-video R@1 with the video feature alone vs text-to-(audio+video) R@1 with the fused feature;
* **material contrast set**: `contrast_scenes` held-out scenes, each rendered with all four materials (identical
  frames, different sound): here video alone cannot do better than 1 in 4, whatever it learns.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ...models.beats import BeatsFeatureExtractor
from ...models.internvideo2_video_text.configuration_internvideo2_video_text import InternVideo2Config
from ...models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
from ...models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from ...tasks.metrics import retrieval_metrics
from ...tasks.retrieval import rerank_with_matching_head
from ...training import InternVideo2VideoTextArguments, InternVideo2VideoTextTrainer
from ..bundled import AUDIO_REPRODUCE_COMMAND, BUNDLED_AUDIO_VIDEO_TEXT, load_bundled_video_text
from ..bundled.hub_export import strip_code
from ..generator import (
    _CLICK_PLACES,
    AUDIO_SAMPLING_RATE,
    MATERIAL_PITCH_HZ,
    MATERIALS,
    SPLIT_SEED_OFFSETS,
    render_audio,
    render_clip,
    sample_clip_spec,
    video_to_pixel_values,
)
from . import StageClock, add_setting_options, apply_setting_options, recipe_argument_parser
from .three_stage import _common_args, _save, caption_id


__all__ = [
    "AudioRecipeSettings",
    "AudioRecipeResult",
    "AudioClips",
    "audio_caption_vocabulary",
    "audio_text_evaluation",
    "audio_video_text_evaluation",
    "build_audio_video_text_model",
    "heldout_sets",
    "render_clips",
    "run",
    "write_bundle",
    "main",
]

AUDIO_VIDEO_TEXT_DIR = "shapes-audio-video-text"


@dataclass
class AudioRecipeSettings:
    """Everything that decides a run (saved next to the model). The defaults are the bundled model's run."""

    seed: int = 0
    fps: int = 8  # frames per second of the clips: 8 frames = 1 s of sound
    train_clips: int = 3000
    audio_eval_clips: int = 240  # held-out clips for audio-text retrieval over the 12 audio captions
    retrieval_clips: int = 100  # held-out clips with distinct audio+video captions
    contrast_scenes: int = 25  # held-out scenes x 4 materials
    steps: int = 700
    batch_size: int = 32
    learning_rate: float = 5e-4  # the new (audio) parts
    tower_learning_rate: float = 1e-4  # the pretrained vision and text towers
    audio_hidden_size: int = 64
    audio_layers: int = 2
    audio_heads: int = 4
    audio_patch_embed_dim: int = 64
    # torch threads: the matrices are tiny, and on a shared CPU extra intra-op threads cost more than they give
    threads: int | None = 1

    @classmethod
    def quick(cls) -> "AudioRecipeSettings":
        """A smoke-test configuration (seconds, meaningless metrics)."""
        return cls(train_clips=48, audio_eval_clips=24, retrieval_clips=12, contrast_scenes=3, steps=4, batch_size=8)

    @property
    def audio_seconds(self) -> float:
        return 8 / self.fps  # the bundled video-text model reads 8 frames


@dataclass
class AudioRecipeResult:
    settings: dict
    metrics: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    model_dir: str | None = None


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class AudioClips:
    """Clips rendered into memory: pixel values `(N, T, 3, H, W)`, filterbanks `(N, frames, mel bins)` and the
    three captions of each clip, plus its material."""

    pixel_values: torch.Tensor
    input_features: torch.Tensor
    captions: list[str]
    audio_captions: list[str]
    av_captions: list[str]
    materials: list[str]

    def __len__(self) -> int:
        return len(self.captions)


def render_clips(specs, feature_extractor, fps: int = 8) -> AudioClips:
    """Frames and sound of `specs` (shapes-world clip specs with sound attributes), through `feature_extractor`."""
    pixel_values = torch.stack([video_to_pixel_values(render_clip(spec)) for spec in specs])
    waveforms = [render_audio(spec, fps, AUDIO_SAMPLING_RATE) for spec in specs]
    # one filterbank is a few tiny tensor ops: with several intra-op threads on a busy CPU, waking the threads costs
    # far more than the work (measured: 0.46 s per clip with 2 threads under load, 8 ms with 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        features = feature_extractor(waveforms, sampling_rate=AUDIO_SAMPLING_RATE, return_tensors="pt").input_features
    finally:
        torch.set_num_threads(threads)
    return AudioClips(pixel_values, features, [s.caption for s in specs], [s.audio_caption for s in specs],
                      [s.av_caption for s in specs], [s.material for s in specs])  # fmt: skip


def _split_specs(split: str, start: int, count: int, image_size: int = 32, num_frames: int = 8):
    return [sample_clip_spec(SPLIT_SEED_OFFSETS[split] + start + i, num_frames, image_size, image_size)
            for i in range(count)]  # fmt: skip


def with_material(spec, material: str):
    """The same clip made of another material: same frames and clicks, the hum at that material's pitch (the clip's
    own jitter kept)."""
    ratio = spec.pitch_hz / MATERIAL_PITCH_HZ[spec.material]
    return dataclasses.replace(spec, material=material, pitch_hz=MATERIAL_PITCH_HZ[material] * ratio)


def _first_distinct(start: int, count: int, key) -> tuple[list, int]:
    """The first `count` test clips from index `start` whose `key(spec)` all differ, and the index after the last."""
    chosen, seen = [], set()
    while len(chosen) < count:
        spec = _split_specs("test", start, 1)[0]
        start += 1
        if key(spec) not in seen:
            seen.add(key(spec))
            chosen.append(spec)
    return chosen, start


def heldout_sets(settings: AudioRecipeSettings, feature_extractor) -> dict[str, AudioClips]:
    """The three held-out sets (test split, consecutive seed blocks): `audio` (first `audio_eval_clips` clips),
    `distinct` (the next clips whose audio+video captions all differ, `retrieval_clips` of them) and `contrast`
    (the next `contrast_scenes` clips with distinct seen captions, each in all four materials)."""
    audio = _split_specs("test", 0, settings.audio_eval_clips)
    distinct, start = _first_distinct(settings.audio_eval_clips, settings.retrieval_clips, lambda s: s.av_caption)
    scenes, _ = _first_distinct(start, settings.contrast_scenes, lambda s: s.caption)
    contrast = [with_material(spec, material) for spec in scenes for material in MATERIALS]
    return {name: render_clips(specs, feature_extractor, settings.fps)
            for name, specs in (("audio", audio), ("distinct", distinct), ("contrast", contrast))}  # fmt: skip


class _ClipRows(torch.utils.data.Dataset):
    def __init__(self, clips: AudioClips):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        c = self.clips
        return {"pixel_values": c.pixel_values[index], "input_features": c.input_features[index],
                "audio_caption": c.audio_captions[index], "av_caption": c.av_captions[index]}  # fmt: skip


class AlternatingCaptionCollator:
    """Batches alternate between the two kinds: even batches carry the audio+video captions (`caption_kind` "av"),
    odd ones the audio captions ("audio"). Clips with the same caption are positives of each other (`sample_ids`),
    which matters for audio captions: there are only 12 of them."""

    def __init__(self, processor):
        self.processor, self.batches = processor, 0

    def __call__(self, rows: list[dict]) -> dict:
        kind = "av" if self.batches % 2 == 0 else "audio"
        self.batches += 1
        captions = [row[f"{kind}_caption"] for row in rows]
        text = self.processor.tokenize(captions, padding="longest")
        return {
            "pixel_values": torch.stack([row["pixel_values"] for row in rows]),
            "input_features": torch.stack([row["input_features"] for row in rows]),
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
            "sample_ids": torch.tensor([caption_id(c) for c in captions], dtype=torch.long),
            "caption_kind": kind,
        }


# the loss weights of each batch kind; every other weight is 0
BATCH_KIND_LOSS_WEIGHTS = {"av": {"vtc": 1.0, "vtm": 1.0, "avtc": 1.0}, "audio": {"atc": 1.0}}


def _trainer_class():
    class AlternatingCaptionTrainer(InternVideo2VideoTextTrainer):
        """The stage-2 Trainer with per-batch-kind loss weights ([`BATCH_KIND_LOSS_WEIGHTS`]): a batch's
        `caption_kind` says which captions it carries and so which losses make sense for it."""

        _caption_kind = "av"

        def _weights(self) -> dict[str, float]:
            weights = super()._weights()
            chosen = BATCH_KIND_LOSS_WEIGHTS[self._caption_kind]
            return {name: chosen.get(name, 0.0) for name in weights}

        def _record_loss_components(self, components):
            # the forward computes VTC and VTM for every batch; log only the losses this batch kind trains
            weights = self._weights()
            super()._record_loss_components({name: value for name, value in components.items() if weights[name]})

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self._caption_kind = inputs.get("caption_kind", "av")
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return AlternatingCaptionTrainer


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------
def audio_feature_extractor(settings: AudioRecipeSettings):
    return BeatsFeatureExtractor(max_length_seconds=settings.audio_seconds)


def build_audio_video_text_model(settings: AudioRecipeSettings, video_text_model):
    """An audio-video-text [`InternVideo2ForRetrieval`]: the config and every weight of `video_text_model` (checked
    strictly: only the new audio parts and the new video-token projection are left to initialise) plus a tiny
    BEATs."""
    source = video_text_model.config.to_dict()
    for key in ("architectures", "auto_map", "model_type", "transformers_version", "dtype"):
        source.pop(key, None)
    width = video_text_model.config.vision_config.hidden_size
    source.update(
        use_vision_token_projection=True, vision_token_projection_size=width,
        audio_config=dict(
            num_mel_bins=64, patch_size=16, patch_embed_dim=settings.audio_patch_embed_dim,
            hidden_size=settings.audio_hidden_size, num_hidden_layers=settings.audio_layers,
            num_attention_heads=settings.audio_heads, intermediate_size=4 * settings.audio_hidden_size,
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, num_buckets=32, max_distance=64,
            layerdrop=0.0,  # two layers: dropping one would remove half the encoder
        ),
    )  # fmt: skip
    config = InternVideo2Config(**source)
    torch.manual_seed(settings.seed)
    model = InternVideo2ForRetrieval(config)
    missing, unexpected = model.load_state_dict(video_text_model.state_dict(), strict=False)
    new_prefixes = ("internvideo2.audio_", "internvideo2.vision_token_projection.", "audio_video_matching_head.")
    if unexpected or any(not key.startswith(new_prefixes) for key in missing):
        raise RuntimeError(f"video-text -> audio-video-text: unexpected {unexpected}, "
                           f"missing {[k for k in missing if not k.startswith(new_prefixes)]}")  # fmt: skip
    # the fused feature starts as the video projection alone and learns what the audio adds
    fusion = model.internvideo2.audio_video_fusion
    projection = config.projection_dim
    with torch.no_grad():
        fusion.weight.zero_()
        fusion.weight[:, projection:].copy_(torch.eye(projection))
        fusion.bias.zero_()
    model.tie_weights()
    return model


def make_processor(video_text_processor, feature_extractor):
    return InternVideo2Processor(
        video_processor=video_text_processor.video_processor, tokenizer=video_text_processor.tokenizer,
        max_length=video_text_processor.max_length, feature_extractor=feature_extractor,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------------
def audio_caption_vocabulary() -> list[str]:
    """The 12 audio captions of the world (4 materials x 3 click patterns), in a fixed order."""
    patterns = ((0, 1), (1, 2), (0, 2))  # motion first / second / alone
    return [f"a {m} hum, clicks {_CLICK_PLACES[a]} and {_CLICK_PLACES[b]}" for m in MATERIALS for a, b in patterns]


def _text_embeds(model, processor, captions: list[str]) -> torch.Tensor:
    text = processor.tokenize(captions, padding="longest")
    return model.get_text_features(text["input_ids"], text["attention_mask"]).pooler_output


@torch.no_grad()
def audio_text_evaluation(model, processor, clips: AudioClips) -> dict:
    """Audio-text retrieval of `clips` against the 12 audio captions: `a2t_r1` (the clip's caption ranked first;
    chance 1/12), `t2a_r1` (a caption's top clip has that caption), `material_accuracy` (the top caption names the
    right material; chance 1/4), in percent."""
    model.eval()
    vocabulary = audio_caption_vocabulary()
    unknown = sorted(set(clips.audio_captions) - set(vocabulary))
    if unknown:
        raise ValueError(f"Audio captions outside the world's 12: {unknown}")
    audio = model.get_audio_features(clips.input_features).pooler_output
    similarity = audio @ _text_embeds(model, processor, vocabulary).t()  # (clips, 12)
    owners = [[i for i, c in enumerate(clips.audio_captions) if c == caption] for caption in vocabulary]
    present = [j for j, o in enumerate(owners) if o]  # a small set may miss a caption: rank among those present
    metrics = retrieval_metrics(similarity[:, present], [owners[j] for j in present], ks=(1,))
    top = similarity.argmax(-1)
    material_hits = [vocabulary[int(t)].split()[1] == m for t, m in zip(top, clips.materials)]
    return {"a2t_r1": metrics["v2t_r1"], "t2a_r1": metrics["t2v_r1"], "chance_r1": 100.0 / len(present),
            "material_accuracy": 100.0 * float(np.mean(material_hits)), "num_clips": len(clips)}  # fmt: skip


@torch.no_grad()
def audio_video_text_evaluation(model, processor, clips: AudioClips) -> dict:
    """Retrieval of `clips` (caption i = `av_captions[i]`, describes clip i) with the video feature alone and with the
    fused audio+video feature: `{video,audio_video}_{t2m,m2t}_r{1,5,10}` in percent, and `chance_r1`."""
    model.eval()
    text = _text_embeds(model, processor, clips.av_captions)
    media = {
        "video": model.get_video_features(clips.pixel_values).pooler_output,
        "audio_video": model.get_audio_video_features(clips.input_features, clips.pixel_values).pooler_output,
    }
    metrics = {"num_clips": len(clips), "chance_r1": 100.0 / len(clips)}
    for name, embeds in media.items():
        recall = retrieval_metrics(embeds @ text.t())
        for k in (1, 5, 10):
            metrics[f"{name}_t2m_r{k}"] = recall[f"t2v_r{k}"]
            metrics[f"{name}_m2t_r{k}"] = recall[f"v2t_r{k}"]
    return metrics


@torch.no_grad()
def reranking_evaluation(model, processor, clips: AudioClips, rerank_k: int = 16) -> dict:
    """Text-to-clip R@1 of `clips` (caption i = `av_captions[i]`) after matching-head re-ranking of the top `rerank_k`,
    for the video modality (`matching_head`) and the audio+video one (`audio_video_matching_head`), next to cosine;
    `reranking_helps` says whether re-ranking beats cosine in both (what `internvideo2 retrieve` reads from
    `metrics.json` to choose its default)."""
    model.eval()
    text = processor.tokenize(clips.av_captions, padding="longest")
    text_embeds = model.get_text_features(text["input_ids"], text["attention_mask"]).pooler_output
    video = model.get_video_features(clips.pixel_values)
    fused = model.get_audio_video_features(clips.input_features, clips.pixel_values)
    memories = {"video": (video.pooler_output, model.fusion_tokens(video.last_hidden_state)),
                "audio_video": (fused.pooler_output, fused.last_hidden_state)}  # fmt: skip
    metrics = {}
    for modality, (embeds, memory) in memories.items():
        similarity = embeds @ text_embeds.t()
        reranked = rerank_with_matching_head(model, similarity, memory, text["input_ids"], text["attention_mask"],
                                             k=min(rerank_k, len(clips)), modality=modality)  # fmt: skip
        metrics[f"{modality}_reranked_t2m_r1"] = retrieval_metrics(reranked.video_to_text, sim_t2v=reranked.text_to_video)["t2v_r1"]
        metrics[f"{modality}_cosine_t2m_r1"] = retrieval_metrics(similarity)["t2v_r1"]
    metrics["reranking_helps"] = all(metrics[f"{m}_reranked_t2m_r1"] > metrics[f"{m}_cosine_t2m_r1"] for m in memories)
    return metrics


def evaluate(model, processor, sets: dict[str, AudioClips]) -> dict:
    metrics = {f"audio_text_{k}": v for k, v in audio_text_evaluation(model, processor, sets["audio"]).items()}
    for name in ("distinct", "contrast"):
        results = audio_video_text_evaluation(model, processor, sets[name])
        metrics.update({f"{name}_{k}": v for k, v in results.items()})
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------
def run(output_dir: str | os.PathLike, settings: AudioRecipeSettings | None = None, log=print,
        video_text_dir: str | os.PathLike | None = None) -> AudioRecipeResult:  # fmt: skip
    """Train and write `<output_dir>/shapes-audio-video-text` and `<output_dir>/metrics.json`. `video_text_dir`: the
    video-text model to start from (default: the bundled `shapes-video-text`). Runs with `settings.threads` torch
    threads (restored afterwards)."""
    settings = settings or AudioRecipeSettings()
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _run(Path(output_dir), settings, log, video_text_dir)
    finally:
        torch.set_num_threads(threads)


def _run(output_dir: Path, settings: AudioRecipeSettings, log, video_text_dir) -> AudioRecipeResult:
    result = AudioRecipeResult(settings=asdict(settings))
    lap = StageClock(result.seconds).lap

    video_text, video_text_processor = load_bundled_video_text(folder=video_text_dir)
    extractor = audio_feature_extractor(settings)
    processor = make_processor(video_text_processor, extractor)
    train = render_clips(_split_specs("train", 0, settings.train_clips), extractor, settings.fps)
    sets = heldout_sets(settings, extractor)
    log(f"data: {len(train)} training clips with sound ({settings.audio_seconds:g} s, fbank "
        f"{tuple(train.input_features.shape[1:])}); held-out: {', '.join(f'{k} {len(v)}' for k, v in sets.items())}")
    lap("data")

    model = build_audio_video_text_model(settings, video_text)
    before = evaluate(model, processor, sets)
    new_prefixes = ("internvideo2.audio_", "internvideo2.vision_token_projection.", "audio_video_matching_head.")
    groups: dict[tuple[float, float], list] = {}
    for name, parameter in model.named_parameters():
        lr = settings.learning_rate if name.startswith(new_prefixes) else settings.tower_learning_rate
        groups.setdefault((lr, 0.05 if parameter.ndim > 1 else 0.0), []).append(parameter)
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                  betas=(0.9, 0.98))  # fmt: skip
    args = InternVideo2VideoTextArguments(
        **_common_args(output_dir / "work", settings, settings.steps, settings.learning_rate,
                       video_mask_ratio=0.25, mlm_loss_weight=0.0, avtm_loss_weight=0.0, avmlm_loss_weight=0.0),
    )  # fmt: skip
    trainer = _trainer_class()(model=model, args=args, train_dataset=_ClipRows(train),
                               data_collator=AlternatingCaptionCollator(processor), optimizers=(optimizer, None))  # fmt: skip
    trainer.train()
    lap("train")
    logs = trainer.state.log_history
    for name in ("atc", "avtc", "vtc", "vtm"):
        values = [entry[f"loss_{name}"] for entry in logs if f"loss_{name}" in entry]
        if values:
            result.metrics[f"loss_{name}_first"], result.metrics[f"loss_{name}_last"] = values[0], values[-1]

    model_dir = output_dir / AUDIO_VIDEO_TEXT_DIR
    _save(model, processor, model_dir, half_precision=True)
    reloaded = InternVideo2ForRetrieval.from_pretrained(model_dir, dtype=torch.float32).eval()
    reloaded_processor = InternVideo2Processor.from_pretrained(model_dir)
    result.metrics.update(evaluate(reloaded, reloaded_processor, sets))
    # recorded so that `internvideo2 retrieve` knows whether to re-rank by default (`reranking_helps`)
    result.metrics.update(reranking_evaluation(reloaded, reloaded_processor, sets["distinct"]))
    result.metrics.update({f"before_{k}": v for k, v in before.items() if not k.endswith(("num_clips", "chance_r1"))})
    lap("save_and_evaluate")
    result.seconds["total"] = round(sum(result.seconds.values()), 1)
    result.model_dir = str(model_dir)
    (output_dir / "metrics.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    m = result.metrics
    log(f"audio-text R@1 {m['audio_text_a2t_r1']:.1f}% (chance {m['audio_text_chance_r1']:.1f}%, before "
        f"{m['before_audio_text_a2t_r1']:.1f}%); captions with the sound, text->video R@1 "
        f"{m['distinct_video_t2m_r1']:.1f}% vs text->audio+video {m['distinct_audio_video_t2m_r1']:.1f}%; material "
        f"contrast set {m['contrast_video_t2m_r1']:.1f}% vs {m['contrast_audio_video_t2m_r1']:.1f}%")  # fmt: skip
    log(json.dumps(result.metrics, indent=2))
    return result


_CARD = """# shapes-audio-video-text (bundled with transformers-internvideo2)

A tiny stage-2 audio-video-text `InternVideo2ForRetrieval` ({params:.2f} M parameters) with its
`InternVideo2Processor` (video processor, pruned uncased WordPiece tokenizer, and a `BeatsFeatureExtractor` for 1 s
of 16 kHz sound: 98 x 64 filterbank frames). It is the bundled `shapes-video-text` model (vision and text towers,
weights taken over) with a **tiny BEATs audio encoder** ({audio_layers} post-norm layers of width {audio_width},
patch 16 -> 24 tokens for 1 s), the original 6B model's audio projection, audio+video fusion and video/audio token
projections, trained on the shapes world with sound: the shape's **material** (rubber / wooden / metal / glass) is
only heard, as the pitch of a hum, and clicks sound when the shape starts and stops moving.

Training ({steps} steps of {batch} clips, {train_clips} training clips): batches alternate between audio captions
("a metal hum, clicks at the start and in the middle") with audio-text contrastive learning (ATC), and captions of
what is seen plus the material ("a red metal circle moves left then grows") with audio+video-text contrastive
(AVTC), video-text contrastive (VTC) and video-text matching (VTM). Weights are stored in float16 (loaded into
float32).

## Held-out metrics (test split; cosine similarity of the projected embeddings)

| metric | before training | this model | chance |
| --- | --- | --- | --- |
| audio -> text R@1 over the 12 audio captions ({audio_n} clips) | {b_a2t:.1f} % | **{a2t:.1f} %** | {a_chance:.1f} % |
| text -> audio R@1 (12 captions, {audio_n} clips) | {b_t2a:.1f} % | {t2a:.1f} % | |
| material from the top audio caption | {b_material:.1f} % | {material:.1f} % | 25 % |
| captions with the material, {n} clips, text -> **video** R@1 | {b_v:.1f} % | {v:.1f} % | {chance:.1f} % |
| same captions, text -> **audio+video** R@1 | {b_av:.1f} % | **{av:.1f} %** | {chance:.1f} % |
| material contrast set ({scenes} scenes x 4 materials), text -> video R@1 | {b_cv:.1f} % | {cv:.1f} % | {c_chance:.1f} % |
| same set, text -> audio+video R@1 | {b_cav:.1f} % | **{cav:.1f} %** | {c_chance:.1f} % |

"Before training" is the same model before this recipe: the video-text towers of `shapes-video-text` with the new,
untrained audio parts (the fused feature starts as the video feature). In the contrast set the four versions of a
scene have identical frames, so video alone cannot tell them apart (ties count against it); only the sound can.

{status}

## Usage

```python
from transformers_internvideo2.shapes_world.bundled import load_bundled_audio_video_text
from transformers_internvideo2.shapes_world.generator import render_audio, sample_clip_spec

model, processor = load_bundled_audio_video_text()
waveform = render_audio(sample_clip_spec(20_000_000))  # 1 s, 16 kHz
audio = model.get_audio_features(processor(audio=waveform, sampling_rate=16000)["input_features"]).pooler_output
text = processor.tokenize(["a metal hum, clicks at the start and in the middle"], padding="longest")
similarity = audio @ model.get_text_features(text["input_ids"], text["attention_mask"]).pooler_output.T
```

`get_audio_video_features(input_features, pixel_values)` gives the fused audio+video feature. Rank by cosine
similarity: the matching heads are not used for these numbers. VTM was part of the loss but did not decrease
({vtm_first:.3f} -> {vtm_last:.3f}, as in `shapes-video-text`), and the audio+video matching head was never trained:
re-ranking the top 16 by the matching heads gives text -> video R@1 {rr_v:.1f} % and text -> audio+video
{rr_av:.1f} % on the {n} clips above (cosine: {v:.1f} % / {av:.1f} %), so `metrics.json` records
`reranking_helps: {rr_helps}` and `internvideo2 retrieve` orders by cosine unless `--rerank` is given.

## What it can and cannot do

It knows the shapes world only: one coloured shape on a plain background, 8 frames of 32x32, 1 s of synthetic sound
(a hum and two clicks). On real audio or video its similarities carry no meaning; the code path (BEATs filterbank,
audio, audio+video and text features) is the real one.

## Reproduce

```bash
{command}
```

Settings: `{settings}`. Training time on the recording machine: {seconds} s in total (CPU, shared).
"""


def write_bundle(result: AudioRecipeResult, target_dir: str | os.PathLike) -> Path:
    """Write the trained folder, ready to ship, into `target_dir` (the run's `bundle/` folder) with its model card
    and `metrics.json`. Installing it into a source checkout is the separate step `scripts/install_bundled.py`."""
    destination = Path(target_dir) / BUNDLED_AUDIO_VIDEO_TEXT
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(result.model_dir, destination)
    strip_code(destination)  # bundled folders hold no code copies and no auto_map
    with safe_open(str(destination / "model.safetensors"), "pt") as handle:
        params = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys()) / 1e6
    m, s = result.metrics, result.settings
    beats_audio = m["audio_text_a2t_r1"] >= 3 * m["audio_text_chance_r1"]
    beats_video = m["distinct_audio_video_t2m_r1"] > m["distinct_video_t2m_r1"]
    status = (
        f"In this run audio-text retrieval {'is' if beats_audio else 'is NOT'} well above chance (at least 3x), and\n"
        f"audio+video-text retrieval {'beats' if beats_video else 'does NOT beat'} video-text alone on the captions that "
        "mention the sound."
    )
    card = _CARD.format(
        params=params, audio_layers=s["audio_layers"], audio_width=s["audio_hidden_size"], steps=s["steps"],
        batch=s["batch_size"], train_clips=s["train_clips"], audio_n=m["audio_text_num_clips"],
        a2t=m["audio_text_a2t_r1"], b_a2t=m["before_audio_text_a2t_r1"], t2a=m["audio_text_t2a_r1"],
        b_t2a=m["before_audio_text_t2a_r1"], a_chance=m["audio_text_chance_r1"],
        material=m["audio_text_material_accuracy"], b_material=m["before_audio_text_material_accuracy"],
        n=m["distinct_num_clips"], chance=m["distinct_chance_r1"], v=m["distinct_video_t2m_r1"],
        b_v=m["before_distinct_video_t2m_r1"], av=m["distinct_audio_video_t2m_r1"],
        b_av=m["before_distinct_audio_video_t2m_r1"], scenes=s["contrast_scenes"], c_chance=m["contrast_chance_r1"],
        cv=m["contrast_video_t2m_r1"], b_cv=m["before_contrast_video_t2m_r1"], cav=m["contrast_audio_video_t2m_r1"],
        b_cav=m["before_contrast_audio_video_t2m_r1"], status=status, command=AUDIO_REPRODUCE_COMMAND,
        settings=json.dumps(s), seconds=result.seconds.get("total"), vtm_first=m["loss_vtm_first"],
        vtm_last=m["loss_vtm_last"], rr_v=m["video_reranked_t2m_r1"], rr_av=m["audio_video_reranked_t2m_r1"],
        rr_helps=json.dumps(m["reranking_helps"]),
    )  # fmt: skip
    (destination / "README.md").write_text(card)
    record = {"settings": s, "metrics": m, "seconds": result.seconds, "command": AUDIO_REPRODUCE_COMMAND}
    (destination / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    return destination


def main(argv=None) -> int:
    parser = recipe_argument_parser("transformers_internvideo2.shapes_world.recipes.audio_video_text",
                                    "Train a tiny audio-video-text InternVideo2 on the shapes world with sound (CPU, minutes).",
                                    default_threads="1")  # fmt: skip
    parser.add_argument("--video-text-dir", default=None, help="video-text model to start from (default: bundled)")
    options = ("steps", "train_clips", "batch_size")
    add_setting_options(parser, options)
    args = parser.parse_args(argv)
    settings = AudioRecipeSettings.quick() if args.quick else AudioRecipeSettings()
    settings.seed = args.seed
    if args.threads is not None:
        settings.threads = args.threads
    apply_setting_options(settings, args, options)
    result = run(args.output_dir, settings, video_text_dir=args.video_text_dir)
    folder = write_bundle(result, Path(args.output_dir) / "bundle")
    print(f"bundle written: {folder} (install into a source checkout: python scripts/install_bundled.py {folder})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Matching-head tuning: the step after stage 2 that makes matching-head re-ranking earn its place.

In the laptop-scale stage 2 (`three_stage`) the VTM loss barely moves (0.659 -> 0.637, i.e. the head predicts the
1-in-3 base rate of its positive / 2-negatives batches), so re-ranking the cosine top-k with it scrambles the order
(text-to-video R@1 far below cosine). In the original recipe VTM is trained for a long time with hard negatives and
re-ranking improves retrieval. This step trains only what re-ranking uses, the fusion (cross-attention) layers of the
text encoder and the matching head, with the model's own VTM loss and hard-negative sampling
(`InternVideo2ForRetrieval.matching_loss`, negatives drawn from the softmax of the in-batch similarity, positives
excluded by caption id). The vision and text towers and the projections stay frozen, so cosine retrieval is
unchanged bit for bit; their outputs are computed once and cached, which keeps each step cheap on a CPU.

Run it on a saved video-text folder (e.g. the bundled one)::

    python -m transformers_internvideo2.shapes_world.recipes.matching_head \
        --model src/transformers_internvideo2/shapes_world/bundled/shapes-video-text --output-dir runs/matching_head

It reports cosine and re-ranked R@1 on the same held-out clips the bundle's `metrics.json` uses (before and after)
and saves the tuned model next to `matching_head_metrics.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ...models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
from ...models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from ...tasks.metrics import retrieval_metrics
from ...tasks.retrieval import rerank_with_matching_head
from .three_stage import RecipeSettings, _save, _ShapesTensors, caption_id, distinct_caption_clips


logger = logging.getLogger(__name__)

__all__ = [
    "MatchingHeadSettings",
    "cached_pair_features",
    "matching_head_parameters",
    "reranked_retrieval_evaluation",
    "run",
    "tune_matching_head",
]


@dataclass
class MatchingHeadSettings:
    """Everything that decides a matching-head tuning run (saved next to the model)."""

    seed: int = 0
    train_clips: int = 4000  # clips of the training split (the three-stage recipe's own training data)
    steps: int = 600
    # in-batch hard negatives: a larger batch holds more near-misses (same shape and colour, other direction, ...)
    batch_size: int = 96
    learning_rate: float = 3e-4
    weight_decay: float = 0.02
    warmup_steps: int = 30
    hard_negatives: bool = True  # as the original; False draws the negatives uniformly among non-positives
    rerank_k: int = 128  # the original evaluation's k_test (>= the 100 held-out clips: every candidate is re-ranked)
    evaluate_every: int = 150
    # wall-clock budget of the training loop (a shared machine): stop early, logged, when it is spent
    max_seconds: float | None = None
    threads: int | None = None

    @classmethod
    def quick(cls) -> "MatchingHeadSettings":
        """A smoke-test configuration (seconds, meaningless metrics)."""
        return cls(train_clips=48, steps=3, batch_size=8, warmup_steps=1, evaluate_every=0)


@dataclass
class MatchingHeadResult:
    settings: dict
    metrics: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    model_dir: str | None = None


def matching_head_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters re-ranking depends on and cosine retrieval does not: the text encoder's fusion layers (the
    layers from `fusion_layer` on, with their cross-attention) and the matching head."""
    text_config = model.internvideo2.text_model.config
    fusion_prefixes = tuple(
        f"internvideo2.text_model.encoder.layer.{i}." for i in range(text_config.fusion_layer, text_config.num_hidden_layers)
    )
    chosen = [(n, p) for n, p in model.named_parameters() if n.startswith(fusion_prefixes) or n.startswith("matching_head.")]
    if not any(n.startswith(fusion_prefixes) for n, _ in chosen):
        raise ValueError("The model has no fusion layers (text_config.fusion_layer >= num_hidden_layers).")
    return chosen


@torch.no_grad()
def cached_pair_features(model, processor, clips, batch_size: int = 128) -> dict:
    """The frozen towers' outputs for (clip i, caption i) pairs: fusion memory, text-path states and mask, normalised
    embeddings, and a caption id per pair (equal captions are never each other's negatives)."""
    model.eval()
    embeds, tokens = [], []
    for pixels in clips.pixel_values.split(batch_size):
        video = model.get_video_features(pixels)
        embeds.append(video.pooler_output)
        tokens.append(model.fusion_tokens(video.last_hidden_state))
    text = processor.tokenize(clips.captions, padding="longest")
    text_embeds, text_hidden = [], []
    for ids, mask in zip(text["input_ids"].split(batch_size), text["attention_mask"].split(batch_size)):
        out = model.get_text_features(ids, mask)
        text_embeds.append(out.pooler_output)
        text_hidden.append(out.last_hidden_state)
    return {
        "video_embeds": torch.cat(embeds),
        "video_tokens": torch.cat(tokens),
        "text_embeds": torch.cat(text_embeds),
        "text_hidden": torch.cat(text_hidden),
        "attention_mask": text["attention_mask"],
        "input_ids": text["input_ids"],
        "sample_ids": torch.tensor([caption_id(c) for c in clips.captions], dtype=torch.long),
    }


@torch.no_grad()
def reranked_retrieval_evaluation(model, features: dict, rerank_k: int = 128) -> dict:
    """Cosine and matching-head re-ranked retrieval metrics of cached held-out pairs (caption i describes clip i)."""
    model.eval()
    similarity = features["video_embeds"] @ features["text_embeds"].t()
    reranked = rerank_with_matching_head(
        model, similarity, features["video_tokens"], text_mask=features["attention_mask"], k=rerank_k,
        text_hidden_states=features["text_hidden"], batch_size=128,
    )  # fmt: skip
    cosine = retrieval_metrics(similarity)
    rerank = retrieval_metrics(reranked.video_to_text, sim_t2v=reranked.text_to_video)
    metrics = {f"cosine_{k}": v for k, v in cosine.items()}
    metrics.update({f"reranked_{k}": v for k, v in rerank.items()})
    return metrics


def tune_matching_head(model, train_features: dict, settings: MatchingHeadSettings, eval_features: dict | None = None,
                       log=logger.info) -> list[dict]:  # fmt: skip
    """Train the fusion layers and the matching head with the model's VTM loss (hard negatives from the in-batch
    similarity) on cached frozen-tower features; every other parameter is frozen. Returns the loss / metric log."""
    trainable = matching_head_parameters(model)
    trainable_ids = {id(p) for _, p in trainable}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trainable_ids)
    decay = [p for _, p in trainable if p.ndim > 1]
    no_decay = [p for _, p in trainable if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate, betas=(0.9, 0.98),
    )  # fmt: skip

    def schedule(step):  # linear warm-up, then cosine decay to 0 (the original's scheduler shape)
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1.0 + torch.cos(torch.tensor(progress * torch.pi)).item())

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(settings.seed)
    temperature = model.internvideo2.clamped_temperature().detach()
    num_pairs = train_features["video_tokens"].shape[0]
    history, window = [], []
    order = torch.randperm(num_pairs, generator=generator)
    cursor = 0
    started = time.perf_counter()
    for step in range(settings.steps):
        if settings.max_seconds is not None and time.perf_counter() - started > settings.max_seconds:
            log(f"matching head: time budget of {settings.max_seconds:.0f} s spent, stopped after {step} steps")
            break
        if cursor + settings.batch_size > num_pairs:
            order, cursor = torch.randperm(num_pairs, generator=generator), 0
        batch = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        sample_ids = train_features["sample_ids"][batch]
        if bool((sample_ids == sample_ids[0]).all()):
            continue  # one caption for the whole batch: no negative exists
        model.train()
        similarity = train_features["video_embeds"][batch] @ train_features["text_embeds"][batch].t() / temperature
        loss, _ = model.matching_loss(
            train_features["video_tokens"][batch], train_features["text_hidden"][batch],
            train_features["attention_mask"][batch], similarity, sample_ids, hard_negatives=settings.hard_negatives,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        optimizer.step()
        scheduler.step()
        window.append(float(loss.detach()))
        last = step + 1 == settings.steps
        if settings.max_seconds is not None and time.perf_counter() - started > settings.max_seconds:
            last = True  # evaluate now: the next step stops
        if (step + 1) % 25 == 0 or last:
            entry = {"step": step + 1, "loss_vtm": sum(window) / len(window)}
            window = []
            if eval_features is not None and (last or (settings.evaluate_every and (step + 1) % settings.evaluate_every == 0)):
                entry.update(reranked_retrieval_evaluation(model, eval_features, settings.rerank_k))
            history.append(entry)
            log("matching head: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()
                                              if k in ("step", "loss_vtm", "cosine_t2v_r1", "reranked_t2v_r1", "cosine_v2t_r1", "reranked_v2t_r1")))  # fmt: skip
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    return history


def run(model_dir: str | os.PathLike, output_dir: str | os.PathLike, settings: MatchingHeadSettings | None = None,
        log=print) -> MatchingHeadResult:  # fmt: skip
    """Tune the matching head of the video-text model in `model_dir` on shapes-world training clips; evaluate cosine
    and re-ranked retrieval on the held-out clips of the three-stage recipe (its `RecipeSettings` read from the
    folder's `metrics.json` when present); save the tuned model to `output_dir/video_text` when re-ranking beats
    cosine there (text-to-video R@1), and `output_dir/matching_head_metrics.json` in every case."""
    settings = settings or MatchingHeadSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    recorded = model_dir / "metrics.json"
    recipe_settings = RecipeSettings()
    if recorded.is_file():
        known = set(asdict(recipe_settings))
        saved = json.loads(recorded.read_text(encoding="utf-8")).get("settings", {})
        recipe_settings = RecipeSettings(**{k: v for k, v in saved.items() if k in known})
    result = MatchingHeadResult(settings=asdict(settings))
    start = time.perf_counter()
    model = InternVideo2ForRetrieval.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True).eval()
    processor = InternVideo2Processor.from_pretrained(model_dir, local_files_only=True)
    train = _ShapesTensors("train", settings.train_clips, recipe_settings)
    held_out = distinct_caption_clips("test", recipe_settings.retrieval_clips, recipe_settings,
                                      start_index=recipe_settings.eval_clips)  # fmt: skip
    train_features = cached_pair_features(model, processor, train)
    eval_features = cached_pair_features(model, processor, held_out)
    result.seconds["data_and_features"] = round(time.perf_counter() - start, 1)
    before = reranked_retrieval_evaluation(model, eval_features, settings.rerank_k)
    log(f"before: text->video R@1 cosine {before['cosine_t2v_r1']:.1f}%, re-ranked {before['reranked_t2v_r1']:.1f}% "
        f"({len(held_out)} held-out clips)")  # fmt: skip
    start = time.perf_counter()
    history = tune_matching_head(model, train_features, settings, eval_features, log=log)
    result.seconds["training"] = round(time.perf_counter() - start, 1)
    after = reranked_retrieval_evaluation(model, eval_features, settings.rerank_k)
    log(f"after: text->video R@1 cosine {after['cosine_t2v_r1']:.1f}%, re-ranked {after['reranked_t2v_r1']:.1f}%")
    result.metrics = {
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
        "loss_vtm_first": history[0]["loss_vtm"] if history else None,
        "loss_vtm_last": history[-1]["loss_vtm"] if history else None,
        "held_out_clips": len(held_out),
        "rerank_k": settings.rerank_k,
        "reranking_helps": after["reranked_t2v_r1"] > after["cosine_t2v_r1"],
    }
    if result.metrics["reranking_helps"]:
        folder = output_dir / "video_text"
        _save(model, processor, folder, half_precision=True)
        result.model_dir = str(folder)
    else:
        log("re-ranking does not beat cosine: no model saved")
    payload = {**asdict(result), "history": history}
    (output_dir / "matching_head_metrics.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="folder of a shapes-world InternVideo2ForRetrieval model")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--uniform-negatives", action="store_true", help="VTM negatives drawn uniformly, not hard")
    parser.add_argument("--quick", action="store_true", help="smoke-test settings (seconds, meaningless metrics)")
    defaults = MatchingHeadSettings()
    int_options = ("steps", "batch_size", "train_clips", "threads", "seed", "rerank_k", "evaluate_every", "warmup_steps")
    for name in int_options:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"default {getattr(defaults, name)}")  # fmt: skip
    for name in ("learning_rate", "max_seconds"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None,
                            help=f"default {getattr(defaults, name)}")  # fmt: skip
    args = parser.parse_args(argv)
    settings = MatchingHeadSettings.quick() if args.quick else MatchingHeadSettings()
    for name in (*int_options, "learning_rate", "max_seconds"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    settings.hard_negatives = not args.uniform_negatives
    result = run(args.model, args.output_dir, settings)
    print(json.dumps(result.metrics, indent=2))
    return 0 if result.model_dir else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

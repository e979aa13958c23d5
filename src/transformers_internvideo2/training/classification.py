"""Fine-tuning InternVideo2 for video classification, with the original recipe's ingredients (spec §5.4–5.5):

* **layer-wise learning-rate decay** (`layer_decay`): the patch/cls/position embeddings are layer 0, block `j` is
  layer `j + 1`, everything after the blocks (pooler, norm, classifier) is layer `depth + 1`; layer `i` gets
  `lr * layer_decay ** (depth + 1 - i)`. No weight decay for 1-D parameters, biases and the position/cls tables;
* **mixup / cutmix** on the batch (`mixup_alpha` 0.8, `cutmix_alpha` 1.0, `mixup_switch_prob` 0.5, applied with
  probability `mixup_prob` 1.0), the cutmix box shared by all frames, with **label smoothing** (`smoothing` 0.1)
  folded into the soft targets and a soft-target cross-entropy;
* **drop path** through the model config (`drop_path_rate`), **gradient checkpointing** through
  `TrainingArguments(gradient_checkpointing=True)` (or `activation_checkpointing=True`);
* **multi-view evaluation**: batches of views `(B, V, T, C, H, W)` (as produced by
  `InternVideo2VideoProcessor.multi_view`, clips x crops) are scored by averaging the per-view *softmax*
  probabilities, as the original; [`classification_metrics`] turns that into top-1 / top-5 accuracy, and
  [`MultiViewMetrics`] does the same when each evaluation row is a single view.

Mixing pairs sample `i` with sample `B - 1 - i` of the same micro-batch (as the original, per process), so with
mixup gradient accumulation is exact only in expectation; without mixing it is exact (see `common.py`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import EvalPrediction, Trainer
from transformers.modeling_outputs import ImageClassifierOutput

from .common import VideoTrainerMixin, VideoTrainingArguments


__all__ = [
    "InternVideo2ClassificationArguments",
    "InternVideo2ClassificationTrainer",
    "MultiViewMetrics",
    "classification_metrics",
    "layer_decay_parameter_groups",
    "mixup_cutmix",
    "multi_view_probabilities",
    "top_k_accuracy",
]


@dataclass
class InternVideo2ClassificationArguments(VideoTrainingArguments):
    """`TrainingArguments` plus the fine-tuning recipe of the original (defaults = its defaults).

    layer_decay (`float`, defaults to 1.0): layer-wise learning-rate decay (1.0 = none; the original uses 0.75 for
        S/B/L, 0.9 for 1B, 0.915 for 6B).
    mixup_alpha (`float`, defaults to 0.8), cutmix_alpha (`float`, defaults to 1.0): Beta parameters; 0 disables.
    mixup_prob (`float`, defaults to 1.0): probability to mix a batch at all.
    mixup_switch_prob (`float`, defaults to 0.5): probability to use cutmix instead of mixup when both are enabled.
    smoothing (`float`, defaults to 0.1): label smoothing folded into the soft training targets.
    remove_unused_columns: defaults to `False` ([`VideoTrainingArguments`]).
    """

    layer_decay: float = field(default=1.0, metadata={"help": "Layer-wise lr decay (1.0 = off)."})
    mixup_alpha: float = field(default=0.8, metadata={"help": "Mixup Beta(alpha, alpha); 0 disables."})
    cutmix_alpha: float = field(default=1.0, metadata={"help": "CutMix Beta(alpha, alpha); 0 disables."})
    mixup_prob: float = field(default=1.0, metadata={"help": "Probability of mixing a batch."})
    mixup_switch_prob: float = field(default=0.5, metadata={"help": "Probability of cutmix when both are on."})
    smoothing: float = field(default=0.1, metadata={"help": "Label smoothing of the training targets."})

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1]; got {self.layer_decay}.")
        for name in ("mixup_prob", "mixup_switch_prob", "smoothing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}.")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError("mixup_alpha and cutmix_alpha must be >= 0.")

    @property
    def mixing_enabled(self) -> bool:
        return self.mixup_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


# ----------------------------------------------------------------------------------------------------------------
# Layer-wise learning-rate decay
# ----------------------------------------------------------------------------------------------------------------
_NO_WEIGHT_DECAY_NAMES = ("position_embeddings", "cls_token")


def _layer_id(name: str, backbone_prefix: str, depth: int) -> int:
    if not name.startswith(backbone_prefix):
        return depth + 1
    rest = name[len(backbone_prefix) :]
    if rest.startswith("embeddings."):
        return 0
    match = re.match(r"encoder\.layer\.(\d+)\.", rest)
    return int(match.group(1)) + 1 if match else depth + 1


def layer_decay_parameter_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    backbone_prefix: str = "internvideo2.",
    num_layers: int | None = None,
) -> list[dict]:
    """Optimizer parameter groups with layer-wise learning-rate decay and the original's weight-decay exclusions.

    `backbone_prefix` is the name prefix of the vision encoder inside `model` (`"internvideo2."` for
    [`InternVideo2ForVideoClassification`]); parameters outside it count as the head (layer `depth + 1`). Each group
    carries `lr`, `weight_decay`, `layer_id` and `lr_scale`. The Trainer's schedulers scale each group's own `lr`.
    """
    depth = num_layers if num_layers is not None else model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer_id = _layer_id(name, backbone_prefix, depth)
        no_decay = param.ndim <= 1 or name.endswith(".bias") or any(k in name for k in _NO_WEIGHT_DECAY_NAMES)
        scale = layer_decay ** (depth + 1 - layer_id)
        group = groups.setdefault(
            (layer_id, no_decay),
            {
                "params": [],
                "names": [],
                "lr": learning_rate * scale,
                "lr_scale": scale,
                "layer_id": layer_id,
                "weight_decay": 0.0 if no_decay else weight_decay,
            },
        )
        group["params"].append(param)
        group["names"].append(name)
    return [groups[key] for key in sorted(groups)]


# ----------------------------------------------------------------------------------------------------------------
# Mixup / CutMix with label smoothing
# ----------------------------------------------------------------------------------------------------------------
def _smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return targets.scatter_(1, labels.long()[:, None], 1.0 - smoothing + off)


def mixup_cutmix(
    pixel_values: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    smoothing: float = 0.1,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Batch-mode mixup / cutmix of videos `(B, T, C, H, W)` with label smoothing (the original's `Mixup`).

    Sample `i` is mixed with sample `B - 1 - i` (the flipped batch) with a weight `lam ~ Beta(alpha, alpha)`:
    mixup blends whole clips, cutmix pastes a box (the same box in every frame) whose area fraction is
    `1 - lam` (lam is recomputed from the clipped box). Targets are
    `lam * smooth(y_i) + (1 - lam) * smooth(y_{B-1-i})` with `smooth(y) = (1 - s) one_hot(y) + s / num_classes`.

    Returns `(mixed_pixel_values, soft_targets (B, num_classes), lam)`. `rng` defaults to numpy's global generator
    (seeded by the Trainer).
    """
    if pixel_values.ndim != 5:
        raise ValueError(f"pixel_values must be (batch, frames, channels, height, width); got {tuple(pixel_values.shape)}.")
    if labels.ndim != 1 or labels.shape[0] != pixel_values.shape[0]:
        raise ValueError(f"labels must be class indices of shape ({pixel_values.shape[0]},); got {tuple(labels.shape)}.")
    draw = rng if rng is not None else np.random
    lam, use_cutmix = 1.0, False
    if draw.random() < prob and (mixup_alpha > 0 or cutmix_alpha > 0):
        use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or draw.random() < switch_prob)
        lam = float(draw.beta(cutmix_alpha, cutmix_alpha) if use_cutmix else draw.beta(mixup_alpha, mixup_alpha))
    flipped = pixel_values.flip(0)
    if lam < 1.0 and use_cutmix:
        height, width = pixel_values.shape[-2:]
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        randint = draw.integers if rng is not None else draw.randint  # Generator vs legacy global API
        cy, cx = int(randint(height)), int(randint(width))
        y0, y1 = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
        x0, x1 = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
        mixed = pixel_values.clone()
        mixed[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
    elif lam < 1.0:
        mixed = pixel_values * lam + flipped * (1.0 - lam)
    else:
        mixed = pixel_values
    targets = _smoothed_one_hot(labels, num_classes, smoothing)
    targets = targets * lam + targets.flip(0) * (1.0 - lam)
    return mixed, targets, lam


# ----------------------------------------------------------------------------------------------------------------
# Multi-view evaluation and metrics
# ----------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def multi_view_probabilities(model: nn.Module, views: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Mean of the per-view softmax probabilities: `views` `(B, V, T, C, H, W)` -> `(B, num_classes)`."""
    if views.ndim != 6:
        raise ValueError(f"views must be (batch, views, frames, channels, height, width); got {tuple(views.shape)}.")
    batch, num_views = views.shape[:2]
    flat = views.flatten(0, 1)
    chunk_size = chunk_size or flat.shape[0]
    logits = torch.cat([model(pixel_values=part).logits for part in flat.split(chunk_size)])
    return logits.float().softmax(-1).reshape(batch, num_views, -1).mean(1)


def top_k_accuracy(scores: np.ndarray | torch.Tensor, labels, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Top-k accuracies of `(N, C)` scores against `(N,)` labels; `k` larger than `C` counts every sample."""
    scores = torch.as_tensor(np.asarray(scores), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(labels)).long()
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"Expected scores (N, C) and labels (N,); got {tuple(scores.shape)} and {tuple(labels.shape)}.")
    result = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        result[f"top{k}_accuracy"] = (top == labels[:, None]).any(1).float().mean().item()
    return result


def classification_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` for the classification trainer: softmax of the predictions, then top-1/top-5 accuracy.
    Multi-view batches are already averaged by the trainer (their predictions are log mean probabilities)."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    probabilities = torch.as_tensor(np.asarray(logits), dtype=torch.float32).softmax(-1)
    return top_k_accuracy(probabilities, eval_pred.label_ids)


class MultiViewMetrics:
    """`compute_metrics` for evaluation sets in which **each row is one view** of a video.

    Args:
        video_ids (sequence): the video each evaluation row belongs to, in evaluation order.
        view_ids (sequence, *optional*): a view identifier per row (e.g. `f"{clip}_{crop}"`); a repeated
            (video, view) pair is counted once, as the original de-duplicates views.
        ks: which top-k accuracies to report.

    The per-view logits are turned into softmax probabilities, averaged per video, and scored against the video's
    label; the metrics also report `num_videos`.
    """

    def __init__(self, video_ids, view_ids=None, ks: tuple[int, ...] = (1, 5)):
        self.video_ids = list(video_ids)
        self.view_ids = list(view_ids) if view_ids is not None else list(range(len(self.video_ids)))
        if len(self.view_ids) != len(self.video_ids):
            raise ValueError("video_ids and view_ids must have the same length.")
        self.ks = ks

    def __call__(self, eval_pred: EvalPrediction) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        probabilities = torch.as_tensor(np.asarray(logits), dtype=torch.float32).softmax(-1).numpy()
        labels = np.asarray(eval_pred.label_ids)
        if len(probabilities) != len(self.video_ids):
            raise ValueError(f"Got {len(probabilities)} predictions for {len(self.video_ids)} video ids.")
        per_video: dict = defaultdict(dict)
        video_label: dict = {}
        for prob, label, video, view in zip(probabilities, labels, self.video_ids, self.view_ids):
            if video_label.setdefault(video, int(label)) != int(label):
                raise ValueError(f"Views of video {video!r} carry different labels.")
            per_video[video].setdefault(view, prob)
        videos = list(per_video)
        scores = np.stack([np.mean(list(per_video[v].values()), axis=0) for v in videos])
        metrics = top_k_accuracy(scores, [video_label[v] for v in videos], self.ks)
        metrics["num_videos"] = len(videos)
        return metrics


# ----------------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------------
class InternVideo2ClassificationTrainer(VideoTrainerMixin, Trainer):
    """`Trainer` for [`InternVideo2ForVideoClassification`] fine-tuning with the original recipe.

    Training batches: `pixel_values` `(B, T, C, H, W)` and integer `labels` `(B,)`; mixup/cutmix and label smoothing
    are applied here, on the device, and the loss is the soft-target cross-entropy. Evaluation: plain cross-entropy;
    `pixel_values` may also be multi-view, `(B, V, T, C, H, W)`: the per-view softmax probabilities are averaged and
    the predictions returned are their logarithm (so `classification_metrics` recovers the averaged probabilities).
    Use `compute_metrics=classification_metrics` for top-1/top-5.
    """

    def __init__(self, model=None, args: InternVideo2ClassificationArguments | None = None, **kwargs):
        if not isinstance(args, InternVideo2ClassificationArguments):
            raise TypeError("args must be InternVideo2ClassificationArguments (it carries the fine-tuning recipe).")
        super().__init__(model=model, args=args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = layer_decay_parameter_groups(
                opt_model, self.args.learning_rate, self.args.weight_decay, self.args.layer_decay
            )
            for group in groups:
                group.pop("names")
            if self.optimizer_cls_and_kwargs is not None:
                optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
            else:
                optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k != "params"}
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pixel_values, labels = inputs["pixel_values"], inputs.get("labels")
        if labels is None:
            raise ValueError("The classification trainer needs `labels` in every batch.")
        if pixel_values.ndim == 6:
            if model.training:
                raise ValueError("Multi-view pixel_values (batch, views, ...) are for evaluation only.")
            # the test protocol's score: the mean of the views' probabilities (not a model forward)
            log_probabilities = multi_view_probabilities(model, pixel_values).clamp_min(1e-12).log()
            outputs = ImageClassifierOutput(logits=log_probabilities, loss=F.nll_loss(log_probabilities, labels))
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        targets = labels
        if model.training:  # augmentation is the trainer's: the model only sees (mixed) clips and soft targets
            config = self.accelerator.unwrap_model(model).config
            if self.args.mixing_enabled:
                pixel_values, targets, _ = mixup_cutmix(
                    pixel_values,
                    labels,
                    config.num_labels,
                    self.args.mixup_alpha,
                    self.args.cutmix_alpha,
                    self.args.mixup_prob,
                    self.args.mixup_switch_prob,
                    self.args.smoothing,
                )
            elif self.args.smoothing > 0:
                targets = _smoothed_one_hot(labels, config.num_labels, self.args.smoothing)
        outputs = model(pixel_values=pixel_values, labels=targets, num_items_in_batch=num_items_in_batch)
        if model.training:
            self._record_loss_components({"classification": outputs.loss})
        loss = outputs.loss * self.data_parallel_factor(num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

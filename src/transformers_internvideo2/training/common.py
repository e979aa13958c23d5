"""Pieces shared by the InternVideo2 trainers: counting the items of an optimiser step, weighting the loss
components the models return, and per-component loss logging.

**Who does what.** A model forward defines its losses and normalises each over the items of the optimiser step it is
given as `num_items_in_batch` (videos, video-text pairs, masked tokens; `losses/accumulation.py`), exactly as
Transformers models do with token counts. A trainer counts those items ([`VideoTrainerMixin`] counts videos over all
micro-batches of the step, and over processes when `average_tokens_across_devices=True`, the default), passes them
to the forward, and combines the returned components with the weights of its `TrainingArguments`
([`VideoTrainerMixin.weighted_loss`]). Data parallelism averages the gradients of the processes while each loss is
already a sum over all processes' items divided by their count, so the combined loss is multiplied by the number of
processes, as Transformers' `Trainer.compute_loss` does. Accumulating 2 micro-batches of B/2 then gives the gradients
of 1 batch of B; `loss_is_scaled_for_ga = True` tells the Trainer not to divide again.

**Undecodable samples.** [`VideoTrainingArguments`] (the base of every trainer's arguments) holds
`max_failure_fraction`; [`UndecodableSamplesMixin`] gives it to the collators (`training.data.apply_max_failure_fraction`)
and ends `train()` with a summary of the samples skipped, totalled over the `DataLoader` workers (and processes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .data import DEFAULT_MAX_FAILURE_FRACTION, apply_max_failure_fraction


logger = logging.getLogger(__name__)

__all__ = ["UndecodableSamplesMixin", "VideoTrainerMixin", "VideoTrainingArguments"]


@dataclass
class VideoTrainingArguments(TrainingArguments):
    """The base of the package's `TrainingArguments` subclasses: what every trainer of the package shares.

    remove_unused_columns (`bool`, defaults to `False`): the collators read raw columns (`video`, captions, labels)
        that the model forwards do not name.
    max_failure_fraction (`float`, defaults to 0.05): the largest fraction of training samples whose video cannot be
        decoded before training stops with `TooManyUndecodableSamplesError` (0 stops at the first); such samples are
        dropped from their batch with a warning. Given to the data collators (`VideoCollator`,
        `InternVideo2ChatDataCollator`): a collator built with its own non-default value keeps it; a different
        non-default value on both sides is an error (see `training.data.apply_max_failure_fraction`).
    """

    remove_unused_columns: bool = field(default=False, metadata={"help": "Drop dataset columns not in forward."})
    max_failure_fraction: float = field(
        default=DEFAULT_MAX_FAILURE_FRACTION,
        metadata={"help": "Largest fraction of undecodable training samples (skipped) before training stops; 0 = "
                  "stop at the first."},
    )  # fmt: skip

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.max_failure_fraction <= 1.0:
            raise ValueError(f"max_failure_fraction must be in [0, 1]; got {self.max_failure_fraction}.")


class UndecodableSamplesMixin:
    """Mix into a `transformers.Trainer` subclass (before `Trainer`) whose arguments are [`VideoTrainingArguments`]:
    `TrainingArguments.max_failure_fraction` reaches the collators, and `train()` logs how many training samples
    were skipped as undecodable -- the total over every `DataLoader` worker (the collators count in shared memory)
    and, in distributed training, over the processes -- and returns it in its metrics
    (`train_undecodable_samples`, `train_undecodable_fraction`)."""

    def _collators_with_budgets(self) -> list:
        collators = []
        for collator in (getattr(self, "data_collator", None), getattr(self, "eval_data_collator", None)):
            if getattr(collator, "failure_budget", None) is not None and all(collator is not c for c in collators):
                collators.append(collator)
        return collators

    def apply_max_failure_fraction(self) -> None:
        fraction = getattr(self.args, "max_failure_fraction", DEFAULT_MAX_FAILURE_FRACTION)
        for collator in self._collators_with_budgets():
            apply_max_failure_fraction(collator, fraction)

    def train(self, *args, **kwargs):
        self.apply_max_failure_fraction()  # again: the collators may have been replaced since __init__
        budget = getattr(self.data_collator, "failure_budget", None)
        before = (budget.num_seen, budget.num_failed) if budget is not None else (0, 0)
        output = super().train(*args, **kwargs)
        if budget is None:
            return output
        counts = torch.tensor([budget.num_seen - before[0], budget.num_failed - before[1]], device=self.args.device)
        if self.args.world_size > 1:  # every process runs train(): a valid collective
            counts = self.accelerator.gather(counts[None]).sum(0)
        seen, failed = (int(value) for value in counts.tolist())
        output.metrics["train_undecodable_samples"] = failed
        output.metrics["train_undecodable_fraction"] = failed / seen if seen else 0.0
        level = logging.WARNING if failed else logging.INFO
        logger.log(level, "Training skipped %d of %d samples whose video could not be decoded (over all DataLoader "
                   "workers%s; max_failure_fraction=%s).", failed, seen,
                   " and processes" if self.args.world_size > 1 else "", budget.max_failure_fraction)  # fmt: skip
        return output


class VideoTrainerMixin(UndecodableSamplesMixin):
    """Mix into a `transformers.Trainer` subclass (before `Trainer`): counts videos for exact gradient accumulation,
    weights loss components, and logs them (`loss_<name>`) averaged over the logging interval and over processes;
    applies `max_failure_fraction` and reports skipped samples ([`UndecodableSamplesMixin`])."""

    loss_is_scaled_for_ga = True
    video_input_name = "pixel_values"

    def __init__(self, *args, eval_data_collator=None, **kwargs):
        """`eval_data_collator`: the collator of evaluation and prediction (e.g. `VideoCollator(mode="val")` without
        augmentation, or `"multi_view"`); `data_collator` then serves training only. Default: one collator."""
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.apply_max_failure_fraction()  # a conflict with the collators is refused before any work

    def _get_dataloader(self, *args, **kwargs):
        # Trainer builds every loader here; `is_training` tells the training loader from evaluation/prediction ones.
        if kwargs.get("is_training", False) or self.eval_data_collator is None:
            return super()._get_dataloader(*args, **kwargs)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super()._get_dataloader(*args, **kwargs)
        finally:
            self.data_collator = train_collator

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        counts = [batch[self.video_input_name].shape[0] for batch in batch_samples if self.video_input_name in batch]
        if not counts:
            raise ValueError(f"Every batch must contain {self.video_input_name!r}; got keys {list(batch_samples[0])}.")
        num_items = torch.tensor(sum(counts), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            num_items = self.accelerator.gather(num_items[None]).sum()
        return num_items

    def data_parallel_factor(self, num_items_in_batch) -> int:
        """What the combined loss is multiplied by: the number of processes when the item counts were summed over
        them (DDP averages the processes' gradients), else 1."""
        if num_items_in_batch is None or not self.args.average_tokens_across_devices:
            return 1
        return self.accelerator.num_processes

    def weighted_loss(
        self, components: Mapping[str, torch.Tensor | None], weights: Mapping[str, float], num_items_in_batch
    ) -> torch.Tensor:
        """`sum(weights[name] * components[name])` over the components the model computed (each already normalised
        over the step's items), times [`data_parallel_factor`]. Components with weight 0 are left out."""
        terms = [weights[name] * value for name, value in components.items() if value is not None and weights[name]]
        if not terms:
            raise ValueError(f"No loss component with a non-zero weight was computed (weights {dict(weights)}).")
        return sum(terms) * self.data_parallel_factor(num_items_in_batch)

    # -- per-component logging ---------------------------------------------------------------------------------
    def _record_loss_components(self, components: dict[str, torch.Tensor | None]) -> None:
        if not hasattr(self, "_loss_components"):
            self._loss_components = defaultdict(list)
        for name, value in components.items():
            if value is not None:
                self._loss_components[name].append(value.detach().float())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # `log` runs on every process, so the gather below is a valid collective.
        components = getattr(self, "_loss_components", None)
        if "loss" in logs and components:
            for name, values in sorted(components.items()):
                mean = torch.stack(values).mean()[None].to(self.args.device)
                logs[f"loss_{name}"] = round(self.accelerator.gather(mean).mean().item(), 6)
            components.clear()
        super().log(logs, start_time)

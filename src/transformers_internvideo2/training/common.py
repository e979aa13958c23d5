"""Pieces shared by the InternVideo2 trainers: exact gradient accumulation and per-component loss logging.

**Gradient accumulation.** Every loss of these trainers is a mean over *videos*. Transformers' Trainer counts
`num_items_in_batch` from `labels` (there are none in stage 1, and soft mixup targets would be counted per class), so
[`VideoTrainerMixin`] counts the videos of all micro-batches of one optimiser step instead (and sums the counts over
processes when `average_tokens_across_devices=True`, the default). `compute_loss` then returns
`batch_mean * local_batch / num_items_in_batch` (times the number of processes, which DDP divides out again), which is
exactly the per-video sum over the whole accumulated batch divided by its size: accumulating 2 micro-batches of B/2
gives the gradients of 1 batch of B. `loss_is_scaled_for_ga = True` tells the Trainer not to divide again.
"""

from __future__ import annotations

from collections import defaultdict

import torch


__all__ = ["VideoTrainerMixin", "scale_batch_mean_for_accumulation"]


def scale_batch_mean_for_accumulation(
    batch_mean: torch.Tensor, local_batch_size: int, num_items_in_batch: int | torch.Tensor | None, num_processes: int
) -> torch.Tensor:
    """Turn a per-video mean over a micro-batch into its share of the mean over the whole optimiser step.

    `num_items_in_batch` is the number of videos of the step (summed over processes when `num_processes > 1`); the
    result is multiplied by `num_processes` because data parallelism averages the gradients of the processes.
    Returns `batch_mean` unchanged when `num_items_in_batch` is `None`.
    """
    if num_items_in_batch is None:
        return batch_mean
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(batch_mean.device)
    return batch_mean * (local_batch_size * num_processes) / num_items_in_batch


class VideoTrainerMixin:
    """Mix into a `transformers.Trainer` subclass (before `Trainer`): counts videos for exact gradient accumulation
    and logs named loss components (`loss_<name>`) averaged over the logging interval and over processes."""

    loss_is_scaled_for_ga = True
    video_input_name = "pixel_values"

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        counts = [batch[self.video_input_name].shape[0] for batch in batch_samples if self.video_input_name in batch]
        if not counts:
            raise ValueError(f"Every batch must contain {self.video_input_name!r}; got keys {list(batch_samples[0])}.")
        num_items = torch.tensor(sum(counts), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            num_items = self.accelerator.gather(num_items[None]).sum()
        return num_items

    def _num_processes_for_scaling(self) -> int:
        return self.accelerator.num_processes if self.args.average_tokens_across_devices else 1

    def _scale_for_accumulation(self, batch_mean: torch.Tensor, local_batch_size: int, num_items_in_batch):
        return scale_batch_mean_for_accumulation(
            batch_mean, local_batch_size, num_items_in_batch, self._num_processes_for_scaling()
        )

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

#!/usr/bin/env python
"""Trainer overhead: the step time of `InternVideo2ClassificationTrainer` against a plain PyTorch loop doing the same
work on the same model and batch.

Both fine-tune `InternVideo2ForVideoClassification` (random weights, `--model` preset, `--frames` x 224) on the same
random clips and labels, batch `--batch-size`, one process, no gradient accumulation:

* Trainer: `InternVideo2ClassificationArguments` with mixup/cutmix and label smoothing off (so the loss is the plain
  cross-entropy the loop computes), AdamW (torch), constant learning rate, gradient clipping at 1.0 (the Trainer's
  default), no logging, saving or evaluation, `dataloader_num_workers=0`;
* plain loop: a `DataLoader` with the same collator, `torch.optim.AdamW` with the same hyper-parameters,
  `model(pixel_values, labels).loss.backward()`, `clip_grad_norm_(1.0)`, `step()`, `zero_grad()`.

A step's time is the time between the ends of two consecutive steps (data loading, forward, backward, clipping,
optimiser and, for the Trainer, its callbacks and bookkeeping); the first `--warmup-steps` steps of every run are
left out. Every round runs both for `--steps` steps, in alternating order (interleaved, because the machine's load
changes), and the overhead is `trainer median step / loop median step - 1` per round (target <= 10 %); the ratio of
the fastest steps of each run, the ones least disturbed by other processes, is reported next to it.

    python benchmarks/benchmark_trainer.py --model internvideo2-s14 --frames 4 --batch-size 2 --steps 5 --rounds 3 \
        --json benchmarks/results/trainer_overhead_cpu.json

A measurement tool, not a test: nothing asserts a speed. The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402
    interleaved_rounds,
    load_average,
    ratio_summary,
    start_report,
    vision_config,
    write_json,
)


LEARNING_RATE = 1e-4
MAX_GRAD_NORM = 1.0


class RandomClips(torch.utils.data.Dataset):
    """`count` random clips with labels, fixed by `seed` (generated once, so both sides train on the same data)."""

    def __init__(self, count: int, frames: int, image_size: int, num_labels: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.clips = torch.randn(count, frames, 3, image_size, image_size, generator=generator)
        self.labels = torch.randint(0, num_labels, (count,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"pixel_values": self.clips[index], "labels": self.labels[index]}


def step_times(ends: list[float], warmup_steps: int) -> list[float]:
    """Durations between consecutive step ends, without the first `warmup_steps` steps."""
    return [later - earlier for earlier, later in zip(ends, ends[1:])][max(warmup_steps - 1, 0) :]


def trainer_run(model, dataset, args, output_dir: str) -> list[float]:
    from transformers import TrainerCallback, default_data_collator

    from transformers_internvideo2.training.classification import (
        InternVideo2ClassificationArguments,
        InternVideo2ClassificationTrainer,
    )

    ends = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_, **__):
            ends.append(time.perf_counter())

    training_args = InternVideo2ClassificationArguments(
        output_dir=output_dir, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=LEARNING_RATE, weight_decay=0.0, lr_scheduler_type="constant", max_grad_norm=MAX_GRAD_NORM,
        mixup_alpha=0.0, cutmix_alpha=0.0, smoothing=0.0, optim="adamw_torch", logging_strategy="no",
        save_strategy="no", eval_strategy="no", report_to=[], dataloader_num_workers=0, disable_tqdm=True,
        use_cpu=args.device == "cpu", seed=0,
    )  # fmt: skip
    trainer = InternVideo2ClassificationTrainer(model=model, args=training_args, train_dataset=dataset,
                                                data_collator=default_data_collator, callbacks=[StepClock()])  # fmt: skip
    trainer.train()
    return step_times(ends, args.warmup_steps)


def plain_run(model, dataset, args) -> list[float]:
    from transformers import default_data_collator

    device = torch.device(args.device)
    model.to(device).train()
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         collate_fn=default_data_collator, drop_last=True)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    ends, step = [], 0
    while step < args.steps:
        for batch in loader:
            batch = {key: value.to(device) for key, value in batch.items()}
            loss = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            ends.append(time.perf_counter())
            step += 1
            if step == args.steps:
                break
    return step_times(ends, args.warmup_steps)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="internvideo2-s14", help="Vision preset, or `tiny` (smoke tests).")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--num-labels", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5, help="Optimiser steps per run.")
    parser.add_argument("--warmup-steps", type=int, default=1, help="Steps left out at the start of every run.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if args.steps < args.warmup_steps + 2:
        parser.error("--steps must exceed --warmup-steps by at least 2 (two step ends make one step time).")
    return args


def main(argv=None, log=print) -> dict:
    from transformers_internvideo2 import InternVideo2ForVideoClassification

    args = parse_args(argv)
    report = start_report("benchmark_trainer.py", argv, args.threads, device=args.device, log=log)
    config = vision_config(args.model, num_frames=args.frames, num_labels=args.num_labels)
    dataset = RandomClips(args.batch_size * args.steps, args.frames, config.image_size, args.num_labels)
    torch.manual_seed(0)
    models = {name: InternVideo2ForVideoClassification._from_config(config) for name in ("trainer", "plain")}
    models["plain"].load_state_dict(models["trainer"].state_dict())
    runs = {"trainer": [], "plain": []}
    with tempfile.TemporaryDirectory() as output_dir:

        def measure(name):
            def run():
                if name == "trainer":
                    times = trainer_run(models[name], dataset, args, output_dir)
                else:
                    times = plain_run(models[name], dataset, args)
                runs[name].append(times)
                return statistics.median(times)

            return run

        log(f"# median step seconds per round ({args.model}, {args.frames} frames, batch {args.batch_size}, "
            f"{args.steps} steps, first {args.warmup_steps} left out):")  # fmt: skip
        medians = interleaved_rounds({"trainer": measure("trainer"), "plain": measure("plain")}, args.rounds, log)
    overhead = ratio_summary(medians["trainer"], medians["plain"])
    # the fastest step of each run is the one least disturbed by other processes on a shared machine
    fastest = ratio_summary([min(times) for times in runs["trainer"]], [min(times) for times in runs["plain"]])
    report.update(
        model=args.model, frames=args.frames, batch_size=args.batch_size, steps=args.steps,
        warmup_steps=args.warmup_steps, parameters=sum(p.numel() for p in models["plain"].parameters()),
        step_seconds=runs, median_step_seconds={name: statistics.median(values) for name, values in medians.items()},
        trainer_over_plain=overhead, trainer_over_plain_fastest_step=fastest, load_average_after=load_average(),
    )  # fmt: skip
    log(f"median step: Trainer {report['median_step_seconds']['trainer']:.3f} s, plain loop "
        f"{report['median_step_seconds']['plain']:.3f} s; Trainer / plain per round: median {overhead['median']:.3f} "
        f"(min {overhead['min']:.3f}, max {overhead['max']:.3f}), overhead {100 * (overhead['median'] - 1):+.1f} %; "
        f"fastest step Trainer / plain per round: median {fastest['median']:.3f}")
    log(f"# load average before / after: {report['load_average_before']} / {report['load_average_after']}")
    write_json(report, args.json, log)
    return report


if __name__ == "__main__":
    main()

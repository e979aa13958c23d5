"""A small MVBench-format benchmark generated from held-out shapes-world clips (for `tasks.mvbench.evaluate_mvbench`)."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np

from . import generator as shapes_world


__all__ = ["make_shapes_world_benchmark", "multiple_choice_question", "MULTIPLE_CHOICE_TASKS", "MULTIPLE_CHOICE_FACTS"]

MULTIPLE_CHOICE_TASKS = ("Moving Direction", "Object Shape", "Start Colour", "End Colour")
# Each task's answer stated as a sentence (`.format(answer)`): training text that gives the answer away, so that a
# language model can learn the letter mechanism of the format (find the option that says it) apart from seeing it.
MULTIPLE_CHOICE_FACTS = {
    "Moving Direction": "The shape moves {}.",
    "Object Shape": "The shape is a {}.",
    "Start Colour": "At the start the shape is {}.",
    "End Colour": "At the end the shape is {}.",
}


def multiple_choice_question(spec, task: str, rng: np.random.Generator) -> dict:
    """One four-option question about a clip: `{"question", "candidates", "answer"}`, the answer and three
    distinct distractors of the task's pool in a random order (`rng`)."""
    colours = list(shapes_world.COLOURS)
    questions = {
        "Moving Direction": ("Which way does the shape move?", spec.direction, list(shapes_world.DIRECTIONS)),
        "Object Shape": ("What shape is it?", spec.shape, list(shapes_world.SHAPES)),
        "Start Colour": ("What colour is the shape at the start?", spec.start_colour, colours),
        "End Colour": ("What colour is the shape at the end?", spec.end_colour, colours),
    }
    if task not in questions:
        raise ValueError(f"Unknown task {task!r}; expected one of {MULTIPLE_CHOICE_TASKS}.")
    question, answer, pool = questions[task]
    distractors = [option for option in pool if option != answer]
    chosen = list(rng.choice(distractors, size=3, replace=False)) + [answer]
    rng.shuffle(chosen)
    return {"question": question, "candidates": [str(c) for c in chosen], "answer": str(answer)}


def make_shapes_world_benchmark(
    output_dir: str | os.PathLike,
    num_videos: int = 8,
    split: str = "test",
    num_frames: int = 8,
    size: int = 64,
    fps: int = 4,
    seed: int = 0,
) -> str:
    """Write a small MVBench-format benchmark from shapes-world clips: `num_videos` mp4 files and
    `mvbench.json` with four tasks per clip ("Moving Direction": 4 directions, "Object Shape": 4 shapes, "Start Colour"
    and "End Colour": 4 colours each), candidates in a seeded random order. Returns the JSON path (videos are
    relative to its folder)."""
    rng = np.random.default_rng(seed)
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    benchmark: dict[str, list[dict]] = defaultdict(list)
    for index in range(num_videos):
        spec = shapes_world.sample_clip_spec(
            shapes_world.SPLIT_SEED_OFFSETS[split] + index, num_frames=num_frames, height=size, width=size
        )
        name = f"{split}_{index:04d}.mp4"
        shapes_world.write_mp4(shapes_world.render_clip(spec), os.path.join(output_dir, name), fps=fps)
        for task in MULTIPLE_CHOICE_TASKS:
            benchmark[task].append({"video": name, **multiple_choice_question(spec, task, rng)})
    path = os.path.join(output_dir, "mvbench.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(dict(benchmark), handle, indent=1)
    return path

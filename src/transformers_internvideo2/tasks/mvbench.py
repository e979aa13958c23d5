"""A multiple-choice video QA harness in the MVBench format, with the VideoChat2 evaluation protocol.

**Data.** One record per question, as the MVBench annotation files::

    {"video": "clip.mp4", "question": "...", "candidates": ["...", "..."], "answer": "<one of the candidates>",
     "start": 2.0, "end": 7.5}                      # start / end (seconds) optional

grouped by task (`{"Moving Direction": [records], ...}` or records carrying a `"task"` field).

**Protocol** (the original MVBench evaluation). Frames: `num_frames` (8) at segment middles inside the optional
window (the `"mvbench"` mode of `media.frame_sampling`). Question block::

    Question: {question}
    Options:
    (A) {candidate 0}
    (B) {candidate 1}
    ...

The prompt puts the system text [`MVBENCH_SYSTEM_PROMPT`] both before the conversation and in front of the question,
ends the question with `"\\nOnly give the best option."` and primes the answer with `"Best option:("`. With
`prompt_format="mistral"` it is the original's exact string::

    {sys}[INST] <Video>{video}</Video> [/INST] [INST] {sys}{question block}\\nOnly give the best option. [/INST] Best option:(

with `prompt_format="chat_template"` the same messages go through the processor's chat template (for models that
speak another format, e.g. ChatML). Greedy decoding; the prediction is `"(" + first line of the output`, and it is
correct when its option letter is the answer's ([`parse_option`]; a prediction without a letter that repeats exactly
one candidate's text counts as that candidate). Results: accuracy per task, over all questions, and the mean of the
task accuracies (MVBench's tasks all have 200 questions, so the last two agree there).

[`transformers_internvideo2.shapes_world.mvbench.make_shapes_world_benchmark`] writes a small benchmark of this format from procedurally generated clips
(`transformers_internvideo2.shapes_world.generator`), so the harness can be run end to end without MVBench's videos.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor, decode_clip


__all__ = [
    "MVBENCH_ANSWER_PROMPT",
    "MVBENCH_QUESTION_SUFFIX",
    "MVBENCH_SYSTEM_PROMPT",
    "MVBenchResult",
    "build_mvbench_prompt",
    "evaluate_mvbench",
    "format_question",
    "load_mvbench",
    "mvbench_answer_text",
    "mvbench_question_text",
    "parse_option",
]

MVBENCH_SYSTEM_PROMPT = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option that accurately "
    "addresses the question.\n"
)
MVBENCH_QUESTION_SUFFIX = "\nOnly give the best option."
MVBENCH_ANSWER_PROMPT = "Best option:("
PROMPT_FORMATS = ("mistral", "chat_template")


def _letter(index: int) -> str:
    if not 0 <= index < 26:
        raise ValueError(f"At most 26 options are supported, got option index {index}.")
    return chr(ord("A") + index)


def format_question(question: str, candidates: list[str]) -> str:
    """The question block: `Question: ...`, `Options:` and one `(X) candidate` line per option."""
    if len(candidates) < 2:
        raise ValueError(f"A multiple-choice question needs at least 2 candidates, got {len(candidates)}.")
    lines = [f"Question: {question}", "Options:"]
    lines += [f"({_letter(i)}) {candidate}" for i, candidate in enumerate(candidates)]
    return "\n".join(lines)


def mvbench_question_text(question: str, candidates: list[str], system_prompt: str = MVBENCH_SYSTEM_PROMPT) -> str:
    """The user text of one question: the system text again (the original's `system_llm=True`), the question block
    and `"\nOnly give the best option."`."""
    return system_prompt + format_question(question, candidates) + MVBENCH_QUESTION_SUFFIX


def mvbench_answer_text(candidates: list[str], answer_index: int) -> str:
    """The answer a model should give in this format, answer prompt included: `"Best option:(B) a cat"` (what
    multiple-choice instruction data trains on; at evaluation the prompt ends with `"Best option:("`)."""
    return f"{MVBENCH_ANSWER_PROMPT}{_letter(answer_index)}) {candidates[answer_index]}"


def build_mvbench_prompt(
    processor: InternVideo2ChatProcessor,
    question: str,
    candidates: list[str],
    prompt_format: str = "chat_template",
    system_prompt: str = MVBENCH_SYSTEM_PROMPT,
    user_preamble: str | None = None,
) -> str:
    """The prompt (text with one video token) for one question; see the module docstring. `user_preamble` replaces
    the system text repeated before the question block of the user turn (default: `system_prompt`, as the original)."""
    body = mvbench_question_text(question, candidates, system_prompt if user_preamble is None else user_preamble)
    if prompt_format == "mistral":
        video = f"<Video>{processor.video_token}</Video>"
        return f"{system_prompt}[INST] {video} [/INST] [INST] {body} [/INST] {MVBENCH_ANSWER_PROMPT}"
    if prompt_format != "chat_template":
        raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}.")
    messages = [
        {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": body}]},
        {"role": "assistant", "content": [{"type": "text", "text": MVBENCH_ANSWER_PROMPT}]},
    ]
    return processor.apply_chat_template(messages, continue_final_message=True, tokenize=False)


_OPTION_AT_START = re.compile(r"^\s*\(?\s*([A-Za-z])\s*(?:[).:,]|$|\s)")


def parse_option(prediction: str, candidates: list[str]) -> int | None:
    """Index of the option a prediction names (`"(B) a cat"`, `"B)"`, `"b."`), or `None`.

    A leading option letter decides; a letter outside the options is a wrong answer (`None`). Without a leading
    letter, a prediction whose text (case-insensitive, surrounding punctuation stripped) is exactly one candidate's
    counts as that candidate."""
    match = _OPTION_AT_START.match(prediction)
    if match:
        index = ord(match.group(1).upper()) - ord("A")
        return index if index < len(candidates) else None
    text = prediction.strip().strip(".()").strip().lower()
    hits = [i for i, candidate in enumerate(candidates) if candidate.strip().strip(".").lower() == text]
    return hits[0] if len(hits) == 1 else None


def load_mvbench(path: str | os.PathLike) -> dict[str, list[dict]]:
    """Read a benchmark: a JSON `{task: [records]}`, or a JSON list of records with a `"task"` field; checks every
    record."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, list):
        grouped = defaultdict(list)
        for record in data:
            if "task" not in record:
                raise ValueError(f"{path}: a record list needs a 'task' field in every record.")
            grouped[record["task"]].append(record)
        data = dict(grouped)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {{task: [records]}} or a list of records.")
    for task, records in data.items():
        for record in records:
            _check_record(record, task)
    return data


def _check_record(record: dict, task: str) -> int:
    for key in ("video", "question", "candidates", "answer"):
        if key not in record:
            raise ValueError(f"Task {task!r}: a record lacks {key!r} (has {sorted(record)}).")
    candidates = record["candidates"]
    if not isinstance(candidates, list) or len(candidates) < 2:
        raise ValueError(f"Task {task!r}: 'candidates' must be a list of at least 2 options.")
    if candidates.count(record["answer"]) != 1:
        raise ValueError(f"Task {task!r}: the answer {record['answer']!r} must be exactly one of {candidates}.")
    return candidates.index(record["answer"])


@dataclass
class MVBenchResult:
    """Accuracies (fractions in [0, 1]) and every prediction."""

    task_accuracy: dict[str, float]
    overall_accuracy: float
    mean_task_accuracy: float
    num_questions: int
    predictions: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        width = max(len(task) for task in self.task_accuracy)
        lines = [f"{task:<{width}}  {100 * acc:6.2f}" for task, acc in sorted(self.task_accuracy.items())]
        lines.append(f"{'overall':<{width}}  {100 * self.overall_accuracy:6.2f}  ({self.num_questions} questions)")
        lines.append(f"{'mean of tasks':<{width}}  {100 * self.mean_task_accuracy:6.2f}")
        return "\n".join(lines)


@torch.no_grad()
def evaluate_mvbench(
    model,
    processor: InternVideo2ChatProcessor,
    benchmark: dict[str, list[dict]],
    video_root: str | os.PathLike | None = None,
    num_frames: int | None = None,
    prompt_format: str = "chat_template",
    system_prompt: str = MVBENCH_SYSTEM_PROMPT,
    max_new_tokens: int = 200,
    batch_size: int = 1,
    video_backend: str = "auto",
) -> MVBenchResult:
    """Run the multiple-choice protocol (module docstring) over `benchmark` (`{task: [records]}`) with greedy
    decoding, `batch_size` questions at a time (left padding)."""
    num_frames = num_frames or processor.video_processor.num_frames
    items = []
    for task, records in benchmark.items():
        for record in records:
            items.append((task, record, _check_record(record, task)))
    if not items:
        raise ValueError("The benchmark has no questions.")
    model.eval()
    device = next(model.parameters()).device
    predictions = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts, clips = [], []
        for task, record, _ in chunk:
            path = os.fspath(record["video"])
            if video_root is not None and not os.path.isabs(path):
                path = os.path.join(video_root, path)
            clips.append(decode_clip(path, num_frames, record.get("start"), record.get("end"), backend=video_backend))
            prompts.append(build_mvbench_prompt(processor, record["question"], record["candidates"], prompt_format, system_prompt))
        # the original benchmark tokenisation: segment-wise, no BOS (unlike its chat(), which puts one per segment)
        inputs = processor(
            text=prompts, videos=clips, do_sample_frames=False, padding_side="left", add_special_tokens=False,
            return_tensors="pt",
        ).to(device)
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        outputs = processor.batch_decode(generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for (task, record, answer_index), output in zip(chunk, outputs):
            lines = output.strip().split("\n")
            prediction = "(" + (lines[0] if lines else "")
            chosen = parse_option(prediction, record["candidates"])
            predictions.append(
                {
                    "task": task,
                    "video": record["video"],
                    "question": record["question"],
                    "prediction": prediction,
                    "predicted_index": chosen,
                    "answer_index": answer_index,
                    "correct": chosen == answer_index,
                }
            )
    per_task = defaultdict(list)
    for entry in predictions:
        per_task[entry["task"]].append(entry["correct"])
    task_accuracy = {task: float(np.mean(flags)) for task, flags in per_task.items()}
    return MVBenchResult(
        task_accuracy=task_accuracy,
        overall_accuracy=float(np.mean([entry["correct"] for entry in predictions])),
        mean_task_accuracy=float(np.mean(list(task_accuracy.values()))),
        num_questions=len(predictions),
        predictions=predictions,
    )

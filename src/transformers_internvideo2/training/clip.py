"""The CLIP stage of InternVideo2 (`multi_modality/tasks_clip/`): contrastive training of [`InternVideo2ClipModel`] on
top of frozen towers.

The original trains only a small set (spec §1.6, §3.8):

* the vision attention pooler (`open_vision_clip_projector=True`; the rest of the vision tower frozen,
  `freeze_vision=True`), plus for S/B/L14 the `vision_align` LayerNorm + Linear (here `vision_alignment`);
* the temperature (`temp`, clamped to at least `temperature_min` in place at every training forward);
* nothing of the text tower (`freeze_text=True`, `open_text_projection=False`, `open_text_lora=False`); the flags
  exist and are arguments here too: `train_text_projection`, and `text_lora` (LoRA of rank 16 / alpha 32 on the
  LLaMA `q_proj`/`v_proj`, the original's PEFT setting; on the MobileCLIP `qkv_proj`/`out_proj`).

The loss is the model's own VTC (`return_loss=True`): the gather-with-gradient contrastive loss of
`losses/contrastive.py`, exact under data parallelism, normalised over the pairs of the optimiser step (exact
gradient accumulation, `training/common.py`). Pairs sharing a `sample_ids` value are all positives.

After training with `text_lora=True`, [`merge_text_lora`] folds the adapters into the text weights so that the saved
folder is a plain [`InternVideo2ClipModel`] (no PEFT wrapper at run time, as the converter does for the released
models).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import Trainer

from ..models.internvideo2_clip.configuration_internvideo2_clip import TEXT_TOWER_LLAMA
from ..models.internvideo2_clip.modeling_internvideo2_clip import InternVideo2ClipModel
from .common import VideoTrainerMixin, VideoTrainingArguments


__all__ = [
    "InternVideo2ClipArguments",
    "InternVideo2ClipTrainer",
    "apply_clip_trainable_set",
    "merge_text_lora",
]

_MODEL_INPUTS = ("pixel_values", "input_ids", "attention_mask", "sample_ids")
_LORA_TARGETS = {TEXT_TOWER_LLAMA: ["q_proj", "v_proj"], "internvideo2_mobileclip_text": ["qkv_proj", "out_proj"]}


@dataclass
class InternVideo2ClipArguments(VideoTrainingArguments):
    """`TrainingArguments` plus the CLIP-stage trainable set (defaults = the original's released configs).

    train_vision_pooler (`bool`, defaults to `True`): train the vision attention pooler (`open_vision_clip_projector`).
    train_vision_tower (`bool`, defaults to `False`): also train the vision blocks (`freeze_vision=False`).
    train_text_projection (`bool`, defaults to `False`): train the text projection (`open_text_projection`).
    train_text_tower (`bool`, defaults to `False`): train the whole text tower (`freeze_text=False`).
    train_temperature (`bool`, defaults to `True`): learn the temperature (the original does).
    text_lora (`bool`, defaults to `False`): add LoRA adapters to the text tower and train them (`open_text_lora`).
    text_lora_rank, text_lora_alpha, text_lora_dropout: the adapters' settings (the original: 16, 32, 0.1).
    The vision alignment layers of the S/B/L14 models are always trained (as the original, which never freezes them).
    remove_unused_columns: defaults to `False` ([`VideoTrainingArguments`]).
    """

    train_vision_pooler: bool = field(default=True, metadata={"help": "Train the vision attention pooler."})
    train_vision_tower: bool = field(default=False, metadata={"help": "Also train the vision blocks."})
    train_text_projection: bool = field(default=False, metadata={"help": "Train the text projection."})
    train_text_tower: bool = field(default=False, metadata={"help": "Train the whole text tower."})
    train_temperature: bool = field(default=True, metadata={"help": "Learn the temperature."})
    text_lora: bool = field(default=False, metadata={"help": "LoRA adapters on the text tower (trained)."})
    text_lora_rank: int = field(default=16, metadata={"help": "LoRA rank."})
    text_lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha."})
    text_lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout."})

    def __post_init__(self):
        super().__post_init__()
        if self.text_lora and self.train_text_tower:
            raise ValueError("text_lora adapts a frozen text tower; it cannot be combined with train_text_tower.")
        if self.text_lora_rank < 1:
            raise ValueError(f"text_lora_rank must be >= 1; got {self.text_lora_rank}.")


def apply_clip_trainable_set(model: InternVideo2ClipModel, args: InternVideo2ClipArguments) -> list[str]:
    """Freeze everything but the CLIP-stage trainable set of `args` (adding LoRA adapters to the text tower with
    `text_lora`); return the names of the trainable parameters."""
    if args.text_lora:
        _add_text_lora(model, args)
    for name, parameter in model.named_parameters():
        if ".lora_" in name:
            trainable = True
        elif name.startswith("vision_model.pooler."):
            trainable = args.train_vision_pooler or args.train_vision_tower
        elif name.startswith("vision_model."):
            trainable = args.train_vision_tower
        elif name.startswith("vision_alignment."):
            trainable = True
        elif name.startswith("text_projection."):
            trainable = args.train_text_projection or args.train_text_tower
        elif name.startswith("text_model."):
            trainable = args.train_text_tower
        elif name == "temperature":
            trainable = args.train_temperature
        else:  # a parameter this function does not know about must not be trained (or frozen) by accident
            raise ValueError(f"Unexpected parameter {name!r} in the CLIP model.")
        parameter.requires_grad_(trainable)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    if not trainable:
        raise ValueError("The arguments leave nothing to train.")
    return trainable


def _add_text_lora(model: InternVideo2ClipModel, args: InternVideo2ClipArguments) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    if any(".lora_" in name for name, _ in model.named_parameters()):
        return  # adapters already present (e.g. a second trainer on the same model)
    targets = _LORA_TARGETS[model.config.text_tower]
    config = LoraConfig(r=args.text_lora_rank, lora_alpha=args.text_lora_alpha, lora_dropout=args.text_lora_dropout,
                        target_modules=targets)  # fmt: skip
    inject_adapter_in_model(config, model.text_model)


def merge_text_lora(model: InternVideo2ClipModel) -> int:
    """Fold LoRA adapters of the text tower into its weights and remove them (so that the model saves and loads as a
    plain [`InternVideo2ClipModel`]); returns the number of merged layers."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(model.text_model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = model.text_model.get_submodule(parent_name) if parent_name else model.text_model
            setattr(parent, child, module.get_base_layer())
            merged += 1
    return merged


class InternVideo2ClipTrainer(VideoTrainerMixin, Trainer):
    """`Trainer` for the CLIP stage of [`InternVideo2ClipModel`] (module docstring): applies the trainable set of
    [`InternVideo2ClipArguments`] at construction and trains with the model's contrastive loss.

    Batches: `pixel_values (B, T, C, H, W)`, `input_ids` / `attention_mask (B, L)` ([`InternVideo2ClipProcessor`]
    format), optional `sample_ids (B,)`.
    """

    def __init__(self, model=None, args: InternVideo2ClipArguments | None = None, **kwargs):
        if not isinstance(args, InternVideo2ClipArguments):
            raise TypeError("args must be InternVideo2ClipArguments (it carries the CLIP-stage trainable set).")
        if not isinstance(model, InternVideo2ClipModel):
            raise TypeError(f"model must be an InternVideo2ClipModel; got {type(model).__name__}.")
        self.trainable_parameter_names = apply_clip_trainable_set(model, args)
        super().__init__(model=model, args=args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pixel_values = inputs.get("pixel_values")
        if pixel_values is None or "input_ids" not in inputs:
            raise ValueError(f"CLIP batches need 'pixel_values' and 'input_ids'; got keys {list(inputs)}.")
        inputs = {key: value for key, value in inputs.items() if key in _MODEL_INPUTS}
        outputs = model(**inputs, return_loss=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            self._record_loss_components({"vtc": outputs.loss})
        loss = self.weighted_loss({"vtc": outputs.loss}, {"vtc": 1.0}, num_items_in_batch)
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation reports the contrastive loss only (use `tasks.retrieval` for recall, the zero-shot pipeline for
        accuracy)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None


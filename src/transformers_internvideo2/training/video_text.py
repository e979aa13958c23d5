"""Stage 2 of InternVideo2: video–text contrastive (VTC) + matching (VTM) + masked language modelling (MLM).

The model is [`InternVideo2ForRetrieval`]; its forward computes the three losses (spec §3.1–3.3):

* **VTC** — symmetric InfoNCE through `contrastive.video_text_contrastive_loss`, which gathers the embeddings of all
  processes with a gather whose backward returns every process's gradient to the owner of each embedding, so that
  under `torchrun` / `accelerate` / DeepSpeed the loss and gradients equal one process on the concatenated batch.
  `original_gradient_scaling=True` switches to the original's gather (encoder gradients divided by the world size).
* **VTM** — the matching head on the positive pairs and one hard negative per video and per text, drawn from the
  **local** batch's similarities (as the original).
* **MLM** — the original corruption (`mlm_probability`, 80/10/10) of the captions, decoded with the video tokens
  as cross-attention memory.

What the trainer adds:

* **video-token masking** during training, as the original's `only_mask`: every training clip drops
  `int(0.8 * N)` of its `N` patch tokens uniformly at random (`video_mask_type="random"`, ratio `video_mask_ratio`);
  one-frame clips (images) drop `image_mask_ratio` (0.5). No masking at evaluation. A `bool_masked_pos` column in
  the batch overrides the generated mask.
* **the recipe knobs** as arguments: loss weights, MLM probability, hard negatives, masking, gather mode; the model
  computes the components, the trainer weights them (`training/common.py`).
* **exact gradient accumulation**: VTC and VTM are means over pairs, MLM a mean over masked tokens. The trainer draws
  the MLM corruption of every micro-batch of an optimiser step *before* the first forward (unless the batch already
  carries `mlm_input_ids` / `mlm_labels`), counts pairs and masked tokens over the step (and over processes), and
  passes both counts to the forward, which makes the step's loss `sum over pairs / pairs` + `sum over masked tokens /
  masked tokens`. The MLM part is then exactly the same for 2 micro-batches of B/2 as for one batch of B; VTC and
  VTM contrast within a micro-batch (the negatives *are* the batch), so accumulation weights them correctly but
  cannot make them batch-size independent — as with any contrastive loss.
* **per-component logging**: `loss_vtc`, `loss_vtm`, `loss_mlm` (unweighted batch means) next to `loss`.
* **audio** (6B audio-video-text models, batches with `input_features (B, frames, mel bins)`): the audio losses of
  the original stage 2, each with a weight argument whose default is the released recipe's (`atc` 0, `avc` 0,
  `avtc` 1, `atm` 0, `avtm` 1, `amlm` 0, `avmlm` 1); the losses with a non-zero weight are computed. The MLM
  losses share one corruption of the captions per batch (the original draws a new one for each of mlm / amlm /
  avmlm). A model without audio, or a batch without `input_features`, trains video-text only.

Batches: `pixel_values (B, T, C, H, W)`, `input_ids` / `attention_mask (B, L)` (the [`InternVideo2Processor`]
format: `[CLS] tokens`, no `[SEP]`), optional `input_features (B, 998, 64)` (the processor's `audio=`), optional
`sample_ids (B,)` (pairs sharing an id are all positives, e.g. several
captions of one video, or identical captions of different clips).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import Trainer

from ..models.internvideo2_video_text.modeling_internvideo2_video_text import AUDIO_LOSSES, InternVideo2ForRetrieval
from .common import VideoTrainerMixin, VideoTrainingArguments
from .masking import mask_tokens_for_mlm, random_mask, tube_mask


__all__ = ["InternVideo2VideoTextArguments", "InternVideo2VideoTextTrainer", "VIDEO_MASK_TYPES"]

VIDEO_MASK_TYPES = ("random", "tube", "none")
_MODEL_INPUTS = ("pixel_values", "input_ids", "attention_mask", "sample_ids", "bool_masked_pos", "mlm_input_ids",
                 "mlm_labels", "input_features")  # fmt: skip
_MLM_LOSSES = ("mlm", "amlm", "avmlm")


@dataclass
class InternVideo2VideoTextArguments(VideoTrainingArguments):
    """`TrainingArguments` plus the stage-2 options (defaults = the original's).

    video_mask_type (`str`, defaults to `"random"`): token masking of training clips: `"random"` (uniform per sample,
        the original), `"tube"` (the same spatial positions in every frame) or `"none"`.
    video_mask_ratio (`float`, defaults to 0.8): fraction of patch tokens dropped for clips of several frames.
    image_mask_ratio (`float`, defaults to 0.5): the same for one-frame inputs (images).
    original_gradient_scaling (`bool`, defaults to `False`): use the original's contrastive gather, whose encoder
        gradients are `1 / world_size` of the exact ones (see `losses/contrastive.py`); for resuming or comparing
        original runs.
    vtc_loss_weight, vtm_loss_weight, mlm_loss_weight (`float`, defaults to 1.0): weights of the three losses; a
        component with weight 0 is not computed (MLM) or not counted.
    mlm_probability (`float`, defaults to 0.5): masking probability of the MLM corruption (the original's 0.5).
    vtm_hard_negatives (`bool`, defaults to `True`): draw the VTM negatives from the similarity (as the original)
        instead of uniformly.
    atc_loss_weight, avc_loss_weight, avtc_loss_weight, atm_loss_weight, avtm_loss_weight, amlm_loss_weight,
        avmlm_loss_weight (`float`): weights of the audio losses (audio-video-text models, batches with
        `input_features`); defaults = the released 6B recipe: 0, 0, 1, 0, 1, 0, 1.
    remove_unused_columns: defaults to `False` ([`VideoTrainingArguments`]).
    """

    video_mask_type: str = field(default="random", metadata={"help": f"One of {VIDEO_MASK_TYPES}."})
    video_mask_ratio: float = field(default=0.8, metadata={"help": "Fraction of video patch tokens dropped."})
    image_mask_ratio: float = field(default=0.5, metadata={"help": "Fraction of image patch tokens dropped."})
    original_gradient_scaling: bool = field(
        default=False, metadata={"help": "Original contrastive gather (encoder gradients / world size)."}
    )
    vtc_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the video-text contrastive loss."})
    vtm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the video-text matching loss."})
    mlm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the masked language modelling loss."})
    mlm_probability: float = field(default=0.5, metadata={"help": "Masking probability of the MLM corruption."})
    vtm_hard_negatives: bool = field(default=True, metadata={"help": "Hard VTM negatives (from the similarity)."})
    atc_loss_weight: float = field(default=0.0, metadata={"help": "Weight of the audio-text contrastive loss."})
    avc_loss_weight: float = field(default=0.0, metadata={"help": "Weight of the audio-video contrastive loss."})
    avtc_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the audio+video-text contrastive loss."})
    atm_loss_weight: float = field(default=0.0, metadata={"help": "Weight of the audio-text matching loss."})
    avtm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the audio+video-text matching loss."})
    amlm_loss_weight: float = field(default=0.0, metadata={"help": "Weight of the MLM loss with audio memory."})
    avmlm_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the MLM loss with audio+video memory."})

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must lie in (0, 1); got {self.mlm_probability}.")
        if self.video_mask_type not in VIDEO_MASK_TYPES:
            raise ValueError(f"video_mask_type must be one of {VIDEO_MASK_TYPES}; got {self.video_mask_type!r}.")
        for name in ("video_mask_ratio", "image_mask_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {getattr(self, name)}.")


class InternVideo2VideoTextTrainer(VideoTrainerMixin, Trainer):
    """`Trainer` for stage-2 video–text training of [`InternVideo2ForRetrieval`] (see the module docstring).

    Evaluation (`trainer.evaluate()`) reports the unmasked losses; use `retrieval.retrieve(...).metrics()` or
    `metrics.retrieval_metrics` for recall numbers.
    """

    def __init__(self, model=None, args: InternVideo2VideoTextArguments | None = None, **kwargs):
        if not isinstance(args, InternVideo2VideoTextArguments):
            raise TypeError("args must be InternVideo2VideoTextArguments (it carries the stage-2 options).")
        if not isinstance(model, InternVideo2ForRetrieval):
            raise TypeError(f"model must be an InternVideo2ForRetrieval; got {type(model).__name__}.")
        super().__init__(model=model, args=args, **kwargs)

    # -- MLM corruption and item counts ---------------------------------------------------------------------------
    def _config(self):
        return self.accelerator.unwrap_model(self.model).config

    def _weights(self) -> dict[str, float]:
        names = ("vtc", "vtm", "mlm", *AUDIO_LOSSES)
        return {name: getattr(self.args, f"{name}_loss_weight") for name in names}

    def _mlm_enabled(self) -> bool:
        weights = self._weights()
        return any(weights[name] for name in _MLM_LOSSES)

    def _audio_losses(self, inputs: dict) -> tuple[str, ...]:
        """The audio losses to compute for a batch: those with a non-zero weight, when the batch has audio."""
        if inputs.get("input_features") is None:
            return ()
        if not self._config().has_audio:
            raise ValueError("The batch has input_features but the model has no audio encoder (config.audio_config).")
        weights = self._weights()
        return tuple(name for name in AUDIO_LOSSES if weights[name])

    def _add_mlm_corruption(self, batch: dict) -> None:
        """Draw the MLM corruption of a batch (in place) unless it already has one."""
        if not self._mlm_enabled() or batch.get("mlm_labels") is not None:
            return
        if "input_ids" not in batch:
            raise ValueError(f"Every batch must contain 'input_ids'; got keys {list(batch)}.")
        batch["mlm_input_ids"], batch["mlm_labels"] = mask_tokens_for_mlm(
            batch["input_ids"], self._config().text_config, self.args.mlm_probability
        )

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """`tensor([pairs, masked tokens])` of the optimiser step (over processes when
        `average_tokens_across_devices`). Draws the MLM corruption of every micro-batch first, so that its masked
        tokens can be counted before the first forward."""
        for batch in batch_samples:
            self._add_mlm_corruption(batch)
        pairs = sum(batch["pixel_values"].shape[0] for batch in batch_samples if "pixel_values" in batch)
        if not pairs:
            raise ValueError(f"Every batch must contain 'pixel_values'; got keys {list(batch_samples[0])}.")
        tokens = sum(int((batch["mlm_labels"] != -100).sum()) for batch in batch_samples if "mlm_labels" in batch)
        counts = torch.tensor([pairs, tokens], device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            counts = self.accelerator.gather(counts[None]).sum(0)
        return counts

    # -- masking --------------------------------------------------------------------------------------------------
    def video_token_mask(self, pixel_values: torch.Tensor) -> torch.Tensor | None:
        """The training mask of a batch `(B, T, C, H, W)`: `(B, patches)` booleans, `True` = dropped, or `None`."""
        if self.args.video_mask_type == "none":
            return None
        vision = self._config().vision_config
        batch, frames, _, height, width = pixel_values.shape
        grid_t = max(frames // vision.tubelet_size, 1)
        per_frame = (height // vision.patch_size) * (width // vision.patch_size)
        ratio = self.args.image_mask_ratio if frames == 1 else self.args.video_mask_ratio
        if ratio == 0:
            return None
        make = tube_mask if self.args.video_mask_type == "tube" else random_mask
        return make(batch, grid_t, per_frame, ratio, device=pixel_values.device)

    # -- loss -----------------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pixel_values = inputs.get("pixel_values")
        if pixel_values is None or "input_ids" not in inputs:
            raise ValueError(f"Stage-2 batches need 'pixel_values' and 'input_ids'; got keys {list(inputs)}.")
        if pixel_values.ndim != 5:
            raise ValueError(f"pixel_values must be (batch, frames, channels, height, width); got {tuple(pixel_values.shape)}.")
        inputs = {k: v for k, v in inputs.items() if k in _MODEL_INPUTS}  # captions, seeds... are not model inputs
        self._add_mlm_corruption(inputs)
        if not self._mlm_enabled():
            inputs.pop("mlm_input_ids", None), inputs.pop("mlm_labels", None)
        if model.training and inputs.get("bool_masked_pos") is None:
            inputs["bool_masked_pos"] = self.video_token_mask(pixel_values)
        pair_count, token_count = self._split_counts(num_items_in_batch)
        audio_losses = self._audio_losses(inputs)
        outputs = model(
            **inputs,
            audio_losses=audio_losses,
            hard_negatives=self.args.vtm_hard_negatives,
            original_gradient_scaling=self.args.original_gradient_scaling,
            num_items_in_batch=pair_count,
            num_masked_tokens_in_batch=token_count,
        )
        components = {"vtc": outputs.loss_vtc, "vtm": outputs.loss_vtm, "mlm": outputs.loss_mlm}
        components.update({name: getattr(outputs, f"loss_{name}") for name in audio_losses})
        if model.training:
            self._record_loss_components(components)
        loss = self.weighted_loss(components, self._weights(), pair_count)
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss

    @staticmethod
    def _split_counts(num_items_in_batch):
        """(pairs, masked tokens) from the 2-vector that `_get_num_items_in_batch` returns (None when not counted)."""
        if num_items_in_batch is None:
            return None, None
        if not (torch.is_tensor(num_items_in_batch) and num_items_in_batch.numel() == 2):
            raise TypeError(
                "InternVideo2VideoTextTrainer counts two kinds of items per step, as tensor([pairs, masked tokens]); "
                f"got {num_items_in_batch!r}."
            )
        pairs, tokens = num_items_in_batch
        return pairs, (tokens if int(tokens) > 0 else None)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation reports the (unmasked) stage-2 loss only."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

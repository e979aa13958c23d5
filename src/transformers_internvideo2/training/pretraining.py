"""Stage 1 of InternVideo2: masked video token alignment to frozen teachers (and the S/B/L distillation recipe).

The student ([`InternVideo2ForPreTraining`]) sees the visible tokens of a masked clip; decoders map chosen student
layers to the teachers' widths and the loss is `mean(2 - 2 cos)` between unit-normalised student and teacher
features (computed by the model, with the config's loss weights). Teachers are ordinary Transformers models passed in
by the user; they run frozen, in `eval()` mode, under `torch.no_grad()`:

* **CLIP teacher** (`clip_teacher`): either an image model applied to every frame — a CLIP-style ViT with a cls token
  such as `CLIPVisionModel` / `CLIPVisionModelWithProjection` (the original uses InternViT-6B from InternVL) — or a
  video model, [`InternVideo2VisionModel`] (the distillation recipe: a large InternVideo2 teaches S/B/L students).
  Targets, as the original teachers produce them (spec §2.6): the chosen layers' token features, per-frame cls
  tokens averaged over time and patch tokens laid out t-major, L2-normalised; and the final clip feature
  (`image_embeds` when the model has a projection, else `pooler_output`; an InternVideo2 teacher's attention-pooled
  `pooler_output`), averaged over frames and L2-normalised.
* **MAE teacher** (`mae_teacher`, optional): a VideoMAE-style video model (`VideoMAEModel` works). Its layers are
  taken as they are, except the last, which is taken after the model's final LayerNorm (as the original VideoMAEv2
  teacher); L2-normalised. With a temporal tubelet of 2 and a student tubelet of 1, the teacher sees all `T` frames
  and the student and CLIP teacher every second frame (`T / 2`), so student frame `k` matches teacher tube `k`.

**Teacher-guided masking** (`mask_type="attention"`, ratio 0.8): the visible tokens are drawn with probability
proportional to the CLIP teacher's attention over the patches: for an InternVideo2 teacher, the head-averaged attention
of its pooling query (`output_pooler_attentions=True`); for an image (CLIP) teacher, which has no attention pooler,
the head-averaged attention of the **last layer's cls query** over the patches, the closest equivalent (the trainer
switches such a teacher to eager attention, which returns attention maps). As the original, stage 1 samples per frame
and distillation over the whole clip (`attention_mask_per_frame=None` picks this from the teacher kind). `"tube"` and
`"random"` masking need no teacher attention; `"none"` trains on all tokens; a `bool_masked_pos` column in the batch
overrides all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer
from transformers.utils import logging

from .masking import MASK_TYPES, attention_guided_mask, random_mask, tube_mask
from ..models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForPreTraining, InternVideo2VisionModel
from .common import VideoTrainerMixin, VideoTrainingArguments


logger = logging.get_logger(__name__)

__all__ = [
    "InternVideo2PretrainingArguments",
    "InternVideo2PretrainingTrainer",
    "TeacherTargets",
    "clip_teacher_targets",
    "mae_teacher_targets",
]


@dataclass
class InternVideo2PretrainingArguments(VideoTrainingArguments):
    """`TrainingArguments` plus the masking options of stage 1.

    mask_type (`str`, defaults to `"attention"`): `"attention"` (teacher-guided), `"tube"`, `"random"` or `"none"`.
    mask_ratio (`float`, defaults to 0.8): fraction of patch tokens masked (per frame for per-frame masks).
    clip_loss_weight, clip_final_loss_weight, mae_loss_weight (`float`, defaults to 1.0): weights of the three
        alignment losses (1, 1, 1 in the original).
    attention_mask_per_frame (`bool`, *optional*): sample the attention-guided mask per frame (`True`) or over the
        whole clip (`False`). Default: per frame for an image CLIP teacher (stage 1), whole clip for an InternVideo2
        teacher (distillation), as the original.
    remove_unused_columns: defaults to `False` ([`VideoTrainingArguments`]; the batch carries only what the trainer needs).
    """

    mask_type: str = field(default="attention", metadata={"help": f"One of {MASK_TYPES}."})
    mask_ratio: float = field(default=0.8, metadata={"help": "Fraction of patch tokens to mask."})
    attention_mask_per_frame: bool | None = field(
        default=None, metadata={"help": "Teacher-guided masking per frame (default: per frame for image teachers)."}
    )
    clip_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the intermediate CLIP alignment loss."})
    clip_final_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the final CLIP alignment loss."})
    mae_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the MAE alignment loss."})

    def __post_init__(self):
        super().__post_init__()
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}; got {self.mask_type!r}.")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1); got {self.mask_ratio}.")


@dataclass
class TeacherTargets:
    """Frozen-teacher outputs for one batch.

    hidden_states: `(num_layers, batch, tokens, width)`, L2-normalised, in ascending layer order.
    pooled: `(batch, width)`, L2-normalised final feature (CLIP teachers only).
    attention: `(batch, frames, patches_per_frame)` (image teachers) or `(batch, 1, patches)` (video teachers)
        patch importance for teacher-guided masking, when asked for.
    """

    hidden_states: torch.Tensor
    pooled: torch.Tensor | None = None
    attention: torch.Tensor | None = None


def _num_layers(teacher: nn.Module) -> int:
    return teacher.config.num_hidden_layers


def _check_layers(teacher: nn.Module, layers: list[int], role: str) -> None:
    depth = _num_layers(teacher)
    if any(not 0 <= i < depth for i in layers) or list(layers) != sorted(set(layers)):
        raise ValueError(f"{role} teacher layers must be distinct ascending indices in [0, {depth}); got {layers}.")


@torch.no_grad()
def clip_teacher_targets(
    teacher: nn.Module,
    pixel_values: torch.Tensor,
    layers: list[int],
    return_attention: bool = False,
    attention_per_frame: bool | None = None,
) -> TeacherTargets:
    """Targets of a CLIP teacher for `pixel_values` `(B, T, C, H, W)` (the frames the student sees).

    `teacher` is an [`InternVideo2VisionModel`] (whole clip) or an image model with a leading cls token applied per
    frame (e.g. `CLIPVisionModel`, `CLIPVisionModelWithProjection`, loaded with `attn_implementation="eager"` if
    attention is needed). `layers` are ascending block indices.
    """
    batch, frames = pixel_values.shape[:2]
    if isinstance(teacher, InternVideo2VisionModel):
        out = teacher(pixel_values, output_hidden_states=True, output_pooler_attentions=return_attention)
        hidden = torch.stack([out.hidden_states[i + 1] for i in layers])  # (K, B, 1+N, C)
        pooled = out.pooler_output
        attention = None
        if return_attention:
            patch_attention = out.pooler_attentions.float().mean(1)[:, 0, 1:]  # heads averaged -> (B, N)
            groups = frames // teacher.config.tubelet_size if attention_per_frame else 1
            attention = patch_attention.reshape(batch, groups, -1)
    else:
        images = pixel_values.flatten(0, 1)  # (B*T, C, H, W), sample-major, frame-minor as the original
        out = teacher(pixel_values=images, output_hidden_states=True, output_attentions=return_attention)
        if out.hidden_states is None:
            raise ValueError(f"{type(teacher).__name__} did not return hidden states.")
        per_frame = torch.stack([out.hidden_states[i + 1] for i in layers])  # (K, B*T, 1+HW, C)
        k, _, tokens, width = per_frame.shape
        per_frame = per_frame.reshape(k, batch, frames, tokens, width)
        cls = per_frame[:, :, :, :1].mean(2)  # (K, B, 1, C): cls averaged over frames
        patches = per_frame[:, :, :, 1:].reshape(k, batch, frames * (tokens - 1), width)  # t-major
        hidden = torch.cat([cls, patches], dim=2)
        final = getattr(out, "image_embeds", None)
        if final is None:
            final = getattr(out, "pooler_output", None)
        if final is None:
            raise ValueError(f"{type(teacher).__name__} returns neither `image_embeds` nor `pooler_output`.")
        pooled = final.reshape(batch, frames, -1).mean(1)
        attention = None
        if return_attention:
            if not out.attentions:
                raise ValueError(
                    f"{type(teacher).__name__} returned no attention maps; load it with attn_implementation='eager'."
                )
            cls_attention = out.attentions[-1].float().mean(1)[:, 0, 1:]  # (B*T, HW): last layer, cls query
            attention = cls_attention.reshape(batch, frames, -1)
            if attention_per_frame is False:
                attention = attention.reshape(batch, 1, -1)
    return TeacherTargets(
        hidden_states=F.normalize(hidden.float(), dim=-1),
        pooled=F.normalize(pooled.float(), dim=-1),
        attention=attention,
    )


@torch.no_grad()
def mae_teacher_targets(teacher: nn.Module, pixel_values: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """L2-normalised `(K, B, patches, width)` features of a VideoMAE-style teacher for `(B, T, C, H, W)` clips.

    The last layer is taken after the model's final norm (`last_hidden_state`), the others as the blocks output
    them. An [`InternVideo2VisionModel`] teacher's cls token is dropped."""
    out = teacher(pixel_values=pixel_values, output_hidden_states=True)
    last = _num_layers(teacher) - 1
    hidden = torch.stack([out.last_hidden_state if i == last else out.hidden_states[i + 1] for i in layers])
    if isinstance(teacher, InternVideo2VisionModel):
        hidden = hidden[:, :, 1:]
    return F.normalize(hidden.float(), dim=-1)


def _freeze(teacher: nn.Module | None, device: torch.device) -> nn.Module | None:
    if teacher is None:
        return None
    teacher.requires_grad_(False)
    return teacher.eval().to(device)


class InternVideo2PretrainingTrainer(VideoTrainerMixin, Trainer):
    """`Trainer` for stage 1 (two teachers) and distillation (one InternVideo2 teacher).

    Args:
        model ([`InternVideo2ForPreTraining`]): the student; its config sets the decoders (`clip_teacher_hidden_size`,
            `clip_teacher_final_size`, `mae_teacher_hidden_size`, return layers) and the loss weights.
        args ([`InternVideo2PretrainingArguments`]).
        clip_teacher: image model applied per frame, or an [`InternVideo2VisionModel`].
        mae_teacher (optional): VideoMAE-style video model (required if the student has an MAE branch).
        clip_teacher_layers, mae_teacher_layers (`list[int]`, *optional*): ascending teacher block indices paired
            with the student's return layers; default: the teacher's last `K` blocks.
        Other keyword arguments go to `Trainer` (datasets, collator, callbacks...).

    Batches hold `pixel_values` `(B, T, C, H, W)`: `T` frames for the MAE teacher; the student and the CLIP teacher
    see every `mae_tubelet / student_tubelet`-th frame. An optional `bool_masked_pos` `(B, patches)` column replaces
    the generated masks. Logged: `loss`, `loss_clip`, `loss_clip_final`, `loss_mae` (unweighted batch means).
    """

    def __init__(
        self,
        model: InternVideo2ForPreTraining,
        args: InternVideo2PretrainingArguments,
        clip_teacher: nn.Module,
        mae_teacher: nn.Module | None = None,
        clip_teacher_layers: list[int] | None = None,
        mae_teacher_layers: list[int] | None = None,
        **kwargs,
    ):
        if not isinstance(args, InternVideo2PretrainingArguments):
            raise TypeError("args must be InternVideo2PretrainingArguments (it carries the masking options).")
        if not isinstance(model, InternVideo2ForPreTraining):
            raise TypeError(f"model must be an InternVideo2ForPreTraining student; got {type(model).__name__}.")
        super().__init__(model=model, args=args, **kwargs)
        config = model.config
        num_clip = len(config.clip_student_return_indices)
        num_mae = len(config.mae_student_return_indices)
        if mae_teacher is None and num_mae:
            raise ValueError("The student has an MAE branch (mae_teacher_hidden_size > 0) but no mae_teacher was given.")
        if mae_teacher is not None and not num_mae:
            raise ValueError("mae_teacher given but the student has no MAE branch (set mae_teacher_hidden_size).")
        self.clip_teacher_layers = clip_teacher_layers or list(range(_num_layers(clip_teacher) - num_clip, _num_layers(clip_teacher)))
        _check_layers(clip_teacher, self.clip_teacher_layers, "CLIP")
        if len(self.clip_teacher_layers) != num_clip:
            raise ValueError(
                f"{len(self.clip_teacher_layers)} CLIP teacher layers for {num_clip} student return layers "
                f"({config.clip_student_return_indices})."
            )
        self.mae_teacher_layers = None
        if mae_teacher is not None:
            depth = _num_layers(mae_teacher)
            self.mae_teacher_layers = mae_teacher_layers or list(range(depth - num_mae, depth))
            _check_layers(mae_teacher, self.mae_teacher_layers, "MAE")
            if len(self.mae_teacher_layers) != num_mae:
                raise ValueError(f"{len(self.mae_teacher_layers)} MAE teacher layers for {num_mae} student layers.")

        self.clip_teacher_is_video = isinstance(clip_teacher, InternVideo2VisionModel)
        needs_attention = args.mask_type == "attention"
        if needs_attention and not self.clip_teacher_is_video:
            if getattr(clip_teacher.config, "_attn_implementation", "eager") != "eager":
                logger.info("Switching the CLIP teacher to eager attention to read its attention maps for masking.")
                clip_teacher.set_attn_implementation("eager")
        self.attention_per_frame = args.attention_mask_per_frame
        if self.attention_per_frame is None:
            self.attention_per_frame = not self.clip_teacher_is_video
        self.clip_teacher = _freeze(clip_teacher, args.device)
        self.mae_teacher = _freeze(mae_teacher, args.device)

        self.frame_stride = 1
        if mae_teacher is not None:
            mae_tubelet = getattr(mae_teacher.config, "tubelet_size", 1)
            if mae_tubelet % config.tubelet_size:
                raise ValueError(
                    f"The MAE teacher's tubelet ({mae_tubelet}) must be a multiple of the student's ({config.tubelet_size})."
                )
            self.frame_stride = mae_tubelet // config.tubelet_size
        self._check_widths()

    def _check_widths(self) -> None:
        config = self.model.config
        clip_width = self.clip_teacher.config.hidden_size
        if clip_width != config.clip_teacher_hidden_size:
            raise ValueError(
                f"The CLIP teacher is {clip_width} wide but the student decodes to clip_teacher_hidden_size="
                f"{config.clip_teacher_hidden_size}."
            )
        if self.mae_teacher is not None and self.mae_teacher.config.hidden_size != config.mae_teacher_hidden_size:
            raise ValueError(
                f"The MAE teacher is {self.mae_teacher.config.hidden_size} wide but the student decodes to "
                f"mae_teacher_hidden_size={config.mae_teacher_hidden_size}."
            )

    # ------------------------------------------------------------------------------------------------------------
    def _make_mask(self, inputs: dict, student_pixels: torch.Tensor, attention: torch.Tensor | None):
        if inputs.get("bool_masked_pos") is not None:
            return inputs["bool_masked_pos"]
        config = self.model.config
        batch, frames, _, height, width = student_pixels.shape
        grid_t = frames // config.tubelet_size
        per_frame = (height // config.patch_size) * (width // config.patch_size)
        mask_type, ratio, device = self.args.mask_type, self.args.mask_ratio, student_pixels.device
        if mask_type == "none":
            return None
        if mask_type == "attention":
            return attention_guided_mask(attention, ratio)
        if mask_type == "tube":
            return tube_mask(batch, grid_t, per_frame, ratio, device=device)
        return random_mask(batch, grid_t, per_frame, ratio, device=device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pixel_values = inputs["pixel_values"]
        if pixel_values.ndim != 5:
            raise ValueError(f"pixel_values must be (batch, frames, channels, height, width); got {tuple(pixel_values.shape)}.")
        student_pixels = pixel_values[:, :: self.frame_stride]
        clip = clip_teacher_targets(
            self.clip_teacher,
            student_pixels,
            self.clip_teacher_layers,
            return_attention=self.args.mask_type == "attention" and inputs.get("bool_masked_pos") is None,
            attention_per_frame=self.attention_per_frame,
        )
        mae = None
        if self.mae_teacher is not None:
            mae = mae_teacher_targets(self.mae_teacher, pixel_values, self.mae_teacher_layers)
        mask = self._make_mask(inputs, student_pixels, clip.attention)
        outputs = model(
            pixel_values=student_pixels,
            bool_masked_pos=mask,
            clip_teacher_hidden_states=clip.hidden_states,
            clip_teacher_pooled=clip.pooled,
            mae_teacher_hidden_states=mae,
            num_items_in_batch=num_items_in_batch,
        )
        components = {"clip": outputs.clip_loss, "clip_final": outputs.clip_final_loss, "mae": outputs.mae_loss}
        if model.training:
            self._record_loss_components(components)
        weights = {"clip": self.args.clip_loss_weight, "clip_final": self.args.clip_final_loss_weight,
                   "mae": self.args.mae_loss_weight}  # fmt: skip
        loss = self.weighted_loss(components, weights, num_items_in_batch)
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation reports the alignment loss only (there are no predictions to compare with labels)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

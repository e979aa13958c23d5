"""Configuration of the InternVideo2 vision encoder (backbone, classifier and stage-1 student)."""

import copy

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .config_compat import drop_moved_settings

# Official sizes (InternVideo2 paper, Table 1; single_modality/models/internvideo2*.py). The MLP width is computed
# exactly as the original does, `int(hidden_size * mlp_ratio)`: 1B uses mlp_ratio 48/11 -> 6144. All official models
# use patch 14, 224 px, tubelet 1, no qkv bias, q/k RMSNorm, LayerScale 1e-5 applied in fp32, a 16-head attention
# pooler projecting to 768, and the fused (tanh-approximate GELU) MLP.
INTERNVIDEO2_VISION_PRESETS: dict[str, dict] = {
    "internvideo2-s14": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "internvideo2-b14": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "internvideo2-l14": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "internvideo2-1b": dict(
        hidden_size=1408, num_hidden_layers=40, num_attention_heads=16, intermediate_size=int(1408 * 48 / 11)
    ),
    "internvideo2-6b": dict(hidden_size=3200, num_hidden_layers=48, num_attention_heads=25, intermediate_size=12800),
}

_POSITION_EMBEDDING_TYPES = ("joint", "separable")
_IMAGE_POSITION_EMBEDDING_TYPES = (None, "separate", "temporal_mean")
_DECODER_TYPES = ("linear", "mlp")
_NORM_TYPES = ("l2", "none")
MOVED_TO_PRETRAINING_ARGUMENTS = {
    name: f"InternVideo2PretrainingArguments.{name}"
    for name in ("clip_loss_weight", "clip_final_loss_weight", "mae_loss_weight")
}


@strict
class InternVideo2VisionConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2VisionModel`], [`InternVideo2ForVideoClassification`] and
    [`InternVideo2ForPreTraining`]. The defaults describe InternVideo2-1B (patch 14, 224 px, 8 frames); the other
    official sizes are available through [`InternVideo2VisionConfig.from_preset`] (`internvideo2-s14`, `-b14`,
    `-l14`, `-1b`, `-6b`).

    Architecture:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: transformer width/depth/heads and MLP
            width (the original computes `int(hidden_size * mlp_ratio)`).
        hidden_act (`str`, defaults to `"gelu_pytorch_tanh"`): MLP activation. The official checkpoints were trained
            and evaluated with flash-attn's FusedMLP, whose GELU is the tanh approximation. `"gelu"` (exact erf) is what
            the original pure-PyTorch fallback computes.
        image_size, patch_size, num_channels: spatial input geometry (square patches).
        num_frames, tubelet_size: number of input frames the position embeddings were learned for, and the temporal
            patch size. Other frame counts and resolutions run with `interpolate_pos_encoding=True`.
        qkv_bias (`bool`, defaults to `False`): bias of the fused q/k/v projection.
        use_qk_norm (`bool`, defaults to `True`): RMSNorm on queries and keys over the *full* width (all heads jointly),
            before the heads are split.
        rms_norm_eps (`float`, defaults to 1e-6): epsilon of the block and q/k RMSNorms.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of the pooler and classifier LayerNorms.
        layer_scale_init_value (`float`, defaults to 1e-5): LayerScale initial value; `0.0` builds no LayerScale.
        layer_scale_force_fp32 (`bool`, defaults to `True`): multiply by LayerScale in float32 and cast back (as the
            original does by default).
        position_embedding_type (`str`, defaults to `"joint"`): one learned table over `1 + t*h*w` tokens (`"joint"`),
            or separate spatial, temporal and cls tables (`"separable"`).
        image_position_embedding_type (`str` or `None`): how a single image (one temporal patch) is embedded by the
            stage-2 encoders: its own learned table (`"separate"`), the time-mean of the video table
            (`"temporal_mean"`), or like any other clip (`None`, the single-modality models).
        pooler_output_size (`int`, defaults to 768): output width of the attention pooler (the original
            `clip_embed_dim`).
        pooler_num_attention_heads (`int`, defaults to 16): heads of the attention pooler (16 for every official size).
        drop_path_rate, attention_dropout: stochastic depth (linearly increasing over the blocks) and attention
            dropout, training only.

    Classification head ([`InternVideo2ForVideoClassification`]):
        classifier_dropout (`float`, defaults to 0.0): dropout before the classifier (the original `fc_drop_rate`).
        use_extra_mlp (`bool`, defaults to `False`): residual LayerNorm-MLP after the pooler (the original attentive
            probing variant, `internvideo2_ap`).

    Stage-1 student ([`InternVideo2ForPreTraining`]):
        clip_teacher_hidden_size (`int`, defaults to 0): width of the CLIP teacher's intermediate features; 0 builds
            no CLIP alignment branch.
        clip_teacher_final_size (`int`, defaults to 0): width of the teacher's final pooled feature; 0 = no final
            decoder (identity).
        clip_num_return_layers (`int`): number of student layers aligned to the teacher.
        clip_return_interval (`float`): spacing of those layers, counted down from the last block, or
        clip_return_indices (`list[int]`): explicit block indices (override the interval rule).
        clip_decoder_type (`str`, `"linear"` or `"mlp"`): decoder of the intermediate and final CLIP alignment.
        clip_norm_type (`str`, `"l2"` or `"none"`): L2-normalise the decoded features.
        mae_teacher_hidden_size (`int`, defaults to 0): width of the VideoMAE teacher features; 0 = no MAE branch.
        mae_num_return_layers, mae_return_interval, mae_norm_type: as above for the MAE branch (MLP decoders).

    The weights of the three alignment losses are training settings (`InternVideo2PretrainingArguments`); configs
    saved with them (`clip_loss_weight`, ...) load with a warning.
    """

    model_type = "internvideo2_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1408
    num_hidden_layers: int = 40
    num_attention_heads: int = 16
    intermediate_size: int = 6144
    hidden_act: str = "gelu_pytorch_tanh"
    image_size: int = 224
    patch_size: int = 14
    num_channels: int = 3
    num_frames: int = 8
    tubelet_size: int = 1
    qkv_bias: bool = False
    use_qk_norm: bool = True
    rms_norm_eps: float = 1e-6
    layer_norm_eps: float = 1e-5
    layer_scale_init_value: float | int = 1e-5
    layer_scale_force_fp32: bool = True
    position_embedding_type: str = "joint"
    image_position_embedding_type: str | None = None
    pooler_output_size: int = 768
    pooler_num_attention_heads: int = 16
    drop_path_rate: float | int = 0.0
    attention_dropout: float | int = 0.0
    initializer_range: float = 0.02
    # classification head
    classifier_dropout: float | int = 0.0
    use_extra_mlp: bool = False
    # stage-1 student
    clip_teacher_hidden_size: int = 0
    clip_teacher_final_size: int = 0
    clip_num_return_layers: int = 1
    clip_return_interval: float | int = 1
    clip_return_indices: list[int] | None = None
    clip_decoder_type: str = "linear"
    clip_norm_type: str = "l2"
    mae_teacher_hidden_size: int = 0
    mae_num_return_layers: int = 1
    mae_return_interval: float | int = 1
    mae_norm_type: str = "l2"

    def __post_init__(self, **kwargs):
        drop_moved_settings(type(self).__name__, kwargs, MOVED_TO_PRETRAINING_ARGUMENTS)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )
        if self.hidden_size % self.pooler_num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by pooler_num_attention_heads "
                f"({self.pooler_num_attention_heads})."
            )
        if self.num_frames % self.tubelet_size:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of tubelet_size ({self.tubelet_size}).")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size}).")
        if self.position_embedding_type not in _POSITION_EMBEDDING_TYPES:
            raise ValueError(f"position_embedding_type must be one of {_POSITION_EMBEDDING_TYPES}.")
        if self.image_position_embedding_type not in _IMAGE_POSITION_EMBEDDING_TYPES:
            raise ValueError(f"image_position_embedding_type must be one of {_IMAGE_POSITION_EMBEDDING_TYPES}.")
        if self.clip_decoder_type not in _DECODER_TYPES:
            raise ValueError(f"clip_decoder_type must be one of {_DECODER_TYPES}.")
        if self.clip_norm_type not in _NORM_TYPES or self.mae_norm_type not in _NORM_TYPES:
            raise ValueError(f"clip_norm_type and mae_norm_type must be one of {_NORM_TYPES}.")
        if self.image_position_embedding_type is not None and self.position_embedding_type != "joint":
            raise ValueError("image_position_embedding_type requires position_embedding_type='joint' (as the original).")
        for index in self.clip_student_return_indices:
            if not 0 <= index < self.num_hidden_layers:
                raise ValueError(f"return layer index {index} is outside the {self.num_hidden_layers} blocks.")

    # ----------------------------------------------------------------------------------------------------------------
    @property
    def temporal_patches(self) -> int:
        """Number of temporal patches the position embeddings were learned for."""
        return self.num_frames // self.tubelet_size

    @property
    def spatial_patches(self) -> int:
        """Patches per side at `image_size`."""
        return self.image_size // self.patch_size

    @staticmethod
    def _return_indices(num_layers: int, count: int, interval: float) -> list[int]:
        # The original counts down from the last block with `int()` truncation (interval 3.34 -> 39, 36, 33, 29, ...);
        # decoders and teacher targets pair with the layers in ascending order.
        return sorted(num_layers - 1 - int(i * interval) for i in range(count))

    @property
    def clip_student_return_indices(self) -> list[int]:
        """Ascending block indices whose outputs are aligned to the CLIP teacher (empty without a CLIP branch)."""
        if not self.clip_teacher_hidden_size:
            return []
        if self.clip_return_indices is not None:
            return sorted(self.clip_return_indices)
        return self._return_indices(self.num_hidden_layers, self.clip_num_return_layers, self.clip_return_interval)

    @property
    def mae_student_return_indices(self) -> list[int]:
        """Ascending block indices whose outputs are aligned to the MAE teacher (empty without an MAE branch)."""
        if not self.mae_teacher_hidden_size:
            return []
        return self._return_indices(self.num_hidden_layers, self.mae_num_return_layers, self.mae_return_interval)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "InternVideo2VisionConfig":
        """Build the configuration of an official size (`internvideo2-s14`, `-b14`, `-l14`, `-1b`, `-6b`)."""
        key = name.lower()
        if key not in INTERNVIDEO2_VISION_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(INTERNVIDEO2_VISION_PRESETS)}.")
        kwargs = copy.deepcopy(INTERNVIDEO2_VISION_PRESETS[key])
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["InternVideo2VisionConfig", "INTERNVIDEO2_VISION_PRESETS"]

"""Configurations of the InternVideo2 stage-2 video-text models: the BERT text encoder with fusion layers and the
composite video-text (dual encoder + matching/MLM heads) configuration."""

import copy

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..config_compat import drop_moved_settings
from ..remote_code import drop_pipelines_served_here
from ..beats.configuration_beats import BeatsConfig
from ..internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig


@strict
class InternVideo2TextConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2TextModel`] and [`InternVideo2TextForMaskedLM`]: the BERT text encoder of the
    stage-2 models. The defaults describe the BERT-large encoder of the official checkpoints (uncased WordPiece
    vocabulary, 24 post-LayerNorm layers of width 1024, fusion from layer 19, cross-attention over 1408-wide tokens of
    the 1B vision encoder).

    Layers `[0, fusion_layer)` are plain BERT layers: they form the *text path*, whose `[CLS]` state is the retrieval
    text feature. Layers `[fusion_layer, num_hidden_layers)` add a cross-attention block over the video tokens (the
    *fusion path*, used by the matching and MLM heads).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act,
        hidden_dropout_prob, attention_probs_dropout_prob, max_position_embeddings, type_vocab_size, layer_norm_eps,
        pad_token_id, initializer_range: as in [`BertConfig`]. `hidden_act` is the exact (erf) GELU, as the original.
        fusion_layer (`int`, defaults to 19): index of the first layer with cross-attention. `num_hidden_layers`
            builds a text-only encoder.
        encoder_width (`int`, defaults to 1408): width of the video tokens the cross-attention attends to (the vision
            width for 1B; the width of the video-token projection, 768, for 6B).
        cls_token_id, mask_token_id (`int`): ids of `[CLS]` (never masked) and `[MASK]` for masked language modelling.
        tie_word_embeddings (`bool`, defaults to `True`): tie the MLM decoder to the word embeddings (as the original).
    """

    model_type = "internvideo2_text"
    base_config_key = "text_config"

    vocab_size: int = 30522
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    cls_token_id: int = 101
    mask_token_id: int = 103
    initializer_range: float = 0.02
    fusion_layer: int = 19
    encoder_width: int = 1408
    tie_word_embeddings: bool = True

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )
        if not 0 <= self.fusion_layer <= self.num_hidden_layers:
            raise ValueError(
                f"fusion_layer ({self.fusion_layer}) must lie in [0, num_hidden_layers={self.num_hidden_layers}]."
            )

    @property
    def num_text_layers(self) -> int:
        """Number of layers of the text path (no cross-attention)."""
        return self.fusion_layer

    @property
    def num_fusion_layers(self) -> int:
        """Number of layers of the fusion path (with cross-attention)."""
        return self.num_hidden_layers - self.fusion_layer


# Official stage-2 models (multi_modality/configs and scripts). The vision part of the stage-2 1B checkpoint is the
# 1B encoder at 4 frames with a separate learned table for single images; the 6B one averages the video table over
# time for images and projects its 3200-wide tokens to 768 before the text encoder attends to them. The stage-2
# checkpoints were trained with the fused (tanh-GELU) MLP, hence `hidden_act="gelu_pytorch_tanh"` (vision preset
# default); the stand-alone demo of the original ran the exact-GELU fallback.
INTERNVIDEO2_VIDEO_TEXT_PRESETS: dict[str, dict] = {
    "internvideo2-stage2-1b": dict(
        vision_config=dict(
            hidden_size=1408,
            num_hidden_layers=40,
            num_attention_heads=16,
            intermediate_size=int(1408 * 48 / 11),
            num_frames=4,
            image_position_embedding_type="separate",
            clip_teacher_hidden_size=3200,
            clip_teacher_final_size=768,
            clip_num_return_layers=6,
            clip_return_interval=1,
        ),
        text_config=dict(encoder_width=1408),
        projection_dim=512,
    ),
    "internvideo2-stage2-6b": dict(
        vision_config=dict(
            hidden_size=3200,
            num_hidden_layers=48,
            num_attention_heads=25,
            intermediate_size=12800,
            num_frames=4,
            image_position_embedding_type="temporal_mean",
            clip_teacher_hidden_size=3200,
            clip_teacher_final_size=768,
            clip_num_return_layers=6,
            clip_return_interval=1,
        ),
        text_config=dict(encoder_width=768),
        projection_dim=768,
        use_vision_token_projection=True,
        vision_token_projection_size=768,
    ),
}


MOVED_SETTINGS = {
    **{name: f"InternVideo2VideoTextArguments.{name}" for name in (
        "mlm_probability", "vtm_hard_negatives", "vtc_loss_weight", "vtm_loss_weight", "mlm_loss_weight")},
    "matching_rerank_k": "the `rerank_k` argument of transformers_internvideo2.tasks.retrieval",
}  # fmt: skip


@strict
class InternVideo2Config(PreTrainedConfig):
    r"""
    Configuration of the stage-2 video-text models [`InternVideo2Model`] (dual encoder) and
    [`InternVideo2ForRetrieval`] (dual encoder + video-text matching head + MLM head). Official sizes:
    [`InternVideo2Config.from_preset`] with `"internvideo2-stage2-1b"` or `"internvideo2-stage2-6b"`.

    Args:
        vision_config (`dict` or [`InternVideo2VisionConfig`]): the video encoder. Its distillation-head fields
            (`clip_teacher_*`) describe the heads the stage-2 checkpoints carry; they are only built with
            `keep_vision_distillation_heads=True`.
        text_config (`dict` or [`InternVideo2TextConfig`]): the BERT text encoder with fusion layers.
        projection_dim (`int`, defaults to 512): width of the shared video-text embedding space (512 for 1B, 768 for
            6B).
        temperature_init (`float`, defaults to 0.07): initial contrastive temperature.
        temperature_min, temperature_max (`float`, defaults to 0.001 and 0.5): the temperature is clamped to this
            range (in place, as the original) at every training forward.
        use_vision_token_projection (`bool`, defaults to `False`): 6B only: project the video tokens with
            `Linear(vision width -> vision_token_projection_size)` + LayerNorm before the text encoder attends to them.
        vision_token_projection_size (`int`, defaults to 768): output width of that projection.
        keep_vision_distillation_heads (`bool`, defaults to `False`): build the vision encoder as
            [`InternVideo2ForPreTraining`] so that the stage-1 distillation decoders stored in stage-2 checkpoints
            are kept (they are unused by every video-text output).
        tie_word_embeddings (`bool`, defaults to `True`): tie the MLM decoder to the word embeddings.
        text_pooling (`str`, defaults to `"cls"`): the text feature that is projected for VTC and retrieval: the
            `[CLS]` state of the text path (`"cls"`, the original) or the masked mean over its tokens (`"mean"`, a
            deviation for text encoders whose `[CLS]` was never trained as a sentence feature, such as a few MiniLM
            layers).
        audio_config (`dict` or [`BeatsConfig`], *optional*): the BEATs audio encoder of the 6B audio-video-text
            model (the original `InternVideo2_Stage2_audiovisual`). `None` (default): a video-text model without audio.
            With audio, the model also has `audio_projection` (pooled audio -> `projection_dim`),
            `audio_token_projection` (`LayerNorm(Linear)` of every audio token to `vision_token_projection_size`, the
            original `av_concat_audio_proj`; needs `use_vision_token_projection=True`, since audio and video tokens
            share that width as the fusion layers' memory), `audio_video_fusion` (`Linear(2 * projection_dim ->
            projection_dim)`, the original `av_fusion`) and, in [`InternVideo2ForRetrieval`], the audio+video
            matching head (`avtm_head`).
        use_audio_matching_head (`bool`, defaults to `False`): also build the audio-text matching head (the original
            `atm_head`, present only when the model was trained with an audio matching loss; the released 6B
            checkpoint has none, so audio-only retrieval is not re-ranked).

    The training settings (loss weights, MLM probability, hard negatives) are `InternVideo2VideoTextArguments`, the
    re-ranking depth an argument of `tasks.retrieval`; configs saved with them load with a warning.
    """

    model_type = "internvideo2"
    sub_configs_defaults = {
        "vision_config": InternVideo2VisionConfig,
        "text_config": InternVideo2TextConfig,
        "audio_config": SubConfigSpec(BeatsConfig, optional=True),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    temperature_init: float = 0.07
    temperature_min: float = 0.001
    temperature_max: float = 0.5
    use_vision_token_projection: bool = False
    vision_token_projection_size: int = 768
    keep_vision_distillation_heads: bool = False
    tie_word_embeddings: bool = True
    text_pooling: str = "cls"
    audio_config: dict | PreTrainedConfig | None = None
    use_audio_matching_head: bool = False
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        drop_moved_settings(type(self).__name__, kwargs, MOVED_SETTINGS)
        drop_pipelines_served_here(kwargs)  # the zero-shot pipeline of a saved folder, when the package serves it
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        memory_width = (
            self.vision_token_projection_size if self.use_vision_token_projection else self.vision_config.hidden_size
        )
        if self.text_config.encoder_width != memory_width:
            raise ValueError(
                f"text_config.encoder_width ({self.text_config.encoder_width}) must equal the width of the video tokens "
                f"the fusion layers attend to ({memory_width}: "
                + ("vision_token_projection_size" if self.use_vision_token_projection else "vision_config.hidden_size")
                + ")."
            )
        if self.keep_vision_distillation_heads and not self.vision_config.clip_teacher_hidden_size:
            raise ValueError("keep_vision_distillation_heads=True needs vision_config.clip_teacher_hidden_size > 0.")
        if not 0.0 < self.temperature_min <= self.temperature_init <= self.temperature_max:
            raise ValueError("Expected 0 < temperature_min <= temperature_init <= temperature_max.")
        if self.text_pooling not in ("cls", "mean"):
            raise ValueError(f"text_pooling must be 'cls' or 'mean'; got {self.text_pooling!r}.")
        if self.audio_config is not None and not self.use_vision_token_projection:
            raise ValueError(
                "audio_config needs use_vision_token_projection=True: audio and video tokens are both projected to "
                "vision_token_projection_size (the original av_concat_dim) to form the fusion layers' memory."
            )
        if self.use_audio_matching_head and self.audio_config is None:
            raise ValueError("use_audio_matching_head=True needs an audio_config.")

    @property
    def has_audio(self) -> bool:
        """Whether the model has the BEATs audio encoder and the audio(-video) heads."""
        return self.audio_config is not None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "InternVideo2Config":
        """Configuration of an official stage-2 model (`internvideo2-stage2-1b`, `internvideo2-stage2-6b`).
        `vision_config` / `text_config` overrides are merged into the preset's sub-config dicts."""
        key = name.lower()
        if key not in INTERNVIDEO2_VIDEO_TEXT_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(INTERNVIDEO2_VIDEO_TEXT_PRESETS)}.")
        kwargs = copy.deepcopy(INTERNVIDEO2_VIDEO_TEXT_PRESETS[key])
        for sub in ("vision_config", "text_config"):
            kwargs[sub].update(overrides.pop(sub, None) or {})
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = [
    "InternVideo2TextConfig",
    "InternVideo2Config",
    "INTERNVIDEO2_VIDEO_TEXT_PRESETS",
]

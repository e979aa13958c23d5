# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Configurations of InternVideo-MM, the multimodal video encoder of InternVideo (v1, arXiv 2212.03191): a CLIP
ViT applied to every frame with UniFormerV2-style temporal modules on its last blocks, the CLIP text tower, and an
optional CoCa-style caption decoder."""

import copy
import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class InternVideoMMVisionConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideoMMVisionModel`], the video tower of InternVideo-MM. Defaults: the B/16 tower.

    The backbone is a CLIP ViT (class token, one learned 2-D position table shared by all frames, `ln_pre`, pre-LN
    blocks with QuickGELU MLPs, no final norm) run on every frame on its own: it has no temporal operation inside the
    blocks. The temporal part reads the outputs of the blocks listed in `extractor_layers`: a depthwise 3x3x3
    convolution over (time, row, column) of their patch tokens, and one *extractor* per listed block (a single
    running query token, cross-attention over all tokens of all frames + MLP). The clip feature is a learned
    sigmoid gate between the final query and the frame-mean of the last block's class token.

    Args:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the CLIP ViT (B/16: 768, 12, 12,
            3072; L/14: 1024, 24, 16, 4096).
        patch_size (`int`, defaults to 16), image_size (`int`, defaults to 224), num_channels (`int`, defaults to 3):
            the frames the position table was learned for; the original never resamples it, neither do we.
        num_frames (`int`, defaults to 8): frames the released models were trained with. Any frame count runs: the
            temporal modules are defined for every length (the original instead regroups the batch by this number).
        extractor_layers (`list[int]`): indices of the blocks whose outputs feed the temporal modules (B/16:
            8-11, L/14: 20-23).
        extractor_num_attention_heads (`int`, defaults to 12): heads of the extractors' cross-attention.
        extractor_mlp_ratio (`float`, defaults to 4.0): extractor MLP width = `round(ratio * hidden_size)`.
        extractor_dropout (`float`, defaults to 0.5): dropout inside the extractor MLPs (training only).
        drop_path_rate (`float`, defaults to 0.0): stochastic depth, linear over the backbone blocks and, separately,
            over the extractors (as the original, which passes one rate to both).
        layer_norm_eps (`float`, defaults to 1e-5): every LayerNorm.
        attention_dropout (`float`, defaults to 0.0): attention dropout of the backbone.
        hidden_act (`str`, defaults to `"quick_gelu"`): `x * sigmoid(1.702 x)`, every CLIP-derived MLP.
        initializer_range (`float`, defaults to 0.02).
    """

    model_type = "internvideo_mm_vision"
    base_config_key = "vision_config"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    patch_size: int = 16
    image_size: int = 224
    num_channels: int = 3
    num_frames: int = 8
    extractor_layers: list[int] | tuple[int, ...] = (8, 9, 10, 11)
    extractor_num_attention_heads: int = 12
    extractor_mlp_ratio: float | int = 4.0
    extractor_dropout: float | int = 0.5
    drop_path_rate: float | int = 0.0
    layer_norm_eps: float = 1e-5
    attention_dropout: float | int = 0.0
    hidden_act: str = "quick_gelu"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.extractor_layers = [int(index) for index in self.extractor_layers]
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size", "image_size",
                     "num_frames", "extractor_num_attention_heads"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name, heads in (("num_attention_heads", self.num_attention_heads),
                            ("extractor_num_attention_heads", self.extractor_num_attention_heads)):  # fmt: skip
            if self.hidden_size % heads:
                raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by {name} ({heads}).")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size}).")
        layers = list(self.extractor_layers)
        if not layers:
            raise ValueError("extractor_layers must name at least one block.")
        if sorted(set(layers)) != layers or layers[0] < 0 or layers[-1] >= self.num_hidden_layers:
            raise ValueError(
                f"extractor_layers must be increasing block indices in [0, {self.num_hidden_layers}); got {layers}."
            )
        if self.hidden_act != "quick_gelu":
            raise ValueError(f"InternVideo-MM uses QuickGELU; hidden_act must be 'quick_gelu', got {self.hidden_act!r}.")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        """Class token + patches of one frame."""
        return 1 + self.grid_size**2

    @property
    def extractor_intermediate_size(self) -> int:
        return round(self.extractor_mlp_ratio * self.hidden_size)


@strict
class InternVideoMMTextConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideoMMTextModel`], the OpenAI CLIP text transformer (causal, pre-LN, QuickGELU, final
    LayerNorm, pooled at the end-of-text token, which is the largest id). Defaults: the B/16 text tower (width 512,
    12 layers, 8 heads; L/14: 768, 12, 12).

    Args:
        vocab_size (`int`, defaults to 49408), max_position_embeddings (`int`, defaults to 77): CLIP's byte-level BPE
            vocabulary and context length.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the transformer.
        layer_norm_eps (`float`, defaults to 1e-5), attention_dropout (`float`, defaults to 0.0).
        hidden_act (`str`, defaults to `"quick_gelu"`).
        pad_token_id, bos_token_id, eos_token_id (`int`): 0, 49406 (`<start_of_text>`), 49407 (`<end_of_text>`).
            Pooling picks the position of the largest id, which is `eos_token_id` in CLIP's vocabulary.
    """

    model_type = "internvideo_mm_text"
    base_config_key = "text_config"

    vocab_size: int = 49408
    max_position_embeddings: int = 77
    hidden_size: int = 512
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    layer_norm_eps: float = 1e-5
    attention_dropout: float | int = 0.0
    hidden_act: str = "quick_gelu"
    pad_token_id: int | None = 0
    bos_token_id: int | None = 49406
    eos_token_id: int | None = 49407
    initializer_range: float = 0.02

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )
        if self.hidden_act != "quick_gelu":
            raise ValueError(f"InternVideo-MM uses QuickGELU; hidden_act must be 'quick_gelu', got {self.hidden_act!r}.")


INTERNVIDEO_MM_PRESETS: dict[str, dict] = {
    # `build_model()` of the original derives these from the state dict; text heads = width // 64.
    "internvideo-mm-b16": dict(
        vision_config=dict(
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, patch_size=16,
            extractor_layers=[8, 9, 10, 11], extractor_num_attention_heads=12,
        ),
        text_config=dict(hidden_size=512, num_hidden_layers=12, num_attention_heads=8, intermediate_size=2048),
        projection_dim=512,
    ),
    "internvideo-mm-l14": dict(
        vision_config=dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, patch_size=14,
            extractor_layers=[20, 21, 22, 23], extractor_num_attention_heads=16,
        ),
        text_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
        projection_dim=768,
    ),
}  # fmt: skip


@strict
class InternVideoMMConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideoMMModel`] (video-text dual encoder) and [`InternVideoMMForCaptioning`] (+ the
    CoCa-style caption decoder of the pre-training). Official sizes: [`InternVideoMMConfig.from_preset`] with
    `"internvideo-mm-b16"` or `"internvideo-mm-l14"`.

    Args:
        vision_config (`dict` or [`InternVideoMMVisionConfig`]), text_config (`dict` or [`InternVideoMMTextConfig`]).
        projection_dim (`int`, defaults to 512): the shared embedding width (B/16 512, L/14 768).
        logit_scale_init_value (`float`, defaults to ln(1/0.07)): initial log of the similarity scale.
        caption_decoder_layers (`int`, defaults to 4): layers of the caption decoder (CoTrain builds 4).
        caption_decoder_heads (`int`, *optional*): its heads; default `text_config.hidden_size // 64`, as the original.
        caption_vocab_size (`int`, *optional*): its output vocabulary; default the text vocabulary.
        caption_num_visual_queries (`int`, defaults to 256): learned queries that pool the video tokens.
        caption_ff_mult (`int`, defaults to 4): SwiGLU width factor of the decoder layers.
    """

    model_type = "internvideo_mm"
    sub_configs_defaults = {"vision_config": InternVideoMMVisionConfig, "text_config": InternVideoMMTextConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    logit_scale_init_value: float = math.log(1 / 0.07)
    caption_decoder_layers: int = 4
    caption_decoder_heads: int | None = None
    caption_vocab_size: int | None = None
    caption_num_visual_queries: int = 256
    caption_ff_mult: int = 4
    initializer_range: float = 0.02

    def validate_architecture(self):
        if self.projection_dim <= 0:
            raise ValueError(f"projection_dim must be positive, got {self.projection_dim}.")
        if self.text_config.hidden_size % self.caption_num_heads:
            raise ValueError(
                f"text_config.hidden_size ({self.text_config.hidden_size}) must be divisible by the caption decoder "
                f"heads ({self.caption_num_heads})."
            )
        if self.caption_decoder_layers < 0 or self.caption_num_visual_queries <= 0:
            raise ValueError("caption_decoder_layers must be >= 0 and caption_num_visual_queries positive.")

    @property
    def caption_num_heads(self) -> int:
        return self.caption_decoder_heads or max(1, self.text_config.hidden_size // 64)

    @property
    def caption_output_size(self) -> int:
        return self.caption_vocab_size or self.text_config.vocab_size

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "InternVideoMMConfig":
        """Configuration of a released model (`internvideo-mm-b16`, `internvideo-mm-l14`); `vision_config` /
        `text_config` overrides are merged into the preset's sub-config dicts."""
        key = name.lower()
        if key not in INTERNVIDEO_MM_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(INTERNVIDEO_MM_PRESETS)}.")
        kwargs = copy.deepcopy(INTERNVIDEO_MM_PRESETS[key])
        for sub in ("vision_config", "text_config"):
            kwargs[sub].update(overrides.pop(sub, None) or {})
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["INTERNVIDEO_MM_PRESETS", "InternVideoMMConfig", "InternVideoMMTextConfig", "InternVideoMMVisionConfig"]

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Configuration of the shot-boundary networks of InternVideo2's data pipeline: TransNetV2 (Souček & Lokoč, arXiv
2008.04838) and AutoShot (Zhu et al., CVPRW 2023), a TransNetV2 variant found by architecture search. Both read
48x27 RGB thumbnails and score every frame for "a shot ends here"."""

import copy

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


LAYER_KINDS = ("separate", "shared")


def _layer(kind: str, mid_channels: int, num_dilations: int) -> dict:
    return {"kind": kind, "mid_channels": mid_channels, "num_dilations": num_dilations}


# Stage widths are the concatenated outputs of the dilated branches (4 x the original `filters`). TransNetV2: every
# layer has four branches (dilations 1, 2, 4, 8), each with its own 1x3x3 convolution to twice the branch width. The
# AutoShot architecture is the searched choice `3_8_8_8_13_12_0` of its supernet: five branches (dilations 1..16) in
# every layer but the first, three layers sharing one spatial convolution across branches ("shared"), and no
# transformer on top (choice 0).
SHOT_BOUNDARY_PRESETS: dict[str, dict] = {
    "transnetv2": dict(
        stage_channels=[64, 128, 256],
        layers=[
            _layer("separate", 32, 4), _layer("separate", 32, 4),
            _layer("separate", 64, 4), _layer("separate", 64, 4),
            _layer("separate", 128, 4), _layer("separate", 128, 4),
        ],  # fmt: skip
    ),
    "autoshot": dict(
        stage_channels=[64, 128, 256],
        layers=[
            _layer("separate", 16, 4), _layer("shared", 64, 5),
            _layer("shared", 128, 5), _layer("shared", 128, 5),
            _layer("separate", 192, 5), _layer("separate", 128, 5),
        ],  # fmt: skip
    ),
}


@strict
class ShotBoundaryConfig(PreTrainedConfig):
    r"""
    Configuration of [`ShotBoundaryModel`]. The defaults are TransNetV2; [`ShotBoundaryConfig.from_preset`]`
    ("autoshot")` gives AutoShot.

    Input: `(batch, frames, frame_height, frame_width, 3)` RGB values in 0..255. Each stage halves the spatial size
    (average pooling), so the classifier sees `stage_channels[-1] x (frame_height // 8) x (frame_width // 8)` features
    per frame, plus the two similarity features.

    Args:
        frame_height, frame_width (`int`, defaults to 27 / 48): thumbnail size the networks were trained at.
        stage_channels (`list[int]`): output channels of each stage (two layers with a residual connection between
            the first layer's output and the second's, then 1x2x2 average pooling).
        layers (`list[dict]`): two per stage, each `{"kind", "mid_channels", "num_dilations"}`: `num_dilations`
            branches with temporal dilations 1, 2, 4, ... whose outputs are concatenated (each branch gets
            `stage_channels // num_dilations` channels, the last one the remainder), then BatchNorm and ReLU.
            `"separate"`: every branch has its own 1x3x3 convolution to `mid_channels` before its 3x1x1 temporal one;
            `"shared"`: one 1x3x3 convolution to `mid_channels` feeds every branch.
        batch_norm_eps (`float`, defaults to 1e-3): the Keras default both originals were trained with.
        use_frame_similarity (`bool`): cosine similarities of each frame's pooled stage features with its
            `similarity_window` neighbours, projected to `similarity_output_size`.
        use_color_histograms (`bool`): the same for 512-bin RGB histograms of the raw thumbnails.
        similarity_size (`int`, defaults to 128): dimension of the projected features whose similarities are taken.
        similarity_window (`int`, defaults to 101): odd number of neighbours (centred) each frame is compared with.
        similarity_output_size (`int`, defaults to 128): output width of both similarity features.
        hidden_size (`int`, defaults to 1024): the fully connected layer before the two heads.
        dropout (`float`, defaults to 0.5): dropout before the heads (training only).
        initializer_range (`float`): unused by the convolutions (He-normal, as the originals); kept for Transformers.
    """

    model_type = "internvideo2_shot_boundary"

    frame_height: int = 27
    frame_width: int = 48
    stage_channels: list[int] | None = None
    layers: list[dict] | None = None
    batch_norm_eps: float = 1e-3
    use_frame_similarity: bool = True
    use_color_histograms: bool = True
    similarity_size: int = 128
    similarity_window: int = 101
    similarity_output_size: int = 128
    hidden_size: int = 1024
    dropout: float | int = 0.5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        preset = SHOT_BOUNDARY_PRESETS["transnetv2"]
        if self.stage_channels is None:
            self.stage_channels = list(preset["stage_channels"])
        if self.layers is None:
            self.layers = copy.deepcopy(preset["layers"])
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if not self.stage_channels or any(c <= 0 for c in self.stage_channels):
            raise ValueError(f"stage_channels must be positive widths, got {self.stage_channels}.")
        if len(self.layers) != 2 * len(self.stage_channels):
            raise ValueError(
                f"layers must hold two layers per stage ({2 * len(self.stage_channels)}), got {len(self.layers)}."
            )
        for index, layer in enumerate(self.layers):
            if set(layer) != {"kind", "mid_channels", "num_dilations"}:
                raise ValueError(f"layers[{index}] must have keys kind, mid_channels, num_dilations; got {layer}.")
            if layer["kind"] not in LAYER_KINDS:
                raise ValueError(f"layers[{index}].kind must be one of {LAYER_KINDS}, got {layer['kind']!r}.")
            width = self.stage_channels[index // 2]
            if not 0 < layer["num_dilations"] <= width or layer["mid_channels"] <= 0:
                raise ValueError(f"layers[{index}] = {layer} does not fit a stage of {width} channels.")
        downsample = 2 ** len(self.stage_channels)
        if self.frame_height < downsample or self.frame_width < downsample:
            raise ValueError(
                f"frames of {self.frame_height}x{self.frame_width} are too small for {len(self.stage_channels)} "
                "halving stages."
            )
        if self.similarity_window % 2 == 0 or self.similarity_window <= 0:
            raise ValueError(f"similarity_window must be a positive odd number, got {self.similarity_window}.")

    @property
    def classifier_input_size(self) -> int:
        downsample = 2 ** len(self.stage_channels)
        size = self.stage_channels[-1] * (self.frame_height // downsample) * (self.frame_width // downsample)
        return size + self.similarity_output_size * (int(self.use_frame_similarity) + int(self.use_color_histograms))

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ShotBoundaryConfig":
        """The configuration of a named architecture (`"transnetv2"`, `"autoshot"`), with `overrides` applied."""
        key = name.lower()
        if key not in SHOT_BOUNDARY_PRESETS:
            raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(SHOT_BOUNDARY_PRESETS)}.")
        kwargs = copy.deepcopy(SHOT_BOUNDARY_PRESETS[key])
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["SHOT_BOUNDARY_PRESETS", "ShotBoundaryConfig"]

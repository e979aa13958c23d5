# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Shot-boundary networks (TransNetV2 and its searched variant AutoShot) as one Transformers model.

Every frame of a window of thumbnails gets two logits: `logits`, "the shot ends at this frame" (the original
single-frame head), and `transition_logits`, "this frame is part of a transition" (the original many-hot head, which
also covers the frames of gradual transitions). Both originals score windows of 100 frames and keep the middle 50; the
windowing belongs to the caller (see `transformers_internvideo2.curation.shots`).
"""


from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ..remote_code import RemoteCodeMixin
from ..strict_loading import StrictLoadingMixin
from .configuration_shot_boundary import ShotBoundaryConfig


@dataclass
class ShotBoundaryOutput(ModelOutput):
    """
    logits (`torch.FloatTensor` of shape `(batch_size, num_frames)`): per-frame logit that a shot ends at the frame
        (apply a sigmoid for the probability).
    transition_logits (`torch.FloatTensor` of shape `(batch_size, num_frames)`): per-frame logit that the frame
        belongs to a transition.
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, hidden_size)`): the features both heads
        read.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`): the output of every
        stage, `(batch_size, channels, num_frames, height, width)` (the features the frame similarities read).
    """

    logits: torch.FloatTensor | None = None
    transition_logits: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class DilatedTemporalConvLayer(nn.Module):
    """Branches of (1x3x3 spatial, 3x1x1 temporal with dilation 2^i) convolutions, concatenated, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kind: str, mid_channels: int, num_dilations: int, eps: float):
        super().__init__()
        self.kind = kind
        branch_width = out_channels // num_dilations
        widths = [branch_width] * (num_dilations - 1) + [out_channels - branch_width * (num_dilations - 1)]
        # "shared": one spatial convolution for all branches; "separate": one per branch
        self.spatial = nn.Conv3d(in_channels, mid_channels, (1, 3, 3), padding=(0, 1, 1), bias=False) if kind == "shared" else None
        self.branches = nn.ModuleList()
        for index, width in enumerate(widths):
            branch = nn.Module()
            if kind == "separate":
                branch.spatial = nn.Conv3d(in_channels, mid_channels, (1, 3, 3), padding=(0, 1, 1), bias=False)
            dilation = 2**index
            branch.temporal = nn.Conv3d(
                mid_channels, width, (3, 1, 1), padding=(dilation, 0, 0), dilation=(dilation, 1, 1), bias=False
            )
            self.branches.append(branch)
        self.norm = nn.BatchNorm3d(out_channels, eps=eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.spatial is not None:
            shared = self.spatial(hidden)
            outputs = [branch.temporal(shared) for branch in self.branches]
        else:
            outputs = [branch.temporal(branch.spatial(hidden)) for branch in self.branches]
        return F.relu(self.norm(torch.cat(outputs, dim=1)))


class ShotBoundaryStage(nn.Module):
    """Two dilated layers; the first one's output is added to the second one's, then 1x2x2 average pooling."""

    def __init__(self, config: ShotBoundaryConfig, index: int, in_channels: int):
        super().__init__()
        width = config.stage_channels[index]
        first, second = config.layers[2 * index], config.layers[2 * index + 1]
        self.layers = nn.ModuleList(
            [
                DilatedTemporalConvLayer(in_channels, width, eps=config.batch_norm_eps, **first),
                DilatedTemporalConvLayer(width, width, eps=config.batch_norm_eps, **second),
            ]
        )
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        shortcut = self.layers[0](hidden)
        return self.pool(self.layers[1](shortcut) + shortcut)


def neighbour_similarities(features: torch.Tensor, window: int) -> torch.Tensor:
    """`(B, T, D)` L2-normalised features -> `(B, T, window)`: each frame's cosine similarity with the frames
    `t - window // 2 .. t + window // 2` (zero outside the sequence)."""
    batch, frames, _ = features.shape
    similarities = torch.bmm(features, features.transpose(1, 2))
    half = window // 2
    padded = F.pad(similarities, (half, half))
    offsets = torch.arange(frames, device=features.device)[:, None] + torch.arange(window, device=features.device)
    return padded.gather(2, offsets.expand(batch, frames, window))


def color_histograms(frames: torch.Tensor) -> torch.Tensor:
    """`(B, T, H, W, 3)` RGB 0..255 -> `(B, T, 512)` L2-normalised histograms over the top 3 bits of each channel."""
    values = frames.to(torch.int64) >> 5
    bins = (values[..., 0] << 6) + (values[..., 1] << 3) + values[..., 2]
    batch, count = bins.shape[:2]
    bins = bins.reshape(batch * count, -1)
    histograms = torch.zeros(batch * count, 512, device=frames.device, dtype=torch.float32)
    histograms.scatter_add_(1, bins, torch.ones_like(bins, dtype=torch.float32))
    return F.normalize(histograms.reshape(batch, count, 512), p=2, dim=2)


class FrameSimilarityFeature(nn.Module):
    """Similarities of the frames' spatially pooled stage features, through a projection, to a feature per frame."""

    def __init__(self, config: ShotBoundaryConfig):
        super().__init__()
        self.window = config.similarity_window
        self.projection = nn.Linear(sum(config.stage_channels), config.similarity_size)
        self.output = nn.Linear(config.similarity_window, config.similarity_output_size)

    def forward(self, stage_outputs: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([output.mean(dim=(3, 4)) for output in stage_outputs], dim=1).transpose(1, 2)
        projected = F.normalize(self.projection(pooled), p=2, dim=2)
        return F.relu(self.output(neighbour_similarities(projected, self.window)))


class ColorHistogramFeature(nn.Module):
    def __init__(self, config: ShotBoundaryConfig):
        super().__init__()
        self.window = config.similarity_window
        self.output = nn.Linear(config.similarity_window, config.similarity_output_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.relu(self.output(neighbour_similarities(color_histograms(frames), self.window)))


class ShotBoundaryPreTrainedModel(StrictLoadingMixin, RemoteCodeMixin, PreTrainedModel):
    config: ShotBoundaryConfig
    remote_code_auto_map = {
        "AutoConfig": "shot_boundary.configuration_shot_boundary.ShotBoundaryConfig",
        "AutoModel": "shot_boundary.modeling_shot_boundary.ShotBoundaryModel",
    }
    base_model_prefix = "shot_boundary"
    main_input_name = "pixel_values"
    input_modalities = "video"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """He-normal convolutions (both originals), Glorot-uniform linear layers with zero bias (the Keras default
        TransNetV2 was trained from), unit BatchNorm. Released weights overwrite all of it."""
        if isinstance(module, nn.Conv3d):
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if module.running_mean is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)


class ShotBoundaryModel(ShotBoundaryPreTrainedModel):
    """TransNetV2 / AutoShot: thumbnails in, per-frame shot-boundary logits out."""

    def __init__(self, config: ShotBoundaryConfig):
        super().__init__(config)
        channels = [3, *config.stage_channels]
        self.stages = nn.ModuleList(
            [ShotBoundaryStage(config, index, channels[index]) for index in range(len(config.stage_channels))]
        )
        self.frame_similarity = FrameSimilarityFeature(config) if config.use_frame_similarity else None
        self.color_histogram = ColorHistogramFeature(config) if config.use_color_histograms else None
        self.fc = nn.Linear(config.classifier_input_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.boundary_head = nn.Linear(config.hidden_size, 1)
        self.transition_head = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ShotBoundaryOutput | tuple:
        r"""
        pixel_values (`torch.Tensor` of shape `(batch_size, num_frames, frame_height, frame_width, 3)`):
            RGB thumbnails with values 0..255 (`uint8` or float; the colour histograms use the integer values).
        output_hidden_states (`bool`, *optional*): also return every stage's output.
        """
        config = self.config
        expected = (config.frame_height, config.frame_width, 3)
        if pixel_values.dim() != 5 or tuple(pixel_values.shape[2:]) != expected:
            raise ValueError(
                f"pixel_values must be (batch, frames, {expected[0]}, {expected[1]}, 3) RGB thumbnails, got shape "
                f"{tuple(pixel_values.shape)}."
            )
        dtype = self.fc.weight.dtype
        hidden = pixel_values.permute(0, 4, 1, 2, 3).to(dtype) / 255.0
        stage_outputs = []
        for stage in self.stages:
            hidden = stage(hidden)
            stage_outputs.append(hidden)
        batch, _, frames = hidden.shape[:3]
        features = [hidden.permute(0, 2, 3, 4, 1).reshape(batch, frames, -1)]
        # the original order of the concatenation: colour histograms, frame similarities, convolutional features
        if self.frame_similarity is not None:
            features.insert(0, self.frame_similarity(stage_outputs))
        if self.color_histogram is not None:
            features.insert(0, self.color_histogram(pixel_values).to(dtype))
        hidden = self.dropout(F.relu(self.fc(torch.cat(features, dim=2))))
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        output = ShotBoundaryOutput(
            logits=self.boundary_head(hidden).squeeze(-1),
            transition_logits=self.transition_head(hidden).squeeze(-1),
            last_hidden_state=hidden,
            hidden_states=tuple(stage_outputs) if output_hidden_states else None,
        )
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        return output if return_dict else output.to_tuple()


__all__ = ["ShotBoundaryModel", "ShotBoundaryOutput", "ShotBoundaryPreTrainedModel"]

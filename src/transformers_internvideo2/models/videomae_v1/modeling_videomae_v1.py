# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""The VideoMAE v1 classifiers of InternVideo (v1) as a thin subclass of Transformers' `VideoMAEForVideoClassification`.

The architecture and the state-dict keys are Transformers' VideoMAE; a converted folder's weights load into
`VideoMAEForVideoClassification` as they are. Two things differ from it, both to reproduce the original exactly:

1. **Position table at other sizes.** The original never stores its fixed sinusoid table; its fine-tuning script
   builds the table of the 224 px / 16-frame grid and resizes it (bicubic per temporal slot over rows and columns,
   then linear over time) to the model's grid. [`videomae_v1_position_table`] computes that table from the config
   (like Transformers computes its own), and the subclass installs it. At 224 px / 16 frames it *is* Transformers'
   table, so released 224/16 classifiers are Transformers' VideoMAE up to the next point.
2. **`fc_norm` epsilon.** Transformers builds `fc_norm` with PyTorch's default `eps=1e-5`; the original uses the
   model's `1e-6` (`layer_norm_eps`). The subclass uses `layer_norm_eps`.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import VideoMAEForVideoClassification, VideoMAEModel
import contextlib
import threading

import numpy as np
from transformers.models.videomae import modeling_videomae

from ...losses.classification import video_classification_loss
from ..remote_code import RemoteCodeMixin
from .configuration_videomae_v1 import InternVideoMAEConfig


def _square(value) -> int:
    return value if isinstance(value, int) else value[0]


def sinusoid_table(num_positions: int, width: int) -> torch.Tensor:
    """`(1, num_positions, width)` float32: angle `pos / 10000^(2 * (j // 2) / width)` in float64, sine on even and
    cosine on odd channels (the table of the original and of Transformers' VideoMAE, vectorised)."""
    exponents = 2 * (np.arange(width) // 2) / width
    angles = np.arange(num_positions, dtype=np.float64)[:, None] / np.power(10000.0, exponents)[None, :]
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.from_numpy(angles).float().unsqueeze(0)


def videomae_v1_position_table(config: InternVideoMAEConfig) -> torch.Tensor:
    """`(1, T' * h * w, hidden_size)` float32: the sinusoid table of the `position_table_*` grid, resized to the
    model's grid as the original fine-tuning script does (bicubic over space, then linear over time)."""
    patch, width = _square(config.patch_size), config.hidden_size
    source_side = config.position_table_image_size // patch
    source_time = config.position_table_num_frames // config.tubelet_size
    side = _square(config.image_size) // patch
    time = config.num_frames // config.tubelet_size
    table = sinusoid_table(source_time * source_side * source_side, width)
    if side != source_side:
        grid = table.reshape(source_time, source_side, source_side, width).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
        table = grid.permute(0, 2, 3, 1).reshape(1, -1, width)
    if time != source_time:
        grid = table.reshape(source_time, side, side, width).permute(1, 2, 3, 0).reshape(-1, width, source_time)
        grid = F.interpolate(grid, size=time, mode="linear", align_corners=False)
        table = grid.reshape(side, side, width, time).permute(3, 0, 1, 2).reshape(1, -1, width)
    return table.contiguous()


_CONSTRUCTION_LOCK = threading.RLock()


@contextlib.contextmanager
def _vectorised_transformers_table():
    """Transformers' VideoMAE builds its (soon replaced) table with a Python loop over every entry: minutes for
    ViT-H at 384 px / 32 frames. During our constructors its module uses [`sinusoid_table`] instead (same values)."""
    with _CONSTRUCTION_LOCK:
        original = modeling_videomae.get_sinusoid_encoding_table
        modeling_videomae.get_sinusoid_encoding_table = sinusoid_table
        try:
            yield
        finally:
            modeling_videomae.get_sinusoid_encoding_table = original


class InternVideoMAEModel(RemoteCodeMixin, VideoMAEModel):
    """Transformers' `VideoMAEModel` with the v1 position table (see the module docstring)."""

    config_class = InternVideoMAEConfig
    remote_code_auto_map = {
        "AutoConfig": "videomae_v1.configuration_videomae_v1.InternVideoMAEConfig",
        "AutoModel": "videomae_v1.modeling_videomae_v1.InternVideoMAEModel",
        "AutoModelForVideoClassification": "videomae_v1.modeling_videomae_v1.InternVideoMAEForVideoClassification",
    }

    def __init__(self, config: InternVideoMAEConfig):
        with _vectorised_transformers_table():
            super().__init__(config)
        self.embeddings.position_embeddings = videomae_v1_position_table(config)


class InternVideoMAEForVideoClassification(RemoteCodeMixin, VideoMAEForVideoClassification):
    """Transformers' `VideoMAEForVideoClassification` with the v1 position table and `fc_norm` epsilon."""

    config_class = InternVideoMAEConfig
    remote_code_auto_map = InternVideoMAEModel.remote_code_auto_map

    def __init__(self, config: InternVideoMAEConfig):
        with _vectorised_transformers_table():
            super().__init__(config)
        self.videomae.embeddings.position_embeddings = videomae_v1_position_table(config)
        if self.fc_norm is not None:
            self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.post_init()

    @property
    def loss_function(self):
        """Transformers' classification losses, except that single-label class indices go through the package's
        [`video_classification_loss`]: a batch whose labels are all ignored (-100) gives 0, not NaN."""
        transformers_loss = super().loss_function

        def loss(labels, logits, config, **kwargs):
            single_label = config.problem_type in (None, "single_label_classification") and config.num_labels > 1
            if single_label and labels.ndim == 1 and not labels.is_floating_point():
                return video_classification_loss(logits, labels, kwargs.get("num_items_in_batch"))
            return transformers_loss(labels, logits, config, **kwargs)

        return loss


__all__ = ["InternVideoMAEForVideoClassification", "InternVideoMAEModel", "sinusoid_table", "videomae_v1_position_table"]

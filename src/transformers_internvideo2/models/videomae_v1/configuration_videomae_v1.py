# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Configuration of the VideoMAE v1 classifiers released with InternVideo (v1): Transformers' `VideoMAEConfig` plus
the grid the fixed position table was computed for before the fine-tuning script resized it."""

from huggingface_hub.dataclasses import strict
from transformers import VideoMAEConfig


@strict
class InternVideoMAEConfig(VideoMAEConfig):
    r"""
    [`VideoMAEConfig`] with two more fields. Everything else is Transformers' VideoMAE (patch tubelets, q/v-bias
    attention, exact GELU, mean pooling + `fc_norm`); the released models use `layer_norm_eps=1e-6`.

    Args:
        position_table_image_size (`int`, defaults to 224), position_table_num_frames (`int`, defaults to 16): the
            grid of the sinusoid position table the original builds whatever the input size. When the model's
            `image_size` / `num_frames` differ (e.g. ViT-H K400 at 384 px / 32 frames), the table is that one resized
            (bicubic over the rows and columns of each temporal slot, then linear over time, `align_corners=False`),
            as the original fine-tuning script does, **not** a sinusoid table recomputed for the new grid (what
            Transformers' VideoMAE computes). At 224 px / 16 frames both are the same table.
    """

    model_type = "internvideo_videomae"

    position_table_image_size: int = 224
    position_table_num_frames: int = 16

    def validate_architecture(self):
        super_validate = getattr(super(), "validate_architecture", None)
        if super_validate is not None:
            super_validate()
        patch = self.patch_size if isinstance(self.patch_size, int) else self.patch_size[0]
        size = self.image_size if isinstance(self.image_size, int) else self.image_size[0]
        if not isinstance(self.image_size, int) and self.image_size[0] != self.image_size[1]:
            raise ValueError("VideoMAE v1 position tables are square: image_size must be an int.")
        for name, value, step in (("image_size", size, patch), ("position_table_image_size",
                                  self.position_table_image_size, patch), ("num_frames", self.num_frames,
                                  self.tubelet_size), ("position_table_num_frames", self.position_table_num_frames,
                                  self.tubelet_size)):  # fmt: skip
            if value <= 0 or value % step:
                raise ValueError(f"{name} ({value}) must be a positive multiple of {step}.")


__all__ = ["InternVideoMAEConfig"]

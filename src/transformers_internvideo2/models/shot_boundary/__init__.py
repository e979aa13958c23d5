"""Shot-boundary networks of the data pipeline: TransNetV2 and AutoShot."""

from .configuration_shot_boundary import SHOT_BOUNDARY_PRESETS, ShotBoundaryConfig
from .modeling_shot_boundary import ShotBoundaryModel, ShotBoundaryOutput, ShotBoundaryPreTrainedModel


__all__ = [
    "SHOT_BOUNDARY_PRESETS",
    "ShotBoundaryConfig",
    "ShotBoundaryModel",
    "ShotBoundaryOutput",
    "ShotBoundaryPreTrainedModel",
]

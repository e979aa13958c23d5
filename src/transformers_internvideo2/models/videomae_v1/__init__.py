"""VideoMAE v1 classifiers of InternVideo (v1): Transformers' VideoMAE with the original position-table rule."""

from .configuration_videomae_v1 import InternVideoMAEConfig
from .modeling_videomae_v1 import (
    InternVideoMAEForVideoClassification,
    InternVideoMAEModel,
    videomae_v1_position_table,
)


__all__ = [
    "InternVideoMAEConfig",
    "InternVideoMAEForVideoClassification",
    "InternVideoMAEModel",
    "videomae_v1_position_table",
]

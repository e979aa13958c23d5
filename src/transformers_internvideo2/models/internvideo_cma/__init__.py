"""Cross-model attention (CMA) fusion of InternVideo (v1), built from the paper (never released by its authors)."""

from .configuration_internvideo_cma import InternVideoCMAConfig
from .modeling_internvideo_cma import InternVideoCMAForVideoClassification, InternVideoCMAPreTrainedModel


__all__ = ["InternVideoCMAConfig", "InternVideoCMAForVideoClassification", "InternVideoCMAPreTrainedModel"]

"""BEATs, the audio encoder of InternVideo2's 6B stage-2 (audio-video-text) model, and its filterbank feature
extractor."""

from .configuration_beats import BEATS_PRESETS, BeatsConfig
from .feature_extraction_beats import BeatsFeatureExtractor, kaldi_fbank, kaldi_mel_banks
from .modeling_beats import BeatsModel, BeatsPreTrainedModel


__all__ = [
    "BEATS_PRESETS",
    "BeatsConfig",
    "BeatsFeatureExtractor",
    "BeatsModel",
    "BeatsPreTrainedModel",
    "kaldi_fbank",
    "kaldi_mel_banks",
]

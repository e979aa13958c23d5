# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Audio feature extractor of InternVideo2's BEATs audio encoder: waveform -> normalised 64-bin Kaldi filterbank.

The recipe is the one of the original 6B stage-2 data path (`dataset/utils.load_audio_from_path` for audio files,
`dataset/av_utils.load_full_audio_av` for the audio of a video), reproduced with a pure-torch Kaldi filterbank
([`kaldi_fbank`], which matches `torchaudio.compliance.kaldi.fbank` with the arguments the original passes) because
torchaudio does not pair with the pinned torch:

    samples in [-1, 1] (mono, 16 kHz) -> limit to 10 s -> x 2**15 -> Kaldi fbank (64 mel bins, 25 ms windows every
    10 ms, Povey window, pre-emphasis 0.97, DC removal, 512-point power spectrum, no dither, log with a float32-eps
    floor, 20 Hz .. Nyquist) -> (fbank - 15.41663) / (2 * 6.55582) -> pad to 998 frames

Ten seconds give exactly 998 frames; BEATs turns a `(998, 64)` fbank into 62 x 4 = 248 patch tokens.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging

from .audio_decoding import resample_waveform, validate_sampling_rate
from .remote_code import RemoteCodeMixin


logger = logging.get_logger(__name__)

__all__ = ["BeatsFeatureExtractor", "kaldi_fbank", "kaldi_mel_banks"]

PaddingMode = Literal["waveform", "fbank"]
CropMode = Literal["start", "random"]
_PADDING_MODES = ("waveform", "fbank")
_CROP_MODES = ("start", "random")
_MAX_CHANNELS = 64


# ----------------------------------------------------------------------------------------------------------------
# Kaldi filterbank in torch
# ----------------------------------------------------------------------------------------------------------------
def _mel(frequency):
    """Kaldi's mel scale, `1127 ln(1 + f / 700)` (a float for a float, elementwise for a tensor)."""
    if torch.is_tensor(frequency):
        return 1127.0 * (1.0 + frequency / 700.0).log()
    return 1127.0 * math.log(1.0 + frequency / 700.0)


@functools.lru_cache(maxsize=8)
def kaldi_mel_banks(
    num_mel_bins: int, fft_size: int, sampling_rate: float, low_freq: float = 20.0, high_freq: float = 0.0
) -> torch.Tensor:
    """Kaldi's triangular mel filters, `(num_mel_bins, fft_size // 2 + 1)` float32 (the Nyquist column is zero, as
    in Kaldi/torchaudio, which build the filters over the first `fft_size / 2` bins only).

    Each filter rises linearly *in mel* from its left edge to its centre and falls to its right edge; the
    `num_mel_bins + 2` edges are equally spaced in mel between `low_freq` and `high_freq` (`high_freq <= 0` counts
    from Nyquist). Computed in float32 like torchaudio (no VTLN warping). The returned tensor is cached: do not modify
    it in place.
    """
    if num_mel_bins <= 3:
        raise ValueError(f"num_mel_bins must be > 3 (Kaldi), got {num_mel_bins}.")
    if fft_size % 2:
        raise ValueError(f"fft_size must be even, got {fft_size}.")
    nyquist = 0.5 * sampling_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"Bad mel range: low_freq {low_freq}, high_freq {high_freq}, Nyquist {nyquist}.")
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    mel_delta = (mel_high - mel_low) / (num_mel_bins + 1)
    index = torch.arange(num_mel_bins, dtype=torch.float32)[:, None]
    left = mel_low + index * mel_delta
    center = mel_low + (index + 1.0) * mel_delta
    right = mel_low + (index + 2.0) * mel_delta
    bin_mel = _mel((sampling_rate / fft_size) * torch.arange(fft_size // 2, dtype=torch.float32))[None]
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def kaldi_fbank(
    waveform: torch.Tensor,
    sampling_rate: int = 16000,
    num_mel_bins: int = 64,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    preemphasis: float = 0.97,
) -> torch.Tensor:
    """Log mel filterbank of a mono waveform, as `torchaudio.compliance.kaldi.fbank` computes it with Kaldi's
    defaults for everything but the arguments here (no dither, DC offset removed per frame, Povey window
    `hann(N, periodic=False) ** 0.85`, FFT size rounded up to a power of two, power spectrum, no energy term,
    `snip_edges=True`: only whole frames, the first starting at sample 0).

    Args:
        waveform: `(num_samples,)` floating samples **on Kaldi's 16-bit scale** (the original multiplies samples in
            [-1, 1] by 2**15 first). The computation runs in the waveform's dtype (float32 for the reference).

    Returns:
        `(num_frames, num_mel_bins)` with `num_frames = 1 + (num_samples - frame_length) // frame_shift` (0 frames
        when the waveform is shorter than one window), natural log of the mel energies floored at float32's eps
        (so silence gives `log(1.1920929e-07) = -15.9424`).
    """
    if waveform.dim() != 1:
        raise ValueError(f"kaldi_fbank expects a 1-D (mono) waveform, got shape {tuple(waveform.shape)}.")
    if not waveform.is_floating_point():
        raise TypeError(f"kaldi_fbank expects floating-point samples, got {waveform.dtype}.")
    # Kaldi/torchaudio truncate the products (16000 * 25 ms = 400 samples, 16000 * 10 ms = 160).
    window_size = int(sampling_rate * frame_length_ms * 0.001)
    window_shift = int(sampling_rate * frame_shift_ms * 0.001)
    fft_size = 1 << (window_size - 1).bit_length()
    dtype, device = waveform.dtype, waveform.device
    if waveform.shape[0] < window_size:
        return waveform.new_zeros((0, num_mel_bins))
    frames = waveform.unfold(0, window_size, window_shift)  # (num_frames, window_size), snip_edges
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # x[n-1], with x[-1] := x[0] (replicate)
    frames = frames - preemphasis * previous
    povey = torch.hann_window(window_size, periodic=False, dtype=dtype, device=device).pow(0.85)
    frames = torch.nn.functional.pad(frames * povey, (0, fft_size - window_size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = kaldi_mel_banks(num_mel_bins, fft_size, float(sampling_rate), float(low_freq), float(high_freq))
    energies = torch.mm(power, banks.to(device=device, dtype=dtype).T)
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()


# ----------------------------------------------------------------------------------------------------------------
# Feature extractor
# ----------------------------------------------------------------------------------------------------------------
class BeatsFeatureExtractor(RemoteCodeMixin, SequenceFeatureExtractor):
    r"""
    Turns waveforms into the normalised Kaldi filterbanks that [`BeatsModel`] reads (`input_features`, shape
    `(batch, 998, 64)` for the defaults), exactly as InternVideo2's 6B stage-2 data path.

    Steps for every clip: average the channels (a `(channels, samples)` clip), resample to `sampling_rate`
    (torchaudio's default windowed-sinc resampler, see [`resample_waveform`]), limit to `max_length_seconds` (crop),
    multiply by `waveform_scale` (2**15), [`kaldi_fbank`], normalise as `(fbank - fbank_mean) / (2 * fbank_std)`, and
    bring to `num_frames` frames (pad).

    **Padding** (`padding_mode`) — the original has two paths that differ for clips shorter than 10 s:

    - `"waveform"` (the audio-file path, `load_audio_from_path`): the *waveform* is zero-padded to 10 s before the
      filterbank, so the padding frames are silent frames: `(log(eps) - 15.41663) / 13.11164 = -2.3917`.
    - `"fbank"` (the audio-of-a-video path, `load_full_audio_av`): the filterbank of the short clip is padded with
      rows of `0.0` (in the normalised domain) up to `num_frames`.

    No padding mask reaches the model in either path (the original attends to padded frames like real ones), so the
    feature extractor returns none. Pick the mode that matches how the data was (or will be) made: audio files ->
    `"waveform"`, audio tracks of videos -> `"fbank"`.

    **Cropping** (`crop_mode`) — clips longer than `max_length_seconds`:

    - `"start"` (default, evaluation): keep the first `max_length_seconds`. Deterministic, so scores are
      reproducible, and identical to what the original does for *mono* audio files at any time.
    - `"random"` (training): a uniformly drawn window of `max_length_seconds` (from `generator`, or torch's global
      RNG, so `torch.manual_seed` / `transformers.set_seed` make it reproducible), the augmentation the original
      intends.

    The original is inconsistent here: its crop test reads the first dimension of a `(channels, samples)` tensor, so
    a mono audio file is never randomly cropped (it is cut to its first 10 s), while stereo files and the audio of
    videos get a random window — at evaluation time too, which makes its evaluation non-deterministic. We use the
    deterministic start window for evaluation and a seeded random window for training, whatever the channel count.

    **Reproducibility across CPUs**: bands far below a frame's strongest band (about 90 dB and more; in practice the
    top bands of resampled audio, whose low-pass removes everything above 0.99 x 8 kHz) hold float32 FFT rounding
    noise, whose exact values depend on the FFT code path MKL picks for the CPU (up to 7e-3 apart in normalised units
    between an AVX-512 machine and MKL's generic path; torchaudio itself behaves the same). Everything else agrees to
    ~1e-5. For bit-reproducible features across machines start the process with `MKL_CBWR=COMPATIBLE`.

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64): mel filters (the feature size; BEATs in InternVideo2 reads
            64, unlike upstream BEATs' 128).
        sampling_rate (`int`, *optional*, defaults to 16000): rate of the filterbank input; other rates are resampled.
        frame_length_ms / frame_shift_ms (`float`, *optional*, defaults to 25 / 10): Kaldi window and hop.
        low_freq / high_freq (`float`, *optional*, defaults to 20 / 0): mel range in Hz (`high_freq <= 0` counts back
            from Nyquist).
        preemphasis (`float`, *optional*, defaults to 0.97): Kaldi pre-emphasis coefficient.
        waveform_scale (`float`, *optional*, defaults to 32768.0): factor applied to samples in [-1, 1] (Kaldi works on
            the 16-bit integer scale).
        fbank_mean / fbank_std (`float`, *optional*, defaults to 15.41663 / 6.55582): normalisation constants of the
            original (note the factor 2 on the std).
        max_length_seconds (`float`, *optional*, defaults to 10.0): crop length, and the length the output is padded
            to (`num_frames` frames).
        padding_mode (`str`, *optional*, defaults to `"waveform"`): see above; overridable per call.
        crop_mode (`str`, *optional*, defaults to `"start"`): see above; overridable per call.
        padding_value (`float`, *optional*, defaults to 0.0): value of the fbank rows added in `"fbank"` mode.
    """

    remote_code_auto_map = {
        "AutoFeatureExtractor": "beats.feature_extraction_beats.BeatsFeatureExtractor"
    }
    model_input_names = ["input_features"]

    def __init__(
        self,
        num_mel_bins: int = 64,
        sampling_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        preemphasis: float = 0.97,
        waveform_scale: float = 32768.0,
        fbank_mean: float = 15.41663,
        fbank_std: float = 6.55582,
        max_length_seconds: float = 10.0,
        padding_mode: PaddingMode = "waveform",
        crop_mode: CropMode = "start",
        padding_value: float = 0.0,
        **kwargs,
    ):
        feature_size = kwargs.pop("feature_size", num_mel_bins)
        if feature_size != num_mel_bins:
            raise ValueError(f"feature_size ({feature_size}) must equal num_mel_bins ({num_mel_bins}).")
        kwargs.setdefault("return_attention_mask", False)
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.num_mel_bins = num_mel_bins
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.low_freq = low_freq
        self.high_freq = high_freq
        self.preemphasis = preemphasis
        self.waveform_scale = waveform_scale
        self.fbank_mean = fbank_mean
        self.fbank_std = fbank_std
        self.max_length_seconds = max_length_seconds
        self.padding_mode = self._check_choice("padding_mode", padding_mode, _PADDING_MODES)
        self.crop_mode = self._check_choice("crop_mode", crop_mode, _CROP_MODES)
        validate_sampling_rate(sampling_rate)
        if self.max_samples < self.window_size:
            raise ValueError(
                f"max_length_seconds ({max_length_seconds}) is shorter than one {frame_length_ms} ms window."
            )
        kaldi_mel_banks(num_mel_bins, 1 << (self.window_size - 1).bit_length(), float(sampling_rate),
                        float(low_freq), float(high_freq))  # fmt: skip  # validates the mel range now

    @staticmethod
    def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
        return value

    # ------------------------------------------------------------------------------------------------------------
    @property
    def window_size(self) -> int:
        """Samples per analysis window (400 at 16 kHz, 25 ms)."""
        return int(self.sampling_rate * self.frame_length_ms * 0.001)

    @property
    def window_shift(self) -> int:
        """Samples between window starts (160 at 16 kHz, 10 ms)."""
        return int(self.sampling_rate * self.frame_shift_ms * 0.001)

    @property
    def max_samples(self) -> int:
        """Crop length in samples (160000 for 10 s at 16 kHz)."""
        return int(round(self.max_length_seconds * self.sampling_rate))

    @property
    def num_frames(self) -> int:
        """Frames of every output (998 for 10 s): the frame count of a `max_samples` waveform."""
        return 1 + (self.max_samples - self.window_size) // self.window_shift

    # ------------------------------------------------------------------------------------------------------------
    def _to_clips(self, raw_audio) -> list[torch.Tensor]:
        """Normalise the accepted input forms to a list of float32 tensors `(samples,)` or `(channels, samples)`."""
        if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
            if raw_audio.ndim == 1:
                clips = [raw_audio]
            elif raw_audio.ndim == 2 and raw_audio.shape[1] <= _MAX_CHANNELS < raw_audio.shape[0]:
                # read as a batch this would be thousands of clips of a few samples each (silence after padding)
                raise ValueError(
                    f"Got an array of shape {tuple(raw_audio.shape)}: that looks like one (samples, channels) clip, "
                    "but a 2-D array is read as a batch (batch, samples). Pass [clip.T] for a (channels, samples) "
                    "clip, or clip.mean(-1) for mono."
                )
            elif raw_audio.ndim in (2, 3):  # (batch, samples) mono batch, or (batch, channels, samples)
                clips = list(raw_audio)
            else:
                raise ValueError(
                    "Expected audio of shape (samples,), (batch, samples) or (batch, channels, samples), got an "
                    f"array of shape {tuple(raw_audio.shape)}."
                )
        elif isinstance(raw_audio, Sequence) and not isinstance(raw_audio, (str, bytes)):
            if len(raw_audio) == 0:
                raise ValueError("Got an empty batch: expected at least one waveform.")
            if all(isinstance(item, (int, float, np.number)) and not isinstance(item, bool) for item in raw_audio):
                clips = [np.asarray(raw_audio, dtype=np.float32)]  # one clip given as a list of numbers
            else:
                clips = list(raw_audio)
        else:
            raise TypeError(
                "Expected a waveform (numpy array, torch tensor or list of floats) or a list of waveforms, got "
                f"{type(raw_audio).__name__}. To read a file, decode it first (media.audio_decoding.decode_audio)."
            )
        if not clips:  # a (0, samples) or (0, channels, samples) array
            raise ValueError(f"Got an empty batch (an array of shape {tuple(raw_audio.shape)}): expected at least one waveform.")
        return [self._to_tensor(clip, index) for index, clip in enumerate(clips)]

    @staticmethod
    def _to_tensor(clip, index: int) -> torch.Tensor:
        if isinstance(clip, (list, tuple)):
            clip = np.asarray(clip)
        if isinstance(clip, np.ndarray):
            if not np.issubdtype(clip.dtype, np.floating):
                raise TypeError(
                    f"Waveform {index} has dtype {clip.dtype}; expected floating-point samples in [-1, 1] (divide "
                    "16-bit PCM by 32768)."
                )
            clip = torch.from_numpy(np.ascontiguousarray(clip))
        if not torch.is_tensor(clip):
            raise TypeError(f"Waveform {index} is a {type(clip).__name__}; expected a numpy array or torch tensor.")
        if not clip.is_floating_point():
            raise TypeError(
                f"Waveform {index} has dtype {clip.dtype}; expected floating-point samples in [-1, 1] (divide 16-bit "
                "PCM by 32768)."
            )
        if clip.dim() not in (1, 2):
            raise ValueError(
                f"Waveform {index} has shape {tuple(clip.shape)}; expected (samples,) or (channels, samples)."
            )
        if clip.dim() == 2 and (clip.shape[0] > _MAX_CHANNELS or clip.shape[0] > clip.shape[1]):
            raise ValueError(
                f"Waveform {index} has shape {tuple(clip.shape)}, which does not look like (channels, samples); "
                "transpose (samples, channels) audio first."
            )
        if clip.shape[-1] == 0:
            raise ValueError(f"Waveform {index} is empty (0 samples).")
        clip = clip.detach().to(device="cpu", dtype=torch.float32)
        if not torch.isfinite(clip).all():
            raise ValueError(f"Waveform {index} contains NaN or infinite samples.")
        peak = float(clip.abs().max())
        # Processed as given (as the original would), but a scale mistake ruins every feature. Codec and resampler
        # overshoot of full-scale audio stays well below 2; PCM values stored as floats are in the hundreds.
        if peak > 2.0:
            logger.warning(
                f"Waveform {index} has samples up to {peak:.4g}, far outside [-1, 1]; it is processed as given. If "
                "these are 16-bit PCM values stored as floats, divide them by 32768."
            )
        return clip

    def _crop(self, waveform: torch.Tensor, crop_mode: str, generator: torch.Generator | None) -> torch.Tensor:
        excess = waveform.shape[0] - self.max_samples
        if excess <= 0:
            return waveform
        start = 0
        if crop_mode == "random":
            start = int(torch.randint(0, excess + 1, (), generator=generator))
        return waveform[start : start + self.max_samples]

    def extract_fbank(
        self,
        waveform: torch.Tensor,
        padding_mode: PaddingMode | None = None,
        crop_mode: CropMode | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Normalised `(num_frames, num_mel_bins)` features of one mono float32 waveform already at `sampling_rate`."""
        padding_mode = self._check_choice("padding_mode", padding_mode or self.padding_mode, _PADDING_MODES)
        crop_mode = self._check_choice("crop_mode", crop_mode or self.crop_mode, _CROP_MODES)
        waveform = self._crop(waveform, crop_mode, generator)
        if padding_mode == "waveform" and waveform.shape[0] < self.max_samples:
            waveform = torch.nn.functional.pad(waveform, (0, self.max_samples - waveform.shape[0]))
        fbank = kaldi_fbank(
            waveform * self.waveform_scale,
            sampling_rate=self.sampling_rate,
            num_mel_bins=self.num_mel_bins,
            frame_length_ms=self.frame_length_ms,
            frame_shift_ms=self.frame_shift_ms,
            low_freq=self.low_freq,
            high_freq=self.high_freq,
            preemphasis=self.preemphasis,
        )
        fbank = (fbank - self.fbank_mean) / (self.fbank_std * 2)
        missing = self.num_frames - fbank.shape[0]
        if missing > 0:
            fbank = torch.nn.functional.pad(fbank, (0, 0, 0, missing), value=self.padding_value)
        return fbank

    def __call__(
        self,
        raw_audio: np.ndarray | torch.Tensor | list,
        sampling_rate: int | None = None,
        padding_mode: PaddingMode | None = None,
        crop_mode: CropMode | None = None,
        generator: torch.Generator | None = None,
        return_tensors: str | TensorType | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Featurise one clip or a batch.

        Args:
            raw_audio: one clip — a 1-D float array/tensor (mono samples in [-1, 1]) or a list of floats — or a
                batch: a list of clips, each `(samples,)` or `(channels, samples)` (channels are averaged), a 2-D array
                `(batch, samples)` of mono clips, or a 3-D array `(batch, channels, samples)`. Clips may differ in
                length.
            sampling_rate: rate of `raw_audio` in Hz. Clips at another rate than the extractor's are resampled;
                without it the input is assumed to be at `self.sampling_rate` (a warning says so).
            padding_mode / crop_mode: override the extractor's settings for this call (see the class docstring).
            generator: RNG for `crop_mode="random"` (default: torch's global RNG).
            return_tensors: `"pt"`, `"np"` or `None` (a list of numpy arrays).

        Returns:
            [`BatchFeature`] with `input_features` of shape `(batch, num_frames, num_mel_bins)`.
        """
        if kwargs:
            raise TypeError(f"Unexpected arguments: {sorted(kwargs)}.")
        if sampling_rate is None:
            logger.warning_once(
                f"No sampling_rate passed to {type(self).__name__}: assuming {self.sampling_rate} Hz. Pass it to "
                "avoid silently wrong features."
            )
            sampling_rate = self.sampling_rate
        sampling_rate = validate_sampling_rate(sampling_rate)
        features = []
        for clip in self._to_clips(raw_audio):
            waveform = clip.mean(dim=0) if clip.dim() == 2 else clip
            waveform = resample_waveform(waveform, sampling_rate, int(self.sampling_rate))
            features.append(self.extract_fbank(waveform, padding_mode, crop_mode, generator))
        if return_tensors in ("pt", TensorType.PYTORCH):
            return BatchFeature({"input_features": torch.stack(features)})
        arrays = [feature.numpy() for feature in features]
        if return_tensors in ("np", TensorType.NUMPY):
            return BatchFeature({"input_features": np.stack(arrays)})
        if return_tensors is not None:
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        return BatchFeature({"input_features": arrays})


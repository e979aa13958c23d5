# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Audio decoding and resampling for InternVideo2's audio encoder (BEATs).

* :func:`decode_audio` reads the first audio stream of any file FFmpeg (through `PyAV <https://pyav.basswood-io.com>`_)
  can open — WAV, FLAC, MP3, and the audio track of video containers (mp4, mkv, webm, ...) — and returns float32
  samples in [-1, 1], optionally averaged to mono and resampled (16 kHz by default, what BEATs expects).
* :func:`resample_waveform` is a pure-torch port of torchaudio's default resampler (``Resample`` /
  ``functional.resample`` with ``resampling_method="sinc_interp_hann"``, ``lowpass_filter_width=6``,
  ``rolloff=0.99``), which the original InternVideo2 loaders call. torchaudio itself does not pair with the pinned
  torch, so the filter is rebuilt here, including its float32 rounding of the output phases, and matches torchaudio's
  output to float32 rounding.
* Every failure raises :class:`AudioDecodingError` (a ``ValueError``) naming the file and the reason; a file without
  an audio stream raises its subclass :class:`NoAudioStreamError`, so that a caller that treats silent videos
  specially (the original gives them all-zero features) can catch exactly that case.

Sample conversion is the one libsndfile (the original's ``torchaudio.load`` "soundfile" backend) applies: 16-bit PCM
becomes ``int16 / 32768`` exactly, 24/32-bit PCM ``int32 / 2**31`` (FFmpeg left-aligns 24-bit samples, so this equals
libsndfile's ``int24 / 2**23``), 8-bit unsigned ``(x - 128) / 128``, float formats are kept. For WAV and FLAC the
samples are therefore bit-identical to the original's; MP3 goes through FFmpeg's decoder instead of libsndfile's
mpg123, which can differ at the level of decoder rounding. AAC (and other codecs with encoder priming) is returned as
FFmpeg decodes it, priming samples included, exactly as the original's PyAV path concatenates the decoded frames.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
import torch


__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodingError",
    "DecodedAudio",
    "NoAudioStreamError",
    "decode_audio",
    "has_audio_stream",
    "resample_waveform",
    "validate_sampling_rate",
]

# Audio-only containers (what a folder of sound files holds); the audio track of a video container is read too.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


class AudioDecodingError(ValueError):
    """An audio file (or the audio track of a video) that cannot be decoded; the message names the file and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Could not decode audio from '{self.path}': {reason}")

    def __reduce__(self):  # picklable with its own arguments (errors cross DataLoader worker processes)
        return type(self), (self.path, self.reason)


class NoAudioStreamError(AudioDecodingError):
    """The file opens but holds no audio stream (e.g. a silent video)."""

    def __init__(self, path):
        super().__init__(path, "the file has no audio stream")

    def __reduce__(self):
        return type(self), (self.path,)


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded samples of one file.

    Attributes:
        waveform: float32 samples in [-1, 1]: shape `(num_samples,)` when decoded with `mono=True`, else
            `(num_channels, num_samples)`.
        sampling_rate: the rate of `waveform` (the requested rate, or the stream's when no resampling was asked for).
        source_sampling_rate: the stream's own rate.
        source_num_channels: the stream's channel count before any averaging.
    """

    waveform: torch.Tensor
    sampling_rate: int
    source_sampling_rate: int
    source_num_channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.waveform.shape[-1] / self.sampling_rate


def validate_sampling_rate(rate, name: str = "sampling_rate") -> int:
    """`rate` as an int; `ValueError` naming `name` unless it is a positive whole number of Hz."""
    is_number = isinstance(rate, (int, float, np.integer, np.floating)) and not isinstance(rate, bool)
    if not is_number or not math.isfinite(rate) or rate <= 0 or int(rate) != rate:
        raise ValueError(f"{name} must be a positive integer number of Hz, got {rate!r}.")
    return int(rate)


# ----------------------------------------------------------------------------------------------------------------
# Resampling (torchaudio's windowed-sinc resampler, Hann window)
# ----------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _sinc_resample_kernel(
    orig_freq: int, new_freq: int, lowpass_filter_width: int, rolloff: float
) -> tuple[torch.Tensor, int]:
    """Polyphase filter bank `(new_freq, 1, 2 * width + orig_freq)` (float32) and the half-width `width`, for rates
    already divided by their gcd.

    Output phase `j` (0 <= j < new_freq) sits at input position `j * orig_freq / new_freq`; its filter taps are a
    Hann-windowed sinc with cut-off `rolloff * min(orig_freq, new_freq) / 2`, evaluated at the input samples within
    `lowpass_filter_width` zero crossings. The phase offsets `j / new_freq` are rounded to float32 before joining the
    float64 tap grid, as torchaudio computes them; the kernel is built in float64 and stored in float32.
    """
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    taps = torch.arange(-width, width + orig_freq, dtype=torch.float64)[None, None] / orig_freq
    phases = torch.arange(0, -new_freq, -1, dtype=torch.float32)[:, None, None] / new_freq
    t = (phases + taps) * base_freq
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=t.dtype), t.sin() / t)
    kernel = sinc * (window * (base_freq / orig_freq))
    return kernel.to(torch.float32), width


def resample_waveform(
    waveform: torch.Tensor,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """Resample the last dimension of `waveform` from `orig_freq` to `new_freq` Hz.

    Reproduces torchaudio's default resampler (band-limited windowed-sinc interpolation, Hann window, 6 zero
    crossings, roll-off 0.99): the signal is zero-padded by the filter half-width on the left and by
    `width + orig_freq` on the right, filtered with one kernel per output phase (a strided convolution), and cut to
    `ceil(new_freq * num_samples / orig_freq)` samples. The output keeps the input's floating dtype (the filter is
    float32 as in torchaudio; float64 input is filtered in float64).

    Raises:
        TypeError: integer samples (convert PCM to float in [-1, 1] first).
        ValueError: non-positive or non-integer rates, or a non-positive filter width / roll-off.
    """
    if not torch.is_tensor(waveform):
        raise TypeError(f"waveform must be a torch.Tensor, got {type(waveform).__name__}.")
    if not waveform.is_floating_point():
        raise TypeError(f"waveform must hold floating-point samples, got {waveform.dtype}.")
    orig_freq = validate_sampling_rate(orig_freq, "orig_freq")
    new_freq = validate_sampling_rate(new_freq, "new_freq")
    if lowpass_filter_width <= 0 or not 0 < rolloff <= 1:
        raise ValueError("lowpass_filter_width must be positive and rolloff in (0, 1].")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    kernel, width = _sinc_resample_kernel(orig, new, int(lowpass_filter_width), float(rolloff))
    kernel = kernel.to(device=waveform.device, dtype=waveform.dtype)
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    num_samples = flat.shape[-1]
    padded = torch.nn.functional.pad(flat, (width, width + orig))
    phases = torch.nn.functional.conv1d(padded[:, None], kernel, stride=orig)  # (n, new, num_steps)
    resampled = phases.transpose(1, 2).reshape(flat.shape[0], -1)
    target_length = math.ceil(new * num_samples / orig)
    return resampled[:, :target_length].reshape(*shape[:-1], -1)


# ----------------------------------------------------------------------------------------------------------------
# Decoding (PyAV)
# ----------------------------------------------------------------------------------------------------------------
def _import_av():
    try:
        import av
    except ImportError as error:  # pragma: no cover - av is a hard dependency of the package
        raise ImportError("Audio decoding needs PyAV: `pip install av`.") from error
    return av


def _frame_to_float(frame) -> np.ndarray:
    """One decoded frame as float32 `(channels, samples)`, scaled as libsndfile reads PCM."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:  # packed formats come as (1, samples * channels), interleaved
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / np.float32(2**15)
    if samples.dtype == np.int32:
        return (samples.astype(np.float64) / 2**31).astype(np.float32)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128) / np.float32(128)
    if samples.dtype in (np.float32, np.float64):
        return samples.astype(np.float32, copy=False)
    raise ValueError(f"unsupported sample format {frame.format.name!r}")


def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Expected a path to an audio or video file, got {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioDecodingError(path, "no such file")
    if not os.path.isfile(path):
        raise AudioDecodingError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise AudioDecodingError(path, "the file is empty")
    return path


def _open(path: str):
    av = _import_av()
    try:
        return av.open(path)
    except Exception as error:  # FFmpeg's errors (InvalidDataError, ...) all mean "cannot read this file"
        raise AudioDecodingError(path, f"FFmpeg cannot open it as a media file ({error})") from error


def has_audio_stream(path: str | os.PathLike) -> bool:
    """Whether the file opens and holds at least one audio stream (missing/unreadable files raise
    :class:`AudioDecodingError`)."""
    path = _check_path(path)
    with _open(path) as container:
        return len(container.streams.audio) > 0


def decode_audio(path: str | os.PathLike, sampling_rate: int | None = 16000, mono: bool = True) -> DecodedAudio:
    """Decode the whole first audio stream of `path` (an audio file or a video with an audio track).

    Args:
        path: the file.
        sampling_rate: resample to this rate with :func:`resample_waveform` (torchaudio's default resampler, as the
            original); `None` keeps the stream's rate.
        mono: average all channels (the original averages stereo; for more than two channels it would keep only the
            first, which we do not imitate). Averaging happens before resampling, as in the original's video path
            (its audio-file path resamples each channel first; both are linear, so the results agree to float32
            rounding).

    Returns:
        :class:`DecodedAudio` with float32 samples.

    Raises:
        AudioDecodingError: missing, empty or unreadable file, decoding error, or no samples.
        NoAudioStreamError: the file has no audio stream.
    """
    path = _check_path(path)
    if sampling_rate is not None:
        sampling_rate = validate_sampling_rate(sampling_rate)
    with _open(path) as container:
        if not container.streams.audio:
            raise NoAudioStreamError(path)
        stream = container.streams.audio[0]
        declared_rate = stream.codec_context.sample_rate or stream.sample_rate
        chunks, frame_rates = [], set()
        try:
            for frame in container.decode(stream):
                chunks.append(_frame_to_float(frame))
                if frame.samples:
                    frame_rates.add(frame.sample_rate)
        except Exception as error:
            codec = stream.codec_context.name
            raise AudioDecodingError(path, f"decoding the {codec} stream failed ({error})") from error
    chunks = [chunk for chunk in chunks if chunk.shape[1]]
    if not chunks:
        raise AudioDecodingError(path, "the audio stream holds no samples")
    num_channels = {chunk.shape[0] for chunk in chunks}
    if len(num_channels) != 1:
        raise AudioDecodingError(path, f"the channel count changes within the stream ({sorted(num_channels)})")
    if len(frame_rates) > 1:
        raise AudioDecodingError(path, f"the sampling rate changes within the stream ({sorted(frame_rates)})")
    # the decoded frames' rate is authoritative; the stream header's is the fallback
    source_rate = next(iter(frame_rates)) if frame_rates else declared_rate
    if not source_rate:
        raise AudioDecodingError(path, "the audio stream declares no sampling rate")
    waveform = torch.from_numpy(np.concatenate(chunks, axis=1))
    channels = waveform.shape[0]
    if mono:
        waveform = waveform.mean(dim=0) if channels > 1 else waveform[0]
    rate = int(source_rate)
    if sampling_rate is not None and sampling_rate != rate:
        waveform = resample_waveform(waveform, rate, sampling_rate)
        rate = sampling_rate
    return DecodedAudio(
        waveform=waveform.contiguous(), sampling_rate=rate, source_sampling_rate=int(source_rate),
        source_num_channels=channels,
    )  # fmt: skip

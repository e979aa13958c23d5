"""Audio decoding (PyAV) and the torch port of torchaudio's resampler: formats, channel handling, errors.

Parity of the decoded fixture media with the original loaders is in test_beats_parity.py; here the files are written
on the fly with PyAV (tones at known levels), so the expected samples are known exactly.
"""

from __future__ import annotations

import math
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from transformers_internvideo2.media.audio_decoding import (
    AudioDecodingError,
    NoAudioStreamError,
    decode_audio,
    has_audio_stream,
    resample_waveform,
)


def _tone(frequency: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def _write(path: Path, samples: np.ndarray, rate: int, codec: str, sample_format: str, container: str | None = None):
    """Encode `(channels, n)` samples (already in the codec's sample format's dtype) with PyAV."""
    channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout)
        stream.format = sample_format
        frame_size = stream.codec_context.frame_size or 1024
        planar = av.AudioFormat(sample_format).is_planar
        for start in range(0, samples.shape[1], frame_size):
            chunk = np.ascontiguousarray(samples[:, start : start + frame_size])
            data = chunk if planar else chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_format, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)


def _int16(x: np.ndarray) -> np.ndarray:
    return np.round(x * 32767).astype(np.int16)


# ------------------------------------------------------------------------------------------------------------------
# Formats
# ------------------------------------------------------------------------------------------------------------------
def test_pcm16_stereo_wav_is_read_exactly_and_averaged(tmp_path):
    left, right = _int16(_tone(440, 16000, 1.0)), _int16(_tone(660, 16000, 1.0, 0.25))
    path = tmp_path / "stereo.wav"
    _write(path, np.stack([left, right]), 16000, "pcm_s16le", "s16")
    both = decode_audio(path, mono=False)
    expected = torch.from_numpy(np.stack([left, right]).astype(np.float32) / 32768)
    assert both.source_num_channels == 2 and both.waveform.shape == (2, 16000)
    assert torch.equal(both.waveform, expected)  # packed (interleaved) samples de-interleaved, int16 / 32768
    mono = decode_audio(path)
    assert torch.equal(mono.waveform, expected.mean(0))
    assert mono.duration == pytest.approx(1.0)


def test_pcm24_wav_and_flac_are_read_exactly(tmp_path):
    samples = np.round(_tone(330, 16000, 0.5) * (2**23 - 1)).astype(np.int32)
    path = tmp_path / "deep.wav"
    _write(path, (samples << 8)[None], 16000, "pcm_s24le", "s32")  # FFmpeg carries 24-bit PCM left-aligned in s32
    decoded = decode_audio(path)
    assert torch.equal(decoded.waveform, torch.from_numpy(samples.astype(np.float64) / 2**23).float())

    pcm = _int16(_tone(220, 16000, 0.7))
    flac = tmp_path / "tone.flac"
    _write(flac, pcm[None], 16000, "flac", "s16")
    assert torch.equal(decode_audio(flac).waveform, torch.from_numpy(pcm.astype(np.float32) / 32768))


def test_mp3_decodes_and_resamples(tmp_path):
    path = tmp_path / "tone.mp3"
    source = _tone(440, 44100, 2.0, 0.5).astype(np.float32)
    _write(path, np.stack([source, source]), 44100, "libmp3lame", "fltp")
    decoded = decode_audio(path)
    assert decoded.source_sampling_rate == 44100 and decoded.sampling_rate == 16000
    assert abs(decoded.duration - 2.0) < 0.2  # plus the MP3 encoder delay / padding
    # a 440 Hz tone at 16 kHz: the dominant frequency survives decoding and resampling
    spectrum = np.abs(np.fft.rfft(decoded.waveform.numpy()))
    peak_hz = np.argmax(spectrum) * 16000 / decoded.waveform.shape[0]
    assert abs(peak_hz - 440) < 2


def test_sampling_rate_none_keeps_the_stream_rate(tmp_path):
    path = tmp_path / "tone.wav"
    _write(path, _int16(_tone(100, 8000, 0.25))[None], 8000, "pcm_s16le", "s16")
    assert decode_audio(path, sampling_rate=None).sampling_rate == 8000
    upsampled = decode_audio(path, sampling_rate=16000)
    assert upsampled.sampling_rate == 16000 and upsampled.waveform.shape == (4000,)


def test_audio_track_of_a_video(shared_dir):
    video = shared_dir / "media" / "example1_with_audio.mp4"
    assert has_audio_stream(video)
    decoded = decode_audio(video, sampling_rate=16000)
    assert decoded.waveform.dim() == 1 and decoded.sampling_rate == 16000
    assert decoded.waveform.shape[0] == math.ceil(353280 * 160 / 441)


# ------------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------------
def test_video_without_audio_raises_no_audio_stream(sample_video_path):
    assert not has_audio_stream(sample_video_path)
    with pytest.raises(NoAudioStreamError, match="no audio stream") as info:
        decode_audio(sample_video_path)
    assert isinstance(info.value, AudioDecodingError) and isinstance(info.value, ValueError)
    assert str(sample_video_path) in str(info.value)
    # errors survive pickling (DataLoader workers send them to the main process)
    for error in (info.value, AudioDecodingError("a.wav", "bad")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.path == error.path


def _unreadable(directory: Path, kind: str) -> Path:
    if kind == "missing":
        return directory / "missing.wav"
    if kind == "directory":
        return directory
    path = directory / f"{kind}.wav"
    path.write_bytes(b"" if kind == "empty" else b"not audio at all")
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "no such file"),
        ("directory", "not a regular file"),
        ("empty", "the file is empty"),
        ("text", "FFmpeg cannot open"),
    ],
)
def test_unreadable_files_name_the_file_and_the_reason(tmp_path, kind, reason):
    path = _unreadable(tmp_path, kind)
    with pytest.raises(AudioDecodingError, match=reason) as info:
        decode_audio(path)
    assert str(path) in str(info.value)


def test_streams_that_decode_badly_name_the_reason(tmp_path):
    mono, stereo, other_rate = (tmp_path / f"{name}.aac" for name in ("mono", "stereo", "rate"))
    _write(mono, _tone(440, 16000, 0.5)[None].astype(np.float32), 16000, "aac", "fltp", container="adts")
    _write(stereo, np.stack([_tone(440, 16000, 0.5)] * 2).astype(np.float32), 16000, "aac", "fltp", container="adts")
    _write(other_rate, _tone(440, 22050, 0.5)[None].astype(np.float32), 22050, "aac", "fltp", container="adts")
    # raw ADTS streams concatenated: each frame header carries its own channel layout and rate
    (tmp_path / "channels.aac").write_bytes(mono.read_bytes() + stereo.read_bytes())
    (tmp_path / "rates.aac").write_bytes(mono.read_bytes() + other_rate.read_bytes())
    with pytest.raises(AudioDecodingError, match=r"channel count changes within the stream \(\[1, 2\]\)"):
        decode_audio(tmp_path / "channels.aac")
    with pytest.raises(AudioDecodingError, match=r"sampling rate changes within the stream \(\[16000, 22050\]\)"):
        decode_audio(tmp_path / "rates.aac")
    # an MP3 whose second half is garbage: the decoder fails, and the error says which stream
    _write(tmp_path / "tone.mp3", _tone(440, 16000, 1.0)[None].astype(np.float32), 16000, "libmp3lame", "fltp")
    data = (tmp_path / "tone.mp3").read_bytes()
    (tmp_path / "corrupt.mp3").write_bytes(data[: len(data) // 2] + bytes(range(256)) * 20)
    with pytest.raises(AudioDecodingError, match=r"decoding the mp3\w* stream failed"):
        decode_audio(tmp_path / "corrupt.mp3")
    # a Matroska file with an audio track that holds no packets (mp4 drops such a track: no audio stream)
    with av.open(str(tmp_path / "empty_track.mkv"), "w") as output:
        video = output.add_stream("mpeg4", rate=8)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        output.add_stream("pcm_s16le", rate=16000, layout="mono")
        for _ in range(2):
            for packet in video.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                output.mux(packet)
        for packet in video.encode():
            output.mux(packet)
    assert has_audio_stream(tmp_path / "empty_track.mkv")
    with pytest.raises(AudioDecodingError, match="holds no samples"):
        decode_audio(tmp_path / "empty_track.mkv")


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="path"):
        decode_audio(123)
    path = tmp_path / "tone.wav"
    _write(path, _int16(_tone(100, 8000, 0.1))[None], 8000, "pcm_s16le", "s16")
    for rate in (0, -16000, 16000.5, True, "16k", float("nan")):
        with pytest.raises(ValueError, match="sampling_rate"):
            decode_audio(path, sampling_rate=rate)


# ------------------------------------------------------------------------------------------------------------------
# Resampler
# ------------------------------------------------------------------------------------------------------------------
def test_resampler_length_identity_and_batch_shape():
    waveform = torch.randn(2, 3, 44100)
    resampled = resample_waveform(waveform, 44100, 16000)
    assert resampled.shape == (2, 3, 16000)
    assert resample_waveform(waveform, 16000, 16000) is waveform
    assert resample_waveform(torch.randn(1001), 44100, 16000).shape == (math.ceil(1001 * 160 / 441),)
    assert resample_waveform(torch.randn(10, dtype=torch.float64), 8000, 16000).dtype == torch.float64
    # each row is resampled on its own
    torch.testing.assert_close(resampled[1, 2], resample_waveform(waveform[1, 2], 44100, 16000))


@pytest.mark.parametrize("orig, new", [(44100, 16000), (8000, 16000), (48000, 16000), (22050, 16000)])
def test_resampler_keeps_a_tone_below_the_cutoff(orig, new):
    seconds, frequency = 1.0, 1000.0
    source = torch.from_numpy(_tone(frequency, orig, seconds)).float()
    expected = torch.from_numpy(_tone(frequency, new, seconds)).float()
    resampled = resample_waveform(source, orig, new)
    assert resampled.shape == expected.shape
    inner = slice(200, -200)  # away from the zero-padded edges
    assert (resampled[inner] - expected[inner]).abs().max() < 2e-3


def test_resampler_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        resample_waveform(torch.ones(10, dtype=torch.int16), 8000, 16000)
    with pytest.raises(TypeError, match="torch.Tensor"):
        resample_waveform(np.ones(10, dtype=np.float32), 8000, 16000)
    for rates in ((0, 16000), (8000, -1), (8000.5, 16000), ("8k", 16000)):
        with pytest.raises(ValueError, match="positive integer"):
            resample_waveform(torch.ones(10), *rates)

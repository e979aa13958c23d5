"""BeatsFeatureExtractor and the torch Kaldi filterbank: padding and cropping paths, batching, resampling, errors,
serialisation. Parity with the original preprocessing is in test_beats_parity.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from transformers_internvideo2.media.audio_decoding import resample_waveform
from transformers_internvideo2.models.beats import BeatsFeatureExtractor, kaldi_fbank, kaldi_mel_banks


SILENT_FRAME = (math.log(torch.finfo(torch.float32).eps) - 15.41663) / (2 * 6.55582)  # -2.3917


def _noise(seconds: float, rate: int = 16000, seed: int = 0, channels: int | None = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (int(seconds * rate),) if channels is None else (channels, int(seconds * rate))
    return 0.1 * torch.randn(shape, generator=generator)


@pytest.fixture(scope="module")
def extractor() -> BeatsFeatureExtractor:
    return BeatsFeatureExtractor()


def _features(extractor, audio, **kwargs) -> torch.Tensor:
    kwargs.setdefault("sampling_rate", 16000)
    return extractor(audio, return_tensors="pt", **kwargs).input_features


# ------------------------------------------------------------------------------------------------------------------
# Geometry and the two padding paths
# ------------------------------------------------------------------------------------------------------------------
def test_geometry(extractor):
    assert (extractor.window_size, extractor.window_shift, extractor.max_samples) == (400, 160, 160000)
    assert extractor.num_frames == 998
    assert extractor.model_input_names == ["input_features"]


def test_waveform_padding_gives_silent_frames(extractor):
    clip = _noise(4.0)
    features = _features(extractor, clip, padding_mode="waveform")[0]
    assert features.shape == (998, 64)
    # frames that only see the appended zeros are silent: log(eps), normalised
    first_silent = math.ceil(64000 / 160)
    torch.testing.assert_close(features[first_silent:], torch.full_like(features[first_silent:], SILENT_FRAME))
    # the frames over real audio are the filterbank of the padded waveform
    padded = torch.nn.functional.pad(clip, (0, 96000))
    expected = (kaldi_fbank(padded * 32768) - 15.41663) / (2 * 6.55582)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_fbank_padding_appends_zero_rows(extractor):
    clip = _noise(4.0)
    features = _features(extractor, clip, padding_mode="fbank")[0]
    real = 1 + (64000 - 400) // 160  # 398 frames
    assert torch.count_nonzero(features[real:]) == 0
    expected = (kaldi_fbank(clip * 32768) - 15.41663) / (2 * 6.55582)
    torch.testing.assert_close(features[:real], expected, rtol=0, atol=0)
    # the two modes agree where the window does not reach the padding
    waveform_mode = _features(extractor, clip, padding_mode="waveform")[0]
    torch.testing.assert_close(features[: real - 2], waveform_mode[: real - 2], rtol=0, atol=0)


def test_clip_shorter_than_one_window_in_fbank_mode_is_all_padding(extractor):
    features = _features(extractor, _noise(0.01), padding_mode="fbank")[0]
    assert features.shape == (998, 64) and torch.count_nonzero(features) == 0


def test_exactly_ten_seconds_needs_no_padding(extractor):
    clip = _noise(10.0)
    a = _features(extractor, clip, padding_mode="waveform")
    b = _features(extractor, clip, padding_mode="fbank")
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.count_nonzero(a[0, -1]) == 64


# ------------------------------------------------------------------------------------------------------------------
# Cropping
# ------------------------------------------------------------------------------------------------------------------
def test_start_crop_keeps_the_first_ten_seconds(extractor):
    clip = _noise(12.5)
    features = _features(extractor, clip)
    torch.testing.assert_close(features, _features(extractor, clip[:160000]), rtol=0, atol=0)


def test_random_crop_is_a_seeded_window(extractor):
    clip = _noise(12.5)
    excess = clip.shape[0] - 160000
    first = _features(extractor, clip, crop_mode="random", generator=torch.Generator().manual_seed(3))
    again = _features(extractor, clip, crop_mode="random", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    start = int(torch.randint(0, excess + 1, (), generator=torch.Generator().manual_seed(3)))
    torch.testing.assert_close(first, _features(extractor, clip[start : start + 160000]), rtol=0, atol=0)
    # different seeds give different windows; the global RNG is used without a generator
    starts = {int(torch.randint(0, excess + 1, (), generator=torch.Generator().manual_seed(s))) for s in range(4)}
    assert len(starts) > 1
    torch.manual_seed(11)
    global_rng = _features(extractor, clip, crop_mode="random")
    torch.manual_seed(11)
    torch.testing.assert_close(global_rng, _features(extractor, clip, crop_mode="random"), rtol=0, atol=0)


def test_crop_and_padding_defaults_come_from_the_extractor():
    clip = _noise(12.0)
    training = BeatsFeatureExtractor(crop_mode="random", padding_mode="fbank")
    torch.manual_seed(5)
    a = _features(training, clip)
    torch.manual_seed(5)
    b = _features(BeatsFeatureExtractor(), clip, crop_mode="random", padding_mode="fbank")
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------------------------
# Batches, channels, rates, output types
# ------------------------------------------------------------------------------------------------------------------
def test_batch_of_different_lengths_equals_one_by_one(extractor):
    clips = [_noise(3.0, seed=1), _noise(11.0, seed=2), _noise(0.5, seed=3)]
    batch = _features(extractor, clips)
    assert batch.shape == (3, 998, 64)
    for row, clip in enumerate(clips):
        torch.testing.assert_close(batch[row], _features(extractor, clip)[0], rtol=0, atol=0)


def test_array_layouts(extractor):
    mono_batch = _noise(2.0, channels=3)  # 2-D: (batch, samples) of mono clips
    features = _features(extractor, mono_batch.numpy())
    assert features.shape == (3, 998, 64)
    torch.testing.assert_close(features[1], _features(extractor, mono_batch[1])[0], rtol=0, atol=0)
    stereo = _noise(2.0, channels=2, seed=4)
    averaged = _features(extractor, [stereo])  # a (channels, samples) clip inside a list is averaged
    torch.testing.assert_close(averaged, _features(extractor, stereo.mean(0)), rtol=0, atol=0)
    batch_of_stereo = _features(extractor, torch.stack([stereo, stereo]))  # 3-D: (batch, channels, samples)
    torch.testing.assert_close(batch_of_stereo[1], averaged[0], rtol=0, atol=0)
    as_list = _features(extractor, stereo.mean(0).tolist())  # one clip as a list of floats
    torch.testing.assert_close(as_list, averaged, rtol=0, atol=1e-6)
    float64 = _features(extractor, stereo.mean(0).double().numpy())
    torch.testing.assert_close(float64, averaged, rtol=0, atol=0)


def test_other_sampling_rates_are_resampled(extractor):
    clip = _noise(3.0, rate=44100)
    features = _features(extractor, clip, sampling_rate=44100)
    expected = _features(extractor, resample_waveform(clip, 44100, 16000))
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


def test_return_tensor_types(extractor):
    clips = [_noise(1.0), _noise(2.0)]
    as_list = extractor(clips, sampling_rate=16000).input_features
    assert isinstance(as_list, list) and all(isinstance(x, np.ndarray) and x.shape == (998, 64) for x in as_list)
    as_numpy = extractor(clips, sampling_rate=16000, return_tensors="np").input_features
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (2, 998, 64) and as_numpy.dtype == np.float32
    np.testing.assert_array_equal(as_numpy[1], as_list[1])


def test_missing_sampling_rate_assumes_the_extractor_rate(extractor):
    clip = _noise(1.0)
    torch.testing.assert_close(
        extractor(clip, return_tensors="pt").input_features, _features(extractor, clip), rtol=0, atol=0
    )


def test_samples_outside_the_unit_range_are_processed_with_a_warning(extractor):
    from transformers.testing_utils import CaptureLogger

    from transformers_internvideo2.models.beats import feature_extraction_beats

    clip = _noise(1.0) * 20000  # 16-bit PCM values stored as floats: a scale mistake
    with CaptureLogger(feature_extraction_beats.logger) as captured:
        features = _features(extractor, clip)
    assert "outside [-1, 1]" in captured.out and "divide them by 32768" in captured.out
    torch.testing.assert_close(features, _features(extractor, [clip]), rtol=0, atol=0)  # as given, not clipped
    with CaptureLogger(feature_extraction_beats.logger) as captured:
        _features(extractor, _noise(1.0).clamp(-0.15, 0.15) * 10)  # up to 1.5: codec or resampler overshoot
    assert "outside" not in captured.out


def test_save_and_load(tmp_path):
    custom = BeatsFeatureExtractor(padding_mode="fbank", crop_mode="random", max_length_seconds=5.0)
    custom.save_pretrained(tmp_path)
    loaded = BeatsFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == custom.to_dict()
    assert (loaded.padding_mode, loaded.crop_mode, loaded.num_frames) == ("fbank", "random", 498)
    assert loaded.feature_size == loaded.num_mel_bins == 64


# ------------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0, -16000, 16000.5, "16k", True])
def test_bad_sampling_rate(extractor, rate):
    with pytest.raises(ValueError, match="sampling_rate"):
        extractor(_noise(1.0), sampling_rate=rate)


@pytest.mark.parametrize(
    "audio, error, message",
    [
        (np.zeros(16000, dtype=np.int16), TypeError, "int16.*divide 16-bit PCM by 32768"),
        (torch.zeros(16000, dtype=torch.int32), TypeError, "floating-point"),
        ([np.zeros(16000, dtype=np.int16)], TypeError, "Waveform 0 has dtype int16"),
        (np.zeros(0, dtype=np.float32), ValueError, "empty"),
        ([], ValueError, "empty batch"),
        ([np.zeros(100, dtype=np.float32), np.zeros(0, dtype=np.float32)], ValueError, "Waveform 1 is empty"),
        (np.full(16000, np.nan, dtype=np.float32), ValueError, "NaN"),
        (np.zeros((16000, 2), dtype=np.float32)[None], ValueError, r"\(channels, samples\)"),
        (np.zeros((16000, 2), dtype=np.float32), ValueError, r"looks like one \(samples, channels\) clip"),
        (np.zeros((1, 2, 3, 4), dtype=np.float32), ValueError, "shape"),
        ("speech.wav", TypeError, "decode it first"),
    ],
)
def test_bad_audio(extractor, audio, error, message):
    with pytest.raises(error, match=message):
        extractor(audio, sampling_rate=16000)


def test_bad_settings(extractor):
    with pytest.raises(ValueError, match="padding_mode"):
        extractor(_noise(1.0), sampling_rate=16000, padding_mode="zeros")
    with pytest.raises(ValueError, match="crop_mode"):
        BeatsFeatureExtractor(crop_mode="center")
    with pytest.raises(ValueError, match="feature_size"):
        BeatsFeatureExtractor(feature_size=128)
    with pytest.raises(ValueError, match="shorter than one"):
        BeatsFeatureExtractor(max_length_seconds=0.01)
    with pytest.raises(ValueError, match="mel range"):
        BeatsFeatureExtractor(low_freq=9000.0)
    with pytest.raises(TypeError, match="Unexpected arguments"):
        extractor(_noise(1.0), sampling_rate=16000, padding=True)
    with pytest.raises(ValueError, match="return_tensors"):
        extractor(_noise(1.0), sampling_rate=16000, return_tensors="tf")


# ------------------------------------------------------------------------------------------------------------------
# The filterbank itself
# ------------------------------------------------------------------------------------------------------------------
def test_mel_banks_are_kaldi_triangles():
    banks = kaldi_mel_banks(64, 512, 16000.0)
    assert banks.shape == (64, 257) and banks.dtype == torch.float32
    assert torch.all(banks >= 0) and torch.count_nonzero(banks[:, -1]) == 0  # no Nyquist column
    assert torch.all(banks.max(dim=1).values <= 1.0) and torch.all(banks.max(dim=1).values > 0)
    for row in banks:  # one contiguous run of non-zero weights per band
        support = row.nonzero().flatten()
        assert torch.equal(support, torch.arange(support[0], support[-1] + 1))
    centres = banks.argmax(dim=1)
    assert torch.all(centres[1:] >= centres[:-1])  # ordered by frequency
    # nothing below 20 Hz (bin 0 is 0 Hz)
    assert torch.count_nonzero(banks[:, 0]) == 0


def test_fbank_of_a_tone_peaks_in_the_right_band():
    rate, frequency = 16000, 1000.0
    tone = torch.sin(2 * math.pi * frequency * torch.arange(rate) / rate) * 16000
    fbank = kaldi_fbank(tone)
    assert fbank.shape == (1 + (rate - 400) // 160, 64)
    banks = kaldi_mel_banks(64, 512, 16000.0)
    band_of_1khz = banks[:, round(frequency / (rate / 512))].argmax()
    assert torch.all(fbank.argmax(dim=1) == band_of_1khz)


def test_fbank_float32_agrees_with_float64():
    clip = _noise(2.0) * 32768
    single, double = kaldi_fbank(clip), kaldi_fbank(clip.double())
    assert double.dtype == torch.float64
    assert (single.double() - double).abs().max() < 1e-4  # white noise: no band near float32's noise floor


def test_fbank_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        kaldi_fbank(torch.zeros(2, 16000))
    with pytest.raises(TypeError, match="floating-point"):
        kaldi_fbank(torch.zeros(16000, dtype=torch.int16))
    assert kaldi_fbank(torch.zeros(399)).shape == (0, 64)

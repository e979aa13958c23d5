"""InternVideo2Processor with audio: `audio=` (paths, waveforms, DecodedAudio), `audio_from_videos=True` (the audio
tracks of video files, zeros and a warning for silent videos), the original's two padding paths, parity with the
au01 filterbanks, and the optional feature extractor through save/load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoProcessor
from transformers.testing_utils import CaptureLogger

import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
from transformers_internvideo2.assets import load_bert_uncased_tokenizer
from transformers_internvideo2.media.audio_decoding import AudioDecodingError, DecodedAudio, decode_audio
from transformers_internvideo2.models.beats import BeatsFeatureExtractor
from transformers_internvideo2.models.internvideo2_video_text import processing_internvideo2_video_text
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import (
    InternVideo2Processor,
)

from fbank_comparison import SIGNAL_ATOL, assert_fbank_parity


REPO_ROOT = Path(__file__).resolve().parent.parent
FBANK_ATOL = SIGNAL_ATOL  # the filterbank contract, one value for every test


@pytest.fixture(scope="module")
def tokenizer():
    return load_bert_uncased_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return InternVideo2Processor.for_stage2(tokenizer=tokenizer, feature_extractor=BeatsFeatureExtractor())


@pytest.fixture(scope="module")
def media(shared_dir) -> Path:
    path = shared_dir / "media"
    if not (path / "example1_with_audio.mp4").is_file():
        pytest.skip(f"audio media not found in {path}")
    return path


def _warnings_of(call):
    logger = processing_internvideo2_video_text.logger
    with CaptureLogger(logger) as captured:
        result = call()
    return result, captured.out


# ------------------------------------------------------------------------------------------------------------------
# The two original paths
# ------------------------------------------------------------------------------------------------------------------
def test_audio_files_and_audio_of_videos_take_the_original_paths(processor, media):
    extractor = BeatsFeatureExtractor()
    wav = decode_audio(media / "speech_dog_snow_16k.wav")  # 4 s: the two paths differ
    from_file = processor(audio=str(media / "speech_dog_snow_16k.wav"))["input_features"]
    assert from_file.shape == (1, 998, 64) and from_file.dtype == torch.float32
    expected = extractor(wav.waveform, sampling_rate=16000, padding_mode="waveform", return_tensors="pt")
    assert torch.equal(from_file, expected["input_features"])
    assert torch.allclose(from_file[0, -100:], torch.tensor(-2.3917), atol=1e-4)  # silent padded frames

    track = decode_audio(media / "example1_with_audio.mp4")  # 8 s of AAC at 44.1 kHz
    out = processor(videos=str(media / "example1_with_audio.mp4"), audio_from_videos=True)
    expected = extractor(track.waveform, sampling_rate=16000, padding_mode="fbank", return_tensors="pt")
    assert torch.equal(out["input_features"], expected["input_features"])
    assert int((out["input_features"][0].abs().sum(-1) > 0).sum()) == 799  # fbank padded with zero rows
    assert out["pixel_values"].shape == (1, 4, 3, 224, 224)
    # the same file given as audio goes through the audio-file path (waveform padding)
    as_audio = processor(audio=media / "example1_with_audio.mp4")["input_features"]
    assert not torch.equal(as_audio, out["input_features"])
    assert torch.equal(as_audio[0, :790], out["input_features"][0, :790])
    # audio_kwargs override the path's padding
    forced = processor(videos=[str(media / "example1_with_audio.mp4")], audio_from_videos=True,
                       audio_kwargs={"padding_mode": "waveform"})  # fmt: skip
    assert torch.equal(forced["input_features"], as_audio)


def test_wav_features_match_the_original_in_process(processor, fixtures_dir, media):
    from safetensors.torch import load_file

    reference = load_file(str(fixtures_dir / "au01_beats_tiny" / "outputs.safetensors"))["fbank"]
    features = processor(audio=[media / "speech_long_16k.wav", media / "speech_dog_snow_16k.wav"])["input_features"]
    assert (features - reference[:2]).abs().max().item() <= FBANK_ATOL


_PARITY_CHILD = r"""
import json, sys
from safetensors.torch import load_file
from transformers_internvideo2.assets import load_bert_uncased_tokenizer
from transformers_internvideo2.models.beats import BeatsFeatureExtractor
from transformers_internvideo2.models.internvideo2_video_text import InternVideo2Processor
from fbank_comparison import fbank_differences
case, media = sys.argv[1], sys.argv[2]
reference = load_file(case + "/outputs.safetensors")["fbank"]
processor = InternVideo2Processor.for_stage2(tokenizer=load_bert_uncased_tokenizer(),
                                             feature_extractor=BeatsFeatureExtractor())
audio = processor(audio=[media + "/speech_long_16k.wav", media + "/speech_dog_snow_16k.wav"])["input_features"]
video = processor(videos=[media + "/example1_with_audio.mp4"], audio_from_videos=True)["input_features"]
diffs = [fbank_differences(audio[i], reference[i]) for i in range(2)]
diffs.append(fbank_differences(video[0], reference[2]))
print(json.dumps(diffs))
"""


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="the reproducible FFT path is MKL's")
def test_all_three_au01_media_match_the_original_through_the_processor(fixtures_dir, media):
    """Files -> processor -> input_features against au01's fbanks, with MKL's reproducible FFT path (the top mel
    bands of the resampled AAC track hold FFT rounding noise that depends on the CPU path, held to its size only:
    tests/fbank_comparison.py)."""
    paths = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT / "tests")])  # the package and fbank_comparison
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE", "PYTHONPATH": paths}
    completed = subprocess.run(
        [sys.executable, "-c", _PARITY_CHILD, str(fixtures_dir / "au01_beats_tiny"), str(media)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    for index, differences in enumerate(json.loads(completed.stdout.strip().splitlines()[-1])):
        assert_fbank_parity(differences, f"row {index}")


# ------------------------------------------------------------------------------------------------------------------
# Silent videos
# ------------------------------------------------------------------------------------------------------------------
def test_a_video_without_audio_gives_zeros_and_a_warning(processor, media):
    videos = [str(media / "example1.mp4"), str(media / "example1_with_audio.mp4")]
    out, warnings = _warnings_of(lambda: processor(videos=videos, audio_from_videos=True))
    assert "example1.mp4 has no audio stream" in warnings and "example1_with_audio" not in warnings
    features = out["input_features"]
    assert features.shape == (2, 998, 64)
    assert torch.equal(features[0], torch.zeros(998, 64))  # the original's missing-audio features
    assert features[1].abs().sum() > 0  # rows stay paired with their videos
    assert out["pixel_values"].shape[0] == 2


def test_undecodable_audio_is_an_error_not_silence(processor, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a media file at all")
    with pytest.raises(AudioDecodingError, match="broken.mp4"):
        processor.process_audio(videos=[str(broken)])
    with pytest.raises(AudioDecodingError, match="no such file"):
        processor(audio=[str(tmp_path / "missing.wav")])


# ------------------------------------------------------------------------------------------------------------------
# Waveforms
# ------------------------------------------------------------------------------------------------------------------
def test_waveforms_with_their_sampling_rate(processor):
    rng = np.random.default_rng(0)
    clip_8k = rng.uniform(-0.3, 0.3, 8000).astype(np.float32)
    stereo = rng.uniform(-0.3, 0.3, (2, 16000)).astype(np.float32)
    extractor = processor.feature_extractor
    features = processor(audio=[clip_8k, torch.from_numpy(clip_8k)], sampling_rate=8000)["input_features"]
    expected = extractor(clip_8k, sampling_rate=8000, return_tensors="pt")["input_features"][0]
    assert torch.equal(features[0], expected) and torch.equal(features[1], expected)
    # (channels, samples) clips are averaged; a 2-D array is a batch of mono clips
    mixed = processor(audio=[stereo], sampling_rate=16000)["input_features"]
    assert torch.equal(mixed[0], extractor(stereo.mean(0), sampling_rate=16000, return_tensors="pt").input_features[0])
    assert processor(audio=stereo, sampling_rate=16000)["input_features"].shape == (2, 998, 64)
    # a DecodedAudio carries its own rate
    decoded = DecodedAudio(torch.from_numpy(clip_8k), 8000, 8000, 1)
    assert torch.equal(processor(audio=decoded)["input_features"][0], expected)
    # audio_kwargs reach the extractor (seeded random crop of a long clip)
    long_clip = rng.uniform(-0.3, 0.3, 16000 * 12).astype(np.float32)
    crops = [processor(audio=long_clip, sampling_rate=16000,
                       audio_kwargs={"crop_mode": "random", "generator": torch.Generator().manual_seed(3)})
             for _ in range(2)]  # fmt: skip
    assert torch.equal(crops[0]["input_features"], crops[1]["input_features"])
    first_ten_seconds = processor(audio=long_clip, sampling_rate=16000)["input_features"]
    assert not torch.equal(crops[0]["input_features"], first_ten_seconds)
    # numpy output on request, text and audio together
    both = processor(text="a dog barks", audio=clip_8k, sampling_rate=8000, return_tensors="np")
    assert isinstance(both["input_features"], np.ndarray) and both["input_ids"].shape == (1, 32)


def test_bad_audio_inputs_are_clear_errors(processor, tokenizer):
    video = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="video file paths"):
        processor(videos=[video], audio_from_videos=True)
    with pytest.raises(ValueError, match="pass videos"):
        processor(text="x", audio_from_videos=True)
    with pytest.raises(ValueError, match="and no `audio`"):
        processor(videos=["a.mp4"], audio=np.zeros(100, np.float32), audio_from_videos=True)
    with pytest.raises(ValueError, match="empty"):
        processor(audio=[])
    with pytest.raises(ValueError, match="file path, a DecodedAudio"):
        processor(audio=[{"array": [0.0]}])
    with pytest.raises(ValueError, match="shape"):
        processor(audio=np.zeros((2, 2, 100), np.float32))
    with pytest.raises(ValueError, match=r"looks like one \(samples, channels\) clip"):
        processor(audio=np.zeros((16000, 2), np.float32), sampling_rate=16000)
    with pytest.raises(TypeError, match="padding_mode, crop_mode or generator"):
        processor(audio=np.zeros(1000, np.float32), sampling_rate=16000, audio_kwargs={"max_length": 3})
    with pytest.raises(ValueError, match="exactly one"):
        processor.process_audio()
    video_only = InternVideo2Processor.for_stage2(tokenizer=tokenizer)
    with pytest.raises(ValueError, match="no audio feature extractor"):
        video_only(audio=np.zeros(1000, np.float32), sampling_rate=16000)
    with pytest.raises(TypeError, match="feature_extractor"):
        InternVideo2Processor.for_stage2(tokenizer=tokenizer, feature_extractor="beats")


# ------------------------------------------------------------------------------------------------------------------
# Saving and loading
# ------------------------------------------------------------------------------------------------------------------
def test_feature_extractor_is_saved_and_restored(tokenizer, tmp_path):
    extractor = BeatsFeatureExtractor(max_length_seconds=1.0, padding_mode="fbank")
    processor = InternVideo2Processor.for_stage2(num_frames=8, tokenizer=tokenizer, feature_extractor=extractor)
    assert processor.model_input_names[-1] == "input_features"
    processor.save_pretrained(tmp_path / "with_audio")
    saved = json.loads((tmp_path / "with_audio" / "processor_config.json").read_text())
    assert saved["feature_extractor"]["feature_extractor_type"] == "BeatsFeatureExtractor"
    assert {"feature_extraction_beats.py", "audio_decoding.py"} <= set(os.listdir(tmp_path / "with_audio"))
    loaded = AutoProcessor.from_pretrained(tmp_path / "with_audio")
    assert type(loaded.feature_extractor) is BeatsFeatureExtractor
    assert loaded.feature_extractor.to_dict() == extractor.to_dict()
    assert loaded.video_processor.num_frames == 8
    waveform = np.random.default_rng(1).uniform(-0.5, 0.5, 12000).astype(np.float32)
    assert loaded(audio=waveform, sampling_rate=16000)["input_features"].shape == (1, 98, 64)
    # what pipelines load: the feature extractor alone, from the processor's folder
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path / "with_audio")) is BeatsFeatureExtractor


def test_video_only_processors_are_unchanged(tokenizer, tmp_path):
    processor = InternVideo2Processor.for_stage2(tokenizer=tokenizer)
    assert processor.feature_extractor is None
    assert processor.model_input_names == ["input_ids", "attention_mask", "pixel_values"]
    assert InternVideo2Processor.get_attributes() == ["video_processor", "tokenizer"]
    processor.save_pretrained(tmp_path / "video_only")
    saved = json.loads((tmp_path / "video_only" / "processor_config.json").read_text())
    assert saved["feature_extractor"] is None
    loaded = AutoProcessor.from_pretrained(tmp_path / "video_only")
    assert loaded.feature_extractor is None
    out = loaded(text="a cat", videos=np.zeros((6, 32, 32, 3), np.uint8))
    assert set(out) == {"input_ids", "attention_mask", "pixel_values"}
    # a folder written before audio existed (no "feature_extractor" key) loads too
    del saved["feature_extractor"]
    (tmp_path / "video_only" / "processor_config.json").write_text(json.dumps(saved))
    assert AutoProcessor.from_pretrained(tmp_path / "video_only").feature_extractor is None

"""The shapes world's sound: the material is only audible (recoverable from the decoded audio, absent from the frames),
the clicks sit at the motion's start and stop, seeds reproduce, the world without sound is unchanged, and the audio
track survives mp4 muxing and `media.audio_decoding.decode_audio` at 16 kHz."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from transformers_internvideo2.media.audio_decoding import decode_audio
from transformers_internvideo2.shapes_world.generator import (
    AUDIO_SAMPLING_RATE,
    MATERIAL_PITCH_HZ,
    MATERIALS,
    ShapesWorldDataset,
    build_shapes_world_dataset,
    click_times,
    render_audio,
    render_clip,
    sample_clip_spec,
    write_mp4,
)


def material_from_audio(waveform: np.ndarray, sampling_rate: int) -> str:
    """The material whose pitch is nearest (in log frequency) to the strongest spectral peak between 100 Hz and
    3 kHz: what a listener with perfect pitch would say."""
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    frequencies = np.fft.rfftfreq(len(waveform), 1.0 / sampling_rate)
    band = (frequencies > 100) & (frequencies < 3000)
    peak = frequencies[band][np.argmax(spectrum[band])]
    return min(MATERIALS, key=lambda material: abs(np.log(peak / MATERIAL_PITCH_HZ[material])))


def clicks_from_audio(waveform: np.ndarray, sampling_rate: int) -> list[float]:
    """Centres (seconds) of the two loudest broadband bursts: energy of the first difference (which suppresses the
    hum by its low frequency) in 5 ms bins; the second burst is searched at least 100 ms away from the first."""
    energy = np.diff(waveform.astype(np.float64)) ** 2
    bin_size = sampling_rate // 200
    bins = energy[: len(energy) // bin_size * bin_size].reshape(-1, bin_size).sum(1)
    first = int(np.argmax(bins))
    masked = bins.copy()
    masked[max(0, first - 20) : first + 21] = 0
    second = int(np.argmax(masked))
    return sorted((index + 0.5) * bin_size / sampling_rate for index in (first, second))


@pytest.mark.seed_pinned
def test_world_without_sound_is_unchanged():
    # frames, captions and questions of the world as it was before it had sound (main at c8c9f7a), so the bundled
    # models and every recipe see exactly the clips they were trained and measured on
    digest = hashlib.sha256()
    for seed in [*range(300), *range(20_000_000, 20_000_100)]:
        spec = sample_clip_spec(seed)
        digest.update(render_clip(spec).tobytes())
        digest.update(spec.caption.encode())
        digest.update(repr(spec.questions_and_answers).encode())
    assert digest.hexdigest() == "e37c4b291eefce512dcd499c02c6fa96ecb19de0cef9dccd33262d7c462ed556"


def test_frames_do_not_depend_on_the_sound():
    for seed in range(20):
        spec = sample_clip_spec(seed)
        for material in MATERIALS:
            other = dataclasses.replace(spec, material=material, pitch_hz=MATERIAL_PITCH_HZ[material] * 1.01,
                                        tone_phase=1.0, loudness=0.2, noise_seed=seed + 1)  # fmt: skip
            assert np.array_equal(render_clip(other), render_clip(spec))
    # and the material is drawn independently of everything visible
    specs = [sample_clip_spec(seed) for seed in range(4000)]
    for attribute in ("shape", "direction", "change", "start_colour"):
        for value in {getattr(spec, attribute) for spec in specs}:
            group = [spec.material for spec in specs if getattr(spec, attribute) == value]
            shares = np.array([group.count(material) for material in MATERIALS]) / len(group)
            assert np.abs(shares - 0.25).max() < 0.07, (attribute, value, shares)


def test_seeds_reproduce_the_sound():
    a = render_audio(sample_clip_spec(11))
    b = render_audio(sample_clip_spec(11))
    c = render_audio(sample_clip_spec(12))
    assert a.dtype == np.float32 and a.shape == (AUDIO_SAMPLING_RATE,)  # 8 frames at 8 fps: one second
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 1.0
    assert render_audio(sample_clip_spec(11, num_frames=16), fps=4).shape == (4 * AUDIO_SAMPLING_RATE,)


def test_material_and_clicks_are_recoverable_from_the_rendered_sound():
    seen = set()
    for seed in range(200):
        spec = sample_clip_spec(seed)
        waveform = render_audio(spec)
        assert material_from_audio(waveform, AUDIO_SAMPLING_RATE) == spec.material, seed
        np.testing.assert_allclose(clicks_from_audio(waveform, AUDIO_SAMPLING_RATE), click_times(spec), atol=0.006)
        seen.add(spec.material)
    assert seen == set(MATERIALS)


def test_clicks_follow_the_motion_and_the_captions_say_so():
    expected_places = {None: (0, 2), True: (0, 1), False: (1, 2)}  # motion alone / first / second
    for seed in range(100):
        spec = sample_clip_spec(seed)
        order = None if spec.change == "none" else spec.motion_first
        assert spec.click_places == expected_places[order]
        words = {(0, 2): "at the start and at the end", (0, 1): "at the start and in the middle",
                 (1, 2): "in the middle and at the end"}[spec.click_places]  # fmt: skip
        assert spec.audio_caption == f"a {spec.material} hum, clicks {words}"
        assert spec.av_caption.startswith(f"a {spec.start_colour} {spec.material} {spec.shape} ")
        assert spec.av_caption.replace(f"{spec.material} ", "", 1) == spec.caption
        assert not any(material in spec.caption for material in MATERIALS)  # the video caption cannot know it
    # a reversed clip: same material, clicks mirrored in time
    spec = next(sample_clip_spec(seed) for seed in range(100) if sample_clip_spec(seed).change != "none")
    backwards = spec.reversed()
    assert backwards.material == spec.material
    np.testing.assert_allclose(click_times(backwards), [1 - t for t in click_times(spec)[::-1]])


def test_specs_without_sound_say_so():
    spec = dataclasses.replace(sample_clip_spec(0), material=None, pitch_hz=None)
    assert spec.caption and "material" not in spec.labels()
    for call in (lambda: render_audio(spec), lambda: spec.audio_caption, lambda: spec.av_caption):
        with pytest.raises(ValueError, match="no sound"):
            call()
    with pytest.raises(ValueError, match="sampling_rate"):
        render_audio(sample_clip_spec(0), sampling_rate=4000)


@pytest.mark.parametrize("extension, codec", [("mp4", "aac"), ("mp4", "pcm_s16le"), ("mkv", "pcm_s16le")])
def test_muxed_audio_decodes_back_at_16khz(tmp_path, extension, codec):
    from transformers_internvideo2.media.video_decoding import decode_video_frames

    for seed in range(6):
        spec = sample_clip_spec(seed)
        waveform = render_audio(spec)
        path = write_mp4(render_clip(spec), tmp_path / f"{seed}.{extension}", audio=waveform, audio_codec=codec)
        decoded = decode_audio(path)
        assert decoded.sampling_rate == 16000 and decoded.source_sampling_rate == 16000
        audio = decoded.waveform.numpy()
        if codec == "pcm_s16le":  # exact up to 16-bit rounding, sample-aligned
            expected = np.clip(np.rint(waveform.astype(np.float64) * 32768), -32768, 32767) / 32768
            np.testing.assert_array_equal(audio, expected.astype(np.float32))
        else:  # lossy, aligned (the encoder delay is signalled and skipped), padded to whole 1024-sample frames
            assert len(audio) == 16384 and np.abs(audio[16000:]).max() < 0.05
            error = audio[:16000] - waveform
            assert 10 * np.log10((waveform**2).sum() / (error**2).sum()) > 20  # dB SNR
        assert material_from_audio(audio[:16000], 16000) == spec.material
        np.testing.assert_allclose(clicks_from_audio(audio[:16000], 16000), click_times(spec), atol=0.006)
        frames, _ = decode_video_frames(str(path), backend="pyav")
        assert frames.shape == (8, 32, 32, 3)  # the video track is untouched by the audio


def test_audio_at_another_rate_is_resampled_to_16khz_on_decoding(tmp_path):
    spec = sample_clip_spec(5)
    waveform = render_audio(spec, sampling_rate=44100)
    path = write_mp4(render_clip(spec), tmp_path / "clip.mp4", audio=waveform, sampling_rate=44100,
                     audio_codec="pcm_s16le")  # fmt: skip
    decoded = decode_audio(path)
    assert decoded.source_sampling_rate == 44100 and decoded.waveform.shape == (16000,)
    assert material_from_audio(decoded.waveform.numpy(), 16000) == spec.material


def test_write_mp4_rejects_bad_audio(tmp_path):
    video = render_clip(sample_clip_spec(0))
    cases = [
        (np.zeros((2, 100), np.float32), "mono float"),
        (np.zeros(100, np.int16), "mono float"),
        (np.full(100, 1.5, np.float32), r"\[-1, 1\]"),
        (np.array([0.0, np.nan], np.float32), "NaN"),
    ]
    for audio, message in cases:
        with pytest.raises(ValueError, match=message):
            write_mp4(video, tmp_path / "bad.mp4", audio=audio)
    with pytest.raises(ValueError, match="audio_codec"):
        write_mp4(video, tmp_path / "bad.mp4", audio=np.zeros(100, np.float32), audio_codec="opus")


def test_fbank_features_show_the_material(tmp_path):
    # what the audio encoder reads: the hum's mel band stands out, one band per material, ordered by pitch
    from transformers_internvideo2.models.beats import BeatsFeatureExtractor

    extractor = BeatsFeatureExtractor(max_length_seconds=1.0)
    strongest = {material: set() for material in MATERIALS}
    for seed in range(40):
        spec = sample_clip_spec(seed)
        features = extractor(render_audio(spec), sampling_rate=16000, return_tensors="pt")["input_features"][0]
        assert features.shape == (98, 64)
        strongest[spec.material].add(int(features.mean(0).argmax()))
    bands = [strongest[material] for material in sorted(MATERIALS, key=MATERIAL_PITCH_HZ.get)]
    assert all(bands) and all(max(low) < min(high) for low, high in zip(bands, bands[1:])), bands


def test_dataset_items_and_builder_carry_the_sound(tmp_path):
    dataset = ShapesWorldDataset("validation", num_clips=4, return_audio=True, label="material")
    item = dataset[2]
    spec = dataset.spec(2)
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (16000,)
    assert item["sampling_rate"] == 16000 and item["material"] == spec.material
    assert MATERIALS[item["labels"]] == spec.material and dataset.label_names == MATERIALS
    assert item["audio_caption"] == spec.audio_caption and item["av_caption"] == spec.av_caption
    assert np.array_equal(item["audio"].numpy(), render_audio(spec))
    assert "audio" not in ShapesWorldDataset("validation", num_clips=1)[0]  # opt-in: old consumers see no new keys

    table = build_shapes_world_dataset("test", num_clips=3, video_dir=tmp_path, with_audio=True)
    row = table[1]
    assert row["material"] in MATERIALS and row["audio_caption"] == sample_clip_spec(row["seed"]).audio_caption
    audio = decode_audio(row["video"]["path"]).waveform.numpy()
    assert material_from_audio(audio[:16000], 16000) == row["material"]
    assert "material" not in build_shapes_world_dataset("test", num_clips=1).column_names

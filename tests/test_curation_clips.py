"""The original clip rules (drop <= 2 s, one seeded 30-s segment inside a longer shot, never cross a boundary), the
clip table and cut files."""

import json

import av
import numpy as np
import pytest

from transformers_internvideo2.curation.clips import (
    Clip,
    check_inside_shot,
    clips_from_shots,
    cut_clip,
    is_too_short,
    read_clip_table,
    segment_inside,
    write_clip_table,
)
from transformers_internvideo2.curation.shots import Shot


def test_shots_of_two_seconds_or_less_are_dropped():
    fps = 25.0
    assert is_too_short(Shot(0, 49, 0.0), fps)  # exactly 2 s
    assert is_too_short(Shot(10, 10, 0.0), fps)
    assert not is_too_short(Shot(0, 50, 0.0), fps)  # 2.04 s
    assert not is_too_short(Shot(0, 15, 0.0), fps=7.5)  # 16 frames at 7.5 fps = 2.13 s
    with pytest.raises(ValueError, match="fps must be positive"):
        is_too_short(Shot(0, 10, 0.0), 0)


@pytest.mark.parametrize("fps", [8.0, 25.0, 29.97])
def test_a_long_shot_gives_one_30s_segment_inside_it(fps):
    shot = Shot(100, 100 + int(95 * fps), 0.1)  # 95 s
    length = int(np.floor(30 * fps + 1e-9))
    starts = set()
    for seed in range(40):
        first, last = segment_inside(shot, fps, np.random.default_rng(seed))
        assert last - first + 1 == length
        check_inside_shot(first, last, shot)
        starts.add(first)
    assert len(starts) > 20  # a uniform draw, not a fixed position
    # seeded: the same generator state gives the same segment
    assert segment_inside(shot, fps, np.random.default_rng(3)) == segment_inside(shot, fps, np.random.default_rng(3))


def test_segment_reaches_both_ends_of_the_shot():
    fps, shot = 10.0, Shot(0, 300, 0.0)  # 301 frames, 300-frame segments: two possible starts
    seen = {segment_inside(shot, fps, np.random.default_rng(seed)) for seed in range(50)}
    assert seen == {(0, 299), (1, 300)}


def test_a_shot_up_to_30s_is_kept_whole():
    assert segment_inside(Shot(5, 5 + 299, 0.0), 10.0, np.random.default_rng(0)) == (5, 304)  # exactly 30 s


def test_check_inside_shot_refuses_a_clip_that_crosses_a_boundary():
    with pytest.raises(ValueError, match="cross"):
        check_inside_shot(5, 40, Shot(10, 40, 0.0))
    with pytest.raises(ValueError, match="cross"):
        check_inside_shot(10, 41, Shot(10, 40, 0.0))


def test_clips_from_shots_applies_the_rules_and_says_why_shots_are_dropped():
    fps = 10.0
    shots = [Shot(0, 14, 0.2), Shot(15, 74, 0.1), Shot(75, 480, 0.05), Shot(481, 500, 0.0)]
    clips, dropped = clips_from_shots("a.mp4", shots, fps, seed=7)
    assert [c.shot_id for c in clips] == [1, 2]
    assert [d.shot_id for d in dropped] == [0, 3]
    assert all(d.reason == "shot of 2 s or less" for d in dropped)
    assert [d.seconds for d in dropped] == [1.5, 2.0]
    whole, segment = clips
    assert (whole.start_frame, whole.end_frame, whole.start, whole.end) == (15, 74, 1.5, 7.5)
    assert segment.end - segment.start == pytest.approx(30.0)
    assert 75 <= segment.start_frame and segment.end_frame <= 480
    assert segment.score == 0.05 and segment.clip_id == "a.mp4#2"
    # seeded per video: same seed same clips, another seed (almost surely) another segment
    assert clips_from_shots("a.mp4", shots, fps, seed=7)[0] == clips
    others = {clips_from_shots("a.mp4", shots, fps, seed=s)[0][1].start_frame for s in range(10)}
    assert len(others) > 1


def test_clip_table_round_trips(tmp_path):
    clips = [Clip("v.mp4#0", "v.mp4", 0.0, 2.5, 0, 0.01, 0, 24), Clip("v.mp4#2", "v.mp4", 4.0, 9.0, 2, 0.3, 40, 89)]
    for name in ("clips.jsonl", "clips.csv"):
        path = write_clip_table(clips, tmp_path / name)
        assert read_clip_table(path) == clips
    first = json.loads((tmp_path / "clips.jsonl").read_text().splitlines()[0])
    assert {"video", "start", "end", "shot_id", "score"} <= set(first)
    with pytest.raises(ValueError, match="repeat"):
        write_clip_table([clips[0], clips[0]], tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match=".jsonl or .csv"):
        write_clip_table(clips, tmp_path / "x.txt")


def _write_counter_video(path, num_frames=60, fps=10, gop=20):
    """Frames whose mean brightness encodes their index; keyframes every `gop` frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.gop_size = gop
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        for index in range(num_frames):
            frame = np.full((48, 64, 3), 4 * index, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def _frame_levels(path):
    with av.open(path) as container:
        return [int(round(f.to_ndarray(format="rgb24").mean() / 4)) for f in container.decode(video=0)]


def test_cut_clip_copies_from_a_keyframe_and_reencodes_otherwise(tmp_path):
    video = _write_counter_video(tmp_path / "counter.mp4")
    on_key = Clip("k", video, 2.0, 4.0, 0, 0.0, 20, 39)
    assert cut_clip(on_key, tmp_path / "copy.mp4") == "copy"
    assert _frame_levels(str(tmp_path / "copy.mp4")) == list(range(20, 40))
    off_key = Clip("o", video, 2.5, 4.0, 0, 0.0, 25, 39)
    assert cut_clip(off_key, tmp_path / "re.mp4") == "reencode"
    assert _frame_levels(str(tmp_path / "re.mp4")) == list(range(25, 40))
    with pytest.raises(ValueError, match="keyframe"):
        cut_clip(off_key, tmp_path / "bad.mp4", mode="copy")
    assert cut_clip(on_key, tmp_path / "forced.mp4", mode="reencode") == "reencode"
    assert _frame_levels(str(tmp_path / "forced.mp4")) == list(range(20, 40))


def test_cut_clip_keeps_the_audio_track(tmp_path, shared_dir):
    from transformers_internvideo2.media.audio_decoding import decode_audio

    video = str(shared_dir / "media" / "example1_with_audio.mp4")  # 5 fps, keyframes every 2.4 s, AAC sound
    for start, expected_mode in ((2.4, "copy"), (2.2, "reencode")):
        output = tmp_path / f"{start}.mp4"
        assert cut_clip(Clip("c", video, start, 6.0, 0, 0.0, 0, 0), output) == expected_mode
        with av.open(str(output)) as container:
            assert container.streams.video[0].frames == round((6.0 - start) * 5)
        seconds = decode_audio(str(output)).waveform.shape[-1] / 16000
        assert seconds == pytest.approx(6.0 - start, abs=0.15)

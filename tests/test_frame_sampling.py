"""The one frame sampler (`media/frame_sampling.py`): every named mode against the numbers of the original protocols."""

import warnings

import numpy as np
import pytest

from transformers_internvideo2.media.frame_sampling import (
    FRAME_SAMPLING_MODES,
    RepeatedFramesWarning,
    canonical_frame_sampling,
    sample_frame_indices,
)


def test_segments_and_test_clips_match_the_spec_numbers():
    assert sample_frame_indices(300, 8, "segments").tolist() == [18, 55, 93, 130, 168, 205, 242, 280]
    clips = [sample_frame_indices(300, 8, "test_clips", clip_index=k, num_clips=4).tolist() for k in range(4)]
    assert clips[0] == [7, 44, 82, 119, 157, 194, 231, 269]
    assert clips[1][:2] == [14, 51] and clips[1][-1] == 276
    assert clips[2][:2] == [22, 59] and clips[2][-1] == 284
    assert clips[3] == [29, 66, 104, 141, 179, 216, 253, 291]
    # the original's names are aliases
    assert canonical_frame_sampling("val") == "segments" and canonical_frame_sampling("test") == "test_clips"
    assert sample_frame_indices(300, 8, "val").tolist() == sample_frame_indices(300, 8, "segments").tolist()


def test_segment_edge_cases():
    for total in (8, 40, 301):  # one test clip == the segment centres
        assert np.array_equal(sample_frame_indices(total, 8), sample_frame_indices(total, 8, "test_clips"))
    # round half to even: L=5, T=8 -> seg = 0.5: round(0.5)=0, round(1.5)=2, round(2.5)=2; frames repeat, with a warning
    with pytest.warns(RepeatedFramesWarning, match="repeat"):
        assert sample_frame_indices(5, 8).tolist() == [0, 0, 1, 2, 2, 2, 3, 4]
    with pytest.warns(RepeatedFramesWarning):
        assert sample_frame_indices(1, 8).tolist() == [0] * 8
    with pytest.warns(RepeatedFramesWarning):
        assert sample_frame_indices(3, 8, "test_clips", clip_index=3, num_clips=4).max() <= 2


def test_random_segments_stay_in_their_segment():
    rng = np.random.default_rng(0)
    seg = 299 / 8
    for _ in range(20):
        idx = sample_frame_indices(300, 8, "random_segments", generator=rng)
        assert np.all(idx >= np.round(seg * np.arange(8))) and np.all(idx <= np.minimum(np.round(seg * np.arange(1, 9)), 299))


def test_middle_and_demo():
    assert sample_frame_indices(40, 4, "middle").tolist() == [4, 14, 24, 34]
    assert sample_frame_indices(40, 8, "middle").tolist() == [2, 7, 12, 17, 22, 27, 32, 37]
    assert sample_frame_indices(4, 4, "middle").tolist() == [0, 1, 2, 3]
    assert sample_frame_indices(40, 4, "demo").tolist() == [0, 10, 20, 30]
    with pytest.warns(RepeatedFramesWarning):
        assert sample_frame_indices(3, 5, "middle").tolist() == [0, 1, 2, 2, 2]
    with pytest.warns(RepeatedFramesWarning):
        assert sample_frame_indices(2, 4, "demo").tolist() == [0, 1, 1, 1]


def test_mvbench_window_rule():
    # whole video, 40 frames, 8 segments: seg = 39/8 = 4.875 -> int(2.4375 + round(4.875 i)), round half to even
    assert sample_frame_indices(40, 8, "mvbench", fps=5.0).tolist() == [2, 7, 12, 17, 22, 26, 31, 36]
    # window [2 s, 6 s] at 5 fps: frames 10..30, seg = 20/4 = 5 -> int(10 + 2.5 + 5 i)
    assert sample_frame_indices(40, 4, "mvbench", fps=5.0, start=2.0, end=6.0).tolist() == [12, 17, 22, 27]
    with pytest.raises(ValueError, match="Empty window"):
        sample_frame_indices(40, 4, "mvbench", fps=5.0, start=6.0, end=2.0)
    with pytest.raises(ValueError, match="fps"):
        sample_frame_indices(40, 4, "mvbench", start=1.0)


@pytest.mark.parametrize("mode", FRAME_SAMPLING_MODES)
@pytest.mark.parametrize("total", [1, 2, 7, 8, 9, 100])
@pytest.mark.parametrize("count", [1, 3, 8, 16])
def test_every_mode_returns_count_indices_in_range(mode, total, count):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepeatedFramesWarning)
        indices = sample_frame_indices(total, count, mode, fps=4.0, generator=np.random.default_rng(0))
    assert indices.dtype == np.int64 and indices.shape == (count,)
    assert indices.min() >= 0 and indices.max() < total


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="0 frames"):
        sample_frame_indices(0, 8)
    with pytest.raises(ValueError, match="positive"):
        sample_frame_indices(10, 0)
    with pytest.raises(ValueError, match="Unknown frame sampling mode"):
        sample_frame_indices(10, 8, "bogus")
    with pytest.raises(ValueError, match="clip_index"):
        sample_frame_indices(10, 8, "test_clips", clip_index=4, num_clips=4)

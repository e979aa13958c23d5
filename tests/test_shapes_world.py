"""The procedural shapes world: determinism, splits, language, and the claim that motion needs time."""

import numpy as np
import pytest
import torch

from transformers_internvideo2.shapes_world.generator import (
    CHANGES,
    COLOURS,
    DIRECTIONS,
    SHAPES,
    ShapesWorldDataset,
    build_shapes_world_dataset,
    render_clip,
    sample_clip_spec,
    video_to_pixel_values,
    write_mp4,
)


def test_render_is_deterministic_uint8_and_seed_dependent():
    a = render_clip(sample_clip_spec(7, num_frames=8, height=32, width=48))
    b = render_clip(sample_clip_spec(7, num_frames=8, height=32, width=48))
    c = render_clip(sample_clip_spec(8, num_frames=8, height=32, width=48))
    assert a.dtype == np.uint8 and a.shape == (8, 32, 48, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_shape_actually_moves_in_its_direction():
    for seed in range(40):
        spec = sample_clip_spec(seed)
        video = render_clip(spec).astype(np.float64)
        foreground = np.abs(video - np.asarray(spec.background)).sum(-1)  # (T, H, W)
        ys, xs = np.mgrid[0:32, 0:32]
        cx = (foreground * xs).sum((1, 2)) / foreground.sum((1, 2))
        cy = (foreground * ys).sum((1, 2)) / foreground.sum((1, 2))
        shift = {"left": cx[0] - cx[-1], "right": cx[-1] - cx[0], "up": cy[0] - cy[-1], "down": cy[-1] - cy[0]}
        assert shift[spec.direction] > 8, (seed, spec.direction, shift)  # >= 35 % of 32 px, minus edge effects


def test_time_reversal_is_another_clip_of_the_world_bit_for_bit():
    for seed in range(60):
        spec = sample_clip_spec(seed)
        backwards = spec.reversed()
        assert np.array_equal(render_clip(backwards), render_clip(spec)[::-1])
        assert backwards.direction != spec.direction
        assert backwards.reversed() == spec


def test_world_distribution_is_symmetric_under_reversal():
    # empirical frequencies of (direction, change, order) equal those of the reversed clips
    specs = [sample_clip_spec(seed) for seed in range(4000)]
    key = lambda s: (s.direction, s.change, s.motion_first if s.change != "none" else None)  # noqa: E731
    forward, backward = {}, {}
    for spec in specs:
        forward[key(spec)] = forward.get(key(spec), 0) + 1
        backward[key(spec.reversed())] = backward.get(key(spec.reversed()), 0) + 1
    assert set(forward) == set(backward)
    for k in forward:
        assert abs(forward[k] - backward[k]) < 0.35 * forward[k] + 15, k
    assert {s.direction for s in specs} == set(DIRECTIONS)
    assert {s.change for s in specs} == set(CHANGES) and {s.shape for s in specs} == set(SHAPES)


def _linear_probe_accuracy(features, labels, n_train):
    torch.manual_seed(0)
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(labels)
    x = (x - x[:n_train].mean(0)) / (x[:n_train].std(0) + 1e-6)
    weight = torch.zeros(x.shape[1], 4, requires_grad=True)
    bias = torch.zeros(4, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x[:n_train] @ weight + bias, y[:n_train]) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    return ((x[n_train:] @ weight + bias).argmax(1) == y[n_train:]).float().mean().item()


def test_frame_averaging_cannot_tell_direction_but_frame_order_can():
    specs = [sample_clip_spec(seed) for seed in range(1200)]
    videos = np.stack([render_clip(s) for s in specs]).astype(np.float32) / 255
    videos = videos.reshape(len(specs), 8, 16, 2, 16, 2, 3).mean((3, 5))  # 2x2 pooling keeps the probes fast
    labels = [DIRECTIONS.index(s.direction) for s in specs]
    n = len(specs)
    time_average = videos.mean(1).reshape(n, -1)  # order-free summary
    rng = np.random.default_rng(0)
    shuffled = np.stack([clip[rng.permutation(len(clip))] for clip in videos])  # each clip's frame order destroyed
    order_free = _linear_probe_accuracy(time_average, labels, 900)
    shuffled_diff = _linear_probe_accuracy((shuffled[:, -1] - shuffled[:, 0]).reshape(n, -1), labels, 900)
    ordered_diff = _linear_probe_accuracy((videos[:, -1] - videos[:, 0]).reshape(n, -1), labels, 900)
    assert order_free <= 0.55  # an order-free model is bounded by 50 % (axis only); chance is 25 %
    assert ordered_diff >= 0.95
    assert shuffled_diff < 0.6


def test_captions_and_questions():
    seen = set()
    for seed in range(200):
        spec = sample_clip_spec(seed)
        caption = spec.caption
        assert caption.startswith(f"a {spec.start_colour} {spec.shape} ")
        assert f"moves {spec.direction}" in caption
        if spec.change == "none":
            assert " then " not in caption
        else:
            first, _, second = caption.partition(" then ")
            assert ("moves" in first) == spec.motion_first and spec.change_phrase in caption
            seen.add(spec.change)
        answers = dict(spec.questions_and_answers)
        assert answers["Which way does it move?"] == spec.direction
        assert answers["What colour is the shape at the start?"] == spec.start_colour
        assert answers["What shape is it?"] == spec.shape
        if spec.change == "changes colour":
            assert spec.end_colour != spec.start_colour and f"turns {spec.end_colour}" in caption
    assert seen == {"grows", "shrinks", "changes colour"}


def test_torch_dataset_and_splits_do_not_overlap():
    train = ShapesWorldDataset("train", num_clips=20)
    held_out = ShapesWorldDataset("test", num_clips=20)
    assert not set(train.seeds) & set(held_out.seeds)
    item = train[3]
    assert item["pixel_values"].shape == (8, 3, 32, 32) and item["pixel_values"].dtype == torch.float32
    assert DIRECTIONS[item["labels"]] in item["caption"]
    raw = ShapesWorldDataset("train", num_clips=20, return_pixel_values=False, label="colour")[3]
    assert raw["video"].shape == (8, 32, 32, 3) and list(COLOURS)[raw["labels"]] in raw["caption"]
    torch.testing.assert_close(video_to_pixel_values(raw["video"]), item["pixel_values"])
    with pytest.raises(ValueError, match="Unknown split"):
        ShapesWorldDataset("dev", num_clips=2)
    with pytest.raises(ValueError, match="label"):
        ShapesWorldDataset("train", label="speed")


def test_datasets_builder_and_mp4_roundtrip(tmp_path):
    from transformers_internvideo2.media.video_decoding import decode_video_frames

    ds = build_shapes_world_dataset("validation", num_clips=3, video_dir=tmp_path)
    assert ds.features["label"].names == list(DIRECTIONS)
    row = ds[1]
    assert DIRECTIONS[row["label"]] == row["direction"] and row["caption"].startswith("a ")
    frames, metadata = decode_video_frames(row["video"]["path"], backend="pyav")
    expected = render_clip(sample_clip_spec(row["seed"]))
    assert frames.shape == expected.shape and metadata.total_num_frames == 8
    assert np.abs(frames.astype(int) - expected.astype(int)).mean() < 4  # lossy H.264 at high quality
    assert len(build_shapes_world_dataset("train", num_clips=4)) == 4
    with pytest.raises(ValueError, match="even"):
        write_mp4(np.zeros((2, 31, 32, 3), np.uint8), tmp_path / "odd.mp4")

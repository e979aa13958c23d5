"""Shapes, ratios, determinism and semantics of the token masks."""

import pytest
import torch

from transformers_internvideo2.training.masking import attention_guided_mask, num_masked, random_mask, tube_mask


def test_num_masked_truncates_like_the_original():
    assert num_masked(256, 0.8) == 204  # 52 visible per frame in stage 1
    assert num_masked(2048, 0.8) == 1638  # 410 visible in distillation
    assert num_masked(1024, 0.8) == 819  # stage-2, 4 frames
    with pytest.raises(ValueError, match="mask_ratio"):
        num_masked(10, 1.0)


@pytest.mark.parametrize("make", [random_mask, tube_mask])
def test_random_and_tube_shapes_counts_and_determinism(make):
    mask = make(3, 4, 16, 0.75, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 64) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [48, 48, 48]
    again = make(3, 4, 16, 0.75, generator=torch.Generator().manual_seed(0))
    other = make(3, 4, 16, 0.75, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, again) and not torch.equal(mask, other)
    assert not torch.equal(mask[0], mask[1])  # per-sample masks


def test_tube_mask_repeats_over_frames_and_random_does_not():
    tube = tube_mask(2, 5, 9, 0.5, generator=torch.Generator().manual_seed(0)).reshape(2, 5, 9)
    assert all(torch.equal(tube[:, t], tube[:, 0]) for t in range(5))
    assert tube[:, 0].sum(1).tolist() == [4, 4]
    rand = random_mask(2, 5, 9, 0.5, generator=torch.Generator().manual_seed(0)).reshape(2, 5, 9)
    assert not all(torch.equal(rand[:, t], rand[:, 0]) for t in range(5))


def test_attention_guided_per_frame_counts_and_preference():
    batch, frames, patches = 2, 3, 16
    attention = torch.full((batch, frames, patches), 1e-3)
    attention[..., 5] = 10.0  # one token every frame strongly attended
    attention[..., 9] = 10.0
    mask = attention_guided_mask(attention, 0.8, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (batch, frames * patches)
    per_frame_visible = (~mask).reshape(batch, frames, patches).sum(-1)
    assert per_frame_visible.eq(patches - int(patches * 0.8)).all()  # 4 visible per frame
    frames_view = mask.reshape(batch, frames, patches)
    assert not frames_view[..., 5].any() and not frames_view[..., 9].any()  # the attended tokens are kept


def test_attention_guided_whole_clip_and_sampling_follows_weights():
    # one group over the whole clip: the visible count is global, not per frame
    attention = torch.rand(4, 1, 40, generator=torch.Generator().manual_seed(0))
    mask = attention_guided_mask(attention, 0.8)
    assert mask.shape == (4, 40) and (~mask).sum(1).eq(8).all()
    # empirical keep-frequency grows with the weight
    weights = torch.linspace(0.1, 1.0, 10)[None, None].expand(2000, 1, 10)
    kept = (~attention_guided_mask(weights, 0.8, generator=torch.Generator().manual_seed(0))).float().mean(0)
    assert kept[-1] > 2 * kept[0]
    assert torch.equal(
        attention_guided_mask(weights[:5], 0.5, generator=torch.Generator().manual_seed(3)),
        attention_guided_mask(weights[:5], 0.5, generator=torch.Generator().manual_seed(3)),
    )


def test_attention_guided_handles_zero_weights_and_rejects_bad_input():
    attention = torch.zeros(1, 1, 10)
    attention[..., 0] = 1.0
    assert (~attention_guided_mask(attention, 0.5)).sum() == 5
    with pytest.raises(ValueError, match="non-negative"):
        attention_guided_mask(-torch.ones(1, 1, 4), 0.5)
    with pytest.raises(ValueError, match="batch, groups, tokens"):
        attention_guided_mask(torch.ones(4, 4), 0.5)

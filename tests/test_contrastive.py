"""Single-process checks of the video–text contrastive loss (the 2-process checks are in test_contrastive_distributed)."""

import math

import pytest
import torch
import torch.nn.functional as F

from transformers_internvideo2.losses.contrastive import gather_with_grad, video_text_contrastive_loss


def _reference_infonce(video, text, temperature):
    """Textbook symmetric InfoNCE written out with explicit loops."""
    video, text = F.normalize(video, dim=-1), F.normalize(text, dim=-1)
    n = video.shape[0]
    total = 0.0
    for i in range(n):
        v2t = [float(video[i] @ text[j]) / temperature for j in range(n)]
        t2v = [float(text[i] @ video[j]) / temperature for j in range(n)]
        total += -(v2t[i] - math.log(sum(math.exp(x) for x in v2t)))
        total += -(t2v[i] - math.log(sum(math.exp(x) for x in t2v)))
    return total / (2 * n)


def test_matches_textbook_infonce():
    torch.manual_seed(0)
    video, text = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    loss = video_text_contrastive_loss(video, text, temperature=0.07)
    assert abs(loss.item() - _reference_infonce(video, text, 0.07)) < 1e-10


def test_logit_scale_is_inverse_temperature_and_original_mode_agrees_on_one_process():
    torch.manual_seed(1)
    video, text = torch.randn(5, 4), torch.randn(5, 4)
    by_temperature = video_text_contrastive_loss(video, text, temperature=0.5)
    by_scale = video_text_contrastive_loss(video, text, logit_scale=2.0)
    original = video_text_contrastive_loss(video, text, temperature=0.5, original_gradient_scaling=True)
    torch.testing.assert_close(by_temperature, by_scale)
    torch.testing.assert_close(by_temperature, original)


def test_perfect_alignment_gives_small_loss_and_random_gives_about_log_n():
    eye = torch.eye(16)
    assert video_text_contrastive_loss(eye, eye, temperature=0.01).item() < 1e-6
    torch.manual_seed(0)
    random = video_text_contrastive_loss(torch.randn(512, 64), torch.randn(512, 64), temperature=1.0)
    assert abs(random.item() - math.log(512)) < 0.05


def test_sample_ids_split_the_target_over_duplicates():
    # Rows 0 and 1 are two captions of the same video: both of its columns are positives with weight 1/2.
    torch.manual_seed(2)
    video, text = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    ids = torch.tensor([7, 7, 8, 9])
    loss = video_text_contrastive_loss(video, text, temperature=0.1, sample_ids=ids)
    logits = F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).t() / 0.1
    targets = torch.tensor(
        [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]], dtype=torch.float64
    )
    expected = (
        -(targets * F.log_softmax(logits, 1)).sum(1).mean() - (targets * F.log_softmax(logits.t(), 1)).sum(1).mean()
    ) / 2
    torch.testing.assert_close(loss, expected)
    unique = video_text_contrastive_loss(video, text, temperature=0.1, sample_ids=torch.arange(4))
    torch.testing.assert_close(unique, video_text_contrastive_loss(video, text, temperature=0.1))


def test_gradient_reaches_a_learnable_temperature():
    video, text = torch.randn(4, 3), torch.randn(4, 3)
    temperature = torch.tensor(0.3, requires_grad=True)
    video_text_contrastive_loss(video, text, temperature).backward()
    assert temperature.grad is not None and temperature.grad.abs() > 0


def test_gather_is_identity_without_distributed():
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one"),
        (dict(temperature=0.1, logit_scale=10.0), "exactly one"),
    ],
)
def test_temperature_xor_logit_scale(kwargs, message):
    with pytest.raises(ValueError, match=message):
        video_text_contrastive_loss(torch.randn(2, 3), torch.randn(2, 3), **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        video_text_contrastive_loss(torch.randn(2, 3), torch.randn(3, 3), temperature=0.1)
    with pytest.raises(ValueError, match="sample_ids"):
        video_text_contrastive_loss(torch.randn(2, 3), torch.randn(2, 3), temperature=0.1, sample_ids=torch.arange(3))

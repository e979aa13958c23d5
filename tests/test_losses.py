"""The small losses the model forwards share (`losses/`), each on its own."""

import pytest
import torch
import torch.nn.functional as F

from transformers_internvideo2.losses import (
    alignment_loss,
    mean_over_step,
    soft_target_cross_entropy,
    video_classification_loss,
)


def test_mean_over_step_is_the_share_of_the_step_mean():
    per_item = torch.tensor([1.0, 2.0, 3.0, 6.0])
    halves = [per_item[:2], per_item[2:]]
    # two micro-batches of 2 out of a step of 4 items add up to the mean over the 4
    shares = [mean_over_step(half.mean(), 2, 4) for half in halves]
    torch.testing.assert_close(sum(shares), per_item.mean())
    assert mean_over_step(per_item.mean(), 4, None) is not None
    torch.testing.assert_close(mean_over_step(per_item.mean(), 4, None), per_item.mean())
    torch.testing.assert_close(mean_over_step(per_item.mean(), 4, torch.tensor(8)), per_item.mean() / 2)


def test_alignment_loss_is_two_minus_two_cosine():
    student = torch.randn(3, 5, 7)
    assert alignment_loss(student, student).abs().item() < 1e-6
    assert abs(alignment_loss(student, -student).item() - 4.0) < 1e-5
    orthogonal = alignment_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
    assert abs(orthogonal.item() - 2.0) < 1e-6
    # layers first (batch_dim=1): the mean per sample over layers and tokens, then over samples
    layered = torch.randn(2, 3, 4, 6)
    target = torch.randn(2, 3, 4, 6)
    cosine = F.cosine_similarity(layered, target, dim=-1)  # (layers, batch, tokens)
    expected = (2 - 2 * cosine).permute(1, 0, 2).reshape(3, -1).mean(1).mean()
    torch.testing.assert_close(alignment_loss(layered, target, batch_dim=1), expected)
    torch.testing.assert_close(alignment_loss(layered, target, num_items_in_batch=6, batch_dim=1), expected * 3 / 6)


def test_classification_loss_with_indices_soft_targets_and_ignored_labels():
    logits = torch.randn(4, 5)
    labels = torch.tensor([0, 3, 1, 4])
    hard = video_classification_loss(logits, labels)
    torch.testing.assert_close(hard, F.cross_entropy(logits, labels))
    torch.testing.assert_close(video_classification_loss(logits, F.one_hot(labels, 5).float()), hard)
    torch.testing.assert_close(soft_target_cross_entropy(logits, F.one_hot(labels, 5).float()), hard)
    # ignored labels do not count; all ignored gives 0, not NaN
    partly = video_classification_loss(logits, torch.tensor([0, -100, 1, -100]))
    torch.testing.assert_close(partly, F.cross_entropy(logits[[0, 2]], labels[[0, 2]]))
    nothing = video_classification_loss(logits, torch.full((4,), -100))
    assert nothing.item() == 0.0 and not nothing.isnan()
    # exact accumulation: a sum over this batch's items divided by the step's
    torch.testing.assert_close(video_classification_loss(logits, labels, num_items_in_batch=8), hard / 2)
    with pytest.raises(ValueError, match="shape"):
        video_classification_loss(logits, torch.rand(4, 3))


def test_token_cross_entropy_means_over_labelled_tokens_and_is_zero_without_any():
    from transformers_internvideo2.losses import token_cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.tensor([[3, -100, 7, 1, -100], [-100, 2, -100, -100, 10]])
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(token_cross_entropy(logits, labels), expected)
    # causal: position i predicts label i + 1
    shifted = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(token_cross_entropy(logits, labels, shift=True), shifted)
    # the step's count of labelled tokens replaces the local one
    summed = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), reduction="sum")
    torch.testing.assert_close(token_cross_entropy(logits, labels, num_items_in_batch=torch.tensor(20)), summed / 20)
    # nothing labelled (or a step count of 0): 0, not NaN, and backward still runs
    ignored = torch.full_like(labels, -100)
    for count in (None, 0, torch.tensor(0)):
        loss = token_cross_entropy(logits, ignored, num_items_in_batch=count)
        assert float(loss.detach()) == 0.0
        loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()

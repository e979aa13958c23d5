"""Fine-tuning trainer: layer decay, mixup/cutmix, exact accumulation, checkpointing, multi-view evaluation."""

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig
from transformers_internvideo2.shapes_world.generator import DIRECTIONS, ShapesWorldDataset, render_clip, sample_clip_spec
from transformers_internvideo2.losses import soft_target_cross_entropy
from transformers_internvideo2.training import (
    InternVideo2ClassificationArguments,
    InternVideo2ClassificationTrainer,
    MultiViewMetrics,
    classification_metrics,
    layer_decay_parameter_groups,
    mixup_cutmix,
    multi_view_probabilities,
    top_k_accuracy,
)
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor


def tiny_classifier(seed=0, **overrides):
    torch.manual_seed(seed)
    kwargs = dict(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, image_size=32,
        patch_size=8, num_frames=8, pooler_output_size=16, pooler_num_attention_heads=4, num_labels=len(DIRECTIONS),
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideo2ForVideoClassification(InternVideo2VisionConfig(**kwargs))


def make_args(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4, learning_rate=1e-3,
        max_steps=2, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
        dataloader_drop_last=True,
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideo2ClassificationArguments(**kwargs)


def test_layer_decay_groups_follow_the_original_rule():
    model = tiny_classifier()
    groups = layer_decay_parameter_groups(model, learning_rate=1.0, weight_decay=0.05, layer_decay=0.5)
    by_name = {name: group for group in groups for name in group["names"]}
    depth = 3
    assert by_name["internvideo2.embeddings.cls_token"]["layer_id"] == 0
    assert by_name["internvideo2.embeddings.patch_embeddings.projection.weight"]["lr"] == 0.5 ** (depth + 1)
    assert by_name["internvideo2.encoder.layer.0.attention.qkv.weight"]["lr"] == 0.5**depth
    assert by_name["internvideo2.encoder.layer.2.mlp.fc1.weight"]["lr"] == 0.5
    for head in ("classifier.weight", "internvideo2.pooler.q_proj.weight", "fc_norm.weight"):
        assert by_name[head]["lr"] == 1.0 and by_name[head]["layer_id"] == depth + 1
    # no weight decay for biases, 1-D parameters and the cls/position tables
    for name in ("classifier.bias", "fc_norm.weight", "internvideo2.encoder.layer.1.norm1.weight",
                 "internvideo2.embeddings.cls_token", "internvideo2.embeddings.position_embeddings.joint"):  # fmt: skip
        assert by_name[name]["weight_decay"] == 0.0, name
    assert by_name["internvideo2.encoder.layer.1.attention.proj.weight"]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_trainer_optimizer_uses_the_decayed_groups(tmp_path):
    trainer = InternVideo2ClassificationTrainer(model=tiny_classifier(), args=make_args(tmp_path, layer_decay=0.75))
    optimizer = trainer.create_optimizer()
    lrs = sorted({round(g["lr"], 12) for g in optimizer.param_groups})
    assert lrs == sorted({round(1e-3 * 0.75**k, 12) for k in range(5)})


def test_mixup_and_cutmix_on_videos():
    rng = np.random.default_rng(0)
    videos = torch.randn(4, 3, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets, lam = mixup_cutmix(videos, labels, 4, mixup_alpha=0.8, cutmix_alpha=0.0, rng=rng)
    torch.testing.assert_close(mixed, lam * videos + (1 - lam) * videos.flip(0))
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    expected_0 = torch.full((4,), 0.1 / 4)
    expected_0[0] += 0.9 * lam
    expected_0[3] += 0.9 * (1 - lam)
    torch.testing.assert_close(targets[0], expected_0)
    # cutmix: one box, the same in every frame; lam is the unpasted area fraction
    mixed, targets, lam = mixup_cutmix(videos, labels, 4, mixup_alpha=0.0, cutmix_alpha=1.0, rng=np.random.default_rng(3))
    pasted = (mixed != videos)[0, :, 0]  # (T, H, W)
    assert all(torch.equal(pasted[t], pasted[0]) for t in range(3))
    assert abs((1 - pasted[0].float().mean().item()) - lam) < 1e-6 and 0 < lam < 1
    assert torch.equal(mixed[0][:, :, pasted[0]], videos[3][:, :, pasted[0]])
    # prob 0: no mixing, smoothed one-hot targets
    same, targets, lam = mixup_cutmix(videos, labels, 4, prob=0.0, smoothing=0.2)
    assert lam == 1.0 and torch.equal(same, videos) and torch.isclose(targets[1, 1], torch.tensor(0.85))


def test_soft_target_cross_entropy_equals_cross_entropy_for_one_hot():
    logits = torch.randn(5, 7)
    labels = torch.randint(0, 7, (5,))
    one_hot = torch.nn.functional.one_hot(labels, 7).float()
    torch.testing.assert_close(soft_target_cross_entropy(logits, one_hot), torch.nn.functional.cross_entropy(logits, labels))


def _shapes(n):
    dataset = ShapesWorldDataset("train", num_clips=n, num_frames=8, image_size=32)
    return [{"pixel_values": dataset[i]["pixel_values"], "labels": dataset[i]["labels"]} for i in range(n)]


def _one_step_update(tmp_path, batch_size, accumulation, **overrides):
    model = tiny_classifier(seed=0)
    args = make_args(
        tmp_path, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1,
        optim="sgd", learning_rate=1.0, max_grad_norm=0.0, lr_scheduler_type="constant", mixup_alpha=0.0,
        cutmix_alpha=0.0, **overrides,
    )  # fmt: skip
    trainer = InternVideo2ClassificationTrainer(model=model, args=args, train_dataset=_shapes(4))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}, trainer


def test_gradient_accumulation_is_exact_and_checkpointing_changes_nothing(tmp_path):
    full, trainer = _one_step_update(tmp_path / "a", 4, 1)
    accumulated, _ = _one_step_update(tmp_path / "b", 2, 2)
    checkpointed, checkpointed_trainer = _one_step_update(tmp_path / "c", 2, 2, activation_checkpointing=True)
    assert checkpointed_trainer.model.internvideo2.encoder.gradient_checkpointing
    assert "loss_classification" in trainer.state.log_history[0]
    assert max(u.abs().max().item() for u in full.values()) > 1e-4
    for name, update in full.items():
        torch.testing.assert_close(accumulated[name], update, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(checkpointed[name], update, atol=1e-6, rtol=1e-5, msg=name)


def test_training_with_mixup_drop_path_and_evaluation(tmp_path):
    model = tiny_classifier(drop_path_rate=0.1)
    trainer = InternVideo2ClassificationTrainer(
        model=model, args=make_args(tmp_path, max_steps=3, eval_strategy="no"), train_dataset=_shapes(12),
        eval_dataset=_shapes(8), compute_metrics=classification_metrics,
    )  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_top1_accuracy", "eval_top5_accuracy"} <= set(metrics)
    assert metrics["eval_top5_accuracy"] == 1.0  # 4 classes: top-5 is trivially right


def _multi_view_items(processor, n):
    items = []
    for seed in range(n):
        spec = sample_clip_spec(seed, num_frames=16, height=32, width=48)
        views = processor.multi_view(render_clip(spec), num_clips=2, num_crops=3)
        items.append({"pixel_values": views, "labels": DIRECTIONS.index(spec.direction)})
    return items


def test_multi_view_evaluation_averages_softmax_scores(tmp_path):
    """The trainer scores a multi-view item by the mean of its views' probabilities, whatever the weights: checked
    against each view's own forward pass (an identity that holds for any model)."""
    processor = InternVideo2VideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, num_frames=8)
    items = _multi_view_items(processor, 4)
    assert items[0]["pixel_values"].shape == (6, 8, 3, 32, 32)
    model = tiny_classifier().eval()
    trainer = InternVideo2ClassificationTrainer(
        model=model, args=make_args(tmp_path), eval_dataset=items, compute_metrics=classification_metrics
    )
    prediction = trainer.predict(items)
    views = torch.stack([item["pixel_values"] for item in items])
    with torch.no_grad():
        per_view = model(pixel_values=views.flatten(0, 1)).logits.softmax(-1).reshape(4, 6, -1)
    expected = per_view.mean(1)
    torch.testing.assert_close(torch.as_tensor(prediction.predictions).softmax(-1), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(multi_view_probabilities(model, views, chunk_size=5), expected, atol=1e-6, rtol=1e-5)
    labels = torch.tensor([item["labels"] for item in items])
    top1 = (expected.argmax(1) == labels).float().mean().item()
    assert abs(prediction.metrics["test_top1_accuracy"] - top1) < 1e-6


class _LogitsInThePixels(torch.nn.Module):
    """A classifier whose logits are written into its input: `pixel_values[:, 0, 0, 0, :num_labels]` of each view."""

    def __init__(self, num_labels):
        super().__init__()
        self.num_labels = num_labels
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the Trainer places and inspects parameters

    def forward(self, pixel_values, labels=None, **kwargs):
        from transformers.modeling_outputs import ImageClassifierOutput

        return ImageClassifierOutput(logits=pixel_values[:, 0, 0, 0, : self.num_labels].clone())


def test_multi_view_scores_are_mean_probabilities_not_mean_logits(tmp_path):
    """Known per-view logits for which the two averages disagree on the class: one very confident view of class 0
    against two moderately confident views of class 1. Mean logits pick class 0 (20/3 > 4/3); mean probabilities
    pick class 1 (0.404 for class 0 < 0.525 for class 1), so the trainer's top-1 is right only if it averages
    probabilities."""
    view_logits = torch.tensor(
        [[[20.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0]],  # label 1
         [[0.0, 0.0, 20.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]]  # label 0
    )  # fmt: skip
    labels = [1, 0]
    views = torch.zeros(2, 3, 2, 3, 4, 4)  # (videos, views, frames, channels, height, width)
    views[:, :, 0, 0, 0, :3] = view_logits
    items = [{"pixel_values": views[i], "labels": labels[i]} for i in range(2)]
    # the construction: the two averages really pick different classes, the probability average the labelled one
    mean_probabilities = view_logits.double().softmax(-1).mean(1)
    assert mean_probabilities.argmax(-1).tolist() == labels
    assert view_logits.mean(1).argmax(-1).tolist() == [0, 2]
    model = _LogitsInThePixels(num_labels=3).eval()
    torch.testing.assert_close(multi_view_probabilities(model, views).double(), mean_probabilities, atol=1e-6, rtol=0)
    trainer = InternVideo2ClassificationTrainer(
        model=model, args=make_args(tmp_path, per_device_eval_batch_size=2), compute_metrics=classification_metrics
    )
    prediction = trainer.predict(items)
    scores = torch.as_tensor(prediction.predictions).double().softmax(-1)
    torch.testing.assert_close(scores, mean_probabilities, atol=1e-6, rtol=0)
    assert prediction.metrics["test_top1_accuracy"] == 1.0


def test_multi_view_metrics_for_one_view_per_row():
    # video "a": 2 views (+1 duplicate), video "b": 1 view
    logits = np.log(np.array([[0.6, 0.4], [0.2, 0.8], [0.2, 0.8], [0.9, 0.1]], dtype=np.float32))
    metrics = MultiViewMetrics(["a", "a", "a", "b"], ["c0", "c1", "c1", "c0"], ks=(1,))(
        EvalPrediction(predictions=logits, label_ids=np.array([1, 1, 1, 0]))
    )
    # a: mean of [0.6, 0.4] and [0.2, 0.8] (duplicate ignored) = [0.4, 0.6] -> class 1 (correct); b correct
    assert metrics == {"top1_accuracy": 1.0, "num_videos": 2}
    # video "a" (label 0): views [0.7, 0.3] and [0.35, 0.65], the second one repeated
    repeated = np.log(np.array([[0.7, 0.3], [0.35, 0.65], [0.35, 0.65], [0.9, 0.1]], dtype=np.float32))
    labels = np.array([0, 0, 0, 0])
    deduplicated = MultiViewMetrics(["a", "a", "a", "b"], ["c0", "c1", "c1", "c0"], ks=(1,))(
        EvalPrediction(predictions=repeated, label_ids=labels)
    )
    counted_twice = MultiViewMetrics(["a", "a", "a", "b"], ks=(1,))(EvalPrediction(predictions=repeated, label_ids=labels))
    assert deduplicated["top1_accuracy"] == 1.0  # (0.7 + 0.35) / 2 = 0.525 for class 0
    assert counted_twice["top1_accuracy"] == 0.5  # (0.7 + 0.35 + 0.35) / 3 < 0.5 flips video "a"
    with pytest.raises(ValueError, match="different labels"):
        MultiViewMetrics(["a", "a"])(EvalPrediction(predictions=logits[:2], label_ids=np.array([0, 1])))


def test_top_k_accuracy():
    scores = np.array([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]])
    assert top_k_accuracy(scores, [2, 0], ks=(1, 2)) == {"top1_accuracy": 0.5, "top2_accuracy": 1.0}
    with pytest.raises(ValueError, match="Expected scores"):
        top_k_accuracy(scores, [1, 2, 3])


def test_argument_validation(tmp_path):
    with pytest.raises(ValueError, match="layer_decay"):
        make_args(tmp_path, layer_decay=0.0)
    with pytest.raises(TypeError, match="InternVideo2ClassificationArguments"):
        from transformers import TrainingArguments

        InternVideo2ClassificationTrainer(model=tiny_classifier(), args=TrainingArguments(str(tmp_path), use_cpu=True))

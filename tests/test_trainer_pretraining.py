"""Stage-1 / distillation trainer on CPU with tiny teachers and a tiny student."""

import copy

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, VideoMAEConfig, VideoMAEModel

from transformers_internvideo2 import InternVideo2ForPreTraining, InternVideo2VisionConfig, InternVideo2VisionModel
from transformers_internvideo2.training.masking import tube_mask
from transformers_internvideo2.shapes_world.generator import ShapesWorldDataset
from transformers_internvideo2.training import (
    InternVideo2PretrainingArguments,
    InternVideo2PretrainingTrainer,
    clip_teacher_targets,
    mae_teacher_targets,
)


IMAGE, PATCH = 32, 8  # 4x4 patches per frame


def student_config(**overrides):
    kwargs = dict(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, image_size=IMAGE,
        patch_size=PATCH, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4,
        clip_teacher_hidden_size=24, clip_teacher_final_size=12, clip_num_return_layers=2,
        mae_teacher_hidden_size=20, mae_num_return_layers=1,
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideo2VisionConfig(**kwargs)


def clip_teacher():
    torch.manual_seed(1)
    config = CLIPVisionConfig(
        hidden_size=24, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, image_size=IMAGE,
        patch_size=PATCH, projection_dim=12,
    )  # fmt: skip
    return CLIPVisionModelWithProjection(config)


def mae_teacher():
    torch.manual_seed(2)
    config = VideoMAEConfig(
        hidden_size=20, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, image_size=IMAGE,
        patch_size=PATCH, num_frames=8, tubelet_size=2, use_mean_pooling=False,
    )  # fmt: skip
    return VideoMAEModel(config)


class ClipsWithMasks(torch.utils.data.Dataset):
    """Shapes clips (8 frames for the MAE teacher) with a per-sample fixed tube mask over the student's 4x16 grid."""

    def __init__(self, n, with_masks=True):
        self.clips = ShapesWorldDataset("train", num_clips=n, num_frames=8, image_size=IMAGE)
        self.with_masks = with_masks

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, i):
        item = {"pixel_values": self.clips[i]["pixel_values"]}
        if self.with_masks:
            item["bool_masked_pos"] = tube_mask(1, 4, 16, 0.75, generator=torch.Generator().manual_seed(i))[0]
        return item


def make_args(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=4, learning_rate=1e-3, max_steps=3, logging_steps=1,
        report_to=[], save_strategy="no", use_cpu=True, seed=0, dataloader_drop_last=True, disable_tqdm=True,
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideo2PretrainingArguments(**kwargs)


def test_teacher_targets_shapes_normalisation_and_attention():
    teacher = clip_teacher()
    teacher.set_attn_implementation("eager")
    video = torch.randn(2, 4, 3, IMAGE, IMAGE)
    targets = clip_teacher_targets(teacher.eval(), video, [1, 2], return_attention=True, attention_per_frame=True)
    assert targets.hidden_states.shape == (2, 2, 1 + 4 * 16, 24)
    assert targets.pooled.shape == (2, 12) and targets.attention.shape == (2, 4, 16)
    torch.testing.assert_close(targets.hidden_states.norm(dim=-1), torch.ones(2, 2, 65))
    # cls target = the per-frame cls tokens averaged over time; patch tokens t-major
    out = teacher(pixel_values=video.flatten(0, 1), output_hidden_states=True)
    layer2 = out.hidden_states[3].reshape(2, 4, 17, 24)
    torch.testing.assert_close(targets.hidden_states[1, :, 0], torch.nn.functional.normalize(layer2[:, :, 0].mean(1), dim=-1))
    torch.testing.assert_close(targets.hidden_states[1, 1, 1 + 16 * 2 + 5], torch.nn.functional.normalize(layer2[1, 2, 1 + 5], dim=-1))
    # MAE: last layer after the final LayerNorm
    mae = mae_teacher().eval()
    clip8 = torch.randn(2, 8, 3, IMAGE, IMAGE)
    mae_targets = mae_teacher_targets(mae, clip8, [0, 1])
    assert mae_targets.shape == (2, 2, 64, 20)
    torch.testing.assert_close(mae_targets[1], torch.nn.functional.normalize(mae(clip8).last_hidden_state, dim=-1))


def test_trains_logs_components_and_keeps_teachers_frozen(tmp_path):
    torch.manual_seed(0)
    student = InternVideo2ForPreTraining(student_config())
    clip, mae = clip_teacher(), mae_teacher()
    clip_before, mae_before = copy.deepcopy(clip.state_dict()), copy.deepcopy(mae.state_dict())
    trainer = InternVideo2PretrainingTrainer(
        model=student, args=make_args(tmp_path, max_steps=12), clip_teacher=clip, mae_teacher=mae,
        train_dataset=ClipsWithMasks(48, with_masks=False),
    )  # fmt: skip
    assert trainer.frame_stride == 2 and trainer.attention_per_frame
    assert clip.config._attn_implementation == "eager"  # switched to read attention maps
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert {"loss_clip", "loss_clip_final", "loss_mae"} <= set(logs[0])
    for entry in logs:  # the total is the weighted (1, 1, 1) sum of the components
        assert abs(entry["loss"] - (entry["loss_clip"] + entry["loss_clip_final"] + entry["loss_mae"])) < 1e-3
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert not clip.training and not mae.training
    for before, module in ((clip_before, clip), (mae_before, mae)):
        for name, value in module.state_dict().items():
            assert torch.equal(value, before[name]), name


def test_attention_guided_mask_keeps_the_original_visible_count(tmp_path):
    student = InternVideo2ForPreTraining(student_config())
    trainer = InternVideo2PretrainingTrainer(
        model=student, args=make_args(tmp_path), clip_teacher=clip_teacher(), mae_teacher=mae_teacher()
    )
    batch = {"pixel_values": torch.stack([ClipsWithMasks(2, False)[i]["pixel_values"] for i in range(2)])}
    loss, outputs = trainer.compute_loss(student, batch, return_outputs=True)
    visible = 16 - int(16 * 0.8)  # per frame, 4 frames, plus cls
    assert outputs.clip_aligned.shape == (2, 2, 1 + 4 * visible, 24)
    assert outputs.mae_aligned.shape == (1, 2, 4 * visible, 20)
    assert torch.isfinite(loss)


def _one_step_params(tmp_path, batch_size, accumulation):
    torch.manual_seed(0)
    student = InternVideo2ForPreTraining(student_config())
    args = make_args(
        tmp_path, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1,
        optim="sgd", learning_rate=1.0, max_grad_norm=0.0, lr_scheduler_type="constant", mask_type="random",
    )  # fmt: skip
    trainer = InternVideo2PretrainingTrainer(
        model=student, args=args, clip_teacher=clip_teacher(), mae_teacher=mae_teacher(),
        train_dataset=ClipsWithMasks(4),
    )  # fmt: skip
    initial = {n: p.detach().clone() for n, p in student.named_parameters()}
    trainer.train()
    return {n: p.detach() - initial[n] for n, p in student.named_parameters()}


def test_gradient_accumulation_is_exact(tmp_path):
    full = _one_step_params(tmp_path / "a", batch_size=4, accumulation=1)
    accumulated = _one_step_params(tmp_path / "b", batch_size=2, accumulation=2)
    assert max(update.abs().max().item() for update in full.values()) > 1e-4  # the step did something
    for name, update in full.items():
        torch.testing.assert_close(accumulated[name], update, atol=1e-6, rtol=1e-5, msg=name)


def test_distillation_with_one_internvideo2_teacher(tmp_path):
    torch.manual_seed(3)
    teacher = InternVideo2VisionModel(
        InternVideo2VisionConfig(
            hidden_size=48, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96, image_size=IMAGE,
            patch_size=PATCH, num_frames=4, pooler_output_size=12, pooler_num_attention_heads=4,
        )  # fmt: skip
    )
    student = InternVideo2ForPreTraining(
        student_config(
            clip_teacher_hidden_size=48, clip_teacher_final_size=12, mae_teacher_hidden_size=0,
            clip_decoder_type="mlp", clip_num_return_layers=2,
        )  # fmt: skip
    )
    dataset = ShapesWorldDataset("train", num_clips=8, num_frames=4, image_size=IMAGE)
    trainer = InternVideo2PretrainingTrainer(
        model=student, args=make_args(tmp_path, max_steps=2), clip_teacher=teacher, clip_teacher_layers=[1, 3],
        train_dataset=[{"pixel_values": dataset[i]["pixel_values"]} for i in range(8)],
    )  # fmt: skip
    assert trainer.frame_stride == 1 and not trainer.attention_per_frame  # whole-clip masking as the original
    batch = {"pixel_values": torch.stack([dataset[i]["pixel_values"] for i in range(2)])}
    _, outputs = trainer.compute_loss(student, batch, return_outputs=True)
    assert outputs.clip_aligned.shape[2] == 1 + 64 - int(64 * 0.8)  # 13 visible over the clip
    assert outputs.mae_loss is None
    trainer.train()
    assert "loss_clip_final" in trainer.state.log_history[0]


def test_configuration_errors(tmp_path):
    with pytest.raises(ValueError, match="no mae_teacher"):
        InternVideo2PretrainingTrainer(
            model=InternVideo2ForPreTraining(student_config()), args=make_args(tmp_path), clip_teacher=clip_teacher()
        )
    with pytest.raises(ValueError, match="clip_teacher_hidden_size"):
        InternVideo2PretrainingTrainer(
            model=InternVideo2ForPreTraining(student_config(clip_teacher_hidden_size=30)),
            args=make_args(tmp_path), clip_teacher=clip_teacher(), mae_teacher=mae_teacher(),
        )  # fmt: skip
    with pytest.raises(ValueError, match="student return layers"):
        InternVideo2PretrainingTrainer(
            model=InternVideo2ForPreTraining(student_config()), args=make_args(tmp_path), clip_teacher=clip_teacher(),
            mae_teacher=mae_teacher(), clip_teacher_layers=[2],
        )  # fmt: skip
    with pytest.raises(ValueError, match="mask_type"):
        make_args(tmp_path, mask_type="block")

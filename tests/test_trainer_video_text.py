"""Stage-2 (video-text) trainer: masking, per-component logging, exact accumulation, and 2 real processes (torchrun,
gloo on CPU) against 1 process on the concatenated batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distributed_support import free_port
from transformers_internvideo2.models.internvideo2_video_text.configuration_internvideo2_video_text import InternVideo2Config
from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
from transformers_internvideo2.training.masking import mask_tokens_for_mlm
from transformers_internvideo2.training import InternVideo2VideoTextArguments, InternVideo2VideoTextTrainer


FRAMES, IMAGE, PATCH, TEXT_LENGTH = 4, 16, 8, 7
PATCHES = FRAMES * (IMAGE // PATCH) ** 2  # 16 patch tokens per clip


AUDIO_FRAMES, MEL_BINS = 32, 16
ALL_AUDIO_WEIGHTS = dict(atc_loss_weight=0.5, avc_loss_weight=0.25, avtc_loss_weight=1.0, atm_loss_weight=0.75,
                         avtm_loss_weight=1.5, amlm_loss_weight=0.5, avmlm_loss_weight=2.0)  # fmt: skip


def tiny_model(seed: int = 0, audio: bool = False, audio_matching_head: bool = True) -> InternVideo2ForRetrieval:
    vision = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32, image_size=IMAGE,
        patch_size=PATCH, num_frames=FRAMES, pooler_output_size=16, pooler_num_attention_heads=4,
    )  # fmt: skip
    text = dict(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
        max_position_embeddings=16, fusion_layer=1, encoder_width=32, cls_token_id=2, mask_token_id=3,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    extra = {}
    if audio:  # a tiny BEATs; no layer drop, so that runs compared with each other see the same network
        extra = dict(
            audio_config=dict(
                num_mel_bins=MEL_BINS, patch_size=8, patch_embed_dim=8, hidden_size=16, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=16, num_conv_pos_embeddings=4,
                num_conv_pos_embedding_groups=2, num_buckets=8, max_distance=16, layerdrop=0.0,
            ),
            use_vision_token_projection=True, vision_token_projection_size=32,
            use_audio_matching_head=audio_matching_head,
        )  # fmt: skip
    config = InternVideo2Config(vision_config=vision, text_config=text, projection_dim=8, **extra)
    torch.manual_seed(seed)
    return InternVideo2ForRetrieval(config)


def make_rows(count: int, seed: int = 0, fixed_masks: bool = True, audio: bool = False) -> list[dict]:
    """Paired clips and captions. With `fixed_masks`, every row carries its video-token mask and MLM corruption, so
    that the runs being compared see the same randomness; row `i` masks a different number of text tokens."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(count):
        length = 3 + i % 4
        input_ids = torch.zeros(TEXT_LENGTH, dtype=torch.long)
        input_ids[0] = 2
        input_ids[1:length] = torch.randint(4, 40, (length - 1,), generator=generator)
        row = {
            "pixel_values": torch.randn(FRAMES, 3, IMAGE, IMAGE, generator=generator),
            "input_ids": input_ids,
            "attention_mask": (input_ids != 0).long(),
        }
        if fixed_masks:
            visible = torch.randperm(PATCHES, generator=generator)[: PATCHES // 4]
            mask = torch.ones(PATCHES, dtype=torch.bool)
            mask[visible] = False
            labels = torch.full_like(input_ids, -100)
            masked = input_ids.clone()
            chosen = 1 + torch.randperm(length - 1, generator=generator)[: 1 + i % (length - 1)]
            labels[chosen] = input_ids[chosen]
            masked[chosen] = 3
            row.update(bool_masked_pos=mask, mlm_input_ids=masked, mlm_labels=labels)
        if audio:
            row["input_features"] = torch.randn(AUDIO_FRAMES, MEL_BINS, generator=generator)
        rows.append(row)
    return rows


def make_args(output_dir, **overrides) -> InternVideo2VideoTextArguments:
    kwargs = dict(
        output_dir=str(output_dir), per_device_train_batch_size=4, max_steps=1, optim="sgd", learning_rate=1.0,
        max_grad_norm=0.0, lr_scheduler_type="constant", report_to=[], save_strategy="no", use_cpu=True,
        logging_steps=1, disable_tqdm=True, seed=0, dataloader_drop_last=True,
    )  # fmt: skip
    kwargs.update(overrides)
    return InternVideo2VideoTextArguments(**kwargs)


def one_step_update(output_dir, rows, model=None, **overrides) -> tuple[dict, InternVideo2VideoTextTrainer]:
    model = model if model is not None else tiny_model()
    trainer = InternVideo2VideoTextTrainer(model=model, args=make_args(output_dir, **overrides), train_dataset=rows)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}, trainer


# ----------------------------------------------------------------------------------------------------------------
def test_arguments_and_model_are_checked(tmp_path):
    with pytest.raises(ValueError, match="video_mask_type"):
        make_args(tmp_path, video_mask_type="attention")
    with pytest.raises(ValueError, match="video_mask_ratio"):
        make_args(tmp_path, video_mask_ratio=1.0)
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="InternVideo2VideoTextArguments"):
        InternVideo2VideoTextTrainer(model=tiny_model(), args=TrainingArguments(str(tmp_path), use_cpu=True))
    with pytest.raises(TypeError, match="InternVideo2ForRetrieval"):
        InternVideo2VideoTextTrainer(model=torch.nn.Linear(2, 2), args=make_args(tmp_path))


def test_training_masks_80_percent_of_video_tokens_and_50_percent_of_images(tmp_path):
    trainer = InternVideo2VideoTextTrainer(model=tiny_model(), args=make_args(tmp_path), train_dataset=make_rows(4))
    video_mask = trainer.video_token_mask(torch.zeros(3, FRAMES, 3, IMAGE, IMAGE))
    assert video_mask.shape == (3, PATCHES) and (video_mask.sum(1) == int(PATCHES * 0.8)).all()
    image_mask = trainer.video_token_mask(torch.zeros(3, 1, 3, IMAGE, IMAGE))
    assert image_mask.shape == (3, 4) and (image_mask.sum(1) == 2).all()
    assert not torch.equal(video_mask[0], video_mask[1])  # random per sample
    tube = InternVideo2VideoTextTrainer(
        model=tiny_model(), args=make_args(tmp_path, video_mask_type="tube"), train_dataset=make_rows(4)
    ).video_token_mask(torch.zeros(2, FRAMES, 3, IMAGE, IMAGE))
    assert torch.equal(tube.view(2, FRAMES, -1)[:, 0], tube.view(2, FRAMES, -1)[:, -1])

    # the mask reaches the encoder during training (fewer tokens), and evaluation sees every token
    seen = []
    model = trainer.model
    hook = model.internvideo2.vision_model.register_forward_hook(lambda m, i, out: seen.append((m.training, out.last_hidden_state.shape[1])))
    batch = trainer.data_collator(make_rows(4, fixed_masks=False))
    model.train()
    trainer.compute_loss(model, batch)
    model.eval()
    with torch.no_grad():
        trainer.compute_loss(model, batch)
    hook.remove()
    assert seen == [(True, 1 + PATCHES - int(PATCHES * 0.8)), (False, 1 + PATCHES)]


def test_losses_are_logged_per_component_and_the_total_is_their_weighted_sum(tmp_path):
    rows = make_rows(4)
    _, trainer = one_step_update(tmp_path, rows, vtm_loss_weight=0.5, mlm_loss_weight=2.0)
    logged = trainer.state.log_history[0]
    for name in ("loss_vtc", "loss_vtm", "loss_mlm"):
        assert name in logged and logged[name] > 0
    torch.testing.assert_close(
        logged["loss"], logged["loss_vtc"] + 0.5 * logged["loss_vtm"] + 2.0 * logged["loss_mlm"], atol=1e-4, rtol=1e-4
    )


def test_mlm_corruption_is_drawn_by_the_trainer_and_counted_before_the_forward(tmp_path):
    trainer = InternVideo2VideoTextTrainer(model=tiny_model(), args=make_args(tmp_path), train_dataset=make_rows(4))
    batches = [trainer.data_collator(make_rows(4, seed=s, fixed_masks=False)) for s in (1, 2)]
    counts = trainer._get_num_items_in_batch(batches, torch.device("cpu"))
    tokens = sum(int((b["mlm_labels"] != -100).sum()) for b in batches)
    assert counts.tolist() == [8, tokens] and tokens > 0
    for batch in batches:  # never [PAD] or [CLS]
        labelled = batch["mlm_labels"] != -100
        assert not (batch["input_ids"][labelled] == 0).any() and not (batch["input_ids"][labelled] == 2).any()


def test_gradient_accumulation_is_exact_for_the_token_weighted_mlm_loss(tmp_path):
    """MLM only (VTC and VTM contrast inside a micro-batch, so they cannot be batch-size independent): 2 micro-batches
    of 2 give the update of 1 batch of 4, although the halves hold different numbers of masked tokens."""
    rows = make_rows(4)
    weights = dict(vtc_loss_weight=0.0, vtm_loss_weight=0.0)
    full, _ = one_step_update(tmp_path / "a", rows, **weights)
    accumulated, _ = one_step_update(
        tmp_path / "b", rows, per_device_train_batch_size=2, gradient_accumulation_steps=2, **weights
    )
    assert max(u.abs().max().item() for u in full.values()) > 1e-3
    for name, update in full.items():
        torch.testing.assert_close(accumulated[name], update, atol=1e-6, rtol=1e-5, msg=name)

    # the token weighting matters here: averaging the two micro-batch means would give another update
    model = tiny_model()
    trainer = InternVideo2VideoTextTrainer(model=model, args=make_args(tmp_path / "c", **weights), train_dataset=rows)
    order = list(trainer.get_train_dataloader().sampler)
    halves = [[rows[i] for i in order[:2]], [rows[i] for i in order[2:]]]
    tokens = [sum(int((r["mlm_labels"] != -100).sum()) for r in half) for half in halves]
    assert tokens[0] != tokens[1]


def test_gradient_accumulation_weights_pair_losses_by_pairs(tmp_path):
    """Full loss, 2 micro-batches: the update equals the gradient of mean-over-pairs of each micro-batch's VTC + VTM
    (weighted by its share of the pairs) plus the MLM sum over all masked tokens / their count. With 2 pairs per
    micro-batch each VTM negative is the other pair, so nothing random is left."""
    rows = make_rows(4)
    torch.manual_seed(123)
    trained, micro_batches = tiny_model(), []
    # record the micro-batches the trainer really fed the model: a sampler rebuilt after training draws its order
    # from the global RNG again, so it matches the training order only for some seeds
    def record(module, args, kwargs):
        micro_batches.append({key: value.clone() for key, value in kwargs.items() if torch.is_tensor(value)})

    trained.register_forward_pre_hook(record, with_kwargs=True)
    accumulated, trainer = one_step_update(
        tmp_path / "a", rows, model=trained, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    batch_keys = trainer.data_collator(rows[:2]).keys()
    halves = [{key: batch[key] for key in batch_keys} for batch in micro_batches]
    assert len(halves) == 2 and sorted(int(h["input_ids"].shape[0]) for h in halves) == [2, 2]
    # reference: the same micro-batches by hand
    model = tiny_model()
    model.train()
    total_tokens = sum(int((h["mlm_labels"] != -100).sum()) for h in halves)
    for half in halves:
        out = model(**half)
        tokens = int((half["mlm_labels"] != -100).sum())
        loss = (out.loss_vtc + out.loss_vtm) * 2 / 4 + out.loss_mlm * tokens / total_tokens
        loss.backward()
    assert accumulated["internvideo2.temperature"].abs() > 0
    for name, param in model.named_parameters():
        torch.testing.assert_close(accumulated[name], -param.grad, atol=1e-5, rtol=1e-4, msg=name)


# ----------------------------------------------------------------------------------------------------------------
# 2 processes (torchrun, gloo) vs 1 process on the concatenated batch
# ----------------------------------------------------------------------------------------------------------------
# the audio losses that do not draw negatives from the local batch (matching: as VTM, local hard negatives)
AUDIO_EXACT_WEIGHTS = dict(vtm_loss_weight=0.0, atm_loss_weight=0.0, avtm_loss_weight=0.0, atc_loss_weight=0.5,
                           avc_loss_weight=0.25, avtc_loss_weight=1.0, amlm_loss_weight=0.5, avmlm_loss_weight=2.0)  # fmt: skip

WORKER = r'''
import json, os, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from distributed_support import exit_worker, shut_down_process_group
from test_trainer_video_text import AUDIO_EXACT_WEIGHTS, make_rows, one_step_update, tiny_model

out_dir, rank = sys.argv[1], int(os.environ["RANK"])
rows = make_rows(8)
results = {}
for mode, weights, original in (("exact", dict(vtm_loss_weight=0.0), False),
                                ("original", dict(vtm_loss_weight=0.0, mlm_loss_weight=0.0), True),
                                ("audio", AUDIO_EXACT_WEIGHTS, False)):
    audio = mode == "audio"
    update, trainer = one_step_update(os.path.join(out_dir, mode), make_rows(8, audio=audio), model=tiny_model(audio=audio),
                                      ddp_find_unused_parameters=True, original_gradient_scaling=original, **weights)
    results[mode] = {"update": update, "loss": trainer.state.log_history[0]["loss"],
                     "world_size": trainer.args.world_size}
torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
shut_down_process_group()  # the Trainer started the group; leave it only when every rank is done
exit_worker()
'''


@pytest.fixture(scope="module")
def torchrun_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp")
    script = out_dir / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(out_dir), str(Path(__file__).parent)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(2)]


def test_two_processes_equal_one_process_on_the_concatenated_batch(torchrun_results, tmp_path):
    """VTC (gathered across processes) + MLM (token counts summed across processes), fixed video masks and MLM
    corruption in the rows; VTM is off because its hard negatives are drawn from the local batch (as the original)."""
    reference, trainer = one_step_update(tmp_path, make_rows(8), per_device_train_batch_size=8, vtm_loss_weight=0.0)
    for rank in torchrun_results:
        assert rank["exact"]["world_size"] == 2
        # the logged loss is the mean over processes of their scaled shares = the full-batch loss
        assert abs(rank["exact"]["loss"] - trainer.state.log_history[0]["loss"]) < 1e-4
        for name, update in reference.items():
            torch.testing.assert_close(rank["exact"]["update"][name], update, atol=2e-6, rtol=1e-4, msg=name)
    assert max(u.abs().max().item() for u in reference.values()) > 1e-3


def test_original_gradient_scaling_divides_encoder_gradients_by_the_world_size(torchrun_results, tmp_path):
    reference, _ = one_step_update(
        tmp_path, make_rows(8), per_device_train_batch_size=8, vtm_loss_weight=0.0, mlm_loss_weight=0.0
    )
    for rank in torchrun_results:
        update = rank["original"]["update"]
        torch.testing.assert_close(
            update["internvideo2.temperature"], reference["internvideo2.temperature"], atol=1e-6, rtol=1e-4
        )
        for name in ("vision_projection.weight", "text_projection.weight",
                     "vision_model.embeddings.patch_embeddings.projection.weight"):
            name = f"internvideo2.{name}"
            torch.testing.assert_close(update[name], reference[name] / 2, atol=1e-6, rtol=1e-4, msg=name)
        name = "internvideo2.vision_projection.weight"
        assert (update[name] - reference[name]).abs().max() > 1e-4


def test_two_processes_equal_one_process_with_the_audio_losses(torchrun_results, tmp_path):
    """ATC, AVC, AVTC (gathered) and AMLM / AVMLM (token counts summed) with VTC and MLM: 2 processes = 1 process."""
    reference, trainer = one_step_update(
        tmp_path, make_rows(8, audio=True), model=tiny_model(audio=True), per_device_train_batch_size=8,
        **AUDIO_EXACT_WEIGHTS,
    )  # fmt: skip
    logged = trainer.state.log_history[0]
    assert {"loss_atc", "loss_avc", "loss_avtc", "loss_amlm", "loss_avmlm"} <= set(logged)
    for rank in torchrun_results:
        assert abs(rank["audio"]["loss"] - logged["loss"]) < 1e-4
        for name, update in reference.items():
            # the audio losses give updates in the hundreds (lr 1): float32 summation order counts, relative to scale
            scale = update.abs().max().item()
            torch.testing.assert_close(rank["audio"]["update"][name], update, atol=2e-6 + 1e-5 * scale, rtol=1e-4)
    assert reference["internvideo2.audio_model.embeddings.patch_embedding.weight"].abs().max() > 0


# ----------------------------------------------------------------------------------------------------------------
# Audio losses (6B audio-video-text stage 2)
# ----------------------------------------------------------------------------------------------------------------
def test_audio_losses_are_weighted_logged_and_reach_the_audio_encoder(tmp_path):
    rows = make_rows(4, audio=True)
    update, trainer = one_step_update(tmp_path, rows, model=tiny_model(audio=True), **ALL_AUDIO_WEIGHTS)
    logged = trainer.state.log_history[0]
    weights = {"vtc": 1.0, "vtm": 1.0, "mlm": 1.0, **{k.removesuffix("_loss_weight"): v for k, v in ALL_AUDIO_WEIGHTS.items()}}
    for name in weights:
        assert logged[f"loss_{name}"] > 0, name
    expected = sum(weight * logged[f"loss_{name}"] for name, weight in weights.items())
    torch.testing.assert_close(logged["loss"], expected, atol=1e-4, rtol=1e-4)
    for name in ("internvideo2.audio_model.embeddings.patch_embedding.weight", "internvideo2.audio_projection.weight",
                 "internvideo2.audio_token_projection.dense.weight", "internvideo2.audio_video_fusion.weight",
                 "audio_video_matching_head.weight", "audio_matching_head.weight"):  # fmt: skip
        assert update[name].abs().max() > 0, name


def test_audio_loss_defaults_are_the_released_recipe(tmp_path):
    args = make_args(tmp_path)
    assert (args.atc_loss_weight, args.avc_loss_weight, args.avtc_loss_weight, args.atm_loss_weight,
            args.avtm_loss_weight, args.amlm_loss_weight, args.avmlm_loss_weight) == (0, 0, 1, 0, 1, 0, 1)  # fmt: skip
    _, trainer = one_step_update(tmp_path, make_rows(4, audio=True), model=tiny_model(audio=True, audio_matching_head=False))
    logged = trainer.state.log_history[0]
    assert {"loss_avtc", "loss_avtm", "loss_avmlm"} <= set(logged)
    assert not {"loss_atc", "loss_avc", "loss_atm", "loss_amlm"} & set(logged)
    # a batch with audio for a model without an audio encoder is refused
    trainer = InternVideo2VideoTextTrainer(model=tiny_model(), args=make_args(tmp_path), train_dataset=make_rows(4))
    with pytest.raises(ValueError, match="no audio encoder"):
        trainer.compute_loss(trainer.model, trainer.data_collator(make_rows(4, audio=True)))


def test_audio_forward_checks_its_inputs():
    model = tiny_model(audio=True, audio_matching_head=False)
    rows = make_rows(2, audio=True)
    inputs = {key: torch.stack([row[key] for row in rows]) for key in ("pixel_values", "input_ids", "attention_mask",
                                                                        "input_features", "mlm_input_ids", "mlm_labels")}  # fmt: skip
    out = model(**inputs)  # the released recipe's audio losses by default
    assert out.loss_avtc is not None and out.loss_avtm is not None and out.loss_avmlm is not None
    assert out.loss_atc is None and out.logits_per_audio.shape == (2, 2)
    with pytest.raises(ValueError, match="Unknown audio losses"):
        model(**inputs, audio_losses=("bogus",))
    with pytest.raises(ValueError, match="no audio-text matching head"):
        model(**inputs, audio_losses=("atm",))
    with pytest.raises(ValueError, match="clips for"):
        model(**{**inputs, "input_features": inputs["input_features"][:1]})

"""CLIP-stage trainer: the original trainable set (pooler, alignment, temperature; text frozen; optional LoRA on the
text tower, merged afterwards), the model's contrastive loss going down, frozen weights untouched, exact gradient
accumulation."""

from __future__ import annotations

import pytest
import torch

from transformers_internvideo2 import InternVideo2ClipModel
from transformers_internvideo2.training import (
    InternVideo2ClipArguments,
    InternVideo2ClipTrainer,
    apply_clip_trainable_set,
    merge_text_lora,
)
from test_modeling_internvideo2_clip import text_ids, tiny_config


def rows(count: int, tower: str, seed: int = 0) -> list[dict]:
    """Clips whose content follows their caption (the first text id decides a constant added to the frames), so
    that the pooler can learn the pairing."""
    generator = torch.Generator().manual_seed(seed)
    ids = text_ids(count, 8, tower)
    out = []
    for i in range(count):
        signal = float(ids[i, 1] % 5) - 2.0
        pixel_values = torch.randn(4, 3, 28, 28, generator=generator) * 0.3 + signal
        out.append({"pixel_values": pixel_values, "input_ids": ids[i], "attention_mask": (ids[i] > 0).long()})
    return out


def collate(batch: list[dict]) -> dict:
    return {key: torch.stack([row[key] for row in batch]) for key in batch[0]}


def _args(tmp_path, **overrides) -> InternVideo2ClipArguments:
    settings = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=30, learning_rate=5e-3,
                    logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
                    dataloader_drop_last=True)  # fmt: skip
    settings.update(overrides)
    return InternVideo2ClipArguments(**settings)


@pytest.mark.parametrize("tower", ["mobileclip", "llama"])
def test_trainable_set_is_the_original(tmp_path, tower):
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config(tower))
    names = apply_clip_trainable_set(model, _args(tmp_path))
    assert "temperature" in names and all(
        name == "temperature" or name.startswith(("vision_model.pooler.", "vision_alignment.")) for name in names
    )
    assert any(name.startswith("vision_alignment.") for name in names) == (tower == "mobileclip")
    names = apply_clip_trainable_set(model, _args(tmp_path, train_text_projection=True))
    assert "text_projection.weight" in names and not any(name.startswith("text_model.") for name in names)
    with pytest.raises(ValueError, match="cannot be combined"):
        _args(tmp_path, text_lora=True, train_text_tower=True)


@pytest.mark.slow
def test_training_lowers_the_loss_and_keeps_frozen_weights(tmp_path):
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip"))
    frozen = {name: p.detach().clone() for name, p in model.named_parameters()
              if name.startswith(("text_model.", "vision_model.encoder.", "text_projection"))}  # fmt: skip
    data = rows(48, "mobileclip")
    evaluate = collate(data)

    def loss():
        model.eval()
        with torch.no_grad():
            return float(model(**evaluate, return_loss=True).loss)

    before = loss()
    trainer = InternVideo2ClipTrainer(model=model, args=_args(tmp_path, max_steps=12, learning_rate=1e-2),
                                      train_dataset=data, data_collator=collate)  # fmt: skip
    trainer.train()
    after = loss()
    assert after < before - 0.2, (before, after)
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    assert model.temperature.item() >= model.config.temperature_min
    assert any(key.startswith("loss_vtc") for entry in trainer.state.log_history for key in entry)


def test_text_lora_trains_and_merges(tmp_path):
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("llama"))
    data = rows(32, "llama")
    trainer = InternVideo2ClipTrainer(model=model, args=_args(tmp_path, text_lora=True, max_steps=8),
                                      train_dataset=data, data_collator=collate)  # fmt: skip
    lora = [name for name in trainer.trainable_parameter_names if ".lora_" in name]
    assert lora and all("q_proj" in name or "v_proj" in name for name in lora)
    trainer.train()
    batch = collate(data[:4])
    model.eval()
    with torch.no_grad():
        adapted = model.get_text_features(batch["input_ids"]).pooler_output
    assert merge_text_lora(model) == 4
    assert not any(".lora_" in name for name in model.state_dict())
    with torch.no_grad():
        merged = model.get_text_features(batch["input_ids"]).pooler_output
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path / "merged")
    reloaded = InternVideo2ClipModel.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.get_text_features(batch["input_ids"]).pooler_output, merged)


def test_loss_is_normalised_over_the_step(tmp_path):
    """Under accumulation every micro-batch's loss is its sum over pairs divided by the pairs of the whole step."""
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip"))
    trainer = InternVideo2ClipTrainer(model=model, args=_args(tmp_path, gradient_accumulation_steps=2),
                                      train_dataset=rows(8, "mobileclip"), data_collator=collate)  # fmt: skip
    batch = collate(rows(4, "mobileclip"))
    model.eval()
    with torch.no_grad():
        alone = trainer.compute_loss(model, batch)
        share = trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(8))
    torch.testing.assert_close(share, alone / 2)
    assert trainer._get_num_items_in_batch([batch, batch], torch.device("cpu")) == 8

"""Instruction tuning: the collator's label masking (only answers supervised), the data format, freezing switches,
LoRA training, exact gradient accumulation, checkpoints. Real SmolLM2 / Mistral tokenizers, tiny random models."""

import copy

import pytest
import torch

from offline_assets import requires_mistral, requires_smollm2
from test_processing_internvideo2_chat import (
    mistral_tokenizer,
    smollm2_tokenizer_with_video_token,
    tiny_chat_config,
    tiny_chat_model,
)
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor
from transformers_internvideo2.training.chat import (
    NON_LORA_TRAINABLES_NAME,
    InternVideo2ChatDataCollator,
    InternVideo2ChatTrainer,
    InternVideo2ChatTrainingArguments,
    load_instruction_tuned,
    qa_turns,
)


def records(video_path):
    return [
        {
            "video": str(video_path),
            "QA": [
                {"i": "Watch the video carefully.", "q": "What is shown?", "a": "A man walks along a road."},
                {"q": "Is it day or night?", "a": "Day."},
            ],
        },
        {"video": str(video_path), "QA": [{"instruction": "", "question": "", "answer": "Someone walking outdoors."}]},
        {"video": str(video_path), "QA": [{"i": "Answer in one word.", "q": "Indoor or outdoor?", "a": "Outdoor."}]},
    ]


@pytest.fixture(scope="module")
def smol():
    tokenizer = smollm2_tokenizer_with_video_token()
    config = tiny_chat_config(tokenizer)
    return InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="chatml"), config


def _supervised_text(tokenizer, batch, row):
    keep = batch["labels"][row] != -100
    assert torch.equal(batch["labels"][row][keep], batch["input_ids"][row][keep])
    return tokenizer.decode(batch["input_ids"][row][keep])


@requires_smollm2
def test_labels_supervise_exactly_the_answers(smol, sample_video_path):
    processor, config = smol
    collator = InternVideo2ChatDataCollator(processor)
    batch = collator(records(sample_video_path))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "pixel_values_videos"}
    assert batch["pixel_values_videos"].shape[0] == 3
    tokenizer = processor.tokenizer
    assert _supervised_text(tokenizer, batch, 0) == "A man walks along a road.<|im_end|>\nDay.<|im_end|>\n"
    assert _supervised_text(tokenizer, batch, 1) == "Someone walking outdoors.<|im_end|>\n"
    assert _supervised_text(tokenizer, batch, 2) == "Outdoor.<|im_end|>\n"
    # every answer token is supervised, nothing else: the supervised span of each turn is contiguous and its length
    # is the answer's own token count
    answer_ids = tokenizer("A man walks along a road.<|im_end|>\n", add_special_tokens=False).input_ids
    row = batch["labels"][0]
    first = int((row != -100).nonzero()[0])
    assert row[first : first + len(answer_ids)].tolist() == answer_ids
    assert row[first - 1] == -100 and row[first + len(answer_ids)] == -100
    # placeholders and padding never reach the loss; one run of visual placeholders per sample
    placeholders = batch["input_ids"] == config.video_token_id
    assert placeholders.sum(1).tolist() == [5, 5, 5]
    assert (batch["labels"][placeholders] == -100).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    # the system text comes from the instruction; the prompt of sample 0 is the template's rendering
    text = tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert text.startswith("<|im_start|>system\nWatch the video carefully.<|im_end|>\n<|im_start|>user\n<vid>")
    model = tiny_chat_model(config)
    assert torch.isfinite(model(**batch).loss)


@requires_mistral
def test_mistral_labels_and_segmentwise_answers(sample_video_path):
    tokenizer = mistral_tokenizer()
    config = tiny_chat_config(tokenizer, video_token="[control_12]")
    processor = InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="mistral")
    batch = InternVideo2ChatDataCollator(processor)(records(sample_video_path)[:1])
    keep = batch["labels"][0] != -100
    # each answer is its own segment, as in the original training (§7.2): "▁A ... </s>", no BOS anywhere
    assert batch["input_ids"][0][keep].tolist() == (
        tokenizer("A man walks along a road.</s>", add_special_tokens=False).input_ids
        + tokenizer("Day.</s>", add_special_tokens=False).input_ids
    )
    assert tokenizer.bos_token_id not in batch["input_ids"][0].tolist()
    prompt = tokenizer.decode(batch["input_ids"][0][:-1])
    assert prompt.startswith("Watch the video carefully.[INST] <Video>")


def test_instruction_data_format_and_errors():
    turns = qa_turns({"video": "a.mp4", "QA": [{"i": "I", "q": "Q", "a": "A"}, {"question": "Q2", "answer": "A2"}]})
    assert turns == [
        {"instruction": "I", "question": "Q", "answer": "A"},
        {"instruction": "", "question": "Q2", "answer": "A2"},
    ]
    with pytest.raises(ValueError, match="'video'"):
        qa_turns({"QA": [{"a": "x"}]})
    with pytest.raises(ValueError, match="non-empty answer"):
        qa_turns({"video": "a.mp4", "QA": [{"q": "x"}]})
    with pytest.raises(ValueError, match="both 'q' and 'question'"):
        qa_turns({"video": "a.mp4", "QA": [{"q": "x", "question": "y", "a": "z"}]})
    with pytest.raises(ValueError, match="Unknown QA keys"):
        qa_turns({"video": "a.mp4", "QA": [{"a": "x", "hint": "y"}]})


@requires_smollm2
def test_collator_options(smol, sample_video_path):
    processor, _ = smol
    from transformers_internvideo2.assets import load_bert_uncased_tokenizer

    bert = load_bert_uncased_tokenizer()
    sample = dict(records(sample_video_path)[0], start=1.0, end=5.0)
    collator = InternVideo2ChatDataCollator(processor, qformer_tokenizer=bert, max_turns=1)
    batch = collator([sample])
    assert _supervised_text(processor.tokenizer, batch, 0) == "A man walks along a road.<|im_end|>\n"
    # the Q-Former gets the instruction (left padded, [CLS] ... [SEP])
    assert bert.decode(batch["qformer_input_ids"][0]) == "[CLS] watch the video carefully. [SEP]"
    # start/end: the clip is cut from the window (frames differ from whole-video sampling)
    whole = InternVideo2ChatDataCollator(processor)([records(sample_video_path)[0]])
    assert not torch.equal(batch["pixel_values_videos"], whole["pixel_values_videos"])
    with pytest.raises(ValueError, match="max_length"):
        InternVideo2ChatDataCollator(processor, max_length=10)([sample])


def _args(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, learning_rate=1e-2, report_to=[],
        save_strategy="no", use_cpu=True, logging_steps=1, lora_dropout=0.0, seed=0, disable_tqdm=True,
    )  # fmt: skip
    defaults.update(kwargs)
    return InternVideo2ChatTrainingArguments(**defaults)


@requires_smollm2
def test_freezing_leaves_frozen_parts_unchanged(smol, sample_video_path, tmp_path):
    processor, config = smol
    model = tiny_chat_model(config)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = _args(tmp_path, freeze_vision_encoder=True, freeze_qformer=True, max_steps=2)
    trainer = InternVideo2ChatTrainer(model=model, args=args, train_dataset=records(sample_video_path),
                                      processing_class=processor)  # fmt: skip
    trainer.train()
    after = dict(trainer.model.get_base_model().named_parameters())
    for name, value in before.items():
        key = name
        if key not in after:  # LoRA-wrapped linear layers keep their weight under base_layer
            key = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        changed = not torch.equal(after[key], value)
        part = name.split(".")[0]
        assert changed == (part == "multi_modal_projector"), name
    lora_b = [p for n, p in after.items() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # adapters trained (B starts at 0)
    assert any("lm_head.lora_A" in n for n in after)  # lm_head gets LoRA (untied embeddings), as the original


@requires_smollm2
def test_lora_loss_goes_down(smol, sample_video_path, tmp_path):
    processor, config = smol
    args = _args(tmp_path, max_steps=6, learning_rate=3e-3, per_device_train_batch_size=3)
    trainer = InternVideo2ChatTrainer(model=tiny_chat_model(config), args=args,
                                      train_dataset=records(sample_video_path), processing_class=processor)  # fmt: skip
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.05, losses


@requires_smollm2
def test_gradient_accumulation_is_exact(smol, sample_video_path, tmp_path):
    """One SGD step on 2 samples with very different answer lengths: batch 2 == 2 micro-batches of 1 (the loss is
    the mean over all answer tokens of the step, through num_items_in_batch)."""
    processor, config = smol
    data = [records(sample_video_path)[0], records(sample_video_path)[2]]
    results = []
    for batch_size, accumulation in ((2, 1), (1, 2)):
        model = tiny_chat_model(config)
        args = _args(tmp_path, per_device_train_batch_size=batch_size, gradient_accumulation_steps=accumulation,
                     optim="sgd", learning_rate=1.0, max_grad_norm=0.0, freeze_vision_encoder=True)  # fmt: skip
        trainer = InternVideo2ChatTrainer(model=model, args=args, train_dataset=data, processing_class=processor)
        trainer.train()
        results.append({n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad})
    reference = tiny_chat_model(config).multi_modal_projector.weight
    update = results[0]["base_model.model.multi_modal_projector.weight"] - reference
    assert update.abs().max() > 1e-4
    for name in results[0]:
        torch.testing.assert_close(results[1][name], results[0][name], rtol=1e-4, atol=1e-6, msg=name)


@requires_smollm2
def test_checkpoint_round_trip(smol, sample_video_path, tmp_path):
    processor, config = smol
    base = tiny_chat_model(config)
    pristine = copy.deepcopy(base)
    args = _args(tmp_path, max_steps=2, freeze_vision_encoder=True)
    trainer = InternVideo2ChatTrainer(model=base, args=args, train_dataset=records(sample_video_path),
                                      processing_class=processor)  # fmt: skip
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "final" / NON_LORA_TRAINABLES_NAME).is_file()
    restored = load_instruction_tuned(pristine, tmp_path / "final").eval()
    batch = trainer.data_collator(records(sample_video_path)[:1])
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model(**batch).logits
        torch.testing.assert_close(restored(**batch).logits, expected)
        merged = restored.merge_and_unload()
        torch.testing.assert_close(merged(**batch).logits, expected, rtol=1e-4, atol=1e-4)


@requires_smollm2
def test_a_lora_tuned_model_trains_further_with_its_own_adapters(smol, sample_video_path, tmp_path):
    """A second training phase: the PeftModel of a first run, reloaded in inference mode, keeps its adapters (no
    second LoRA wrapped around them) and they move again; mismatched LoRA arguments are refused."""
    processor, config = smol
    base = tiny_chat_model(config)
    pristine = copy.deepcopy(base)
    first = InternVideo2ChatTrainer(model=base, args=_args(tmp_path / "one", max_steps=2, freeze_vision_encoder=True),
                                    train_dataset=records(sample_video_path), processing_class=processor)  # fmt: skip
    first.train()
    first.save_model(str(tmp_path / "one" / "final"))
    loaded = load_instruction_tuned(pristine, tmp_path / "one" / "final")  # inference mode: nothing trainable
    assert not any(p.requires_grad for n, p in loaded.named_parameters() if "lora_" in n)
    before = {n: p.detach().clone() for n, p in loaded.named_parameters() if "lora_" in n}
    args = _args(tmp_path / "two", max_steps=2, freeze_vision_encoder=True, learning_rate=3e-3)
    second = InternVideo2ChatTrainer(model=loaded, args=args, train_dataset=records(sample_video_path),
                                     processing_class=processor)  # fmt: skip
    assert second.model is loaded and list(loaded.peft_config) == ["default"]
    assert not any("base_model.model.base_model" in n for n, _ in second.model.named_parameters())  # not re-wrapped
    second.train()
    after = {n: p for n, p in second.model.named_parameters() if "lora_" in n}
    assert set(after) == set(before) and all(p.requires_grad for p in after.values())
    assert all(not torch.equal(after[n], before[n]) for n in before if "lora_B" in n)
    assert second.model.get_base_model().multi_modal_projector.weight.requires_grad
    with pytest.raises(ValueError, match=r"\(r, alpha\)"):
        InternVideo2ChatTrainer(model=loaded, args=_args(tmp_path / "three", lora_r=args.lora_r * 2),
                                train_dataset=records(sample_video_path), processing_class=processor)  # fmt: skip
    with pytest.raises(ValueError, match="already carries LoRA"):
        InternVideo2ChatTrainer(model=loaded, args=_args(tmp_path / "four", use_lora=False),
                                train_dataset=records(sample_video_path), processing_class=processor)  # fmt: skip


def test_argument_validation(tmp_path):
    with pytest.raises(ValueError, match="LoRA already freezes"):
        _args(tmp_path, freeze_llm=True)
    with pytest.raises(ValueError, match="remove_unused_columns"):
        _args(tmp_path, remove_unused_columns=True)


@requires_smollm2
def test_collator_skips_an_undecodable_video(smol, sample_video_path, tmp_path):
    from transformers_internvideo2.training.data import TooManyUndecodableSamplesError

    processor, _ = smol
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    good = records(sample_video_path)
    collator = InternVideo2ChatDataCollator(processor, max_failure_fraction=0.5)
    batch = collator([good[0], dict(good[2], video=str(bad)), good[1]])
    expected = InternVideo2ChatDataCollator(processor)([good[0], good[1]])
    for key in expected:  # the batch of the two good samples, exactly
        assert torch.equal(batch[key], expected[key]), key
    assert collator.failure_budget.num_failed == 1 and collator.failure_budget.num_seen == 3
    with pytest.raises(TooManyUndecodableSamplesError, match="bad.mp4"):
        InternVideo2ChatDataCollator(processor, max_failure_fraction=0.0)([good[0], dict(good[2], video=str(bad))])


@requires_smollm2
def test_trainer_gives_max_failure_fraction_to_the_collator(smol, sample_video_path, tmp_path):
    processor, config = smol
    args = _args(tmp_path, max_failure_fraction=0.25)
    trainer = InternVideo2ChatTrainer(model=tiny_chat_model(config), args=args, train_dataset=records(sample_video_path),
                                      processing_class=processor)  # fmt: skip
    assert trainer.data_collator.failure_budget.max_failure_fraction == 0.25 == trainer.data_collator.max_failure_fraction
    with pytest.raises(ValueError, match=r"max_failure_fraction=0\.25 but the data collator .* with max_failure_fraction=0\.5"):
        InternVideo2ChatTrainer(model=tiny_chat_model(config), args=args, train_dataset=records(sample_video_path),
                                data_collator=InternVideo2ChatDataCollator(processor, max_failure_fraction=0.5))  # fmt: skip

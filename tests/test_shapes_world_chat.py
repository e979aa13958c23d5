"""Stage 3 on the shapes world: the chat recipe's plumbing on a micro run (fast), and held-out accuracy well above
chance after the real CPU run (slow). Real SmolLM2-135M-Instruct from the offline asset."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from transformers_internvideo2 import shapes_world
from transformers_internvideo2.shapes_world.chat_bundle import load_chat_bundle
from transformers_internvideo2.shapes_world.recipes.chat import (
    QUESTION_TYPES,
    ChatRecipeSettings,
    answer_is_correct,
    chance_levels,
    chat_records,
    run,
)

from offline_assets import requires_smollm2


def test_records_are_the_worlds_questions_and_splits_are_disjoint():
    settings = ChatRecipeSettings()
    train = chat_records("train", 20, settings)
    test = chat_records("test", 20, settings)
    assert not {r["seed"] for r in train} & {r["seed"] for r in test}
    for record in train[:5]:
        spec = shapes_world.sample_clip_spec(record["seed"], settings.num_frames, 32, 32)
        assert record["video"].shape == (8, 32, 32, 3) and record["video"].dtype.name == "uint8"
        assert (record["video"] == shapes_world.render_clip(spec)).all()
        world = dict(spec.questions_and_answers)
        assert [turn["q"] for turn in record["QA"]] == list(QUESTION_TYPES.values())
        assert all(world[turn["q"]] == turn["a"] for turn in record["QA"])
        assert record["answers"]["direction"] == spec.direction and record["answers"]["shape"] == spec.shape


def test_chance_levels_and_answer_matching():
    assert chance_levels() == {"shape": 1 / 4, "start colour": 1 / 6, "end colour": 1 / 6, "direction": 1 / 4,
                               "size": 1 / 3}  # fmt: skip
    assert answer_is_correct(" Red.\nmore text", "red")
    assert answer_is_correct("it  grows", "it grows")
    assert not answer_is_correct("red circle", "red")
    assert not answer_is_correct("", "no")


def test_training_frames_are_the_processors_frames():
    from transformers_internvideo2.shapes_world.recipes.chat import _pixels, model_frame_indices
    from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor

    assert model_frame_indices(8).tolist() == [0, 1, 2, 3, 4, 4, 5, 6]
    records = chat_records("train", 2, ChatRecipeSettings())
    processor = InternVideo2VideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                           num_frames=8)  # fmt: skip
    by_processor = processor(videos=[r["video"] for r in records], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(_pixels(records), by_processor, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chat-micro")
    torch.manual_seed(0)
    settings = ChatRecipeSettings.micro()
    settings.multiple_choice_fraction = 0.5  # the mixing's plumbing too (micro() runs the second phase as well)
    return run(out, settings, log=lambda *_: None)


@requires_smollm2
def test_multiple_choice_conversations_train_on_the_benchmark_prompt():
    """The mixed-in multiple-choice conversations are the MVBench protocol's: rendered by the training collator, the
    text before the supervised answer is exactly the evaluation prompt (`build_mvbench_prompt`, which ends with the
    answer prompt), and the supervised text is the right option letter and candidate."""
    from transformers_internvideo2.shapes_world.recipes.chat import multiple_choice_records
    from transformers_internvideo2.tasks.mvbench import build_mvbench_prompt, parse_option
    from transformers_internvideo2.training.chat import InternVideo2ChatDataCollator
    from test_processing_internvideo2_chat import smollm2_tokenizer_with_video_token, tiny_chat_config

    settings = ChatRecipeSettings(multiple_choice_fraction=0.5, multiple_choice_hint_fraction=0.0)
    records = chat_records("train", 8, settings)
    conversations = multiple_choice_records(records, settings)
    assert len(conversations) == 4 and len({c["seed"] for c in conversations}) == 4
    assert multiple_choice_records(records, settings) == conversations  # seeded
    assert not multiple_choice_records(records, ChatRecipeSettings(multiple_choice_fraction=0.0))
    tokenizer = smollm2_tokenizer_with_video_token()
    from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor

    processor = InternVideo2ChatProcessor.from_model_config(tiny_chat_config(tokenizer), tokenizer, chat_template="chatml")
    collator = InternVideo2ChatDataCollator(processor)
    by_seed = {record["seed"]: record for record in records}
    for conversation in conversations:
        turn = conversation["QA"][0]
        question = turn["q"].split("Question: ")[1].split("\n")[0]
        candidates = [line[4:] for line in turn["q"].split("\n") if line[:1] == "(" and line[2:4] == ") "]
        expected_prompt = build_mvbench_prompt(processor, question, candidates)
        ids, labels = collator.encode_conversation(collator.conversation(conversation)[0], [1])
        prompt_ids = [i for i, label in zip(ids, labels) if label == -100]
        answer_ids = [i for i, label in zip(ids, labels) if label != -100]
        # evaluation prompt = training prompt + the first answer tokens (the answer prompt "Best option:(")
        eval_ids = processor.tokenize_with_videos(expected_prompt, [1])
        assert len(eval_ids) > len(prompt_ids)
        assert eval_ids == prompt_ids + answer_ids[: len(eval_ids) - len(prompt_ids)]
        answer = tokenizer.decode(answer_ids)
        assert answer.startswith("Best option:(")
        chosen = parse_option("(" + answer[len("Best option:("):], candidates)
        task_kind = {"Moving Direction": "direction", "Object Shape": "shape", "Start Colour": "start colour",
                     "End Colour": "end colour"}[conversation["task"]]  # fmt: skip
        assert candidates[chosen] == by_seed[conversation["seed"]]["answers"][task_kind]


def test_multiple_choice_hints_state_the_answer_and_leave_the_questions_unchanged():
    """`multiple_choice_hint_fraction` of the multiple-choice conversations state the answer right before the question
    (the task's fact sentence); the others, and every question, option order and answer, are those of the run
    without hints, and evaluation prompts never carry one."""
    from transformers_internvideo2.shapes_world.mvbench import MULTIPLE_CHOICE_FACTS
    from transformers_internvideo2.shapes_world.recipes.chat import multiple_choice_records

    plain_settings = ChatRecipeSettings(multiple_choice_fraction=1.0, multiple_choice_hint_fraction=0.0)
    records = chat_records("train", 12, plain_settings)
    plain = multiple_choice_records(records, plain_settings)
    hinted = multiple_choice_records(records, ChatRecipeSettings(multiple_choice_fraction=1.0,
                                                                 multiple_choice_hint_fraction=0.25))  # fmt: skip
    assert sum(c["hinted"] for c in hinted) == 3 and not any(c["hinted"] for c in plain)
    for with_hint, without in zip(hinted, plain):
        assert with_hint["task"] == without["task"] and with_hint["QA"][0]["a"] == without["QA"][0]["a"]
        preamble, question = with_hint["QA"][0]["q"].split("Question: ")
        assert question == without["QA"][0]["q"].split("Question: ")[1]
        if with_hint["hinted"]:
            answer = with_hint["QA"][0]["a"].split(") ", 1)[1]
            assert preamble.endswith("\n" + MULTIPLE_CHOICE_FACTS[with_hint["task"]].format(answer) + "\n")
        else:
            assert preamble == without["QA"][0]["q"].split("Question: ")[0]
    with pytest.raises(ValueError, match="multiple_choice_hint_fraction must be in"):
        multiple_choice_records(records, ChatRecipeSettings(multiple_choice_fraction=1.0,
                                                            multiple_choice_hint_fraction=1.5))  # fmt: skip


@requires_smollm2
def test_micro_run_plumbing(micro_run):
    result = micro_run
    held_out = result.metrics["held_out"]
    assert set(held_out["accuracy"]) == set(QUESTION_TYPES)
    assert all(0.0 <= v <= 1.0 for v in held_out["accuracy"].values())
    assert held_out["chance"] == chance_levels()
    assert held_out["num_clips"] == 2
    assert len(result.predictions) == 2 * len(QUESTION_TYPES)
    assert {p["type"] for p in result.predictions} == set(QUESTION_TYPES)
    assert all(isinstance(p["generated"], str) for p in result.predictions)
    assert result.metrics["train_loss_first"] > 0 and result.metrics["train_loss_last"] > 0
    assert result.metrics["multiple_choice_phase_loss_first"] > 0 and "multiple_choice_phase" in result.seconds
    assert result.metrics["held_out_mp4"]["num_clips"] == 2
    mvbench = result.metrics["mvbench"]
    assert mvbench["num_questions"] == 4 and 0.0 <= mvbench["overall"] <= 1.0


@requires_smollm2
def test_bundle_holds_no_llm_weights_and_reloads(micro_run):
    from pathlib import Path

    folder = Path(micro_run.bundle_dir)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors", "config.json",
                     "model.safetensors", "shapes_chat.json", "video_preprocessor_config.json"]  # fmt: skip
    card = (folder / "README.md").read_text()
    assert "Held-out accuracy" in card and "examples/shapes_world_chat.py" in card
    weights = load_file(str(folder / "model.safetensors"))
    assert not any(k.startswith("language_model.") for k in weights)
    assert {k.split(".")[0] for k in weights} == {"vision_model", "vision_layernorm", "query_tokens", "qformer",
                                                  "multi_modal_projector"}  # fmt: skip
    adapter = load_file(str(folder / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter) and all(v.dtype == torch.float16 for v in adapter.values())
    total_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    assert total_mb < 10, total_mb

    model, processor = load_chat_bundle(folder)
    assert type(model).__name__ == "InternVideo2ForConditionalGeneration"  # LoRA merged
    for name, tensor in model.state_dict().items():
        if name in weights:
            assert torch.equal(tensor, weights[name]), name
    assert processor.video_token_id == model.config.video_token_id == 49152
    manifest = json.loads((folder / "shapes_chat.json").read_text())
    assert manifest["metrics"]["held_out"]["accuracy"] == micro_run.metrics["held_out"]["accuracy"]


@requires_smollm2
def test_the_multiple_choice_phase_continued_from_the_phase_one_bundle_reproduces_the_full_run(micro_run, tmp_path):
    from pathlib import Path

    phase_one = Path(micro_run.bundle_dir).parent / "phase-one"
    settings = ChatRecipeSettings(**micro_run.settings)
    settings.lora_target_modules = tuple(settings.lora_target_modules)
    again = run(tmp_path, settings, log=lambda *_: None, phase_one_bundle=phase_one)
    for name in ("model.safetensors", "adapter_model.safetensors"):
        first, second = load_file(str(Path(micro_run.bundle_dir) / name)), load_file(str(Path(again.bundle_dir) / name))
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), name
    assert again.metrics["held_out"]["accuracy"] == micro_run.metrics["held_out"]["accuracy"]
    assert again.metrics["train_loss_last"] == micro_run.metrics["train_loss_last"]  # phase one's, from its manifest

    settings.lora_r = 8  # not what phase one was trained with
    with pytest.raises(ValueError, match="lora_r=16"):
        run(tmp_path / "other", settings, log=lambda *_: None, phase_one_bundle=phase_one)
    settings.lora_r, settings.multiple_choice_phase_steps = 16, 0
    with pytest.raises(ValueError, match="multiple_choice_phase_steps"):
        run(tmp_path / "other", settings, log=lambda *_: None, phase_one_bundle=phase_one)


@requires_smollm2
def test_bundle_loading_is_strict(micro_run, tmp_path):
    import shutil
    from pathlib import Path

    folder = tmp_path / "bundle"
    shutil.copytree(Path(micro_run.bundle_dir), folder)
    weights = load_file(str(folder / "model.safetensors"))
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="missing"):
        load_chat_bundle(folder)

    shutil.copy(Path(micro_run.bundle_dir) / "model.safetensors", folder / "model.safetensors")
    adapter = load_file(str(folder / "adapter_model.safetensors"))
    adapter["base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_X.weight"] = torch.zeros(1)
    save_file(adapter, str(folder / "adapter_model.safetensors"))
    with pytest.raises(RuntimeError, match="unexpected"):
        load_chat_bundle(folder)


@requires_smollm2
def test_shipped_bundle_reproduces_its_recorded_held_out_accuracy(tmp_path):
    """The shipped chat bundle, re-measured here on the held-out clips its manifest names, gives the accuracies its
    manifest records (within one clip per question type, for CPU-dependent near-ties in greedy decoding), and so does
    its MVBench-format score where the manifest records one (within two questions)."""
    from transformers_internvideo2.shapes_world.chat_bundle import bundled_chat_dir, load_bundled_chat, read_bundle_manifest
    from transformers_internvideo2.shapes_world.recipes.chat import evaluate_chat, evaluate_multiple_choice

    manifest = read_bundle_manifest(bundled_chat_dir())
    recorded, recipe = manifest["metrics"]["held_out"], manifest["recipe_settings"]
    settings = ChatRecipeSettings(num_frames=recipe["num_frames"], image_size=recipe["image_size"])
    held_out = chat_records("test", recorded["num_clips"], settings)
    model, processor = load_bundled_chat()
    measured = evaluate_chat(model, processor, held_out, batch_size=40, max_new_tokens=recipe["max_new_tokens"])
    for kind in QUESTION_TYPES:
        assert abs(measured["accuracy"][kind] - recorded["accuracy"][kind]) <= 1 / recorded["num_clips"] + 1e-9, kind
        assert measured["accuracy"][kind] >= 0.9, (kind, measured["accuracy"])  # what the shipped model is for
    assert measured["majority"] == recorded["majority"] and measured["chance"] == recorded["chance"]
    multiple_choice = manifest["metrics"].get("mvbench")
    if multiple_choice:
        settings.mvbench_videos = multiple_choice["num_videos"]
        again = evaluate_multiple_choice(model, processor, settings, tmp_path / "mvbench")
        assert again["num_questions"] == multiple_choice["num_questions"]
        assert abs(again["overall"] - multiple_choice["overall"]) * again["num_questions"] <= 2 + 1e-9, again
        assert again["overall"] >= 0.6, again  # well above the 25 % chance: what the multiple-choice phase is for


# Thresholds of the slow test: "well above chance" per question type. Uniform chance is 1/4 (shape, direction),
# 1/6 (start / end colour) and 1/3 (size: "it grows" / "it shrinks" / "no"); for size the majority answer "no" alone
# scores about 1/2, so it must beat that as well.
SLOW_MINIMUM_ACCURACY = {"shape": 0.6, "start colour": 0.6, "end colour": 0.6, "direction": 0.5, "size": 0.65}
# A shorter run than the shipped model's (5000 / 800 + 300 steps, 200 clips; ~2 h on 2 cores), on open questions only
# (multiple-choice conversations are about twice as long; the micro run covers their plumbing). With 100 held-out clips
# it took 657 s on 2 idle cores (2026-12-06: warm-up 280 s, tuning 284 s at 4.7 s a step, evaluations 76 s) and scored
# 0.84-0.93 per type; the first 60 of those clips 0.83-0.97, hence 60 clips. Cutting the training does not pay:
# 2,500 warm-up and 40 tuning steps (478 s) scored 0.47-0.77, under the thresholds.
SLOW_RUN = dict(warmup_steps=3000, steps=60, eval_clips=60, mvbench_videos=0, multiple_choice_fraction=0.0,
                multiple_choice_phase_steps=0)


@requires_smollm2
@pytest.mark.slow
def test_short_cpu_run_answers_held_out_questions_well_above_chance(tmp_path):
    result = run(tmp_path, ChatRecipeSettings(**SLOW_RUN), log=print)
    for evaluation in (result.metrics["held_out"], result.metrics["held_out_mp4"]):
        for kind, minimum in SLOW_MINIMUM_ACCURACY.items():
            accuracy, chance = evaluation["accuracy"][kind], evaluation["chance"][kind]
            assert accuracy >= minimum and accuracy >= 2 * chance, (kind, accuracy, chance, evaluation)
        assert evaluation["accuracy"]["size"] > evaluation["majority"]["size"] + 0.1

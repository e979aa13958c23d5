"""MVBench-format multiple-choice harness: question/prompt strings of the original protocol, answer parsing,
per-task and overall accuracy on a generated shapes-world benchmark (with a scripted answerer and a real tiny model)."""

import json

import pytest
import torch

from offline_assets import requires_smollm2
from test_processing_internvideo2_chat import (
    smollm2_tokenizer_with_video_token,
    tiny_chat_config,
    tiny_chat_model,
)
from transformers_internvideo2.shapes_world.mvbench import make_shapes_world_benchmark
from transformers_internvideo2.tasks.mvbench import (
    MVBENCH_SYSTEM_PROMPT,
    build_mvbench_prompt,
    evaluate_mvbench,
    format_question,
    load_mvbench,
    parse_option,
)
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor


def test_question_block_and_original_mistral_prompt():
    assert format_question("Where?", ["left", "right", "up"]) == "Question: Where?\nOptions:\n(A) left\n(B) right\n(C) up"

    class Stub:
        video_token = "[<VID_PLH>]"

    prompt = build_mvbench_prompt(Stub(), "Where?", ["left", "right"], prompt_format="mistral")
    sys = MVBENCH_SYSTEM_PROMPT
    assert sys.startswith("Carefully watch the video") and sys.endswith("addresses the question.\n")
    assert prompt == (
        f"{sys}[INST] <Video>[<VID_PLH>]</Video> [/INST] [INST] {sys}Question: Where?\nOptions:\n(A) left\n(B) right"
        "\nOnly give the best option. [/INST] Best option:("
    )
    # a user preamble replaces the repeated system text in the user turn only
    stated = build_mvbench_prompt(Stub(), "Where?", ["left", "right"], prompt_format="mistral",
                                  user_preamble=sys + "It goes left.\n")  # fmt: skip
    assert stated == prompt.replace(f"[INST] {sys}Question:", f"[INST] {sys}It goes left.\nQuestion:")
    with pytest.raises(ValueError, match="at least 2"):
        format_question("q", ["only"])
    with pytest.raises(ValueError, match="prompt_format"):
        build_mvbench_prompt(Stub(), "q", ["a", "b"], prompt_format="llava")


@pytest.mark.parametrize(
    "prediction, expected",
    [("(B) right", 1), ("(b)", 1), ("(C", 2), ("(A.", 0), ("(D) down", None), ("(right", 1), ("(Right.", 1),
     ("(Ottomans entered", None), ("(", None)],
)  # fmt: skip
def test_parse_option(prediction, expected):
    assert parse_option(prediction, ["left", "right", "up"]) == expected


def test_load_mvbench_checks_records(tmp_path):
    good = [{"task": "T", "video": "a.mp4", "question": "q", "candidates": ["x", "y"], "answer": "y"}]
    (tmp_path / "ok.json").write_text(json.dumps(good))
    assert load_mvbench(tmp_path / "ok.json") == {"T": good}
    bad = {"T": [{"video": "a.mp4", "question": "q", "candidates": ["x", "y"], "answer": "z"}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="exactly one of"):
        load_mvbench(tmp_path / "bad.json")


@pytest.fixture(scope="module")
def benchmark_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mvbench")
    return directory, make_shapes_world_benchmark(directory, num_videos=3, size=32)


def test_generated_benchmark(benchmark_dir):
    directory, path = benchmark_dir
    data = load_mvbench(path)
    assert sorted(data) == ["End Colour", "Moving Direction", "Object Shape", "Start Colour"]
    for records in data.values():
        assert len(records) == 3
        for record in records:
            assert (directory / record["video"]).is_file()
            assert len(record["candidates"]) == 4 and record["answer"] in record["candidates"]


class ScriptedAnswerer(torch.nn.Module):
    """Stands in for a chat model: reads the question back from the prompt ids and answers with the right option
    letter for "Object Shape" and "(A)" otherwise, so the expected accuracies are known exactly."""

    def __init__(self, tokenizer, benchmark):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer = tokenizer
        self.benchmark = benchmark
        self.calls = 0

    def generate(self, input_ids, attention_mask, pixel_values_videos, max_new_tokens, do_sample):
        assert pixel_values_videos.shape[0] == input_ids.shape[0] and do_sample is False
        self.calls += 1
        outputs = []
        for row in range(input_ids.shape[0]):
            prompt = self.tokenizer.decode(input_ids[row][attention_mask[row].bool()])
            assert prompt.endswith("Best option:(")
            answer = "A) whatever"
            for record in self.benchmark["Object Shape"]:
                if format_question(record["question"], record["candidates"]) in prompt:
                    answer = f"{'ABCD'[record['candidates'].index(record['answer'])]}) {record['answer']}\nmore"
            outputs.append(input_ids[row].tolist() + self.tokenizer(answer, add_special_tokens=False).input_ids)
        width = max(len(o) for o in outputs)
        pad = self.tokenizer.pad_token_id
        return torch.tensor([o + [pad] * (width - len(o)) for o in outputs])


@requires_smollm2
def test_accuracy_per_task_and_overall(benchmark_dir):
    directory, path = benchmark_dir
    data = load_mvbench(path)
    tokenizer = smollm2_tokenizer_with_video_token()
    config = tiny_chat_config(tokenizer)
    processor = InternVideo2ChatProcessor.from_model_config(config, tokenizer, chat_template="chatml")
    answerer = ScriptedAnswerer(tokenizer, data)
    result = evaluate_mvbench(answerer, processor, data, video_root=directory, batch_size=5)
    assert answerer.calls == 3  # 12 questions in batches of 5
    assert result.task_accuracy["Object Shape"] == 1.0
    for task, records in data.items():
        if task != "Object Shape":
            expected = sum(record["candidates"][0] == record["answer"] for record in records) / len(records)
            assert result.task_accuracy[task] == pytest.approx(expected)
    correct = sum(entry["correct"] for entry in result.predictions)
    assert result.overall_accuracy == pytest.approx(correct / 12) and result.num_questions == 12
    assert result.mean_task_accuracy == pytest.approx(sum(result.task_accuracy.values()) / 4)
    assert all(entry["prediction"].startswith("(") and "\n" not in entry["prediction"] for entry in result.predictions)
    assert "overall" in result.summary()

    # a real (untrained) tiny chat model runs through the same harness
    model = tiny_chat_model(config)
    real = evaluate_mvbench(model, processor, data, video_root=directory, max_new_tokens=3, batch_size=4)
    assert real.num_questions == 12 and 0.0 <= real.overall_accuracy <= 1.0

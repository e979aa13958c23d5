"""Which option letter does a chat bundle pick on the shapes-world MVBench-format questions, with and without the
answer stated in the question text?

The MVBench score of a chat model mixes two skills: reading the fact from the video and writing the letter of the
option that says it. Stating the fact in the user text (as `multiple_choice_hint_fraction` does in training, right
before "Question:") removes the first, so the gap between the two scores shows which skill is missing. The score is
the argmax over the four letter tokens after the answer prompt `"Best option:("` (greedy generation picks the same
letter), on the benchmark `make_shapes_world_benchmark` writes (docs/videochat_shapes.md, "Multiple choice").

    python examples/multiple_choice_letters.py                       # the shipped bundle, 40 clips = 160 questions
    python examples/multiple_choice_letters.py --model runs/shapes-chat/shapes-chat --videos 10
"""

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a source checkout

import torch  # noqa: E402

from transformers_internvideo2.shapes_world import generator as shapes_world  # noqa: E402
from transformers_internvideo2.shapes_world.chat_bundle import bundled_chat_dir, load_chat_bundle  # noqa: E402
from transformers_internvideo2.shapes_world.mvbench import (  # noqa: E402
    MULTIPLE_CHOICE_FACTS,
    make_shapes_world_benchmark,
)
from transformers_internvideo2.tasks.mvbench import MVBENCH_SYSTEM_PROMPT, build_mvbench_prompt  # noqa: E402


LETTERS = "ABCD"


def prompt(processor, item: dict, task: str, stated: bool) -> str:
    """The evaluation prompt, optionally with the fact before the question (as the recipe's stated questions)."""
    preamble = MVBENCH_SYSTEM_PROMPT + (MULTIPLE_CHOICE_FACTS[task].format(item["answer"]) + "\n" if stated else "")
    return build_mvbench_prompt(processor, item["question"], item["candidates"], user_preamble=preamble)


@torch.no_grad()
def letter_scores(model, processor, benchmark: dict, stated: bool) -> dict:
    letter_ids = [processor.tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in LETTERS]
    correct, chosen, per_task = 0, collections.Counter(), {}
    for task, items in benchmark.items():
        videos = []
        for item in items:  # the benchmark's clips, rendered again (the mp4 files are lossy copies of these)
            index = int(Path(item["video"]).stem.split("_")[1])
            spec = shapes_world.sample_clip_spec(shapes_world.SPLIT_SEED_OFFSETS["test"] + index, 8, 32, 32)
            videos.append(shapes_world.render_clip(spec))
        inputs = processor(text=[prompt(processor, item, task, stated) for item in items], videos=videos,
                           padding_side="left", return_tensors="pt")  # fmt: skip
        predictions = model(**inputs).logits[:, -1, letter_ids].argmax(-1).tolist()
        hits = [p == item["candidates"].index(item["answer"]) for p, item in zip(predictions, items)]
        per_task[task] = sum(hits) / len(items)
        correct += sum(hits)
        chosen.update(LETTERS[p] for p in predictions)
    total = sum(len(items) for items in benchmark.values())
    return {"accuracy": correct / total, "per_task": per_task, "letters_chosen": dict(sorted(chosen.items()))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a chat bundle folder (default: the shipped one)")
    parser.add_argument("--videos", type=int, default=40, help="held-out clips, four questions each (default 40)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, processor = load_chat_bundle(args.model or bundled_chat_dir())
    model.eval()
    with tempfile.TemporaryDirectory() as folder:
        path = make_shapes_world_benchmark(folder, num_videos=args.videos, size=32)
        benchmark = json.loads(Path(path).read_text())
    results = {name: letter_scores(model, processor, benchmark, stated)
               for name, stated in (("plain", False), ("stated", True))}  # fmt: skip
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Can the chat model's language model answer MVBench-format questions at all, and how fast does LoRA teach it?

The shapes chat model trained with multiple-choice conversations wrote "(C)" to almost every question (see
docs/videochat_shapes.md, "Multiple choice"). This probe separates the two skills that answer needs, on text alone,
with no video: (1) knowing the fact and (2) writing the letter of the option that states it. Each question gets the
benchmark's system text, its user text and the answer prompt `"Best option:("` (tasks.mvbench), through SmolLM2's
own ChatML template; the shapes-world facts and option pools (shapes_world.generator). With `--stated` the user text
states the fact first ("The shape moves left."), so only skill (2) is tested. The score is the argmax over the four
letter tokens after the answer prompt.

    python examples/multiple_choice_probe.py                  # zero-shot SmolLM2-135M-Instruct (about a minute)
    python examples/multiple_choice_probe.py --train-steps 200 --eval-every 50   # LoRA on stated questions

LoRA as the chat recipe's (r=16, alpha=32 on q/k/v/o, learning rate 5e-4, warm-up then cosine, batch 8); training
questions always state the fact, and the evaluation reports held-out questions with and without it.
"""

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a source checkout

import torch  # noqa: E402

from transformers_internvideo2.assets import load_smollm2  # noqa: E402
from transformers_internvideo2.shapes_world import generator as shapes_world  # noqa: E402
from transformers_internvideo2.shapes_world.mvbench import MULTIPLE_CHOICE_FACTS  # noqa: E402
from transformers_internvideo2.tasks.mvbench import (  # noqa: E402
    MVBENCH_ANSWER_PROMPT,
    MVBENCH_SYSTEM_PROMPT,
    mvbench_question_text,
)


LETTERS = "ABCD"
# (question, option pool, the fact as a sentence: the chat recipe's hint for the same task)
TASKS = (
    ("Which way does the shape move?", shapes_world.DIRECTIONS, MULTIPLE_CHOICE_FACTS["Moving Direction"]),
    ("What shape is it?", shapes_world.SHAPES, MULTIPLE_CHOICE_FACTS["Object Shape"]),
    ("What colour is the shape at the start?", shapes_world.COLOURS, MULTIPLE_CHOICE_FACTS["Start Colour"]),
    ("What colour is the shape at the end?", shapes_world.COLOURS, MULTIPLE_CHOICE_FACTS["End Colour"]),
)


def make_question(tokenizer, rng: random.Random, stated: bool) -> tuple[str, str, int]:
    """`(prompt ending with the answer prompt, answer text with end of turn, index of the correct option)`."""
    question, pool, fact = rng.choice(TASKS)
    answer = rng.choice(list(pool))
    options = rng.sample([option for option in pool if option != answer], 3) + [answer]
    rng.shuffle(options)
    user = (fact.format(answer) + "\n" if stated else "") + mvbench_question_text(question, options)
    messages = [{"role": "system", "content": MVBENCH_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    index = options.index(answer)
    return prompt + MVBENCH_ANSWER_PROMPT, f"{LETTERS[index]}) {answer}{tokenizer.eos_token}", index


@torch.no_grad()
def letter_accuracy(model, tokenizer, seed: int, stated: bool, count: int) -> dict:
    letter_ids = [tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in LETTERS]
    rng = random.Random(seed)
    was_training = model.training
    model.eval()
    correct, chosen, probability = 0, {letter: 0 for letter in LETTERS}, 0.0
    for _ in range(count):
        prompt, _, index = make_question(tokenizer, rng, stated)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        logits = model(**inputs).logits[0, -1, letter_ids]
        prediction = int(logits.argmax())
        correct += prediction == index
        chosen[LETTERS[prediction]] += 1
        probability += float(logits.softmax(-1)[index])
    model.train(was_training)
    return {"accuracy": correct / count, "mean_p_correct": probability / count, "letters_chosen": chosen}


def train_stated(model, tokenizer, steps: int, eval_every: int, eval_questions: int, log) -> list[dict]:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.0)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    rng, history, start = random.Random(123), [], time.time()
    model.train()
    for step in range(1, steps + 1):
        sequences, labels = [], []
        for _ in range(8):
            prompt, answer, _ = make_question(tokenizer, rng, stated=True)
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
            sequences.append(prompt_ids + answer_ids)
            labels.append([-100] * len(prompt_ids) + answer_ids)
        length = max(map(len, sequences))
        pad = [length - len(ids) for ids in sequences]
        input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * p for ids, p in zip(sequences, pad)])
        label_ids = torch.tensor([ids + [-100] * p for ids, p in zip(labels, pad)])
        attention = torch.tensor([[1] * len(ids) + [0] * p for ids, p in zip(sequences, pad)])
        loss = model(input_ids=input_ids, attention_mask=attention, labels=label_ids).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % eval_every == 0 or step == steps:
            row = {"step": step, "loss": float(loss.detach()), "seconds": round(time.time() - start, 1),
                   "stated": letter_accuracy(model, tokenizer, 7, True, eval_questions),
                   "not_stated": letter_accuracy(model, tokenizer, 8, False, eval_questions // 2)}  # fmt: skip
            log(json.dumps(row))
            history.append(row)
    return history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=96, help="held-out questions per evaluation (with the fact)")
    parser.add_argument("--train-steps", type=int, default=0, help="LoRA steps on questions that state the fact")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer = load_smollm2()
    result = {"zero_shot": {"stated": letter_accuracy(model, tokenizer, 7, True, args.questions),
                            "not_stated": letter_accuracy(model, tokenizer, 8, False, args.questions)}}  # fmt: skip
    print("zero-shot:", json.dumps(result["zero_shot"]))
    if args.train_steps:
        history = train_stated(model, tokenizer, args.train_steps, args.eval_every, args.questions, print)
        result["lora_on_stated"] = history
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

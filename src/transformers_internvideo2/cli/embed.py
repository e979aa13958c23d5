# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 embed`: video features of many files to one output, through the batch engine
(:mod:`transformers_internvideo2.tasks.batch`): bad videos skipped and named, results kept as they are computed,
`--resume`, atomic output. Vision folders give the backbone's `pooler_output`; stage-2 video-text folders the
projected, L2-normalised `video_embeds` and the raw `pooler_output`; with an audio-video-text model, `--modality audio`
gives `audio_embeds` (the sound of each file, or audio files) and `--modality audio_video` the fused
`audio_video_embeds` (:mod:`transformers_internvideo2.tasks.modalities`)."""

from __future__ import annotations

import argparse
import sys

from ..tasks.batch import BatchOutput, prepare_output, run_batch
from ..tasks.inference import collect_video_paths, load_batch_job
from ..tasks.modalities import add_modality_argument, media_extensions, refuse_audio_files_for_audio_video
from .common import (
    add_batch_arguments,
    add_engine_arguments,
    add_runtime_arguments,
    default_model,
    positive_int,
    run_on_ray,
)


FORMATS = (".safetensors", ".parquet", ".jsonl")


def add_parser(commands) -> None:
    embed = commands.add_parser(
        "embed",
        help="write video embeddings to a .safetensors, .parquet or .jsonl file",
        description="Vision folders (classifier, backbone, student): the attention-pooled `pooler_output` of the "
        "backbone. Video-text (stage-2) folders: projected, L2-normalised `video_embeds` and `pooler_output`; "
        "audio-video-text folders with --modality audio: `audio_embeds` and `pooler_output` (mean BEATs token), with "
        "--modality audio_video: `audio_video_embeds`. The output records the modality. Exit codes: 0 all done, 1 "
        "failed, 2 bad arguments, 3 done but some videos skipped, 130 interrupted.",
    )
    embed.add_argument("--model", default=None,
                       help="converted folder or Hub id (default: the bundled shapes-world video-text model; with "
                       "--modality audio|audio_video the bundled audio-video-text one)")
    embed.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER",
                       help="video files and/or folders of videos (with --modality audio: audio files too, e.g. wav, "
                       "flac, mp3)")  # fmt: skip
    add_modality_argument(embed, "embedded")
    embed.add_argument("--output", required=True, metavar="FILE",
                       help="output file; the format follows the extension: .safetensors (one (N, D) tensor per "
                       "feature, names in the metadata), .parquet (one row per video) or .jsonl")  # fmt: skip
    embed.add_argument("--num-frames", type=positive_int, default=None, help="frames per video (default: the processor's)")
    add_batch_arguments(embed)
    add_runtime_arguments(embed)
    add_engine_arguments(embed)
    embed.set_defaults(handler=run)


def _load_job(args: argparse.Namespace):
    return load_batch_job("embed", args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames,
                          modality=args.modality, video_backend=args.video_backend)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    videos = collect_video_paths(args.videos, media_extensions(args.modality))  # fail on a bad path before loading
    if args.modality == "audio_video":
        refuse_audio_files_for_audio_video(videos)
    if args.engine == "ray":
        if args.modality != "video":  # the Ray engine's jobs read frames only
            raise ValueError(f"--engine ray embeds video only; run --modality {args.modality} with --engine local "
                             "(the default).")  # fmt: skip
        default_model(args, "shapes-video-text")
        return run_on_ray(args, "embed", videos)
    prepare_output(args.output, FORMATS, overwrite=args.overwrite, resume=args.resume)  # before any work
    default_model(args, "shapes-video-text" if args.modality == "video" else "shapes-audio-video-text")
    job = _load_job(args)
    header = {"num_frames": job.num_frames, "feature": job.feature, "modality": args.modality}
    output = BatchOutput(args.output, vector_fields=job.vector_fields, settings=job.settings, header=header,
                         formats=FORMATS, overwrite=args.overwrite, resume=args.resume)  # fmt: skip
    try:
        summary = run_batch(videos, job.prepare, job.compute, output, batch_size=args.batch_size,
                            on_error=args.on_error, progress=not args.no_progress, description="embedding",
                            num_workers=args.num_workers)
    except KeyboardInterrupt:
        print(f"internvideo2 embed: results so far are kept in {output.partial}; rerun with --resume to continue",
              file=sys.stderr)  # fmt: skip
        raise
    widths = ", ".join(f"{name} ({summary.written}, {job.widths.get(name, '?')})" for name in job.vector_fields)
    what = {"video": f"video(s) x {job.num_frames} frames", "audio": "audio track(s) / audio file(s)",
            "audio_video": f"video(s) x {job.num_frames} frames + audio track(s)"}[args.modality]  # fmt: skip
    print(
        f"encoded {summary.computed} {what}: {widths} -> "
        f"{summary.output} (decode + preprocess {summary.prepare_seconds:.2f} s, forward "
        f"{summary.compute_seconds:.2f} s)"
    )
    for name in getattr(job, "no_audio_track", ()):
        print(f"note: {name} has no audio track: its audio embedding encodes all-zero audio features (as in the "
              "original InternVideo2), not its content")  # fmt: skip
    print(summary.line("embedded"), file=sys.stderr)
    return summary.exit_code

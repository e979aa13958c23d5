"""Shared by the curation tests: shapes-world videos with known shots (and sound), and a tiny randomly initialised
Whisper speech-recognition pipeline (real Transformers ASR plumbing; its transcripts are noise, since no trained ASR
model is available offline)."""

import json

import numpy as np

from transformers_internvideo2.shapes_world.generator import render_audio, render_clip, sample_clip_spec, write_mp4


def shapes_video(path, seeds, frames_per_shot, fps=8, size=(64, 96), sound=True, backgrounds=None):
    """One video of shapes-world shots joined by hard cuts; returns (path, [(first, last) frames of each shot],
    specs). `backgrounds`: cycled over the shots instead of the world's own draw."""
    import dataclasses

    specs = [sample_clip_spec(seed, num_frames=n, height=size[0], width=size[1]) for seed, n in zip(seeds, frames_per_shot)]
    if backgrounds is not None:
        specs = [dataclasses.replace(s, background=backgrounds[i % len(backgrounds)]) for i, s in enumerate(specs)]
    frames = np.concatenate([render_clip(spec) for spec in specs])
    audio = np.concatenate([render_audio(spec, fps=fps) for spec in specs]) if sound else None
    edges = np.cumsum([0, *frames_per_shot])
    write_mp4(frames, path, fps=fps, audio=audio)
    return str(path), [(int(a), int(b) - 1) for a, b in zip(edges, edges[1:])], specs


def tiny_whisper_pipeline(workdir):
    """An `automatic-speech-recognition` pipeline around a 2-layer random Whisper with a byte-level tokenizer."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
        pipeline,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: index for index, char in enumerate(bytes_to_unicode().values())}
    for special in ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
                    "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"):  # fmt: skip
        vocab[special] = len(vocab)
    (workdir / "vocab.json").write_text(json.dumps(vocab))
    (workdir / "merges.txt").write_text("#version: 0.2\n")
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(str(workdir / "vocab.json"), str(workdir / "merges.txt"), unk_token=end,
                                 bos_token=end, eos_token=end, pad_token=end)  # fmt: skip
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                           max_target_positions=64, decoder_start_token_id=vocab["<|startoftranscript|>"],
                           eos_token_id=vocab[end], pad_token_id=vocab[end], bos_token_id=vocab[end],
                           suppress_tokens=[], begin_suppress_tokens=[])  # fmt: skip
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(decoder_start_token_id=config.decoder_start_token_id,
                                               eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
                                               max_new_tokens=6, no_timestamps_token_id=vocab["<|notimestamps|>"])  # fmt: skip
    return pipeline("automatic-speech-recognition", model=model, tokenizer=tokenizer,
                    feature_extractor=WhisperFeatureExtractor(), device="cpu")  # fmt: skip



# two of the shapes world's backgrounds, alternated between consecutive shots so that every cut changes the scene
# (the world's own backgrounds are all dark greys: a cut between two of its clips is subtle, see docs/data_pipeline.md)
CUT_BACKGROUNDS = ((20, 20, 20), (70, 70, 70))

"""Per-clip captions: the bundled shapes chat model as video captioner, a Transformers ASR pipeline (a tiny random
Whisper: the plumbing only), SmolLM2 fusion with the documented prompt, per-step caches that resume, and the JSON
lines the stage-2 data loader reads (clip spans sampled inside the span)."""

import json

import numpy as np
import pytest

from transformers_internvideo2.curation.captions import (
    FUSION_PROMPT,
    AsrTranscriber,
    ChatVideoCaptioner,
    LanguageModelFuser,
    StepCache,
    caption_clips,
    clip_audio,
    clip_frames,
    training_record,
    write_training_jsonl,
)
from transformers_internvideo2.curation.clips import Clip

from curation_helpers import shapes_video, tiny_whisper_pipeline
from offline_assets import requires_smollm2


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    sound, shots, specs = shapes_video(folder / "sound.mp4", seeds=[11, 12], frames_per_shot=[24, 32])
    silent, silent_shots, _ = shapes_video(folder / "silent.mp4", seeds=[13], frames_per_shot=[24], sound=False)
    clips = [Clip(f"{sound}#{i}", sound, a / 8, (b + 1) / 8, i, 0.0, a, b) for i, (a, b) in enumerate(shots)]
    clips.append(Clip(f"{silent}#0", silent, 0.0, 3.0, 0, 0.0, 0, 23))
    return clips, specs


def test_clip_frames_and_audio_stay_inside_the_clip(videos):
    clips, specs = videos
    frames = clip_frames(clips[1], 8)
    assert frames.shape == (8, 64, 96, 3)
    from transformers_internvideo2.shapes_world.generator import render_clip

    rendered = render_clip(specs[1]).astype(int)  # the second shot's frames, not the first's
    assert np.abs(frames[0].astype(int) - rendered[2]).mean() < 4  # segment middles of 32 frames: 2, 6, ...
    samples = clip_audio(clips[1])
    assert samples.dtype == np.float32 and len(samples) == 4 * 16000
    assert clip_audio(clips[2]) is None  # no audio track


def test_step_cache_resumes_and_refuses_garbage(tmp_path):
    path = tmp_path / "asr.jsonl"
    cache = StepCache(path)
    cache.put("a#0", "hello")
    cache.put("a#1", "")
    with open(path, "a") as handle:
        handle.write('{"clip_id": "a#2", "val')  # a run killed mid-write
    reloaded = StepCache(path)
    assert reloaded.values == {"a#0": "hello", "a#1": ""} and "a#2" not in reloaded
    path.write_text('not json\n{"clip_id": "x", "value": "y"}\n')
    with pytest.raises(ValueError, match="not a cache entry"):
        StepCache(path)


class Counting:
    """Counts the calls of a real component (to see what the caches skip)."""

    def __init__(self, component):
        self.component, self.calls = component, 0

    def __call__(self, *args):
        self.calls += 1
        return self.component(*args)


@pytest.mark.slow  # loads the bundled chat model and SmolLM2 and generates with both (about a minute on 2 cores)
@requires_smollm2
def test_captions_with_the_bundled_chat_model_whisper_and_smollm2(videos, tmp_path):
    from transformers_internvideo2.shapes_world.chat_bundle import load_bundled_chat

    clips, specs = videos
    model, processor = load_bundled_chat()
    video = Counting(ChatVideoCaptioner(model, processor, prompt="What shape is it?", max_new_tokens=6))
    asr = Counting(AsrTranscriber(tiny_whisper_pipeline(tmp_path)))
    fuser = Counting(LanguageModelFuser.from_smollm2(max_new_tokens=12))
    audio = Counting(lambda clip: "" if clip_audio(clip) is None else "a hum")  # a stand-in for an audio captioner
    cache = tmp_path / "cache"
    results = caption_clips(clips, video, audio_captioner=audio, asr=asr, fuser=fuser, cache_dir=cache, progress=False)
    # the bundled model names the shape of each shot (it was trained on exactly this world)
    assert specs[0].shape in results[0]["video_caption"] and specs[1].shape in results[1]["video_caption"]
    assert results[0]["asr"] and results[2]["asr"] == ""  # random Whisper says something; a silent clip says nothing
    assert results[0]["audio_caption"] == "a hum"
    assert fuser.calls == 2 and results[0]["caption"] and results[0]["caption"] != results[0]["video_caption"]
    assert results[2]["caption"] == results[2]["video_caption"]  # nothing heard or said: nothing to fuse
    # resumable: a second run computes nothing; a lost cache entry is recomputed alone
    again = caption_clips(clips, video, audio_captioner=audio, asr=asr, fuser=fuser, cache_dir=cache, progress=False)
    assert again == results and (video.calls, asr.calls, fuser.calls) == (3, 3, 2)
    lines = (cache / "video_caption.jsonl").read_text().splitlines()
    (cache / "video_caption.jsonl").write_text("\n".join(lines[:2]) + "\n")
    caption_clips(clips, video, audio_captioner=audio, asr=asr, fuser=fuser, cache_dir=cache, progress=False)
    assert (video.calls, asr.calls, fuser.calls) == (4, 3, 2)


@requires_smollm2
def test_fusion_prompt_states_every_field():
    from transformers_internvideo2.assets import load_smollm2

    model, tokenizer = load_smollm2()
    fuser = LanguageModelFuser(model, tokenizer)
    prompt = fuser.build_prompt("a red circle moves left", "", "hello there")
    assert "What is seen: a red circle moves left" in prompt and "What is heard: (none)" in prompt
    assert "What is said: hello there" in prompt and prompt.rstrip().endswith("assistant")  # chat template applied
    assert FUSION_PROMPT.count("{") == 3


def test_training_records_are_read_by_the_stage2_data_loader(videos, tmp_path):
    from transformers_internvideo2.training.data import VideoCollator, load_video_table

    clips, _ = videos
    captions = {"caption": "c", "video_caption": "v", "audio_caption": "", "asr": ""}
    records = [training_record(clip, captions) for clip in clips[:2]]
    records.append(training_record(clips[2], captions, cut_path=clips[2].video))
    assert set(records[0]) >= {"video", "start", "end", "caption", "video_caption", "audio_caption", "asr"}
    assert "start" not in records[2] and records[2]["source_start"] == 0.0
    path = write_training_jsonl(records[:2], tmp_path / "train.jsonl")
    assert json.loads(path.read_text().splitlines()[1])["start"] == 3.0
    table = load_video_table(str(path), label_column=None, caption_column="caption")

    class Identity:  # frames as they were decoded, to see which frames the span selected
        num_frames = 4

        def __call__(self, videos, **kwargs):
            import torch

            return {"pixel_values": torch.stack([torch.from_numpy(np.asarray(v)) for v in videos])}

    collator = VideoCollator(Identity(), mode="val", label_column=None, caption_column="caption",
                             start_column="start", end_column="end")  # fmt: skip
    batch = collator([table[0], table[1]])
    second_shot = clip_frames(clips[1], 4)
    np.testing.assert_array_equal(batch["pixel_values"][1].numpy(), second_shot)
    with pytest.raises(ValueError, match="give both"):
        VideoCollator(Identity(), start_column="start")

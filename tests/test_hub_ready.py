"""Hub-ready folders: converted folders and the export of a bundled model (`export_bundled`; the package's own
bundled folders hold no code) carry their code, a complete `auto_map` (and the zero-shot pipeline in
`custom_pipelines`), a model card with Hub metadata and both usage routes; `--push-to-hub` uploads the finished folder
through `huggingface_hub.HfApi` (a recording fake here: no network); the exported bundles load with
`trust_remote_code=True` in a process where the package cannot be imported, with the package's outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
import transformers
from transformers import AutoModel, pipeline

import transformers_internvideo2  # noqa: F401  (registers the Auto classes and the zero-shot task)
from transformers_internvideo2 import cli
from transformers_internvideo2.models.remote_code import flat_code_files
from transformers_internvideo2.shapes_world.bundled import (
    BUNDLED_AUDIO_VIDEO_TEXT,
    BUNDLED_CHAT,
    BUNDLED_CLASSIFIER,
    BUNDLED_DIR,
    BUNDLED_VIDEO_TEXT,
    bundled_model_dir,
    export_bundled,
    load_bundled_audio_video_text,
    load_bundled_classifier,
    load_bundled_video_text,
)


REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLES = {
    BUNDLED_CLASSIFIER: ("video-classification", "video_preprocessor_config.json", "AutoVideoProcessor"),
    BUNDLED_VIDEO_TEXT: ("zero-shot-video-classification", "processor_config.json", "AutoProcessor"),
    BUNDLED_AUDIO_VIDEO_TEXT: ("zero-shot-audio-classification", "processor_config.json", "AutoProcessor"),
}


def check_card(folder: Path, pipeline_tag: str | None, base_model=None) -> ModelCard:
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["license_name"] and data["license_link"].startswith("https://")
    assert data["library_name"] == "transformers" and data.get("pipeline_tag") == pipeline_tag
    assert {"internvideo2", "custom_code"} <= set(data["tags"])
    if base_model is not None:
        assert data["base_model"] == base_model
    text = card.text
    assert "pip install transformers-internvideo2" in text
    assert "import transformers_internvideo2" in text and "trust_remote_code=True" in text
    assert "max |diff|" in text  # the measured parity / verification
    return card


# ------------------------------------------------------------------------------------------------------------------
# bundled folders: the package data holds no code; `export_bundled` writes the Hub-ready folder
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`{name: Hub-ready folder}` written by `export_bundled` (once for the module)."""
    root = tmp_path_factory.mktemp("exported")
    return {name: export_bundled(name, root / name) for name in BUNDLES}


def test_bundled_folders_hold_no_code_and_load_without_trust_remote_code():
    for folder in sorted(BUNDLED_DIR.iterdir()):
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            assert sorted(path.name for path in folder.rglob("*.py")) == [], f"code copies in {folder}"
            for path in folder.glob("*.json"):
                text = path.read_text(encoding="utf-8")
                assert '"auto_map"' not in text and '"custom_pipelines"' not in text, path
    for name, (_, _, processor_auto) in BUNDLES.items():
        folder = bundled_model_dir(name)
        model = AutoModel.from_pretrained(folder)  # the package's registration, no trust_remote_code needed
        assert type(model).__module__.startswith("transformers_internvideo2.models.")
        processor = getattr(transformers, processor_auto).from_pretrained(folder)
        assert type(processor).__module__.startswith("transformers_internvideo2.models.")


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_exported_folder_carries_current_code_auto_map_and_card(name, exported):
    folder = exported[name]
    pipeline_tag, processor_file, processor_auto = BUNDLES[name]
    config = json.loads((folder / "config.json").read_text())
    for target in config["auto_map"].values():
        assert (folder / f"{target.rpartition('.')[0]}.py").is_file(), target
    processor_map = json.loads((folder / processor_file).read_text())["auto_map"]
    assert list(processor_map) == [processor_auto]
    assert (folder / f"{processor_map[processor_auto].rpartition('.')[0]}.py").is_file()
    if name == BUNDLED_VIDEO_TEXT:
        entry = config["custom_pipelines"]["zero-shot-video-classification"]
        assert entry["impl"] == "pipelines.ZeroShotVideoClassificationPipeline" and (folder / "pipelines.py").is_file()
    check_card(folder, pipeline_tag)
    bundled = bundled_model_dir(name)
    for path in bundled.iterdir():  # weights byte for byte; metrics as recorded
        if path.suffix == ".safetensors" or path.name == "metrics.json":
            assert (folder / path.name).read_bytes() == path.read_bytes(), path.name
    # the code is the package's current source (flattened), nothing more
    load = load_bundled_classifier if name == BUNDLED_CLASSIFIER else load_bundled_video_text
    model, processor = load()
    modules = {module for module, _ in model._remote_code_modules().values()}
    modules |= {module for module, _ in processor._remote_code_modules().values()}
    modules |= model._custom_pipeline_modules()[1]
    expected = flat_code_files(sorted(modules))
    stored = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.py")}
    differing = sorted(file for file in set(stored) | set(expected) if stored.get(file) != expected.get(file))
    assert differing == [], f"the export's code is not the package's current source: {differing}"


def test_export_refuses_the_package_folder_and_a_non_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="inside the package"):
        export_bundled(BUNDLED_CLASSIFIER, BUNDLED_DIR / "exported")
    with pytest.raises(ValueError, match="expected one of"):
        export_bundled(BUNDLED_CHAT, tmp_path / "chat")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        export_bundled(BUNDLED_CLASSIFIER, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_refresh_script_keeps_weights_strips_code_and_is_idempotent(tmp_path, exported):
    import shutil

    for name in BUNDLES:  # the committed folder with what a recipe's save_pretrained adds: code files and auto_map
        shutil.copytree(bundled_model_dir(name), tmp_path / name)
        for path in exported[name].glob("*.py"):
            shutil.copyfile(path, tmp_path / name / path.name)
        for path in exported[name].glob("*.json"):
            if "auto_map" not in path.read_text():
                continue
            exported_data = json.loads(path.read_text())
            data = json.loads((tmp_path / name / path.name).read_text())
            for entry, exported_entry in [(data, exported_data)] + [
                (data[key], value) for key, value in exported_data.items() if isinstance(value, dict) and key in data
            ]:
                code_keys = ("auto_map", "custom_pipelines")
                entry.update({key: exported_entry[key] for key in code_keys if key in exported_entry})
            (tmp_path / name / path.name).write_text(json.dumps(data, indent=2))
        assert list((tmp_path / name).glob("*.py")) and "auto_map" in (tmp_path / name / "config.json").read_text()
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "refresh_bundled_metadata.py"),
                             *(str(tmp_path / name) for name in BUNDLES)],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for name in BUNDLES:  # the script turns an export back into the committed package folder, byte for byte
        bundled = bundled_model_dir(name)
        written = {path.name: path.read_bytes() for path in (tmp_path / name).iterdir() if path.is_file()}
        committed = {path.name: path.read_bytes() for path in bundled.iterdir() if path.is_file()}
        assert set(written) == set(committed), sorted(set(written) ^ set(committed))
        differing = sorted(file for file in committed if written[file] != committed[file])
        assert differing == [], f"the committed bundle {name} is not what the script writes: {differing}"


CHILD_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    sys.path[:] = [
        p for p in sys.path if not os.path.isdir(os.path.join(p or os.getcwd(), "transformers_internvideo2"))
    ]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
    assert importlib.util.find_spec("transformers_internvideo2") is None, "transformers_internvideo2 is importable"

    import numpy as np
    import torch
    from transformers import AutoModelForPreTraining, AutoModelForVideoClassification, AutoProcessor
    from transformers import AutoVideoProcessor, pipeline

    classifier_dir, video_text_dir, frames_path, audio_video_text_dir, waveform_path = sys.argv[1:6]
    frames = np.load(frames_path)
    model = AutoModelForVideoClassification.from_pretrained(classifier_dir, trust_remote_code=True).eval()
    processor = AutoVideoProcessor.from_pretrained(classifier_dir, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**processor(frames, return_tensors="pt")).logits
    zero_shot = pipeline("zero-shot-video-classification", model=video_text_dir, trust_remote_code=True)
    scores = zero_shot(frames, candidate_labels=["moves left", "moves right", "moves up", "moves down"])
    audio_model = AutoModelForPreTraining.from_pretrained(audio_video_text_dir, trust_remote_code=True).eval()
    audio_processor = AutoProcessor.from_pretrained(audio_video_text_dir, trust_remote_code=True)
    features = audio_processor(audio=np.load(waveform_path), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        audio_embeds = audio_model.get_audio_features(features["input_features"]).pooler_output
    print("REPORT " + json.dumps({"logits": logits.tolist(), "zero_shot": scores, "audio": audio_embeds.tolist(),
                                  "classes": [type(model).__module__, type(zero_shot).__module__,
                                              type(audio_model).__module__]}))
    """
)


def test_exported_bundles_load_with_trust_remote_code_without_the_package(tmp_path, exported):
    frames = np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    model, processor = load_bundled_classifier()
    with torch.no_grad():
        expected_logits = model(**processor(frames, return_tensors="pt")).logits
    labels = ["moves left", "moves right", "moves up", "moves down"]
    expected_scores = pipeline("zero-shot-video-classification", model=str(bundled_model_dir(BUNDLED_VIDEO_TEXT)))(
        frames, candidate_labels=labels
    )

    waveform = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32) * 0.3  # 1 s of a 440 Hz hum
    np.save(tmp_path / "waveform.npy", waveform)
    audio_model, audio_processor = load_bundled_audio_video_text()
    with torch.no_grad():
        features = audio_processor(audio=waveform, sampling_rate=16000, return_tensors="pt")["input_features"]
        expected_audio = audio_model.get_audio_features(features).pooler_output

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    command = [sys.executable, "-I", str(script), str(exported[BUNDLED_CLASSIFIER]), str(exported[BUNDLED_VIDEO_TEXT]),
               str(tmp_path / "frames.npy"), str(exported[BUNDLED_AUDIO_VIDEO_TEXT]),
               str(tmp_path / "waveform.npy")]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])
    assert all(module.startswith("transformers_modules.") for module in report["classes"]), report["classes"]
    # Not bit-equal: the same fp32 math in another process may take another kernel path (buffer alignment decides
    # oneDNN's vector tails), which moved the last bit of these logits once in CI.
    torch.testing.assert_close(torch.tensor(report["logits"]), expected_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(report["audio"]), expected_audio, atol=1e-6, rtol=0)
    assert [r["label"] for r in report["zero_shot"]] == [r["label"] for r in expected_scores]
    np.testing.assert_allclose([r["score"] for r in report["zero_shot"]], [r["score"] for r in expected_scores],
                               rtol=0, atol=1e-6)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------------
# converters: cards and --push-to-hub (a recording fake of HfApi)
# ------------------------------------------------------------------------------------------------------------------
class FakeHubApi:
    """Stands in for `huggingface_hub.HfApi`: records the repository, every uploaded file and the card metadata."""

    uploads: list[dict] = []

    def __init__(self, token=None, **kwargs):
        self.token = token

    def create_repo(self, repo_id, repo_type="model", exist_ok=False, private=None, **kwargs):
        assert exist_ok
        return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"someone/{repo_id}")

    def upload_folder(self, repo_id, folder_path, repo_type="model", commit_message=None, ignore_patterns=None, **_):
        folder = Path(folder_path)
        files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
        card = ModelCard.load(folder / "README.md").data.to_dict()
        self.uploads.append({"repo_id": repo_id, "files": files, "card": card, "message": commit_message})
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/0")


@pytest.fixture()
def fake_hub(monkeypatch):
    from transformers_internvideo2.models import model_card

    FakeHubApi.uploads = []
    monkeypatch.setattr(model_card, "HfApi", FakeHubApi)  # what push_folder_to_hub calls
    return FakeHubApi.uploads


def _fixture(name: str) -> Path:
    shared = Path(os.environ.get("INTERNVIDEO2_SHARED_DIR", REPO_ROOT.parent / "shared"))
    folder = shared / "fixtures" / "original" / name
    if not folder.is_dir():
        pytest.skip(f"fixture {name} not found")
    return folder


def test_vision_converter_card_and_push(fake_hub, tmp_path):
    folder = _fixture("sm01_cls_joint_t1")
    kwargs = tmp_path / "kwargs.json"
    kwargs.write_text(json.dumps(json.loads((folder / "case.json").read_text())["constructor_kwargs"]))
    output = tmp_path / "converted"
    code = cli.main(["convert", "--checkpoint", str(folder / "checkpoint.pth"), "--output", str(output),
                     "--original-kwargs", str(kwargs), "--push-to-hub", "me/sm01", "--base-model", "org/source"])  # fmt: skip
    assert code == 0
    check_card(output, "video-classification", base_model="org/source")
    (upload,) = fake_hub
    assert upload["repo_id"] == "me/sm01" and upload["card"]["pipeline_tag"] == "video-classification"
    assert {"config.json", "model.safetensors", "README.md", "video_preprocessor_config.json",
            "modeling_internvideo2_vision.py", "video_processing_internvideo2.py"} <= set(upload["files"])  # fmt: skip


def test_stage2_converter_card_custom_pipeline_and_push(fake_hub, tmp_path):
    from test_video_text_parity import _mm03_model

    from transformers_internvideo2.conversion.internvideo2_video_text import convert_and_save_stage2

    folder, model, _ = _mm03_model()
    output = tmp_path / "stage2"
    convert_and_save_stage2(folder / "checkpoint.pth", output, config=model.config, save_processor=False,
                            base_model="org/stage2", push_to_hub="me/stage2")  # fmt: skip
    check_card(output, "zero-shot-video-classification", base_model="org/stage2")
    config = json.loads((output / "config.json").read_text())
    assert config["custom_pipelines"]["zero-shot-video-classification"]["impl"].startswith("pipelines.")
    (upload,) = fake_hub
    assert upload["repo_id"] == "me/stage2" and upload["card"]["base_model"] == "org/stage2"
    assert {"README.md", "config.json", "model.safetensors", "pipelines.py", "prompts.py",
            "modeling_internvideo2_video_text.py"} <= set(upload["files"])  # fmt: skip


def test_chat_converter_card_and_push(fake_hub, tmp_path):
    from safetensors.torch import save_file
    from test_conversion_chat import chat_config, old_peft_names, original_vision_and_bridge, peft_mistral

    original = original_vision_and_bridge(torch.Generator().manual_seed(1))
    original.update(old_peft_names(peft_mistral(seed=2)))
    (tmp_path / "original").mkdir()
    save_file(original, tmp_path / "original" / "model.safetensors")
    from transformers_internvideo2.conversion.internvideo2_chat import convert_chat_checkpoint

    convert_chat_checkpoint(tmp_path / "original", tmp_path / "chat", config=chat_config(), lora_alpha=8.0,
                            push_to_hub="me/chat")  # fmt: skip
    check_card(tmp_path / "chat", "video-text-to-text", base_model="OpenGVLab/InternVideo2-Chat-8B")
    (upload,) = fake_hub
    assert upload["repo_id"] == "me/chat" and upload["card"]["pipeline_tag"] == "video-text-to-text"
    assert {"README.md", "config.json", "conversion_report.json", "modeling_internvideo2_chat.py"} <= set(
        upload["files"]
    )

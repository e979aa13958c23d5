"""The BEATs family through the Auto classes: registered in-process (`import transformers_internvideo2`), and as
`trust_remote_code` code in a saved folder that loads in a fresh Python process where the package cannot be imported
(model, config and the Kaldi-fbank feature extractor, which is a `SequenceFeatureExtractor`)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from transformers_internvideo2 import BeatsConfig, BeatsFeatureExtractor, BeatsModel


CODE_FILES = (
    "configuration_beats.py", "modeling_beats.py", "feature_extraction_beats.py", "audio_decoding.py",
    "remote_code.py",
)  # fmt: skip
MODEL_AUTO_MAP = {"AutoConfig": "configuration_beats.BeatsConfig", "AutoModel": "modeling_beats.BeatsModel"}
EXTRACTOR_AUTO_MAP = {"AutoFeatureExtractor": "feature_extraction_beats.BeatsFeatureExtractor"}


def tiny_config() -> BeatsConfig:
    return BeatsConfig(
        num_mel_bins=32, patch_embed_dim=24, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_buckets=32,
        max_distance=64,
    )  # fmt: skip


CHILD_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    sys.path[:] = [
        p for p in sys.path if not os.path.isdir(os.path.join(p or os.getcwd(), "transformers_internvideo2"))
    ]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
    assert importlib.util.find_spec("transformers_internvideo2") is None, "transformers_internvideo2 is importable"

    import torch
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    folder, resave_dir = sys.argv[1:3]
    data = torch.load(os.path.join(folder, "expected.pt"))
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    features = extractor(data["waveform"].numpy(), sampling_rate=8000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        output = model(features)
    report = {
        "modules": [type(config).__module__, type(model).__module__, type(extractor).__module__],
        "classes": [type(config).__name__, type(model).__name__, type(extractor).__name__],
        "features_diff": (features - data["input_features"]).abs().max().item(),
        "tokens_diff": (output.last_hidden_state - data["last_hidden_state"]).abs().max().item(),
        "pooled_diff": (output.pooler_output - data["pooler_output"]).abs().max().item(),
    }
    model.save_pretrained(resave_dir)
    extractor.save_pretrained(resave_dir)
    report["resaved_model_auto_map"] = json.load(open(os.path.join(resave_dir, "config.json")))["auto_map"]
    report["resaved_extractor_auto_map"] = json.load(
        open(os.path.join(resave_dir, "preprocessor_config.json"))
    )["auto_map"]
    report["resaved_files"] = sorted(os.listdir(resave_dir))
    print("REPORT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beats_remote_code")
    torch.manual_seed(0)
    model = BeatsModel(tiny_config()).eval()
    # an 8 kHz clip: the child must resample (the port of torchaudio's resampler travels in audio_decoding.py)
    extractor = BeatsFeatureExtractor(num_mel_bins=32, max_length_seconds=0.7)
    waveform = torch.sin(torch.arange(4000) * (2 * torch.pi * 440 / 8000)) * 0.3 + 0.01 * torch.randn(4000)
    features = extractor(waveform.numpy(), sampling_rate=8000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        output = model(features)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    torch.save(
        {"waveform": waveform, "input_features": features, "last_hidden_state": output.last_hidden_state,
         "pooler_output": output.pooler_output},
        folder / "expected.pt",
    )  # fmt: skip
    return folder


def test_auto_classes_resolve_in_process(exported):
    assert type(AutoConfig.from_pretrained(exported)) is BeatsConfig
    assert type(AutoModel.from_pretrained(exported)) is BeatsModel
    extractor = AutoFeatureExtractor.from_pretrained(exported)
    assert type(extractor) is BeatsFeatureExtractor
    assert extractor.max_length_seconds == 0.7 and extractor.num_mel_bins == 32 and extractor.num_frames == 68


def test_saved_folder_has_auto_maps_and_code(exported):
    assert json.loads((exported / "config.json").read_text())["auto_map"] == MODEL_AUTO_MAP
    assert json.loads((exported / "preprocessor_config.json").read_text())["auto_map"] == EXTRACTOR_AUTO_MAP
    for name in CODE_FILES:
        assert (exported / name).is_file(), f"{name} not copied"
        for node in ast.walk(ast.parse((exported / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and (exported / f"{node.module}.py").is_file(), f"{name}: .{node.module}"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for module in [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]:
                    assert module.split(".")[0] != "transformers_internvideo2", f"{name} imports the package"
                    assert importlib.util.find_spec(module.split(".")[0]) is not None, f"{name}: {module}"


def test_feature_extractor_round_trip_keeps_settings(tmp_path):
    extractor = BeatsFeatureExtractor(padding_mode="fbank", crop_mode="random", max_length_seconds=3.0)
    extractor.save_pretrained(tmp_path)
    loaded = BeatsFeatureExtractor.from_pretrained(tmp_path)
    assert (loaded.padding_mode, loaded.crop_mode, loaded.num_frames) == ("fbank", "random", 298)
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    np.testing.assert_array_equal(
        loaded(waveform, sampling_rate=16000, return_tensors="np")["input_features"],
        extractor(waveform, sampling_rate=16000, return_tensors="np")["input_features"],
    )


def test_loads_with_trust_remote_code_without_the_package(exported, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    command = [sys.executable, "-I", str(script), str(exported), str(tmp_path / "resaved")]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])
    assert report["classes"] == ["BeatsConfig", "BeatsModel", "BeatsFeatureExtractor"]
    assert all(module.startswith("transformers_modules.") for module in report["modules"]), report["modules"]
    # float32 rounding at most, not bit equality: another process may take another FFT / kernel path
    assert report["features_diff"] <= 1e-6, report
    assert report["tokens_diff"] <= 1e-6 and report["pooled_diff"] <= 1e-6, report
    assert report["resaved_model_auto_map"] == MODEL_AUTO_MAP
    assert report["resaved_extractor_auto_map"] == EXTRACTOR_AUTO_MAP
    assert set(CODE_FILES) <= set(report["resaved_files"])

"""`trust_remote_code` export of the vision models: a saved checkpoint carries the modeling code and a complete
`auto_map`, and loads in a fresh Python process in which `transformers_internvideo2` cannot be imported."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from transformers_internvideo2 import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionConfig,
)


CODE_FILES = ("configuration_internvideo2_vision.py", "modeling_internvideo2_vision.py", "remote_code.py")


def tiny_config(**overrides) -> InternVideo2VisionConfig:
    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=28,
        patch_size=14,
        num_frames=4,
        pooler_output_size=24,
        pooler_num_attention_heads=4,
        num_labels=3,
    )
    kwargs.update(overrides)
    return InternVideo2VisionConfig(**kwargs)


# Runs in the child. It first makes sure the package is NOT importable there, even if it is pip-installed (a path
# entry, or an editable-install finder on sys.meta_path), then loads everything through the Auto classes.
CHILD_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    sys.path[:] = [
        p for p in sys.path if not os.path.isdir(os.path.join(p or os.getcwd(), "transformers_internvideo2"))
    ]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in (getattr(f, "__module__", "") or "")]
    assert importlib.util.find_spec("transformers_internvideo2") is None, "transformers_internvideo2 is importable"

    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification

    classifier_dir, pretraining_dir, resave_dir = sys.argv[1:4]
    data = torch.load(os.path.join(classifier_dir, "expected.pt"))
    report = {}

    config = AutoConfig.from_pretrained(classifier_dir, trust_remote_code=True)
    report["config_module"] = type(config).__module__

    classifier = AutoModelForVideoClassification.from_pretrained(classifier_dir, trust_remote_code=True).eval()
    backbone = AutoModel.from_pretrained(classifier_dir, trust_remote_code=True).eval()
    student = AutoModelForPreTraining.from_pretrained(pretraining_dir, trust_remote_code=True).eval()
    report["classes"] = {name: [type(m).__name__, type(m).__module__] for name, m in
                         (("classifier", classifier), ("backbone", backbone), ("student", student))}
    with torch.no_grad():
        logits = classifier(data["pixel_values"]).logits
        pooled = backbone(data["pixel_values"]).pooler_output
        aligned = student(data["pixel_values"]).clip_aligned
    report["max_abs_diff"] = {
        "logits": (logits - data["logits"]).abs().max().item(),
        "pooler_output": (pooled - data["pooler_output"]).abs().max().item(),
        "clip_aligned": (aligned - data["clip_aligned"]).abs().max().item(),
    }
    # a model loaded from remote code saves a folder that is again complete
    classifier.save_pretrained(resave_dir)
    report["resaved_auto_map"] = json.load(open(os.path.join(resave_dir, "config.json")))["auto_map"]
    report["resaved_files"] = sorted(os.listdir(resave_dir))
    print("REPORT " + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote_code")
    torch.manual_seed(0)
    classifier = InternVideo2ForVideoClassification(tiny_config()).eval()
    student = InternVideo2ForPreTraining(tiny_config(clip_teacher_hidden_size=20, clip_num_return_layers=2)).eval()
    pixel_values = torch.randn(2, 4, 3, 28, 28)
    with torch.no_grad():
        expected = {
            "pixel_values": pixel_values,
            "logits": classifier(pixel_values).logits,
            "pooler_output": classifier.internvideo2(pixel_values).pooler_output,
            "clip_aligned": student(pixel_values).clip_aligned,
        }
    classifier.save_pretrained(root / "classifier")
    student.save_pretrained(root / "pretraining")
    torch.save(expected, root / "classifier" / "expected.pt")
    return root


VISION_AUTO_MAP = {
    "AutoConfig": "configuration_internvideo2_vision.InternVideo2VisionConfig",
    "AutoModel": "modeling_internvideo2_vision.InternVideo2VisionModel",
    "AutoModelForVideoClassification": "modeling_internvideo2_vision.InternVideo2ForVideoClassification",
    "AutoModelForPreTraining": "modeling_internvideo2_vision.InternVideo2ForPreTraining",
}


def test_saved_folder_has_full_auto_map_and_code(exported):
    for folder in ("classifier", "pretraining"):
        path = exported / folder
        assert json.loads((path / "config.json").read_text())["auto_map"] == VISION_AUTO_MAP
        for name in CODE_FILES:
            assert (path / name).is_file(), f"{name} not copied to {folder}"


def test_copied_code_imports_only_siblings_and_installed_packages(exported):
    folder = exported / "classifier"
    for name in CODE_FILES:
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                assert node.level == 1 and node.module, f"{name}: relative import must be of a sibling file"
                assert (folder / f"{node.module}.py").is_file(), f"{name} imports .{node.module}, which is not copied"
                continue
            if isinstance(node, ast.ImportFrom):
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top != "transformers_internvideo2", f"{name} imports the package itself"
                assert importlib.util.find_spec(top) is not None, f"{name} imports {top}, which is not installed"


def test_loads_with_trust_remote_code_without_the_package(exported, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TOKENIZERS_PARALLELISM="false")
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)
    resave = tmp_path / "resaved"
    # -I: isolated mode (no PYTHONPATH, no user site, the script's directory is not put on sys.path); cwd is empty
    command = [sys.executable, "-I", str(script)] + [
        str(exported / "classifier"), str(exported / "pretraining"), str(resave)
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))[7:])

    assert report["config_module"].startswith("transformers_modules.")
    expected_classes = {
        "classifier": "InternVideo2ForVideoClassification",
        "backbone": "InternVideo2VisionModel",
        "student": "InternVideo2ForPreTraining",
    }
    for role, (class_name, module) in report["classes"].items():
        assert class_name == expected_classes[role]
        assert module.startswith("transformers_modules.") and module.endswith(".modeling_internvideo2_vision"), module
    for name, diff in report["max_abs_diff"].items():
        assert diff <= 1e-6, f"{name} differs by {diff} when loaded as remote code"
    assert report["resaved_auto_map"] == VISION_AUTO_MAP
    assert set(CODE_FILES) <= set(report["resaved_files"])


def test_copied_code_runs_bfloat16_inference_next_to_the_package(exported):
    """The copied modeling file registers its own blocked-attention operator under its own module name, so a
    remote-code model and the package's can run side by side in one process, with the same bits."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    folder = exported / "classifier"
    copied_class = get_class_from_dynamic_module(VISION_AUTO_MAP["AutoModelForVideoClassification"], str(folder))
    assert copied_class.__module__ != InternVideo2ForVideoClassification.__module__
    copied = copied_class.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa").eval()
    ours = InternVideo2ForVideoClassification.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa")
    pixel_values = torch.load(folder / "expected.pt")["pixel_values"].to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(copied(pixel_values).logits, ours.eval()(pixel_values).logits)
    operators = [name for name in dir(torch.ops.internvideo2) if name.startswith("query_blocked_attention")]
    assert len(operators) >= 2, operators

"""Execute notebooks/quickstart_video_classification.ipynb end to end (nbclient) with the interpreter running the
tests, so the notebook cannot rot. Its cells assert their own shapes; here we check the printed results too."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "notebooks" / "quickstart_video_classification.ipynb"
KERNEL_NAME = "internvideo2-quickstart-tests"


def _use_private_kernel(tmp_path: Path, monkeypatch, shared_dir: Path) -> None:
    """A kernelspec running `sys.executable` in a private Jupyter data dir; the kernel inherits this environment."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "transformers-internvideo2 tests",
                "language": "python",
            }
        )
    )
    pythonpath = os.pathsep.join(p for p in [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")] if p)
    for key, value in {
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PYTHONPATH": pythonpath,
        "INTERNVIDEO2_SHARED_DIR": str(shared_dir),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        monkeypatch.setenv(key, value)


def test_quickstart_notebook_runs(tmp_path, monkeypatch, shared_dir, sample_video_path):
    _use_private_kernel(tmp_path, monkeypatch, shared_dir)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell (each cell asserts its shapes)

    outputs = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert str(sample_video_path) in outputs  # the real sample video, not the fallback clip
    assert "RANDOM WEIGHTS" in outputs and "MEANINGLESS" in outputs
    assert "InternVideo2ForVideoClassification | InternVideo2VideoProcessor" in outputs
    assert "pixel_values (1, 8, 3, 224, 224)" in outputs
    assert "InternVideo2VisionModel" in outputs
    assert "last_hidden_state (1, 2049, 64)" in outputs and "pooler_output     (1, 64)" in outputs
    for frames, tokens in ((4, 1025), (8, 2049), (16, 4097)):
        assert re.search(rf"frames: +{frames} .* tokens +{tokens} ", outputs), outputs
    # the markdown tells how to load a converted checkpoint instead
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "convert_internvideo2_to_hf.py" in markdown and "from_pretrained(\"internvideo2-1b-k400-f8\")" in markdown

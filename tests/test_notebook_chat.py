"""Executes notebooks/videochat_and_lora.ipynb (chat about a video, LoRA tuning, MVBench harness) with nbclient."""

from offline_assets import requires_smollm2


@requires_smollm2
def test_videochat_notebook_runs(execute_notebook, tmp_path):
    _, outputs = execute_notebook("videochat_and_lora.ipynb")
    assert "assistant:" in outputs and "loss per step:" in outputs and "overall" in outputs
    assert (tmp_path / "lora" / "final" / "adapter_model.safetensors").is_file()

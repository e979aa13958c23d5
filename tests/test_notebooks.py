"""Execute notebooks/quickstart_video_classification.ipynb end to end (nbclient) with the interpreter running the
tests, so the notebook cannot rot. Its cells assert their own shapes; here we check the printed results too."""

from __future__ import annotations

import re

import pytest

from transformers_internvideo2.assets import SAMPLE_VIDEO


def test_quickstart_notebook_runs(execute_notebook):
    notebook, outputs = execute_notebook("quickstart_video_classification.ipynb")
    assert f"video: {SAMPLE_VIDEO} (" in outputs  # the packaged sample clip, decoded for real
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


def test_finetune_from_videofolder_notebook_runs(execute_notebook):
    pytest.importorskip("torchcodec")
    _, outputs = execute_notebook("finetune_from_videofolder.ipynb")
    assert "video cell: VideoDecoder" in outputs  # decoded datasets rows went into the collators as they are
    assert "aligned classes: ['left', 'right', 'up', 'down']" in outputs
    before, after = map(float, re.search(r"validation top-1 before: ([\d.]+)  after: ([\d.]+)", outputs).groups())
    assert after >= 0.9
    assert re.search(r"training loss: [\d.]+ over 12 steps", outputs), outputs
    predicted = re.search(r"predicted: (\[.*\])", outputs).group(1)
    assert predicted.count("'") == 8  # four label names

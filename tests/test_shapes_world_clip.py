"""The shapes-world CLIP step: only the CLIP-stage parts train (vision pooler, temperature, text projection) on top of
the frozen bundled video tower and the frozen SmolLM2 text tower, and zero-shot accuracy and retrieval improve over
the frozen start on held-out clips."""

from __future__ import annotations

import pytest
import torch

from transformers_internvideo2.shapes_world.recipes.clip import ClipStepSettings, build_shapes_clip_model, run


def _smollm2_available():
    from transformers_internvideo2.assets import smollm2_gguf_path

    try:
        smollm2_gguf_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.mark.slow
def test_the_model_is_built_from_the_frozen_sources():
    _smollm2_available()
    settings = ClipStepSettings(text_layers=2)
    model, processor = build_shapes_clip_model(settings)
    from transformers_internvideo2.shapes_world.bundled import load_bundled_video_text

    video_text, _ = load_bundled_video_text()
    for name, tensor in video_text.internvideo2.vision_model.state_dict().items():
        assert torch.equal(model.vision_model.state_dict()[name], tensor), name
    assert model.config.text_config.num_hidden_layers == 2 and model.config.text_tower == "llama"
    ids = processor.tokenize(["a red square moves up"])["input_ids"][0]
    assert ids[0] == 1 and ids[ids > 0][-1] != 2  # <|im_start|> ... no <|im_end|> (add_eos=False, see the recipe)


@pytest.mark.slow
def test_clip_step_improves_zero_shot_over_the_frozen_start(tmp_path):
    _smollm2_available()
    settings = ClipStepSettings(train_clips=240, eval_clips=96, retrieval_clips=20, steps=30, batch_size=16,
                                learning_rate=3e-3, text_layers=2)  # fmt: skip
    frozen_model, _ = build_shapes_clip_model(settings)
    frozen = {name: p.detach().clone() for name, p in frozen_model.named_parameters()
              if not name.startswith(("vision_model.pooler.", "text_projection")) and name != "temperature"}  # fmt: skip
    result = run(settings, tmp_path, log=lambda *_: None)
    metrics = result.metrics
    assert metrics["zero_shot_direction_accuracy_after"] > metrics["zero_shot_direction_accuracy_before"] + 0.15
    assert metrics["t2v_r1_after"] > metrics["chance_r1_after"]
    assert metrics["loss_vtc_last"] < metrics["loss_vtc_first"]
    parameters = dict(result.model.named_parameters())
    for name, value in frozen.items():  # the towers did not move
        assert torch.equal(parameters[name], value), name
    assert set(result.trainable_parameters) == {name for name in parameters if name not in frozen}
    assert (tmp_path / "shapes-clip" / "metrics.json").is_file()

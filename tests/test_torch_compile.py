"""`torch.compile` captures the vision encoder, the classifier and the video-text model as one graph each.

`fullgraph=True` turns every graph break into an error, so these tests fail if a forward grows a Python-side
branch on tensor values. The fast tests use the `aot_eager` backend (Dynamo capture + AOTAutograd, no C++ code
generation); one slow test runs Inductor itself. A new frame count through `interpolate_pos_encoding` is a new
graph (a documented recompile), not a wrong result.
"""

import pytest
import torch

from transformers_internvideo2 import (
    InternVideo2ForVideoClassification,
    InternVideo2Model,
    InternVideo2VisionConfig,
    InternVideo2VisionModel,
)

from test_modeling_internvideo2_video_text import tiny_config as tiny_video_text_config


def _vision_config(**overrides) -> InternVideo2VisionConfig:
    kwargs = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
        patch_size=14, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4, use_qk_norm=True,
        num_labels=3,
    )
    kwargs.update(overrides)
    config = InternVideo2VisionConfig(**kwargs)
    config._attn_implementation = "sdpa"
    return config


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_vision_encoder_compiles_to_one_graph_and_recompiles_for_a_new_frame_count():
    model = InternVideo2VisionModel(_vision_config()).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        for num_frames in (4, 8):
            pixel_values = torch.randn(2, num_frames, 3, 28, 28)
            expected = model(pixel_values, interpolate_pos_encoding=True)
            actual = compiled(pixel_values, interpolate_pos_encoding=True)
            torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(actual.pooler_output, expected.pooler_output, rtol=1e-5, atol=1e-6)


def test_classifier_compiles_with_loss_and_gradients():
    torch.manual_seed(0)
    model = InternVideo2ForVideoClassification(_vision_config()).train()
    pixel_values, labels = torch.randn(2, 4, 3, 28, 28), torch.tensor([0, 2])
    expected = model(pixel_values, labels=labels)
    expected.loss.backward()
    expected_grad = model.classifier.weight.grad.clone()
    model.zero_grad()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    actual = compiled(pixel_values, labels=labels)
    actual.loss.backward()
    torch.testing.assert_close(actual.logits, expected.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.classifier.weight.grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_video_text_feature_getters_compile():
    config = tiny_video_text_config()
    for sub_config in (config, config.vision_config, config.text_config):
        sub_config._attn_implementation = "sdpa"
    model = InternVideo2Model(config).eval()
    pixel_values = torch.randn(2, 4, 3, 28, 28)
    input_ids = torch.tensor([[2, 5, 6, 7, 8], [2, 9, 10, 0, 0]])
    attention_mask = (input_ids != 0).long()
    video_features = torch.compile(model.get_video_features, backend="aot_eager", fullgraph=True)
    text_features = torch.compile(model.get_text_features, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(
            video_features(pixel_values=pixel_values).pooler_output,
            model.get_video_features(pixel_values=pixel_values).pooler_output,
        )
        torch.testing.assert_close(
            text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output,
            model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output,
        )


@pytest.mark.slow
def test_vision_encoder_compiles_with_inductor():
    model = InternVideo2VisionModel(_vision_config()).eval()
    compiled = torch.compile(model, fullgraph=True)
    pixel_values = torch.randn(2, 4, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            compiled(pixel_values).pooler_output, model(pixel_values).pooler_output, rtol=1e-5, atol=1e-6
        )


def test_bfloat16_inference_compiles_with_the_blocked_attention_as_one_operator():
    """On CPU the blocked attention beats the fused bf16 kernel; compiled graphs call it as a custom operator (one
    node per block, opaque to the compiler) and give the uncompiled model's result."""
    torch.manual_seed(0)
    model = InternVideo2VisionModel(_vision_config()).to(torch.bfloat16).eval()
    targets = []

    def recording_backend(graph_module, example_inputs):
        targets.extend(str(node.target) for node in graph_module.graph.nodes if node.op == "call_function")
        return graph_module.forward

    compiled = torch.compile(model, backend=recording_backend, fullgraph=True)
    pixel_values = torch.randn(2, 4, 3, 28, 28, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = model(pixel_values)
        actual = compiled(pixel_values)
    blocked = [target for target in targets if "query_blocked_attention" in target]
    assert len(blocked) == model.config.num_hidden_layers, targets
    assert sum("scaled_dot_product_attention" in target for target in targets) == 1  # the pooler's one query
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(actual.pooler_output, expected.pooler_output, rtol=0, atol=0)

"""Transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester` from the transformers sdist of the
pinned version) on the BEATs audio encoder with a tiny config, and BEATs-specific behaviour: eager/SDPA agreement,
the structural variants of the BEATs cfg, layer-wise gradient decay, LayerDrop, input validation.

Every mixin test that is skipped here carries its reason in the decorator.
"""

from __future__ import annotations

import unittest
from unittest import mock

import pytest
import torch
from torch import nn
from transformers.models.auto import modeling_auto
from transformers.testing_utils import torch_device
from transformers_tests import import_upstream

from transformers_internvideo2.models.beats import BeatsConfig, BeatsModel


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ConfigTester = import_upstream("test_configuration_common").ConfigTester


def tiny_config(**overrides) -> BeatsConfig:
    """2 layers of width 32 over a 32-bin filterbank: 64 frames -> 4 x 2 = 8 tokens."""
    kwargs = dict(
        num_mel_bins=32, patch_size=16, patch_embed_dim=24, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=37, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        num_buckets=32, max_distance=64, layerdrop=0.0,
    )  # fmt: skip
    kwargs.update(overrides)
    return BeatsConfig(**kwargs)


class BeatsModelTester:
    def __init__(self, parent, batch_size=2, num_frames=64, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.is_training = is_training
        config = tiny_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.num_mel_bins = config.num_mel_bins
        # tokens: every hidden state and attention map has this length
        self.seq_length = config.num_tokens(num_frames)

    def get_config(self) -> BeatsConfig:
        return tiny_config()

    def prepare_config_and_inputs(self):
        return self.get_config(), floats_tensor([self.batch_size, self.num_frames, self.num_mel_bins])

    def prepare_config_and_inputs_for_common(self):
        config, input_features = self.prepare_config_and_inputs()
        return config, {"input_features": input_features}

    def create_and_check_model(self, config, input_features):
        model = BeatsModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(input_features)
        self.parent.assertEqual(result.last_hidden_state.shape, (self.batch_size, self.seq_length, self.hidden_size))
        torch.testing.assert_close(result.pooler_output, result.last_hidden_state.mean(1))


class BeatsModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (BeatsModel,)
    # No PipelineTesterMixin: it needs files the sdist does not ship (see test_modeling_internvideo2.py).
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_resize_position_embeddings = False
    has_attentions = True
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = BeatsModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=BeatsConfig, has_text_modality=False, hidden_size=64, num_attention_heads=8
        )
        # The mixin recognises base models through Transformers' static mapping names (see the vision test).
        patcher = mock.patch.dict(modeling_auto.MODEL_MAPPING_NAMES, {BeatsConfig.model_type: "BeatsModel"})
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_model_get_set_embeddings(self):
        # Overridden: the "input embeddings" of an audio patch encoder are its patch convolution.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        model = BeatsModel(config)
        self.assertIsInstance(model.get_input_embeddings(), nn.Conv2d)
        self.assertIsNone(model.get_output_embeddings())

    @unittest.skip(reason="Filterbank input (input_features): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Filterbank input (input_features): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass


# ------------------------------------------------------------------------------------------------------------------
# BEATs-specific behaviour
# ------------------------------------------------------------------------------------------------------------------
def _run(model: BeatsModel, features: torch.Tensor, implementation: str) -> torch.Tensor:
    model.set_attn_implementation(implementation)
    with torch.no_grad():
        return model(features).last_hidden_state


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"gated_relative_position_bias": False},
        {"relative_position_embedding": False, "gated_relative_position_bias": False},
        {"deep_norm": False, "layer_norm_first": True},
        {"patch_embed_dim": 32, "hidden_act": "relu", "num_conv_pos_embeddings": 15},
    ],
    ids=["iter3", "ungated", "no-relative-bias", "pre-norm", "no-projection-odd-kernel"],
)
def test_variants_agree_between_eager_and_sdpa(overrides):
    torch.manual_seed(0)
    model = BeatsModel(tiny_config(**overrides)).eval()
    features = torch.randn(3, 80, 32)
    eager, sdpa = _run(model, features, "eager"), _run(model, features, "sdpa")
    assert eager.shape == (3, 10, 32)
    torch.testing.assert_close(eager, sdpa, rtol=1e-5, atol=1e-5)
    if not overrides:  # a batch element does not depend on the others
        torch.testing.assert_close(_run(model, features[1:2], "eager"), eager[1:2], rtol=1e-5, atol=1e-5)


def test_structure_follows_the_config():
    model = BeatsModel(tiny_config(patch_embed_dim=32, gated_relative_position_bias=False,
                                   relative_position_embedding=False))  # fmt: skip
    assert model.embeddings.projection is None and model.encoder.relative_position_bias is None
    assert model.encoder.layers[0].attention.gate_proj is None
    assert BeatsModel(tiny_config()).encoder.layers[0].residual_scale == pytest.approx(4**0.25)


def test_layer_wise_gradient_decay_scales_earlier_gradients():
    features = torch.randn(2, 64, 32)

    def patch_grad(ratio: float) -> torch.Tensor:
        torch.manual_seed(0)
        model = BeatsModel(tiny_config(layer_wise_gradient_decay_ratio=ratio)).train()
        model(features).last_hidden_state.sum().backward()
        return model.embeddings.patch_embedding.weight.grad

    # the gradient reaching the embeddings passed through both layers' gradient scaling: 0.5 ** 2
    torch.testing.assert_close(patch_grad(0.5), patch_grad(1.0) * 0.25, rtol=1e-5, atol=1e-7)


def test_layerdrop_only_in_training():
    torch.manual_seed(0)
    model = BeatsModel(tiny_config(layerdrop=0.9))
    features = torch.randn(1, 64, 32)
    model.eval()
    with torch.no_grad():
        reference = model(features).last_hidden_state
        assert torch.equal(model(features).last_hidden_state, reference)
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        outputs = [model(features, output_hidden_states=True) for _ in range(8)]
    # with p = 0.9 most layers are skipped: fewer hidden states, outputs that differ from eval
    assert any(len(out.hidden_states) < 3 for out in outputs)
    assert any(not torch.allclose(out.last_hidden_state, reference) for out in outputs)


def test_gradients_reach_the_gate_and_bias_table_through_sdpa():
    torch.manual_seed(0)
    model = BeatsModel(tiny_config(layer_wise_gradient_decay_ratio=1.0)).train()
    model.set_attn_implementation("sdpa")
    model(torch.randn(2, 64, 32)).pooler_output.pow(2).sum().backward()
    attention = model.encoder.layers[0].attention
    for parameter in (attention.gate_proj.weight, attention.gate_scale,
                      model.encoder.relative_position_bias.embedding.weight,
                      model.encoder.pos_conv_embed.conv.parametrizations.weight.original0):  # fmt: skip
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_input_validation():
    model = BeatsModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"\(batch, frames, 32\)"):
        model(torch.randn(1, 64, 64))
    with pytest.raises(ValueError, match=r"\(batch, frames, 32\)"):
        model(torch.randn(64, 32))
    with pytest.raises(ValueError, match="fewer than one patch"):
        model(torch.randn(1, 8, 32))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(1, 64, 32, dtype=torch.long))


def test_config_validation():
    with pytest.raises(Exception, match="divisible by num_attention_heads"):
        tiny_config(num_attention_heads=5)
    with pytest.raises(Exception, match="hidden_act"):
        tiny_config(hidden_act="glu")
    with pytest.raises(Exception, match="layer_norm_first"):
        tiny_config(layer_norm_first=True)  # deep_norm is on
    with pytest.raises(Exception, match="requires relative_position_embedding"):
        tiny_config(relative_position_embedding=False)
    with pytest.raises(Exception, match="Unknown preset"):
        BeatsConfig.from_preset("beats-iter9")
    preset = BeatsConfig.from_preset("beats-iter3", num_hidden_layers=2)
    assert preset.num_hidden_layers == 2 and preset.hidden_size == 768
    assert BeatsConfig().num_tokens(998) == 248 and BeatsConfig().deep_norm_alpha == pytest.approx(24**0.25)


def test_official_size_output_shapes_on_the_meta_device():
    """BEATs_iter3 on 10 s of audio: (B, 998, 64) -> (B, 248, 768) tokens and a (B, 768) pooled feature."""
    with torch.device("meta"):
        model = BeatsModel(BeatsConfig.from_preset("beats-iter3")).eval()
        output = model(torch.empty(2, 998, 64))
    assert output.last_hidden_state.shape == (2, 248, 768) and output.pooler_output.shape == (2, 768)

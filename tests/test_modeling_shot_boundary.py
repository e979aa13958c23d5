"""Transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester` from the transformers sdist of the
pinned version, see tests/transformers_tests.py) on a tiny `ShotBoundaryModel`."""

from __future__ import annotations

import unittest
from unittest import mock

import torch
from transformers.models.auto import modeling_auto
from transformers.testing_utils import torch_device
from transformers_tests import import_upstream

from transformers_internvideo2.models.shot_boundary import ShotBoundaryConfig, ShotBoundaryModel


ModelTesterMixin = import_upstream("test_modeling_common").ModelTesterMixin
ConfigTester = import_upstream("test_configuration_common").ConfigTester


def tiny_config(**overrides) -> ShotBoundaryConfig:
    layers = [{"kind": "shared", "mid_channels": 6, "num_dilations": 3}, {"kind": "separate", "mid_channels": 4,
              "num_dilations": 2}]  # fmt: skip
    kwargs = dict(stage_channels=[6, 8, 8], layers=layers * 3, hidden_size=16, similarity_size=8,
                  similarity_output_size=4, similarity_window=5, dropout=0.0)  # fmt: skip
    kwargs.update(overrides)
    return ShotBoundaryConfig(**kwargs)


class ShotBoundaryModelTester:
    def __init__(self, parent, batch_size=2, num_frames=7):
        self.parent, self.batch_size, self.num_frames = parent, batch_size, num_frames
        self.is_training = True
        self.hidden_size = tiny_config().hidden_size

    def get_config(self):
        return tiny_config()

    def prepare_config_and_inputs(self):
        frames = torch.randint(0, 256, (self.batch_size, self.num_frames, 27, 48, 3), dtype=torch.uint8)
        return self.get_config(), frames

    def prepare_config_and_inputs_for_common(self):
        config, frames = self.prepare_config_and_inputs()
        return config, {"pixel_values": frames}


class ShotBoundaryModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ShotBoundaryModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_resize_position_embeddings = False
    has_attentions = False
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = ShotBoundaryModelTester(self)
        # a convolutional network: no attention heads or transformer layers to check for
        self.config_tester = ConfigTester(self, config_class=ShotBoundaryConfig, has_text_modality=False,
                                          common_properties=["hidden_size"], hidden_size=16)  # fmt: skip
        patcher = mock.patch.dict(modeling_auto.MODEL_MAPPING_NAMES, {ShotBoundaryConfig.model_type: "ShotBoundaryModel"})
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        config, frames = self.model_tester.prepare_config_and_inputs()
        model = ShotBoundaryModel(config).to(torch_device).eval()
        with torch.no_grad():
            output = model(pixel_values=frames)
        self.assertEqual(output.logits.shape, (2, 7))
        self.assertEqual(output.last_hidden_state.shape, (2, 7, 16))

    def test_model_get_set_embeddings(self):
        model = ShotBoundaryModel(self.model_tester.get_config())
        self.assertIsNone(model.get_output_embeddings())

    @unittest.skip(reason="Thumbnail input (pixel_values): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Thumbnail input (pixel_values): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    @unittest.skip(reason="A convolutional network without per-layer hidden states (as TransNetV2 / AutoShot).")
    def test_hidden_states_output(self):
        pass

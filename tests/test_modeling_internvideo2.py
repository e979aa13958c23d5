"""Transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester` from the transformers sdist of the
pinned version) run against the InternVideo2 vision encoder, classifier and stage-1 student with a tiny config.

Every mixin test that is skipped here carries its reason in the decorator and is listed in docs/testing.md.
"""

from __future__ import annotations

import copy
import unittest
from unittest import mock

import torch
from torch import nn
from transformers.models.auto import modeling_auto
from transformers.testing_utils import torch_device
from transformers_tests import import_upstream

from transformers_internvideo2 import (
    InternVideo2ForPreTraining,
    InternVideo2ForVideoClassification,
    InternVideo2VisionConfig,
    InternVideo2VisionModel,
)


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ConfigTester = import_upstream("test_configuration_common").ConfigTester


class InternVideo2VisionModelTester:
    """Tiny configuration (2 blocks of width 32) and random videos for the common tests."""

    def __init__(
        self,
        parent,
        batch_size=2,
        num_frames=4,
        num_channels=3,
        image_size=28,
        patch_size=14,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        pooler_output_size=24,
        pooler_num_attention_heads=4,
        num_labels=3,
        clip_teacher_hidden_size=20,
        clip_teacher_final_size=16,
        mae_teacher_hidden_size=12,
        is_training=True,
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.num_channels = num_channels
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.pooler_output_size = pooler_output_size
        self.pooler_num_attention_heads = pooler_num_attention_heads
        self.num_labels = num_labels
        self.clip_teacher_hidden_size = clip_teacher_hidden_size
        self.clip_teacher_final_size = clip_teacher_final_size
        self.mae_teacher_hidden_size = mae_teacher_hidden_size
        self.is_training = is_training
        self.num_patches = num_frames * (image_size // patch_size) ** 2
        # cls token + patch tokens: the length of every hidden state and attention map
        self.seq_length = 1 + self.num_patches
        # The mixin's masked-input checks mask the first `num_masks` of `mask_length` positions; bool_masked_pos runs
        # over the patch tokens (the cls token cannot be masked).
        self.mask_length = self.num_patches
        self.num_masks = self.num_patches // 2
        self._teacher_targets = None

    def get_config(self) -> InternVideo2VisionConfig:
        # The stage-1 alignment branches are part of the config so that InternVideo2ForPreTraining can be built from
        # the same config as the other classes; the backbone and the classifier ignore them.
        return InternVideo2VisionConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            num_frames=self.num_frames,
            pooler_output_size=self.pooler_output_size,
            pooler_num_attention_heads=self.pooler_num_attention_heads,
            num_labels=self.num_labels,
            clip_teacher_hidden_size=self.clip_teacher_hidden_size,
            clip_teacher_final_size=self.clip_teacher_final_size,
            clip_num_return_layers=2,
            mae_teacher_hidden_size=self.mae_teacher_hidden_size,
            mae_num_return_layers=1,
        )

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor(
            [self.batch_size, self.num_frames, self.num_channels, self.image_size, self.image_size]
        )
        labels = torch.randint(0, self.num_labels, (self.batch_size,), device=torch_device)
        return self.get_config(), pixel_values, labels

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values, _ = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}

    def teacher_targets(self, config: InternVideo2VisionConfig) -> dict[str, torch.Tensor]:
        """Random CLIP and MAE teacher features, shaped as InternVideo2ForPreTraining expects them. Drawn once per
        tester: the mixin prepares inputs several times and compares the outputs (tuple vs dict, ...)."""
        if self._teacher_targets is None:
            self._teacher_targets = self._draw_teacher_targets(config)
        return dict(self._teacher_targets)

    def _draw_teacher_targets(self, config: InternVideo2VisionConfig) -> dict[str, torch.Tensor]:
        clip_layers = len(config.clip_student_return_indices)
        mae_layers = len(config.mae_student_return_indices)
        return {
            "clip_teacher_hidden_states": floats_tensor(
                [clip_layers, self.batch_size, self.seq_length, self.clip_teacher_hidden_size]
            ),
            "clip_teacher_pooled": floats_tensor([self.batch_size, self.clip_teacher_final_size]),
            "mae_teacher_hidden_states": floats_tensor(
                [mae_layers, self.batch_size, self.num_patches, self.mae_teacher_hidden_size]
            ),
        }

    def create_and_check_model(self, config, pixel_values, labels):
        model = InternVideo2VisionModel(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values)
        self.parent.assertEqual(result.last_hidden_state.shape, (self.batch_size, self.seq_length, self.hidden_size))
        self.parent.assertEqual(result.pooler_output.shape, (self.batch_size, self.pooler_output_size))

    def create_and_check_for_video_classification(self, config, pixel_values, labels):
        model = InternVideo2ForVideoClassification(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values, labels=labels)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.num_labels))
        self.parent.assertEqual(result.loss.shape, ())

    def create_and_check_for_pretraining(self, config, pixel_values, labels):
        model = InternVideo2ForPreTraining(config).to(torch_device).eval()
        with torch.no_grad():
            result = model(pixel_values, **self.teacher_targets(config))
        clip_layers = len(config.clip_student_return_indices)
        self.parent.assertEqual(
            result.clip_aligned.shape, (clip_layers, self.batch_size, self.seq_length, self.clip_teacher_hidden_size)
        )
        self.parent.assertEqual(result.clip_final_aligned.shape, (self.batch_size, self.clip_teacher_final_size))
        self.parent.assertEqual(result.mae_aligned.shape, (1, self.batch_size, self.num_patches, 12))
        self.parent.assertTrue(torch.isfinite(result.loss))


class InternVideo2VisionModelTest(ModelTesterMixin, unittest.TestCase):
    """The common tests over the backbone, the classifier and the stage-1 student."""

    all_model_classes = (InternVideo2VisionModel, InternVideo2ForVideoClassification, InternVideo2ForPreTraining)
    # No PipelineTesterMixin: it needs tests/utils/tiny_model_summary.json and the tests/pipelines/ package, neither of
    # which the sdist ships. The video-classification pipeline has its own tests (test_pipeline_video_classification).
    pipeline_model_mapping = {}
    # A video encoder has no token embeddings to resize.
    test_resize_embeddings = False
    test_resize_position_embeddings = False
    has_attentions = True
    # The mixin reads the model's age from a copyright line to skip this check for pre-2023 models; ours is new.
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = InternVideo2VisionModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=InternVideo2VisionConfig, has_text_modality=False, hidden_size=64, num_attention_heads=8
        )
        # The mixin decides what a class is (base model: no training/loss tests; classifier: labels, problem types,
        # mismatched-head loading; base-model prefix checks) from Transformers' static *_MAPPING_NAMES, which only list
        # in-library models. List ours there for the duration of each test, so the mixin treats them exactly like an
        # in-library video model. (The lazy Auto mappings resolve registered configs from `_extra_content` first, so
        # this changes nothing else.)
        model_type = InternVideo2VisionConfig.model_type
        for names, class_name in (
            (modeling_auto.MODEL_MAPPING_NAMES, "InternVideo2VisionModel"),
            (modeling_auto.MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES, "InternVideo2ForVideoClassification"),
            (modeling_auto.MODEL_FOR_PRETRAINING_MAPPING_NAMES, "InternVideo2ForPreTraining"),
        ):
            patcher = mock.patch.dict(names, {model_type: class_name})
            patcher.start()
            self.addCleanup(patcher.stop)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin adds classification labels itself; the stage-1 student's "labels" are teacher features.
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is InternVideo2ForPreTraining:
            inputs_dict.update(self.model_tester.teacher_targets(self.model_tester.get_config()))
        return inputs_dict

    def test_can_load_ignoring_mismatched_shapes(self):
        # The mixin's `_config_zero_init` sets every config key containing "layer_scale" to 1e-10, taking it for an
        # init scale; `layer_scale_force_fp32` is a bool flag, which the strict config rejects. Same rule, numeric
        # values only; the upstream test itself runs unchanged.
        init_scale_key_parts = ("init_range", "initializer_range", "_std", "initializer_factor", "layer_scale")

        def zero_init_numeric_only(config):
            zeroed = copy.deepcopy(config)
            for key in list(zeroed):
                value = getattr(zeroed, key)
                is_init_scale = any(part in key for part in init_scale_key_parts)
                if is_init_scale and isinstance(value, (int, float)) and not isinstance(value, bool):
                    setattr(zeroed, key, 1e-10)
            return zeroed

        with mock.patch.object(_modeling_common, "_config_zero_init", zero_init_numeric_only):
            super().test_can_load_ignoring_mismatched_shapes()

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_for_video_classification(self):
        self.model_tester.create_and_check_for_video_classification(*self.model_tester.prepare_config_and_inputs())

    def test_for_pretraining(self):
        self.model_tester.create_and_check_for_pretraining(*self.model_tester.prepare_config_and_inputs())

    def test_hidden_states_and_attentions_layout(self):
        """`hidden_states` = embedding output + one entry per block; `attentions` (eager) one map per block."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        config._attn_implementation = "eager"
        model = InternVideo2VisionModel(config).to(torch_device).eval()
        with torch.no_grad():
            outputs = model(**inputs, output_hidden_states=True, output_attentions=True)
            embeddings, _, _ = model.embeddings(inputs["pixel_values"])
        tester = self.model_tester
        self.assertEqual(len(outputs.hidden_states), tester.num_hidden_layers + 1)
        torch.testing.assert_close(outputs.hidden_states[0], embeddings, rtol=0, atol=0)
        torch.testing.assert_close(outputs.hidden_states[-1], outputs.last_hidden_state, rtol=0, atol=0)
        self.assertEqual(len(outputs.attentions), tester.num_hidden_layers)
        for attention in outputs.attentions:
            self.assertEqual(
                attention.shape, (tester.batch_size, tester.num_attention_heads, tester.seq_length, tester.seq_length)
            )
            torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_model_get_set_embeddings(self):
        # Overridden: the "input embeddings" of a video encoder are its tubelet (Conv3d) projection.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), nn.Conv3d)
            output_embeddings = model.get_output_embeddings()
            self.assertTrue(output_embeddings is None or isinstance(output_embeddings, nn.Linear))

    @unittest.skip(reason="Video input (pixel_values): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Video input (pixel_values): there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass


if __name__ == "__main__":
    unittest.main()

"""Transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester` from the transformers sdist of the
pinned version) run against the video chat model `InternVideo2ForConditionalGeneration` with a tiny configuration:
a 2-block InternVideo2 vision encoder, a 2-layer Q-Former and a 2-layer Llama.

This is a separate module from tests/test_modeling_internvideo2_chat.py because `import_upstream` skips the whole
module when the sdist cannot be obtained; the chat model's own tests must run regardless.

Every mixin test that is skipped here carries its reason in the decorator and is listed in docs/videochat.md
("Transformers' common tests"). The sdist has no tests/generation/, so the generation checks that
`GenerationTesterMixin` would make are our own tests in tests/test_modeling_internvideo2_chat.py.
"""

from __future__ import annotations

import unittest
from unittest import mock

import torch
from transformers.models.auto import modeling_auto
from transformers.testing_utils import torch_device
from transformers_tests import import_upstream

from transformers_internvideo2 import (
    InternVideo2ChatConfig,
    InternVideo2ForConditionalGeneration,
)


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ids_tensor = _modeling_common.ids_tensor
ConfigTester = import_upstream("test_configuration_common").ConfigTester


class InternVideo2ChatModelTester:
    """Tiny chat configuration and random prompts with video placeholders for the common tests.

    The attributes the mixin reads (`seq_length`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
    `vocab_size`) describe the language model, whose hidden states and attentions the chat model returns;
    `video_config` tells the `get_video_features` tests how many vision blocks to expect.
    """

    def __init__(
        self,
        parent,
        batch_size=2,
        text_length=7,
        num_query_tokens=2,
        num_extra_query_tokens=1,
        qformer_text_length=4,
        num_frames=2,
        image_size=28,
        num_views=1,
        is_training=True,
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = is_training
        self.num_frames = num_frames
        self.image_size = image_size
        self.num_channels = 3
        self.num_query_tokens = num_query_tokens
        self.num_extra_query_tokens = num_extra_query_tokens
        # num_views > 1: HD mode, `pixel_values_videos` of shape (batch, views, frames, channels, height, width)
        self.num_views = num_views
        self.tokens_per_view = num_query_tokens + num_extra_query_tokens
        self.num_visual_tokens = self.tokens_per_view * num_views
        self.qformer_text_length = qformer_text_length
        # Language-model ids: 0 pad, 1 bos, 2 eos, 5 the video placeholder; prompt words are drawn from 6..vocab-1.
        # The placeholder id is above 0..4, the ids the mixin draws the rows it adds to a batch from (eager vs SDPA
        # checks), so those rows never hold a stray placeholder, and below vocab_size - 15, the vocabulary the resize
        # tests shrink to (they clamp input_ids to it).
        self.pad_token_id, self.bos_token_id, self.eos_token_id, self.video_token_id = 0, 1, 2, 5
        self.vocab_size = 99
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.seq_length = 1 + self.num_visual_tokens + text_length  # bos, the video, the question
        self.vision_config = dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            image_size=image_size,
            patch_size=14,
            num_frames=num_frames,
            hidden_act="gelu",
            layer_scale_init_value=0.1,
            # the released chat models' layout: single images take their own position table (see
            # test_training_gradient_checkpointing below)
            image_position_embedding_type="separate",
        )
        self.video_config = self.vision_config
        self.qformer_config = dict(
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            vocab_size=50,
            max_position_embeddings=16,
            cross_attention_frequency=2,
        )
        self.text_config = dict(
            model_type="llama",
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=37,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=False,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
        )

    def get_config(self) -> InternVideo2ChatConfig:
        return InternVideo2ChatConfig(
            vision_config=dict(self.vision_config),
            qformer_config=dict(self.qformer_config),
            text_config=dict(self.text_config),
            num_query_tokens=self.num_query_tokens,
            num_extra_query_tokens=self.num_extra_query_tokens,
            video_token_id=self.video_token_id,
            pad_token_id=self.pad_token_id,
            # HD: one tile and the global view of the whole frame, each `image_size` wide (what the processor makes;
            # the model encodes the views it is given)
            use_hd=self.num_views > 1,
            hd_local_size=self.image_size,
            hd_fix_ratio=[1, 1],
            hd_add_global_view=True,
        )

    def prepare_config_and_inputs(self):
        text = ids_tensor([self.batch_size, self.seq_length - 1 - self.num_visual_tokens], self.vocab_size - 6) + 6
        bos = torch.full((self.batch_size, 1), self.bos_token_id, dtype=torch.long, device=torch_device)
        video = torch.full(
            (self.batch_size, self.num_visual_tokens), self.video_token_id, dtype=torch.long, device=torch_device
        )
        input_ids = torch.cat([bos, video, text], dim=1)
        attention_mask = torch.ones_like(input_ids)
        views = [self.num_views] if self.num_views > 1 else []
        pixel_values_videos = floats_tensor(
            [self.batch_size, *views, self.num_frames, self.num_channels, self.image_size, self.image_size]
        )
        # Q-Former instruction, the first row left-padded by one token (as the original BERT tokenizer pads)
        qformer_input_ids = ids_tensor([self.batch_size, self.qformer_text_length], 45) + 5
        qformer_attention_mask = torch.ones_like(qformer_input_ids)
        qformer_attention_mask[0, 0] = 0
        qformer_input_ids[0, 0] = 0
        config = self.get_config()
        return config, input_ids, attention_mask, pixel_values_videos, qformer_input_ids, qformer_attention_mask

    def videos_for(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        """One view per `tokens_per_view` placeholders of `input_ids` (a flat batch of views, in prompt order, which
        the model accepts in HD mode too), the same pixels on every call for the same prompts; `None` when the prompts
        hold no placeholder."""
        num_placeholders = int((input_ids == self.video_token_id).sum())
        if num_placeholders % self.tokens_per_view:
            raise ValueError(
                f"{num_placeholders} video placeholders are not a whole number of views of {self.tokens_per_view}."
            )
        num_views = num_placeholders // self.tokens_per_view
        if num_views == 0:
            return None
        generator = torch.Generator().manual_seed(0)
        shape = (num_views, self.num_frames, self.num_channels, self.image_size, self.image_size)
        return torch.rand(shape, generator=generator).to(torch_device)

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, pixel_values_videos, qformer_ids, qformer_mask = (
            self.prepare_config_and_inputs()
        )
        return config, {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values_videos": pixel_values_videos,
            "qformer_input_ids": qformer_ids,
            "qformer_attention_mask": qformer_mask,
        }


class InternVideo2ChatModelTest(ModelTesterMixin, unittest.TestCase):
    """The common tests over the chat model (vision encoder + Q-Former + projector + causal LM)."""

    all_model_classes = (InternVideo2ForConditionalGeneration,)
    # No PipelineTesterMixin: it needs tests/utils/tiny_model_summary.json and tests/pipelines/, which the sdist does
    # not ship. The image-text-to-text pipeline has its own tests (tests/test_chat_pipeline.py).
    pipeline_model_mapping = {}
    _is_composite = True
    # The mixin reads the model's age from a copyright line to skip this check for pre-2023 models; ours is new.
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = InternVideo2ChatModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=InternVideo2ChatConfig, has_text_modality=False, common_properties=["video_token_id"]
        )
        # As for the vision models (docs/testing.md §1): the mixin decides which tests apply to a class (labels, the
        # causal-LM loss checks, the `get_video_features` pooler layout) from Transformers' static *_MAPPING_NAMES,
        # which list only in-library models. List ours as an image-text-to-text model for the duration of a test.
        patcher = mock.patch.dict(
            modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
            {InternVideo2ChatConfig.model_type: "InternVideo2ForConditionalGeneration"},
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The mixin's eager-vs-SDPA checks pass only the main input (`input_ids`, which hold video placeholders) and
        # add rows to the batch; the model refuses placeholders without a video. Give the prompts their videos (one
        # view per `tokens_per_view` placeholders, fixed pixels), so those checks compare the whole model, vision
        # encoder and Q-Former attention included. Inputs that carry their own video are left as they are.
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        input_ids = inputs_dict.get("input_ids")
        if input_ids is not None and not {"pixel_values_videos", "mm_encoder_outputs"} & inputs_dict.keys():
            videos = self.model_tester.videos_for(input_ids)
            if videos is not None:
                inputs_dict["pixel_values_videos"] = videos
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(
        reason="Checks reloading a classification head with another num_labels; the chat model has no classification "
        "head, so the upstream test would only build its zero-init config, whose rule (every key containing "
        "'layer_scale' set to 1e-10) also hits the vision config's bool flag layer_scale_force_fp32."
    )
    def test_can_load_ignoring_mismatched_shapes(self):
        pass

    # Two checks the mixin runs only for classes listed as base models (MODEL_MAPPING_NAMES). Both apply to the chat
    # model as they are: run the upstream bodies with the chat model listed there for the duration of the test.
    def test_model_forward_default_config_values(self):
        with self._listed_as_base_model():
            super().test_model_forward_default_config_values()

    def test_inputs_embeds_matches_input_ids(self):
        # with the video: the model finds the placeholders in `inputs_embeds` by their embedding
        with self._listed_as_base_model():
            super().test_inputs_embeds_matches_input_ids()

    def _listed_as_base_model(self):
        return mock.patch.dict(
            modeling_auto.MODEL_MAPPING_NAMES,
            {InternVideo2ChatConfig.model_type: "InternVideo2ForConditionalGeneration"},
        )

    # The released chat models give single images (one frame) their own position table
    # (`image_position_embedding_type="separate"`); a video never reads it, so it gets no gradient from these video
    # batches, and the mixin requires a gradient on every parameter. These three checks run without the image table;
    # every other parameter must still receive its gradient, with and without checkpointing.
    def test_training_gradient_checkpointing(self):
        self.model_tester.vision_config["image_position_embedding_type"] = None
        super().test_training_gradient_checkpointing()

    def test_training_gradient_checkpointing_use_reentrant_false(self):
        self.model_tester.vision_config["image_position_embedding_type"] = None
        super().test_training_gradient_checkpointing_use_reentrant_false()

    def test_training_gradient_checkpointing_use_reentrant_true(self):
        self.model_tester.vision_config["image_position_embedding_type"] = None
        super().test_training_gradient_checkpointing_use_reentrant_true()

    @unittest.skip(
        reason="The sdist ships no tests/generation/, so GenerationTesterMixin is an empty stand-in and inheriting it "
        "would claim coverage that does not exist. The checks it would make are our own tests in "
        "tests/test_modeling_internvideo2_chat.py (see docs/videochat.md)."
    )
    def test_generation_tester_mixin_inheritance(self):
        pass

    @unittest.skip(
        reason="There is no base model: the chat model holds the vision encoder, Q-Former, projector and a complete "
        "causal LM (`language_model`, with its own lm_head) side by side, so `base_model` is the model itself; no "
        "AutoModel class is registered for the chat config."
    )
    def test_model_base_model_prefix(self):
        pass

    def test_for_conditional_generation(self):
        """Logits over the whole spliced sequence, the visual tokens one per placeholder, a finite loss."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2ForConditionalGeneration(config).to(torch_device).eval()
        tester = self.model_tester
        with torch.no_grad():
            outputs = model(**inputs, labels=inputs["input_ids"])
        self.assertEqual(outputs.logits.shape, (tester.batch_size, tester.seq_length, tester.vocab_size))
        self.assertEqual(outputs.video_hidden_states.shape, (tester.batch_size, tester.num_visual_tokens, 32))
        with torch.no_grad():
            features = model.get_video_features(
                inputs["pixel_values_videos"], qformer_input_ids=inputs["qformer_input_ids"]
            )
        # the vision tokens of a video's views, concatenated: views x (cls + frames x 2 x 2 patches)
        self.assertEqual(features.last_hidden_state.shape, (tester.batch_size, tester.num_views * 9, 32))
        self.assertTrue(torch.isfinite(outputs.loss))


class InternVideo2ChatHDModelTest(InternVideo2ChatModelTest):
    """The same common tests in HD mode: every video comes as 2 views (a 6-D `pixel_values_videos`), each encoded
    separately, their visual tokens concatenated in view order."""

    def setUp(self):
        super().setUp()
        self.model_tester = InternVideo2ChatModelTester(self, num_views=2)


if __name__ == "__main__":
    unittest.main()

"""InternVideo-MM (InternVideo v1's multimodal video encoder) with tiny configs: Transformers' common tests
(`ModelTesterMixin`, `ConfigTester` from the transformers sdist of the pinned version) for the video tower, the text
tower and the dual encoder, plus the family's own behaviour (temporal modules, gate, image mode, masked text,
caption decoder and its loss, eager/SDPA agreement, clear errors).

Every mixin test that is skipped carries its reason in the decorator.
"""

from __future__ import annotations

import tempfile
import unittest
from unittest import mock

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining
from transformers.models.auto import modeling_auto
from transformers_tests import import_upstream

from transformers_internvideo2 import (
    InternVideoMMConfig,
    InternVideoMMForCaptioning,
    InternVideoMMModel,
    InternVideoMMTextConfig,
    InternVideoMMTextModel,
    InternVideoMMVisionConfig,
    InternVideoMMVisionModel,
)


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ids_tensor = _modeling_common.ids_tensor
ConfigTester = import_upstream("test_configuration_common").ConfigTester

VOCAB = 99


def tiny_vision(**overrides) -> dict:
    kwargs = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=28, patch_size=14,
        num_frames=3, extractor_layers=[0, 1], extractor_num_attention_heads=2, extractor_dropout=0.0,
    )  # fmt: skip
    kwargs.update(overrides)
    return kwargs


def tiny_text(**overrides) -> dict:
    kwargs = dict(
        vocab_size=VOCAB, max_position_embeddings=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1,
    )  # fmt: skip
    kwargs.update(overrides)
    return kwargs


def tiny_config(**overrides) -> InternVideoMMConfig:
    vision = tiny_vision(**overrides.pop("vision_config", {}))
    text = tiny_text(**overrides.pop("text_config", {}))
    kwargs = dict(projection_dim=24, caption_decoder_layers=2, caption_decoder_heads=2, caption_num_visual_queries=5)
    kwargs.update(overrides)
    return InternVideoMMConfig(vision_config=vision, text_config=text, **kwargs)


def clip_texts(batch: int, length: int = 12) -> torch.Tensor:
    """`<start> tokens <end> 0 ...` with the end token the largest id, as CLIP's tokenizer writes them."""
    ids = ids_tensor([batch, length], VOCAB - 3) + 1
    ids[:, 0] = VOCAB - 2
    for row in range(batch):
        end = 3 + row % (length - 4)
        ids[row, end] = VOCAB - 1
        ids[row, end + 1 :] = 0
    return ids


def _patch_base_model_names(test: unittest.TestCase, pairs) -> None:
    # The mixin recognises base models through Transformers' static mapping names.
    patcher = mock.patch.dict(modeling_auto.MODEL_MAPPING_NAMES, dict(pairs))
    patcher.start()
    test.addCleanup(patcher.stop)


# ------------------------------------------------------------------------------------------------------------------
# Video tower
# ------------------------------------------------------------------------------------------------------------------
class VisionTester:
    def __init__(self, parent, batch_size=2):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        # hidden states and attentions are per frame: (batch * frames, tokens_per_frame, width)
        self.seq_length = config.tokens_per_frame

    def get_config(self) -> InternVideoMMVisionConfig:
        return InternVideoMMVisionConfig(**tiny_vision())

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        pixel_values = floats_tensor([self.batch_size, config.num_frames, 3, config.image_size, config.image_size])
        return config, {"pixel_values": pixel_values}


class InternVideoMMVisionModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideoMMVisionModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    has_attentions = True

    def setUp(self):
        self.model_tester = VisionTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideoMMVisionConfig, has_text_modality=False,
                                          hidden_size=64, num_attention_heads=8, extractor_num_attention_heads=8)  # fmt: skip
        _patch_base_model_names(self, [(InternVideoMMVisionConfig.model_type, "InternVideoMMVisionModel")])

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_hidden_states_output(self):
        # Overridden: the batch axis of the per-frame states is batch * frames.
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        config._attn_implementation = "eager"
        model = InternVideoMMVisionModel(config).eval()
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True, output_attentions=True)
        frames = inputs["pixel_values"].shape[0] * config.num_frames
        self.assertEqual(len(out.hidden_states), config.num_hidden_layers + 1)
        self.assertEqual(out.hidden_states[0].shape, (frames, config.tokens_per_frame, config.hidden_size))
        self.assertEqual(len(out.attentions), config.num_hidden_layers)
        self.assertEqual(out.last_hidden_state.shape, (2, config.num_frames * config.tokens_per_frame, 32))

    @unittest.skip(reason="Video input: there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Video input: there are no input_ids, so no inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    def test_model_get_set_embeddings(self):
        # Overridden: the input "embeddings" of a video tower are its patch convolution.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        self.assertIsInstance(InternVideoMMVisionModel(config).get_input_embeddings(), torch.nn.Conv3d)


# ------------------------------------------------------------------------------------------------------------------
# Text tower
# ------------------------------------------------------------------------------------------------------------------
class TextTester:
    def __init__(self, parent, batch_size=3):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.seq_length = config.max_position_embeddings
        self.vocab_size = config.vocab_size

    def get_config(self) -> InternVideoMMTextConfig:
        return InternVideoMMTextConfig(**tiny_text())

    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), {"input_ids": clip_texts(self.batch_size)}


class InternVideoMMTextModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideoMMTextModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    has_attentions = True

    def setUp(self):
        self.model_tester = TextTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideoMMTextConfig, hidden_size=64,
                                          num_attention_heads=8)  # fmt: skip
        _patch_base_model_names(self, [(InternVideoMMTextConfig.model_type, "InternVideoMMTextModel")])

    def test_config(self):
        self.config_tester.run_common_tests()


# ------------------------------------------------------------------------------------------------------------------
# Dual encoder
# ------------------------------------------------------------------------------------------------------------------
class DualTester:
    def __init__(self, parent, batch_size=2):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.text_config.hidden_size
        self.num_hidden_layers = config.text_config.num_hidden_layers
        self.seq_length = config.text_config.max_position_embeddings
        self.vocab_size = VOCAB

    def get_config(self) -> InternVideoMMConfig:
        return tiny_config()

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        vision = config.vision_config
        pixel_values = floats_tensor([self.batch_size, vision.num_frames, 3, vision.image_size, vision.image_size])
        return config, {"pixel_values": pixel_values, "input_ids": clip_texts(self.batch_size)}

    @property
    def video_model_tester(self):
        return _FeatureTester(self, ("pixel_values",), self.get_config().vision_config.num_hidden_layers)

    @property
    def text_model_tester(self):
        return _FeatureTester(self, ("input_ids",), self.get_config().text_config.num_hidden_layers)


class _FeatureTester:
    def __init__(self, tester: DualTester, keys: tuple[str, ...], num_hidden_layers: int):
        self.tester, self.keys, self.num_hidden_layers = tester, keys, num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        return config, {key: inputs[key] for key in self.keys}


class InternVideoMMModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideoMMModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    has_attentions = False  # composite: attentions are per tower (vision_model_output / text_model_output)
    _is_composite = True

    def setUp(self):
        self.model_tester = DualTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideoMMConfig, has_text_modality=False)
        _patch_base_model_names(self, [(InternVideoMMConfig.model_type, "InternVideoMMModel")])

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per tower in vision_model_output / "
                          "text_model_output (checked by the tower tests).")  # fmt: skip
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per tower.")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per tower.")
    def test_can_capture_specific_layers_hidden_states(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass


# ------------------------------------------------------------------------------------------------------------------
# Family behaviour
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_captioner() -> InternVideoMMForCaptioning:
    torch.manual_seed(0)
    model = InternVideoMMForCaptioning(tiny_config()).eval()
    # non-trivial temporal modules (the from-scratch init makes the extractors the identity)
    with torch.no_grad():
        for parameter in model.internvideo_mm.vision_model.temporal.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def test_presets_match_the_released_layouts():
    b16 = InternVideoMMConfig.from_preset("internvideo-mm-b16")
    l14 = InternVideoMMConfig.from_preset("internvideo-mm-l14")
    assert b16.vision_config.extractor_layers == [8, 9, 10, 11] and b16.projection_dim == 512
    assert l14.vision_config.extractor_layers == [20, 21, 22, 23] and l14.vision_config.tokens_per_frame == 257
    with torch.device("meta"):
        model = InternVideoMMModel(b16)
    assert sum(p.numel() for p in model.parameters()) == 178_066_433  # keys/v1_mm_B16.json
    with pytest.raises(ValueError, match="Unknown preset"):
        InternVideoMMConfig.from_preset("internvideo-mm-h14")


def test_untrained_extractors_are_the_identity_and_gate_is_one_half():
    torch.manual_seed(0)
    model = InternVideoMMVisionModel(InternVideoMMVisionConfig(**tiny_vision())).eval()
    pixel_values = torch.randn(2, 3, 3, 28, 28)
    with torch.no_grad():
        out = model(pixel_values, output_extractor_states=True)
    # zero output projections: the query stays the (zero) temporal class token
    assert all(torch.count_nonzero(state) == 0 for state in out.extractor_states)
    cls_mean = out.last_hidden_state.view(2, 3, 5, 32)[:, :, 0].mean(1)
    torch.testing.assert_close(out.pooler_output, 0.5 * cls_mean)


def test_temporal_modules_see_frame_order(tiny_captioner):
    dual = tiny_captioner.internvideo_mm
    pixel_values = torch.randn(1, 3, 3, 28, 28)
    with torch.no_grad():
        forward = dual.get_video_features(pixel_values).pooler_output
        reversed_ = dual.get_video_features(pixel_values.flip(1)).pooler_output
        frames = dual.get_image_features(pixel_values[0]).pooler_output
    assert not torch.allclose(forward, reversed_, atol=1e-4)  # the depthwise conv is not symmetric in time
    assert frames.shape == (3, 24)


def test_eager_and_sdpa_agree(tiny_captioner):
    pixel_values, input_ids = torch.randn(2, 3, 3, 28, 28), clip_texts(2)
    results = []
    for implementation in ("eager", "sdpa"):
        tiny_captioner.set_attn_implementation(implementation)
        with torch.no_grad():
            out = tiny_captioner.internvideo_mm(pixel_values, input_ids)
            results.append((out.logits_per_video, tiny_captioner(pixel_values, input_ids).logits))
    for eager, sdpa in zip(*results):
        torch.testing.assert_close(eager, sdpa, atol=1e-5, rtol=1e-5)


def test_text_pooling_is_at_end_token_and_causal(tiny_captioner):
    dual = tiny_captioner.internvideo_mm
    ids = clip_texts(2)
    changed = ids.clone()
    end = int(ids[0].argmax())
    changed[0, end + 1 :] = 5  # tokens after the end token cannot influence it (causal attention)
    with torch.no_grad():
        a = dual.get_text_features(ids).pooler_output
        b = dual.get_text_features(changed).pooler_output
        masked = dual.get_text_features(ids, masked_positions=torch.zeros_like(ids, dtype=torch.bool)).pooler_output
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(masked, a)


def test_caption_loss_trains(tiny_captioner):
    model = tiny_captioner.train()
    pixel_values, input_ids = torch.randn(2, 3, 3, 28, 28), clip_texts(2)
    labels = input_ids[:, 1:].clone()
    labels[labels == 0] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(pixel_values, input_ids, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < losses[0] - 0.5


def test_contrastive_loss_and_logit_scale_clamp(tiny_captioner):
    dual = tiny_captioner.internvideo_mm.train()
    with torch.no_grad():
        dual.logit_scale.fill_(7.0)
    out = dual(torch.randn(2, 3, 3, 28, 28), clip_texts(2), return_loss=True)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert dual.logit_scale.item() == pytest.approx(4.6052)
    with pytest.raises(ValueError, match="pairs the i-th video"):
        dual(torch.randn(2, 3, 3, 28, 28), clip_texts(3), return_loss=True)


def test_clear_errors():
    model = InternVideoMMVisionModel(InternVideoMMVisionConfig(**tiny_vision())).eval()
    with pytest.raises(ValueError, match="never resamples"):
        model(torch.randn(1, 3, 3, 32, 32))
    with pytest.raises(Exception, match="extractor_layers must be increasing"):
        InternVideoMMVisionConfig(**tiny_vision(extractor_layers=[2, 5]))
    text = InternVideoMMTextModel(InternVideoMMTextConfig(**tiny_text()))
    with pytest.raises(ValueError, match="context length"):
        text(input_ids=torch.ones(1, 13, dtype=torch.long))


def test_auto_classes_and_save_load(tiny_captioner):
    pixel_values, input_ids = torch.randn(1, 3, 3, 28, 28), clip_texts(1)
    with tempfile.TemporaryDirectory() as folder:
        tiny_captioner.save_pretrained(folder)
        assert isinstance(AutoConfig.from_pretrained(folder), InternVideoMMConfig)
        loaded = AutoModelForPreTraining.from_pretrained(folder).eval()
        dual = AutoModel.from_pretrained(folder).eval()
    assert isinstance(loaded, InternVideoMMForCaptioning) and isinstance(dual, InternVideoMMModel)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values, input_ids).logits, tiny_captioner(pixel_values, input_ids).logits)
        torch.testing.assert_close(dual(pixel_values, input_ids).logits_per_video,
                                   tiny_captioner.internvideo_mm(pixel_values, input_ids).logits_per_video)  # fmt: skip

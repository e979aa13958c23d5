"""Stage-2 video-text models with tiny configs: Transformers' common tests (`ModelTesterMixin`, `ConfigTester` from the
transformers sdist of the pinned version) for the text encoder and the dual encoder, plus the behaviour the issue
asks for (entry points, re-ranking, training losses, eager/SDPA agreement, clear errors).

Every mixin test that is skipped carries its reason in the decorator.
"""

from __future__ import annotations

import copy
import tempfile
import unittest
from unittest import mock

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, PreTrainedConfig
from transformers.models.auto import modeling_auto
from transformers_tests import import_upstream

from transformers_internvideo2 import (
    InternVideo2Config,
    InternVideo2ForRetrieval,
    InternVideo2Model,
    InternVideo2TextConfig,
    InternVideo2TextForMaskedLM,
    InternVideo2TextModel,
)
from transformers_internvideo2.tasks.retrieval import rerank_with_matching_head
from transformers_internvideo2.training.masking import mask_tokens_for_mlm


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ids_tensor = _modeling_common.ids_tensor
random_attention_mask = _modeling_common.random_attention_mask
ConfigTester = import_upstream("test_configuration_common").ConfigTester

def tiny_text_config(**overrides) -> InternVideo2TextConfig:
    kwargs = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=24,
        fusion_layer=1,
        encoder_width=24,
        cls_token_id=2,
        mask_token_id=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    kwargs.update(overrides)
    return InternVideo2TextConfig(**kwargs)


def tiny_config(**overrides) -> InternVideo2Config:
    vision = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=30,
        image_size=28,
        patch_size=14,
        num_frames=4,
        pooler_output_size=20,
        pooler_num_attention_heads=4,
        image_position_embedding_type="separate",
        clip_teacher_hidden_size=16,
        clip_teacher_final_size=12,
        clip_num_return_layers=2,
    )
    vision.update(overrides.pop("vision_config", {}))
    text_overrides = {"encoder_width": overrides.get("vision_token_projection_size", vision["hidden_size"])}
    if not overrides.get("use_vision_token_projection"):
        text_overrides["encoder_width"] = vision["hidden_size"]
    text_overrides.update(overrides.pop("text_config", {}))
    text = tiny_text_config(**text_overrides).to_dict()
    return InternVideo2Config(vision_config=vision, text_config=text, projection_dim=16, **overrides)


def _zero_init_numeric_only(config):
    # The mixin's `_config_zero_init` sets every key containing "layer_scale" to 1e-10, taking it for an init scale;
    # the vision config's `layer_scale_force_fp32` is a bool flag, which the strict config rejects. Same rule, numeric
    # values only, recursing into sub-configs like the original.
    zeroed = copy.deepcopy(config)
    for key in list(zeroed):
        value = getattr(zeroed, key)
        is_init_scale = any(
            part in key for part in ("init_range", "initializer_range", "_std", "initializer_factor", "layer_scale")
        )
        if is_init_scale and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(zeroed, key, 1e-10)
        if isinstance(value, PreTrainedConfig):
            setattr(zeroed, key, _zero_init_numeric_only(value))
    return zeroed


def _patch_mappings(test: unittest.TestCase, entries):
    # The mixin decides what a class is (base model, masked LM, ...) from Transformers' static *_MAPPING_NAMES, which
    # only list in-library models; list ours for the duration of each test (as in test_modeling_internvideo2.py).
    for names, model_type, class_name in entries:
        patcher = mock.patch.dict(names, {model_type: class_name})
        patcher.start()
        test.addCleanup(patcher.stop)


# ----------------------------------------------------------------------------------------------------------------
# Text encoder
# ----------------------------------------------------------------------------------------------------------------
class InternVideo2TextModelTester:
    def __init__(self, parent, batch_size=3, seq_length=7, num_video_tokens=5):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.num_video_tokens = num_video_tokens
        self.is_training = True
        config = tiny_text_config()
        self.vocab_size = config.vocab_size
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        self.encoder_width = config.encoder_width

    def get_config(self) -> InternVideo2TextConfig:
        return tiny_text_config()

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        video_tokens = floats_tensor([self.batch_size, self.num_video_tokens, self.encoder_width])
        return self.get_config(), input_ids, attention_mask, video_tokens

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask, video_tokens = self.prepare_config_and_inputs()
        # with the video tokens every layer runs (text path + fusion path)
        return config, {"input_ids": input_ids, "attention_mask": attention_mask, "encoder_hidden_states": video_tokens}


class InternVideo2TextModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideo2TextModel, InternVideo2TextForMaskedLM)
    pipeline_model_mapping = {}
    test_resize_embeddings = True
    has_attentions = True

    def setUp(self):
        self.model_tester = InternVideo2TextModelTester(self)
        self.config_tester = ConfigTester(
            self, config_class=InternVideo2TextConfig, hidden_size=64, num_attention_heads=8
        )
        model_type = InternVideo2TextConfig.model_type
        _patch_mappings(
            self,
            [
                (modeling_auto.MODEL_MAPPING_NAMES, model_type, "InternVideo2TextModel"),
                (modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES, model_type, "InternVideo2TextForMaskedLM"),
            ],
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip(reason="The original text encoder has no inputs_embeds path (its fusion entry takes text_hidden_states).")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="The original text encoder has no inputs_embeds path (its fusion entry takes text_hidden_states).")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    def test_text_and_fusion_entry_points(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2TextModel(config).eval()
        with torch.no_grad():
            text = model.encode_text(inputs["input_ids"], inputs["attention_mask"], output_hidden_states=True)
            fused = model.fuse(text.last_hidden_state, inputs["attention_mask"], inputs["encoder_hidden_states"])
            full = model(**inputs)
            default_text = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        assert len(text.hidden_states) == config.fusion_layer + 1  # embeddings + the text layers only
        torch.testing.assert_close(default_text.last_hidden_state, text.last_hidden_state)
        torch.testing.assert_close(fused.last_hidden_state, full.last_hidden_state, atol=1e-6, rtol=0)
        # padding is masked: changing a padded token does not change the other positions
        ids = inputs["input_ids"].clone()
        mask = torch.ones_like(ids)
        mask[:, -2:] = 0
        with torch.no_grad():
            a = model.encode_text(ids, mask).last_hidden_state
            ids[:, -1] = (ids[:, -1] + 1) % config.vocab_size
            b = model.encode_text(ids, mask).last_hidden_state
        torch.testing.assert_close(a[:, :-2], b[:, :-2])

    def test_clear_errors(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2TextModel(config).eval()
        too_long = torch.ones(1, config.max_position_embeddings + 1, dtype=torch.long)
        with pytest.raises(ValueError, match="max_position_embeddings"):
            model(input_ids=too_long)
        with pytest.raises(ValueError, match="encoder_hidden_states"):
            model(input_ids=inputs["input_ids"], mode="full")
        with pytest.raises(ValueError, match="mode must be one of"):
            model(input_ids=inputs["input_ids"], mode="multi_modal")
        with pytest.raises(ValueError, match="batch"):
            model(input_ids=inputs["input_ids"], encoder_hidden_states=inputs["encoder_hidden_states"][:1])
        with pytest.raises(ValueError, match="attention_mask"):
            model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"][:, :-1])

    def test_mlm_head_is_tied_and_survives_save_load(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2TextForMaskedLM(config).eval()
        assert model.mlm_head.decoder.weight is model.text_model.embeddings.word_embeddings.weight
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            reloaded = InternVideo2TextForMaskedLM.from_pretrained(folder).eval()
        assert reloaded.mlm_head.decoder.weight is reloaded.text_model.embeddings.word_embeddings.weight
        with torch.no_grad():
            torch.testing.assert_close(model(**inputs).logits, reloaded(**inputs).logits)

    def test_eager_and_sdpa_agree(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        torch.manual_seed(0)
        eager = InternVideo2TextForMaskedLM(config).eval()
        eager.set_attn_implementation("eager")
        sdpa = InternVideo2TextForMaskedLM(config).eval()
        sdpa.load_state_dict(eager.state_dict())
        sdpa.set_attn_implementation("sdpa")
        with torch.no_grad():
            diff = (eager(**inputs).logits - sdpa(**inputs).logits).abs().max().item()
        assert diff < 1e-5, diff


# ----------------------------------------------------------------------------------------------------------------
# Dual encoder
# ----------------------------------------------------------------------------------------------------------------
class InternVideo2ModelTester:
    def __init__(self, parent, batch_size=2, seq_length=7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.text_config.hidden_size
        self.num_hidden_layers = config.text_config.num_hidden_layers
        self.vocab_size = config.text_config.vocab_size

    def get_config(self, **overrides) -> InternVideo2Config:
        return tiny_config(**overrides)

    def prepare_config_and_inputs(self):
        config = self.get_config()
        vision = config.vision_config
        pixel_values = floats_tensor(
            [self.batch_size, vision.num_frames, vision.num_channels, vision.image_size, vision.image_size]
        )
        input_ids = ids_tensor([self.batch_size, self.seq_length], config.text_config.vocab_size)
        input_ids[:, 0] = config.text_config.cls_token_id
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, -3:] = 0
        return config, pixel_values, input_ids, attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values, input_ids, attention_mask = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": attention_mask}

    @property
    def video_model_tester(self):
        """What the mixin's `get_video_features` tests feed: the clips, and all vision blocks."""
        return _FeatureTester(self, ("pixel_values",), self.get_config().vision_config.num_hidden_layers)

    @property
    def text_model_tester(self):
        """What the mixin's `get_text_features` tests feed: the texts, and the text path only (the layers below
        `fusion_layer`, which is what the text feature is computed from)."""
        return _FeatureTester(self, ("input_ids", "attention_mask"), self.get_config().text_config.fusion_layer)


class _FeatureTester:
    def __init__(self, tester: InternVideo2ModelTester, keys: tuple[str, ...], num_hidden_layers: int):
        self.tester, self.keys, self.num_hidden_layers = tester, keys, num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        return config, {key: inputs[key] for key in self.keys}


class InternVideo2ModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideo2Model,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    has_attentions = False  # composite: attentions are per sub-model (vision_model_output / text_model_output)
    _is_composite = True

    def setUp(self):
        self.model_tester = InternVideo2ModelTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideo2Config, has_text_modality=False)
        _patch_mappings(self, [(modeling_auto.MODEL_MAPPING_NAMES, InternVideo2Config.model_type, "InternVideo2Model")])

    def test_config(self):
        self.config_tester.run_common_tests()

    # The mixin's get_audio_features tests need an audio model: the same tiny model with a tiny BEATs (the
    # audio-video-text variant), fed filterbanks; it checks the typed output, hidden states and attentions of BEATs.
    AUDIO_CONFIG = dict(num_mel_bins=16, patch_size=8, patch_embed_dim=8, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=16, num_conv_pos_embeddings=4,
                        num_conv_pos_embedding_groups=2, num_buckets=8, max_distance=16)  # fmt: skip

    def _audio_features_prepare_config_and_inputs(self):
        config = tiny_config(audio_config=self.AUDIO_CONFIG, use_vision_token_projection=True,
                             vision_token_projection_size=24)  # fmt: skip
        return config, {"input_features": floats_tensor([self.model_tester.batch_size, 32, 16])}

    def _audio_features_get_expected_num_attentions(self, model_tester=None):
        return self.AUDIO_CONFIG["num_hidden_layers"]

    def test_can_load_ignoring_mismatched_shapes(self):
        with mock.patch.object(_modeling_common, "_config_zero_init", _zero_init_numeric_only):
            super().test_can_load_ignoring_mismatched_shapes()

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per sub-model in vision_model_output / "
                          "text_model_output and checked in test_sub_model_outputs.")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(
        reason="The dual encoder runs only the text path (layers below fusion_layer); Transformers resolves negative "
        "output_hidden_states indices against num_hidden_layers (all layers), so -1 does not address the text path's "
        "last state. Non-negative indices work; the text model passes this test with all its layers."
    )
    def test_can_capture_specific_layers_hidden_states(self):
        pass

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per sub-model.")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    def test_sub_model_outputs(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2Model(config).eval()
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
        assert len(out.vision_model_output.hidden_states) == config.vision_config.num_hidden_layers + 1
        assert len(out.text_model_output.hidden_states) == config.text_config.fusion_layer + 1
        assert out.logits_per_video.shape == (2, 2)
        torch.testing.assert_close(out.logits_per_text, out.logits_per_video.t())
        torch.testing.assert_close(out.video_embeds.norm(dim=-1), torch.ones(2))
        as_tuple = model(**inputs, return_dict=False)
        assert isinstance(as_tuple, tuple) and isinstance(as_tuple[-1], tuple)


# ----------------------------------------------------------------------------------------------------------------
# Behaviour of the video-text API
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_retrieval():
    torch.manual_seed(0)
    config, pixel_values, input_ids, attention_mask = InternVideo2ModelTester(None).prepare_config_and_inputs()
    return InternVideo2ForRetrieval(config).eval(), pixel_values, input_ids, attention_mask


def test_presets():
    config = InternVideo2Config.from_preset("internvideo2-stage2-1b")
    assert config.vision_config.num_frames == 4 and config.vision_config.hidden_size == 1408
    assert config.vision_config.image_position_embedding_type == "separate"
    assert config.text_config.num_hidden_layers == 24 and config.text_config.fusion_layer == 19
    assert config.text_config.encoder_width == 1408 and config.projection_dim == 512
    assert (config.temperature_init, config.temperature_min, config.temperature_max) == (0.07, 0.001, 0.5)
    six = InternVideo2Config.from_preset("internvideo2-stage2-6b")
    assert six.use_vision_token_projection and six.text_config.encoder_width == 768 and six.projection_dim == 768
    assert six.vision_config.image_position_embedding_type == "temporal_mean"
    with pytest.raises(Exception, match="encoder_width"):
        InternVideo2Config.from_preset("internvideo2-stage2-6b", use_vision_token_projection=False)
    with pytest.raises(ValueError, match="Unknown preset"):
        InternVideo2Config.from_preset("internvideo2-stage2-2b")


def test_auto_classes_and_save_load(tiny_retrieval):
    model, pixel_values, input_ids, attention_mask = tiny_retrieval
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        assert type(AutoConfig.from_pretrained(folder)) is InternVideo2Config
        dual = AutoModel.from_pretrained(folder).eval()
        retrieval = AutoModelForPreTraining.from_pretrained(folder).eval()
    assert type(dual) is InternVideo2Model and type(retrieval) is InternVideo2ForRetrieval
    assert retrieval.mlm_head.decoder.weight is retrieval.get_input_embeddings().weight
    with torch.no_grad():
        torch.testing.assert_close(
            dual.get_video_features(pixel_values).pooler_output, model.get_video_features(pixel_values).pooler_output
        )
        torch.testing.assert_close(
            retrieval.matching_scores(pixel_values, input_ids, attention_mask).logits,
            model.matching_scores(pixel_values, input_ids, attention_mask).logits,
        )
    assert type(AutoModel.from_config(tiny_text_config())) is InternVideo2TextModel


def test_features_entry_points(tiny_retrieval):
    model, pixel_values, input_ids, attention_mask = tiny_retrieval
    with torch.no_grad():
        video = model.get_video_features(pixel_values)
        text = model.get_text_features(input_ids, attention_mask)
        raw = model.get_video_features(pixel_values, normalize=False)
        raw_text = model.get_text_features(input_ids, attention_mask, normalize=False)
    assert isinstance(video, BaseModelOutputWithPooling) and isinstance(text, BaseModelOutputWithPooling)
    assert video.pooler_output.shape == (2, 16) and video.vision_pooler_output.shape == (2, 20)
    assert video.last_hidden_state.shape == (2, 1 + 4 * 4, 32)
    torch.testing.assert_close(video.pooler_output, torch.nn.functional.normalize(raw.pooler_output, dim=-1))
    torch.testing.assert_close(raw.pooler_output, model.internvideo2.vision_projection(video.vision_pooler_output))
    torch.testing.assert_close(text.pooler_output, torch.nn.functional.normalize(raw_text.pooler_output, dim=-1))
    torch.testing.assert_close(raw_text.pooler_output, model.internvideo2.text_projection(text.last_hidden_state[:, 0]))
    # 1B: the fusion layers attend to the vision tokens themselves
    assert model.fusion_tokens(video.last_hidden_state) is video.last_hidden_state
    # any number of frames, with the position embeddings resampled at forward time (the package policy: by default
    # whenever the grid differs; `False` refuses)
    eight = pixel_values.repeat_interleave(2, dim=1)
    with torch.no_grad():
        resampled = model.get_video_features(eight, interpolate_pos_encoding=True).pooler_output
        torch.testing.assert_close(model.get_video_features(eight).pooler_output, resampled, rtol=0, atol=0)
    assert resampled.shape == (2, 16)
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model.get_video_features(eight, interpolate_pos_encoding=False)


def test_single_image_uses_image_position_table(tiny_retrieval):
    model, pixel_values, _, _ = tiny_retrieval
    image = pixel_values[:, :1]
    with torch.no_grad():
        ours = model.get_video_features(image).last_hidden_state
        table = model.internvideo2.vision_model.embeddings.position_embeddings
        table.image.add_(1.0)
        shifted = model.get_video_features(image).last_hidden_state
        table.image.sub_(1.0)
    assert not torch.allclose(ours, shifted)  # the image table is what a 1-frame clip uses
    with pytest.raises(ValueError, match="add the frame axis"):
        model.get_video_features(pixel_values[:, 0])


def test_6b_style_token_projection():
    config = tiny_config(use_vision_token_projection=True, vision_token_projection_size=24,
                         vision_config=dict(hidden_size=48, image_position_embedding_type="temporal_mean"))
    model = InternVideo2ForRetrieval(config).eval()
    pixel_values = floats_tensor([2, 4, 3, 28, 28])
    with torch.no_grad():
        out = model.get_video_features(pixel_values)
        tokens = model.fusion_tokens(out.last_hidden_state)
    assert out.last_hidden_state.shape[-1] == 48 and tokens.shape[-1] == 24
    torch.testing.assert_close(tokens, model.internvideo2.vision_token_projection(out.last_hidden_state))


def test_matching_scores_and_rerank(tiny_retrieval):
    model, pixel_values, input_ids, attention_mask = tiny_retrieval
    with torch.no_grad():
        video = model.get_video_features(pixel_values)
        tokens = model.fusion_tokens(video.last_hidden_state)
        text = model.get_text_features(input_ids, attention_mask)
        similarity = video.pooler_output @ text.pooler_output.t()
        brute = torch.stack(
            [
                model.matching_scores(video_tokens=tokens[v : v + 1], input_ids=input_ids,
                                      attention_mask=attention_mask).match_logits
                for v in range(2)
            ]
        )
        full = rerank_with_matching_head(model, similarity, tokens, input_ids, attention_mask)
        top1 = rerank_with_matching_head(model, similarity, tokens, input_ids, attention_mask, k=1, batch_size=1)
    torch.testing.assert_close(full.video_to_text, brute, atol=1e-5, rtol=0)
    torch.testing.assert_close(full.text_to_video, brute.t(), atol=1e-5, rtol=0)
    for v in range(2):
        best = similarity[v].argmax()
        assert torch.allclose(top1.video_to_text[v, best], brute[v, best], atol=1e-5)
        assert (top1.video_to_text[v] == -100).sum() == 1
    with pytest.raises(ValueError, match="k must be >= 1"):
        rerank_with_matching_head(model, similarity, tokens, input_ids, attention_mask, k=0)
    scores = model.matching_scores(pixel_values, input_ids, attention_mask)
    torch.testing.assert_close(scores.match_probabilities, scores.logits.softmax(-1)[:, 1])
    with pytest.raises(ValueError, match="pairs"):
        model.matching_scores(pixel_values, input_ids.repeat(2, 1), attention_mask.repeat(2, 1))
    with pytest.raises(ValueError, match="exactly one"):
        model.matching_scores(input_ids=input_ids)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("num_fusion_layers", [1, 2])
def test_fuse_cls_computes_only_the_cls_row_of_the_full_fusion_path(attention, num_fusion_layers):
    """`fuse_cls` (what the matching head reads, its last layer run for the [CLS] row only) equals the [CLS] row of
    the full fusion path, with padded texts, in both attention kernels and in training mode without dropout."""
    torch.manual_seed(0)
    config = tiny_text_config(num_hidden_layers=1 + num_fusion_layers, fusion_layer=1)
    config._attn_implementation = attention
    text = InternVideo2TextModel(config).eval()
    input_ids = ids_tensor([5, 7], config.vocab_size)
    attention_mask = torch.ones(5, 7, dtype=torch.long)
    attention_mask[1, 4:] = 0
    attention_mask[3, 2:] = 0
    video_tokens = floats_tensor([5, 9, config.encoder_width]) * 3
    with torch.no_grad():
        hidden = text.encode_text(input_ids, attention_mask).last_hidden_state
        full = text.fuse(hidden, attention_mask, video_tokens).last_hidden_state[:, 0]
        fast = text.fuse_cls(hidden, attention_mask, video_tokens)
    assert fast.shape == (5, config.hidden_size)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
    text.train()  # no dropout in this config: the training path computes the same
    torch.testing.assert_close(text.fuse_cls(hidden, attention_mask, video_tokens), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="encoder_hidden_states must be"):
        text.fuse_cls(hidden, attention_mask, video_tokens[:2])
    with pytest.raises(ValueError, match="attention_mask has shape"):
        text.fuse_cls(hidden, attention_mask[:, :3], video_tokens)


def test_training_forward_losses(tiny_retrieval):
    model, pixel_values, input_ids, attention_mask = tiny_retrieval
    model.train()
    torch.manual_seed(1)
    mlm_ids, mlm_labels = mask_tokens_for_mlm(input_ids, model.config.text_config, 0.5)
    mlm_labels[0, 1] = input_ids[0, 1]  # at least one masked token
    out = model(pixel_values, input_ids, attention_mask, mlm_input_ids=mlm_ids, mlm_labels=mlm_labels)
    assert out.loss_vtc is not None and out.loss_vtm is not None and out.loss_mlm is not None
    # alone, the model adds its components; the stage-2 trainer weights them with its arguments
    torch.testing.assert_close(out.loss, out.loss_vtc + out.loss_vtm + out.loss_mlm)
    assert out.matching_logits.shape == (6, 2)
    out.loss.backward()
    for name in ("internvideo2.temperature", "matching_head.weight", "mlm_head.dense.weight",
                 "internvideo2.vision_projection.weight",
                 "internvideo2.text_model.encoder.layer.1.crossattention.self.key.weight",
                 "internvideo2.vision_model.encoder.layer.0.attention.qkv.weight"):
        assert model.get_parameter(name).grad is not None, name
    # MLM is computed only from labels drawn outside (the data side owns the corruption)
    out = model(pixel_values, input_ids, attention_mask)
    assert out.loss_mlm is None and out.mlm_logits is None
    torch.testing.assert_close(out.loss, out.loss_vtc + out.loss_vtm)
    with pytest.raises(ValueError, match="both"):
        model(pixel_values, input_ids, attention_mask, mlm_input_ids=mlm_ids)
    # masked video tokens (stage-2 training drops most of them)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :12] = True
    assert model(pixel_values, input_ids, attention_mask, bool_masked_pos=mask).loss.isfinite()
    # num_items_in_batch turns per-pair means into sums over the accumulated pairs; the masked-token count likewise
    torch.manual_seed(3)
    mean = model(pixel_values, input_ids, attention_mask, mlm_input_ids=mlm_ids, mlm_labels=mlm_labels)
    torch.manual_seed(3)
    summed = model(pixel_values, input_ids, attention_mask, mlm_input_ids=mlm_ids, mlm_labels=mlm_labels,
                   num_items_in_batch=4, num_masked_tokens_in_batch=10)  # fmt: skip
    torch.testing.assert_close(summed.loss_vtc, mean.loss_vtc * 2 / 4)
    torch.testing.assert_close(summed.loss_vtm, mean.loss_vtm * 2 / 4)
    masked = int((mlm_labels != -100).sum())
    torch.testing.assert_close(summed.loss_mlm, mean.loss_mlm * masked / 10)
    with pytest.raises(ValueError, match="2 videos and 1 texts"):
        model(pixel_values, input_ids[:1], attention_mask[:1])


def test_temperature_clamped_in_training(tiny_retrieval):
    model, pixel_values, input_ids, attention_mask = tiny_retrieval
    model.train()
    with torch.no_grad():
        model.internvideo2.temperature.fill_(5.0)
    model(pixel_values, input_ids, attention_mask)
    assert model.internvideo2.temperature.item() == pytest.approx(0.5)


def test_vtm_negatives_are_never_positives(tiny_retrieval):
    model, *_ = tiny_retrieval
    similarity = torch.randn(6, 6)
    sample_ids = torch.tensor([0, 0, 1, 1, 2, 3])
    for _ in range(20):
        for hard in (True, False):
            negatives = model._sample_negatives(similarity, sample_ids, hard)
            assert torch.all(sample_ids[negatives] != sample_ids)
    with pytest.raises(ValueError, match="negative"):
        model._sample_negatives(similarity[:2, :2], torch.tensor([5, 5]), True)


def test_mlm_masking_statistics():
    config = tiny_text_config(vocab_size=1000, cls_token_id=101, mask_token_id=103)
    ids = torch.randint(200, 1000, (400, 50))
    ids[:, 0] = config.cls_token_id
    ids[:, -10:] = config.pad_token_id
    generator = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens_for_mlm(ids, config, 0.5, generator)
    selected = labels != -100
    assert not selected[:, 0].any() and not selected[:, -10:].any()  # never [CLS] or [PAD]
    assert torch.equal(labels[selected], ids[selected])
    assert abs(selected[:, 1:-10].float().mean().item() - 0.5) < 0.02
    to_mask = (masked == config.mask_token_id) & selected
    unchanged = (masked == ids) & selected
    assert abs(to_mask.sum().item() / selected.sum().item() - 0.8) < 0.02
    assert abs(unchanged.sum().item() / selected.sum().item() - 0.1) < 0.02  # + random ids that hit the same id
    assert torch.equal(masked[~selected], ids[~selected])


def test_eager_and_sdpa_agree_dual_encoder():
    config, pixel_values, input_ids, attention_mask = InternVideo2ModelTester(None).prepare_config_and_inputs()
    torch.manual_seed(0)
    eager = InternVideo2ForRetrieval(config).eval()
    sdpa = InternVideo2ForRetrieval(config).eval()
    sdpa.load_state_dict(eager.state_dict())
    eager.set_attn_implementation("eager")
    sdpa.set_attn_implementation("sdpa")
    with torch.no_grad():
        a, b = eager.get_video_features(pixel_values), sdpa.get_video_features(pixel_values)
        for field in ("pooler_output", "last_hidden_state"):
            assert (a[field] - b[field]).abs().max().item() < 1e-5, field
        a = eager.matching_scores(pixel_values, input_ids, attention_mask).logits
        b = sdpa.matching_scores(pixel_values, input_ids, attention_mask).logits
        assert (a - b).abs().max().item() < 1e-5
        a = eager.get_text_features(input_ids, attention_mask).pooler_output
        b = sdpa.get_text_features(input_ids, attention_mask).pooler_output
        assert (a - b).abs().max().item() < 1e-5


def test_dual_encoder_errors():
    config, pixel_values, input_ids, attention_mask = InternVideo2ModelTester(None).prepare_config_and_inputs()
    model = InternVideo2Model(config).eval()
    with torch.no_grad():
        out = model(pixel_values, input_ids[:1], attention_mask[:1])  # N videos x M texts is fine without a loss
    assert out.logits_per_video.shape == (2, 1)
    with pytest.raises(ValueError, match="same size|2 videos and 1 texts"):
        model(pixel_values, input_ids[:1], attention_mask[:1], return_loss=True)
    long_ids = torch.ones(2, config.text_config.max_position_embeddings + 5, dtype=torch.long)
    with pytest.raises(ValueError, match="position embeddings for"):
        model.get_text_features(long_ids)
    assert model(pixel_values, input_ids, attention_mask, return_loss=True).loss.isfinite()


def test_keep_distillation_heads_variant():
    config = tiny_config(keep_vision_distillation_heads=True)
    model = InternVideo2Model(config).eval()
    assert hasattr(model.vision_model, "clip_decoders")
    with torch.no_grad():
        assert model.get_video_features(floats_tensor([1, 4, 3, 28, 28])).pooler_output.shape == (1, 16)
    with pytest.raises(Exception, match="clip_teacher_hidden_size"):
        tiny_config(keep_vision_distillation_heads=True, vision_config=dict(clip_teacher_hidden_size=0))

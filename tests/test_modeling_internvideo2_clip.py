"""InternVideo2-CLIP with tiny configs: Transformers' common tests (`ModelTesterMixin`, `ConfigTester`) for both text
towers (LLaMA and MobileCLIP) and for the MobileCLIP text model alone, plus the behaviour the issue asks for
(feature getters, pooling rules, temperature clamp, loss, eager/SDPA agreement, clear errors).

Every mixin test that is skipped carries its reason in the decorator."""

from __future__ import annotations

import copy
import unittest
from unittest import mock

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoConfig, AutoModel, LlamaConfig, PreTrainedConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.auto import modeling_auto
from transformers_tests import import_upstream

from transformers_internvideo2 import (
    InternVideo2ClipConfig,
    InternVideo2ClipModel,
    InternVideo2MobileCLIPTextConfig,
    InternVideo2MobileCLIPTextModel,
)


_modeling_common = import_upstream("test_modeling_common")
ModelTesterMixin = _modeling_common.ModelTesterMixin
floats_tensor = _modeling_common.floats_tensor
ids_tensor = _modeling_common.ids_tensor
ConfigTester = import_upstream("test_configuration_common").ConfigTester

VOCAB = 99


def tiny_vision(**overrides) -> dict:
    vision = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=30, image_size=28,
        patch_size=14, num_frames=4, pooler_output_size=24, pooler_num_attention_heads=4,
        image_position_embedding_type="temporal_mean", layer_scale_init_value=0.1, layer_scale_force_fp32=False,
    )  # fmt: skip
    vision.update(overrides)
    return vision


def tiny_mobileclip_text(**overrides) -> dict:
    text = dict(model_type="internvideo2_mobileclip_text", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, max_position_embeddings=12, projection_dim=16,
                bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1)  # fmt: skip
    text.update(overrides)
    return text


def tiny_llama_text(**overrides) -> dict:
    text = dict(model_type="llama", vocab_size=VOCAB, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=32, pad_token_id=0,
                bos_token_id=1, eos_token_id=2)  # fmt: skip
    text.update(overrides)
    return text


def tiny_config(tower: str = "mobileclip", **overrides) -> InternVideo2ClipConfig:
    if tower == "mobileclip":
        kwargs = dict(vision_config=tiny_vision(), text_config=tiny_mobileclip_text(), projection_dim=16,
                      use_vision_alignment=True)  # fmt: skip
    else:  # LLaMA: no vision projection, the pooler output is the embedding
        kwargs = dict(vision_config=tiny_vision(), text_config=tiny_llama_text(), projection_dim=24)
    kwargs.update(overrides)
    return InternVideo2ClipConfig(**kwargs)


def text_ids(batch_size: int, seq_length: int, tower: str, lengths=None) -> torch.Tensor:
    """Right-padded ids as the processors write them: MobileCLIP `<sot> ... <eot>` (eot = the largest id), LLaMA
    `<s> ... </s>` with pad 0."""
    lengths = lengths or [seq_length - (i % 3) for i in range(batch_size)]
    ids = torch.zeros(batch_size, seq_length, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(3, VOCAB - 2, (length,))
        if tower == "mobileclip":
            ids[row, 0], ids[row, length - 1] = VOCAB - 2, VOCAB - 1
        else:
            ids[row, 0], ids[row, length - 1] = 1, 2
    return ids


def _zero_init_numeric_only(config):
    # see test_modeling_internvideo2_video_text.py: `layer_scale_force_fp32` is a bool the mixin would set to 1e-10
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


class _FeatureTester:
    def __init__(self, tester, keys: tuple[str, ...], num_hidden_layers: int):
        self.tester, self.keys, self.num_hidden_layers = tester, keys, num_hidden_layers

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        return config, {key: inputs[key] for key in self.keys}


class InternVideo2ClipModelTester:
    tower = "mobileclip"

    def __init__(self, parent, batch_size=2, seq_length=8):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        config = self.get_config()
        self.hidden_size = config.text_config.hidden_size
        self.num_hidden_layers = config.text_config.num_hidden_layers
        self.vocab_size = VOCAB

    def get_config(self) -> InternVideo2ClipConfig:
        return tiny_config(self.tower)

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        vision = config.vision_config
        pixel_values = floats_tensor(
            [self.batch_size, vision.num_frames, vision.num_channels, vision.image_size, vision.image_size]
        )
        return config, {"pixel_values": pixel_values, "input_ids": text_ids(self.batch_size, self.seq_length, self.tower)}

    @property
    def video_model_tester(self):
        return _FeatureTester(self, ("pixel_values",), self.get_config().vision_config.num_hidden_layers)

    @property
    def text_model_tester(self):
        return _FeatureTester(self, ("input_ids",), self.get_config().text_config.num_hidden_layers)


class _ClipTestBase(ModelTesterMixin):
    all_model_classes = (InternVideo2ClipModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    has_attentions = False  # composite: attentions are per tower (vision_model_output / text_model_output)
    _is_composite = True
    model_tester_class = InternVideo2ClipModelTester

    def setUp(self):
        self.model_tester = self.model_tester_class(self)
        self.config_tester = ConfigTester(self, config_class=InternVideo2ClipConfig, has_text_modality=False)
        patcher = mock.patch.dict(
            modeling_auto.MODEL_MAPPING_NAMES, {InternVideo2ClipConfig.model_type: "InternVideo2ClipModel"}
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_can_load_ignoring_mismatched_shapes(self):
        with mock.patch.object(_modeling_common, "_config_zero_init", _zero_init_numeric_only):
            super().test_can_load_ignoring_mismatched_shapes()

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per tower and checked in "
                          "test_tower_outputs.")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="Composite dual encoder: hidden states are returned per tower.")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    @unittest.skip(reason="Composite dual encoder: per-tower hidden states, see test_tower_outputs.")
    def test_can_capture_specific_layers_hidden_states(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="Video + text input: there is no single inputs_embeds path.")
    def test_inputs_embeds_matches_input_ids(self):
        pass

    def test_tower_outputs(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = InternVideo2ClipModel(config).eval()
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
        assert len(out.vision_model_output.hidden_states) == config.vision_config.num_hidden_layers + 1
        assert len(out.text_model_output.hidden_states) == config.text_config.num_hidden_layers + 1
        assert out.logits_per_video.shape == (2, 2)
        torch.testing.assert_close(out.logits_per_text, out.logits_per_video.t())
        torch.testing.assert_close(out.video_embeds.norm(dim=-1), torch.ones(2))
        torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(2))
        as_tuple = model(**inputs, return_dict=False)
        assert isinstance(as_tuple, tuple) and isinstance(as_tuple[-1], tuple)


class InternVideo2ClipMobileCLIPTest(_ClipTestBase, unittest.TestCase):
    model_tester_class = InternVideo2ClipModelTester


class _LlamaTester(InternVideo2ClipModelTester):
    tower = "llama"


class InternVideo2ClipLlamaTest(_ClipTestBase, unittest.TestCase):
    model_tester_class = _LlamaTester


# ----------------------------------------------------------------------------------------------------------------
# MobileCLIP text transformer alone
# ----------------------------------------------------------------------------------------------------------------
class MobileCLIPTextModelTester:
    def __init__(self, parent, batch_size=2, seq_length=8):
        self.parent = parent
        self.batch_size, self.seq_length = batch_size, seq_length
        self.is_training = True
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads, self.vocab_size = 32, 2, 4, VOCAB

    def get_config(self):
        text = tiny_mobileclip_text()
        text.pop("model_type")
        return InternVideo2MobileCLIPTextConfig(**text)

    def prepare_config_and_inputs_for_common(self):
        return self.get_config(), {"input_ids": text_ids(self.batch_size, self.seq_length, "mobileclip")}


class InternVideo2MobileCLIPTextModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (InternVideo2MobileCLIPTextModel,)
    pipeline_model_mapping = {}
    test_resize_embeddings = False

    def setUp(self):
        self.model_tester = MobileCLIPTextModelTester(self)
        self.config_tester = ConfigTester(self, config_class=InternVideo2MobileCLIPTextConfig, hidden_size=32)
        patcher = mock.patch.dict(modeling_auto.MODEL_MAPPING_NAMES, {
            InternVideo2MobileCLIPTextConfig.model_type: "InternVideo2MobileCLIPTextModel"})  # fmt: skip
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_config(self):
        self.config_tester.run_common_tests()


# ----------------------------------------------------------------------------------------------------------------
# Behaviour
# ----------------------------------------------------------------------------------------------------------------
def test_presets_describe_the_official_models():
    one_b = InternVideo2ClipConfig.from_preset("internvideo2-clip-1b")
    assert one_b.text_tower == "llama" and isinstance(one_b.text_config, LlamaConfig)
    assert one_b.text_config.vocab_size == 49954 and one_b.projection_dim == 768 and not one_b.use_vision_alignment
    assert one_b.vision_config.num_frames == 8 and not one_b.vision_config.layer_scale_force_fp32
    b14 = InternVideo2ClipConfig.from_preset("internvideo2-clip-b14")
    assert b14.text_tower == "internvideo2_mobileclip_text" and b14.projection_dim == 512 and b14.use_vision_alignment
    assert b14.text_config.max_position_embeddings == 77 and b14.text_config.causal_attention
    with pytest.raises(ValueError, match="Unknown preset"):
        InternVideo2ClipConfig.from_preset("internvideo2-clip-xl")


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="model_type"):
        InternVideo2ClipConfig(vision_config=tiny_vision(), text_config={"model_type": "bert"})
    with pytest.raises(StrictDataclassClassValidationError, match="projection_dim"):
        tiny_config("llama", projection_dim=16)


@pytest.mark.parametrize("tower", ["mobileclip", "llama"])
def test_save_load_and_auto_classes(tmp_path, tower):
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config(tower)).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).text_tower == model.config.text_tower
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, InternVideo2ClipModel)
    pixel_values = torch.randn(2, 4, 3, 28, 28)
    ids = text_ids(3, 8, tower)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values, ids).logits_per_video, model(pixel_values, ids).logits_per_video)


def test_feature_getters_return_pooling_outputs():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip")).eval()
    with torch.no_grad():
        video = model.get_video_features(torch.randn(2, 4, 3, 28, 28))
        text = model.get_text_features(text_ids(3, 8, "mobileclip"))
        image = model.get_video_features(torch.randn(2, 1, 3, 28, 28))  # one frame: time-mean position table
    assert isinstance(video, BaseModelOutputWithPooling) and isinstance(text, BaseModelOutputWithPooling)
    assert video.pooler_output.shape == (2, 16) and video.vision_pooler_output.shape == (2, 24)
    assert text.pooler_output.shape == (3, 16) and text.last_hidden_state.shape == (3, 8, 32)
    assert image.pooler_output.shape == (2, 16)
    with pytest.raises(ValueError, match="frames"):
        model.get_video_features(torch.randn(2, 3, 28, 28))


def test_mobileclip_pools_the_end_of_text_token_and_is_causal():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip")).eval()
    ids = text_ids(2, 8, "mobileclip", lengths=[5, 8])
    with torch.no_grad():
        text = model.get_text_features(ids, normalize=False)
        changed = ids.clone()
        changed[0, 6] = 7  # padding after the end-of-text token: invisible to it under causal attention
        after = model.get_text_features(changed, normalize=False)
    pooled_state = text.last_hidden_state[0, 4]  # position of the end-of-text token (the largest id)
    torch.testing.assert_close(text.pooler_output[0], model.text_projection(pooled_state))
    torch.testing.assert_close(after.pooler_output[0], text.pooler_output[0])


def test_mobileclip_embed_scale_is_not_applied():
    torch.manual_seed(0)
    text_model = InternVideo2MobileCLIPTextModel(InternVideo2MobileCLIPTextConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=0, num_attention_heads=4, intermediate_size=8,
        max_position_embeddings=6)).eval()  # fmt: skip
    ids = torch.tensor([[97, 5, 98, 0, 0, 0]])
    with torch.no_grad():
        hidden = text_model(ids).last_hidden_state
    assert text_model.embed_scale == pytest.approx(32**-0.5)
    unscaled = text_model.token_embedding(ids) + text_model.position_embedding
    torch.testing.assert_close(hidden, text_model.final_layer_norm(unscaled))


def test_mobileclip_resamples_positions_for_other_lengths():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip")).eval()
    table = model.text_model.position_table(6)
    reference = torch.nn.functional.interpolate(model.text_model.position_embedding[None, None], size=(6, 32),
                                                mode="bilinear")[0, 0]  # fmt: skip
    torch.testing.assert_close(table, reference)
    with torch.no_grad():
        assert model.get_text_features(text_ids(2, 6, "mobileclip")).pooler_output.shape == (2, 16)


def test_llama_pools_the_last_non_padding_token():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("llama")).eval()
    ids = text_ids(2, 9, "llama", lengths=[4, 9])
    with torch.no_grad():
        text = model.get_text_features(ids, normalize=False)
        explicit = model.get_text_features(ids, attention_mask=(ids > 0).long(), normalize=False)
    torch.testing.assert_close(text.pooler_output[0], model.text_projection(text.last_hidden_state[0, 3]))
    torch.testing.assert_close(explicit.pooler_output, text.pooler_output)
    left_padded = torch.zeros_like(ids)
    left_padded[0, 5:] = 1
    left_padded[1] = 1
    with pytest.raises(ValueError, match="right padding"):
        model.get_text_features(ids, attention_mask=left_padded)


def test_temperature_is_clamped_in_training_and_loss_trains():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("mobileclip"))
    with torch.no_grad():
        model.temperature.fill_(0.001)
    pixel_values, ids = torch.randn(3, 4, 3, 28, 28), text_ids(3, 8, "mobileclip")
    model.eval()
    with torch.no_grad():
        eval_out = model(pixel_values, ids)
    assert model.temperature.item() == pytest.approx(0.001)  # evaluation divides by the stored value, as the original
    torch.testing.assert_close(eval_out.logits_per_video, eval_out.video_embeds @ eval_out.text_embeds.t() / 0.001)
    model.train()
    out = model(pixel_values, ids, return_loss=True)
    assert model.temperature.item() == pytest.approx(0.01)
    out.loss.backward()
    assert model.temperature.grad is not None and model.vision_model.pooler.out_proj.weight.grad is not None
    with pytest.raises(ValueError, match="pairs"):
        model(pixel_values, ids[:2], return_loss=True)


@pytest.mark.parametrize("tower", ["mobileclip", "llama"])
def test_eager_and_sdpa_agree(tower):
    config = tiny_config(tower)
    pixel_values, ids = torch.randn(2, 4, 3, 28, 28), text_ids(3, 8, tower)
    outputs = {}
    for implementation in ("eager", "sdpa"):
        torch.manual_seed(1)
        model = InternVideo2ClipModel._from_config(config, attn_implementation=implementation).eval()
        assert model.config.text_config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = model(pixel_values, ids).logits_per_video
    torch.testing.assert_close(outputs["eager"], outputs["sdpa"], atol=1e-4, rtol=1e-4)


def test_saved_folder_loads_as_remote_code(tmp_path):
    """A saved CLIP folder carries its code: `trust_remote_code=True` loads it in a fresh process that does not
    import this package, and gives the same logits."""
    import json
    import os
    import subprocess
    import sys

    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config("llama")).eval()
    pixel_values, ids = torch.randn(2, 4, 3, 28, 28), text_ids(3, 8, "llama")
    with torch.no_grad():
        expected = model(pixel_values, ids).logits_per_video
    model.save_pretrained(tmp_path / "clip")
    torch.save({"pixel_values": pixel_values, "ids": ids, "expected": expected}, tmp_path / "inputs.pt")
    assert json.loads((tmp_path / "clip" / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "modeling_internvideo2_clip.InternVideo2ClipModel"
    )
    script = (
        "import sys, torch\n"
        "from transformers import AutoModel\n"
        f"data = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        f"model = AutoModel.from_pretrained({str(tmp_path / 'clip')!r}, trust_remote_code=True).eval()\n"
        "assert 'transformers_internvideo2' not in sys.modules, 'the package was imported'\n"
        "with torch.no_grad():\n"
        "    out = model(data['pixel_values'], data['ids']).logits_per_video\n"
        "print('DIFF', (out - data['expected']).abs().max().item(), type(model).__module__)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line = [line for line in done.stdout.splitlines() if line.startswith("DIFF")][0]
    # within float32 rounding, not bit-equal: another process may take another kernel path (1.9e-6 on an AMD EPYC)
    assert float(line.split()[1]) <= 1e-5 and "transformers_modules" in line

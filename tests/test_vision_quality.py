"""Quality bar of the vision models beyond the common mixin tests: attention back-ends agree, bf16 is finite,
activation checkpointing trains with identical gradients, position embeddings resample at forward time, masked
inputs, base-model loading from a classifier, exact gradient accumulation, PEFT LoRA, bitsandbytes on CPU,
`device_map="auto"` splitting at block boundaries and FSDP2 wrapping by `_no_split_modules`.

All on a tiny configuration (width 32, 2 blocks, 4 frames of 28 px = a 4x2x2 patch grid), CPU only.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn


# bitsandbytes logs a missing optional CPU kernel on import (peft imports it too) and a dtype cast on every 8-bit
# matmul; neither matters here.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

from transformers import AutoModel, AutoModelForVideoClassification  # noqa: E402
from transformers import logging as transformers_logging  # noqa: E402
from transformers.modeling_layers import GradientCheckpointingLayer  # noqa: E402

from transformers_internvideo2 import (  # noqa: E402
    InternVideo2ForVideoClassification,
    InternVideo2VisionConfig,
    InternVideo2VisionModel,
)


ATTENTION_ATOL = 1e-5
BATCH, FRAMES, SIZE, PATCH = 2, 4, 28, 14
NUM_PATCHES = FRAMES * (SIZE // PATCH) ** 2  # 16
SEQ_LEN = 1 + NUM_PATCHES


def tiny_config(**overrides) -> InternVideo2VisionConfig:
    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=SIZE,
        patch_size=PATCH,
        num_frames=FRAMES,
        pooler_output_size=24,
        pooler_num_attention_heads=4,
        num_labels=3,
    )
    kwargs.update(overrides)
    return InternVideo2VisionConfig(**kwargs)


def make_classifier(seed: int = 0, **overrides) -> InternVideo2ForVideoClassification:
    torch.manual_seed(seed)
    return InternVideo2ForVideoClassification(tiny_config(**overrides)).eval()


def videos(batch: int = BATCH, frames: int = FRAMES, size: int = SIZE, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator)


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    """A randomly initialised tiny classifier saved to disk, with its fp32 (eager) reference outputs."""
    model = make_classifier()
    model.config._attn_implementation = "eager"
    path = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(path)
    pixel_values = videos()
    with torch.no_grad():
        outputs = model(pixel_values, output_hidden_states=True)
    return path, pixel_values, outputs


@pytest.fixture(autouse=True)
def quiet_transformers():
    # Load reports (e.g. the classifier keys a backbone does not use) are expected here; keep the test log readable.
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    yield
    transformers_logging.set_verbosity(verbosity)


# ----------------------------------------------------------------------------------------------------------------------
# Attention implementations and dtypes
# ----------------------------------------------------------------------------------------------------------------------
def _assert_same_outputs(outputs, reference, atol=ATTENTION_ATOL):
    torch.testing.assert_close(outputs.logits, reference.logits, rtol=0, atol=atol)
    assert len(outputs.hidden_states) == len(reference.hidden_states)
    for ours, theirs in zip(outputs.hidden_states, reference.hidden_states):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=atol)


def test_sdpa_is_the_default_and_matches_eager(saved_classifier):
    path, pixel_values, eager_outputs = saved_classifier
    model = InternVideo2ForVideoClassification.from_pretrained(path).eval()
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        outputs = model(pixel_values, output_hidden_states=True)
    _assert_same_outputs(outputs, eager_outputs)

    # switching an instantiated model back to eager gives the eager numbers, and attention maps
    model.set_attn_implementation("eager")
    with torch.no_grad():
        outputs = model(pixel_values, output_hidden_states=True, output_attentions=True)
    _assert_same_outputs(outputs, eager_outputs, atol=0)
    assert len(outputs.attentions) == model.config.num_hidden_layers
    assert outputs.attentions[0].shape == (BATCH, 4, SEQ_LEN, SEQ_LEN)


def test_flex_attention_matches_eager(saved_classifier):
    pytest.importorskip("torch.nn.attention.flex_attention")
    path, pixel_values, eager_outputs = saved_classifier
    try:
        model = InternVideo2ForVideoClassification.from_pretrained(path, attn_implementation="flex_attention").eval()
    except (ImportError, ValueError) as err:  # pragma: no cover - depends on the torch build
        pytest.skip(f"flex_attention unavailable: {err}")
    assert model.config._attn_implementation == "flex_attention"
    with torch.no_grad():
        outputs = model(pixel_values, output_hidden_states=True)
    _assert_same_outputs(outputs, eager_outputs)


def test_flash_attention_matches_sdpa(saved_classifier):
    from transformers.utils import is_flash_attn_2_available

    if not (torch.cuda.is_available() and is_flash_attn_2_available()):
        pytest.skip("flash-attention needs CUDA and the flash_attn package")
    path, pixel_values, _ = saved_classifier  # pragma: no cover - GPU only
    kwargs = dict(dtype=torch.bfloat16, device_map="cuda")
    flash = InternVideo2ForVideoClassification.from_pretrained(path, attn_implementation="flash_attention_2", **kwargs)
    sdpa = InternVideo2ForVideoClassification.from_pretrained(path, attn_implementation="sdpa", **kwargs)
    inputs = pixel_values.to("cuda", torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(flash.eval()(inputs).logits, sdpa.eval()(inputs).logits, rtol=0, atol=2e-2)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_bf16_forward_is_finite(saved_classifier, attn_implementation):
    path, pixel_values, reference = saved_classifier
    model = InternVideo2ForVideoClassification.from_pretrained(
        path, dtype=torch.bfloat16, attn_implementation=attn_implementation
    ).eval()
    assert model.classifier.weight.dtype == torch.bfloat16
    with torch.no_grad():
        outputs = model(pixel_values.to(torch.bfloat16), output_hidden_states=True)
        # the resampled position embeddings go through float32 bicubic interpolation and back
        resampled = model(videos(frames=8, size=42).to(torch.bfloat16), interpolate_pos_encoding=True)
    assert outputs.logits.dtype == torch.bfloat16
    for tensor in (outputs.logits, *outputs.hidden_states, resampled.logits):
        assert torch.isfinite(tensor).all()
    # bf16 keeps ~3 significant digits: the logits stay close to the fp32 ones
    torch.testing.assert_close(outputs.logits.float(), reference.logits, rtol=0, atol=5e-2)


# ----------------------------------------------------------------------------------------------------------------------
# Activation (gradient) checkpointing
# ----------------------------------------------------------------------------------------------------------------------
def _count_checkpointed_calls(model) -> list[int]:
    """Wrap every block's checkpoint function to count how often it runs."""
    counter = [0]
    for layer in model.modules():
        if isinstance(layer, GradientCheckpointingLayer) and layer.gradient_checkpointing:
            checkpoint = layer._gradient_checkpointing_func

            def counting(*args, _checkpoint=checkpoint, **kwargs):
                counter[0] += 1
                return _checkpoint(*args, **kwargs)

            layer._gradient_checkpointing_func = counting
    return counter


@pytest.mark.parametrize("enable", ["gradient_checkpointing_enable", "activation_checkpointing_enable"])
def test_activation_checkpointing_same_gradients_and_trains(enable):
    reference = make_classifier().train()
    if not hasattr(reference, enable):
        pytest.skip(f"{enable} does not exist in this transformers version")
    checkpointed = copy.deepcopy(reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # v5 deprecates the old name in favour of the new one
        getattr(checkpointed, enable)()
    assert checkpointed.is_activation_checkpointing
    calls = _count_checkpointed_calls(checkpointed)

    pixel_values, labels = videos(batch=4), torch.tensor([0, 1, 2, 1])
    reference(pixel_values, labels=labels).loss.backward()
    checkpointed(pixel_values, labels=labels).loss.backward()
    assert calls[0] == checkpointed.config.num_hidden_layers  # every block went through the checkpoint function
    for (name, ours), (_, theirs) in zip(checkpointed.named_parameters(), reference.named_parameters()):
        assert ours.grad is not None, name
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-7, msg=name)

    optimizer = torch.optim.AdamW(checkpointed.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = checkpointed(pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


# ----------------------------------------------------------------------------------------------------------------------
# Position embeddings at other frame counts / resolutions
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("frames", "size"), [(2, SIZE), (8, SIZE), (FRAMES, 42), (8, 42)])
def test_interpolate_pos_encoding_runs_on_other_grids(frames, size):
    model = make_classifier()
    pixel_values = videos(frames=frames, size=size)
    # `interpolate_pos_encoding=False` refuses and says how to resample
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model.internvideo2(pixel_values, interpolate_pos_encoding=False)
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model(pixel_values, interpolate_pos_encoding=False)
    with torch.no_grad():
        outputs = model(pixel_values, interpolate_pos_encoding=True, output_hidden_states=True)
        # the package policy: every family resamples by default when the grid differs (the backbone too)
        by_default = model(pixel_values)
        backbone_default = model.internvideo2(pixel_values).pooler_output
        backbone_resampled = model.internvideo2(pixel_values, interpolate_pos_encoding=True).pooler_output
    assert outputs.logits.shape == (BATCH, 3)
    assert outputs.hidden_states[-1].shape == (BATCH, 1 + frames * (size // PATCH) ** 2, 32)
    assert torch.isfinite(outputs.logits).all()
    torch.testing.assert_close(by_default.logits, outputs.logits, rtol=0, atol=0)
    torch.testing.assert_close(backbone_default, backbone_resampled, rtol=0, atol=0)


def test_interpolate_pos_encoding_is_identity_on_the_trained_grid():
    model = make_classifier()
    pixel_values = videos()
    with torch.no_grad():
        plain = model(pixel_values).logits
        resampled = model(pixel_values, interpolate_pos_encoding=True).logits
    torch.testing.assert_close(resampled, plain, rtol=0, atol=0)


def test_position_resampling_is_linear_in_time_bicubic_in_space_and_keeps_cls():
    model = make_classifier()
    table = model.internvideo2.embeddings.position_embeddings
    stored = table.joint.detach()  # (1, 1 + t*h*w, C), t=4, h=w=2
    cls_row, patches = stored[:, :1], stored[0, 1:].reshape(FRAMES, 2, 2, -1)

    with torch.no_grad():
        in_time = table(8, 2, 2, interpolate=True)  # 8 frames at the trained resolution
        in_space = table(FRAMES, 3, 3, interpolate=True)  # 42 px at the trained frame count
    torch.testing.assert_close(in_time[:, :1], cls_row, rtol=0, atol=0)
    torch.testing.assert_close(in_space[:, :1], cls_row, rtol=0, atol=0)

    # time: every (row, column, channel) series is linearly resampled from 4 to 8 steps
    series = patches.permute(1, 2, 3, 0).reshape(1, -1, FRAMES)
    expected_time = F.interpolate(series, size=8, mode="linear", align_corners=False)
    expected_time = expected_time.reshape(2, 2, -1, 8).permute(3, 0, 1, 2).reshape(1, -1, stored.shape[-1])
    torch.testing.assert_close(in_time[:, 1:], expected_time, rtol=1e-6, atol=1e-6)

    # space: every frame's 2x2 map is bicubically resampled to 3x3
    maps = patches.permute(0, 3, 1, 2)  # (t, C, h, w)
    expected_space = F.interpolate(maps, size=(3, 3), mode="bicubic", align_corners=False)
    expected_space = expected_space.permute(0, 2, 3, 1).reshape(1, -1, stored.shape[-1])
    torch.testing.assert_close(in_space[:, 1:], expected_space, rtol=1e-6, atol=1e-6)


def test_separable_position_embeddings_resample():
    model = make_classifier(position_embedding_type="separable")
    with torch.no_grad():
        outputs = model(videos(frames=8, size=42), interpolate_pos_encoding=True)
    assert outputs.logits.shape == (BATCH, 3) and torch.isfinite(outputs.logits).all()


def test_checkpoint_trained_at_8_frames_224px_runs_at_4_16_frames_and_336px(tmp_path):
    """The official geometry (8 frames, 224 px, patch 14) at a tiny width: a saved checkpoint runs at other clip
    lengths and resolutions without re-conversion."""
    torch.manual_seed(0)
    config = tiny_config(image_size=224, num_frames=8, num_hidden_layers=1)
    InternVideo2VisionModel(config).save_pretrained(tmp_path)
    model = InternVideo2VisionModel.from_pretrained(tmp_path).eval()
    for frames, size in [(8, 224), (4, 224), (16, 224), (8, 336)]:
        with torch.no_grad():
            outputs = model(videos(batch=1, frames=frames, size=size), interpolate_pos_encoding=True)
        assert outputs.last_hidden_state.shape == (1, 1 + frames * (size // 14) ** 2, 32)
        assert outputs.pooler_output.shape == (1, 24)
        assert torch.isfinite(outputs.pooler_output).all()


# ----------------------------------------------------------------------------------------------------------------------
# Masked inputs
# ----------------------------------------------------------------------------------------------------------------------
def test_bool_masked_pos_keeps_the_visible_tokens():
    model = InternVideo2VisionModel(tiny_config()).eval()
    pixel_values = videos()
    generator = torch.Generator().manual_seed(0)
    mask = torch.zeros(BATCH, NUM_PATCHES, dtype=torch.bool)
    for row in mask:
        row[torch.randperm(NUM_PATCHES, generator=generator)[:10]] = True  # 10 masked, 6 visible per sample

    with torch.no_grad():
        full = model(pixel_values, output_hidden_states=True)
        masked = model(pixel_values, bool_masked_pos=mask, output_hidden_states=True)
        # the original's layout: one leading (cls) column, which must stay False
        with_cls_column = model(pixel_values, bool_masked_pos=torch.cat([torch.zeros(BATCH, 1).bool(), mask], 1))

    assert masked.last_hidden_state.shape == (BATCH, 1 + 6, 32)
    assert masked.pooler_output.shape == (BATCH, 24)
    # the encoder input is the unmasked embedding of exactly the visible tokens, cls first, in order
    visible = torch.cat([torch.ones(BATCH, 1).bool(), ~mask], 1)
    expected = full.hidden_states[0][visible].reshape(BATCH, 7, 32)
    torch.testing.assert_close(masked.hidden_states[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(with_cls_column.last_hidden_state, masked.last_hidden_state, rtol=0, atol=0)


def test_bool_masked_pos_errors():
    model = InternVideo2VisionModel(tiny_config()).eval()
    pixel_values = videos()
    uneven = torch.zeros(BATCH, NUM_PATCHES, dtype=torch.bool)
    uneven[0, :3] = True
    with pytest.raises(ValueError, match="same number of visible tokens"):
        model(pixel_values, bool_masked_pos=uneven)
    cls_masked = torch.zeros(BATCH, 1 + NUM_PATCHES, dtype=torch.bool)
    cls_masked[:, 0] = True
    with pytest.raises(ValueError, match="cls token"):
        model(pixel_values, bool_masked_pos=cls_masked)
    with pytest.raises(ValueError, match=r"bool_masked_pos must have shape \(batch, 16\)"):
        model(pixel_values, bool_masked_pos=torch.zeros(BATCH, 5, dtype=torch.bool))


# ----------------------------------------------------------------------------------------------------------------------
# Loading the backbone from a classifier, loss normalisation
# ----------------------------------------------------------------------------------------------------------------------
def test_auto_model_on_a_saved_classifier_gives_the_backbone(saved_classifier):
    path, pixel_values, _ = saved_classifier
    classifier = AutoModelForVideoClassification.from_pretrained(path).eval()
    backbone = AutoModel.from_pretrained(path).eval()
    assert type(classifier) is InternVideo2ForVideoClassification
    assert type(backbone) is InternVideo2VisionModel

    expected = classifier.internvideo2.state_dict()
    loaded = backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(
            backbone(pixel_values).pooler_output, classifier.internvideo2(pixel_values).pooler_output, rtol=0, atol=0
        )


def test_classifier_loss_honours_num_items_in_batch():
    model = make_classifier().train()
    pixel_values, labels = videos(batch=4), torch.tensor([0, 2, 1, 1])
    outputs = model(pixel_values, labels=labels)
    torch.testing.assert_close(outputs.loss, F.cross_entropy(outputs.logits, labels))
    summed = model(pixel_values, labels=labels, num_items_in_batch=torch.tensor(6)).loss
    torch.testing.assert_close(summed, F.cross_entropy(outputs.logits, labels, reduction="sum") / 6)

    # gradient accumulation over two micro-batches of 2, normalised by the 4 items of the full batch, gives exactly
    # the full-batch gradient (the Trainer passes num_items_in_batch for this)
    model.zero_grad()
    outputs.loss.backward()
    full_batch = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    for part in (slice(0, 2), slice(2, 4)):
        model(pixel_values[part], labels=labels[part], num_items_in_batch=torch.tensor(4)).loss.backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, full_batch[name], rtol=1e-5, atol=1e-7, msg=name)


# ----------------------------------------------------------------------------------------------------------------------
# PEFT
# ----------------------------------------------------------------------------------------------------------------------
LORA_TARGETS = ["qkv", "proj", "fc1", "fc2"]


def _lora_config():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS, modules_to_save=["classifier"])


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # raised inside peft
def test_lora_trains_saves_loads_and_merges(tmp_path):
    peft = pytest.importorskip("peft")
    base = make_classifier()
    base.save_pretrained(tmp_path / "base")
    model = peft.get_peft_model(base, _lora_config())

    adapted = {name.split(".lora_A")[0] for name, _ in model.named_parameters() if ".lora_A." in name}
    layers = {f"layer.{i}.{m}" for i in range(2) for m in ("attention.qkv", "attention.proj", "mlp.fc1", "mlp.fc2")}
    assert {name.split("encoder.")[1] for name in adapted} == layers  # the pooler's q/k/v/out_proj are not matched
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_" in name or "classifier.modules_to_save" in name for name in trainable)

    pixel_values, labels = videos(batch=4), torch.tensor([0, 1, 2, 1])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = model(pixel_values=pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses

    model.eval()
    with torch.no_grad():
        adapted_logits = model(pixel_values=pixel_values).logits
    model.save_pretrained(tmp_path / "adapter")

    fresh_base = InternVideo2ForVideoClassification.from_pretrained(tmp_path / "base")
    reloaded = peft.PeftModel.from_pretrained(fresh_base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values=pixel_values).logits, adapted_logits, rtol=0, atol=1e-6)

    merged = reloaded.merge_and_unload()
    assert type(merged) is InternVideo2ForVideoClassification
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(pixel_values).logits, adapted_logits, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # raised inside peft
def test_lora_with_reentrant_checkpointing_on_a_frozen_backbone():
    """PEFT freezes the backbone; re-entrant checkpointing then needs `enable_input_require_grads`, which hooks the
    module returned by `get_input_embeddings` (the tubelet Conv3d) so the blocks' inputs carry gradients."""
    peft = pytest.importorskip("peft")
    model = make_classifier()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    model.enable_input_require_grads()
    model = peft.get_peft_model(model, _lora_config()).train()
    model(pixel_values=videos(), labels=torch.tensor([0, 1])).loss.backward()
    lora_grads = [p.grad for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)


# ----------------------------------------------------------------------------------------------------------------------
# bitsandbytes (CPU) and device maps
# ----------------------------------------------------------------------------------------------------------------------
def _bitsandbytes():
    return pytest.importorskip("bitsandbytes")


def _linear_modules(model) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}


def test_8bit_loading_on_cpu(tmp_path):
    bnb = _bitsandbytes()
    from transformers import BitsAndBytesConfig

    model = make_classifier()
    model.save_pretrained(tmp_path)
    pixel_values = videos()
    with torch.no_grad():
        reference = model(pixel_values).logits
    # the 3-way head is kept in full precision (as usual for output heads); everything else is quantized
    quantization = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["classifier"])
    quantized = AutoModelForVideoClassification.from_pretrained(
        tmp_path, quantization_config=quantization, device_map="cpu"
    ).eval()
    linears = _linear_modules(quantized)
    assert type(linears.pop("classifier")) is nn.Linear
    assert linears and all(isinstance(m, bnb.nn.Linear8bitLt) for m in linears.values()), linears
    assert all(m.weight.dtype == torch.int8 for m in linears.values())
    with torch.no_grad():
        logits = quantized(pixel_values).logits
    # int8 weights + fp16 activations in the quantized matmuls: |logits| ~ 0.2 here, measured max|diff| ~ 2.5e-3
    torch.testing.assert_close(logits.float(), reference, rtol=0, atol=1e-2)


def test_4bit_loading_on_cpu_skipping_small_modules(tmp_path):
    bnb = _bitsandbytes()
    from transformers import BitsAndBytesConfig

    # The CPU 4-bit kernels need in_features >= 64 (the quantization block) and out_features % 32 == 0, so this
    # model is 64 wide; the only Linear that does not fit (the 3-way classifier) is skipped explicitly.
    model = make_classifier(hidden_size=64, intermediate_size=128, pooler_output_size=64)
    too_small = [
        name for name, m in _linear_modules(model).items() if m.in_features < 64 or m.out_features % 32 != 0
    ]
    assert too_small == ["classifier"]
    model.save_pretrained(tmp_path)
    pixel_values = videos()
    with torch.no_grad():
        reference = model(pixel_values).logits
    quantization = BitsAndBytesConfig(load_in_4bit=True, llm_int8_skip_modules=too_small)
    quantized = AutoModelForVideoClassification.from_pretrained(
        tmp_path, quantization_config=quantization, device_map="cpu"
    ).eval()
    linears = _linear_modules(quantized)
    assert type(linears.pop("classifier")) is nn.Linear
    assert all(isinstance(m, bnb.nn.Linear4bit) for m in linears.values())
    with torch.no_grad():
        logits = quantized(pixel_values).logits
    # NF4 weights: measured max|diff| ~ 0.06 on logits of magnitude ~0.3
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits.float(), reference, rtol=0, atol=0.15)


def test_device_map_auto_splits_only_between_blocks(tmp_path):
    """With too little CPU memory, `device_map="auto"` offloads part of the model to disk; `_no_split_modules`
    keeps every block (and the embeddings) whole on one device."""
    model = make_classifier(num_hidden_layers=4)
    model.save_pretrained(tmp_path / "model")
    pixel_values = videos()
    with torch.no_grad():
        reference = model(pixel_values).logits

    def size(module):
        return sum(p.numel() * p.element_size() for p in module.parameters())

    backbone = model.internvideo2
    budget = size(backbone.embeddings) + 2 * size(backbone.encoder.layer[0]) + 1000
    loaded = AutoModelForVideoClassification.from_pretrained(
        tmp_path / "model", device_map="auto", max_memory={"cpu": budget}, offload_folder=tmp_path / "offload"
    ).eval()
    device_map = loaded.hf_device_map
    assert {"cpu", "disk"} <= set(device_map.values()), device_map
    for name in device_map:
        inside_block = name.startswith("internvideo2.encoder.layer.") and name.count(".") > 3
        inside_embeddings = name.startswith("internvideo2.embeddings.")
        assert not (inside_block or inside_embeddings), f"{name} splits a no-split module: {device_map}"
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values).logits, reference, rtol=0, atol=0)

    # with enough memory everything stays on the CPU
    whole = AutoModelForVideoClassification.from_pretrained(tmp_path / "model", device_map="auto").eval()
    assert all(p.device.type == "cpu" for p in whole.parameters())


FSDP_SCRIPT = '''
import copy, sys
import torch
import torch.multiprocessing as mp

from distributed_support import exit_worker, gloo_process_group  # tests/ is on PYTHONPATH


def run(rank, world_size, port, result_path):
    with gloo_process_group(rank, world_size, port):
        shard_and_compare(rank, result_path)
    exit_worker()


def shard_and_compare(rank, result_path):
    from torch.distributed.fsdp import fully_shard
    from transformers_internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig

    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=28,
        patch_size=14, num_frames=4, pooler_output_size=24, pooler_num_attention_heads=4, num_labels=3,
    )
    torch.manual_seed(0)
    reference = InternVideo2ForVideoClassification(config)
    model = copy.deepcopy(reference)
    # wrap exactly the `_no_split_modules` (what accelerate/Trainer FSDP auto-wrapping uses), then the root
    no_split = set(model._no_split_modules)
    wrapped = [name for name, module in model.named_modules() if type(module).__name__ in no_split]
    for name in wrapped:
        fully_shard(model.get_submodule(name))
    fully_shard(model)
    generator = torch.Generator().manual_seed(1)
    pixel_values, labels = torch.randn(4, 4, 3, 28, 28, generator=generator), torch.tensor([0, 2, 1, 1])
    reference(pixel_values, labels=labels).loss.backward()  # full batch, unsharded
    part = slice(2 * rank, 2 * rank + 2)  # each rank its half; FSDP averages the gradients
    model(pixel_values[part], labels=labels[part]).loss.backward()
    expected = dict(reference.named_parameters())
    diff = max((p.grad.full_tensor() - expected[n].grad).abs().max().item() for n, p in model.named_parameters())
    if rank == 0:
        with open(result_path, "w") as f:
            f.write(" ".join([str(diff), *wrapped]))


if __name__ == "__main__":
    mp.spawn(run, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2, join=True)
'''


def test_fsdp2_wrapping_by_no_split_modules(tmp_path):
    """Two CPU ranks (gloo) shard the classifier with FSDP2 `fully_shard`, wrapping each `_no_split_modules`
    instance; the averaged sharded gradients equal the full-batch gradients of the unsharded model."""
    import subprocess
    import sys
    from pathlib import Path

    from distributed_support import free_port

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    port = free_port()
    script, result = tmp_path / "fsdp_check.py", tmp_path / "result.txt"
    script.write_text(FSDP_SCRIPT)
    tests_dir = Path(__file__).resolve().parent
    paths = [str(tests_dir.parent / "src"), str(tests_dir), os.environ.get("PYTHONPATH")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)))
    completed = subprocess.run(
        [sys.executable, str(script), str(port), str(result)], env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    diff, *wrapped = result.read_text().split()
    assert wrapped == ["internvideo2.embeddings", "internvideo2.encoder.layer.0", "internvideo2.encoder.layer.1"]
    assert float(diff) < 1e-6

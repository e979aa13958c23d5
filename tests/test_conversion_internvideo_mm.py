"""Conversion of InternVideo-MM checkpoints: every released key layout (`keys/v1_mm_*.json`, with and without the
caption decoder) maps completely onto our models on the meta device, the sizes inferred from the tensors are the
released ones, wrappers (lightning `state_dict`, retrieval `clip.*` at the top level, bare) are accepted, unknown keys
are refused unless explicitly ignored, the OpenAI CLIP weight merging is applied only on request and exactly as the
two original protocols, and the v101 fixture converts to a folder that reloads with identical outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.conversion.families import main as convert_main
from transformers_internvideo2.conversion.internvideo_mm import (
    convert_and_save_internvideo_mm,
    convert_internvideo_mm_state_dict,
    internvideo_mm_config_from_state_dict,
    internvideo_mm_key_mapping,
    load_internvideo_mm_checkpoint,
    merge_with_openai_clip,
)
from transformers_internvideo2.models.internvideo_mm import (
    InternVideoMMConfig,
    InternVideoMMForCaptioning,
    InternVideoMMModel,
    InternVideoMMProcessor,
)


REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("INTERNVIDEO2_SHARED_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


FIXTURES = _shared_root() / "fixtures" / "original"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "keys").is_dir(), reason=f"fixtures not found at {FIXTURES}")


def _meta_state_dict(name: str, prefix: str) -> dict[str, torch.Tensor]:
    layout = json.loads((FIXTURES / "keys" / name).read_text())
    return {prefix + key: torch.empty(shape, device="meta") for key, shape in layout["state_dict"].items()}


@needs_fixtures
@pytest.mark.parametrize("size", ["B16", "L14"])
@pytest.mark.parametrize("with_decoder", [False, True])
def test_released_layouts_map_completely(size, with_decoder):
    state_dict = _meta_state_dict(f"v1_mm_{size}.json", "clip.")
    if with_decoder:
        state_dict.update(_meta_state_dict(f"v1_mm_caption_decoder_{size}.json", "caption_decoder."))
    config = internvideo_mm_config_from_state_dict(state_dict)
    preset = InternVideoMMConfig.from_preset(f"internvideo-mm-{size.lower()}")
    for sub in ("vision_config", "text_config"):
        ours, released = getattr(config, sub).to_dict(), getattr(preset, sub).to_dict()
        differing = {k: (ours[k], released[k]) for k in released if k not in ("transformers_version",)
                     and ours.get(k) != released[k]}  # fmt: skip
        assert not differing, differing
    result, config = convert_internvideo_mm_state_dict(state_dict, config)
    assert len(result.state_dict) == len(state_dict) and not result.dropped
    model_class = InternVideoMMForCaptioning if with_decoder else InternVideoMMModel
    with torch.device("meta"):
        model = model_class(config)
    assert set(model.state_dict()) == set(result.state_dict)
    layout = json.loads((FIXTURES / "keys" / f"v1_mm_{size}.json").read_text())
    dual = model.internvideo_mm if with_decoder else model
    assert sum(p.numel() for p in dual.parameters()) == layout["num_parameters"]


@needs_fixtures
def test_wrappers_unknown_keys_and_ignored_prefixes(tmp_path):
    bare = json.loads((FIXTURES / "keys" / "v1_mm_B16.json").read_text())["state_dict"]
    small = {key: torch.zeros(1) for key in list(bare)[:3]} | {"visual.conv1.weight": torch.zeros(1)}
    torch.save(small, tmp_path / "bare.pth")
    torch.save({"state_dict": {"clip." + k: v for k, v in small.items()}, "epoch": 3}, tmp_path / "lightning.ckpt")
    assert set(load_internvideo_mm_checkpoint(tmp_path / "bare.pth")) == {"clip." + k for k in small}
    # lightning: only the state dict is read; its other entries (epoch, optimizer states, ...) are not weights
    assert set(load_internvideo_mm_checkpoint(tmp_path / "lightning.ckpt")) == {"clip." + k for k in small}
    torch.save({**small, "epoch": 3}, tmp_path / "mixed.pth")
    with pytest.raises(ConversionError, match="not tensors"):
        load_internvideo_mm_checkpoint(tmp_path / "mixed.pth")
    state_dict = _meta_state_dict("v1_mm_B16.json", "clip.")
    state_dict["vqa_classifier.0.weight"] = torch.empty(3, 3, device="meta")
    with pytest.raises(ConversionError, match="vqa_classifier.0.weight"):
        convert_internvideo_mm_state_dict(state_dict)
    result, _ = convert_internvideo_mm_state_dict(state_dict, ignore_prefixes=["vqa_classifier."])
    assert list(result.dropped) == ["vqa_classifier.0.weight"]
    del state_dict["vqa_classifier.0.weight"], state_dict["clip.visual_proj"]
    with pytest.raises(ConversionError, match="visual_projection"):
        convert_internvideo_mm_state_dict(state_dict)


def _tiny_original(num_layers: int, seed: int = 0) -> tuple[dict, InternVideoMMConfig]:
    """A random InternVideo-MM in the original key names (`clip.` prefixed)."""
    config = InternVideoMMConfig(
        vision_config=dict(hidden_size=64, num_hidden_layers=num_layers, num_attention_heads=1, intermediate_size=256,
                           image_size=28, patch_size=14, extractor_layers=[num_layers - 1],
                           extractor_num_attention_heads=1),
        text_config=dict(vocab_size=40, max_position_embeddings=8, hidden_size=64, num_hidden_layers=13,
                         num_attention_heads=1, intermediate_size=256),
        projection_dim=16, caption_decoder_layers=0,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = InternVideoMMModel(config)
    mapping = internvideo_mm_key_mapping(False)
    return {mapping.to_original(k): v.detach().clone() + torch.randn_like(v) for k, v in model.state_dict().items()}, config


def _openai_clip_from(original: dict, seed: int = 1) -> dict:
    """An OpenAI-CLIP-shaped state dict (Conv2d patches, ln_post/proj, no temporal modules) with other values."""
    generator = torch.Generator().manual_seed(seed)
    clip = {}
    for key, value in original.items():
        bare = key[len("clip.") :]
        if ".dec." in bare or ".dpe." in bare or bare.endswith(("temporal_cls_token", "balance", "text_mask_embedding")):
            continue
        bare = {"visual_proj": "visual.proj", "visual_ln_post.weight": "visual.ln_post.weight",
                "visual_ln_post.bias": "visual.ln_post.bias"}.get(bare, bare)  # fmt: skip
        clip[bare] = torch.randn(value.shape, generator=generator)
    clip["visual.conv1.weight"] = clip["visual.conv1.weight"][:, :, 0]
    clip["input_resolution"] = torch.tensor(28)
    return clip


def test_merge_protocols_are_explicit_and_exact():
    original, _ = _tiny_original(num_layers=14)
    clip = _openai_clip_from(original)
    merged, keys = merge_with_openai_clip(original, clip, 0.5, "retrieval")
    key = "clip.visual.transformer.resblocks.13.mlp.c_fc.weight"
    torch.testing.assert_close(merged[key], 0.5 * clip[key[5:]] + 0.5 * original[key])
    torch.testing.assert_close(merged["clip.visual.conv1.weight"],
                               0.5 * clip["visual.conv1.weight"][:, :, None] + 0.5 * original["clip.visual.conv1.weight"])  # fmt: skip
    for kept in ("clip.visual_proj", "clip.visual_ln_post.weight", "clip.visual.transformer.dec.0.ln_3.weight",
                 "clip.visual.transformer.balance", "clip.text_mask_embedding"):  # fmt: skip
        assert kept not in keys and torch.equal(merged[kept], original[kept])
    assert "clip.logit_scale" in keys
    wiseft, wiseft_keys = merge_with_openai_clip(original, clip, 0.5, "k400-wiseft")
    assert "clip.visual.transformer.resblocks.11.attn.in_proj_weight" in wiseft_keys
    assert "clip.visual.transformer.resblocks.12.attn.in_proj_weight" not in wiseft_keys  # only blocks 0-11
    assert "clip.transformer.resblocks.12.ln_1.weight" not in wiseft_keys and "clip.logit_scale" not in wiseft_keys
    torch.testing.assert_close(wiseft["clip.visual_proj"], 0.5 * clip["visual.proj"] + 0.5 * original["clip.visual_proj"])
    with pytest.raises(ConversionError, match="merge protocol"):
        merge_with_openai_clip(original, clip, 0.5, "average-all")
    clip["text_projection"] = torch.zeros(3, 3)
    with pytest.raises(ConversionError, match="Cannot merge 'text_projection'"):
        merge_with_openai_clip(original, clip, 0.5, "retrieval")


def test_cli_merges_only_when_asked(tmp_path):
    original, config = _tiny_original(num_layers=2)
    torch.save({"state_dict": original}, tmp_path / "mm.ckpt")
    torch.save(_openai_clip_from(original), tmp_path / "clip.pt")
    common = ["--family", "internvideo-mm", "--checkpoint", str(tmp_path / "mm.ckpt"), "--no-processor"]
    # heads cannot be read from the tensors: width 64 -> 1 head, the released width // 64 rule
    assert convert_main([*common, "--output", str(tmp_path / "plain")]) == 0
    assert convert_main([*common, "--output", str(tmp_path / "merged"), "--merge-clip-weights",
                         str(tmp_path / "clip.pt")]) == 0  # fmt: skip
    plain = load_file(str(tmp_path / "plain" / "model.safetensors"))
    merged = load_file(str(tmp_path / "merged" / "model.safetensors"))
    assert torch.equal(plain["text_projection"], original["clip.text_projection"])
    assert not torch.equal(merged["text_projection"], plain["text_projection"])
    assert torch.equal(merged["vision_model.temporal.balance"], plain["vision_model.temporal.balance"])


@needs_fixtures
def test_v101_converts_to_a_folder_that_reloads(tmp_path):
    case_dir = FIXTURES / "v101_mm_clip_uniformerv2_tiny"
    case = json.loads((case_dir / "case.json").read_text())
    from test_internvideo_mm_parity import config_from_case

    state_dict = load_internvideo_mm_checkpoint(case_dir / "checkpoint.pth")
    saved = convert_and_save_internvideo_mm(case_dir / "checkpoint.pth", tmp_path, config=config_from_case(case, state_dict))
    assert saved.model_class == "InternVideoMMForCaptioning" and not saved.merged_keys
    model = InternVideoMMForCaptioning.from_pretrained(tmp_path).eval()
    processor = InternVideoMMProcessor.from_pretrained(tmp_path)
    inputs = load_file(str(case_dir / "inputs.safetensors"))
    reference = load_file(str(case_dir / "outputs.safetensors"))
    with torch.no_grad():
        video = model.get_video_features(inputs["pixel_values"].transpose(1, 2), normalize=False).pooler_output
    torch.testing.assert_close(video, reference["video_embeds"], atol=1e-5, rtol=0)
    ids = processor(text=case["inputs"]["input_ids"]["texts"])["input_ids"]
    assert torch.equal(ids, inputs["input_ids"])

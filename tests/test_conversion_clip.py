"""InternVideo2-CLIP conversion: every official key layout (`keys/mm_clip_*`) maps completely on the meta device, LoRA
is merged under both PEFT namings and never skipped, the model is assembled strictly from its 2-3 source files, and
`internvideo2 convert --family clip` writes a self-contained folder (weights, config, processor with tokenizer)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from transformers_internvideo2 import InternVideo2ClipConfig, InternVideo2ClipModel, InternVideo2ClipProcessor
from transformers_internvideo2.conversion.core import ConversionError
from transformers_internvideo2.conversion.families import main as convert_main
from transformers_internvideo2.conversion.internvideo2_clip import (
    DISTILLATION_REASON,
    IMAGE_TABLE_REASON,
    LORA_MERGED_REASON,
    NOT_CLIP_REASON,
    ROTARY_REASON,
    build_clip_model,
    clip_config_from_original,
    convert_clip_checkpoint,
    convert_clip_sources,
    convert_clip_state_dict,
    merge_lora,
)


LAYOUTS = {"1B": "1b", "6B": "6b", "S14": "s14", "B14": "b14", "L14": "l14"}
# the official mobileclip_b.json of the original (S/B/L14 text tower)
MOBILECLIP_B = {"embed_dim": 512, "text_cfg": {"context_length": 77, "vocab_size": 49408, "dim": 512,
                "ffn_multiplier_per_layer": 4.0, "n_heads_per_layer": 8, "n_transformer_layers": 12,
                "norm_layer": "layer_norm_fp32", "causal_masking": True, "model_name": "base"}}  # fmt: skip


def _meta_state_dict(layout: dict) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in layout["state_dict"].items()}


def _to_new_peft_naming(state_dict: dict) -> dict:
    """PEFT >= 0.7 saves the wrapped base weight as `x.base_layer.weight`."""
    wrapped = {key.rsplit(".lora_A.", 1)[0] for key in state_dict if ".lora_A." in key}
    return {(f"{key[:-len('.weight')]}.base_layer.weight" if key[: -len(".weight")] in wrapped else key): value
            for key, value in state_dict.items()}  # fmt: skip


@pytest.mark.parametrize("size", sorted(LAYOUTS))
def test_official_layout_maps_completely_on_meta(fixtures_dir, size):
    layout = json.loads((fixtures_dir / "keys" / f"mm_clip_{size}.json").read_text())
    preset = InternVideo2ClipConfig.from_preset(f"internvideo2-clip-{LAYOUTS[size]}")
    # the preset agrees with the original config of the evaluation scripts
    text_json = MOBILECLIP_B if preset.text_tower != "llama" else preset.text_config.to_dict()
    from_original = clip_config_from_original(layout["config_model"], text_json)
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_frames",
                 "pooler_output_size", "layer_scale_force_fp32", "layer_scale_init_value"):  # fmt: skip
        assert getattr(from_original.vision_config, name) == getattr(preset.vision_config, name), name
    assert from_original.projection_dim == preset.projection_dim
    assert from_original.use_vision_alignment == preset.use_vision_alignment
    model = build_clip_model(preset)
    expected = {name: tensor.shape for name, tensor in model.state_dict().items()}
    state_dict = _meta_state_dict(layout)
    variants = [state_dict] + ([_to_new_peft_naming(state_dict)] if preset.text_tower == "llama" else [])
    for variant in variants:
        result = convert_clip_state_dict(variant, preset, expected)
        assert set(result.state_dict) == set(expected)
        assert len(result.renamed) + len(result.dropped) == len(variant)
        assert set(result.dropped.values()) <= {ROTARY_REASON, LORA_MERGED_REASON}
        if preset.text_tower == "llama":  # LoRA on q/v of all 32 layers, merged
            assert len(result.merged_lora) == 64
    # the original's parameter count minus the LoRA factors (merged): CLIP-1B 7,704,737,537 as reported elsewhere
    lora = sum(torch.Size(shape).numel() for key, shape in layout["state_dict"].items() if ".lora_" in key)
    assert sum(t.numel() for t in model.parameters()) == layout["num_parameters"] - lora


def _mm05(fixtures_dir):
    folder = fixtures_dir / "mm05_clip_llama_lora"
    spec = json.loads((folder / "case.json").read_text())
    config = clip_config_from_original(spec["config"]["model"], json.loads((folder / "llama_config.json").read_text()))
    checkpoint = torch.load(folder / "checkpoint.pth", weights_only=True)["module"]
    return config, checkpoint, load_file(str(folder / "inputs.safetensors")), load_file(str(folder / "outputs.safetensors"))


def test_both_peft_namings_give_the_same_weights(fixtures_dir):
    config, checkpoint, _, _ = _mm05(fixtures_dir)
    old, _ = convert_clip_checkpoint(checkpoint, config)
    new, result = convert_clip_checkpoint(_to_new_peft_naming(checkpoint), config)
    assert any(".base_layer." in key for key in _to_new_peft_naming(checkpoint))
    for key, tensor in old.state_dict().items():
        torch.testing.assert_close(new.state_dict()[key], tensor, atol=0, rtol=0)
    assert len(result.merged_lora) == 4


def test_lora_is_never_skipped_silently(fixtures_dir):
    config, checkpoint, _, _ = _mm05(fixtures_dir)
    lora_a = "text_encoder.transformer.layers.0.self_attn.q_proj.lora_A.default.weight"
    base = "text_encoder.transformer.layers.0.self_attn.q_proj.weight"
    unpaired = {k: v for k, v in checkpoint.items() if k != lora_a}
    with pytest.raises(ConversionError, match="no partner"):
        merge_lora(unpaired)
    without_base = {k: v for k, v in checkpoint.items() if k != base}
    with pytest.raises(ConversionError, match="no base weight"):
        merge_lora(without_base)
    both = {**checkpoint, base.replace(".weight", ".base_layer.weight"): checkpoint[base]}
    with pytest.raises(ConversionError, match="two copies"):
        merge_lora(both)
    unknown = {**checkpoint, "text_encoder.transformer.embed_tokens.lora_embedding_A.default": torch.zeros(2, 2)}
    with pytest.raises(ConversionError, match="LoRA parameter of a kind"):
        merge_lora(unknown)
    # a missing base weight after merging is also a strict-load error, not a random weight
    missing = {k: v for k, v in checkpoint.items() if not k.startswith("text_encoder.transformer.layers.1.mlp")}
    with pytest.raises(ConversionError, match="does not provide"):
        convert_clip_checkpoint(missing, config)


def _split_into_sources(config, checkpoint):
    """The mm05 model as the release spreads it: a stage-2 vision checkpoint (with its own text encoder, heads and
    distillation tables), an InternVL-C text checkpoint (plain LLaMA + other parts), and the CLIP delta (pooler,
    temp, rotary buffers, LoRA factors)."""
    vision = {k: v for k, v in checkpoint.items() if k.startswith("vision_encoder.") and ".clip_projector." not in k}
    vision.update({
        "vision_encoder.clip_decoder.0.head.weight": torch.zeros(4, 64),
        "vision_encoder.clip_pos_embed": torch.zeros_like(checkpoint["vision_encoder.pos_embed"]),
        "vision_encoder.img_pos_embed": torch.zeros(1, 10, 64),
        "text_encoder.bert.embeddings.word_embeddings.weight": torch.zeros(5, 8),
        "vision_proj.weight": torch.zeros(3, 768),
    })  # fmt: skip
    text = {k[len("text_encoder."):]: v for k, v in checkpoint.items()
            if k.startswith("text_encoder.") and ".lora_" not in k and "inv_freq" not in k}  # fmt: skip
    text["vision_model.embeddings.patch_embedding.weight"] = torch.zeros(2, 2)
    delta = {k: v for k, v in checkpoint.items() if ".clip_projector." in k or ".lora_" in k or "inv_freq" in k}
    delta["temp"] = checkpoint["temp"]
    return {"module": vision}, {"module": text}, delta


def test_assembly_from_sources_equals_the_full_model(fixtures_dir):
    config, checkpoint, inputs, outputs = _mm05(fixtures_dir)
    vision, text, delta = _split_into_sources(config, checkpoint)
    model, result = convert_clip_sources(config, vision, text, delta)
    reference, _ = convert_clip_checkpoint(checkpoint, config)
    for key, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], tensor, atol=0, rtol=0)
    reasons = set(result.dropped.values())
    assert {NOT_CLIP_REASON, DISTILLATION_REASON, IMAGE_TABLE_REASON, ROTARY_REASON, LORA_MERGED_REASON} <= reasons
    with torch.no_grad():
        text_embeds = model.get_text_features(inputs["text_ids"], normalize=False).pooler_output
    torch.testing.assert_close(text_embeds, outputs["text_embeds"], atol=1e-5, rtol=0)
    with pytest.raises(ConversionError, match="all needed"):
        convert_clip_sources(config, vision, None, delta)


def test_stage2_position_table_is_resampled_to_eight_frames(fixtures_dir):
    config, checkpoint, _, _ = _mm05(fixtures_dir)
    config_8 = InternVideo2ClipConfig.from_dict({**config.to_dict(), "vision_config": {
        **config.vision_config.to_dict(), "num_frames": 8}})  # fmt: skip
    vision, text, delta = _split_into_sources(config, checkpoint)
    model, _ = convert_clip_sources(config_8, vision, text, delta)
    table = checkpoint["vision_encoder.pos_embed"]  # (1, 1 + 4 * 9, 64)
    frames = table[0, 1:].reshape(4, 9, 64)
    # linear, align_corners=False, 4 -> 8: the original's weights
    weights = torch.tensor([[1, 0, 0, 0], [.75, .25, 0, 0], [.25, .75, 0, 0], [0, .75, .25, 0], [0, .25, .75, 0],
                            [0, 0, .75, .25], [0, 0, .25, .75], [0, 0, 0, 1]])  # fmt: skip
    expected = torch.einsum("nt,tsc->nsc", weights, frames).reshape(72, 64)
    stored = model.vision_model.embeddings.position_embeddings.joint[0]
    torch.testing.assert_close(stored[1:], expected)
    torch.testing.assert_close(stored[0], table[0, 0])


def test_cli_writes_a_self_contained_folder(fixtures_dir, tmp_path):
    from transformers_internvideo2.assets import mistral_tokenizer_model_path

    try:
        tokenizer_file = mistral_tokenizer_model_path("v1")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    config, checkpoint, inputs, outputs = _mm05(fixtures_dir)
    vision, text, delta = _split_into_sources(config, checkpoint)
    for name, source in (("vision.pth", vision), ("text.pth", text), ("clip.pth", delta)):
        torch.save(source, tmp_path / name)
    config.save_pretrained(tmp_path / "config")
    output = tmp_path / "converted"
    code = convert_main(["--family", "clip", "--config", str(tmp_path / "config"), "--vision-checkpoint",
                         str(tmp_path / "vision.pth"), "--text-checkpoint", str(tmp_path / "text.pth"), "--checkpoint",
                         str(tmp_path / "clip.pth"), "--tokenizer", str(tokenizer_file), "--output", str(output)])  # fmt: skip
    assert code == 0
    model = InternVideo2ClipModel.from_pretrained(output).eval()
    processor = InternVideo2ClipProcessor.from_pretrained(output)
    assert processor.text_format == "llama" and processor.max_length == 80
    with torch.no_grad():
        embeds = model.get_text_features(inputs["text_ids"], normalize=False).pooler_output
    torch.testing.assert_close(embeds, outputs["text_embeds"], atol=1e-5, rtol=0)
    assert not any("lora" in key for key in model.state_dict())
    # without the tokenizer the LLaMA models refuse to convert
    assert convert_main(["--family", "clip", "--config", str(tmp_path / "config"), "--vision-checkpoint",
                         str(tmp_path / "vision.pth"), "--text-checkpoint", str(tmp_path / "text.pth"), "--checkpoint",
                         str(tmp_path / "clip.pth"), "--output", str(tmp_path / "x")]) == 2  # fmt: skip

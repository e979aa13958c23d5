"""Conversion of the released InternVideo2 chat checkpoints, tested on synthetic checkpoints that follow the documented
remote-code layout (spec_stage3_chat.md §12) at tiny sizes, against independent references: the original stage-2
vision encoder's outputs (fixture mm01), the Transformers InstructBLIP Q-Former, peft's own LoRA, and a hand-written
InternLM2 forward pass."""

import json
import math

import pytest
import torch
from torch import nn

from transformers import MistralConfig, MistralForCausalLM

from transformers_internvideo2 import InternVideo2ChatConfig, InternVideo2ForConditionalGeneration
from transformers_internvideo2.conversion.internvideo2_chat import (
    convert_chat_checkpoint,
    convert_chat_state_dict,
    split_internlm2_wqkv,
)


VISION = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=28,
    patch_size=14,
    num_frames=2,
    hidden_act="gelu",
    image_position_embedding_type="separate",
    layer_scale_force_fp32=False,
)
QFORMER = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, vocab_size=40,
    max_position_embeddings=16,
)
MISTRAL = dict(
    model_type="mistral", vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=8, tie_word_embeddings=False, sliding_window=None,
)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]


def chat_config(text=None, **overrides) -> InternVideo2ChatConfig:
    return InternVideo2ChatConfig(
        vision_config=dict(VISION), qformer_config=dict(QFORMER), text_config=dict(text or MISTRAL),
        num_query_tokens=2, num_extra_query_tokens=3, video_token_id=7, **overrides,
    )


# ----------------------------------------------------------------------------------------------------------------
# synthetic original checkpoints
# ----------------------------------------------------------------------------------------------------------------
def original_vision_and_bridge(generator: torch.Generator, depth: int = 2) -> dict[str, torch.Tensor]:
    """`vision_encoder.*`, `vision_layernorm`, queries, `qformer.bert.*` and projections in the remote-code layout."""
    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=generator) * scale

    width, qwidth, inter = 32, 32, 48
    state = {
        "vision_encoder.cls_token": rnd(1, 1, width),
        "vision_encoder.pos_embed": rnd(1, 1 + 2 * 4, width),
        "vision_encoder.img_pos_embed": rnd(1, 1 + 4, width),
        "vision_encoder.patch_embed.proj.weight": rnd(width, 3, 1, 14, 14, scale=0.05),
        "vision_encoder.patch_embed.proj.bias": rnd(width),
        "vision_layernorm.weight": 1 + rnd(width),
        "vision_layernorm.bias": rnd(width),
        "query_tokens": rnd(1, 2, qwidth),
        "extra_query_tokens": rnd(1, 3, qwidth),
        "qformer.bert.embeddings.word_embeddings.weight": rnd(40, qwidth),
        "qformer.bert.embeddings.position_embeddings.weight": rnd(16, qwidth),
        "qformer.bert.embeddings.LayerNorm.weight": 1 + rnd(qwidth),
        "qformer.bert.embeddings.LayerNorm.bias": rnd(qwidth),
        "qformer.bert.embeddings.position_ids": torch.arange(16)[None],
        "project_up.weight": rnd(32, qwidth),
        "project_up.bias": rnd(32),
        "project_down.weight": rnd(qwidth, 32),
        "project_down.bias": rnd(qwidth),
    }
    for block in range(depth):
        prefix = f"vision_encoder.blocks.{block}."
        state.update({
            prefix + "norm1.weight": 1 + rnd(width), prefix + "norm2.weight": 1 + rnd(width),
            prefix + "ls1": rnd(width, scale=0.5), prefix + "ls2": rnd(width, scale=0.5),
            prefix + "attn.qkv.weight": rnd(3 * width, width), prefix + "attn.proj.weight": rnd(width, width),
            prefix + "attn.proj.bias": rnd(width), prefix + "attn.q_norm.weight": 1 + rnd(width),
            prefix + "attn.k_norm.weight": 1 + rnd(width), prefix + "mlp.fc1.weight": rnd(64, width),
            prefix + "mlp.fc1.bias": rnd(64), prefix + "mlp.fc2.weight": rnd(width, 64), prefix + "mlp.fc2.bias": rnd(width),
        })
    for layer in range(2):
        prefix = f"qformer.bert.encoder.layer.{layer}."
        blocks = ["attention"] + (["crossattention"] if layer % 2 == 0 else [])
        for block in blocks:
            kv_in = width if block == "crossattention" else qwidth
            for name in ("query", "key", "value"):
                state[f"{prefix}{block}.self.{name}.weight"] = rnd(qwidth, qwidth if name == "query" else kv_in)
                state[f"{prefix}{block}.self.{name}.bias"] = rnd(qwidth)
            state[f"{prefix}{block}.output.dense.weight"] = rnd(qwidth, qwidth)
            state[f"{prefix}{block}.output.dense.bias"] = rnd(qwidth)
            state[f"{prefix}{block}.output.LayerNorm.weight"] = 1 + rnd(qwidth)
            state[f"{prefix}{block}.output.LayerNorm.bias"] = rnd(qwidth)
        for suffix in ("", "_query"):
            state[f"{prefix}intermediate{suffix}.dense.weight"] = rnd(inter, qwidth)
            state[f"{prefix}intermediate{suffix}.dense.bias"] = rnd(inter)
            state[f"{prefix}output{suffix}.dense.weight"] = rnd(qwidth, inter)
            state[f"{prefix}output{suffix}.dense.bias"] = rnd(qwidth)
            state[f"{prefix}output{suffix}.LayerNorm.weight"] = 1 + rnd(qwidth)
            state[f"{prefix}output{suffix}.LayerNorm.bias"] = rnd(qwidth)
    return state


def peft_mistral(seed: int = 0, lora_alpha: float = 8.0):
    """A tiny Mistral wrapped in peft LoRA (r=4) with non-zero B, as the reference for the LLM part."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    base = MistralForCausalLM(MistralConfig(**{k: v for k, v in MISTRAL.items() if k != "model_type"}))
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=LORA_TARGETS)
    ).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.1)
    return model


def old_peft_names(peft_model, naming: str = "default") -> dict[str, torch.Tensor]:
    """The peft model's weights as the released checkpoints store them: `lm.base_model.model.<module>.weight` (no
    `.base_layer`, peft 0.5) and `<module>.lora_A.default.weight` (or `.lora_A.weight` with `naming="plain"`, or the
    newer `.base_layer.weight` with `naming="base_layer"`)."""
    state = {}
    for key, value in peft_model.state_dict().items():
        if naming != "base_layer":
            key = key.replace(".base_layer.", ".")
        if naming == "plain":
            key = key.replace(".default.", ".")
        state[f"lm.{key}"] = value.clone()
    return state


# ----------------------------------------------------------------------------------------------------------------
# vision: the original stage-2 encoder's own outputs
# ----------------------------------------------------------------------------------------------------------------
def test_vision_keys_reproduce_the_original_encoder(fixtures_dir):
    from safetensors.torch import load_file

    case = fixtures_dir / "mm01_s2vision_sepimgpos"
    original = torch.load(case / "checkpoint.pth", weights_only=True)
    kwargs = json.loads((case / "case.json").read_text())["constructor_kwargs"]
    # the chat encoder holds the blocks up to `x_vis_return_idx=-2` (3 of 4) and none of the stage-2 CLIP heads
    chat_like = {
        f"vision_encoder.{key}": value
        for key, value in original.items()
        if not key.startswith(("clip_", "final_clip_decoder"))
    }
    chat_like.update({k: v for k, v in original_vision_and_bridge(torch.Generator().manual_seed(0)).items()
                      if not k.startswith("vision_encoder.")})
    chat_like["vision_layernorm.weight"] = torch.ones(64)
    chat_like["vision_layernorm.bias"] = torch.zeros(64)
    chat_like.update(old_peft_names(peft_mistral()))
    config = InternVideo2ChatConfig(
        vision_config=dict(
            hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=int(64 * kwargs["mlp_ratio"]),
            image_size=28, patch_size=14, num_frames=4, hidden_act="gelu", image_position_embedding_type="separate",
            layer_scale_force_fp32=True,
        ),
        qformer_config=dict(QFORMER), text_config=dict(MISTRAL), num_query_tokens=2, num_extra_query_tokens=3,
        video_token_id=7,
    )
    # the chat fixture layout uses raw `ls1` parameters; this stage-2 fixture has `ls1.gamma`: both are accepted
    with pytest.raises(ValueError, match="no mapping"):  # q/k widths of the synthetic Q-Former differ: check keys only
        convert_chat_state_dict({**chat_like, "vision_encoder.unknown": torch.zeros(1)}, config, lora_alpha=8)
    qformer_keys = [k for k in chat_like if k.startswith("qformer.")]
    for key in qformer_keys:  # the synthetic Q-Former was built for a 32-wide encoder: widen its cross-attention
        if ".crossattention.self.key.weight" in key or ".crossattention.self.value.weight" in key:
            chat_like[key] = torch.randn(32, 64) * 0.1
    result = convert_chat_state_dict(chat_like, config, lora_alpha=8)
    assert any("vision block 3 is past the 3 blocks" in action for _, action in result.report)
    model = InternVideo2ForConditionalGeneration(config).eval()
    model.load_state_dict(result.state_dict, strict=True)
    video = load_file(case / "inputs.safetensors")["video"].transpose(1, 2)  # [B,C,T,H,W] -> [B,T,C,H,W]
    expected = load_file(case / "outputs.safetensors")["video_nomask_visonly_idx-2.x_vis"]
    with torch.no_grad():
        tokens = model.get_video_features(video).last_hidden_state  # after an identity LayerNorm
    reference = nn.functional.layer_norm(expected, (64,), eps=1e-12)
    torch.testing.assert_close(tokens, reference, atol=2e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# full synthetic checkpoint: every part against an independent reference
# ----------------------------------------------------------------------------------------------------------------
def instructblip_from_original(original: dict[str, torch.Tensor]):
    """The Transformers InstructBLIP-Video Q-Former loaded directly from the ORIGINAL key names."""
    from transformers.models.instructblipvideo.configuration_instructblipvideo import InstructBlipVideoQFormerConfig
    from transformers.models.instructblipvideo.modeling_instructblipvideo import InstructBlipVideoQFormerModel

    model = InstructBlipVideoQFormerModel(
        InstructBlipVideoQFormerConfig(
            vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=16, encoder_hidden_size=32, cross_attention_frequency=2,
        )
    ).eval()
    state = {}
    for key, value in original.items():
        if not key.startswith("qformer.bert.") or key.endswith("position_ids"):
            continue
        key = key[len("qformer.bert."):].replace("embeddings.LayerNorm", "embeddings.layernorm")
        key = key.replace("attention.self.", "attention.attention.").replace("crossattention.self.", "crossattention.attention.")
        state[key] = value
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("naming", ["default", "plain", "base_layer"])
def test_full_checkpoint_merged_matches_references(tmp_path, naming):
    original = original_vision_and_bridge(torch.Generator().manual_seed(1))
    peft_model = peft_mistral(seed=2)
    original.update(old_peft_names(peft_model, naming))
    (tmp_path / "original").mkdir()
    from safetensors.torch import save_file

    save_file(original, tmp_path / "original" / "model.safetensors")
    (tmp_path / "original" / "config.json").write_text(json.dumps({"model_config": {"llm": {"lora_alpha": 8}}}))
    result = convert_chat_checkpoint(tmp_path / "original", tmp_path / "hf", config=chat_config())
    # every original key is accounted for, dropped keys with a reason
    reported = [key for key, _ in result.report]
    assert sorted(reported) == sorted(original) and len(reported) == len(set(reported))
    dropped = {key for key, action in result.report if action.startswith("dropped")}
    assert dropped == {"project_down.weight", "project_down.bias", "qformer.bert.embeddings.position_ids"}
    model, info = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path / "hf", output_loading_info=True)
    model.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]

    torch.manual_seed(3)
    video, text = torch.randn(1, 2, 3, 28, 28), torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        features = model.get_video_features(video, qformer_input_ids=text)
        # Q-Former: the InstructBLIP implementation on the original weights
        reference_qformer = instructblip_from_original(original)
        queries = torch.cat([original["query_tokens"], original["extra_query_tokens"]], 1)
        expected = reference_qformer(
            input_ids=text, attention_mask=torch.ones(1, 8, dtype=torch.long), query_embeds=queries,
            encoder_hidden_states=features.last_hidden_state, encoder_attention_mask=torch.ones(1, 9, dtype=torch.long),
        ).last_hidden_state[:, :5]
        torch.testing.assert_close(features.qformer_last_hidden_state[:, :5], expected, atol=1e-5, rtol=1e-5)
        visual = expected @ original["project_up.weight"].T + original["project_up.bias"]
        torch.testing.assert_close(features.pooler_output, visual, atol=1e-5, rtol=1e-5)
        # LLM: peft's own forward (LoRA unmerged) on the spliced embeddings
        ids = torch.tensor([[1, 9, 7, 7, 7, 7, 7, 11, 12]])
        embeds = peft_model.get_input_embeddings()(ids).clone()
        embeds[0, 2:7] = visual[0]
        expected_logits = peft_model(inputs_embeds=embeds).logits
        logits = model(input_ids=ids, pixel_values_videos=video, qformer_input_ids=text).logits
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-5)


def test_lora_adapter_export_loads_with_peft(tmp_path):
    from peft import PeftModel
    from safetensors.torch import save_file

    original = original_vision_and_bridge(torch.Generator().manual_seed(1))
    peft_model = peft_mistral(seed=2, lora_alpha=8.0)
    original.update(old_peft_names(peft_model))
    (tmp_path / "original").mkdir()
    save_file(original, tmp_path / "original" / "model.safetensors")
    convert_chat_checkpoint(tmp_path / "original", tmp_path / "merged", config=chat_config(), lora_alpha=8.0)
    result = convert_chat_checkpoint(
        tmp_path / "original", tmp_path / "base", config=chat_config(), lora="adapter", lora_alpha=8.0
    )
    assert result.adapter_config["r"] == 4 and result.adapter_config["lora_alpha"] == 8.0
    assert len(result.adapter_state_dict) == 2 * (7 * 2 + 1)
    merged = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path / "merged").eval()
    base = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path / "base").eval()
    ids = torch.tensor([[1, 9, 7, 7, 7, 7, 7, 11]])
    video = torch.randn(1, 2, 3, 28, 28)
    with torch.no_grad():
        expected = merged(input_ids=ids, pixel_values_videos=video).logits
        without = base(input_ids=ids, pixel_values_videos=video).logits  # before peft injects the LoRA into it
    adapted = PeftModel.from_pretrained(base, tmp_path / "base" / "lora_adapter").eval()
    adapted_modules = {name for name, module in adapted.named_modules() if hasattr(module, "lora_A")}
    assert len(adapted_modules) == 15 and all(".language_model." in name for name in adapted_modules)
    with torch.no_grad():
        got = adapted(input_ids=ids, pixel_values_videos=video).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert (without - expected).abs().max() > 1e-3  # the adapter matters


def test_unknown_and_incomplete_keys_are_errors():
    config = chat_config()
    original = original_vision_and_bridge(torch.Generator().manual_seed(0))
    original.update(old_peft_names(peft_mistral()))
    with pytest.raises(ValueError, match="no mapping"):
        convert_chat_state_dict({**original, "temp": torch.zeros(())}, config)
    broken = dict(original)
    del broken["lm.base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    with pytest.raises(ValueError, match="incomplete"):
        convert_chat_state_dict(broken, config)
    with pytest.raises(ValueError, match="no language-model"):
        convert_chat_state_dict({k: v for k, v in original.items() if not k.startswith("lm.")}, config)
    with pytest.raises(ValueError, match="lora must be"):
        convert_chat_state_dict(original, config, lora="keep")


# ----------------------------------------------------------------------------------------------------------------
# InternLM2 -> Llama
# ----------------------------------------------------------------------------------------------------------------
INTERNLM = dict(vocab_size=60, hidden=32, layers=2, heads=4, kv_heads=2, head_dim=8, inter=48, theta=10000.0, eps=1e-5)


def internlm2_weights(generator: torch.Generator, lora_rank: int = 3):
    """Random InternLM2 weights in the remote-code layout (+ LoRA on wqkv, wo, w1, w2, w3, as the released model)."""
    c = INTERNLM
    groups = c["heads"] // c["kv_heads"]
    qkv_rows = c["kv_heads"] * (groups + 2) * c["head_dim"]

    def rnd(*shape, scale=0.15):
        return torch.randn(*shape, generator=generator) * scale

    base = {"model.tok_embeddings.weight": rnd(c["vocab_size"], c["hidden"], scale=1.0),
            "model.norm.weight": 1 + rnd(c["hidden"]), "output.weight": rnd(c["vocab_size"], c["hidden"])}
    shapes = {"attention.wqkv": (qkv_rows, c["hidden"]), "attention.wo": (c["hidden"], c["heads"] * c["head_dim"]),
              "feed_forward.w1": (c["inter"], c["hidden"]), "feed_forward.w3": (c["inter"], c["hidden"]),
              "feed_forward.w2": (c["hidden"], c["inter"])}
    lora = {}
    for layer in range(c["layers"]):
        prefix = f"model.layers.{layer}."
        base[prefix + "attention_norm.weight"] = 1 + rnd(c["hidden"])
        base[prefix + "ffn_norm.weight"] = 1 + rnd(c["hidden"])
        for name, shape in shapes.items():
            base[f"{prefix}{name}.weight"] = rnd(*shape)
            lora[f"{prefix}{name}"] = (rnd(lora_rank, shape[1]), rnd(shape[0], lora_rank))
    return base, lora


def internlm2_reference_logits(weights: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """InternLM2 forward pass written from its published architecture: packed wqkv grouped per KV head
    (`(h gs d)` with gs = queries-per-group + 2), rotate-half RoPE, GQA, RMSNorm, SwiGLU (w2(silu(w1 x) * w3 x))."""
    c = INTERNLM
    groups = c["heads"] // c["kv_heads"]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c["eps"]))

    def rotate_half(x):
        return torch.cat([-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]], -1)

    length = ids.shape[1]
    inv_freq = 1.0 / c["theta"] ** (torch.arange(0, c["head_dim"], 2).float() / c["head_dim"])
    angles = torch.arange(length).float()[:, None] * inv_freq[None]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    x = weights["model.tok_embeddings.weight"][ids]
    causal = torch.full((length, length), -math.inf).triu(1)
    for layer in range(c["layers"]):
        p = f"model.layers.{layer}."
        h = rms(x, weights[p + "attention_norm.weight"])
        qkv = (h @ weights[p + "attention.wqkv.weight"].T).view(1, length, c["kv_heads"], groups + 2, c["head_dim"])
        q = qkv[..., :groups, :].reshape(1, length, c["heads"], c["head_dim"]).transpose(1, 2)
        k = qkv[..., -2, :].transpose(1, 2)
        v = qkv[..., -1, :].transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c["head_dim"]) + causal, -1) @ v
        x = x + attn.transpose(1, 2).reshape(1, length, -1) @ weights[p + "attention.wo.weight"].T
        h = rms(x, weights[p + "ffn_norm.weight"])
        gate = nn.functional.silu(h @ weights[p + "feed_forward.w1.weight"].T) * (h @ weights[p + "feed_forward.w3.weight"].T)
        x = x + gate @ weights[p + "feed_forward.w2.weight"].T
    return rms(x, weights["model.norm.weight"]) @ weights["output.weight"].T


def internlm2_chat_config():
    c = INTERNLM
    text = dict(
        model_type="llama", vocab_size=c["vocab_size"], hidden_size=c["hidden"], intermediate_size=c["inter"],
        num_hidden_layers=c["layers"], num_attention_heads=c["heads"], num_key_value_heads=c["kv_heads"],
        head_dim=c["head_dim"], rms_norm_eps=c["eps"], rope_parameters={"rope_type": "default", "rope_theta": c["theta"]},
        tie_word_embeddings=False,
    )
    return chat_config(text=text)


def test_wqkv_split_follows_the_kv_grouping():
    heads, kv_heads, head_dim = 4, 2, 3
    rows = torch.arange(kv_heads * (heads // kv_heads + 2) * head_dim).float()[:, None]
    q, k, v = split_internlm2_wqkv(rows, heads, kv_heads, head_dim)
    # group 0 rows: q0 q1 k0 v0 (3 rows each), group 1: q2 q3 k1 v1
    assert q[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17]
    assert k[:, 0].tolist() == [6, 7, 8, 18, 19, 20]
    assert v[:, 0].tolist() == [9, 10, 11, 21, 22, 23]
    with pytest.raises(ValueError, match="wqkv has"):
        split_internlm2_wqkv(rows[:-1], heads, kv_heads, head_dim)


@pytest.mark.parametrize("lora_mode", ["merge", "adapter"])
def test_internlm2_with_lora_becomes_llama(tmp_path, lora_mode):
    from peft import PeftModel
    from safetensors.torch import save_file
    from transformers import LlamaForCausalLM

    generator = torch.Generator().manual_seed(5)
    base, lora = internlm2_weights(generator)
    alpha, rank = 6.0, 3
    original = original_vision_and_bridge(generator)
    for key, value in base.items():
        original[f"lm.base_model.model.{key}"] = value
    for module, (a, b) in lora.items():
        original[f"lm.base_model.model.{module}.lora_A.default.weight"] = a
        original[f"lm.base_model.model.{module}.lora_B.default.weight"] = b
    merged_reference = {k: v.clone() for k, v in base.items()}
    for module, (a, b) in lora.items():
        merged_reference[f"{module}.weight"] += (alpha / rank) * b @ a
    ids = torch.tensor([[3, 17, 5, 42, 8, 1, 30]])
    expected = internlm2_reference_logits(merged_reference, ids)

    (tmp_path / "original").mkdir()
    save_file(original, tmp_path / "original" / "model.safetensors")
    result = convert_chat_checkpoint(
        tmp_path / "original", tmp_path / "hf", config=internlm2_chat_config(), lora=lora_mode, lora_alpha=alpha
    )
    model = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    assert isinstance(model.language_model, LlamaForCausalLM)
    if lora_mode == "adapter":
        # wqkv's LoRA became three q/k/v LoRAs sharing A: 2 layers x (q, k, v, o, gate, up, down)
        assert len(result.adapter_state_dict) == 2 * 2 * 7
        model = PeftModel.from_pretrained(model, tmp_path / "hf" / "lora_adapter").eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# the real Chat-8B key layout (meta tensors: no memory)
# ----------------------------------------------------------------------------------------------------------------
def released_chat_8b_layout() -> dict[str, torch.Tensor]:
    """All 1590 tensors of OpenGVLab/InternVideo2-Chat-8B (spec §12.2) as meta tensors of the real shapes."""
    meta = lambda *shape: torch.empty(*shape, device="meta")  # noqa: E731
    state = {
        "vision_encoder.cls_token": meta(1, 1, 1408), "vision_encoder.pos_embed": meta(1, 2049, 1408),
        "vision_encoder.img_pos_embed": meta(1, 257, 1408),
        "vision_encoder.patch_embed.proj.weight": meta(1408, 3, 1, 14, 14),
        "vision_encoder.patch_embed.proj.bias": meta(1408),
        "vision_layernorm.weight": meta(1408), "vision_layernorm.bias": meta(1408),
        "query_tokens": meta(1, 32, 768), "extra_query_tokens": meta(1, 64, 768),
        "qformer.bert.embeddings.word_embeddings.weight": meta(30523, 768),
        "qformer.bert.embeddings.position_embeddings.weight": meta(512, 768),
        "qformer.bert.embeddings.LayerNorm.weight": meta(768), "qformer.bert.embeddings.LayerNorm.bias": meta(768),
        "qformer.bert.embeddings.position_ids": torch.empty(1, 512, dtype=torch.long, device="meta"),
        "project_up.weight": meta(4096, 768), "project_up.bias": meta(4096),
        "project_down.weight": meta(768, 4096), "project_down.bias": meta(768),
    }
    for b in range(39):
        p = f"vision_encoder.blocks.{b}."
        for name, shape in [("norm1.weight", (1408,)), ("norm2.weight", (1408,)), ("ls1", (1408,)), ("ls2", (1408,)),
                            ("attn.qkv.weight", (4224, 1408)), ("attn.proj.weight", (1408, 1408)),
                            ("attn.proj.bias", (1408,)), ("attn.q_norm.weight", (1408,)), ("attn.k_norm.weight", (1408,)),
                            ("mlp.fc1.weight", (6144, 1408)), ("mlp.fc1.bias", (6144,)),
                            ("mlp.fc2.weight", (1408, 6144)), ("mlp.fc2.bias", (1408,))]:
            state[p + name] = meta(*shape)
    for layer in range(12):
        p = f"qformer.bert.encoder.layer.{layer}."
        for block in ["attention"] + (["crossattention"] if layer % 2 == 0 else []):
            kv = 1408 if block == "crossattention" else 768
            for name in ("query", "key", "value"):
                state[f"{p}{block}.self.{name}.weight"] = meta(768, 768 if name == "query" else kv)
                state[f"{p}{block}.self.{name}.bias"] = meta(768)
            for name, shape in [("dense.weight", (768, 768)), ("dense.bias", (768,)), ("LayerNorm.weight", (768,)),
                                ("LayerNorm.bias", (768,))]:
                state[f"{p}{block}.output.{name}"] = meta(*shape)
        for suffix in ("", "_query"):
            state[f"{p}intermediate{suffix}.dense.weight"] = meta(3072, 768)
            state[f"{p}intermediate{suffix}.dense.bias"] = meta(3072)
            state[f"{p}output{suffix}.dense.weight"] = meta(768, 3072)
            state[f"{p}output{suffix}.dense.bias"] = meta(768)
            state[f"{p}output{suffix}.LayerNorm.weight"] = meta(768)
            state[f"{p}output{suffix}.LayerNorm.bias"] = meta(768)
    lm = "lm.base_model.model."
    state[lm + "model.embed_tokens.weight"] = meta(32768, 4096)
    state[lm + "model.norm.weight"] = meta(4096)
    state[lm + "lm_head.weight"] = meta(32768, 4096)
    state[lm + "lm_head.lora_A.default.weight"] = meta(16, 4096)
    state[lm + "lm_head.lora_B.default.weight"] = meta(32768, 16)
    linear = {"self_attn.q_proj": (4096, 4096), "self_attn.k_proj": (1024, 4096), "self_attn.v_proj": (1024, 4096),
              "self_attn.o_proj": (4096, 4096), "mlp.gate_proj": (14336, 4096), "mlp.up_proj": (14336, 4096),
              "mlp.down_proj": (4096, 14336)}
    for layer in range(32):
        p = f"{lm}model.layers.{layer}."
        state[p + "input_layernorm.weight"] = meta(4096)
        state[p + "post_attention_layernorm.weight"] = meta(4096)
        for name, (out_features, in_features) in linear.items():
            state[f"{p}{name}.weight"] = meta(out_features, in_features)
            state[f"{p}{name}.lora_A.default.weight"] = meta(16, in_features)
            state[f"{p}{name}.lora_B.default.weight"] = meta(out_features, 16)
    return state


@pytest.mark.parametrize("preset", ["internvideo2-chat-8b", "internvideo2-chat-8b-hd"])
def test_released_layout_maps_onto_the_preset_model(preset):
    original = released_chat_8b_layout()
    assert len(original) == 1590
    config = InternVideo2ChatConfig.from_preset(preset)
    result = convert_chat_state_dict(original, config)
    with torch.device("meta"):
        model = InternVideo2ForConditionalGeneration(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in result.state_dict.items()}
    assert got == expected
    assert len(result.report) == 1590


def test_command_line_entry_point(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import save_file

    original = original_vision_and_bridge(torch.Generator().manual_seed(1))
    original.update(old_peft_names(peft_mistral(seed=2)))
    (tmp_path / "original").mkdir()
    save_file(original, tmp_path / "original" / "model.safetensors")
    chat_config().to_json_file(tmp_path / "config.json")
    root = Path(__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, str(root / "conversion" / "convert_internvideo2_to_hf.py"), "--family", "chat",
         "--checkpoint", str(tmp_path / "original"), "--output", str(tmp_path / "hf"),
         "--config", str(tmp_path / "config.json"), "--lora-alpha", "8"],
        capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(root / "src")},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "dropped with a reason" in completed.stdout
    report = json.loads((tmp_path / "hf" / "conversion_report.json").read_text())
    assert len(report) == len(original)
    assert isinstance(InternVideo2ForConditionalGeneration.from_pretrained(tmp_path / "hf"), InternVideo2ForConditionalGeneration)

"""Convert the released InternVideo2 chat checkpoints (remote-code `InternVideo2_VideoChat2`) into
[`InternVideo2ForConditionalGeneration`] folders.

Handles OpenGVLab/InternVideo2-Chat-8B, InternVideo2_chat_8B_HD (same layout) and InternVideo2_Chat_8B_InternLM2_5.
Their state dicts hold:

    vision_encoder.*                 InternVideo2-1B encoder, 39 blocks (`ls1`/`ls2` LayerScale, `img_pos_embed`)
    vision_layernorm.*               LayerNorm before the Q-Former
    query_tokens, extra_query_tokens 32 + 64 learned queries
    qformer.bert.*                   BERT-base Q-Former (BLIP-2 layout, `*_query` FFNs, cross-attention every 2nd layer)
    project_up.*, project_down.*     Q-Former -> LLM projection; the reverse one is dead at inference
    lm.base_model.model.*            the LLM inside a PEFT wrapper, LoRA as `<module>.lora_A.default.weight`
                                     (peft 0.5 names; `lora_A.weight` and `.base_layer.` names are accepted too)

The LoRA is merged into the LLM weights (`W += alpha/r * B @ A`, computed in float32) or exported as a PEFT adapter
for the converted model. InternLM2 LLM weights are rewritten in the Llama layout (packed `wqkv` split by KV group).
Every key is mapped or dropped with a stated reason; anything else is an error.

    python conversion/convert_internvideo2_to_hf.py --family chat --checkpoint <dir with model*.safetensors> \
        --output out/ --preset internvideo2-chat-8b [--lora merge|adapter]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer

from ..assets import load_bert_uncased_tokenizer
from ..models.internvideo2_chat.configuration_internvideo2_chat import INTERNVIDEO2_CHAT_PRESETS, InternVideo2ChatConfig
from ..models.internvideo2_chat.modeling_internvideo2_chat import InternVideo2ForConditionalGeneration
from ..models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor
from ..models.model_card import build_model_card, card_metadata, install_section, push_folder_to_hub, usage_section
from .core import (
    ConversionError,
    KeyMapping,
    check_finite,
    check_output_dir,
    conversion_failed,
    read_checkpoint_file,
    save_and_verify,
    unwrap_state_dict,
)
from .internvideo2_video_text import _IMAGE_POSITION_RULE
from .internvideo2_vision import _BACKBONE_RULES


LLM_PREFIX = "lm.base_model.model."
LANGUAGE_MODEL_PREFIX = "language_model."
DEFAULT_LORA_ALPHA = 32.0  # the released models: r=16, alpha=32
DEFAULT_LORA_DROPOUT = 0.1

# Keys dropped on purpose, with the reason reported for each (`core.KeyMapping` templates).
DROPPED_KEYS: list[tuple[str, str]] = [
    ("project_down.*", "LLM->Q-Former projection, used only by the disabled vision-regression loss "
     "(`use_vision_regression_loss=False`); dead at inference and in instruction tuning"),
    ("qformer.bert.embeddings.position_ids", "non-learned buffer arange(512), recomputed"),
    ("qformer.cls.*", "BERT MLM head of the Q-Former; the original deletes it (`qformer.cls = None`)"),
]
_ROTARY_BUFFER = re.compile(r"^lm\.base_model\.model\..*rotary_emb\.inv_freq$")
_ROTARY_BUFFER_REASON = "non-learned RoPE buffer, recomputed"

# The vision encoder is the stage-2 backbone under `vision_encoder.` -> `vision_model.` (its rules, reused), plus
# the image position table and the chat encoder's raw `ls1`/`ls2` layer-scale parameters (`ls1.gamma` in stage 2).
_VISION_RULES: list[tuple[str, str]] = [
    (f"vision_encoder.{src}", f"vision_model.{dst}") for src, dst in [*_BACKBONE_RULES, _IMAGE_POSITION_RULE]
] + [
    ("vision_encoder.blocks.{i}.ls1", "vision_model.encoder.layer.{i}.layer_scale1.lambda1"),
    ("vision_encoder.blocks.{i}.ls2", "vision_model.encoder.layer.{i}.layer_scale2.lambda1"),
    ("vision_layernorm.*", "vision_layernorm.*"),
    ("project_up.*", "multi_modal_projector.*"),
]

# The BERT-layout Q-Former of the original -> `InternVideo2QFormerModel` names.
_QFORMER_LAYER_RULES = [
    ("attention.self.query.*", "self_attention.query.*"),
    ("attention.self.key.*", "self_attention.key.*"),
    ("attention.self.value.*", "self_attention.value.*"),
    ("attention.output.dense.*", "self_attention.dense.*"),
    ("attention.output.LayerNorm.*", "self_attention.layer_norm.*"),
    ("crossattention.self.query.*", "cross_attention.query.*"),
    ("crossattention.self.key.*", "cross_attention.key.*"),
    ("crossattention.self.value.*", "cross_attention.value.*"),
    ("crossattention.output.dense.*", "cross_attention.dense.*"),
    ("crossattention.output.LayerNorm.*", "cross_attention.layer_norm.*"),
    ("intermediate.dense.*", "text_mlp.fc1.*"),
    ("output.dense.*", "text_mlp.fc2.*"),
    ("output.LayerNorm.*", "text_mlp.layer_norm.*"),
    ("intermediate_query.dense.*", "query_mlp.fc1.*"),
    ("output_query.dense.*", "query_mlp.fc2.*"),
    ("output_query.LayerNorm.*", "query_mlp.layer_norm.*"),
]
_QFORMER_RULES: list[tuple[str, str]] = [
    ("qformer.bert.embeddings.word_embeddings.weight", "qformer.embeddings.word_embeddings.weight"),
    ("qformer.bert.embeddings.position_embeddings.weight", "qformer.embeddings.position_embeddings.weight"),
    ("qformer.bert.embeddings.LayerNorm.*", "qformer.embeddings.layer_norm.*"),
] + [(f"qformer.bert.encoder.layer.{{i}}.{src}", f"qformer.layers.{{i}}.{dst}") for src, dst in _QFORMER_LAYER_RULES]


def chat_key_mapping() -> KeyMapping:
    """The renaming of the chat model's vision encoder, bridge and Q-Former (the LLM and the query tokens are
    handled apart: LoRA merging, the InternLM2 split, the query concatenation)."""
    return KeyMapping(_VISION_RULES + _QFORMER_RULES, DROPPED_KEYS)


# LoRA parameter names: peft 0.5 (`lora_A.default.weight`), unnamed (`lora_A.weight`)
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[A-Za-z0-9_]+))?\.weight$")

# InternLM2 (remote-code layout) -> Llama layout, relative to the causal LM.
_INTERNLM2_RENAMES = KeyMapping([
    ("model.tok_embeddings.weight", "model.embed_tokens.weight"),
    ("output.weight", "lm_head.weight"),
    ("model.norm.weight", "model.norm.weight"),
    ("model.layers.{i}.attention_norm.weight", "model.layers.{i}.input_layernorm.weight"),
    ("model.layers.{i}.ffn_norm.weight", "model.layers.{i}.post_attention_layernorm.weight"),
    ("model.layers.{i}.attention.wo.weight", "model.layers.{i}.self_attn.o_proj.weight"),
    ("model.layers.{i}.feed_forward.w1.weight", "model.layers.{i}.mlp.gate_proj.weight"),
    ("model.layers.{i}.feed_forward.w3.weight", "model.layers.{i}.mlp.up_proj.weight"),
    ("model.layers.{i}.feed_forward.w2.weight", "model.layers.{i}.mlp.down_proj.weight"),
])
_INTERNLM2_WQKV = re.compile(r"^model\.layers\.(\d+)\.attention\.wqkv\.weight$")


@dataclass
class ChatConversionResult:
    """`state_dict` loads strictly into `InternVideo2ForConditionalGeneration(config)`; with `lora="adapter"`,
    `adapter_state_dict` + `adapter_config` form a PEFT adapter for that model. `report` lists
    `(original key, action)` for every key of the original checkpoint."""

    state_dict: dict[str, torch.Tensor]
    report: list[tuple[str, str]] = field(default_factory=list)
    adapter_state_dict: dict[str, torch.Tensor] | None = None
    adapter_config: dict | None = None


# ------------------------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------------------------
def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint: a folder of `*.safetensors` shards (with or without index), one `.safetensors` file, or a
    `torch.save` file (bare, or wrapped in `{"model": ...}` / `{"module": ...}` / `{"state_dict": ...}`). Truncated
    or non-tensor files and non-finite tensors are refused with a one-line `ConversionError`."""
    state = _read_state_dict(Path(path))
    check_finite(state, f"the checkpoint {path}")
    return state


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        # the released repositories name their shards model*.safetensors; other files are not weights
        shards = sorted(path.glob("model*.safetensors")) or sorted(path.glob("*.safetensors"))
        if not shards:
            shards = sorted(path.glob("*.bin")) + sorted(path.glob("*.pth"))
            if not shards:
                raise FileNotFoundError(f"No *.safetensors, *.bin or *.pth checkpoint in {path}.")
        state = {}
        for shard in shards:
            state.update(_read_state_dict(shard))
        return state
    try:
        loaded = read_checkpoint_file(path)
        return unwrap_state_dict(loaded, wrappers=("model", "module", "state_dict"), strip_prefixes=())
    except ConversionError as error:
        raise ConversionError(f"{path}: {error}") from None


# ------------------------------------------------------------------------------------------------------------------
# LLM: LoRA and InternLM2
# ------------------------------------------------------------------------------------------------------------------
def split_language_model(
    llm_state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """Split the PEFT-wrapped LLM weights (keys relative to `lm.base_model.model.`) into base weights (the
    `.base_layer` infix of newer peft removed) and `{module: {"A": ..., "B": ...}}` LoRA pairs."""
    base, lora, adapters = {}, {}, set()
    for key, tensor in llm_state.items():
        match = _LORA_KEY.match(key)
        if match:
            adapters.add(match["adapter"])
            lora.setdefault(match["module"].replace(".base_layer", ""), {})[match["which"]] = tensor
            continue
        if ".lora_" in key:
            raise ConversionError(
                f"Unsupported LoRA parameter {LLM_PREFIX}{key} (only Linear lora_A/lora_B are known)."
            )
        base[key.replace(".base_layer.", ".")] = tensor
    if len(adapters) > 1:
        raise ConversionError(
            f"The checkpoint holds several LoRA adapters {sorted(map(str, adapters))}; expected one."
        )
    for module, pair in lora.items():
        if set(pair) != {"A", "B"}:
            raise ConversionError(f"LoRA of {module} is incomplete: has {sorted(pair)}, needs A and B.")
        if f"{module}.weight" not in base:
            raise ConversionError(f"LoRA on {module} but the checkpoint has no base weight {module}.weight.")
    return base, lora


def lora_scaling(lora: dict[str, dict[str, torch.Tensor]], lora_alpha: float) -> tuple[int, float]:
    """The rank (from the tensors) and `alpha / r`; all modules must share the rank."""
    ranks = {pair["A"].shape[0] for pair in lora.values()}
    if len(ranks) != 1:
        raise ConversionError(f"LoRA modules have different ranks {sorted(ranks)}; expected one.")
    rank = ranks.pop()
    return rank, lora_alpha / rank


def merge_lora(base: dict[str, torch.Tensor], lora: dict[str, dict[str, torch.Tensor]], scaling: float) -> None:
    """`W <- W + scaling * B @ A` in float32 (the base may be bf16 and the LoRA fp32), cast back to W's dtype."""
    for module, pair in lora.items():
        key = f"{module}.weight"
        weight = base[key]
        delta = pair["B"].float() @ pair["A"].float()
        if delta.shape != weight.shape:
            raise ConversionError(f"LoRA of {module}: B@A is {tuple(delta.shape)}, the weight {tuple(weight.shape)}.")
        base[key] = (weight.float() + scaling * delta).to(weight.dtype)


def is_internlm2_layout(keys) -> bool:
    return any(".attention.wqkv." in key or key.startswith("model.tok_embeddings.") for key in keys)


def split_internlm2_wqkv(wqkv: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int):
    """Split InternLM2's packed projection into Llama q/k/v weights.

    Its output rows are grouped per KV head: `[kv_heads, (heads/kv_heads) queries + 1 key + 1 value, head_dim]`,
    i.e. query head `h` belongs to KV group `h // (heads/kv_heads)`, which is also Llama's GQA convention."""
    groups = num_heads // num_kv_heads
    expected_rows = num_kv_heads * (groups + 2) * head_dim
    if wqkv.shape[0] != expected_rows:
        raise ConversionError(
            f"wqkv has {wqkv.shape[0]} rows; {num_heads} heads / {num_kv_heads} KV heads of {head_dim} need "
            f"{expected_rows}."
        )
    packed = wqkv.reshape(num_kv_heads, groups + 2, head_dim, -1)
    query = packed[:, :groups].reshape(num_heads * head_dim, -1)
    key = packed[:, groups].reshape(num_kv_heads * head_dim, -1)
    value = packed[:, groups + 1].reshape(num_kv_heads * head_dim, -1)
    return query.contiguous(), key.contiguous(), value.contiguous()


def _text_geometry(text_config) -> tuple[int, int, int]:
    heads = text_config.num_attention_heads
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
    return heads, kv_heads, head_dim


def internlm2_to_llama(
    base: dict[str, torch.Tensor],
    lora: dict[str, dict[str, torch.Tensor]],
    text_config,
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """Rename/split InternLM2 weights (and not-yet-merged LoRA pairs) into the Llama layout.

    A LoRA on `wqkv` becomes three LoRAs on q/k/v that share `A`, each taking its rows of `B` (the packed update
    `B @ A` splits row-wise exactly like the weight)."""
    heads, kv_heads, head_dim = _text_geometry(text_config)
    converted = {}
    for key, tensor in base.items():
        match = _INTERNLM2_WQKV.match(key)
        if match:
            layer = match[1]
            q, k, v = split_internlm2_wqkv(tensor, heads, kv_heads, head_dim)
            converted[f"model.layers.{layer}.self_attn.q_proj.weight"] = q
            converted[f"model.layers.{layer}.self_attn.k_proj.weight"] = k
            converted[f"model.layers.{layer}.self_attn.v_proj.weight"] = v
            continue
        new_key = _INTERNLM2_RENAMES.to_ours(key)
        if new_key is None:
            raise ConversionError(f"Unknown InternLM2 weight {LLM_PREFIX}{key}.")
        converted[new_key] = tensor
    converted_lora = {}
    for module, pair in lora.items():
        match = _INTERNLM2_WQKV.match(f"{module}.weight")
        if match:
            layer = match[1]
            q, k, v = split_internlm2_wqkv(pair["B"], heads, kv_heads, head_dim)
            for name, rows in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                converted_lora[f"model.layers.{layer}.self_attn.{name}"] = {"A": pair["A"], "B": rows}
            continue
        new_key = _INTERNLM2_RENAMES.to_ours(f"{module}.weight")
        if new_key is None:
            raise ConversionError(f"LoRA on an unknown InternLM2 module {module}.")
        converted_lora[new_key[: -len(".weight")]] = pair
    return converted, converted_lora


def peft_adapter(
    lora: dict[str, dict[str, torch.Tensor]], rank: int, lora_alpha: float, lora_dropout: float
) -> tuple[dict[str, torch.Tensor], dict]:
    """A PEFT LoRA adapter for the converted chat model: weights named as `PeftModel.save_pretrained` writes them
    (`base_model.model.language_model.<module>.lora_{A,B}.weight`) and an `adapter_config.json` dict whose
    `target_modules` regex matches exactly the adapted language-model modules."""
    state = {}
    for module, pair in sorted(lora.items()):
        prefix = f"base_model.model.{LANGUAGE_MODEL_PREFIX}{module}"
        state[f"{prefix}.lora_A.weight"] = pair["A"].clone()  # q/k/v from one wqkv share A: own copies
        state[f"{prefix}.lora_B.weight"] = pair["B"].clone()
    names = sorted({module.rsplit(".", 1)[-1] for module in lora})
    target = rf"{re.escape(LANGUAGE_MODEL_PREFIX)}(?:.*\.)?(?:{'|'.join(map(re.escape, names))})"
    config = {
        "peft_type": "LORA",
        "task_type": None,
        "r": rank,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "target_modules": target,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "base_model_name_or_path": None,
    }
    return state, config


# ------------------------------------------------------------------------------------------------------------------
# whole checkpoint
# ------------------------------------------------------------------------------------------------------------------
def convert_chat_state_dict(
    original: dict[str, torch.Tensor],
    config: InternVideo2ChatConfig,
    lora: str = "merge",
    lora_alpha: float = DEFAULT_LORA_ALPHA,
    lora_dropout: float = DEFAULT_LORA_DROPOUT,
) -> ChatConversionResult:
    """Map an original chat state dict onto [`InternVideo2ForConditionalGeneration`] names.

    Args:
        original: the remote-code model's state dict.
        config: the target configuration (its `text_config` is the Mistral/Llama-layout LLM).
        lora: `"merge"` (fold the LoRA into the LLM weights) or `"adapter"` (keep the base weights, return a PEFT
            adapter). A checkpoint without LoRA needs neither.
        lora_alpha, lora_dropout: the LoRA hyper-parameters (32 / 0.1 for the released models; the rank is read from
            the tensors).
    """
    if lora not in ("merge", "adapter"):
        raise ValueError(f"lora must be 'merge' or 'adapter', got {lora!r}.")
    report: list[tuple[str, str]] = []
    converted: dict[str, torch.Tensor] = {}
    llm_state: dict[str, torch.Tensor] = {}
    queries: dict[str, torch.Tensor] = {}
    unmapped = []
    num_blocks = config.vision_config.num_hidden_layers

    mapping = chat_key_mapping()
    for key, tensor in original.items():
        reason = mapping.drop_reason(key) or (_ROTARY_BUFFER_REASON if _ROTARY_BUFFER.match(key) else None)
        if reason is not None:
            report.append((key, f"dropped: {reason}"))
            continue
        if key.startswith(LLM_PREFIX):
            llm_state[key[len(LLM_PREFIX) :]] = tensor
            continue
        if key in ("query_tokens", "extra_query_tokens"):
            queries[key] = tensor
            continue
        block = re.match(r"^vision_encoder\.blocks\.(\d+)\.", key)
        if block and int(block[1]) >= num_blocks:
            report.append((key, f"dropped: vision block {block[1]} is past the {num_blocks} blocks the chat model "
                                "builds (the original drops the stage-2 encoder's last block)"))
            continue
        new_key = mapping.to_ours(key)
        if new_key is None:
            unmapped.append(key)
            continue
        converted[new_key] = tensor
        report.append((key, f"-> {new_key}"))
    if unmapped:
        raise ConversionError(f"{len(unmapped)} checkpoint keys have no mapping: {sorted(unmapped)[:20]}")

    # queries: one parameter, the 32 `query_tokens` first, then the 64 `extra_query_tokens`
    if "query_tokens" not in queries:
        raise ConversionError("The checkpoint has no query_tokens.")
    parts = [queries["query_tokens"]] + ([queries["extra_query_tokens"]] if "extra_query_tokens" in queries else [])
    converted["query_tokens"] = torch.cat(parts, dim=1)
    report.append(("query_tokens", "-> query_tokens[:, :num_query_tokens]"))
    if "extra_query_tokens" in queries:
        report.append(("extra_query_tokens", "-> query_tokens[:, num_query_tokens:]"))

    if not llm_state:
        raise ConversionError(
            f"The checkpoint has no language-model weights (keys starting with {LLM_PREFIX!r})."
        )
    base, lora_pairs = split_language_model(llm_state)
    for key in llm_state:
        report.append((f"{LLM_PREFIX}{key}", "-> language model" + (" (LoRA)" if ".lora_" in key else "")))
    adapter_state = adapter_config = None
    internlm2 = is_internlm2_layout(base)
    if lora_pairs:
        rank, scaling = lora_scaling(lora_pairs, lora_alpha)
        if lora == "merge":
            merge_lora(base, lora_pairs, scaling)  # on the original layout: the split below is linear
            lora_pairs = {}
    if internlm2:
        base, lora_pairs = internlm2_to_llama(base, lora_pairs, config.text_config)
    if lora_pairs:
        adapter_state, adapter_config = peft_adapter(lora_pairs, rank, lora_alpha, lora_dropout)
    for key, tensor in base.items():
        converted[f"{LANGUAGE_MODEL_PREFIX}{key}"] = tensor
    return ChatConversionResult(
        state_dict=converted, report=report, adapter_state_dict=adapter_state, adapter_config=adapter_config
    )


def _read_original_config(checkpoint: Path) -> dict:
    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    path = folder / "config.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("model_config") or {}


def _json_if_file(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def chat_config_from_original(checkpoint: str | Path, preset: str = "internvideo2-chat-8b") -> InternVideo2ChatConfig:
    """The configuration of a released remote-code checkpoint folder: the preset's architecture with the sizes its
    `config.json` (`model_config`) states.

    * vision: `img_size`, `patch_size`, `encoder_embed_dim`, `num_frames`, `tubelet_size`; the original builder
      hard-codes depth 40 and 16 heads (a `depth` / `num_heads` entry, as in reduced test checkpoints, overrides them)
      and builds `depth + x_vis_return_idx + 1` blocks with an MLP of `int(width * 48 / 11)`;
    * queries: `bridge.num_query_token` / `extra_num_query_token`;
    * Q-Former: the original loads `bert-base-uncased`'s config; a `qformer_bert/config.json` (or
      `qformer_config.json`) next to the checkpoint replaces it (the vocabulary gets the original's extra `[DEC]`);
    * language model: `llm.pretrained_llm_path` when it names a folder (relative to the checkpoint) with a
      `config.json`, else the preset's (Mistral-7B-Instruct-v0.3 / InternLM2.5-7B, public config values).

    Without a `config.json` the preset is returned unchanged."""
    folder = Path(checkpoint)
    folder = folder if folder.is_dir() else folder.parent
    original = _read_original_config(folder)
    overrides: dict = {}
    vision = original.get("vision_encoder") or {}
    if vision:
        width = int(vision.get("encoder_embed_dim", vision.get("d_model", 1408)))
        depth = int(vision.get("depth", 40)) + int(vision.get("x_vis_return_idx", -2)) + 1
        overrides["vision_config"] = dict(
            hidden_size=width,
            num_hidden_layers=depth,
            num_attention_heads=int(vision.get("num_heads", 16)),
            intermediate_size=int(width * 48 / 11),
            image_size=int(vision.get("img_size", 224)),
            patch_size=int(vision.get("patch_size", 14)),
            num_frames=int(vision.get("num_frames", 8)),
            tubelet_size=int(vision.get("tubelet_size", 1)),
        )
        # an HD view is one encoder input (the card's `load_video(resolution=img_size)`)
        overrides["hd_local_size"] = int(vision.get("img_size", 224))
    bridge = original.get("bridge") or {}
    if bridge:
        overrides["num_query_tokens"] = int(bridge.get("num_query_token", 32))
        overrides["num_extra_query_tokens"] = int(bridge.get("extra_num_query_token", 64))
    bert = _json_if_file(folder / "qformer_bert" / "config.json") or _json_if_file(folder / "qformer_config.json")
    if bert:
        overrides["qformer_config"] = {
            key: bert[key]
            for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                        "max_position_embeddings", "layer_norm_eps", "hidden_act")
            if key in bert
        }
        overrides["qformer_config"]["vocab_size"] = int(bert.get("vocab_size", 30522)) + 1  # + "[DEC]"
    llm_path = (original.get("llm") or {}).get("pretrained_llm_path")
    llm_config = _json_if_file(folder / llm_path / "config.json") if llm_path else None
    if llm_config:
        text_config = {k: v for k, v in llm_config.items() if k not in ("architectures", "torch_dtype", "dtype")}
        config = InternVideo2ChatConfig.from_preset(preset, **overrides)
        config.text_config = AutoConfig.for_model(**text_config)
        return InternVideo2ChatConfig.from_dict(config.to_dict())
    return InternVideo2ChatConfig.from_preset(preset, **overrides)


def save_chat_processor(
    output_dir: str | Path,
    config: InternVideo2ChatConfig,
    tokenizer_dir: str | Path,
    qformer_tokenizer_dir: str | Path | None = None,
):
    """Save the [`InternVideo2ChatProcessor`] of a converted model next to it: the language model's tokenizer from
    `tokenizer_dir` (saved with `padding_side="left"`, what batched generation needs), the chat template of its
    family, and for HD models the Q-Former's BERT tokenizer (`qformer_tokenizer_dir`, else the offline
    bert-base-uncased asset) with the original's `[DEC]` token, left truncation and left padding."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=False)
    tokenizer.padding_side = "left"
    template = "mistral" if config.text_config.model_type == "mistral" else "internlm2_5"
    qformer_tokenizer = None
    if config.use_hd:
        qformer_tokenizer = load_qformer_tokenizer(qformer_tokenizer_dir)
    processor = InternVideo2ChatProcessor.from_model_config(
        config, tokenizer, chat_template=template, qformer_tokenizer=qformer_tokenizer
    )
    processor.save_pretrained(str(output_dir))
    return processor


def load_qformer_tokenizer(folder: str | Path | None = None):
    """The original Q-Former tokenizer: bert-base-uncased WordPiece (`folder`, else the offline asset) plus the
    `[DEC]` token (id 30522), truncating on the left and padding on the left."""
    tokenizer = load_bert_uncased_tokenizer(folder, truncation_side="left")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.padding_side = "left"
    return tokenizer


def _find_tokenizer_dir(folder: Path) -> Path | None:
    if any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        return folder
    return None


def convert_chat_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    config: InternVideo2ChatConfig | None = None,
    preset: str = "internvideo2-chat-8b",
    lora: str = "merge",
    lora_alpha: float | None = None,
    dtype: torch.dtype | None = None,
    max_shard_size: str = "5GB",
    tokenizer: str | Path | None = None,
    qformer_tokenizer: str | Path | None = None,
    base_model: str | None = None,
    push_to_hub: str | None = None,
) -> ChatConversionResult:
    """Convert a checkpoint (folder or file) and save the model to `output_dir` (the PEFT adapter, if any, to
    `output_dir/lora_adapter`). `config` defaults to `preset` with the sizes of the original `config.json`
    ([`chat_config_from_original`]); the LoRA alpha to that file's `model_config.llm.lora_alpha` when present, else
    32.

    The processor (tokenizer with left padding, chat template, Q-Former tokenizer for HD) is saved too when the
    language model's tokenizer is found: `tokenizer` (a folder), else the checkpoint folder when it holds the
    tokenizer files (the released repositories do). `qformer_tokenizer` is a bert-base-uncased folder (else
    `<checkpoint>/qformer_bert` when it has a `vocab.txt`, else the offline asset).

    The folder is built aside and moved into place only when complete (`core.save_and_verify`), with a model card
    (`base_model` defaults to the preset's OpenGVLab repository); `push_to_hub` uploads it to that Hub repository."""
    checkpoint, output_dir = Path(checkpoint), check_output_dir(output_dir)
    original_config = _read_original_config(checkpoint)
    if config is None:
        config = chat_config_from_original(checkpoint, preset)
    if lora_alpha is None:
        lora_alpha = float((original_config.get("llm") or {}).get("lora_alpha", DEFAULT_LORA_ALPHA))
    lora_dropout = float((original_config.get("llm") or {}).get("lora_dropout", DEFAULT_LORA_DROPOUT))
    result = convert_chat_state_dict(
        load_original_state_dict(checkpoint), config, lora=lora, lora_alpha=lora_alpha, lora_dropout=lora_dropout
    )
    state = result.state_dict
    if dtype is not None:
        state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in state.items()}
    with torch.device("meta"):
        model = InternVideo2ForConditionalGeneration(config)
    # strict: every parameter of the model comes from the checkpoint and nothing is left over
    model.load_state_dict(state, strict=True, assign=True)
    folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
    tokenizer_dir = Path(tokenizer) if tokenizer is not None else _find_tokenizer_dir(folder)
    if tokenizer_dir is not None and qformer_tokenizer is None and (folder / "qformer_bert" / "vocab.txt").is_file():
        qformer_tokenizer = folder / "qformer_bert"

    def write_adapter_processor_and_report(staging: Path) -> None:
        if result.adapter_state_dict is not None:
            adapter_dir = staging / "lora_adapter"
            adapter_dir.mkdir(parents=True, exist_ok=True)
            save_file(result.adapter_state_dict, adapter_dir / "adapter_model.safetensors", metadata={"format": "pt"})
            (adapter_dir / "adapter_config.json").write_text(json.dumps(result.adapter_config, indent=2))
        (staging / "conversion_report.json").write_text(json.dumps(result.report, indent=1))
        if tokenizer_dir is not None:
            save_chat_processor(staging, config, tokenizer_dir, qformer_tokenizer)
        card = chat_model_card(model, result, checkpoint.name, preset, lora, base_model or _CHAT_BASE_MODELS.get(preset),
                               with_processor=tokenizer_dir is not None)  # fmt: skip
        card.save(str(staging / "README.md"))

    save_and_verify(model, output_dir, write_adapter_processor_and_report, max_shard_size=max_shard_size)
    if push_to_hub:
        push_folder_to_hub(output_dir, push_to_hub)
    return result


# OpenGVLab's Hub repositories of the presets (the converted checkpoints)
_CHAT_BASE_MODELS = {
    "internvideo2-chat-8b": "OpenGVLab/InternVideo2-Chat-8B",
    "internvideo2-chat-8b-hd": "OpenGVLab/InternVideo2_chat_8B_HD",
    "internvideo2-chat-8b-internlm2.5": "OpenGVLab/InternVideo2_Chat_8B_InternLM2_5",
}


def chat_model_card(model, result: ChatConversionResult, checkpoint_name: str, preset: str, lora: str,
                    base_model: str | None, with_processor: bool = False):  # fmt: skip
    """The README.md of a converted chat folder: Hub metadata, usage (package and `trust_remote_code`), what was
    verified at conversion and what the report holds."""
    config = model.config
    dropped = sum(action.startswith("dropped") for _, action in result.report)
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    if with_processor:
        example = """messages = [{"role": "user", "content": [{"type": "video", "path": "video.mp4"},
                                          {"type": "text", "text": "Describe the video."}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt")
answer = processor.batch_decode(model.generate(**inputs, max_new_tokens=64), skip_special_tokens=True)"""
    else:
        example = """# no tokenizer was found at conversion: build InternVideo2ChatProcessor from the language model's
# tokenizer (see the package's docs/videochat.md) and save it next to the weights"""
    sections = [
        f"InternVideo2 video chat model (VideoChat2 design: InternVideo2 video encoder, Q-Former, projector, "
        f"`{config.text_config.model_type}` language model), converted from `{checkpoint_name}` (preset `{preset}`, "
        f"LoRA {'merged into the language model' if lora == 'merge' else 'kept as a PEFT adapter in lora_adapter/'}) "
        f"to `{type(model).__name__}` of `transformers-internvideo2`; {num_parameters:,} parameters.",
        install_section(),
        usage_section("AutoModelForImageTextToText", "AutoProcessor" if with_processor else None, example),
        f"""## Verification

Measured at conversion: every saved tensor was re-read and compared bit-exactly (max |diff| 0) with the converted
model, which loaded strictly (every parameter from the checkpoint, no key left over); every source tensor was
finite. {len(result.report)} source keys: {dropped} dropped with a reason, the rest renamed
(`conversion_report.json` lists the action for every key). Parity of the converter's parts with independent
references (original stage-2 vision fixture, InstructBLIP Q-Former, peft LoRA, InternLM2) is tested by the package's
`tests/test_conversion_chat.py`; no output of *this* folder was compared with the original code.""",
        """## License

The original InternVideo2 code and OpenGVLab's model repositories are published under the Apache License 2.0
(<https://github.com/OpenGVLab/InternVideo/blob/main/LICENSE>); the language model keeps its own license. Check both
before publishing a conversion.""",
    ]
    return build_model_card(
        card_metadata("video-text-to-text", ["video-chat", "multimodal", "converted"], base_model),
        f"InternVideo2 chat ({preset}), converted",
        sections,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Convert an InternVideo2 chat checkpoint (VideoChat2) to Transformers.")
    parser.add_argument("--family", default="chat", choices=["chat"], help="accepted for the shared conversion CLI")
    parser.add_argument("--checkpoint", required=True, help="folder with model*.safetensors (or one file)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--preset", default="internvideo2-chat-8b", choices=sorted(INTERNVIDEO2_CHAT_PRESETS))
    parser.add_argument("--config", help="an InternVideo2ChatConfig JSON file instead of --preset")
    parser.add_argument("--lora", default="merge", choices=["merge", "adapter"])
    parser.add_argument("--lora-alpha", type=float, default=None)
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--tokenizer", default=None,
                        help="folder of the language model's tokenizer (default: the checkpoint folder, if it has one)")
    parser.add_argument("--qformer-tokenizer", default=None,
                        help="bert-base-uncased folder for the HD Q-Former instruction (default: the offline asset)")
    parser.add_argument("--base-model", help="Hub id of the source for the card's base_model (default: the preset's)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload the finished folder to this Hub repository")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = None
    if args.config:
        config = InternVideo2ChatConfig.from_dict(json.loads(Path(args.config).read_text()))
    dtype = getattr(torch, args.dtype) if args.dtype else None
    try:
        result = convert_chat_checkpoint(
            args.checkpoint, args.output, config=config, preset=args.preset, lora=args.lora,
            lora_alpha=args.lora_alpha, dtype=dtype, tokenizer=args.tokenizer, qformer_tokenizer=args.qformer_tokenizer,
            base_model=args.base_model, push_to_hub=args.push_to_hub,
        )
    except ConversionError as error:
        return conversion_failed(error)
    dropped = sum(action.startswith("dropped") for _, action in result.report)
    print(f"converted {len(result.report)} keys ({dropped} dropped with a reason) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ChatConversionResult",
    "load_original_state_dict",
    "convert_chat_state_dict",
    "convert_chat_checkpoint",
    "chat_config_from_original",
    "chat_key_mapping",
    "chat_model_card",
    "load_qformer_tokenizer",
    "save_chat_processor",
    "split_internlm2_wqkv",
    "merge_lora",
    "main",
]

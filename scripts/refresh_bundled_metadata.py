#!/usr/bin/env python
"""Make the bundled shapes-world model folders Hub-ready without touching their weights.

For `shapes-direction-classifier` and `shapes-video-text` (under `src/transformers_internvideo2/shapes_world/
bundled/`, or the folders given on the command line) this

1. loads the model and the processor strictly (a folder that does not load is an error, nothing is written);
2. copies their code into the folder and adds `auto_map` (and, for the video-text model, `custom_pipelines` for the
   zero-shot pipeline) to `config.json` and to the processor's JSON file, leaving every other key as it is;
3. rewrites the model card's YAML metadata (license name and link, `pipeline_tag`, `library_name`, tags,
   `base_model`) and its install/usage section (package and `trust_remote_code` routes), keeping the rest of the
   card (held-out metrics, reproduction);
4. checks that every weight file is byte-identical afterwards.

Run it again after `scripts/install_bundled.py` installs newly trained folders (it is idempotent):

    python scripts/refresh_bundled_metadata.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path


CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "src"))

from transformers_internvideo2.models.internvideo2_video_text.modeling_internvideo2_video_text import (  # noqa: E402
    InternVideo2ForRetrieval,
)
from transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text import (  # noqa: E402
    InternVideo2Processor,
)
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (  # noqa: E402
    InternVideo2ForVideoClassification,
)
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import (  # noqa: E402
    InternVideo2VideoProcessor,
)
from transformers_internvideo2.models.model_card import (  # noqa: E402
    PACKAGE_LICENSE,
    card_metadata,
    install_section,
    usage_section,
)
from transformers_internvideo2.shapes_world.bundled import (  # noqa: E402
    BUNDLED_CLASSIFIER,
    BUNDLED_DIR,
    BUNDLED_VIDEO_TEXT,
)
from transformers_internvideo2.tasks.pipelines import register_video_text_tasks  # noqa: E402


USAGE_START, USAGE_END = "<!-- hub-usage:start -->", "<!-- hub-usage:end -->"
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n+", re.DOTALL)
_USAGE_BLOCK = re.compile(re.escape(USAGE_START) + r".*?" + re.escape(USAGE_END) + r"\n*", re.DOTALL)

# name -> (model class, its Auto class, processor class, processor JSON file, pipeline tag, tags, base_model, usage
# example, pipeline call)
BUNDLES = {
    BUNDLED_CLASSIFIER: (
        InternVideo2ForVideoClassification, "AutoModelForVideoClassification", InternVideo2VideoProcessor,
        "video_preprocessor_config.json",
        "video-classification", ["video-classification", "shapes-world", "tiny"], None,
        'inputs = processor("clip.mp4", return_tensors="pt")\n'
        "label = model.config.id2label[model(**inputs).logits.argmax(-1).item()]  # left / right / up / down",
        'classifier("clip.mp4")',
    ),
    BUNDLED_VIDEO_TEXT: (
        InternVideo2ForRetrieval, "AutoModelForPreTraining", InternVideo2Processor, "processor_config.json",
        "zero-shot-video-classification",
        ["video-text-retrieval", "zero-shot-video-classification", "shapes-world", "tiny"],
        "sentence-transformers/all-MiniLM-L6-v2",  # the text encoder's initialisation
        'inputs = processor(text=["a red circle moves left"], videos="clip.mp4", return_tensors="pt")\n'
        'video = model.get_video_features(inputs["pixel_values"]).pooler_output\n'
        'text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output\n'
        "similarity = video @ text.T",
        'classifier("clip.mp4", candidate_labels=["moves left", "moves right", "moves up", "moves down"])',
    ),
}


def _weights_digest(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.safetensors"))}


def _add_keys(path: Path, nested_auto_maps: dict | None = None, **keys) -> None:
    """Set top-level keys of a JSON file (and the `auto_map` of nested sub-processor dicts), keeping the others and
    the file's layout (sorted, 2-space indent)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update({key: value for key, value in keys.items() if value})
    for attribute, auto_map in (nested_auto_maps or {}).items():
        if isinstance(data.get(attribute), dict):
            data[attribute]["auto_map"] = auto_map
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def refresh(folder: Path, name: str) -> None:
    model_class, model_auto, processor_class, processor_file, pipeline_tag, tags, base_model, example, call = BUNDLES[name]
    before = _weights_digest(folder)
    model = model_class.from_pretrained(folder, local_files_only=True)  # strict: refuses an incomplete folder
    processor = processor_class.from_pretrained(folder, local_files_only=True)
    model._write_remote_code(folder)
    processor._write_remote_code(folder)
    _add_keys(folder / "config.json", auto_map=model.config.auto_map,
              custom_pipelines=getattr(model.config, "custom_pipelines", None))  # fmt: skip
    nested = {}  # sub-processors stored inside processor_config.json carry their own auto_map
    for attribute in getattr(processor, "get_attributes", list)():
        sub_processor = getattr(processor, attribute, None)
        if getattr(sub_processor, "auto_map", None):
            nested[attribute] = sub_processor.auto_map
    _add_keys(folder / processor_file, auto_map=processor.auto_map, nested_auto_maps=nested)

    card_path = folder / "README.md"
    body = _USAGE_BLOCK.sub("", _FRONT_MATTER.sub("", card_path.read_text(encoding="utf-8")))
    processor_auto = next(iter(processor.auto_map))
    usage = usage_section(model_auto, processor_auto, example, pipeline_task=pipeline_tag, pipeline_call=call)
    measured = (
        "The `trust_remote_code` route loads the code stored here and gives the same outputs as the package "
        "(max |diff| 0 on shapes-world clips; the package's `tests/test_hub_ready.py`)."
    )
    block = f"{USAGE_START}\n{install_section()}\n{usage}\n{measured}\n{USAGE_END}\n\n"
    # the usage goes after the title and the first paragraph block, before the metrics
    title_end = body.index("\n## ") + 1 if "\n## " in body else len(body)
    metadata = card_metadata(pipeline_tag, tags, base_model, license=PACKAGE_LICENSE)
    card_path.write_text(f"---\n{metadata.to_yaml()}\n---\n\n{body[:title_end]}{block}{body[title_end:]}",
                         encoding="utf-8")  # fmt: skip
    after = _weights_digest(folder)
    if after != before:
        raise SystemExit(f"error: the weights of {folder} changed ({before} -> {after})")
    print(f"refreshed {folder}: code files, auto_map, card metadata (weights unchanged)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        help=f"bundle folders named {sorted(BUNDLES)} (default: the checkout's bundled ones)")  # fmt: skip
    args = parser.parse_args(argv)
    register_video_text_tasks()  # the zero-shot pipeline's entry in the video-text folder's config
    folders = args.folders or [BUNDLED_DIR / name for name in BUNDLES]
    for folder in folders:
        if folder.name not in BUNDLES:
            print(f"error: {folder} is not one of {sorted(BUNDLES)}", file=sys.stderr)
            return 1
        refresh(folder, folder.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

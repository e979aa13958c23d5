#!/usr/bin/env python
"""Keep the bundled shapes-world model folders in their shipped form, without touching their weights.

For `shapes-direction-classifier` and `shapes-video-text` (under `src/transformers_internvideo2/shapes_world/
bundled/`, or the folders given on the command line) this

1. loads the model and the processor strictly (a folder that does not load is an error, nothing is written);
2. removes code: `*.py` files and the `auto_map` / `custom_pipelines` keys naming them (a recipe's `save_pretrained`
   writes both). The package data holds no copy of the package's code; the Hub-ready folder with code and
   `auto_map` is one explicit step away:
   `python -m transformers_internvideo2.shapes_world.bundled.hub_export <name> <folder>`;
3. rewrites the model card's YAML metadata (license name and link, `pipeline_tag`, `library_name`, tags,
   `base_model`) and its install/usage section (package and `trust_remote_code` routes), keeping the rest of the
   card (held-out metrics, reproduction);
4. checks that every weight file is byte-identical afterwards.

`scripts/install_bundled.py` runs it on newly installed folders; it is idempotent:

    python scripts/refresh_bundled_metadata.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "src"))

from transformers_internvideo2.shapes_world.bundled import BUNDLED_DIR  # noqa: E402
from transformers_internvideo2.shapes_world.bundled.hub_export import (  # noqa: E402
    HUB_BUNDLES,
    strip_code,
    weights_digest,
    write_hub_card,
)


def refresh(folder: Path, name: str) -> None:
    bundle = HUB_BUNDLES[name]
    before = weights_digest(folder)
    bundle.load(folder=folder)  # strict: refuses an incomplete folder
    strip_code(folder)
    write_hub_card(folder, name)
    after = weights_digest(folder)
    if after != before:
        raise SystemExit(f"error: the weights of {folder} changed ({before} -> {after})")
    print(f"refreshed {folder}: no code files, no auto_map, card metadata (weights unchanged)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        help=f"bundle folders named {sorted(HUB_BUNDLES)} (default: the checkout's bundled ones)")  # fmt: skip
    args = parser.parse_args(argv)
    folders = args.folders or [BUNDLED_DIR / name for name in HUB_BUNDLES]
    for folder in folders:
        if folder.name not in HUB_BUNDLES:
            print(f"error: {folder} is not one of {sorted(HUB_BUNDLES)}", file=sys.stderr)
            return 1
        refresh(folder, folder.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

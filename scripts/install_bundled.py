#!/usr/bin/env python
"""Install trained shapes-world models into a source checkout's bundled models (the explicit step after a recipe run).

The recipes write only into the output folder they are given; their ready-to-ship folders are under
`<output>/bundle/` (three-stage recipe: `shapes-direction-classifier`, `shapes-video-text`; chat recipe:
`shapes-chat`; audio-video-text recipe: `shapes-audio-video-text`). This script copies such folders into `src/transformers_internvideo2/shapes_world/bundled/` of the
checkout it belongs to, replacing the previous ones, and refuses to write anywhere else (an installed package in
site-packages is never modified). The classifier and video-text folders then get their Hub metadata, code and
`auto_map` (`scripts/refresh_bundled_metadata.py`; weights unchanged).

    python scripts/install_bundled.py runs/shapes/bundle
    python scripts/install_bundled.py runs/shapes-chat/bundle/shapes-chat
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # refresh_bundled_metadata, next to this script
BUNDLED = CHECKOUT / "src" / "transformers_internvideo2" / "shapes_world" / "bundled"
NAMES = ("shapes-direction-classifier", "shapes-video-text", "shapes-chat", "shapes-audio-video-text")
HUB_NAMES = ("shapes-direction-classifier", "shapes-video-text")  # folders with a Hub card (refresh_bundled_metadata)


def bundle_folders(source: Path) -> list[Path]:
    """`source` itself when it is one bundle folder, else the bundle folders inside it."""
    if source.name in NAMES:
        return [source]
    found = [source / name for name in NAMES if (source / name).is_dir()]
    if not found:
        raise SystemExit(f"error: {source} holds none of {', '.join(NAMES)}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a recipe's bundle/ folder, or one bundle folder in it")
    args = parser.parse_args(argv)
    if not (CHECKOUT / ".git").exists() or not BUNDLED.is_dir():
        print(f"error: {CHECKOUT} is not a source checkout of transformers-internvideo2; refusing to write", file=sys.stderr)
        return 1
    for folder in bundle_folders(args.source.resolve()):
        if not (folder / "config.json").is_file() and not (folder / "shapes_chat.json").is_file():
            print(f"error: {folder} is not a trained bundle (no config.json / shapes_chat.json)", file=sys.stderr)
            return 1
        destination = BUNDLED / folder.name
        staging = BUNDLED / f".{folder.name}.installing"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.rmtree(destination, ignore_errors=True)
        staging.rename(destination)
        print(f"installed {destination}")
        if folder.name in HUB_NAMES:  # Hub metadata, code and auto_map of the Transformers folders
            from refresh_bundled_metadata import refresh

            refresh(destination, folder.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

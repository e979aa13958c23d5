"""Load a script of `benchmarks/` as a module for its smoke tests (the folder is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """The module of `benchmarks/<name>.py`, executed once. It is registered in `sys.modules` only while it executes:
    dataclasses look their module up there at class creation."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module

"""The package layout is the architecture (docs/architecture.md): a core that imports nothing else, and wings that
import the core (and only the wings below them). Checked on the source, function-local imports included."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest


PACKAGE = "transformers_internvideo2"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

CORE = {"models", "media", "losses"}
# what each part may import besides itself (the core may import the rest of the core)
ALLOWED = {
    "models": CORE,
    "media": CORE,
    "losses": CORE,
    "assets": set(),
    "conversion": CORE | {"assets"},
    "tasks": CORE | {"assets"},
    "training": CORE | {"assets", "tasks"},
    "curation": CORE | {"assets", "tasks", "conversion"},
    "shapes_world": CORE | {"assets", "tasks", "training"},
    "cli": CORE | {"assets", "tasks", "training", "conversion", "curation", "shapes_world"},
    "": CORE | {"tasks", "training", "shapes_world"},  # the package root re-exports public names
}


def _part(module: str) -> str:
    """`transformers_internvideo2.tasks.retrieval` -> `tasks`; the root `__init__` -> `""`."""
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def _module_name(path: Path) -> str:
    relative = path.relative_to(SOURCE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of this package's modules in a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
                names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
            found += [(node.lineno, name) for name in names if name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
    return found


SOURCES = sorted(SOURCE.rglob("*.py"))


def test_every_part_is_known():
    parts = {_part(_module_name(path)) for path in SOURCES}
    unknown = {part for part in parts if part not in ALLOWED and not part.endswith(".py")}
    # single-file parts (`assets`) are named without their suffix by _part
    assert not unknown, f"new top-level parts {unknown}: place them in ALLOWED and in docs/architecture.md"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_imports_follow_the_layers(path):
    own = _part(_module_name(path))
    allowed = ALLOWED[own] | ({own} if own else set())
    wrong = [
        f"line {line}: {target}"
        for line, target in _imported_modules(path)
        if _part(target) != own and _part(target) not in allowed
    ]
    assert not wrong, f"{path.relative_to(SOURCE)} ({own or 'root'}) imports outside its layers: {wrong}"


def test_every_module_imports():
    for path in SOURCES:
        name = _module_name(path)
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)

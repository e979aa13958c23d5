"""The package layout is the architecture (docs/architecture.md): a core that imports nothing else, and wings that
import the core (and only the wings below them). Checked on the source, function-local imports included; and an
import inside a function needs a reason listed in LOCAL_IMPORTS.

`python tests/test_architecture.py` lists every function-local import of the package with its reason (or
UNJUSTIFIED)."""

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


# An import inside a function is allowed only for a reason listed here; anything else goes at the top of its module.
# Keys: a third-party module (its submodules included), or `"importer -> imported"` for the package's own modules
# (names relative to the package).
_EXTRA = "optional dependency, not in install_requires: imported where it is used, so the package works without it"
LOCAL_IMPORTS = {
    # optional dependencies (extras of setup.py)
    "pyarrow": _EXTRA + " (Parquet files; installed with the `train` and `ray` extras)",
    "peft": _EXTRA + " (LoRA; extra `peft`)",
    "datasets": _EXTRA + " (extra `train`)",
    "ray": _EXTRA + " (--engine ray; extra `ray`)",
    "faiss": _EXTRA + " (internvideo2 index / search; extra `index`)",
    "torchcodec": _EXTRA + " (the preferred decoder, PyAV otherwise; extra `torchcodec`)",
    "decord": _EXTRA + " (the original's video reader, a backend used only by name; extra `decord`)",
    "scenedetect": _EXTRA + " (PySceneDetect shot detection; extra `curation`)",
    "sentencepiece": _EXTRA + " (the LLaMA tokenizer of the 1B/6B CLIP models; extra `clip`)",
    "ftfy": _EXTRA + " (CLIP text cleaning; extras `clip`, `internvideo1`)",
    "open_clip": _EXTRA + " (CLIP's BPE merges; extra `internvideo1`)",
    # heavy, or not importable everywhere
    "av": "PyAV loads the FFmpeg libraries on import; importing the package decodes nothing, so it does not pay that",
    "torch.distributed": "importable only in torch builds with distributed support; used only when running distributed",
    # start-up cost: `internvideo2 <any command>` imports every command's module to build its parser
    "cli.demo -> shapes_world.demo": (
        "the demo imports the recipes and with them the training stack (Trainer, PEFT, bitsandbytes: ~1.5 s and a "
        "bitsandbytes warning on every command); loaded when `internvideo2 demo` runs"
    ),
    # import cycles
    "tasks.inference -> tasks.retrieval": "cycle: tasks.retrieval imports tasks.inference at module level",
    "shapes_world.bundled -> shapes_world.bundled.hub_export": (
        "cycle: hub_export imports the bundled models' names from this package's __init__"
    ),
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


def _function_local_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, function, imported module) of every import statement inside a function body of a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and function:
                if isinstance(child, ast.Import):
                    names = [alias.name for alias in child.names]
                elif child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join([*base, child.module] if child.module else base)
                    names = [target] if child.module else [f"{target}.{alias.name}" for alias in child.names]
                else:
                    names = [child.module]
                found.extend((child.lineno, function, name) for name in names)
            else:
                visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), None)
    return found


def _local_import_key(importer: str, imported: str) -> str | None:
    """The LOCAL_IMPORTS key that allows `importer` to import `imported` inside a function, or None."""
    if imported.split(".")[0] == PACKAGE:
        key = f"{importer.partition('.')[2]} -> {imported.partition('.')[2]}"
        return key if key in LOCAL_IMPORTS else None
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LOCAL_IMPORTS:
            return ".".join(parts[:end])
    return None


def _local_import_inventory() -> list[tuple[str, int, str, str, str | None]]:
    """(file, line, function, imported module, LOCAL_IMPORTS key or None) for the whole package."""
    return [
        (str(path.relative_to(SOURCE)), line, function, imported, _local_import_key(_module_name(path), imported))
        for path in SOURCES
        for line, function, imported in _function_local_imports(path)
    ]


def test_function_local_imports_have_a_reason():
    unjustified = [
        f"{file}:{line} ({function}) imports {imported}"
        for file, line, function, imported, key in _local_import_inventory()
        if key is None
    ]
    assert not unjustified, (
        "function-local imports without a reason: move them to the top of their module, or, for an optional or heavy "
        f"dependency or an import cycle, list the reason in LOCAL_IMPORTS: {unjustified}"
    )


def test_every_local_import_reason_is_used():
    used = {key for *_, key in _local_import_inventory()}
    assert not set(LOCAL_IMPORTS) - used, f"LOCAL_IMPORTS entries no import needs any more: {set(LOCAL_IMPORTS) - used}"


if __name__ == "__main__":
    inventory = _local_import_inventory()
    for file, line, function, imported, key in inventory:
        print(f"{file}:{line} ({function}) {imported}: {key or 'UNJUSTIFIED'}")
    unjustified = sum(key is None for *_, key in inventory)
    print(f"{len(inventory)} function-local imports, {unjustified} unjustified")

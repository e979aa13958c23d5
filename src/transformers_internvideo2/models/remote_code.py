"""Saved folders that load with `trust_remote_code=True` where this package is not installed.

Transformers' own mechanism (`register_for_auto_class` + `custom_object_save`) copies the saved class's module file
and its single-dot relative imports, and writes only that one class's `auto_map` entry. Our model families live in
separate folders and import each other with `..` imports, which that copier cannot follow, and a saved folder should
resolve *every* Auto class of its family (a classifier folder also loads as `AutoModel`). [`RemoteCodeMixin`] does
both jobs for models, video processors and processors alike:

1. before saving, it sets the object's complete `auto_map` (on the config for a model, on the object for a
   processor), which Transformers then serialises (`config.json`, `video_preprocessor_config.json`,
   `processor_config.json`);
2. it copies the modules that define those classes, and every module they import relatively (transitively), into
   the folder as flat files, rewriting each relative import to the flat sibling (`from ..a.b import X` becomes
   `from .b import X`). File names are unique across the core, which the copy checks.

The mixin itself is copied along (the modeling files import it), so a remote-code model saves correctly again.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import ClassVar

from huggingface_hub import create_repo
from transformers import PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY


__all__ = ["RemoteCodeMixin", "drop_pipelines_served_here", "flat_code_files"]

# the package that holds the model families, when this module runs from the installed package
_MODELS_PACKAGE = __name__.rpartition(".")[0]
_RELATIVE_IMPORT = re.compile(r"^(?P<indent>\s*)from (?P<dots>\.+)(?P<module>[\w.]*) import ", re.MULTILINE)


def _resolve(package: str, dots: str, module: str) -> str:
    base = package.split(".")
    if len(dots) > 1:
        base = base[: len(base) - (len(dots) - 1)]
    if not module:
        raise ValueError(f"`from {dots} import ...` in package {package} cannot be flattened; import the module by name")
    return ".".join([*base, module])


def flat_code_files(module_names: list[str]) -> dict[str, str]:
    """`{file name: source}` for the given modules and everything they import relatively, with every relative
    import rewritten to a flat sibling import."""
    files: dict[str, str] = {}
    origins: dict[str, str] = {}
    pending = list(module_names)
    while pending:
        name = pending.pop()
        module = sys.modules.get(name) or importlib.import_module(name)
        path = Path(module.__file__)
        if path.name == "__init__.py":
            raise ValueError(f"{name} is a package; remote code must name modules")
        if path.name in files:
            if origins[path.name] != name:
                raise ValueError(f"two modules flatten to {path.name}: {origins[path.name]} and {name}")
            continue
        package = name.rpartition(".")[0]

        def flatten(match: re.Match) -> str:
            target = _resolve(package, match["dots"], match["module"])
            pending.append(target)
            return f"{match['indent']}from .{target.rpartition('.')[2]} import "

        files[path.name] = _RELATIVE_IMPORT.sub(flatten, path.read_text(encoding="utf-8"))
        origins[path.name] = name
    return files


def drop_pipelines_served_here(config_kwargs: dict) -> None:
    """Call from a config's `__post_init__` with its extra kwargs. A saved folder's `custom_pipelines` make
    `pipeline(task, model=folder)` run the folder's copy of a pipeline, which Transformers only allows with
    `trust_remote_code=True`. Where this package is imported its own registration serves those tasks, so the loaded
    config drops the entries of tasks the pipeline registry knows (saving writes them again); where it is not (remote
    code), the entries stay and `trust_remote_code=True` runs the copy."""
    entries = config_kwargs.get("custom_pipelines")
    if not entries:
        return
    remaining = {task: entry for task, entry in entries.items() if task not in PIPELINE_REGISTRY.supported_tasks}
    if remaining:
        config_kwargs["custom_pipelines"] = remaining
    else:
        del config_kwargs["custom_pipelines"]


class RemoteCodeMixin:
    """Mix into a `PreTrainedModel`, video processor or processor base class (before the Transformers class).

    `remote_code_auto_map` maps Auto class names to classes as `"<family folder>.<module>.<ClassName>"`, relative to
    the `models` package, e.g. `{"AutoModel": "internvideo2_vision.modeling_internvideo2_vision.InternVideo2VisionModel"}`.
    """

    remote_code_auto_map: ClassVar[dict[str, str]] = {}
    # Pipelines a saved model folder offers to `trust_remote_code` users, written to its config's `custom_pipelines`:
    # `{task: {"impl": "<importable module>.<PipelineClass>", "pt": [Auto class names], "type": ...}}`. The wing that
    # defines a pipeline registers it here when the package is imported (the core does not import the wings); the
    # pipeline's module and its relative imports are copied into the folder like the modeling code.
    remote_code_custom_pipelines: ClassVar[dict[str, dict]] = {}

    @classmethod
    def _remote_code_modules(cls) -> dict[str, tuple[str, str]]:
        """`{auto class: (importable module name, class name)}` in the running installation: the package's module
        paths, or flat siblings when this class itself was loaded as remote code."""
        own_package = cls.__module__.rpartition(".")[0]
        # in the package a class lives two levels below `models` (family folder, module); as remote code one level
        # below the dynamic-module package that holds the flat files
        relative = cls.__module__.removeprefix(_MODELS_PACKAGE + ".")
        flat = relative == cls.__module__ or "." not in relative
        resolved = {}
        for auto_class, target in cls.remote_code_auto_map.items():
            module, _, class_name = target.rpartition(".")
            if flat:
                module = f"{own_package}.{module.rpartition('.')[2]}"
            else:
                module = f"{_MODELS_PACKAGE}.{module}"
            resolved[auto_class] = (module, class_name)
        return resolved

    def _custom_pipeline_modules(self) -> tuple[dict[str, dict], set[str]]:
        """`({task: entry with a flat "impl"}, modules to copy)` of the model's custom pipelines: the registered ones
        in the package, or, in a class loaded as remote code, those its config already names (flat siblings)."""
        if not isinstance(self, PreTrainedModel):
            return {}, set()
        entries, modules = {}, set()
        if self.remote_code_custom_pipelines:
            for task, entry in self.remote_code_custom_pipelines.items():
                module, _, class_name = entry["impl"].rpartition(".")
                entries[task] = {**entry, "impl": f"{module.rpartition('.')[2]}.{class_name}"}
                modules.add(module)
        else:
            own_package = type(self).__module__.rpartition(".")[0]
            for task, entry in (getattr(self.config, "custom_pipelines", None) or {}).items():
                flat_module = entry["impl"].rpartition(".")[0]
                if importlib.util.find_spec(f"{own_package}.{flat_module}") is not None:
                    entries[task] = entry
                    modules.add(f"{own_package}.{flat_module}")
        return entries, modules

    def _write_remote_code(self, save_directory: str | os.PathLike) -> dict[str, str]:
        modules = self._remote_code_modules()
        auto_map = {auto: f"{module.rpartition('.')[2]}.{name}" for auto, (module, name) in modules.items()}
        target = self.config if isinstance(self, PreTrainedModel) else self  # processors carry their own auto_map
        target.auto_map = {**(getattr(target, "auto_map", None) or {}), **auto_map}
        # A processor saves its video processor / feature extractor nested in processor_config.json, where remote
        # Auto classes look for their own `auto_map`: give the sub-processors theirs too.
        for attribute in getattr(self, "get_attributes", lambda: [])():
            sub_processor = getattr(self, attribute, None)
            if isinstance(sub_processor, RemoteCodeMixin) and sub_processor.remote_code_auto_map:
                sub_processor._write_remote_code(save_directory)
        custom_pipelines, pipeline_modules = self._custom_pipeline_modules()
        if custom_pipelines:
            self.config.custom_pipelines = {**(getattr(self.config, "custom_pipelines", None) or {}), **custom_pipelines}
        os.makedirs(save_directory, exist_ok=True)
        code_modules = sorted({module for module, _ in modules.values()} | pipeline_modules)
        for file_name, source in flat_code_files(code_modules).items():
            Path(save_directory, file_name).write_text(source, encoding="utf-8")
        return auto_map

    def save_pretrained(self, save_directory: str | os.PathLike, *args, push_to_hub: bool = False, **kwargs):
        if not self.remote_code_auto_map:
            return super().save_pretrained(save_directory, *args, push_to_hub=push_to_hub, **kwargs)
        hub_kwargs = {}
        if push_to_hub:  # upload after the code files exist (Transformers uploads inside its save_pretrained)
            hub_kwargs = {key: kwargs.pop(key) for key in ("commit_message", "repo_id", "token", "private")
                          if key in kwargs}  # fmt: skip
        self._write_remote_code(save_directory)
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if push_to_hub:
            repo_id = hub_kwargs.get("repo_id") or Path(save_directory).name
            repo_id = create_repo(repo_id, exist_ok=True, token=hub_kwargs.get("token"),
                                  private=hub_kwargs.get("private")).repo_id  # fmt: skip
            self._upload_modified_files(save_directory, repo_id, {}, commit_message=hub_kwargs.get("commit_message"),
                                        token=hub_kwargs.get("token"))  # fmt: skip
        return result

"""Strict `from_pretrained` for every model of the package: a folder that lacks a weight the model needs, or holds one
the model does not know, is refused with an error that names the keys, instead of loading with random values.

Transformers only *logs* missing and unexpected weights (a load report that scrolls by), so a converted folder that
lost one tensor would predict garbage with exit code 0. [`StrictLoadingMixin`] asks Transformers for its loading
report and raises [`StrictLoadingError`] unless the caller opts in:

- `allow_missing_weights=True` / `allow_unexpected_weights=True`: keep Transformers' lenient behaviour (missing
  weights newly initialised, unexpected ones dropped), e.g. to put a new head on a backbone folder;
- `ignore_mismatched_sizes=True` (Transformers' own flag): weights whose shape changed (a classifier with another
  number of labels) are re-initialised, as in Transformers;
- `output_loading_info=True` (Transformers' own flag): the caller receives the report and judges it;
- `pretrained_model_name_or_path=None` (weights from a `state_dict` argument, or none at all).

What Transformers itself declares harmless never counts: tied weights (stored once), non-persistent buffers, and the
`_keys_to_ignore_on_load_missing` / `_keys_to_ignore_on_load_unexpected` patterns of a class (the base models use the
latter for the heads they drop when they load a folder saved from a head model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from safetensors import safe_open
from transformers import AutoConfig
from transformers.utils import cached_file


__all__ = [
    "HUB_KWARGS",
    "StrictLoadingError",
    "StrictLoadingMixin",
    "check_loading_info",
    "from_pretrained_strictly",
    "read_renamed_weights",
]

# `from_pretrained` keyword arguments that say where and how to find a folder's files
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")

# keys shown per category in an error message (the count is always given)
_SHOWN_KEYS = 10


class StrictLoadingError(ValueError):
    """A saved folder whose weights do not match the model class exactly (missing or unexpected weights)."""


def _listing(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f", ... ({len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else ""
    return f"{len(keys)}: [{shown}{more}]"


def check_loading_info(
    loading_info: dict[str, Any],
    source: str,
    model_class: str,
    allow_missing_weights: bool = False,
    allow_unexpected_weights: bool = False,
    hint: str = "",
) -> None:
    """Raise [`StrictLoadingError`] when the Transformers loading report of `source` has missing or unexpected
    weights that the caller did not allow."""
    missing = set() if allow_missing_weights else set(loading_info.get("missing_keys") or ())
    unexpected = set() if allow_unexpected_weights else set(loading_info.get("unexpected_keys") or ())
    if not missing and not unexpected:
        return
    problems = []
    if missing:
        problems.append(f"missing weights (they would be random) {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected weights (they would be ignored) {_listing(unexpected)}")
    opt_in = " or ".join(
        flag
        for flag, present in (("allow_missing_weights=True", missing), ("allow_unexpected_weights=True", unexpected))
        if present
    )
    raise StrictLoadingError(
        f"{source} does not match {model_class}: " + "; ".join(problems) + ". The folder is incomplete or was saved "
        f"from another model; re-convert or re-save it. {hint}To load it anyway (an intentional head change), pass "
        f"{opt_in} to from_pretrained."
    )


class StrictLoadingMixin:
    """Mix into a `PreTrainedModel` base class (before `PreTrainedModel`): `from_pretrained` refuses missing or
    unexpected weights unless the caller opts in (see the module docstring)."""

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        *model_args,
        allow_missing_weights: bool = False,
        allow_unexpected_weights: bool = False,
        **kwargs,
    ):
        caller_wants_report = kwargs.pop("output_loading_info", False)
        requested = dict(kwargs)
        model, loading_info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        if caller_wants_report:
            return model, loading_info
        if pretrained_model_name_or_path is not None:
            intended = cls._intended_new_weights(model, loading_info, pretrained_model_name_or_path, requested)
            check_loading_info(
                {**loading_info, "missing_keys": set(loading_info["missing_keys"]) - intended},
                source=str(pretrained_model_name_or_path),
                model_class=cls.__name__,
                allow_missing_weights=allow_missing_weights,
                allow_unexpected_weights=allow_unexpected_weights,
            )
        return model

    @classmethod
    def _intended_new_weights(cls, model, loading_info, pretrained_model_name_or_path, kwargs) -> set[str]:
        """Missing weights that the call itself asks to initialise (a head class overrides this: a new classifier
        for newly named labels). None by default."""
        return set()


def read_renamed_weights(
    pretrained_model_name_or_path, rename: Callable[[str], str | None], hub_kwargs: dict | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Read the safetensors weights of a saved folder (single file or sharded), keeping the keys `rename` maps to a
    new name: `({new name: tensor}, [keys left out])`. Only the kept tensors are read."""
    hub_kwargs = dict(hub_kwargs or {})
    lookup = {**hub_kwargs, "_raise_exceptions_for_missing_entries": False}
    single = cached_file(pretrained_model_name_or_path, "model.safetensors", **lookup)
    if single is not None:
        files = [single]
    else:
        index = cached_file(pretrained_model_name_or_path, "model.safetensors.index.json", **lookup)
        if index is None:
            raise OSError(
                f"{pretrained_model_name_or_path} holds no model.safetensors (nor model.safetensors.index.json): "
                "expected a folder written by save_pretrained."
            )
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        files = [cached_file(pretrained_model_name_or_path, shard, **hub_kwargs) for shard in shards]
    weights, left_out = {}, []
    for file in files:
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():
                new_key = rename(key)
                if new_key is None:
                    left_out.append(key)
                elif new_key in weights:
                    raise StrictLoadingError(f"{pretrained_model_name_or_path}: two weights map to {new_key!r}.")
                else:
                    weights[new_key] = handle.get_tensor(key)
    return weights, left_out


def from_pretrained_strictly(auto_class, pretrained_model_name_or_path, config=None, **kwargs):
    """`auto_class.from_pretrained` with strict loading whatever class the folder resolves to: the package's classes
    check themselves; other classes (Transformers' own, such as the VideoMAE of InternVideo v1) get the same check
    on their loading report. `config` (the folder's, when already loaded) picks the class."""
    if config is None:
        config = AutoConfig.from_pretrained(pretrained_model_name_or_path)
    model_class = auto_class._model_mapping.get(type(config), None)
    if model_class is None or issubclass(model_class, StrictLoadingMixin):
        return auto_class.from_pretrained(pretrained_model_name_or_path, config=config, **kwargs)
    model, loading_info = auto_class.from_pretrained(
        pretrained_model_name_or_path, config=config, output_loading_info=True, **kwargs
    )
    check_loading_info(loading_info, str(pretrained_model_name_or_path), type(model).__name__)
    return model

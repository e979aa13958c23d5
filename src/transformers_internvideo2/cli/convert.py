# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""`internvideo2 convert`: the checkpoint converter; its options are those of
`conversion/convert_internvideo2_to_hf.py` (:func:`transformers_internvideo2.conversion.families.main`)."""

from __future__ import annotations

from collections.abc import Sequence

from ..conversion.core import propagating_conversion_errors
from ..conversion.families import main as convert_main


HELP = "convert an original InternVideo2 checkpoint (options of conversion/convert_internvideo2_to_hf.py)"


def main(argv: Sequence[str]) -> int:
    with propagating_conversion_errors():  # reported as one `internvideo2 convert: error:` line, like every command
        return convert_main(list(argv))

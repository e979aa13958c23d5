"""Loading configs saved before a setting moved out of them.

Configs describe architectures only; recipe knobs (loss weights, masking probabilities, negative mining, re-ranking
depth) are `TrainingArguments` of the trainers in `training/`, or arguments of the task functions. A folder saved
before a knob moved still carries it: loading drops it with a warning that says where it lives now, instead of
carrying a value that nothing reads.
"""

from __future__ import annotations

from transformers.utils import logging


__all__ = ["drop_moved_settings"]

logger = logging.get_logger(__name__)


def drop_moved_settings(config_name: str, kwargs: dict, moved: dict[str, str]) -> None:
    """Remove the keys of `moved` (`{old config key: where the setting lives now}`) from `kwargs`, in place,
    logging one warning that lists them."""
    found = {key: kwargs.pop(key) for key in list(kwargs) if key in moved}
    if found:
        logger.warning(
            f"{config_name}: ignoring setting(s) that are no longer part of the model configuration: "
            + "; ".join(f"{key}={value!r} (now {moved[key]})" for key, value in found.items())
            + ". Set them there instead; re-saving the model drops them from config.json."
        )

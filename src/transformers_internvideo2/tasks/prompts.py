# Copyright 2026 The transformers-internvideo2 authors. Apache-2.0.
"""Prompt templates for zero-shot video classification.

`KINETICS_ACTION_TEMPLATES` are the 16 templates that the original InternVideo2 zero-shot action-recognition
evaluation fills with every class name. The original then cleans each prompt with
the caption cleaning of :func:`~transformers_internvideo2.models.internvideo2_video_text.processing_internvideo2_video_text.clean_caption` (lowercase,
punctuation removed), encodes it, L2-normalises each prompt embedding separately and scores a class by the
**mean of its 16 cosine similarities** (not by the cosine with a mean embedding).
"""

from __future__ import annotations

from collections.abc import Sequence


__all__ = ["DEFAULT_HYPOTHESIS_TEMPLATES", "KINETICS_ACTION_TEMPLATES", "expand_templates"]

# Order matters only for reproducibility of intermediate tensors; the score is a mean over templates.
KINETICS_ACTION_TEMPLATES: tuple[str, ...] = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

DEFAULT_HYPOTHESIS_TEMPLATES: tuple[str, ...] = KINETICS_ACTION_TEMPLATES


def expand_templates(labels: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Fill every template with every label, label-major: ``[t0(l0), t1(l0), ..., t0(l1), ...]``.

    The result reshapes to ``(len(labels), len(templates))``. Each template must contain exactly one ``{}``.
    """
    if isinstance(labels, str) or isinstance(templates, str):
        raise TypeError("`labels` and `templates` must be sequences of strings, not a single string")
    if len(labels) == 0:
        raise ValueError("At least one candidate label is required")
    if len(templates) == 0:
        raise ValueError("At least one hypothesis template is required")
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(f"Each hypothesis template must be a string with exactly one '{{}}', got {template!r}")
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"Candidate labels must be strings, got {type(label).__name__}: {label!r}")
    return [template.format(label) for label in labels for template in templates]

"""The background class: what a detection model answers for "no action".

A model trained on temporal annotations (``--dataset thumos14`` or ``activitynet``) has
:data:`BACKGROUND` as its class 0, a frame inside no annotated interval. Online recognition
(``rrn stream``, ``rrn serve``) asks :func:`background_index` whether a model has one: no action
segment ever opens for it, and ``--threshold`` applies to the action classes.
"""

from __future__ import annotations

from collections.abc import Sequence

BACKGROUND = "Background"
"""Class 0 of a detection model: a frame inside no annotated interval."""


def background_index(classes: Sequence[str]) -> int | None:
    """0 when ``classes`` start with :data:`BACKGROUND` (a detection model), else None."""
    return 0 if len(classes) > 0 and classes[0] == BACKGROUND else None

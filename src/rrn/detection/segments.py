"""The record every temporal annotation and every detection is written as: a stretch of one
class in one video, in seconds. Annotations (:mod:`rrn.detection.annotations`) produce it for
the ground truth, the online tracker for its predictions, and the metrics
(:mod:`rrn.detection.metrics`) read both; it imports nothing.
"""

from __future__ import annotations

from typing import NamedTuple


class Segment(NamedTuple):
    """``[start, end)`` of class ``label`` in ``video``, seconds from the video's start."""

    video: str
    """The video id."""
    label: int
    """Class index (0 is Background, which is never a segment)."""
    start: float
    end: float
    score: float = 1.0
    """A prediction's confidence (the tracker's mean probability over the segment); ground
    truth leaves it at 1."""

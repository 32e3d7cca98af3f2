"""The label of every sampled frame of an annotated video, and the checks of annotations that
``rrn check-data`` reports.

**The frame-label rule.** A frame sampled at time ``t`` (seconds from the video's start) has
class ``c`` when ``t`` lies in an interval of class ``c``, the interval taken half-open:
``start <= t < end``. So a frame exactly at an action's start belongs to it, a frame exactly at
its end does not, and two intervals that meet (``[a, b)``, ``[b, c)``) never share a frame. A
frame inside intervals of several classes has all of them (THUMOS'14's CliffDiving lies inside
Diving: both labels); a frame inside none is ``Background`` (class 0) and nothing else. A frame
inside an ambiguous stretch (the same half-open rule) keeps its labels but is *ignored*: never
a training target, never scored. An interval with ``end <= start`` contains no frame.

Times are compared exactly as floats: compute them as ``index / rate`` (one correctly rounded
division, as :func:`sample_times` does), not by adding ``1 / rate`` repeatedly, so that a frame
time equals an annotation's decimal (``7.5``, ``0.3``) whenever both denote the same number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from rrn.detection.annotations import TemporalAnnotations, VideoAnnotations


class FrameLabels(NamedTuple):
    """The labels of a video's sampled frames."""

    targets: np.ndarray
    """(N, K) bool, multi-hot: column 0 (Background) is set exactly where no other is."""
    ignore: np.ndarray
    """(N,) bool: the frame lies in an ambiguous stretch (never a target, never scored)."""


def sample_times(duration: float, rate: float) -> np.ndarray:
    """(N,) the times ``i / rate`` (seconds) of every sample ``i = 0, 1, ...`` before
    ``duration``: ``rate`` samples per second, the first at 0, none at or after the end."""
    if not (duration >= 0 and rate > 0):
        raise ValueError(f"need duration >= 0 and rate > 0, got {duration} and {rate}")
    times = np.arange(math.ceil(duration * rate) + 1) / rate
    return times[times < duration]


def frame_labels(video: VideoAnnotations, times, num_classes: int) -> FrameLabels:
    """The labels of frames sampled at ``times``, by the rule in the module docstring.

    Args:
        video: The video's annotations.
        times: (N,) seconds from the video's start, one per sampled frame.
        num_classes: K, Background included (``len(annotations.classes)``).

    Returns:
        The (N, K) multi-hot targets and the (N,) ignore mask.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)  # (N,)
    targets = np.zeros((len(times), num_classes), dtype=bool)  # (N, K)
    for interval in video.intervals:
        if not 1 <= interval.label < num_classes:
            raise ValueError(
                f"{interval.where}: class {interval.label} is not in 1..{num_classes - 1}"
            )
        targets[:, interval.label] |= (interval.start <= times) & (times < interval.end)
    targets[:, 0] = ~targets[:, 1:].any(axis=1)
    ignore = np.zeros(len(times), dtype=bool)  # (N,)
    for interval in video.ambiguous:
        ignore |= (interval.start <= times) & (times < interval.end)
    return FrameLabels(targets, ignore)


# ---------------------------------------------------------------------------- checks
class AnnotationProblem(NamedTuple):
    """One problem of an annotation, as ``rrn check-data`` lists it."""

    video: str
    """The video id (or class name) concerned."""
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.video}: {self.what} -> {self.fix}"


def check_annotations(
    annotations: TemporalAnnotations, durations: Mapping[str, float] | None = None
) -> list[AnnotationProblem]:
    """Every interval that ends before it starts or lies (partly) outside its video, every video
    annotated on both sides, and every class without a training interval.

    Args:
        annotations: What :func:`~rrn.detection.annotations.read_thumos14` or
            :func:`~rrn.detection.annotations.read_activitynet` read.
        durations: Video id -> seconds (probed from the files), for videos whose annotation
            gives no duration (all of THUMOS'14's); a video with neither is not checked
            against its end.

    Returns:
        The problems, in video order, the classes last.
    """
    durations = durations or {}
    problems = []
    for video in annotations.videos:
        duration = video.duration if video.duration is not None else durations.get(video.video)
        for interval in (*video.intervals, *video.ambiguous):
            span = f"interval {interval.start:g}-{interval.end:g} s at {interval.where}"
            if interval.end <= interval.start:
                problems.append(
                    AnnotationProblem(
                        video.video,
                        f"{span} does not end after it starts: it labels no frame",
                        "fix its times or remove it",
                    )
                )
            elif duration is not None and interval.end > duration:
                problems.append(
                    AnnotationProblem(
                        video.video,
                        f"{span} ends after the video ({duration:g} s)",
                        "check the times against the video (a frame past the end is never sampled)",
                    )
                )
    problems += _both_sides(annotations)
    return problems + _classes_without_training(annotations)


def _both_sides(annotations: TemporalAnnotations) -> list[AnnotationProblem]:
    sides: dict[str, set[str]] = {}
    for video in annotations.videos:
        sides.setdefault(video.video, set()).add(video.subset)
    return [
        AnnotationProblem(
            name,
            "annotated on both the train and the test side",
            "a video must be in one subset only: remove it from one",
        )
        for name, seen in sides.items()
        if len(seen) > 1
    ]


def _classes_without_training(annotations: TemporalAnnotations) -> list[AnnotationProblem]:
    trained = {i.label for v in annotations.subset("train") for i in v.intervals if i.end > i.start}
    return [
        AnnotationProblem(
            name,
            "class without any training interval: the model never sees it",
            "annotate it on training videos, or remove its test intervals",
        )
        for k, name in enumerate(annotations.classes)
        if k > 0 and k not in trained
    ]


class FrameStatistics(NamedTuple):
    """How the sampled frames of some videos are labelled."""

    frames: int
    """Sampled frames of the videos with a known duration."""
    ignored: int
    """Of them, inside an ambiguous stretch."""
    per_class: np.ndarray
    """(K,) frames (not ignored) with each class; column 0: Background."""
    without_duration: tuple[str, ...]
    """Videos left out: no duration known."""

    @property
    def background_share(self) -> float | None:
        """The share of scored (not ignored) frames that are Background; None without any."""
        scored = self.frames - self.ignored
        return float(self.per_class[0]) / scored if scored else None


def frame_statistics(
    videos: Sequence[VideoAnnotations],
    num_classes: int,
    *,
    rate: float,
    durations: Mapping[str, float] | None = None,
) -> FrameStatistics:
    """Label counts of the frames sampled at ``rate`` per second (:func:`sample_times`).

    Args:
        videos: The videos (one side, or all).
        num_classes: K, Background included.
        rate: Samples per second (THUMOS'14's convention: 4).
        durations: Video id -> seconds, for videos whose annotation gives none.
    """
    durations = durations or {}
    frames = ignored = 0
    per_class = np.zeros(num_classes, dtype=np.int64)
    missing = []
    for video in videos:
        duration = video.duration if video.duration is not None else durations.get(video.video)
        if duration is None:
            missing.append(video.video)
            continue
        labels = frame_labels(video, sample_times(duration, rate), num_classes)
        frames += len(labels.ignore)
        ignored += int(labels.ignore.sum())
        per_class += labels.targets[~labels.ignore].sum(axis=0)
    return FrameStatistics(frames, ignored, per_class, tuple(missing))

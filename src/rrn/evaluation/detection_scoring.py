"""Scoring a folder of per-frame scores (:mod:`rrn.detection.scores`) against temporal
annotations: the detection metrics of every score source, computed one way.

:func:`score_folder` reads each test video's scores and times, labels its frames
(:func:`~rrn.detection.labels.frame_labels`: half-open intervals, ambiguous frames ignored),
turns its scores into the segments ``rrn stream`` would announce (:func:`tracker_segments`: the
same smoothing, threshold and minimum duration, the same
:class:`~rrn.online.events.SegmentTracker` with the background class, each segment scored by
its mean probability), and computes every metric with
:func:`~rrn.detection.metrics.evaluate_detection`. :func:`write_detection_results` writes the
JSON, the per-class CSV, the segments and a timeline PNG of a few test videos.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rrn.detection.annotations import TemporalAnnotations, VideoAnnotations
from rrn.detection.labels import frame_labels
from rrn.detection.metrics import TIOU_THRESHOLDS, evaluate_detection
from rrn.detection.scores import (
    ScoreFileError,
    VideoScores,
    end_of_video,
    read_scores_meta,
    read_video_scores,
    score_file,
)
from rrn.detection.segments import Segment
from rrn.files import atomic_write_json, atomic_write_text
from rrn.online.events import SegmentTracker, background_name

PLOTTED_VIDEOS = 3
"""Test videos drawn as timeline PNGs (the first ones, in id order)."""


@dataclass(frozen=True)
class SegmentSettings:
    """How scores become segments: ``rrn stream``'s settings of the same names
    (:class:`~rrn.config.StreamConfig`), with the same defaults."""

    smooth: int | None = None
    """Probability vectors averaged before the top class is taken (None: the score source's
    context, the model's T; 1: none)."""
    threshold: float = 0.0
    """Smoothed probability the top class needs to be in a segment."""
    min_segment: float = 0.0
    """Seconds a run must last before its segment is announced."""

    def describe(self, smooth: int) -> str:
        """The settings in words, for the protocol (``smooth``: the resolved smoothing)."""
        top = (
            "the top class of each frame's probabilities"
            if smooth == 1
            else f"the top class of the mean of the last {smooth} frames' probabilities"
        )
        return (
            f"rrn stream's segment tracker ({top}, threshold {self.threshold:g}, minimum "
            f"segment {self.min_segment:g} s; no segment for Background)"
        )


def smoothed(probs: np.ndarray, window: int) -> np.ndarray:
    """(N, K): row t is the mean of rows ``max(0, t - window + 1) .. t`` of ``probs``, the
    smoothing ``rrn stream`` applies (fewer rows at the start)."""
    probs = np.asarray(probs, dtype=np.float64)  # (N, K)
    total = np.cumsum(probs, axis=0)  # (N, K)
    before = np.zeros_like(total)
    before[window:] = total[:-window]
    count = np.minimum(np.arange(1, len(probs) + 1), window)[:, None]  # (N, 1)
    return (total - before) / count


def tracker_segments(
    scores: VideoScores, classes: Sequence[str], settings: SegmentSettings, end: float
) -> list[Segment]:
    """The segments ``rrn stream`` announces for a video with these per-frame scores, each
    scored by its mean (smoothed) probability.

    Args:
        scores: The video's (N, K) probabilities and (N,) times.
        classes: The class names (a ``Background`` first never opens a segment).
        settings: Smoothing (resolved: an int), threshold, minimum duration.
        end: Seconds where the video's last frame's stretch ends (closes the open segment).
    """
    tracker = SegmentTracker(
        scores.video,
        settings.threshold,
        settings.min_segment,
        background=background_name(list(classes)),
    )
    window = smoothed(scores.scores, settings.smooth or 1)  # (N, K)
    top, prob = window.argmax(axis=1), window.max(axis=1)  # (N,), (N,)
    for k, p, t in zip(top.tolist(), prob.tolist(), scores.times.tolist()):
        tracker.update(classes[k], p, t)
    tracker.finish(end)
    index = {name: k for k, name in enumerate(classes)}
    return [
        Segment(scores.video, index[r["class"]], r["start"], r["end"], r["mean_prob"])
        for r in tracker.done
    ]


class ScoredFolder(NamedTuple):
    """What :func:`score_folder` computed."""

    result: dict[str, Any]
    """:func:`~rrn.detection.metrics.evaluate_detection`'s dict, with the folder's description."""
    segments: list[Segment]
    """The online segments of every scored video."""
    videos: list[VideoAnnotations]
    """The test videos scored, in id order."""


def score_folder(
    folder: str | os.PathLike,
    annotations: TemporalAnnotations,
    settings: SegmentSettings = SegmentSettings(),
    *,
    thumos_ambiguous_rule: bool = False,
) -> ScoredFolder:
    """Every detection metric of the scores in ``folder`` against the test side of
    ``annotations``.

    Args:
        folder: A score folder (:mod:`rrn.detection.scores`).
        annotations: The dataset's annotations; its ``test`` videos are scored.
        settings: How scores become segments (``smooth`` None: the folder's ``context``).
        thumos_ambiguous_rule: THUMOS'14's segment rule (false positives on Ambiguous dropped).

    Raises:
        ScoreFileError: the folder's classes are not the annotations', a test video has no
            score file (and is not listed as skipped), or a file is malformed.
    """
    meta = read_scores_meta(folder)
    classes = list(annotations.classes)
    _check_classes(folder, meta["classes"], classes)
    tests = sorted(annotations.subset("test"), key=lambda v: v.video)
    scored = [v for v in tests if v.video not in meta["skipped"]]
    _check_complete(folder, scored)
    settings = SegmentSettings(
        settings.smooth or max(1, int(meta["context"])), settings.threshold, settings.min_segment
    )
    pooled: dict[str, list[np.ndarray]] = {"scores": [], "targets": [], "ignore": []}
    segments: list[Segment] = []
    for video in scored:
        scores = read_video_scores(folder, video.video, len(classes))
        labels = frame_labels(video, scores.times, len(classes))
        pooled["scores"].append(scores.scores)
        pooled["targets"].append(labels.targets)
        pooled["ignore"].append(labels.ignore)
        end = end_of_video(scores.times, meta["interval_s"])
        segments += tracker_segments(scores, classes, settings, end)
    if not scored:
        raise ScoreFileError(f"{folder}: no test video has scores (all were skipped)")
    result = evaluate_detection(
        np.concatenate(pooled["scores"]),
        np.concatenate(pooled["targets"]),
        np.concatenate(pooled["ignore"]),
        classes=classes,
        truth=[s for v in scored for s in v.segments()],
        predictions=segments,
        ambiguous=[s for v in scored for s in v.ambiguous_segments()],
        thumos_ambiguous_rule=thumos_ambiguous_rule,
        sampling=meta["sampling"],
    )
    result["protocol"] += f" Segments: {settings.describe(settings.smooth)}."
    result.update(_described(folder, meta, settings, scored, tests))
    return ScoredFolder(result, segments, scored)


def _check_classes(folder, theirs: list[str], ours: list[str]) -> None:
    if theirs == ours:
        return
    if len(theirs) != len(ours):
        what = f"{len(theirs)} classes vs {len(ours)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
        what = f"class {i} is {theirs[i]!r} in the scores, {ours[i]!r} in the annotations"
    raise ScoreFileError(
        f"the classes of {folder} differ from the annotations' ({what}); score it against the "
        "dataset its scores were computed for"
    )


def _check_complete(folder, videos: Sequence[VideoAnnotations]) -> None:
    missing = [v.video for v in videos if not score_file(folder, v.video).is_file()]
    if missing:
        raise ScoreFileError(
            f"{folder}: no scores for {len(missing)} of the {len(videos)} test videos "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); every test video "
            "is scored (list one that cannot be read under 'skipped' in scores.json)"
        )


def _described(folder, meta, settings: SegmentSettings, scored, tests) -> dict[str, Any]:
    return {
        "classes": list(meta["classes"]),
        "scores": str(folder),
        "score_source": meta["source"],
        "num_videos": len(scored),
        "num_test_videos": len(tests),
        "skipped": dict(meta["skipped"]),
        "segments_settings": {
            "smooth": settings.smooth,
            "threshold": settings.threshold,
            "min_segment": settings.min_segment,
        },
    }


# ---------------------------------------------------------------------------- files
def per_class_columns(thresholds: Sequence[float] = TIOU_THRESHOLDS) -> list[str]:
    """The columns of ``<stem>_per_class.csv``."""
    return [
        "class",
        "frame_ap",
        "frame_cap",
        *(f"segment_ap@{t:g}" for t in thresholds),
        "positive_frames",
        "actions",
    ]


def per_class_csv(per_class: Mapping[str, Mapping[str, Any]]) -> str:
    """The per-class table of a detection result as CSV (empty cells where a class was not
    scored)."""
    columns = per_class_columns()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for name, row in per_class.items():
        segment = row.get("segment_ap") or {}
        writer.writerow(
            {
                "class": name,
                "frame_ap": row.get("frame_ap"),
                "frame_cap": row.get("frame_cap"),
                **{f"segment_ap@{t:g}": segment.get(f"{t:g}") for t in TIOU_THRESHOLDS},
                "positive_frames": row.get("positive_frames"),
                "actions": row.get("actions"),
            }
        )
    return buf.getvalue()


def write_detection_results(
    scored: ScoredFolder,
    out_dir: str | os.PathLike,
    stem: str,
    *,
    extra: Mapping[str, Any] | None = None,
    plot: int = PLOTTED_VIDEOS,
) -> dict[str, Any]:
    """Write ``<out_dir>/<stem>.json`` (the result and ``extra``), ``<stem>_per_class.csv``,
    ``<stem>/segments.json`` (the online segments) and ``<stem>/timeline_<video>.png`` for the
    first ``plot`` test videos.

    Returns:
        The JSON's content, with ``files`` (the paths written).
    """
    out = Path(out_dir)
    result = {**scored.result, **(dict(extra) if extra else {})}
    files = {
        "json": str(out / f"{stem}.json"),
        "per_class_csv": str(out / f"{stem}_per_class.csv"),
        "segments": str(out / stem / "segments.json"),
    }
    atomic_write_text(files["per_class_csv"], per_class_csv(result["per_class_ap"]))
    atomic_write_json(files["segments"], [s._asdict() for s in scored.segments])
    timelines = []
    for video in scored.videos[:plot]:
        timelines.append(str(out / stem / f"timeline_{video.video}.png"))
        _plot_video(result, video, scored.segments, result["classes"], timelines[-1])
    files["timelines"] = timelines
    result["files"] = files
    atomic_write_json(files["json"], result)
    return result


def _plot_video(result, video: VideoAnnotations, segments, classes, path: str) -> None:
    from rrn.plots import plot_detection_timeline

    scores = read_video_scores(result["scores"], video.video, len(classes))
    plot_detection_timeline(
        scores.times,
        scores.scores,
        classes,
        path,
        truth=[(i.start, i.end, i.label) for i in video.intervals],
        ambiguous=[(i.start, i.end) for i in video.ambiguous],
        segments=[(s.start, s.end, s.label) for s in segments if s.video == video.video],
        title=f"{video.video}: per-frame scores (lines), ground truth (shaded)",
    )

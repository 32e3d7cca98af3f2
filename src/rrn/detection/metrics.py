"""The metrics of online action detection, pure numpy, each following a published definition
(the published numbers depend on the pooling and the ignore rules, and users compare with them):

* :func:`frame_map`: per-frame mAP, the definition of the LSTR/TeSTra/MiniROAD evaluation code
  (LSTR: ``src/rekognition_online_action_detection/evaluation/metrics.py``,
  ``perframe_average_precision``, with ``postprocessing.py``'s THUMOS rule; MiniROAD's
  ``utils/metrics.py`` is a copy): the frames of every test video pooled, ambiguous frames
  removed, one :func:`average_precision` per class (scikit-learn's ``average_precision_score``),
  Background and classes without a positive frame skipped, the mean of the rest;
* :func:`calibrated_average_precision` and ``frame_map(..., calibrated=True)``: TVSeries'
  calibrated AP (De Geest et al., *Online Action Detection*, ECCV 2016), mcAP its mean;
* :func:`segment_map`: segment mAP at tIoU thresholds, ActivityNet's detection evaluation
  (``Evaluation/eval_detection.py``, ``compute_average_precision_detection``, and
  ``Evaluation/utils.py``'s ``interpolated_prec_rec`` and ``segment_iou``);
* :func:`detection_delay`: seconds from an action's start to its online detection;
* :func:`evaluate_detection`: all of them in one dict, with the protocol written beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from rrn.detection.segments import Segment

TIOU_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
"""THUMOS'14's convention for segment mAP."""
TASK = "detection"
"""The ``task`` of a detection evaluation's results (:func:`detection_metrics`)."""


def is_detection_result(result: Mapping[str, Any]) -> bool:
    """Whether an evaluation's result (``rrn eval``'s or ``rrn baseline``'s JSON, a grid's row)
    is an online detector's, not a recognition one's."""
    return result.get("task") == TASK


def _ranked(targets, scores) -> tuple[np.ndarray, np.ndarray]:
    """True positives and false positives counted down the ranking, one entry per distinct score
    (a tie is one threshold: every frame of it counted at once), as scikit-learn's
    ``_binary_clf_curve`` counts them."""
    targets = np.asarray(targets).astype(bool).reshape(-1)  # (N,)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # (N,)
    if targets.shape != scores.shape:
        raise ValueError(f"{len(targets)} targets but {len(scores)} scores")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (found NaN or infinity)")
    order = np.argsort(-scores, kind="stable")
    scores, targets = scores[order], targets[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # each tie's last rank
    tps = np.cumsum(targets, dtype=np.float64)[last]
    return tps, last + 1 - tps


def average_precision(targets, scores) -> float:
    """Average precision, exactly as scikit-learn's ``average_precision_score`` computes it:
    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct scores taken as thresholds, highest
    first (``R_0 = 0``; precision ``P_n`` and recall ``R_n`` of the frames scoring at least the
    n-th threshold; no interpolation).

    Args:
        targets: (N,) bool, the positives.
        scores: (N,) finite scores (any scale: only their order matters).

    Returns:
        The AP; NaN when there is no positive (callers skip such a class).
    """
    tps, fps = _ranked(targets, scores)
    if not len(tps) or tps[-1] == 0:
        return float("nan")
    precision, recall = tps / (tps + fps), tps / tps[-1]
    return float(max(0.0, np.sum(np.diff(recall, prepend=0.0) * precision)))


def calibrated_average_precision(targets, scores) -> float:
    """Calibrated AP (De Geest et al., ECCV 2016, TVSeries): AP whose precision is calibrated to
    a fixed ratio of positives to negatives, ``cPrec = TP / (TP + FP / w)`` with
    ``w = negatives / positives``, averaged over the positives: ``cAP = sum_k cPrec(k) I(k) / P``
    (``I(k)``: the k-th ranked frame is positive). It equals LSTR's
    ``calibrated_average_precision_score`` (which adds a 1e-16 guard to both divisions); frames
    with equal scores count at once at the tie's last rank, as for :func:`average_precision`
    (LSTR ranks ties in an arbitrary order).

    Returns:
        The cAP; NaN when there is no positive; 1 when there is no negative.
    """
    targets = np.asarray(targets).astype(bool).reshape(-1)
    tps, fps = _ranked(targets, scores)
    positives = int(targets.sum())
    if positives == 0:
        return float("nan")
    negatives = len(targets) - positives
    if negatives == 0:
        return 1.0
    w = negatives / positives
    precision = tps / (tps + fps / w)  # per threshold
    new_positives = np.diff(tps, prepend=0.0)  # positives reached at each threshold
    return float(np.sum(precision * new_positives) / positives)


class FrameMAP(NamedTuple):
    """Per-frame mean AP and the AP of each class it averages."""

    mean: float | None
    """The mean over the classes scored; None when no class has a positive frame."""
    per_class: dict[int, float]
    """Class index -> AP, for each class scored (Background and classes without a positive
    frame are absent)."""
    frames: int
    """The frames scored (ignored frames removed)."""


def frame_map(scores, targets, ignore=None, *, calibrated: bool = False) -> FrameMAP:
    """Per-frame mAP (or mcAP) over frames pooled across videos, LSTR's definition
    (``perframe_average_precision``): the ignored frames are removed (its THUMOS
    post-processing drops the frames labelled Ambiguous), then for every class but Background
    (index 0) that has a positive frame, :func:`average_precision` (or
    :func:`calibrated_average_precision`) of its column; the mean of those.

    Args:
        scores: (N, K) per-frame class scores, N frames of all test videos pooled.
        targets: (N, K) multi-hot labels (any nonzero is a positive).
        ignore: (N,) bool, frames to remove (inside an ambiguous stretch); None: none.
        calibrated: Compute mcAP (TVSeries' calibrated AP) instead of mAP.
    """
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets).astype(bool)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"need (N, K) scores and targets, got {scores.shape} and {targets.shape}")
    if ignore is not None:
        keep = ~np.asarray(ignore, dtype=bool).reshape(-1)  # (N,)
        if len(keep) != len(scores):
            raise ValueError(f"{len(keep)} ignore flags for {len(scores)} frames")
        scores, targets = scores[keep], targets[keep]
    score = calibrated_average_precision if calibrated else average_precision
    per_class = {
        k: score(targets[:, k], scores[:, k])
        for k in range(1, scores.shape[1])
        if targets[:, k].any()
    }
    mean = float(np.mean(list(per_class.values()))) if per_class else None
    return FrameMAP(mean, per_class, len(scores))


# ---------------------------------------------------------------------------- segments
def segment_iou(segment, candidates) -> np.ndarray:
    """(M,) temporal IoU of one ``(start, end)`` with M candidates ``(M, 2)``, as ActivityNet's
    ``segment_iou`` (the intersection clipped at 0); 0 where the union is empty."""
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)  # (M, 2)
    inter = (
        np.minimum(segment[1], candidates[:, 1]) - np.maximum(segment[0], candidates[:, 0])
    ).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (segment[1] - segment[0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def interpolated_ap(precision, recall) -> float:
    """The area under the precision-recall curve with precision made monotone (each point takes
    the highest precision at any higher recall), VOC 2011's interpolation, exactly as
    ActivityNet's ``interpolated_prec_rec``."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _descending(values: np.ndarray) -> np.ndarray:
    """Indices from the highest value down, equal values latest first: ActivityNet's
    ``argsort()[::-1]``, made deterministic (numpy's default sort leaves the order of equal
    values to the platform)."""
    return np.argsort(values, kind="stable")[::-1]


def _matches(truth: Sequence[Segment], predictions: Sequence[Segment], thresholds) -> np.ndarray:
    """(T, P) bool: prediction p (in the given order) is a true positive at threshold t.

    ActivityNet's greedy matching: each prediction in turn takes, among the ground truth of its
    video not yet taken at that threshold, the one of highest tIoU, when that tIoU reaches the
    threshold; it is a false positive otherwise.
    """
    by_video: dict[str, list[int]] = {}
    for j, segment in enumerate(truth):
        by_video.setdefault(segment.video, []).append(j)
    taken = np.zeros((len(thresholds), len(truth)), dtype=bool)  # (T, G)
    tp = np.zeros((len(thresholds), len(predictions)), dtype=bool)  # (T, P)
    for p, pred in enumerate(predictions):
        candidates = by_video.get(pred.video, [])
        tiou = segment_iou(
            (pred.start, pred.end), [(truth[j].start, truth[j].end) for j in candidates]
        )
        order = _descending(tiou)
        for t, threshold in enumerate(thresholds):
            for k in order:
                if tiou[k] < threshold:
                    break
                if not taken[t, candidates[k]]:
                    tp[t, p] = taken[t, candidates[k]] = True
                    break
    return tp


def _touches_ambiguous(predictions: Sequence[Segment], ambiguous: Sequence[Segment]) -> np.ndarray:
    """(P,) bool: the prediction overlaps an ambiguous stretch of its video (positive length)."""
    by_video: dict[str, list[Segment]] = {}
    for amb in ambiguous:
        by_video.setdefault(amb.video, []).append(amb)
    return np.array(
        [
            any(
                min(pred.end, amb.end) > max(pred.start, amb.start)
                for amb in by_video.get(pred.video, ())
            )
            for pred in predictions
        ],
        dtype=bool,
    ).reshape(len(predictions))


def segment_ap(
    truth: Sequence[Segment],
    predictions: Sequence[Segment],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    ambiguous: Sequence[Segment] = (),
) -> np.ndarray:
    """(T,) AP of one class at each tIoU threshold, ActivityNet's
    ``compute_average_precision_detection``: predictions ranked by score (ties: latest first),
    greedily matched (see :func:`_matches`), precision and recall (over all ground truth of the
    class) down the ranking, AP by :func:`interpolated_ap`; 0 without predictions.

    Args:
        truth: The class's ground-truth segments (videos of every test video).
        predictions: The class's predicted segments, each with its score.
        thresholds: tIoU thresholds.
        ambiguous: Ambiguous stretches: a false positive that overlaps one is dropped from the
            ranking (THUMOS'14's official rule, ``TH14eventdetpr.m``); empty: ActivityNet's
            rule, nothing dropped.
    """
    ap = np.zeros(len(thresholds))
    if not predictions or not truth:
        return ap
    predictions = [predictions[i] for i in _descending(np.array([p.score for p in predictions]))]
    tp = _matches(truth, predictions, thresholds)  # (T, P)
    dropped = _touches_ambiguous(predictions, ambiguous)  # (P,)
    for t in range(len(thresholds)):
        kept = tp[t] | ~dropped
        tps = np.cumsum(tp[t][kept], dtype=np.float64)
        fps = np.cumsum(~tp[t][kept], dtype=np.float64)
        if len(tps):
            ap[t] = interpolated_ap(tps / (tps + fps), tps / len(truth))
    return ap


class SegmentMAP(NamedTuple):
    """Segment mAP at each tIoU threshold and the AP of each class."""

    per_threshold: dict[float, float | None]
    """tIoU -> mean AP over the classes with ground truth (None without any)."""
    per_class: dict[int, np.ndarray]
    """Class index -> (T,) AP, for each class with a ground-truth segment."""


def segment_map(
    truth: Sequence[Segment],
    predictions: Sequence[Segment],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    ambiguous: Sequence[Segment] = (),
) -> SegmentMAP:
    """Segment mAP, ActivityNet's ``ANETdetection.evaluate``: :func:`segment_ap` of every class
    with ground truth, averaged over those classes at each threshold. A prediction of a class
    without ground truth is not scored (ActivityNet refuses such a label), nor is Background.

    Args:
        truth: Ground-truth segments of every test video, all classes.
        predictions: Predicted segments of every test video, each with its score.
        thresholds: tIoU thresholds.
        ambiguous: Ambiguous stretches, for THUMOS'14's rule (see :func:`segment_ap`).
    """
    classes = sorted({s.label for s in truth if s.label != 0})
    per_class = {
        c: segment_ap(
            [s for s in truth if s.label == c],
            [s for s in predictions if s.label == c],
            thresholds,
            ambiguous,
        )
        for c in classes
    }
    table = np.array([per_class[c] for c in classes]).reshape(len(classes), len(thresholds))
    means = table.mean(axis=0) if classes else [None] * len(thresholds)
    return SegmentMAP(
        {float(t): None if m is None else float(m) for t, m in zip(thresholds, means)}, per_class
    )


# ---------------------------------------------------------------------------- delay
class DetectionDelay(NamedTuple):
    """How soon the actions were detected online."""

    delays: dict[int, float]
    """Index in the ground truth -> seconds, for each detected action."""
    median: float | None
    """The median delay over detected actions; None when none was detected."""
    missed: float | None
    """The share of actions never detected; None without any action."""


def detection_delay(truth: Sequence[Segment], predictions: Sequence[Segment]) -> DetectionDelay:
    """Per ground-truth action ``[s, e]``, the seconds from ``s`` to the first frame of an
    online segment of its class that detects it: among the predicted segments of its video and
    class, those that start inside the action (``s <= start <= e``) or are open at its start
    (``start <= s < end``); the delay is ``max(0, start - s)`` minimised over them (0 for a
    segment already open when the action starts). An action without such a segment is missed.

    Args:
        truth: Ground-truth segments (Background never is one).
        predictions: The segments the online tracker emitted (scores unused).
    """
    by_key: dict[tuple[str, int], list[Segment]] = {}
    for pred in predictions:
        by_key.setdefault((pred.video, pred.label), []).append(pred)
    delays = {}
    for j, action in enumerate(truth):
        found = [
            max(0.0, p.start - action.start)
            for p in by_key.get((action.video, action.label), [])
            if action.start <= p.start <= action.end or p.start <= action.start < p.end
        ]
        if found:
            delays[j] = min(found)
    median = float(np.median(list(delays.values()))) if delays else None
    missed = 1 - len(delays) / len(truth) if truth else None
    return DetectionDelay(delays, median, missed)


# ---------------------------------------------------------------------------- all of them
def evaluate_detection(
    scores,
    targets,
    ignore=None,
    *,
    classes: Sequence[str],
    truth: Sequence[Segment],
    predictions: Sequence[Segment],
    ambiguous: Sequence[Segment] = (),
    thumos_ambiguous_rule: bool = False,
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    sampling: str,
) -> dict[str, Any]:
    """Every detection metric of a test set, with its protocol.

    Args:
        scores: (N, K) per-frame class scores of every test video, pooled.
        targets: (N, K) their multi-hot labels (:func:`~rrn.detection.labels.frame_labels`).
        ignore: (N,) frames inside an ambiguous stretch (removed from the frame metrics).
        classes: The K class names, ``Background`` first.
        truth: Ground-truth action segments of the test videos.
        predictions: The segments the online tracker emitted, each scored (its mean
            probability).
        ambiguous: The test videos' ambiguous stretches.
        thumos_ambiguous_rule: Drop false-positive segments that overlap an ambiguous stretch
            (THUMOS'14's official rule); default ActivityNet's rule, nothing dropped.
        thresholds: tIoU thresholds of the segment mAP.
        sampling: How the frames were sampled, for the protocol (``"4 frames/s"``).

    Returns:
        ``task`` ("detection"), ``frame_map``, ``frame_mcap``, ``segment_map`` (tIoU as text ->
        mAP), ``segment_map_avg``, ``delay_s_median``, ``missed``, ``per_class_ap`` (class
        name -> its frame AP and cAP, segment AP per tIoU, positive frames, actions), counts,
        and ``protocol``. A metric without anything to score is None.
    """
    if not classes or classes[0] != "Background":
        raise ValueError("classes must start with 'Background' (class 0)")
    frame = frame_map(scores, targets, ignore)
    calibrated = frame_map(scores, targets, ignore, calibrated=True)
    segments = segment_map(
        truth, predictions, thresholds, ambiguous if thumos_ambiguous_rule else ()
    )
    delay = detection_delay(truth, predictions)
    scored = [m for m in segments.per_threshold.values() if m is not None]
    return {
        "task": TASK,
        "frame_map": frame.mean,
        "frame_mcap": calibrated.mean,
        "segment_map": {f"{t:g}": m for t, m in segments.per_threshold.items()},
        "segment_map_avg": float(np.mean(scored)) if scored else None,
        "delay_s_median": delay.median,
        "missed": delay.missed,
        "per_class_ap": _per_class(
            classes,
            targets,
            ignore,
            frame=frame,
            calibrated=calibrated,
            segments=segments,
            truth=truth,
        ),
        "num_frames": len(np.asarray(scores)),
        "num_scored_frames": frame.frames,
        "num_actions": len(truth),
        "num_detected": len(delay.delays),
        "num_predicted_segments": len(predictions),
        "protocol": detection_protocol(
            sampling,
            ignored=len(np.asarray(scores)) - frame.frames,
            skipped=[classes[k] for k in range(1, len(classes)) if k not in frame.per_class],
            thresholds=thresholds,
            thumos_ambiguous_rule=thumos_ambiguous_rule,
        ),
    }


def _per_class(classes, targets, ignore, *, frame, calibrated, segments, truth) -> dict[str, Any]:
    """Class name -> its frame AP and cAP, segment AP per tIoU, positive frames and actions."""
    targets = np.asarray(targets).astype(bool)
    keep = np.ones(len(targets), bool) if ignore is None else ~np.asarray(ignore, bool)
    out = {}
    for k, name in enumerate(classes):
        if k == 0:
            continue
        seg = segments.per_class.get(k)
        out[name] = {
            "frame_ap": frame.per_class.get(k),
            "frame_cap": calibrated.per_class.get(k),
            "segment_ap": None
            if seg is None
            else {f"{t:g}": float(a) for t, a in zip(segments.per_threshold, seg)},
            "positive_frames": int(targets[keep, k].sum()),
            "actions": sum(1 for s in truth if s.label == k),
        }
    return out


def detection_protocol(
    sampling: str,
    *,
    ignored: int,
    skipped: Sequence[str],
    thresholds: Sequence[float],
    thumos_ambiguous_rule: bool,
) -> str:
    """The protocol of :func:`evaluate_detection`, in words, written beside its numbers."""
    thr = ", ".join(f"{t:g}" for t in thresholds)
    return (
        f"Per-frame scores of every test video, sampled at {sampling}, the model run online "
        "(no future frame seen). Per-frame mAP: per-class AP (scikit-learn's "
        "average_precision_score) over all test frames pooled across videos, Background "
        f"excluded, {ignored} frames inside Ambiguous intervals removed, classes without a "
        f"positive frame skipped ({', '.join(skipped) or 'none'}); the definition of the "
        "LSTR/TeSTra/MiniROAD evaluation code. mcAP: the same with TVSeries' calibrated AP "
        "(De Geest et al. 2016, w = negatives/positives per class). Segment mAP at tIoU "
        f"{thr}: the online tracker's segments, each scored by its mean probability, matched "
        "and scored as ActivityNet's detection evaluation does (interpolated AP, mean over "
        "classes with ground truth)"
        + (
            "; false positives overlapping an Ambiguous interval dropped (THUMOS'14's rule)"
            if thumos_ambiguous_rule
            else ""
        )
        + ". Detection delay: per ground-truth action, seconds from its start to the first "
        "frame of an online segment of its class that starts inside it or is open at its "
        "start; the median over detected actions, and the share never detected (missed)."
    )

"""Evaluation metrics and the files every evaluator writes (JSON, per-class CSV, confusion PNG).

Video-level prediction is the mean of the chunk probabilities over a video's M chunks (paper
§3.3): ``p(c | video) = 1/M * sum_m p(c | chunk_m)``. :func:`video_probs_from_chunks` does that
aggregation; :func:`evaluate_probs` turns (video probabilities, labels, class names) into the
metrics and writes them, so ``rrn eval`` and the feature baselines produce identical reports.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from rrn.files import atomic_write_json, atomic_write_text

#: Scalar metrics averaged by :func:`mean_over_splits`.
SCALAR_METRICS = (
    "video_error",
    "video_top1",
    "video_top5",
    "clip_top1",
    "mean_class_accuracy",
)


def video_probs_from_chunks(
    chunk_probs: torch.Tensor, chunk_video: torch.Tensor, num_videos: int
) -> torch.Tensor:
    """Mean of chunk probabilities per video (paper §3.3).

    Args:
        chunk_probs: (C, K) class probabilities of C chunks.
        chunk_video: (C,) index in ``[0, num_videos)`` of the video each chunk comes from.
        num_videos: V.

    Returns:
        (V, K) video probabilities; a video without chunks gets a row of zeros.
    """
    sums = torch.zeros(num_videos, chunk_probs.shape[1], dtype=torch.float64)
    sums.index_add_(0, chunk_video.long(), chunk_probs.double())  # (C, K) -> (V, K)
    counts = torch.bincount(chunk_video.long(), minlength=num_videos).clamp(min=1)
    return (sums / counts[:, None]).float()


def topk_correct(probs: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(V,) bool: the label is among the ``k`` most probable classes."""
    k = min(k, probs.shape[1])
    top = probs.topk(k, dim=1).indices  # (V, k)
    return (top == labels[:, None]).any(dim=1)


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts, rows = true class, columns = predicted class."""
    flat = labels.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def compute_metrics(
    video_probs: torch.Tensor,
    labels: torch.Tensor,
    *,
    chunk_probs: torch.Tensor | None = None,
    chunk_labels: torch.Tensor | None = None,
) -> tuple[dict[str, Any], torch.Tensor]:
    """Scalar metrics and the confusion matrix.

    Args:
        video_probs: (V, K) probabilities (or any scores: only their order is used).
        labels: (V,) true class indices.
        chunk_probs: (C, K) optional chunk-level scores for ``clip_top1``.
        chunk_labels: (C,) their labels.

    Returns:
        ``(metrics, confusion)``: ``video_top1``, ``video_top5``, ``video_error``,
        ``mean_class_accuracy`` (mean over classes with test videos of per-class recall),
        ``clip_top1`` (None without chunks), ``num_videos``, ``num_chunks``, ``num_classes``.
    """
    video_probs = video_probs.detach().float().cpu()
    labels = labels.detach().long().cpu()
    num_videos, num_classes = video_probs.shape
    if labels.shape != (num_videos,):
        raise ValueError(f"labels must have shape ({num_videos},), got {tuple(labels.shape)}")
    if num_videos == 0:
        raise ValueError("no videos to evaluate")
    pred = video_probs.argmax(dim=1)
    conf = confusion_matrix(pred, labels, num_classes)
    support = conf.sum(dim=1)
    present = support > 0
    recall = conf.diag().double() / support.clamp(min=1)
    top1 = topk_correct(video_probs, labels, 1).double().mean().item()
    metrics: dict[str, Any] = {
        "video_error": 1.0 - top1,
        "video_top1": top1,
        "video_top5": topk_correct(video_probs, labels, 5).double().mean().item(),
        "clip_top1": None,
        "mean_class_accuracy": recall[present].mean().item(),
        "num_videos": int(num_videos),
        "num_chunks": None,
        "num_classes": int(num_classes),
    }
    if chunk_probs is not None:
        if chunk_labels is None:
            raise ValueError("chunk_probs needs chunk_labels")
        chunk_probs = chunk_probs.detach().float().cpu()
        chunk_labels = chunk_labels.detach().long().cpu()
        metrics["num_chunks"] = int(chunk_probs.shape[0])
        if chunk_probs.shape[0]:
            hit = chunk_probs.argmax(dim=1) == chunk_labels
            metrics["clip_top1"] = hit.double().mean().item()
    return metrics, conf


def per_class_rows(conf: torch.Tensor, classes: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: index, name, support, correct, accuracy, most confused class."""
    rows = []
    for k, name in enumerate(classes):
        row = conf[k].clone()
        support, correct = int(row.sum()), int(row[k])
        row[k] = -1
        confused = int(row.argmax()) if support > correct else None
        rows.append(
            {
                "class_index": k,
                "class": name,
                "support": support,
                "correct": correct,
                "accuracy": correct / support if support else float("nan"),
                "most_confused_with": classes[confused] if confused is not None else "",
                "confused_count": int(conf[k, confused]) if confused is not None else 0,
            }
        )
    return rows


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["class"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def evaluate_probs(
    video_probs: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    *,
    out_dir: str | os.PathLike | None = None,
    stem: str = "eval",
    chunk_probs: torch.Tensor | None = None,
    chunk_labels: torch.Tensor | None = None,
    video_ids: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Metrics for video-level probabilities, written as ``<stem>.json`` and friends.

    The shared back end of ``rrn eval`` and the feature baselines.

    Args:
        video_probs: (V, K) video-level probabilities (e.g. :func:`video_probs_from_chunks`).
        labels: (V,) true classes.
        classes: K class names.
        out_dir: where to write ``<stem>.json``, ``<stem>_per_class.csv`` and
            ``<stem>_confusion.png``; None writes nothing.
        stem: file name stem, e.g. ``"eval_split1"``.
        chunk_probs, chunk_labels: optional (C, K) / (C,) chunk-level results for ``clip_top1``.
        video_ids: optional V names, stored with each misclassified video in the JSON.
        extra: merged into the JSON (split, checkpoint, config, timing ...).
        plot: also draw the confusion matrix.

    Returns:
        The JSON content: the metrics of :func:`compute_metrics`, ``extra``, ``per_class`` and
        ``files`` (paths written).
    """
    if video_probs.shape[1] != len(classes):
        raise ValueError(
            f"{video_probs.shape[1]} probability columns but {len(classes)} class names"
        )
    metrics, conf = compute_metrics(
        video_probs, labels, chunk_probs=chunk_probs, chunk_labels=chunk_labels
    )
    rows = per_class_rows(conf, classes)
    result: dict[str, Any] = {**metrics, **(dict(extra) if extra else {})}
    if video_ids is not None:
        pred = video_probs.argmax(dim=1).tolist()
        result["misclassified"] = [
            {"video_id": vid, "label": classes[int(y)], "predicted": classes[p]}
            for vid, y, p in zip(video_ids, labels.tolist(), pred)
            if int(y) != p
        ]
    result["per_class"] = [
        {**r, "accuracy": None if math.isnan(r["accuracy"]) else r["accuracy"]} for r in rows
    ]
    if out_dir is not None:
        out = Path(out_dir)
        files = {
            "json": str(out / f"{stem}.json"),
            "per_class_csv": str(out / f"{stem}_per_class.csv"),
        }
        atomic_write_text(files["per_class_csv"], rows_to_csv(rows))
        if plot:
            from rrn.plots import plot_confusion

            files["confusion_png"] = str(out / f"{stem}_confusion.png")
            title = f"{stem}: video accuracy {metrics['video_top1']:.1%}"
            plot_confusion(conf, classes, files["confusion_png"], title=title)
        result["files"] = files
        atomic_write_json(files["json"], result)
    return result


def mean_over_splits(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of each scalar metric over splits, as the paper reports UCF-101 / HMDB-51.

    Returns:
        ``{"mean_over_splits": {metric: mean}, "splits": [...], "per_split": {metric: [...]}}``
        plus the summed ``num_videos`` / ``num_chunks``.
    """
    if not results:
        raise ValueError("no split results to average")
    mean: dict[str, Any] = {}
    per_split: dict[str, list[Any]] = {}
    for key in SCALAR_METRICS:
        values = [r.get(key) for r in results]
        per_split[key] = values
        mean[key] = None if any(v is None for v in values) else sum(values) / len(values)
    return {
        "mean_over_splits": mean,
        "splits": [r.get("split") for r in results],
        "per_split": per_split,
        "num_videos": sum(int(r.get("num_videos") or 0) for r in results),
        "num_chunks": sum(int(r.get("num_chunks") or 0) for r in results),
        "checkpoints": [r.get("checkpoint") for r in results],
    }

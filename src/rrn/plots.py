"""Figures written by training, evaluation and prediction (matplotlib, no display needed).

``curves.png``: loss and error by epoch; ``*_confusion.png``: labelled confusion matrix;
``timeline.png``: per-frame class probabilities of one video; ``timeline_<video>.png`` of a
detection evaluation: the true classes' scores against their ground-truth intervals.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import torch

from rrn.files import atomic_write


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG atomically and close it."""
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"), "wb")
    plt.close(fig)


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Loss and error (1 - accuracy) by epoch; validation lines where present.

    Args:
        history: the epoch records of log.jsonl (``epoch``, ``train_loss``, ``train_acc``,
            optional ``val_loss``, ``val_video_top1``, ``val_clip_top1``).
    """
    epochs = [h["epoch"] + 1 for h in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))

    def line(ax, key, label, transform=lambda v: v):
        pts = [(e, transform(h[key])) for e, h in zip(epochs, history) if h.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)

    line(ax_loss, "train_loss", "train (chunks)")
    line(ax_loss, "val_loss", "test (chunks)")
    line(ax_err, "train_acc", "train (chunks)", lambda a: 1 - a)
    line(ax_err, "val_clip_top1", "test (chunks)", lambda a: 1 - a)
    line(ax_err, "val_video_top1", "test (videos)", lambda a: 1 - a)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error", title="error", ylim=(0, 1))
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    save_figure(fig, path)


def plot_confusion(
    conf: torch.Tensor, classes: Sequence[str], path: str | os.PathLike, *, title: str = ""
) -> None:
    """Row-normalised confusion matrix with class names on both axes."""
    k = len(classes)
    rows = conf.double()
    norm = (rows / rows.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
    side = min(40.0, max(4.0, 0.18 * k + 2))
    fontsize = max(3.0, min(9.0, 300 / max(k, 1)))
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(k), classes, fontsize=fontsize)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if k <= 20:  # counts readable only for small matrices
        for i in range(k):
            for j in range(k):
                if conf[i, j]:
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        int(conf[i, j]),
                        ha="center",
                        va="center",
                        color=colour,
                        fontsize=fontsize,
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    save_figure(fig, path)


def plot_timeline(
    frame_probs: torch.Tensor,
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    times: Sequence[float] | None = None,
    top: int = 5,
    title: str = "",
    xlabel: str = "time (s)",
) -> None:
    """Per-frame probability of the ``top`` classes of the whole video over time.

    For a detection model (class 0 is the background class) the classes shown are the
    background, grey and dashed, and the actions with the highest peak: in an untrimmed video
    an action of a few seconds would never rank by its mean.

    Args:
        frame_probs: (N, K) per-frame class probabilities.
        times: N x positions (default: frame index).
    """
    from rrn.detection.classes import background_index

    n = frame_probs.shape[0]
    xs = list(times) if times is not None else list(range(n))
    if times is None:
        xlabel = "sampled frame"
    background = background_index(classes)
    if background is None:
        best = frame_probs.mean(dim=0).topk(min(top, frame_probs.shape[1])).indices.tolist()
    else:
        peaks = frame_probs.max(dim=0).values  # (K,)
        peaks[background] = -1.0
        actions = peaks.topk(min(top, frame_probs.shape[1] - 1)).indices.tolist()
        best = [background, *actions]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k in best:
        style = {"color": "0.6", "linestyle": "--"} if k == background else {"marker": "."}
        ax.plot(xs, frame_probs[:, k].tolist(), label=classes[k], **style)
    ax.set(xlabel=xlabel, ylabel="probability", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_figure(fig, path)


def plot_detection_timeline(
    times: Sequence[float],
    scores,
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    truth: Sequence[tuple[float, float, int]],
    ambiguous: Sequence[tuple[float, float]] = (),
    segments: Sequence[tuple[float, float, int]] = (),
    title: str = "",
) -> None:
    """One test video of a detection evaluation: the per-frame scores of its true classes
    against their ground-truth intervals.

    Each class annotated in the video is one colour: its score over time (a line) and its
    intervals (shaded); Background's score is grey and dashed, the ambiguous stretches hatched,
    and the segments the online tracker announced are bars above the plot, in their class's
    colour (any class, so false alarms show too).

    Args:
        times: (N,) seconds of the sampled frames.
        scores: (N, K) per-frame probabilities.
        truth: ``(start, end, class)`` of the video's action intervals.
        ambiguous: ``(start, end)`` of its ambiguous stretches.
        segments: ``(start, end, class)`` of the online segments.
    """
    import numpy as np

    scores = np.asarray(scores)  # (N, K)
    times = list(times)
    shown = sorted({label for _, _, label in truth})
    alarms = sorted({label for _, _, label in segments} - set(shown))
    colours = {k: f"C{i % 10}" for i, k in enumerate(shown + alarms)}
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(times, scores[:, 0], color="0.6", linestyle="--", label=classes[0])
    for k in shown:
        ax.plot(times, scores[:, k], color=colours[k], label=classes[k])
    for start, end, label in truth:
        ax.axvspan(start, end, color=colours[label], alpha=0.15, linewidth=0)
    for start, end in ambiguous:
        ax.axvspan(start, end, facecolor="none", edgecolor="0.5", hatch="//", linewidth=0)
    for start, end, label in segments:
        ax.hlines(1.04, start, end, color=colours[label], linewidth=4, clip_on=False)
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1))
    ax.set_title(title, pad=16)  # above the segment bars
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_figure(fig, path)

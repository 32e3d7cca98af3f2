"""Score files: the per-frame class scores of every test video, the one thing the detection
metrics read, so that every score source (an RRN run online by ``rrn eval``, the GRU baseline,
an exported model run elsewhere) is scored the same way.

A score folder holds

* ``<video>.npz`` per test video: ``scores`` (N, K) float32, the class probabilities of its N
  sampled frames (each row the model's output at that frame, having seen only the frames before
  it), and ``times`` (N,) float64, each frame's time in seconds from the video's start, strictly
  increasing (the times the frame labels are computed at, :mod:`rrn.detection.labels`);
* ``scores.json``: ``classes`` (the K names, ``Background`` first), ``sampling`` (how the frames
  were sampled, in words, for the protocol), ``source`` (what produced the scores),
  ``interval_s`` (seconds between two sampled frames: where the last frame's stretch ends; None:
  the median gap of its times), ``context`` (frames a score has seen at most, for the default
  smoothing of the segments; 1 when unknown), ``skipped`` (video id -> why it has no scores:
  unreadable; such a video is left out of the metrics and listed), and ``data`` (optional: the
  dataset flags that locate the annotations: ``dataset``, ``data_root``, ``split_dir``).

Pure numpy and JSON; it imports nothing above :mod:`rrn.errors` and :mod:`rrn.files`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rrn.errors import UserError
from rrn.files import atomic_write, atomic_write_json

SCORES_META = "scores.json"
"""The file that describes a score folder."""


class ScoreFileError(UserError, ValueError):
    """A score folder or file that does not follow the format (the message says what)."""


class VideoScores(NamedTuple):
    """The per-frame scores of one video."""

    video: str
    scores: np.ndarray
    """(N, K) float32 class probabilities."""
    times: np.ndarray
    """(N,) float64 seconds, strictly increasing."""


def score_file(folder: str | os.PathLike, video: str) -> Path:
    """Where the scores of ``video`` live: ``<folder>/<video>.npz``."""
    if not video or "/" in video or "\\" in video or video in (".", ".."):
        raise ScoreFileError(f"{video!r} is not a video id (one file name, no folder)")
    return Path(folder) / f"{video}.npz"


def write_video_scores(folder: str | os.PathLike, video: str, scores, times) -> Path:
    """Write one video's ``scores`` (N, K) and ``times`` (N,) (checked as :func:`check_scores`
    checks them) to ``<folder>/<video>.npz``, atomically."""
    scores = np.asarray(scores, dtype=np.float32)
    times = np.asarray(times, dtype=np.float64)
    check_scores(VideoScores(video, scores, times), scores.shape[-1], where=video)
    path = score_file(folder, video)
    atomic_write(path, lambda fh: np.savez(fh, scores=scores, times=times))
    return path


def check_scores(scores: VideoScores, num_classes: int, *, where: str) -> VideoScores:
    """``scores`` itself when well-formed: (N, K) finite scores, N >= 1, (N,) strictly increasing
    finite times.

    Raises:
        ScoreFileError: naming ``where`` and what is wrong.
    """
    s, t = scores.scores, scores.times
    if s.ndim != 2 or s.shape[1] != num_classes or len(s) == 0:
        raise ScoreFileError(
            f"{where}: scores must be (N, {num_classes}) with N >= 1 (one column per class), "
            f"got {s.shape}"
        )
    if t.shape != (len(s),):
        raise ScoreFileError(f"{where}: {len(s)} frames of scores but times of shape {t.shape}")
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise ScoreFileError(f"{where}: scores and times must be finite (found NaN or infinity)")
    if len(t) > 1 and not (np.diff(t) > 0).all():
        raise ScoreFileError(f"{where}: frame times must increase strictly")
    return scores


def read_video_scores(folder: str | os.PathLike, video: str, num_classes: int) -> VideoScores:
    """One video's scores, checked (:func:`check_scores`).

    Raises:
        ScoreFileError: the file is missing, unreadable or malformed.
    """
    path = score_file(folder, video)
    try:
        with np.load(path) as z:
            scores = VideoScores(
                video, z["scores"].astype(np.float32), z["times"].astype(np.float64)
            )
    except FileNotFoundError:
        raise ScoreFileError(f"{path}: no scores for test video {video}") from None
    except (OSError, ValueError, KeyError) as err:
        raise ScoreFileError(
            f"{path}: not a score file (an .npz with 'scores' and 'times': {err})"
        ) from None
    return check_scores(scores, num_classes, where=str(path))


def write_scores_meta(
    folder: str | os.PathLike,
    *,
    classes: Sequence[str],
    sampling: str,
    source: str,
    interval_s: float | None = None,
    context: int = 1,
    skipped: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``scores.json`` (see the module docstring)."""
    return atomic_write_json(
        Path(folder) / SCORES_META,
        {
            "classes": list(classes),
            "sampling": sampling,
            "source": source,
            "interval_s": interval_s,
            "context": int(context),
            "skipped": dict(skipped or {}),
            "data": dict(data) if data else None,
        },
    )


def read_scores_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``scores.json`` of a score folder, its required keys checked.

    Raises:
        ScoreFileError: no such file, not JSON, or ``classes``/``sampling`` missing.
    """
    path = Path(folder) / SCORES_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoreFileError(
            f"{path} not found: a score folder holds {SCORES_META} and one <video>.npz per "
            "test video (docs/detection.md, 'Score files')"
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ScoreFileError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list):
        raise ScoreFileError(f'{path}: needs "classes" (the class names, Background first)')
    if not isinstance(meta.get("sampling"), str):
        raise ScoreFileError(f'{path}: needs "sampling" (how the frames were sampled, in words)')
    meta.setdefault("source", str(Path(folder)))
    meta.setdefault("interval_s", None)
    meta.setdefault("context", 1)
    meta["skipped"] = dict(meta.get("skipped") or {})
    meta.setdefault("data", None)
    return meta


def is_score_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding ``scores.json``."""
    return (Path(path) / SCORES_META).is_file()


def end_of_video(times: np.ndarray, interval_s: float | None) -> float:
    """Where the stretch of the last sampled frame ends: its time plus ``interval_s``, or plus
    the median gap between frames when the interval is unknown (0 for a single frame)."""
    if interval_s is None:
        interval_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return float(times[-1]) + interval_s

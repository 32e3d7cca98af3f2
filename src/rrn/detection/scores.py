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
import math
import os
import zipfile
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
    if s.dtype.kind not in "iuf" or t.dtype.kind not in "iuf":
        raise ScoreFileError(
            f"{where}: scores and times must be real numbers, got {s.dtype} and {t.dtype}"
        )
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise ScoreFileError(f"{where}: scores and times must be finite (found NaN or infinity)")
    if len(t) > 1 and not (np.diff(t) > 0).all():
        raise ScoreFileError(f"{where}: frame times must increase strictly")
    if t[0] < 0:
        raise ScoreFileError(
            f"{where}: frame times are seconds from the video's start, got {t[0]:g} for the "
            "first frame"
        )
    return scores


def read_video_scores(folder: str | os.PathLike, video: str, num_classes: int) -> VideoScores:
    """One video's scores, checked (:func:`check_scores`).

    Raises:
        ScoreFileError: the file is missing, unreadable or malformed.
    """
    path = score_file(folder, video)
    try:
        z = np.load(path)
        if not isinstance(z, np.lib.npyio.NpzFile):  # an .npy: one array, no names
            raise ValueError("an .npy array, not an .npz archive")
        with z:
            found = VideoScores(video, z["scores"], z["times"])
    except FileNotFoundError:
        raise ScoreFileError(f"{path}: no scores for test video {video}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ScoreFileError(
            f"{path}: not a score file (an .npz with 'scores' and 'times': {err or 'empty'}); "
            "write it again with numpy.savez"
        ) from None
    check_scores(found, num_classes, where=str(path))
    return found._replace(
        scores=found.scores.astype(np.float32), times=found.times.astype(np.float64)
    )


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
        ScoreFileError: no such file, not JSON, ``classes``/``sampling`` missing, or a key
            holding a value of the wrong kind.
    """
    path = Path(folder) / SCORES_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoreFileError(
            f"{path} not found: a score folder holds {SCORES_META} and one <video>.npz per "
            "test video (docs/detection.md, 'Score files')"
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ScoreFileError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list):
        raise ScoreFileError(f'{path}: needs "classes" (the class names, Background first)')
    if not isinstance(meta.get("sampling"), str):
        raise ScoreFileError(f'{path}: needs "sampling" (how the frames were sampled, in words)')
    meta.setdefault("source", str(Path(folder)))
    meta.setdefault("interval_s", None)
    meta.setdefault("context", 1)
    meta["skipped"] = meta.get("skipped") or {}
    meta.setdefault("data", None)
    _check_meta_values(path, meta)
    return meta


def _check_meta_values(path: Path, meta: dict[str, Any]) -> None:
    """Refuse an optional key of ``scores.json`` whose value is not of the documented kind."""
    interval, context = meta["interval_s"], meta["context"]
    if interval is not None and not (
        isinstance(interval, (int, float))
        and not isinstance(interval, bool)
        and math.isfinite(interval)
        and interval > 0
    ):
        raise ScoreFileError(
            f'{path}: "interval_s" must be the seconds between two sampled frames (a positive '
            f"number) or null (the median gap of the times), got {interval!r}"
        )
    if not isinstance(context, int) or isinstance(context, bool) or context < 1:
        raise ScoreFileError(
            f'{path}: "context" must be the frames a score has seen at most (a whole number '
            f">= 1; 1 when unknown), got {context!r}"
        )
    if not isinstance(meta["skipped"], dict):
        raise ScoreFileError(
            f'{path}: "skipped" must be an object {{<video id>: <why it has no scores>}}, got '
            f"{meta['skipped']!r}"
        )
    if meta["data"] is not None and not isinstance(meta["data"], dict):
        raise ScoreFileError(
            f'{path}: "data" must be an object {{"dataset": ..., "data_root": ..., '
            f'"split_dir": ...}} or null, got {meta["data"]!r}'
        )


def is_score_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding ``scores.json``."""
    return (Path(path) / SCORES_META).is_file()


def end_of_video(times: np.ndarray, interval_s: float | None) -> float:
    """Where the stretch of the last sampled frame ends: its time plus ``interval_s``, or plus
    the median gap between frames when the interval is unknown (0 for a single frame)."""
    if interval_s is None:
        interval_s = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return float(times[-1]) + interval_s

"""The events of online recognition: their schema, one JSON object each, and the action
segments in them. This module owns the schema: ``rrn stream`` (JSON lines, ``--json FILE``)
and ``rrn serve`` (WebSocket text messages) build every record through :func:`event`, which
refuses a record that does not follow :data:`FIELDS`.

Each record has ``type`` and ``stream`` (the stream id), then the fields :data:`FIELDS` lists
for its type, then any of :data:`OPTIONAL`'s:

* ``start``: the model's classes (``background``: the class that means "no action" for a
  detection model, else null), sampling (``interval_s``: seconds between two classified
  frames), temporal context, smoothing, checkpoint (by name, never the server's path) and the
  segment settings; ``rrn stream`` adds the source, its kind and frame rate;
* ``frame``: one per classified frame: ``frame`` (index), ``time`` (s), ``top`` (this frame's
  chunk), ``smoothed`` (mean of the last ``smooth`` frames), ``latency_ms``;
* ``segment``: an action segment, a run of frames whose smoothed top class is the same action
  (never the background class) and at least ``threshold`` probable, in three phases with one
  stable ``segment_id``: ``start`` once the run has lasted ``min_duration`` seconds (shorter
  runs are flicker and never announced), ``update`` at most every ``update_interval`` seconds
  while it lasts, ``end`` when another class takes over, the probability falls below
  ``threshold``, the background class takes over, or the stream ends;
* ``dropped``: a sampled frame that was not classified, and why (``reason``: ``replaced`` by a
  newer one before the model got to it, ``behind``: skipped to keep up with a live source,
  ``rate``/``pace``: over the server's per-stream limits); ``count`` is the stream's total;
* ``error``: something went wrong for this stream only (``kind``: ``frame``, ``message``,
  ``model``, ``source``, ``refused``);
* ``end``: the stream's summary: why it ended, its counts and latencies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rrn.detection.classes import background_index
from rrn.files import json_text

#: The fields every record of a type has, after ``type`` and ``stream``, in this order.
FIELDS: dict[str, tuple[str, ...]] = {
    "start": (
        "classes",
        "background",
        "sampling",
        "interval_s",
        "context",
        "smooth",
        "checkpoint",
        "threshold",
        "min_segment",
    ),
    "frame": ("frame", "time", "top", "smoothed", "latency_ms"),
    "segment": (
        "segment_id",
        "phase",
        "class",
        "start",
        "frames",
        "mean_prob",
        "peak_prob",
        "last",
    ),
    "dropped": ("frame", "count", "reason"),
    "error": ("kind", "message"),
    "end": (
        "reason",
        "status",
        "sampled",
        "classified",
        "dropped",
        "errors",
        "latency_ms_p50",
        "latency_ms_p95",
        "segments",
    ),
}
#: The fields a record of a type may add: which command adds them is said in the module
#: docstring and docs/online.md.
OPTIONAL: dict[str, tuple[str, ...]] = {
    "start": ("source", "kind", "rate", "realtime"),
    "frame": ("batch", "server_ms"),
    "segment": ("end",),
    "dropped": ("time", "limit_fps"),
    "error": ("frame",),
    "end": (
        "source",
        "live",
        "frames",
        "received",
        "skipped",
        "stopped_at",
        "duration",
        "wall",
    ),
}


def event(record_type: str, stream: str, **fields) -> dict:
    """One record: ``{"type", "stream", **fields}``, checked against the schema.

    Raises:
        ValueError: an unknown type, a field missing or one the schema does not list (a bug:
            a client would get a record the docs do not describe).
    """
    if record_type not in FIELDS:
        raise ValueError(f"unknown event type {record_type!r}; the types are {', '.join(FIELDS)}")
    required, allowed = FIELDS[record_type], FIELDS[record_type] + OPTIONAL[record_type]
    missing = [f for f in required if f not in fields]
    unknown = [f for f in fields if f not in allowed]
    if missing or unknown:
        raise ValueError(
            f"a {record_type!r} event needs {', '.join(required)} (may add "
            f"{', '.join(OPTIONAL[record_type]) or 'nothing'}); "
            f"missing {missing}, unknown {unknown}"
        )
    ordered = {f: fields[f] for f in allowed if f in fields}
    return {"type": record_type, "stream": stream, **ordered}


def checkpoint_name(path) -> str | None:
    """How events and the service name a checkpoint: ``run/best.pt``, a package folder's
    ``parent/name``, or ``hf://org/name@<revision>`` for a package from the Hub's cache; never an
    absolute path (a server's file system is none of its clients' business)."""
    if path is None:
        return None
    path = Path(path)
    parts = path.parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        repo = parts[-3].removeprefix("models--").replace("--", "/")  # the Hub cache's layout
        return f"hf://{repo}@{parts[-1][:12]}"
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def background_name(classes) -> str | None:
    """The class meaning "no action" among ``classes`` (a detection model's), else None."""
    index = background_index(classes)
    return None if index is None else classes[index]


def start_fields(model, recognizer, interval_s: float, config) -> dict:
    """The fields every ``start`` event has, for ``model`` stepped by ``recognizer`` (a
    :class:`~rrn.online.recognizer.MultiStreamRecognizer`) with the segment settings of
    ``config`` (a :class:`~rrn.config.StreamConfig`)."""
    return {
        "classes": recognizer.classes,
        "background": background_name(recognizer.classes),
        "sampling": recognizer.sampling.describe(),
        "interval_s": round(interval_s, 6),
        "context": model.temporal_context,
        "smooth": recognizer.smooth,
        "checkpoint": checkpoint_name(getattr(model, "checkpoint", None)),
        "threshold": config.threshold,
        "min_segment": config.min_segment,
    }


def named(top: list[tuple[str, float]]) -> list[dict]:
    """``[("Diving", 0.91), ...]`` -> ``[{"class": "Diving", "prob": 0.91}, ...]`` (4 decimals)."""
    return [{"class": c, "prob": round(p, 4)} for c, p in top]


def frame_record(pred, classes: list[str], labels: int, **extra) -> dict:
    """The ``frame`` event of a :class:`~rrn.online.recognizer.Prediction`."""
    return event(
        "frame",
        pred.stream,
        frame=pred.index,
        time=round(pred.time, 3),
        top=named(pred.top(classes, labels, smoothed=False)),
        smoothed=named(pred.top(classes, labels)),
        latency_ms=round(pred.latency_ms, 2),
        **extra,
    )


@dataclass
class _Run:
    cls: str
    start: float
    last: float
    frames: int = 0
    prob_sum: float = 0.0
    peak: float = 0.0
    id: str | None = None
    """Set when announced."""
    updated: float = 0.0


@dataclass
class SegmentTracker:
    """Turns the smoothed top class of each classified frame into segment events.

    Args:
        stream: The stream id put in every record and in the ``segment_id``.
        threshold: Smoothed probability the top class needs to be in a segment (0: any).
        min_duration: Seconds a run must last before its ``start`` is announced.
        update_interval: Seconds between two ``update`` records of one segment.
        background: The class that means "no action" (a detection model's): a frame whose
            top class it is ends the open segment, and no segment ever opens for it.
    """

    stream: str = ""
    threshold: float = 0.0
    min_duration: float = 0.0
    update_interval: float = 1.0
    background: str | None = None
    done: list[dict] = field(default_factory=list)
    """The ``end`` records so far."""
    _run: _Run | None = None
    _count: int = 0

    def update(self, cls: str, prob: float, t: float) -> list[dict]:
        """Feed one classified frame (its smoothed top class, probability, time); returns the
        segment records to emit now, in order."""
        out: list[dict] = []
        run = self._run
        action = cls != self.background and prob >= self.threshold
        if run is not None and (run.cls != cls or not action):
            out += self._close(t)
            run = None
        if run is None and action:
            run = self._run = _Run(cls, t, t)
        if run is None:
            return out
        run.frames += 1
        run.prob_sum += prob
        run.peak = max(run.peak, prob)
        run.last = t
        if run.id is None and t - run.start >= self.min_duration:
            self._count += 1
            run.id, run.updated = f"{self.stream}:{self._count}", t
            out.append(self._record(run, "start"))
        elif run.id is not None and t - run.updated >= self.update_interval:
            run.updated = t
            out.append(self._record(run, "update"))
        return out

    def finish(self, end: float) -> list[dict]:
        """The stream ended at ``end`` s: close the open segment, if announced."""
        return self._close(end)

    def _close(self, end: float) -> list[dict]:
        run, self._run = self._run, None
        if run is None or run.id is None:
            return []  # never announced: shorter than min_duration
        record = self._record(run, "end", end)
        self.done.append(record)
        return [record]

    def _record(self, run: _Run, phase: str, end: float | None = None) -> dict:
        return event(
            "segment",
            self.stream,
            segment_id=run.id,
            phase=phase,
            start=round(run.start, 3),
            frames=run.frames,
            mean_prob=round(run.prob_sum / run.frames, 4),
            peak_prob=round(run.peak, 4),
            last=round(run.last, 3),
            **{"class": run.cls},
            **({"end": round(end, 3)} if end is not None else {}),
        )


class EventLog:
    """JSON lines, one record per event, each flushed as it is written (complete on a crash)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")

    def write(self, record: dict) -> None:
        """One line: an :func:`event` record."""
        self._file.write(json_text(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

"""The events of online recognition, one JSON object each, and the action segments in them.

Records (``rrn stream --json FILE`` writes them as JSON lines; ``rrn serve`` sends them as
WebSocket text messages); each has ``type`` and ``stream`` (the stream id):

* ``start``: the source or client, the model's classes and sampling;
* ``frame``: one per classified frame: ``frame`` (index), ``time`` (s), ``top`` (this frame's
  chunk), ``smoothed`` (mean of the last ``smooth`` frames), ``latency_ms``;
* ``segment``: an action segment, a run of frames whose smoothed top class is the same and at
  least ``threshold`` probable, in three phases with one stable ``segment_id``: ``start`` once
  the run has lasted ``min_duration`` seconds (shorter runs are flicker and never announced),
  ``update`` at most every ``update_interval`` seconds while it lasts, ``end`` when another
  class takes over, the probability falls below ``threshold``, or the stream ends;
* ``dropped``: sampled frames replaced by a newer one before the model got to them;
* ``error``: something went wrong for this stream only;
* ``end``: the stream's summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rrn.files import json_text


def named(top: list[tuple[str, float]]) -> list[dict]:
    """``[("Diving", 0.91), ...]`` -> ``[{"class": "Diving", "prob": 0.91}, ...]`` (4 decimals)."""
    return [{"class": c, "prob": round(p, 4)} for c, p in top]


def frame_record(pred, classes: list[str], labels: int) -> dict:
    """The ``frame`` event of a :class:`~rrn.online.recognizer.Prediction` (without ``type``)."""
    return {
        "stream": pred.stream,
        "frame": pred.index,
        "time": round(pred.time, 3),
        "top": named(pred.top(classes, labels, smoothed=False)),
        "smoothed": named(pred.top(classes, labels)),
        "latency_ms": round(pred.latency_ms, 2),
    }


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
    """

    stream: str = ""
    threshold: float = 0.0
    min_duration: float = 0.0
    update_interval: float = 1.0
    done: list[dict] = field(default_factory=list)
    """The ``end`` records so far."""
    _run: _Run | None = None
    _count: int = 0

    def update(self, cls: str, prob: float, t: float) -> list[dict]:
        """Feed one classified frame (its smoothed top class, probability, time); returns the
        segment records to emit now, in order."""
        out: list[dict] = []
        run = self._run
        if run is not None and (run.cls != cls or prob < self.threshold):
            out += self._close(t)
            run = None
        if run is None and prob >= self.threshold:
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
        record = {
            "stream": self.stream,
            "segment_id": run.id,
            "phase": phase,
            "class": run.cls,
            "start": round(run.start, 3),
        }
        if end is not None:
            record["end"] = round(end, 3)
        record.update(
            frames=run.frames,
            mean_prob=round(run.prob_sum / run.frames, 4),
            peak_prob=round(run.peak, 4),
            last=round(run.last, 3),
        )
        return record


class EventLog:
    """JSON lines, one record per event, each flushed as it is written (complete on a crash)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")

    def write(self, record_type: str, /, **record) -> None:
        """One line: ``{"type": record_type, **record}``."""
        self._file.write(json_text({"type": record_type, **record}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

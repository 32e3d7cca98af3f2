"""The round loop: one or many sources through one batched model step, and their outputs.

Each source (:class:`SourceRun`) is read in order; the frames its sampling keeps are stepped
together with the other sources' ready frames in ONE call of
:meth:`~rrn.online.recognizer.MultiStreamRecognizer.step`, so N cameras cost one batched step
per round instead of N. Per source: the smoothed prediction per classified frame goes to a
callback (``rrn stream``'s live line) and to the events (:mod:`rrn.online.events`); every source
frame goes to the annotated video with the top classes of its latest classified frame.
Outputs are closed in a ``finally``: they stay valid when a source ends early, fails mid-way or
the user presses Ctrl-C, and each summary says where its source stopped.

With ``realtime`` frames are read by a thread per source (:class:`~rrn.online.sources.LiveFrames`);
whenever the model falls behind, only the newest sampled frame that has arrived is classified and
the others are counted as dropped. A file is then delivered at its frame rate, as a live source
would be. A live source that sends nothing for ``timeout`` seconds has ended (or stalled): that
is an ordinary end, said plainly.

Opening the sources and their outputs (what ``rrn stream`` asks for) is :mod:`rrn.online.run`'s.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rrn.data.decode import error_text
from rrn.online.events import EventLog, SegmentTracker, event, frame_record
from rrn.online.recognizer import MultiStreamRecognizer, Prediction, StreamFrame
from rrn.online.render import AnnotatedWriter
from rrn.online.sources import LiveFrames, SourceFrame

POLL_S = 0.005  # a round with no frame ready waits this long for the live sources


def stall_message(timeout: float) -> str:
    """What a live source that stopped sending means, in words."""
    return f"no data for {timeout:g} s: the stream ended or stalled"


@dataclass
class StreamSummary:
    """What happened to one source."""

    source: str
    stream: str = ""
    live: bool = False
    status: str = "running"
    """end (the source ended), interrupted (Ctrl-C) or error (the source failed mid-way)."""
    error: str | None = None
    note: str | None = None
    """How an ordinary end came about, when it needs saying (a live source that went quiet)."""
    frames: int = 0
    """Source frames read (each one written to the annotated video)."""
    sampled: int = 0
    """Frames the sampling picked."""
    classified: int = 0
    """Frames the model stepped on (``sampled - dropped``)."""
    dropped: int = 0
    """Sampled frames skipped to keep up (``realtime``)."""
    errors: int = 0
    """``error`` events of the stream."""
    last_index: int | None = None
    last_time: float | None = None
    end_time: float = 0.0
    """Seconds of the source covered (last frame's time + one frame)."""
    wall: float = 0.0
    """Seconds from the first frame read to the end."""
    step_ms: list[float] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)

    def where(self) -> str:
        """Where the stream stopped: ``frame 123 (4.92 s)``."""
        if self.last_index is None:
            return "before its first frame"
        return f"after frame {self.last_index} ({self.last_time:.2f} s)"

    def rate(self) -> float:
        """Classified frames per second of wall-clock time."""
        return self.classified / self.wall if self.wall > 0 else 0.0

    def reason(self) -> str:
        """Why the stream ended, in words (the ``end`` event's ``reason``)."""
        if self.status == "error":
            return self.error or "the source failed"
        if self.status == "interrupted":
            return "stopped by Ctrl-C or SIGTERM"
        return self.note or "the source ended"

    def end_event(self) -> dict:
        """The stream's ``end`` event (:mod:`rrn.online.events`)."""
        steps = sorted(self.step_ms)
        return event(
            "end",
            self.stream,
            reason=self.reason(),
            status=self.status,
            source=self.source,
            live=self.live,
            frames=self.frames,
            sampled=self.sampled,
            classified=self.classified,
            dropped=self.dropped,
            errors=self.errors,
            stopped_at={"frame": self.last_index, "time": _round(self.last_time)},
            duration=round(self.end_time, 3),
            wall=round(self.wall, 3),
            latency_ms_p50=_round(percentile(steps, 50)),
            latency_ms_p95=_round(percentile(steps, 95)),
            segments=len(self.segments),
        )

    def to_json(self) -> dict:
        steps = sorted(self.step_ms)
        return {
            "source": self.source,
            "stream": self.stream,
            "live": self.live,
            "status": self.status,
            "error": self.error,
            "note": self.note,
            "frames": self.frames,
            "sampled": self.sampled,
            "classified": self.classified,
            "dropped": self.dropped,
            "stopped_at": {"frame": self.last_index, "time": _round(self.last_time)},
            "duration": round(self.end_time, 3),
            "wall": round(self.wall, 3),
            "latency_ms_p50": _round(percentile(steps, 50)),
            "latency_ms_p95": _round(percentile(steps, 95)),
            "segments": len(self.segments),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of values sorted ascending; None for none."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1)]


@dataclass
class Outputs:
    """Where a source's results go (each part optional)."""

    writer: AnnotatedWriter | None = None
    events: EventLog | None = None
    on_prediction: Callable[[Prediction, StreamSummary], None] | None = None
    on_event: Callable[[dict], None] | None = None
    """Called with every event record (``type`` included), e.g. to print them."""
    labels: int = 3
    """Classes per frame in the events and on the annotated video."""

    def emit(self, record: dict) -> None:
        """One :func:`~rrn.online.events.event` record to the events file and the callback."""
        if self.events is not None:
            self.events.write(record)
        if self.on_event is not None:
            self.on_event(record)


class SourceRun:
    """One source being recognised: its frames, its outputs, its segments and its summary.

    Args:
        stream: The stream id (in every event).
        frames: The source's frames in order, or a :class:`LiveFrames` reading them.
        outputs: Its annotated video, events and callbacks.
        summary: Filled in as frames come.
        rate: The source's frame rate (frame duration at the end, frames without time).
        segments: Turns its predictions into segment events.
        timeout: A live source that sends nothing for this long has ended (None: wait).
    """

    def __init__(
        self,
        stream: str,
        frames,
        outputs: Outputs,
        summary: StreamSummary,
        *,
        rate: float = 25.0,
        segments: SegmentTracker | None = None,
        timeout: float | None = None,
    ):
        self.stream = stream
        self.live_frames = frames if isinstance(frames, LiveFrames) else None
        self.frames: Iterator[SourceFrame] | None = None if self.live_frames else iter(frames)
        self.outputs, self.summary, self.rate = outputs, summary, rate
        self.segments = segments or SegmentTracker(stream)
        self.timeout = timeout
        self.done = False
        self._quiet_since = time.monotonic()

    def take(
        self, keep: Callable[[SourceFrame], bool]
    ) -> tuple[list[SourceFrame], SourceFrame | None]:
        """The frames that arrived since the last call and the newest sampled one among them
        (the one to classify); ``([], None)`` when none is ready. Sets :attr:`done` at the end
        of the source or when it fails."""
        batch = self._next()
        picked = [f for f in batch if keep(f)]
        self.summary.sampled += len(picked)
        for frame in picked[:-1]:  # behind a live source: only the newest is classified
            self.summary.dropped += 1
            self.outputs.emit(
                event(
                    "dropped",
                    self.stream,
                    frame=frame.index,
                    time=None if frame.time is None else round(frame.time, 3),
                    count=self.summary.dropped,
                    reason="behind",
                )
            )
        return batch, (picked[-1] if picked else None)

    def _next(self) -> list[SourceFrame]:
        try:
            if self.frames is not None:
                return [next(self.frames)]
            batch = self.live_frames.poll(POLL_S)
        except StopIteration:
            batch = None
        except Exception as err:
            self._failed(err)
            return []
        if batch is None:
            self._end()
            return []
        if batch:
            self._quiet_since = time.monotonic()
        elif self.timeout is not None and time.monotonic() - self._quiet_since > self.timeout:
            self._end(stall_message(self.timeout))
        return batch

    def _failed(self, err: Exception) -> None:
        if self.summary.live and _is_exit(err):  # FFmpeg gave up waiting: the stream went quiet
            self._end(stall_message(self.timeout or 0))
        else:
            self.summary.status, self.summary.error, self.done = "error", error_text(err), True
            self.summary.errors += 1
            self.outputs.emit(event("error", self.stream, kind="source", message=error_text(err)))

    def _end(self, note: str | None = None) -> None:
        self.summary.status, self.summary.note, self.done = "end", note, True

    def write(
        self,
        batch: list[SourceFrame],
        newest: SourceFrame | None,
        pred: Prediction | None,
        classes: list[str],
    ) -> None:
        """Emit ``pred`` (the prediction of ``newest``) and write the batch's frames in order,
        each with the labels of the latest prediction up to it."""
        for frame in batch:
            if frame is newest and pred is not None:
                self._emit(pred, classes)
            if self.outputs.writer is not None:
                self.outputs.writer.write(frame.frame)
            self.summary.frames += 1
            self.summary.last_index, self.summary.last_time = frame.index, frame.time

    def _emit(self, pred: Prediction, classes: list[str]) -> None:
        s, out = self.summary, self.outputs
        s.classified += 1
        s.step_ms.append(pred.latency_ms)
        top = pred.top(classes, out.labels)
        out.emit(frame_record(pred, classes, out.labels))
        for record in self.segments.update(top[0][0], top[0][1], pred.time):
            out.emit(record)
        if out.writer is not None:
            out.writer.set_lines([f"{name}  {p:.2f}" for name, p in top])
        if out.on_prediction is not None:
            out.on_prediction(pred, s)

    def finish(self) -> None:
        """Close the open segment, the annotated video and the events (in that order)."""
        s = self.summary
        if s.last_time is not None:
            s.end_time = s.last_time + 1.0 / self.rate
        last = self.segments.finish(s.end_time)
        s.segments = self.segments.done
        try:
            if self.outputs.writer is not None:
                self.outputs.writer.close()
        finally:
            for record in last:
                self.outputs.emit(record)
            self.outputs.emit(s.end_event())
            if self.outputs.events is not None:
                self.outputs.events.close()


def _is_exit(err: Exception) -> bool:
    """FFmpeg's AVERROR_EXIT ("Immediate exit requested"): its interrupt callback gave up on a
    read that waited longer than the open timeout."""
    return getattr(err, "errno", None) == 1414092869 or "Immediate exit requested" in str(err)


def run_sources(recognizer: MultiStreamRecognizer, runs: list[SourceRun], stop=None) -> None:
    """Classify every source's sampled frames, one batched step per round, until all end.

    Args:
        recognizer: The model; each run's stream is opened here and closed at its end.
        runs: The sources.
        stop: A :class:`~rrn.runtime.signals.StopRequest` (or anything with ``requested``):
            once requested (Ctrl-C, SIGTERM), every source ends after the frames in hand.

    Ctrl-C (``KeyboardInterrupt``), ``stop`` and a failing source end the loop or that source
    (status ``interrupted`` / ``error``); every output is then closed and valid. An error of
    the model or of an output is raised, after the outputs are closed.
    """
    for run in runs:
        recognizer.open(run.stream, run.rate)
    start = time.perf_counter()
    try:
        _rounds(recognizer, runs, stop, start)
    except KeyboardInterrupt:
        _interrupt(runs)
    finally:
        with closing(stop):
            for run in runs:
                run.summary.wall = time.perf_counter() - start
                recognizer.close(run.stream)
                run.finish()


def _rounds(recognizer: MultiStreamRecognizer, runs: list[SourceRun], stop, start: float) -> None:
    active = list(runs)
    while active:
        taken = [
            (run, *run.take(lambda f, r=run: recognizer.keep(r.stream, f.index, f.time)))
            for run in active
        ]
        ready = [
            StreamFrame(run.stream, newest.frame, newest.index, newest.time)
            for run, _, newest in taken
            if newest is not None
        ]
        preds = recognizer.step(ready) if ready else {}
        for run, batch, newest in taken:
            run.write(batch, newest, preds.get(run.stream), recognizer.classes)
            run.summary.wall = time.perf_counter() - start
        active = [run for run in active if not run.done]
        if stop is not None and stop.requested:
            _interrupt(active)
            return


def _interrupt(runs: list[SourceRun]) -> None:
    for run in runs:
        if not run.done:
            run.summary.status, run.done = "interrupted", True


def closing(stop):
    """While the outputs close, a second Ctrl-C must not cut their last records (``stop``'s
    :meth:`~rrn.runtime.signals.StopRequest.closing`; nothing without one)."""
    return stop.closing() if hasattr(stop, "closing") else contextlib.nullcontext()

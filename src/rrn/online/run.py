"""The run loop: one or many sources through one batched model step, and their outputs.

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
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rrn.data.decode import error_text
from rrn.online.events import EventLog, SegmentTracker, frame_record
from rrn.online.recognizer import MultiStreamRecognizer, Prediction, StreamFrame
from rrn.online.render import AnnotatedWriter
from rrn.online.sources import LiveFrames, SourceFrame, SourceSpec

logger = logging.getLogger(__name__)

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

    def emit(self, record_type: str, record: dict) -> None:
        if self.events is not None:
            self.events.write(record_type, **record)
        if self.on_event is not None:
            self.on_event({"type": record_type, **record})


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
        self.summary.dropped += max(0, len(picked) - 1)
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
        out.emit("frame", frame_record(pred, classes, out.labels))
        for record in self.segments.update(top[0][0], top[0][1], pred.time):
            out.emit("segment", record)
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
                self.outputs.emit("segment", record)
            self.outputs.emit("end", s.to_json())
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
        with _closing(stop):
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


def _closing(stop):
    """While the outputs close, a second Ctrl-C must not cut their last records (``stop``'s
    :meth:`~rrn.runtime.signals.StopRequest.closing`; nothing without one)."""
    return stop.closing() if hasattr(stop, "closing") else contextlib.nullcontext()


# ------------------------------------------------------------------ opening sources
def stream_names(sources: list[str]) -> list[str]:
    """A short, unique, file-name-safe name per source: the file's stem, ``camera0``, or the
    URL's host and path; a repeated name gets ``-2``, ``-3``..."""
    import re
    from pathlib import PurePath
    from urllib.parse import urlparse

    names, seen = [], {}
    for source in sources:
        url = urlparse(source)
        if url.scheme and url.netloc:
            base = f"{url.hostname or 'stream'}{url.path}"
        elif source.startswith(("/dev/video", "camera:")):
            base = "camera" + re.sub(r"\D", "", source)
        else:
            base = PurePath(source).stem
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "stream"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def check_outputs(specs: list[SourceSpec], out: str | None, json_path: str | None) -> None:
    """Refuse outputs that would overwrite a source or each other, and unwritable ones.

    With several sources ``out`` is a folder (one annotated video and one events file per
    source); with one, the annotated video's file.

    Raises:
        ValueError: an output is a source, or both outputs are one file.
        OSError: an output's folder cannot be written.
    """
    from pathlib import Path

    from rrn.files import check_writable

    if out and len(specs) > 1:
        if Path(out).exists() and not Path(out).is_dir():
            raise ValueError(
                f"--out {out} is a file; with several sources --out names a folder "
                "for one annotated video and one events file per source"
            )
        check_writable(out, "--out")
        out = None  # the per-source files are new names inside a folder just checked
    given = [(flag, Path(p)) for flag, p in (("--out", out), ("--json", json_path)) if p]
    if len(given) == 2 and given[0][1].resolve() == given[1][1].resolve():
        raise ValueError(f"--out and --json are the same file ({out}); give each its own")
    for flag, path in given:
        for spec in specs:
            if spec.kind == "file" and path.resolve() == Path(spec.target).resolve():
                raise ValueError(
                    f"{flag} {path} is the source video {spec.name}: it would be "
                    "overwritten; write elsewhere"
                )
        check_writable(path.parent, flag)  # before the stream is opened, not at its first frame


@dataclass
class _Opened:
    spec: SourceSpec
    container: object
    live: LiveFrames | None
    run: SourceRun


def stream_sources(
    model,
    sources: list[str],
    config,
    *,
    sampling=None,
    on_prediction=None,
    on_event=None,
    stop=None,
) -> list[StreamSummary]:
    """Open ``sources`` and classify them online with ``model``, batched (``rrn stream``).

    Args:
        model: From :func:`rrn.load_model`.
        sources: Files, cameras or URLs (:func:`~rrn.online.sources.parse_source`).
        config: A :class:`~rrn.config.StreamConfig` (outputs, smoothing, realtime, timeout,
            segment threshold and minimum duration).
        sampling: Which frames to classify (default: the model's training sampling).
        on_prediction: Called after each classified frame with (prediction, summary).
        on_event: Called with every event record, of every source.
        stop: Ends every stream once requested (a :class:`~rrn.runtime.signals.StopRequest`).

    Returns:
        One :class:`StreamSummary` per source, in order; ``status`` is ``end``,
        ``interrupted`` or ``error``. The outputs are complete and valid in every case.

    Raises:
        SourceError: a source cannot be opened (one line: which and why); nothing is written.
    """
    from rrn.online.engines import engine_for
    from rrn.online.sources import parse_source

    specs = [parse_source(s) for s in sources]
    check_outputs(specs, config.out, config.json)
    recognizer = MultiStreamRecognizer(
        model, sampling, config.smooth, engine=engine_for(model, config)
    )
    shared = _open_log(config.json) if config.json and len(specs) > 1 else None
    opened: list[_Opened] = []
    try:
        for name, spec in zip(stream_names(sources), specs):
            opened.append(
                _open(
                    spec,
                    name,
                    config,
                    len(specs) > 1,
                    recognizer,
                    on_prediction=on_prediction,
                    on_event=_chain(on_event, shared),
                )
            )
        run_sources(recognizer, [o.run for o in opened], stop)
        return [o.run.summary for o in opened]
    finally:
        with _closing(stop):
            # a reader thread still inside FFmpeg must not see its container closed
            for o in opened:
                if o.live is None or o.live.close():
                    o.container.close()
            if shared is not None:
                shared.close()


def _chain(on_event, shared: EventLog | None):
    if shared is None:
        return on_event

    def both(record: dict) -> None:
        shared.write(record["type"], **{k: v for k, v in record.items() if k != "type"})
        if on_event is not None:
            on_event(record)

    return both


def _open_log(path) -> EventLog:
    try:
        return EventLog(path)
    except OSError as err:
        raise OSError(f"cannot write {path} ({err.strerror or err})") from None


def _open(
    spec: SourceSpec, name: str, config, many: bool, recognizer, *, on_prediction, on_event
) -> _Opened:
    """Open one source and its outputs; its ``start`` event is emitted here."""
    from pathlib import Path

    from rrn.data.decode import stream_rate
    from rrn.online.sources import open_source, read_frames

    container, video = open_source(spec, config.timeout)
    rate = stream_rate(video)
    frames = read_frames(container, video, config.realtime and not spec.live, spec.name)
    live = LiveFrames(frames) if config.realtime else None
    video_path = Path(config.out) / f"{name}.mp4" if many and config.out else config.out
    events_path = (
        Path(config.out) / f"{name}.events.jsonl"
        if many and config.out
        else (None if many else config.json)
    )
    outputs = Outputs(
        labels=config.labels,
        on_prediction=on_prediction,
        on_event=on_event,
        writer=AnnotatedWriter(video_path, rate) if video_path else None,
    )
    if events_path:
        outputs.events = _open_log(events_path)
    summary = StreamSummary(spec.name, name, spec.live)
    segments = SegmentTracker(name, config.threshold, config.min_segment)
    run = SourceRun(
        name,
        live if live is not None else frames,
        outputs,
        summary,
        rate=rate,
        segments=segments,
        timeout=config.timeout if spec.live else None,
    )
    outputs.emit("start", _start_record(recognizer, spec, name, rate, config))
    return _Opened(spec, container, live, run)


def _start_record(
    recognizer: MultiStreamRecognizer, spec: SourceSpec, name: str, rate: float, config
) -> dict:
    model = recognizer.model
    return {
        "stream": name,
        "source": spec.name,
        "kind": spec.kind,
        "rate": round(rate, 3),
        "checkpoint": str(getattr(model, "checkpoint", None)),
        "classes": recognizer.classes,
        "sampling": recognizer.sampling.describe(),
        "context": model.temporal_context,
        "smooth": recognizer.smooth,
        "realtime": config.realtime,
        "threshold": config.threshold,
        "min_segment": config.min_segment,
    }


def stream_source(model, source: str, config, **kwargs) -> StreamSummary:
    """:func:`stream_sources` for one source; returns its summary."""
    return stream_sources(model, [source], config, **kwargs)[0]

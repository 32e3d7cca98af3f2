"""One live stream of ``rrn serve``: frames in, events out, state freed at its end.

A :class:`StreamSession` belongs to one WebSocket. It keeps frames at the model's sampling
interval by capture time (:class:`~rrn.serve.frames.CaptureSampler`), decodes and resizes only
those (in one of the service's decoding workers, one frame of the stream at a time), hands them
to the service's :class:`~rrn.online.batcher.MicroBatcher` (one batched step for every
stream's ready frame) and sends the events of :mod:`rrn.online.events`, each with ``stream``.
Whatever one client sends (malformed bytes, absurd capture times, too many frames, a huge or
elongated image, a decoding bomb, deeply nested JSON) ends in an ``error`` or a ``dropped`` for
its own stream; no other stream is touched.

Frames are limited twice: at most ``max_fps`` messages a second, and at most twice the
sampling rate of *sampled* frames a second (``dropped`` with reason ``pace``): capture times
that run ahead of the clock would otherwise make every frame a sampled one to decode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rrn.online.batcher import Dropped
from rrn.online.events import SegmentTracker, background_name, event, frame_record
from rrn.online.recognizer import Prediction, StreamFrame
from rrn.online.run import percentile
from rrn.serve.frames import CaptureSampler, FrameError, parse_frame, prepare_image

logger = logging.getLogger(__name__)

MAX_TEXT = 1024
"""Characters of a text message (``{"type": "end"}`` is 15)."""


@dataclass
class SessionCounts:
    """What happened on one stream."""

    received: int = 0
    """Frame messages received."""
    skipped: int = 0
    """Frames between two sampled ones (the sampling interval), not decoded."""
    sampled: int = 0
    classified: int = 0
    dropped: int = 0
    """Sampled frames replaced by a newer one, or over the rate limit."""
    errors: int = 0
    e2e_ms: list[float] = field(default_factory=list)
    """Receipt of a frame to its ``frame`` event sent, per classified frame."""


class RateLimit:
    """At most ``per_second`` events in any one-second window (a token bucket)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.clock = per_second, clock
        self.tokens, self.last = per_second, clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class StreamSession:
    """The events of one stream (see the module docstring).

    Args:
        service: The :class:`~rrn.serve.service.Service` (recognizer, batcher, limits, metrics).
        stream_id: The client's id for the stream.
        send: Sends one event (a dict) to the client.
    """

    def __init__(self, service, stream_id: str, send: Callable[[dict], Awaitable[None]]):
        self.service, self.id, self._send = service, stream_id, send
        self.sampler = CaptureSampler(service.interval, service.limits.max_time_gap)
        self.segments = SegmentTracker(
            stream_id,
            service.events.threshold,
            service.events.min_segment,
            background=background_name(service.classes),
        )
        self.rate = RateLimit(service.config.max_fps)
        self.pace = RateLimit(2 / service.interval)
        self.size: tuple[int, int] | None = None
        """(H, W) the stream's frames are resized to, fixed by its first frame."""
        self.counts = SessionCounts()
        self.last_time = 0.0
        self.ended = False
        self._pending: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()
        self.close_socket: Callable[[], Awaitable[None]] | None = None
        """Closes the client's connection (set by the route)."""

    async def send(self, record_type: str, **fields) -> None:
        """One event of this stream to the client (built and checked by
        :func:`rrn.online.events.event`; serialised: events of a stream never interleave)."""
        await self.send_event(event(record_type, self.id, **fields))

    async def send_event(self, record: dict) -> None:
        async with self._lock:
            await self._send(record)

    async def start(self) -> None:
        self.service.batcher.open(self.id)
        await self.send("start", **self.service.start_fields())

    async def frame(self, message: bytes) -> None:
        """A binary message: a frame (see :mod:`rrn.serve.frames`)."""
        received = time.perf_counter()
        metrics, c = self.service.metrics, self.counts
        metrics.frames_received.inc()
        index, c.received = c.received, c.received + 1
        if not self.rate.allow():
            await self._dropped(index, "rate", self.service.config.max_fps)
            return
        try:
            t, data = parse_frame(message, self.service.limits)
            if not self.sampler.keep(t):
                c.skipped += 1
                metrics.frames_skipped.inc()
                return
            if not self.pace.allow():
                await self._dropped(index, "pace", self.pace.rate)
                return
            image = await self.service.decode(
                prepare_image,
                data,
                self.service.limits,
                self.service.recognizer.sampling.short_side,
                self.size,
            )
        except FrameError as err:
            await self.error("frame", f"frame {index}: {err}")
            return
        self.size = self.size or image.shape[:2]
        c.sampled += 1
        self.last_time = t
        future = self.service.batcher.submit(StreamFrame(self.id, image, index, t))
        task = asyncio.create_task(self._answer(future, received))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _dropped(self, index: int, reason: str, limit_fps: float) -> None:
        self.counts.dropped += 1
        self.service.metrics.frames_dropped.inc()
        await self.send(
            "dropped",
            frame=index,
            count=self.counts.dropped,
            reason=reason,
            limit_fps=round(limit_fps, 3),
        )

    async def _answer(self, future, received: float) -> None:
        try:
            result = await asyncio.wrap_future(future)
        except Exception as err:
            await self.error("model", f"the model step failed: {type(err).__name__}: {err}")
            return
        if isinstance(result, Dropped):
            if result.reason == "replaced":
                self.counts.dropped += 1
                self.service.metrics.frames_dropped.inc()
                await self.send(
                    "dropped", frame=result.index, count=self.counts.dropped, reason="replaced"
                )
            return
        await self._prediction(result, received)

    async def _prediction(self, pred: Prediction, received: float) -> None:
        c, classes, labels = self.counts, self.service.classes, self.service.events.labels
        c.classified += 1
        top = pred.top(classes, 1)[0]
        records = self.segments.update(top[0], top[1], pred.time)
        e2e = (time.perf_counter() - received) * 1000
        c.e2e_ms.append(e2e)
        await self.send_event(
            frame_record(pred, classes, labels, batch=pred.batch, server_ms=round(e2e, 2))
        )
        for segment in records:
            await self.send_event(segment)

    async def text(self, message: str) -> bool:
        """A text message; returns True when it ends the stream (``{"type": "end"}``)."""
        import json

        kind = None
        if len(message) <= MAX_TEXT:
            try:
                kind = json.loads(message).get("type")
            except (ValueError, AttributeError, RecursionError):
                pass
        if kind == "end":
            return True
        await self.error(
            "message",
            'text messages are {"type": "end"} (at most '
            f"{MAX_TEXT} characters); frames are binary: an 8-byte little-endian float64 "
            "capture time, then JPEG or PNG bytes",
        )
        return False

    async def error(self, kind: str, message: str) -> None:
        self.counts.errors += 1
        self.service.metrics.errors.labels(kind).inc()
        await self.send("error", kind=kind, message=message)

    async def end(self, reason: str, *, notify: bool = True) -> None:
        """Close the stream: wait for its frames in flight, free its state and its id (a client
        may reconnect with it as soon as ``end`` arrives), close its open segment, and
        (``notify``) send ``end`` with its summary."""
        if self.ended:
            return
        self.ended = True
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=10)
        self.service.release(self)
        # the last frame stands for one interval, as a segment closed mid-stream ends at the
        # next sampled frame (rrn stream and rrn eval end the open one there too)
        last = self.segments.finish(self.last_time + self.service.interval)
        if notify:
            for segment in last:
                await self.send_event(segment)
            await self.send("end", reason=reason, status="end", **self.summary())

    def summary(self) -> dict:
        c = self.counts
        e2e = sorted(c.e2e_ms)
        return {
            "received": c.received,
            "skipped": c.skipped,
            "sampled": c.sampled,
            "classified": c.classified,
            "dropped": c.dropped,
            "errors": c.errors,
            "latency_ms_p50": _round(percentile(e2e, 50)),
            "latency_ms_p95": _round(percentile(e2e, 95)),
            "segments": len(self.segments.done),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)

"""A micro-batcher in front of :class:`~rrn.online.recognizer.MultiStreamRecognizer`.

Producers (one reader per source, one WebSocket per client) :meth:`~MicroBatcher.submit` a
stream's newest frame and get a :class:`~concurrent.futures.Future`; one worker thread
collects the waiting frames, at most one per stream, and steps them in ONE batched call. When a
stream's previous frame is still waiting, the newer frame replaces it (latest frame wins: a
live view wants the present, not a backlog); the replaced frame's future resolves to
:class:`Dropped`. After the first frame of a batch arrives the worker waits at most
``max_wait_ms`` for more, unless ``max_batch`` frames are already there. From asyncio, await a
future with ``asyncio.wrap_future``.

Opening and closing a stream never wait for a step: they are recorded at once and applied by
the worker, in order, before its next step (an event loop calling them is never blocked by a
slow batch). A step that fails for a batch of several streams is retried for each stream alone,
so a frame that breaks the step costs only its own stream an error; the states of the others
are exact, since a state changes only when its step succeeds.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from rrn.online.recognizer import MultiStreamRecognizer, Prediction, StreamFrame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dropped:
    """A submitted frame that was not classified."""

    stream: str
    index: int
    time: float
    reason: str
    """``replaced`` (a newer frame of the stream came first), ``closed`` (the stream ended
    first) or ``shutdown`` (the batcher closed)."""


@dataclass
class BatcherStats:
    """Counters since the start (a snapshot: plain numbers)."""

    received: int = 0
    classified: int = 0
    dropped: int = 0
    batches: int = 0
    batch_sizes: tuple[int, ...] = ()
    """Size of each of the last (at most 10,000) batches."""
    step_ms: tuple[float, ...] = ()
    """Duration of each of the last (at most 10,000) batched steps."""


class MicroBatcher:
    """Steps the waiting frames of many streams together (see the module docstring).

    Args:
        recognizer: Owns the per-stream states; only the batcher's worker steps it, and
            :meth:`open`/:meth:`close` are serialised with the steps.
        max_batch: Streams stepped in one call at most.
        max_wait_ms: How long the first waiting frame may wait for others to join its batch.
        on_step: Called after each step with (batch size, seconds), e.g. for metrics.
    """

    def __init__(
        self,
        recognizer: MultiStreamRecognizer,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        on_step=None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_step = on_step
        self._pending: dict[str, tuple[StreamFrame, Future]] = {}  # insertion order = age
        self._open: set[str] = set()
        """Streams open for producers; the recognizer follows through :attr:`_ops`."""
        self._since: dict[str, float] = {}
        """When each stream's waiting frame slot was filled (kept when a newer frame replaces
        it): how long the batcher has left a stream waiting."""
        self._step_started: float | None = None
        self._ops: list[tuple[str, str, float]] = []
        """(``"open"`` | ``"close"``, stream id, base rate), applied by the worker in order."""
        self._cond = threading.Condition()
        self._model_lock = threading.Lock()
        self._closed = False
        self._counts = {"received": 0, "classified": 0, "dropped": 0, "batches": 0}
        self._sizes: deque[int] = deque(maxlen=10_000)
        self._step_ms: deque[float] = deque(maxlen=10_000)
        self._thread = threading.Thread(target=self._work, name="rrn-batcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ streams
    def open(self, stream_id: str, base_rate: float = 25.0) -> None:
        """Open a stream (zero state) without waiting for a step in progress.

        Raises:
            KeyError: the id is open already.
        """
        with self._cond:
            if stream_id in self._open:
                raise KeyError(f"stream {stream_id!r} is already open")
            self._open.add(stream_id)
            self._ops.append(("open", stream_id, base_rate))
            self._cond.notify()

    def close(self, stream_id: str) -> bool:
        """End a stream without waiting for a step in progress: a frame of it still waiting
        resolves to ``Dropped(reason="closed")``, its state is freed before the next step.
        Returns whether it was open."""
        with self._cond:
            if stream_id not in self._open:
                return False
            self._open.discard(stream_id)
            waiting = self._pending.pop(stream_id, None)
            self._since.pop(stream_id, None)
            self._ops.append(("close", stream_id, 0.0))
            self._cond.notify()
        if waiting is not None:
            self._drop(waiting, "closed")
        return True

    @property
    def open_streams(self) -> int:
        """Streams open now."""
        with self._cond:
            return len(self._open)

    def expire(self) -> list[str]:
        """Close the streams idle past the recognizer's ``idle_timeout``; returns their ids."""
        with self._model_lock:
            self._apply_ops()
            idle = self.recognizer.expire()
        for stream_id in idle:
            self.close(stream_id)
        return idle

    def _apply_ops(self) -> None:
        """Bring the recognizer's streams up to the opens and closes recorded (model lock held)."""
        with self._cond:
            ops, self._ops = self._ops, []
        for op, stream_id, base_rate in ops:
            if op == "close":
                self.recognizer.close(stream_id)
            else:
                self.recognizer.close(stream_id)  # expired by the recognizer, reopened since
                self.recognizer.open(stream_id, base_rate)

    # ------------------------------------------------------------------ frames
    def submit(self, frame: StreamFrame) -> Future:
        """Queue a stream's frame; the future resolves to its :class:`Prediction` or to
        :class:`Dropped`, or raises what the step raised.

        Raises:
            RuntimeError: the batcher is closed.
        """
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._counts["received"] += 1
            if frame.stream not in self._open:
                self._counts["dropped"] += 1
                future.set_result(Dropped(frame.stream, frame.index, frame.time, "closed"))
                return future
            replaced = self._pending.get(frame.stream)
            self._pending[frame.stream] = (frame, future)  # an existing key keeps its place
            self._since.setdefault(frame.stream, time.monotonic())
            self._cond.notify()
        if replaced is not None:
            self._drop(replaced, "replaced")
        return future

    def _drop(self, item: tuple[StreamFrame, Future], reason: str) -> None:
        frame, future = item
        with self._cond:
            self._counts["dropped"] += 1
        future.set_result(Dropped(frame.stream, frame.index, frame.time, reason))

    def _take(self) -> list[tuple[StreamFrame, Future]] | None:
        """The next batch (oldest first), waiting as the module docstring says; None at close."""
        with self._cond:
            while not self._pending and not self._ops and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            deadline = time.monotonic() + self.max_wait
            while len(self._pending) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            ids = list(self._pending)[: self.max_batch]
            for i in ids:
                self._since.pop(i, None)
            self._step_started = time.monotonic() if ids else None
            return [self._pending.pop(i) for i in ids]  # may be empty: only opens and closes

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            start = time.perf_counter()
            with self._model_lock:
                self._apply_ops()
                if not batch:
                    continue
                outcomes = self._step(batch)
            seconds = time.perf_counter() - start
            self._step_started = None
            stepped = sum(not isinstance(o, BaseException) for o in outcomes)
            with self._cond:
                self._counts["classified"] += stepped
                self._counts["batches"] += 1
                self._sizes.append(len(batch))
                self._step_ms.append(seconds * 1000)
            if self.on_step is not None and stepped:
                self.on_step(stepped, seconds)
            for (_, future), outcome in zip(batch, outcomes):
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _step(self, batch: list[tuple[StreamFrame, Future]]) -> list:
        """Each frame's :class:`Prediction`, or the exception its step raised (model lock held).

        A failing batch of several streams is stepped again one stream at a time: only the
        streams whose own step fails get the exception.
        """
        frames = [frame for frame, _ in batch]
        try:
            out = self.recognizer.step(frames)
            return [out[f.stream] for f in frames]
        except Exception as err:  # handed to the waiting producers
            if len(frames) == 1:
                logger.warning("the step of stream %r failed: %s", frames[0].stream, err)
                return [err]
            logger.warning(
                "a batched step of %d streams failed (%s); stepping each alone", len(frames), err
            )
        outcomes = []
        for frame in frames:
            try:
                outcomes.append(self.recognizer.step([frame])[frame.stream])
            except Exception as err:  # this stream's own failure
                logger.warning("the step of stream %r failed: %s", frame.stream, err)
                outcomes.append(err)
        return outcomes

    # ------------------------------------------------------------------ the end
    def stalled_for(self) -> float:
        """Seconds the batcher has kept work waiting: the age of the oldest frame not yet taken
        into a step, or how long the step in progress has run (0 when idle or keeping up).
        Infinite when its worker is gone."""
        if not self._thread.is_alive():
            return math.inf
        now = time.monotonic()
        with self._cond:
            started = self._step_started
            oldest = min(self._since.values(), default=now)
        return max(now - oldest, now - started if started is not None else 0.0)

    def stats(self) -> BatcherStats:
        """Counters since the start."""
        with self._cond:
            return BatcherStats(
                **self._counts, batch_sizes=tuple(self._sizes), step_ms=tuple(self._step_ms)
            )

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop the worker after the step in hand; waiting frames resolve to ``shutdown``."""
        with self._cond:
            self._closed = True
            waiting = list(self._pending.values())
            self._pending.clear()
            self._cond.notify_all()
        for item in waiting:
            self._drop(item, "shutdown")
        if threading.current_thread() is not self._thread:
            self._thread.join(wait)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


__all__ = ["BatcherStats", "Dropped", "MicroBatcher", "Prediction"]

"""What one ``rrn serve`` process holds: the model, one micro-batcher shared by every stream,
the open streams, the workers that decode frames and classify uploads, the limits, the metrics,
and what ``/healthz`` says of them."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rrn.online.batcher import MicroBatcher
from rrn.online.engines import engine_for
from rrn.online.events import background_name, checkpoint_name, start_fields
from rrn.online.recognizer import MultiStreamRecognizer, interval_seconds
from rrn.serve.frames import FrameLimits
from rrn.serve.metrics import Metrics

logger = logging.getLogger(__name__)

STALL_S = 10.0
"""Seconds of work left waiting (a frame not taken into a step, a step still running, a frame
waiting for a decoding worker) after which ``/healthz`` says the service cannot classify."""
RECEIVING = 4
"""Uploads whose bodies may be arriving at once (each goes to a temporary file first)."""


class Service:
    """The state behind the routes of :func:`rrn.serve.app.create_app`.

    Args:
        model: From :func:`rrn.load_model`.
        config: A :class:`~rrn.config.ServeConfig`.
        events: A :class:`~rrn.config.StreamConfig`: labels per frame, smoothing, segments;
            the engine of the step and its threads.
    """

    def __init__(self, model, config, events=None):
        from rrn.config import StreamConfig
        from rrn.runtime.workers import resolve_workers

        self.model, self.config = model, config
        self.events = events or StreamConfig()
        self.metrics = Metrics()
        self.recognizer = MultiStreamRecognizer(
            model, smooth=self.events.smooth, engine=engine_for(model, self.events)
        )
        self.batcher = MicroBatcher(
            self.recognizer,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            on_step=self.metrics.observe_step,
        )
        self.classes = self.recognizer.classes
        self.interval = interval_seconds(self.recognizer.sampling, config.source_fps)
        self.limits = FrameLimits(
            max_bytes=config.max_frame_bytes,
            max_pixels=config.max_pixels,
            max_aspect=config.max_aspect,
            max_time_gap=config.max_time_gap,
        )
        self.sessions: dict = {}
        """Open streams by id; an id leaves it exactly once, before its ``end`` is sent."""
        self.decode_workers = resolve_workers(config.decode_workers)
        self._decoder = ThreadPoolExecutor(self.decode_workers, thread_name_prefix="rrn-decode")
        self._decoding: dict[int, float] = {}  # job -> when it was queued
        self._jobs = 0
        self.uploads = ThreadPoolExecutor(1, thread_name_prefix="rrn-predict")
        self.receiving = asyncio.Semaphore(RECEIVING)
        self.predict_slots = threading.BoundedSemaphore(1)
        self.stopping = threading.Event()
        """Set at shutdown: an upload being classified stops at its next piece."""
        self._predictor = None
        self._predictor_lock = threading.Lock()
        self.stall_s = STALL_S

    # ------------------------------------------------------------------ workers
    async def decode(self, fn: Callable, *args):
        """``fn(*args)`` in a decoding worker (a stream awaits one frame at a time, so no
        stream holds more than one worker; the queue is first come, first served)."""
        job, self._jobs = self._jobs, self._jobs + 1
        self._decoding[job] = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._decoder, fn, *args)
        finally:
            del self._decoding[job]

    def health(self) -> tuple[bool, dict]:
        """``/healthz``: whether frames are being classified, and what is waiting how long."""
        now = time.monotonic()
        batcher = self.batcher.stalled_for()
        decoding = now - min(self._decoding.values(), default=now)
        ok = batcher < self.stall_s and decoding < self.stall_s and not self.stopping.is_set()
        body = {
            "status": "ok" if ok else "unavailable",
            "open_streams": len(self.sessions),
            "batcher_waiting_s": round(batcher, 3) if batcher != float("inf") else None,
            "decoding_waiting_s": round(decoding, 3),
        }
        if not ok:
            body["reason"] = (
                "shutting down"
                if self.stopping.is_set()
                else "the model step has stopped"
                if batcher == float("inf")
                else f"work has waited over {self.stall_s:g} s: the service cannot keep up"
            )
        return ok, body

    # ------------------------------------------------------------------ streams
    def release(self, session) -> bool:
        """Free ``session``'s id (its model state is closed first). Only the first call for a
        session does anything; returns whether this one did."""
        if self.sessions.get(session.id) is not session:
            return False
        self.batcher.close(session.id)
        del self.sessions[session.id]
        self.metrics.open_streams.dec()
        return True

    # ------------------------------------------------------------------ describing
    def describe(self) -> dict:
        """``GET /v1/model``: what a client needs to know to send frames."""
        model, s, c = self.model, self.recognizer.sampling, self.config
        return {
            "classes": self.classes,
            "num_classes": len(self.classes),
            "background": background_name(self.classes),
            "arch": getattr(model, "arch", None),
            "skip_blocks": list(getattr(model, "skip_blocks", [])),
            "context": model.temporal_context,
            "frame_size": self.recognizer.frame_size,
            "sampling": {
                "description": s.describe(),
                "sample_every": s.sample_every,
                "fps": s.fps,
                "short_side": s.short_side,
                "interval_s": round(self.interval, 6),
                "source_fps": None if s.fps else c.source_fps,
            },
            "state_bytes_per_stream": self.recognizer.state_bytes,
            "engine": self.recognizer.engine.name,
            "smooth": self.recognizer.smooth,
            "checkpoint": checkpoint_name(getattr(model, "checkpoint", None)),
            "checkpoint_choice": getattr(model, "choice", None),
            "protocol": (
                "online: each classified frame's probabilities are those of the chunk "
                f"of its stream's last {model.temporal_context} sampled frames; "
                f"smoothed over the last {self.recognizer.smooth}"
            ),
            "limits": self._limits(),
            "batching": {"max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms},
        }

    def _limits(self) -> dict:
        c = self.config
        names = (
            "max_streams max_frame_bytes max_pixels max_aspect max_fps max_time_gap "
            "max_upload_mb max_upload_seconds max_upload_frames upload_timeout"
        )
        limits = {name: getattr(c, name) for name in names.split()}
        return {**limits, "idle_timeout_s": c.idle_timeout, "max_jpeg_scans": self.limits.max_scans}

    def start_fields(self) -> dict:
        """The ``start`` event's fields (:func:`rrn.online.events.start_fields`)."""
        return start_fields(self.model, self.recognizer, self.interval, self.events)

    def predictor(self):
        """The :class:`~rrn.predict.Predictor` of uploads (made at first use, on the model):
        no frame cache (an upload is never written into the training data's cache), decoded
        while the model runs."""
        from rrn.predict import Predictor

        with self._predictor_lock:
            if self._predictor is None:
                param = next(self.model.parameters())
                self._predictor = Predictor(
                    self.model.checkpoint, device=param.device, model=self.model, cache=False
                )
            return self._predictor

    def close(self) -> None:
        self.stopping.set()
        self.batcher.shutdown()
        self._decoder.shutdown(wait=False, cancel_futures=True)
        self.uploads.shutdown(wait=False, cancel_futures=True)

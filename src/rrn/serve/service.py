"""What one ``rrn serve`` process holds: the model, one micro-batcher shared by every stream,
the open streams, the limits and the metrics."""

from __future__ import annotations

import logging
import threading

from rrn.online.batcher import MicroBatcher
from rrn.online.recognizer import MultiStreamRecognizer, interval_seconds
from rrn.serve.frames import FrameLimits
from rrn.serve.metrics import Metrics

logger = logging.getLogger(__name__)


class Service:
    """The state behind the routes of :func:`rrn.serve.app.create_app`.

    Args:
        model: From :func:`rrn.load_model`.
        config: A :class:`~rrn.config.ServeConfig`.
        events: A :class:`~rrn.config.StreamConfig`: labels per frame, smoothing, segments.
    """

    def __init__(self, model, config, events=None):
        from rrn.config import StreamConfig

        self.model, self.config = model, config
        self.events = events or StreamConfig()
        self.metrics = Metrics()
        self.recognizer = MultiStreamRecognizer(model, smooth=self.events.smooth)
        self.batcher = MicroBatcher(
            self.recognizer,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            on_step=self.metrics.observe_step,
        )
        self.classes = self.recognizer.classes
        self.interval = interval_seconds(self.recognizer.sampling, config.source_fps)
        self.limits = FrameLimits(config.max_frame_bytes, config.max_pixels)
        self.sessions: dict = {}
        self.predict_slots = threading.BoundedSemaphore(1)
        self._predictor = None
        self._predictor_lock = threading.Lock()

    def describe(self) -> dict:
        """``GET /v1/model``: what a client needs to know to send frames."""
        model, s = self.model, self.recognizer.sampling
        c = self.config
        return {
            "classes": self.classes,
            "num_classes": len(self.classes),
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
            "smooth": self.recognizer.smooth,
            "checkpoint": str(getattr(model, "checkpoint", None)),
            "checkpoint_choice": getattr(model, "choice", None),
            "protocol": (
                "online: each classified frame's probabilities are those of the chunk "
                f"of its stream's last {model.temporal_context} sampled frames; "
                f"smoothed over the last {self.recognizer.smooth}"
            ),
            "limits": {
                "max_streams": c.max_streams,
                "max_frame_bytes": c.max_frame_bytes,
                "max_pixels": c.max_pixels,
                "max_fps": c.max_fps,
                "max_upload_mb": c.max_upload_mb,
                "idle_timeout_s": c.idle_timeout,
            },
            "batching": {"max_batch": c.max_batch, "max_wait_ms": c.max_wait_ms},
        }

    def start_record(self) -> dict:
        """The ``start`` event's content (without ``type`` and ``stream``)."""
        d = self.describe()
        return {
            "classes": d["classes"],
            "sampling": d["sampling"]["description"],
            "interval_s": d["sampling"]["interval_s"],
            "context": d["context"],
            "smooth": d["smooth"],
            "checkpoint": d["checkpoint"],
            "threshold": self.events.threshold,
            "min_segment": self.events.min_segment,
        }

    def predictor(self):
        """The :class:`~rrn.predict.Predictor` of uploads (made at first use, on the model)."""
        from rrn.predict import Predictor

        with self._predictor_lock:
            if self._predictor is None:
                param = next(self.model.parameters())
                self._predictor = Predictor(
                    self.model.checkpoint, device=param.device, model=self.model
                )
            return self._predictor

    def close(self) -> None:
        self.batcher.shutdown()

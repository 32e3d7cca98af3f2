"""The service's Prometheus metrics, in a registry of its own (one per app, so two apps in one
process, e.g. tests, do not share counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """Counters, gauges and histograms of one service."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.open_streams = Gauge("rrn_open_streams", "Streams connected now", registry=r)
        self.streams = Counter("rrn_streams", "Streams opened since the start", registry=r)
        self.frames_received = Counter("rrn_frames_received", "Frame messages received", registry=r)
        self.frames_skipped = Counter(
            "rrn_frames_skipped",
            "Frames received between two sampled ones (not classified "
            "by design: the model's sampling interval)",
            registry=r,
        )
        self.frames_classified = Counter(
            "rrn_frames_classified", "Frames the model stepped on", registry=r
        )
        self.frames_dropped = Counter(
            "rrn_frames_dropped",
            "Sampled frames replaced by a newer one before the model got "
            "to them (latest frame wins) or over the per-stream rate limit",
            registry=r,
        )
        self.errors = Counter("rrn_errors", "Error messages sent to clients", ["kind"], registry=r)
        self.batch_size = Histogram(
            "rrn_batch_size",
            "Streams stepped in one batched call",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "rrn_step_seconds",
            "Seconds of one batched model step",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter("rrn_predictions", "Uploaded videos classified", registry=r)
        self.classifying = Gauge(
            "rrn_uploads_classifying", "Uploaded videos being classified now", registry=r
        )

    def observe_step(self, size: int, seconds: float) -> None:
        """One batched step of ``size`` streams took ``seconds``."""
        self.batch_size.observe(size)
        self.step_seconds.observe(seconds)
        self.frames_classified.inc(size)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

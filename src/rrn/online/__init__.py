"""Online recognition: a trained RRN on live video, frame by frame, for one stream or many.

* :mod:`~rrn.online.sources`: open a file, camera or network stream and read its frames;
* :mod:`~rrn.online.recognizer`: per-stream state and ONE batched model step for many
  streams (:class:`MultiStreamRecognizer`); :class:`Recognizer` for one;
* :mod:`~rrn.online.batcher`: a micro-batcher (``max_batch``, ``max_wait_ms``, latest frame
  wins) for producers that run concurrently, such as a service's clients;
* :mod:`~rrn.online.events`: the one events schema of ``rrn stream`` and ``rrn serve``
  (``start``, ``frame``, ``segment``, ``dropped``, ``error``, ``end``, built by
  :func:`~rrn.online.events.event`) and the action segments (start/update/end);
* :mod:`~rrn.online.render`: the overlay and the annotated video;
* :mod:`~rrn.online.loop`: the round loop over one or many sources, one batched step a round;
* :mod:`~rrn.online.run`: opening the sources and their outputs (what ``rrn stream`` runs).

A frame's logits are the chunk prediction of its stream's frames ``n-T+1..n``: row ``n`` of
``forward_video`` over the whole video, whether the stream runs alone or batched with others.
"""

from rrn.online.batcher import BatcherStats, Dropped, MicroBatcher
from rrn.online.events import EventLog, SegmentTracker, frame_record
from rrn.online.loop import Outputs, SourceRun, StreamSummary, run_sources
from rrn.online.recognizer import (
    MultiStreamRecognizer,
    Prediction,
    Recognizer,
    StreamFrame,
    StreamState,
    interval_seconds,
    sampling_for,
)
from rrn.online.render import AnnotatedWriter, render_overlay
from rrn.online.run import stream_source, stream_sources
from rrn.online.sources import LiveFrames, SourceError, SourceFrame, parse_source

__all__ = [
    "AnnotatedWriter",
    "BatcherStats",
    "Dropped",
    "EventLog",
    "LiveFrames",
    "MicroBatcher",
    "MultiStreamRecognizer",
    "Outputs",
    "Prediction",
    "Recognizer",
    "SegmentTracker",
    "SourceError",
    "SourceFrame",
    "SourceRun",
    "StreamFrame",
    "StreamState",
    "StreamSummary",
    "frame_record",
    "interval_seconds",
    "parse_source",
    "render_overlay",
    "run_sources",
    "sampling_for",
    "stream_source",
    "stream_sources",
]

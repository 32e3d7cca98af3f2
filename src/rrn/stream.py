"""Online recognition: a trained RRN on a video file, a camera or a network stream, frame by frame.

A source (:func:`parse_source`: a file, ``/dev/videoN`` or ``camera:N``, an ``rtsp://``,
``http(s)://``, ``udp://`` ... URL) is opened with PyAV/FFmpeg and decoded frame by frame.
The checkpoint's sampling picks frames (every k-th, or by fps: :class:`FrameSelector`, the
rule the decoder of training and evaluation applies); each picked frame is converted and
resized exactly as :func:`~rrn.data.decode.decode_video` does, preprocessed by the model's
:class:`~rrn.data.transforms.InputSpec` and fed to :meth:`~rrn.model.RecurrentResNet.step`
with the state carried: frame ``n``'s logits are the chunk prediction of frames ``n-T+1..n``,
equal to row ``n`` of ``forward_video`` over the whole video. Nothing is buffered beyond the
model's state and the last ``smooth`` probability vectors.

Outputs (:func:`run_stream`):

* the smoothed prediction per sampled frame (mean of the last ``smooth`` probability
  vectors), to a callback (``rrn stream``'s live line) and to an events file (JSON lines:
  one ``frame`` record per sampled frame, a ``segment`` record whenever the smoothed top
  class changes, ``start`` and ``end`` records);
* an annotated video (:class:`AnnotatedWriter`): every source frame, with the top classes
  of the latest sampled frame drawn on it. Outputs are closed in a ``finally``: they stay
  valid when the stream ends early, fails mid-way or the user presses Ctrl-C, and the
  summary says where the stream stopped.

With ``realtime`` frames are read by a thread (:class:`LiveFrames`); whenever the model falls
behind, only the newest sampled frame that has arrived is classified and the others are
counted as dropped (every source frame is still written to the annotated video). A file is
then delivered at its frame rate, as a live source would be.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from rrn.data.decode import checked_frames, error_text, resized_shape, stream_rate, to_rgb
from rrn.data.sampling import FrameSelector, Sampling
from rrn.files import check_writable, json_text

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp")


class SourceError(OSError):
    """A video source cannot be opened or has no video; the message says which and why."""


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """How to open a source with PyAV: ``av.open(target, format=format, options=options)``."""

    name: str
    """What the user gave."""
    kind: str
    """file, camera or network."""
    target: str
    format: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.kind != "file"


def parse_source(source: str, platform: str = sys.platform) -> SourceSpec:
    """What ``source`` names: a video file, a camera or a network stream.

    Args:
        source: A file path; ``/dev/videoN`` (Linux, V4L2); ``camera:N`` (the platform's
            camera input: V4L2 ``/dev/videoN`` on Linux, AVFoundation device N on macOS,
            DirectShow device named N on Windows); or a URL with one of
            :data:`NETWORK_SCHEMES` (RTSP is read over TCP).
        platform: ``sys.platform`` (a parameter so that each mapping is testable).

    Raises:
        SourceError: a file that does not exist, or ``camera:`` without a device.
    """
    scheme = urlparse(source).scheme.lower()
    if scheme in NETWORK_SCHEMES:
        options = {"rtsp_transport": "tcp"} if scheme.startswith("rtsp") else {}
        return SourceSpec(source, "network", source, None, options)
    if source.startswith("/dev/video"):
        return SourceSpec(source, "camera", source, "v4l2")
    if source.startswith("camera:"):
        device = source.partition(":")[2].strip()
        if not device:
            raise SourceError(f"{source}: name a camera, e.g. camera:0")
        if platform == "darwin":
            return SourceSpec(source, "camera", f"{device}:none", "avfoundation",
                              {"framerate": "30"})
        if platform.startswith("win"):
            return SourceSpec(source, "camera", f"video={device}", "dshow")
        target = f"/dev/video{device}" if device.isdigit() else device
        return SourceSpec(source, "camera", target, "v4l2")
    if Path(source).is_dir():
        raise SourceError(f"{source} is a folder; rrn stream reads one video file, camera or URL")
    if not Path(source).is_file():
        raise SourceError(f"no such video file: {source} (for a camera give /dev/videoN or "
                          f"camera:N, for a stream a URL such as rtsp://host/path)")
    return SourceSpec(source, "file", source)


def open_source(spec: SourceSpec, timeout: float = 10.0):
    """Open ``spec`` with PyAV; returns ``(container, video stream)``.

    Raises:
        SourceError: FFmpeg cannot open it (missing device, refused connection, not a
            video, ...) or it has no video stream; one line, naming the source.
    """
    import av

    try:
        container = av.open(spec.target, format=spec.format, options=spec.options,
                            timeout=timeout if spec.kind == "network" else None)
    except Exception as err:  # noqa: BLE001 - any FFmpeg/OS failure: the source cannot be read
        raise SourceError(f"cannot open {spec.kind} {spec.name}: {error_text(err)}") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{spec.name} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO" if spec.kind == "file" else "SLICE"  # live: no frame delay
    return container, stream


@dataclass
class SourceFrame:
    """One decoded source frame."""

    index: int
    """Position in the source, from 0."""
    time: float
    """Seconds since the source's first frame."""
    frame: object
    """The ``av.VideoFrame``."""


def read_frames(container, stream, paced: bool = False, name: str = "") -> Iterator[SourceFrame]:
    """Decode every frame of ``stream``, in order.

    Args:
        paced: Deliver frame ``n`` no earlier than its presentation time after the first
            (a file played like a live source).
        name: The source, for errors.

    Raises:
        VideoDecodeError: after the last frame when a file is cut short (as training's
            decoder decides, :func:`~rrn.data.decode.checked_frames`).
    """
    rate = stream_rate(stream)
    t0: float | None = None
    start = time.perf_counter()
    for index, frame in enumerate(checked_frames(container, stream, name)):
        t = frame.time if frame.time is not None else index / rate
        t0 = t if t0 is None else t0
        t -= t0
        if paced:
            delay = start + t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield SourceFrame(index, t, frame)


class LiveFrames:
    """Frames read by a background thread; each iteration returns all that have arrived.

    ``for batch in LiveFrames(frames): ...`` blocks until at least one frame is there, then
    yields the list of every frame read since the last batch, so a slow consumer can skip to
    the newest. A read error is raised in the consumer, after the frames read before it.
    """

    _END = object()

    def __init__(self, frames: Iterable[SourceFrame]):
        self._frames = frames
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="rrn-stream-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._frames:
                if self._stop.is_set():
                    break
                self._queue.put(item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            self._queue.put(err)
        self._queue.put(self._END)

    def __iter__(self) -> Iterator[list[SourceFrame]]:
        while True:
            items = [self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            frames = [i for i in items if isinstance(i, SourceFrame)]
            if frames:
                yield frames
            for item in items:
                if isinstance(item, BaseException):
                    raise item
                if item is self._END:
                    return

    def close(self, wait: float = 2.0) -> bool:
        """Stop reading; returns whether the thread has ended (then the source may be closed)."""
        self._stop.set()
        self._thread.join(wait)
        return not self._thread.is_alive()


# --------------------------------------------------------------------------------------------
# The model, one sampled frame at a time
# --------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """The model's output at one sampled frame."""

    index: int
    time: float
    probs: torch.Tensor
    """(K,) this frame's probabilities (the chunk ending here)."""
    smoothed: torch.Tensor
    """(K,) mean of the last ``smooth`` frames' probabilities."""
    latency_ms: float
    """Preprocessing + model step, in milliseconds."""

    def top(self, classes: list[str], k: int, smoothed: bool = True) -> list[tuple[str, float]]:
        """The ``k`` most probable (class, probability), best first."""
        p = self.smoothed if smoothed else self.probs
        values, indices = p.topk(min(k, p.numel()))
        return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


class Recognizer:
    """A trained model stepping through sampled frames with its state carried.

    Args:
        model: From :func:`rrn.load_model` (needs ``inputs`` and ``classes``).
        sampling: Which frames to classify (default: the model's training sampling).
        smooth: Probability vectors averaged (default: the model's temporal context T).
    """

    def __init__(self, model, sampling: Sampling | None = None, smooth: int | None = None):
        self.model = model
        self.classes: list[str] = list(model.classes)
        self.sampling = sampling or model.inputs.sampling
        self.smooth = smooth or model.temporal_context
        self.transform = model.inputs.transform()
        self.device = next(model.parameters()).device
        self.reset()

    def reset(self, base_rate: float = 25.0) -> None:
        """Start a new video (zero state); ``base_rate`` times frames without a timestamp."""
        self.selector = FrameSelector(self.sampling, base_rate)
        self.state = None
        self.recent: deque[torch.Tensor] = deque(maxlen=self.smooth)
        self.size: tuple[int, int] | None = None

    def keep(self, frame: SourceFrame) -> bool:
        """Whether the sampling picks this frame (ask for every frame, in order)."""
        return self.selector.keep(frame.index, frame.time)

    def rgb(self, frame: SourceFrame) -> np.ndarray:
        """uint8 (H, W, 3), resized as decoding for training does (size fixed by the first)."""
        av_frame = frame.frame
        if self.size is None:
            self.size = resized_shape(av_frame.height, av_frame.width, self.sampling.short_side)
        return to_rgb(av_frame, self.size)

    @torch.inference_mode()
    def classify(self, frame: SourceFrame) -> Prediction:
        """One model step on ``frame``."""
        start = time.perf_counter()
        x = self.transform(self.rgb(frame)[None]).to(self.device)  # (1, H, W, 3) -> (1, 3, S, S)
        logits, self.state = self.model.step(x, self.state)
        probs = logits[0].float().softmax(-1).cpu()  # (K,); .cpu() waits for the device
        self.recent.append(probs)
        smoothed = torch.stack(tuple(self.recent)).mean(0)  # (n <= smooth, K) -> (K,)
        latency = (time.perf_counter() - start) * 1000
        return Prediction(frame.index, frame.time, probs, smoothed, latency)


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


class SegmentTracker:
    """Action segments: runs of sampled frames with the same smoothed top class.

    A segment spans from its first frame's time to the next segment's first frame (or the
    end of the stream); ``mean_prob`` is the mean smoothed probability of its class.
    """

    def __init__(self):
        self.current: dict | None = None
        self.done: list[dict] = []

    def update(self, cls: str, prob: float, t: float) -> dict | None:
        """Feed one sampled frame; returns the segment it closed, if any."""
        closed = None
        if self.current is not None and self.current["class"] != cls:
            closed = self._close(t)
        if self.current is None:
            self.current = {"class": cls, "start": t, "frames": 0, "prob_sum": 0.0}
        self.current["frames"] += 1
        self.current["prob_sum"] += prob
        return closed

    def finish(self, end: float) -> dict | None:
        """Close the open segment at ``end`` (the stream's end); returns it, if any."""
        return self._close(end) if self.current is not None else None

    def _close(self, end: float) -> dict:
        seg, self.current = self.current, None
        record = {"class": seg["class"], "start": round(seg["start"], 3), "end": round(end, 3),
                  "frames": seg["frames"], "mean_prob": round(seg["prob_sum"] / seg["frames"], 4)}
        self.done.append(record)
        return record


class EventLog:
    """JSON lines, one record per event, each flushed as it is written (complete on a crash)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, record_type: str, /, **record) -> None:
        """One line: ``{"type": record_type, **record}``."""
        self._file.write(json_text({"type": record_type, **record}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class AnnotatedWriter:
    """Writes every source frame to a video file, with the latest top classes drawn on it.

    H.264 (``libx264``) when PyAV's FFmpeg has it, else MPEG-4 part 2, in ``yuv420p`` at the
    source's size (rounded down to even sides, which ``yuv420p`` needs) and average frame
    rate. The file is opened at the first frame and finished by :meth:`close` (flushes the
    encoder, writes the container's index): call it in a ``finally``.
    """

    def __init__(self, path: str | os.PathLike, rate: float):
        self.path = Path(path)
        self.rate = Fraction(rate).limit_denominator(1001) if rate > 0 else Fraction(25)
        self.frames = 0
        self._container = self._stream = None
        self._lines: list[str] = []
        self._overlay: object | None = None

    def set_lines(self, lines: list[str]) -> None:
        """The text drawn from the next frame on."""
        self._lines, self._overlay = lines, None

    def write(self, av_frame) -> None:
        """Append one source frame (a PyAV ``VideoFrame``) with the current text on it."""
        import av

        if self._container is None:
            self._open(av_frame.width - av_frame.width % 2, av_frame.height - av_frame.height % 2)
        s = self._stream
        if self._lines and self._overlay is None:  # rendered once per prediction
            self._overlay = render_overlay(self._lines, s.height)
        image = av_frame.reformat(width=s.width, height=s.height, format="rgb24").to_image()
        if self._overlay is not None:
            image.paste(self._overlay, (0, 0), self._overlay)
        out = av.VideoFrame.from_image(image)
        out.pts = self.frames
        self._container.mux(s.encode(out))
        self.frames += 1

    def _open(self, width: int, height: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        try:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            s = self._container.add_stream(codec, rate=self.rate)
            s.width, s.height, s.pix_fmt = width, height, "yuv420p"
            s.options = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {"qscale": "3"}
        except Exception:
            self._container.close()
            raise
        self._stream = s

    def close(self) -> None:
        """Flush the encoder and finish the file (nothing to do when no frame came)."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None


def render_overlay(lines: list[str], frame_height: int):
    """The box drawn at a frame's top-left corner: one line per class, ``name  0.83``.

    Returns:
        An RGBA ``PIL.Image``: white text on a translucent dark box, the font scaled to the
        frame's height.
    """
    from PIL import Image, ImageDraw, ImageFont

    size = max(10, round(frame_height / 18))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    pad = max(2, size // 4)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    boxes = [probe.textbbox((0, 0), line, font=font) for line in lines] or [(0, 0, 0, 0)]
    step = max(b[3] for b in boxes) + pad
    width = max(b[2] for b in boxes) + 2 * pad
    image = Image.new("RGBA", (width, step * len(lines) + pad), (0, 0, 0, 150))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * step), line, font=font, fill=(255, 255, 255, 255))
    return image


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclass
class StreamSummary:
    """What happened in :func:`run_stream`."""

    source: str
    status: str = "running"
    """end (the source ended), interrupted (Ctrl-C) or error (the source failed mid-way)."""
    error: str | None = None
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
        return {"source": self.source, "status": self.status, "error": self.error,
                "frames": self.frames, "sampled": self.sampled, "classified": self.classified,
                "dropped": self.dropped, "stopped_at": {"frame": self.last_index,
                                                        "time": _round(self.last_time)},
                "duration": round(self.end_time, 3), "wall": round(self.wall, 3),
                "latency_ms_p50": _round(_percentile(steps, 50)),
                "latency_ms_p95": _round(_percentile(steps, 95)),
                "segments": len(self.segments)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1)]


@dataclass
class Outputs:
    """Where :func:`run_stream` sends what it sees (each part optional)."""

    writer: AnnotatedWriter | None = None
    events: EventLog | None = None
    on_prediction: Callable[[Prediction, StreamSummary], None] | None = None
    labels: int = 3
    """Classes per frame in the events and on the annotated video."""


def run_stream(recognizer: Recognizer, batches: Iterable[list[SourceFrame]], outputs: Outputs,
               summary: StreamSummary, rate: float = 25.0, stop=None) -> StreamSummary:
    """Classify the sampled frames of ``batches`` and write the outputs.

    Args:
        recognizer: The model (:meth:`Recognizer.reset` is called here).
        batches: Lists of consecutive source frames. Of the sampled frames in one list only
            the last is classified, the others count as dropped: a list is what arrived
            while the model was busy (:class:`LiveFrames`); one frame per list classifies
            every sampled frame.
        outputs: Annotated video, events, the per-prediction callback.
        summary: Filled in as frames come, returned; ``status`` tells how it ended.
        rate: The source's frame rate (frame duration at the end, frames without time).
        stop: A :class:`~rrn.runtime.signals.StopRequest` (or anything with ``requested``): once
            it is requested (Ctrl-C, SIGTERM), the loop ends after the frames in hand.

    Returns:
        ``summary``. ``stop``, Ctrl-C (``KeyboardInterrupt``) and a failing source end the
        loop (status ``interrupted`` / ``error``); every output is then closed and valid.
    """
    recognizer.reset(rate)
    segments = SegmentTracker()
    start = time.perf_counter()
    batches = iter(batches)
    try:
        while (batch := _next_batch(batches, summary)) is not None:
            _process_batch(recognizer, batch, outputs, summary, segments)
            summary.wall = time.perf_counter() - start
            if stop is not None and stop.requested:
                summary.status = "interrupted"
                break
    except KeyboardInterrupt:
        summary.status = "interrupted"
    finally:
        summary.wall = time.perf_counter() - start
        if summary.last_time is not None:
            summary.end_time = summary.last_time + 1.0 / rate
        with _closing(stop):
            _finish(outputs, summary, segments)
    return summary


def _closing(stop):
    """While the outputs close, a second Ctrl-C must not cut their last records (``stop``'s
    :meth:`~rrn.runtime.signals.StopRequest.closing`; nothing without one)."""
    return stop.closing() if hasattr(stop, "closing") else contextlib.nullcontext()


def _next_batch(batches: Iterator[list[SourceFrame]], summary: StreamSummary):
    """The next batch; None at the end of the source or when it fails (``summary`` says which).

    Only the source's errors end the stream quietly: an error of the model or of an output
    is raised (after the outputs are closed).
    """
    try:
        return next(batches)
    except StopIteration:
        summary.status = "end"
    except Exception as err:  # noqa: BLE001 - FFmpeg/network failures: keep what was written
        summary.status, summary.error = "error", error_text(err)
    return None


def _process_batch(recognizer: Recognizer, batch: list[SourceFrame], outputs: Outputs,
                   summary: StreamSummary, segments: SegmentTracker) -> None:
    picked = [f for f in batch if recognizer.keep(f)]
    summary.sampled += len(picked)
    summary.dropped += max(0, len(picked) - 1)
    newest = picked[-1] if picked else None
    for frame in batch:
        if frame is newest:
            pred = recognizer.classify(frame)
            summary.classified += 1
            summary.step_ms.append(pred.latency_ms)
            _emit(recognizer, pred, outputs, summary, segments)
        if outputs.writer is not None:
            outputs.writer.write(frame.frame)
        summary.frames += 1
        summary.last_index, summary.last_time = frame.index, frame.time


def _emit(recognizer: Recognizer, pred: Prediction, outputs: Outputs, summary: StreamSummary,
          segments: SegmentTracker) -> None:
    classes = recognizer.classes
    top = pred.top(classes, outputs.labels)
    closed = segments.update(top[0][0], top[0][1], pred.time)
    if outputs.events is not None:
        outputs.events.write("frame", frame=pred.index, time=round(pred.time, 3),
                             top=_named(pred.top(classes, outputs.labels, smoothed=False)),
                             smoothed=_named(top), latency_ms=round(pred.latency_ms, 2))
        if closed is not None:
            outputs.events.write("segment", **closed)
    if outputs.writer is not None:
        outputs.writer.set_lines([f"{name}  {p:.2f}" for name, p in top])
    if outputs.on_prediction is not None:
        outputs.on_prediction(pred, summary)


def _named(top: list[tuple[str, float]]) -> list[dict]:
    return [{"class": c, "prob": round(p, 4)} for c, p in top]


def _finish(outputs: Outputs, summary: StreamSummary, segments: SegmentTracker) -> None:
    """Close the last segment, the annotated video and the events file (in that order)."""
    last = segments.finish(summary.end_time)
    summary.segments = segments.done
    try:
        if outputs.writer is not None:
            outputs.writer.close()
    finally:
        if outputs.events is not None:
            if last is not None:
                outputs.events.write("segment", **last)
            outputs.events.write("end", **summary.to_json())
            outputs.events.close()


def sampling_for(model, sample_every: int | None = None, fps: float | None = None) -> Sampling:
    """The model's training sampling with its frame rate replaced (the short side stays).

    ``fps`` samples by time; ``sample_every`` alone samples by frame count, even for a model
    trained with ``fps`` (so the number given is the one applied).
    """
    base = model.inputs.sampling
    if fps is not None:
        return Sampling(base.sample_every, fps, base.short_side)
    if sample_every is not None:
        return Sampling(sample_every, None, base.short_side)
    return base


def check_outputs(spec: SourceSpec, out: str | None, json_path: str | None) -> None:
    """Refuse outputs that would overwrite the source or each other, and unwritable ones.

    Raises:
        ValueError: an output is the source, or both outputs are one file.
        OSError: an output's folder cannot be written.
    """
    given = [(flag, Path(p)) for flag, p in (("--out", out), ("--json", json_path)) if p]
    if len(given) == 2 and given[0][1].resolve() == given[1][1].resolve():
        raise ValueError(f"--out and --json are the same file ({out}); give each its own")
    for flag, path in given:
        if spec.kind == "file" and path.resolve() == Path(spec.target).resolve():
            raise ValueError(f"{flag} {path} is the source video: it would be overwritten; write elsewhere")
        check_writable(path.parent, flag)  # before the stream is opened, not at its first frame


def stream_source(model, source: str, config, *, sampling: Sampling | None = None,
                  on_prediction: Callable[[Prediction, StreamSummary], None] | None = None,
                  stop=None) -> StreamSummary:
    """Open ``source`` and classify it online with ``model`` (what ``rrn stream`` runs).

    Args:
        model: From :func:`rrn.load_model`.
        source: A file, camera or URL (:func:`parse_source`).
        config: A :class:`~rrn.config.StreamConfig` (outputs, smoothing, realtime, timeout).
        sampling: Which frames to classify (default: the model's training sampling).
        on_prediction: Called after each classified frame (e.g. a live line).
        stop: Ends the stream once requested (a :class:`~rrn.runtime.signals.StopRequest`).

    Returns:
        The :class:`StreamSummary`; its ``status`` is ``end``, ``interrupted`` (Ctrl-C) or
        ``error`` (the source failed mid-way; ``error`` and :meth:`StreamSummary.where` say
        why and where). The outputs are complete and valid in every case.

    Raises:
        SourceError: the source cannot be opened (one line: which and why).
    """
    spec = parse_source(source)
    check_outputs(spec, config.out, config.json)
    recognizer = Recognizer(model, sampling, config.smooth)
    container, video = open_source(spec, config.timeout)
    rate = stream_rate(video)
    live = None
    outputs = Outputs(labels=config.labels, on_prediction=on_prediction)
    try:
        frames = read_frames(container, video, config.realtime and not spec.live, spec.name)
        live = LiveFrames(frames) if config.realtime else None
        batches = live if live is not None else ([f] for f in frames)
        outputs.writer = AnnotatedWriter(config.out, rate) if config.out else None  # opens at frame 1
        try:
            outputs.events = EventLog(config.json) if config.json else None
        except OSError as err:
            raise OSError(f"cannot write {config.json} ({err.strerror or err})") from None
        if outputs.events is not None:
            outputs.events.write("start", **_start_record(recognizer, spec, rate, config))
        return run_stream(recognizer, batches, outputs, StreamSummary(source), rate, stop)
    finally:
        # A reader thread still inside FFmpeg (a network read) must not see its container closed;
        # live.close() waits for it at most 2 s.
        with _closing(stop):
            if live is None or live.close():
                container.close()


def _start_record(recognizer: Recognizer, spec: SourceSpec, rate: float, config) -> dict:
    model = recognizer.model
    return {"source": spec.name, "kind": spec.kind, "rate": round(rate, 3),
            "checkpoint": str(getattr(model, "checkpoint", None)), "classes": recognizer.classes,
            "sampling": recognizer.sampling.describe(), "context": model.temporal_context,
            "smooth": recognizer.smooth, "realtime": config.realtime}

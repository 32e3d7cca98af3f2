"""Video sources for online recognition: a file, a camera or a network stream, opened with
PyAV/FFmpeg and decoded frame by frame (:func:`parse_source`, :func:`open_source`,
:func:`read_frames`), optionally by a background thread that lets a slow consumer skip to the
newest frame (:class:`LiveFrames`).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from rrn.data.decode import checked_frames, error_text, stream_rate
from rrn.errors import UserError

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp")


class SourceError(UserError, OSError):
    """A video source cannot be opened or has no video; the message says which and why.

    A user error (another path, device or URL, or a network that is up: one line, exit 2); an
    ``OSError`` as before for callers, as PyAV's own errors opening it are.
    """


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
        return SourceSpec(source, "network", source, options=options)
    if source.startswith("/dev/video"):
        return SourceSpec(source, "camera", source, format="v4l2")
    if source.startswith("camera:"):
        device = source.partition(":")[2].strip()
        if not device:
            raise SourceError(f"{source}: name a camera, e.g. camera:0")
        if platform == "darwin":
            return SourceSpec(
                source,
                "camera",
                f"{device}:none",
                format="avfoundation",
                options={"framerate": "30"},
            )
        if platform.startswith("win"):
            return SourceSpec(source, "camera", f"video={device}", format="dshow")
        target = f"/dev/video{device}" if device.isdigit() else device
        return SourceSpec(source, "camera", target, format="v4l2")
    if Path(source).is_dir():
        raise SourceError(f"{source} is a folder; rrn stream reads one video file, camera or URL")
    if not Path(source).is_file():
        raise SourceError(
            f"no such video file: {source} (for a camera give /dev/videoN or "
            f"camera:N, for a stream a URL such as rtsp://host/path)"
        )
    return SourceSpec(source, "file", source)


def open_source(spec: SourceSpec, timeout: float = 10.0):
    """Open ``spec`` with PyAV; returns ``(container, video stream)``.

    Raises:
        SourceError: FFmpeg cannot open it (missing device, refused connection, not a
            video, ...) or it has no video stream; one line, naming the source.
    """
    import av

    try:
        container = av.open(
            spec.target,
            format=spec.format,
            options=spec.options,
            timeout=timeout if spec.kind == "network" else None,
        )
    except Exception as err:
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
        self._error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._read, name="rrn-stream-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._frames:
                if self._stop.is_set():
                    break
                self._queue.put(item)
        except BaseException as err:
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

    def poll(self, timeout: float) -> list[SourceFrame] | None:
        """Every frame that has arrived, waiting at most ``timeout`` s for the first: ``[]`` when
        none came in time, None at the end of the source (a read error is raised here, after
        the frames read before it)."""
        if self._error is not None:
            raise self._error
        if self._ended:
            return None
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        frames = [i for i in items if isinstance(i, SourceFrame)]
        for item in items:
            if isinstance(item, BaseException):
                self._error = item
            elif item is self._END:
                self._ended = True
        if frames:
            return frames
        if self._error is not None:
            raise self._error
        return None if self._ended else []

    def close(self, wait: float = 2.0) -> bool:
        """Stop reading; returns whether the thread has ended (then the source may be closed)."""
        self._stop.set()
        self._thread.join(wait)
        return not self._thread.is_alive()

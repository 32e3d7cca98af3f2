"""Video decoding: a path in, the sampled frames out as uint8 ``(N, H, W, 3)`` RGB.

Backends:

* ``"pyav"`` (default, always present): one sequential, seek-free pass with FFmpeg's frame
  threading (``thread_type = "AUTO"``). Every frame must be decoded (inter-coded video), but
  only the *sampled* frames pay for colour conversion and resizing, which FFmpeg's swscale
  does in one step (``frame.reformat(w, h, "rgb24", interpolation="AREA")``). Grayscale,
  odd widths, audio streams and variable frame rates need nothing special: the first video
  stream is read, swscale converts any pixel format to RGB.
* ``"torchcodec"`` (optional, ``--decoder torchcodec``; slower than PyAV for the paper's
  sampling, so ``"auto"`` stays on PyAV: docs/benchmarks.md): decodes only the wanted frame
  indices with its own FFmpeg build; resize by antialiased bilinear interpolation (so
  pixel values differ from PyAV's by a few grey levels). Sampling by ``fps`` always takes the
  PyAV path, so that both backends keep exactly the same frames of a variable-frame-rate video.

Sampling is either every ``sample_every``-th decoded frame (the paper: 10) or, when ``fps``
is given, frames evenly spaced in presentation time (:func:`rrn.data.sampling.select_by_time`),
which is what a variable-frame-rate video needs.

Truncated files (an interrupted download or copy) are errors, not short videos. FFmpeg's
frame threading swallows the error of the frame the file ends in, so a cut file decodes into
fewer frames without complaint; instead, the packets read on the way are compared with the
length the container's header promises (AVI's frame count, MP4/MOV's sample table,
Matroska/WebM's track duration): a stream that stops more than 1.5 frame intervals early, or
whose last packet the demuxer flags as cut, raises :class:`VideoDecodeError` ("truncated: 61 of
165 frames; ..."). Files whose header gives no length (MPEG-TS/PS, streamed WebM) can only be
caught when they end inside a frame.

:func:`iter_decoded` gives the same frames one at a time (memory of one frame, whatever the
video's length) and can refuse a video longer than :class:`DecodeLimits`, by its header before
decoding and by its frames while decoding (a 1 MB file can hold 44,000 tiny frames).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrn.data.sampling import FrameSelector, Sampling
from rrn.errors import ConfigError, UserError

VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
)


class VideoDecodeError(UserError, RuntimeError):
    """A video could not be decoded; the message names the path and the reason.

    A user error: the file is damaged, cut short or in a codec FFmpeg lacks, and the person
    replaces or re-encodes it (``rrn check-data`` lists them all). Training, evaluation and
    caching skip such a video with a warning; one that reaches the command line is one line.
    A ``RuntimeError`` as before for callers.
    """

    def __init__(self, path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")


class VideoTooLongError(VideoDecodeError):
    """A video over the :class:`DecodeLimits` it was decoded with."""


@dataclass(frozen=True)
class DecodeLimits:
    """How long a video may be (``None``: unlimited)."""

    max_frames: int | None = None
    """Frames decoded (all of them, not only the sampled ones)."""
    max_seconds: float | None = None
    """Duration, by the container's header and by the frames' presentation times."""


def available_decoders() -> list[str]:
    """Names of the usable decoding backends: ``["pyav"]`` or ``["pyav", "torchcodec"]``."""
    names = ["pyav"]
    if importlib.util.find_spec("torchcodec") is not None:
        names.append("torchcodec")
    return names


def resolve_backend(backend: str) -> str:
    """Map ``"auto"`` to the measured-fastest backend; reject unknown names.

    ``auto`` is PyAV: its single sequential pass was faster than torchcodec's exact seeking for
    every 10th frame of real UCF-101 and HMDB-51 clips (docs/benchmarks.md, "Measured once").
    torchcodec stays one flag away.
    """
    valid = ("auto", "pyav", "torchcodec")
    if backend not in valid:
        raise ConfigError(f"unknown decoder {backend!r}; choose one of {', '.join(valid)}")
    if backend == "auto":
        return "pyav"
    if backend not in available_decoders():
        raise ConfigError(
            f"decoder {backend!r} is not installed; `pip install torchcodec` or use --decoder pyav"
        )
    return backend


def resized_shape(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """``(height, width)`` after scaling the shorter side to ``short_side``, keeping the aspect
    ratio."""
    if short_side is None:
        return height, width
    if short_side < 1:
        raise ValueError(f"short_side must be >= 1, got {short_side}")
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def stream_rate(stream) -> float:
    """Frames per second of a PyAV video stream (average, else guessed, else 25)."""
    return float(stream.average_rate or stream.guessed_rate or 25.0)


def to_rgb(frame, size: tuple[int, int]) -> np.ndarray:
    """A decoded PyAV frame as uint8 RGB ``(H, W, 3)`` at ``size = (H, W)``.

    FFmpeg's swscale converts and resizes in one step, with area averaging (what every
    sampled frame of training, evaluation and ``rrn stream`` goes through).
    """
    h, w = size
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()


def decode_video(path, sampling: Sampling | None = None, *, backend: str = "auto") -> np.ndarray:
    """Decode the sampled frames of a video.

    Args:
        path: Video file.
        sampling: Which frames (every ``sample_every``-th, or ``fps`` evenly spaced in
            presentation time) at which short side (``None``: the original size); one value,
            validated where it is made (:class:`~rrn.data.sampling.Sampling`), also the cache key.
        backend: ``"auto"``, ``"pyav"`` or ``"torchcodec"``.

    Returns:
        uint8 array ``(N, H, W, 3)``, RGB, ``N >= 1``.

    Raises:
        VideoDecodeError: missing, empty, corrupt, truncated (see the module docstring) or
            non-video file, no video stream, or no frame decoded.
    """
    sampling = sampling or Sampling()  # every 10th frame, the original size
    name = resolve_backend(backend)
    path = Path(path)
    _check_file(path)
    if name == "torchcodec" and sampling.fps is None:  # by time: PyAV's rule, one semantics
        try:
            return _decode_torchcodec(path, sampling.sample_every, sampling.short_side)
        except VideoDecodeError:
            raise
        except Exception:
            pass
    return np.stack(list(iter_decoded(path, sampling)))  # (N, H, W, 3)


def _check_file(path: Path) -> None:
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise VideoDecodeError(path, f"file not readable ({err.strerror or err})") from None
    if size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def iter_decoded(
    path, sampling: Sampling | None = None, limits: DecodeLimits | None = None
) -> Iterator[np.ndarray]:
    """:func:`decode_video`'s frames (PyAV) one at a time: uint8 ``(H, W, 3)`` RGB each.

    Raises:
        VideoDecodeError: as :func:`decode_video` (truncation once the last frame is read).
        VideoTooLongError: over ``limits``, before decoding when the header says so.
    """
    import av

    sampling, path = sampling or Sampling(), Path(path)
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except Exception as err:
        raise VideoDecodeError(
            path, f"not a readable video container ({error_text(err)})"
        ) from None
    with container:
        if not container.streams.video:
            raise VideoDecodeError(path, "the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        limits = limits or DecodeLimits()
        _check_header_length(path, container, stream, limits)
        yield from _sampled(path, container, stream, sampling, limits)


def _sampled(path: Path, container, stream, sampling: Sampling, limits: DecodeLimits):
    selector = FrameSelector(sampling, stream_rate(stream))
    size: tuple[int, int] | None = None
    tail = _StreamTail()
    decoded = kept = 0
    try:
        for i, frame in enumerate(_frames(container, stream, tail)):
            decoded += 1
            _check_frame_length(path, decoded, frame.time, limits)
            if not selector.keep(i, frame.time):
                continue  # decoded (inter-coded video needs it) but never converted
            if size is None:  # the first kept frame fixes the size, should the stream change it
                size = resized_shape(frame.height, frame.width, sampling.short_side)
            kept += 1
            yield to_rgb(frame, size)
    except VideoDecodeError:
        raise
    except Exception as err:
        raise VideoDecodeError(
            path, f"decoding failed after {kept} sampled frames ({error_text(err)})"
        ) from None
    if not kept:
        raise VideoDecodeError(
            path, "no frame could be decoded (truncated or corrupt video stream)"
        )
    truncated = _truncation(container, stream, tail, decoded)
    if truncated:
        raise VideoDecodeError(path, truncated)


def _check_header_length(path: Path, container, stream, limits: DecodeLimits) -> None:
    """Refuse a video whose header already says it is over ``limits``."""
    seconds = _promised_seconds(container, stream)
    if seconds is None and container.duration:  # microseconds, for the whole container
        seconds = container.duration / 1_000_000
    if limits.max_seconds is not None and seconds is not None and seconds > limits.max_seconds:
        raise VideoTooLongError(
            path, f"the video lasts {seconds:.1f} s, over the limit of {limits.max_seconds:g} s"
        )
    if limits.max_frames is not None and stream.frames and stream.frames > limits.max_frames:
        raise VideoTooLongError(
            path, f"the video has {stream.frames} frames, over the limit of {limits.max_frames}"
        )


def _check_frame_length(path: Path, decoded: int, t: float | None, limits: DecodeLimits) -> None:
    """Refuse a video whose frames go past ``limits`` (a header can say less than there is)."""
    if limits.max_frames is not None and decoded > limits.max_frames:
        raise VideoTooLongError(path, f"the video has over {limits.max_frames} frames, the limit")
    if limits.max_seconds is not None and t is not None and t > limits.max_seconds:
        raise VideoTooLongError(path, f"the video goes on past {limits.max_seconds:g} s, the limit")


def checked_frames(container, stream, name: str):
    """Every decoded frame of ``stream`` in order, then a truncation check (for ``rrn stream``).

    Raises:
        VideoDecodeError: after the last frame, when the file is cut short (the rule of the
            module docstring); ``name`` is the path it reports.
    """
    tail = _StreamTail()
    decoded = 0
    for frame in _frames(container, stream, tail):
        decoded += 1
        yield frame
    truncated = _truncation(container, stream, tail, decoded)
    if truncated:
        raise VideoDecodeError(name, truncated)


def _frames(container, stream, tail: _StreamTail):
    """``container.decode(stream)``, with every demuxed packet shown to ``tail`` on the way."""
    for packet in container.demux(stream):
        tail.see(packet)
        yield from packet.decode()  # the empty packet PyAV sends last flushes the decoder


class _StreamTail:
    """Where the packets read from a video stream end, to compare with what the container promises.

    FFmpeg's frame-threaded decoding drops the error of a frame cut short by the end of the
    file, so a truncated video decodes "successfully" into fewer frames; only the packets
    tell: how far in time they reach, and whether the demuxer flagged the last one as corrupt
    (it does when the file ends inside it).
    """

    def __init__(self):
        self.last_pts: int | None = None
        """Largest presentation time seen, in the stream's time base."""
        self.end: int | None = None
        """Largest ``pts + duration`` seen (equal to ``last_pts`` where packets carry no
        duration)."""
        self.last_corrupt = False

    def see(self, packet) -> None:
        if packet.size == 0 and packet.dts is None:
            return  # the flush packet, not data read from the file
        self.last_corrupt = bool(packet.is_corrupt)
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            self.last_pts = packet.pts if self.last_pts is None else max(self.last_pts, packet.pts)
            self.end = end if self.end is None else max(self.end, end)


def _promised_seconds(container, stream) -> float | None:
    """How long the container's header says the video stream is, or None when it does not say.

    AVI: the header's frame count (FFmpeg re-derives an AVI's duration from the chunks it
    finds, which shrinks with the file). Others: the stream's duration (MP4/MOV sample tables),
    else Matroska/WebM's per-track ``DURATION`` tag (written by FFmpeg and mkvmerge).
    """
    if container.format.name == "avi":
        return float(stream.frames * stream.time_base) if stream.frames else None
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = re.fullmatch(
        r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", stream.metadata.get("DURATION", "").strip()
    )
    if tag:
        return int(tag[1]) * 3600 + int(tag[2]) * 60 + float(tag[3])
    return None


def _truncation(container, stream, tail: _StreamTail, decoded: int | None) -> str | None:
    """Why the stream looks cut short (the reason of a VideoDecodeError), or None.

    Truncated = the demuxer flagged the last packet as corrupt (the file ends inside it), or
    the packets stop more than 1.5 frame intervals before the end the header promises.
    ``decoded`` is the number of frames decoded, None when they were not (``probe_video``).
    """
    if tail.end is None:
        return None
    rate = stream_rate(stream)
    tb = float(stream.time_base)
    start = stream.start_time or 0
    end = max((tail.end - start) * tb, (tail.last_pts - start) * tb + 1 / rate)  # seconds
    promised = _promised_seconds(container, stream)
    short = promised is not None and promised - end > 1.5 / rate
    if not (short or tail.last_corrupt):
        return None
    expected = stream.frames or (round(promised * rate) if promised else None)
    of = f" of {expected}" if expected else ""
    if not short:  # every frame is there, but the file ends inside the last one
        frame = round((tail.last_pts - start) * tb * rate) + 1
        return f"truncated: the file ends inside frame {frame}{of}"
    count = str(decoded) if decoded is not None else f"about {round(end * rate)}"
    return (
        f"truncated: {count}{of} frames; the video stream ends at {end:.2f} s of the "
        f"{promised:.2f} s its header promises"
    )


def _decode_torchcodec(path: Path, sample_every: int, short_side: int | None) -> np.ndarray:
    import torch
    import torch.nn.functional as F
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), dimension_order="NCHW", num_ffmpeg_threads=0)
    indices = list(range(0, len(decoder), sample_every))
    batch = decoder.get_frames_at(indices=indices).data  # (N, 3, H, W) uint8
    if batch.shape[0] == 0:
        raise VideoDecodeError(path, "no frame could be decoded")
    h, w = resized_shape(batch.shape[2], batch.shape[3], short_side)
    if (h, w) != tuple(batch.shape[2:]):
        batch = F.interpolate(batch.float(), size=(h, w), mode="bilinear", antialias=True)
        batch = batch.round().clamp(0, 255).to(torch.uint8)
    return batch.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 3, H, W) -> (N, H, W, 3)


def error_text(err: BaseException) -> str:
    """An exception's message for one line of output (its type when empty; at most 300 chars)."""
    text = str(err).strip() or type(err).__name__
    return text if len(text) < 300 else text[:300] + "..."


def probe_video(path) -> tuple[int, int]:
    """A quick health check: open a video, decode its first frame, read (not decode) the rest.

    Reading the packets finds truncation as :func:`decode_video` does (the stream ends before
    the length its header promises, or inside a frame) for a few milliseconds per video;
    what only decoding finds (damaged data inside the file) it does not.

    Returns:
        ``(height, width)`` of the first frame.

    Raises:
        VideoDecodeError: as :func:`decode_video`.
    """
    import av

    path = Path(path)
    try:
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(path, "file is empty (0 bytes)")
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "the file has no video stream")
            stream = container.streams.video[0]
            tail = _StreamTail()
            first = next(_frames(container, stream, tail), None)
            if first is None:
                raise VideoDecodeError(
                    path, "no frame could be decoded (truncated or corrupt video stream)"
                )
            for packet in container.demux(stream):
                tail.see(packet)
            truncated = _truncation(container, stream, tail, None)
    except VideoDecodeError:
        raise
    except Exception as err:
        raise VideoDecodeError(path, f"not a readable video ({error_text(err)})") from None
    if truncated:
        raise VideoDecodeError(path, truncated)
    return first.height, first.width

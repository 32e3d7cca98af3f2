"""Frames sent by clients: the binary message format, image decoding within limits, and which
frames to keep by capture time.

A frame message is ``<8-byte little-endian float64 capture time in seconds><JPEG or PNG bytes>``.
Nothing here trusts the client, and every check is made before the work it protects:

* the message's size before anything is parsed;
* the capture time: finite, in seconds (not milliseconds), never going back, never jumping
  further than a limit; sampling by capture time costs the same whatever the gap;
* the image's declared width and height before its pixels are decoded (a small PNG can declare
  30000 x 30000 pixels: a decompression bomb), and its aspect ratio (a 40000 x 1 image would be
  upscaled to 55 x 2.2 M pixels for a 55-pixel short side: the allocation after resizing is
  what is bounded, not only the decoded size);
* a JPEG's scan count before decoding (each scan is a pass over the whole image, and a small
  progressive JPEG can hold many thousands: docs/benchmarks.md; a real one has at most a few
  dozen);
* only JPEG and PNG are accepted.

A frame that passes is decoded AND resized here, in the decoding worker of its own stream
(:func:`prepare_image`), so that nothing one client sends can fail or slow the batched step the
other streams share.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct("<d")
FORMATS = ("JPEG", "PNG")
MAX_CAPTURE_TIME = 1e10
"""Capture times are seconds: 1e10 s is the year 2286 as a Unix time. Larger values are
milliseconds or microseconds (epoch microseconds are 1.7e15), where consecutive float64 values
are so far apart that sampling intervals cannot be represented."""
SOS = b"\xff\xda"
"""A JPEG's start-of-scan marker (in entropy-coded data 0xFF is always followed by 0x00 or a
restart marker, so each occurrence is a scan, or one of an embedded thumbnail's)."""


class FrameError(ValueError):
    """A frame message that cannot be used; the message says why (sent back as an ``error``)."""


@dataclass(frozen=True)
class FrameLimits:
    """What one frame may be."""

    max_bytes: int = 2_000_000
    """Bytes of one message (time + image)."""
    max_pixels: int = 4096 * 2160
    """Width x height the image may declare."""
    max_aspect: float = 4.0
    """Longer side / shorter side (32:9 ultra-wide is 3.6)."""
    max_scans: int = 16
    """Scans of a JPEG (baseline: 1; progressive: 10 from libjpeg and browsers, 3-5 from
    other encoders). Each scan costs a pass over the whole image: a 4096 x 2160 progressive JPEG
    of 64 scans decodes in about half a second."""
    max_time_gap: float = 60.0
    """Seconds a stream's capture time may advance between two frames."""


def parse_frame(message: bytes, limits: FrameLimits) -> tuple[float, bytes]:
    """Split a frame message into its capture time and image bytes.

    Raises:
        FrameError: too large, too short, or a time that is not a finite number >= 0.
    """
    if len(message) > limits.max_bytes:
        raise FrameError(f"frame of {len(message)} bytes is over the limit of {limits.max_bytes}")
    if len(message) <= HEADER.size:
        raise FrameError(
            f"a frame is an {HEADER.size}-byte little-endian float64 capture time "
            f"followed by JPEG or PNG bytes; got {len(message)} bytes"
        )
    (t,) = HEADER.unpack_from(message)
    if not math.isfinite(t) or t < 0:
        raise FrameError(f"capture time must be a finite number of seconds >= 0, got {t}")
    return t, message[HEADER.size :]


def decode_image(data: bytes, limits: FrameLimits) -> np.ndarray:
    """JPEG or PNG bytes -> uint8 (H, W, 3) RGB, within ``limits`` (checked before decoding).

    Raises:
        FrameError: not a JPEG or PNG, too many pixels, too elongated, too many JPEG scans, or
            broken image data.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            check_header(image.format, image.size, data, limits)  # nothing decoded yet
            return np.asarray(image.convert("RGB"))
    except FrameError:
        raise
    except Image.DecompressionBombError:  # PIL's own guard, past twice its MAX_IMAGE_PIXELS
        raise FrameError(
            f"image declares more pixels than the limit of {limits.max_pixels}"
            " (a decompression bomb?)"
        ) from None
    except Exception as err:  # PIL raises many types for broken data
        raise FrameError(f"not a readable JPEG or PNG image ({type(err).__name__})") from None


def check_header(fmt: str, size: tuple[int, int], data: bytes, limits: FrameLimits) -> None:
    """What an image's header says, against ``limits``: pixels, aspect ratio, JPEG scans.

    Raises:
        FrameError: naming the limit.
    """
    width, height = size
    if width < 1 or height < 1:
        raise FrameError(f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise FrameError(
            f"image of {width}x{height} pixels is over the limit of {limits.max_pixels} pixels"
        )
    if max(width, height) > limits.max_aspect * min(width, height):
        raise FrameError(
            f"image of {width}x{height} pixels is more elongated than the limit of "
            f"{limits.max_aspect:g}:1 (it would be resized to far more pixels than it has)"
        )
    if fmt == "JPEG" and (scans := data.count(SOS)) > limits.max_scans:
        raise FrameError(
            f"JPEG of {scans} scans is over the limit of {limits.max_scans} (a progressive "
            "JPEG has about 10; thousands make a decoding bomb)"
        )


def prepare_image(
    data: bytes, limits: FrameLimits, short_side: int | None, size: tuple[int, int] | None
) -> np.ndarray:
    """Decode a frame's image and resize it as decoding for training does: FFmpeg's swscale
    with area averaging, to ``size`` (H, W) — the size the stream's first frame fixed — or,
    for a first frame, to its shorter side scaled to ``short_side``.

    Returns:
        uint8 (H, W, 3) RGB, ready for the batched step (which then only stacks it).

    Raises:
        FrameError: as :func:`decode_image`, or swscale refused the image.
    """
    import av

    from rrn.data.decode import resized_shape, to_rgb

    rgb = decode_image(data, limits)
    if size is None:
        size = resized_shape(rgb.shape[0], rgb.shape[1], short_side)
    try:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        return to_rgb(frame, size)
    except Exception as err:  # FFmpeg's errors for sizes it cannot scale
        raise FrameError(
            f"image of {rgb.shape[1]}x{rgb.shape[0]} pixels cannot be resized to "
            f"{size[1]}x{size[0]} ({type(err).__name__}: {err})"
        ) from None


class CaptureSampler:
    """Keeps frames at the model's sampling interval by their capture time.

    The first frame is kept; then, for each target time ``t0 + j * interval``, the first frame
    whose capture time reaches it (the rule of :func:`rrn.data.sampling.select_by_time`, which
    decoding applies to a file sampled by ``fps``), with a tolerance: a client that sends only
    sampled frames from its own timer jitters by a few milliseconds, and a frame 1 ms early
    must not wait a whole interval. The tolerance is a quarter interval, but at most half the
    gap to the client's previous frame, so that a client sending every frame gets exactly the
    frame at each target time (every 10th of a 25 fps stream for a 0.4 s interval, as decoding
    keeps). A client may send every frame (the server keeps one per interval) or only the
    sampled ones (each is kept).

    The next target is computed from the frame's time in one step, whatever the gap (targets
    already passed are skipped, not kept twice). Capture times must not go back, must be
    seconds (below :data:`MAX_CAPTURE_TIME`), and may not advance by more than ``max_gap``
    between two frames; a frame breaking one of these is refused and leaves the sampler as it
    was.
    """

    def __init__(self, interval: float, max_gap: float = math.inf):
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"sampling interval must be a finite number > 0 s, got {interval}")
        self.interval, self.max_gap = interval, max_gap
        self.tolerance = interval / 4
        self.t0: float | None = None
        """Capture time of the first frame: target j is ``t0 + j * interval``."""
        self.next_j = 0
        self.last: float | None = None

    def keep(self, t: float) -> bool:
        """Whether the frame captured at ``t`` seconds is classified.

        Raises:
            FrameError: ``t`` is not seconds, is earlier than the previous frame's capture
                time, or is more than ``max_gap`` later.
        """
        self._check(t)
        gap = t - self.last if self.last is not None else self.interval
        self.last = t
        tolerance = min(self.tolerance, gap / 2) + 1e-6  # 1e-6 s: rounding of the client's times
        if self.t0 is None:
            self.t0 = t
        if t + tolerance < self.t0 + self.next_j * self.interval:
            return False
        # the first target after t + tolerance: O(1) in the gap
        self.next_j = math.floor((t + tolerance - self.t0) / self.interval) + 1
        return True

    def _check(self, t: float) -> None:
        if t >= MAX_CAPTURE_TIME:
            raise FrameError(
                f"capture time {t:g} is not in seconds (the limit is {MAX_CAPTURE_TIME:g} s, the "
                "year 2286 as a Unix time): send seconds, e.g. Date.now() / 1000"
            )
        if self.last is None:
            return
        if t < self.last:
            raise FrameError(
                f"capture time {t:.3f} s is before the previous frame's "
                f"({self.last:.3f} s); times must not go back"
            )
        if t - self.last > self.max_gap:
            raise FrameError(
                f"capture time {t:.3f} s jumps {t - self.last:.3f} s past the previous frame's "
                f"(the limit is {self.max_gap:g} s): a clock that was reset starts a new stream"
            )

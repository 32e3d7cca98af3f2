"""Frames sent by clients: the binary message format, image decoding within limits, and which
frames to keep by capture time.

A frame message is ``<8-byte little-endian float64 capture time in seconds><JPEG or PNG bytes>``.
Nothing here trusts the client: the size is checked before anything is parsed, the image's
declared width and height before its pixels are decoded (a small PNG can declare 30000 x 30000
pixels: a decompression bomb), and only JPEG and PNG are accepted.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct("<d")
FORMATS = ("JPEG", "PNG")


class FrameError(ValueError):
    """A frame message that cannot be used; the message says why (sent back as an ``error``)."""


@dataclass(frozen=True)
class FrameLimits:
    """What one frame may be."""

    max_bytes: int = 2_000_000
    """Bytes of one message (time + image)."""
    max_pixels: int = 4096 * 2160
    """Width x height the image may declare."""


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
    """JPEG or PNG bytes -> uint8 (H, W, 3) RGB, refusing images over ``limits.max_pixels``.

    Raises:
        FrameError: not a JPEG or PNG, too many pixels, or broken image data.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > limits.max_pixels:
                raise FrameError(
                    f"image of {width}x{height} pixels is over the limit of "
                    f"{limits.max_pixels} pixels"
                )
            if width < 1 or height < 1:
                raise FrameError(f"image has no pixels ({width}x{height})")
            return np.asarray(image.convert("RGB"))
    except FrameError:
        raise
    except Image.DecompressionBombError:  # PIL's own guard, past twice its MAX_IMAGE_PIXELS
        raise FrameError(
            f"image declares more pixels than the limit of {limits.max_pixels}"
            " (a decompression bomb?)"
        ) from None
    except Exception as err:
        raise FrameError(f"not a readable JPEG or PNG image ({type(err).__name__})") from None


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
    sampled ones (each is kept). Capture times must not go back.
    """

    def __init__(self, interval: float):
        if not interval > 0:
            raise ValueError(f"sampling interval must be > 0 s, got {interval}")
        self.interval = interval
        self.tolerance = interval / 4
        self.next_t: float | None = None
        self.last: float | None = None

    def keep(self, t: float) -> bool:
        """Whether the frame captured at ``t`` seconds is classified.

        Raises:
            FrameError: ``t`` is earlier than the previous frame's capture time.
        """
        if self.last is not None and t < self.last:
            raise FrameError(
                f"capture time {t:.3f} s is before the previous frame's "
                f"({self.last:.3f} s); times must not go back"
            )
        gap = t - self.last if self.last is not None else self.interval
        self.last = t
        tolerance = min(self.tolerance, gap / 2) + 1e-6  # 1e-6 s: rounding of the client's times
        if self.next_t is None:
            self.next_t = t
        if t + tolerance < self.next_t:
            return False
        while self.next_t <= t + tolerance:  # targets already passed are skipped, not kept twice
            self.next_t += self.interval
        return True

"""JPEG frames: uint8 ``(H, W, 3)`` RGB <-> JPEG bytes, for the frame cache and frame folders.

Pillow (libjpeg-turbo; 4:2:0 chroma subsampling, the JPEG default) rather than
``torchvision.io``, whose image codecs are deprecated since torchvision 0.29.
"""

from __future__ import annotations

import io
import os

import numpy as np


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One uint8 ``(H, W, 3)`` RGB frame as JPEG bytes at ``quality`` (1-100)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), mode="RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def decode_jpeg(source: bytes | str | os.PathLike) -> np.ndarray:
    """JPEG bytes or a JPEG file -> uint8 ``(H, W, 3)`` RGB (grayscale and CMYK are converted).

    Raises:
        OSError: not a readable JPEG (Pillow's ``UnidentifiedImageError`` is one).
    """
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source) as im:
        if im.format != "JPEG":
            raise OSError(f"a {im.format} image, not a JPEG")
        return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))

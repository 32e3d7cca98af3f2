"""Rendering: the top classes drawn over the video (:func:`render_overlay`) and the annotated
video writer (:class:`AnnotatedWriter`)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path


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
            s.options = (
                {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {"qscale": "3"}
            )
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

"""What every ``rrn synth --layout`` writer shares: the rendered video it is handed
(:class:`SynthVideo`), writing frames as a video file, quoting a path for the flags it prints.

Each layout's writer lives with its format (:attr:`rrn.data.formats.base.DatasetFormat.synth`,
e.g. :func:`rrn.data.formats.ucf101.write_synth`): the same rendered videos
(:func:`rrn.data.synth.render_dataset`; the same train/test groups) in the layout each format
expects, so every reader is exercised end to end on data whose classes are known. The flags
that read a layout are stored in :data:`SYNTH_INFO` beside it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: The file ``rrn synth`` writes beside its dataset: its settings and the flags that read it.
#: Its presence marks the synthetic temporal-order data, whose classes are directions.
SYNTH_INFO = "rrn_synth.json"
#: Frames per second of every video ``rrn synth`` writes in a temporal layout (its annotations
#: are in seconds: frame ``f`` is at ``f / SYNTH_FPS``).
SYNTH_FPS = 25


class SynthInterval(NamedTuple):
    """A stretch of an untrimmed synthetic video, ``[start, end)`` in frames."""

    label: int
    """Its class, or -1: an ambiguous stretch (never a target, never scored)."""
    start: int
    end: int

    def seconds(self) -> tuple[str, str]:
        """Start and end in seconds at :data:`SYNTH_FPS`, as exact decimals (``1/25`` s is
        ``0.04``: two decimals say every frame time exactly)."""
        return f"{self.start / SYNTH_FPS:.2f}", f"{self.end / SYNTH_FPS:.2f}"


@dataclass(frozen=True, kw_only=True)
class SynthVideo:
    """One rendered video of the synthetic dataset, before it is written in a layout."""

    label: int
    name: str
    """Its class name (``MoveRight``, ...)."""
    group: int
    clip: int
    test: bool
    frames: np.ndarray
    """uint8 ``(N, S, S, 3)``."""
    intervals: tuple[SynthInterval, ...] = ()
    """An untrimmed video's actions and ambiguous stretches, in order (the temporal layouts:
    then ``label`` is -1 and every frame outside them is background); empty for a clip."""

    @property
    def stem(self) -> str:
        """UCF-101's file stem: ``v_<Class>_gGG_cCC``."""
        return f"v_{self.name}_g{self.group:02d}_c{self.clip:02d}"


def write_video(
    path,
    frames: np.ndarray,
    *,
    fps: float = 25,
    codec: str = "mjpeg",
    pix_fmt: str | None = None,
    options: dict | None = None,
) -> Path:
    """Write uint8 RGB frames ``(N, H, W, 3)`` as a video file with PyAV (also used by the tests).

    Args:
        path: Output file; the container follows its extension.
        frames: The frames.
        fps: Frame rate.
        codec: FFmpeg encoder name (``mjpeg``, ``ffv1``, ``mpeg4``, ``libx264``, ...).
        pix_fmt: Encoder pixel format; default per codec.
        options: Encoder options.
    """
    from fractions import Fraction

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = {"mjpeg": ("yuvj444p", {"qscale": "2"}), "ffv1": ("bgr0", {}), "png": ("rgb24", {})}
    dflt_fmt, dflt_opts = defaults.get(codec, ("yuv420p", {}))
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt or dflt_fmt
        stream.options = {**dflt_opts, **(options or {})}
        for f in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def shell_word(path) -> str:
    """``path`` as one shell word (the flags printed for a dataset are pasted into a shell)."""
    return shlex.quote(str(path))

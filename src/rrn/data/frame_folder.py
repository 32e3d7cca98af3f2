"""Frame folders (mmaction2's ``rawframes``): a path to a folder in, the sampled frames out.

A video extracted to ``img_00001.jpg``, ``img_00002.jpg``, ... is read by index without
decoding any video: :func:`read_frame_folder` returns the same uint8 ``(N, H, W, 3)`` RGB as
:func:`~rrn.data.decode.decode_video` for the same sampling, with the same resize (FFmpeg's
swscale, ``AREA``), so a model sees one kind of frame whichever way a dataset is stored.

* ``sample_every = k`` keeps frames ``0, k, 2k, ...`` (files ``img_00001``, ``img_{k+1}``, ...),
  exactly like a video's decoded frames.
* ``fps`` is refused: a frame folder has no timestamps, and guessing the rate it was
  extracted at would sample a different time span per folder. A folder extracted at ``R``
  frames/s sampled with ``sample_every = k`` gives ``R / k`` frames/s.

The frames of a folder are the files ``img_<index>.jpg`` (at least 5 digits, 1-based) with no
gap from ``img_00001.jpg`` up; other files (optical flow ``x_*.jpg``/``y_*.jpg``, notes) are
ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from rrn.data.decode import VideoDecodeError, resized_shape, to_rgb
from rrn.data.jpeg import decode_jpeg, encode_jpeg
from rrn.data.sampling import Sampling, every_kth
from rrn.errors import ConfigError

FRAME_NAME = "img_{:05d}.jpg"
"""File name of the 0-based frame ``i`` is ``FRAME_NAME.format(i + 1)``."""
_FRAME = re.compile(r"^img_(\d{5,})\.jpg$")


def frame_entries(folder) -> list[os.DirEntry]:
    """The frame files of a folder in frame order.

    Raises:
        VideoDecodeError: not a folder, no ``img_*.jpg`` in it, or a gap in the numbering.
    """
    folder = Path(folder)
    try:
        entries = [(int(m.group(1)), e) for e in os.scandir(folder) if (m := _FRAME.match(e.name))]
    except OSError as err:
        raise VideoDecodeError(
            folder, f"frame folder not readable ({err.strerror or err})"
        ) from None
    if not entries:
        raise VideoDecodeError(folder, "no frames (expected img_00001.jpg, img_00002.jpg, ...)")
    entries.sort(key=lambda item: item[0])
    for expected, (index, _) in enumerate(entries, 1):
        if index != expected:
            raise VideoDecodeError(
                folder,
                f"frame {FRAME_NAME.format(expected)} is missing (the folder has "
                f"{len(entries)} frames up to img_{entries[-1][0]:05d}.jpg); re-extract the frames",
            )
    return [e for _, e in entries]


def count_frames(folder) -> int:
    """Number of frames of a folder (see :func:`frame_entries`)."""
    return len(frame_entries(folder))


def fingerprint(folder) -> tuple[str, int]:
    """``(size, mtime_ns)`` of a folder for the frame cache key: the frame count with their
    total bytes, and the latest modification time of the folder and its frames, so adding,
    removing or rewriting a frame changes the key."""
    entries = frame_entries(folder)
    stats = [e.stat() for e in entries]
    mtime = max([os.stat(folder).st_mtime_ns] + [s.st_mtime_ns for s in stats])
    return f"{len(entries)}frames{sum(s.st_size for s in stats)}", mtime


def _decode_jpeg(path: str) -> np.ndarray:
    """One JPEG file -> uint8 ``(H, W, 3)`` RGB (grayscale JPEGs are expanded)."""
    try:
        return decode_jpeg(path)
    except OSError as err:
        raise VideoDecodeError(path, f"not a readable JPEG ({err})") from None


def resize_frame(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(H, W, 3)`` -> ``size = (h, w)`` with FFmpeg's ``AREA`` scaler, as video decoding."""
    import av

    if rgb.shape[:2] == size:
        return rgb
    return to_rgb(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"), size)


def read_frame_folder(folder, sampling: Sampling | None = None) -> np.ndarray:
    """Read the sampled frames of a frame folder.

    Args:
        folder: Folder of ``img_00001.jpg``, ``img_00002.jpg``, ...
        sampling: Frames ``0, k, 2k, ...`` (``sample_every``) at ``short_side`` (``None``: the
            original size); its ``fps`` must be None (frame folders have no timestamps; see the
            module docstring).

    Returns:
        uint8 ``(N, H, W, 3)`` RGB, ``N >= 1``; every frame the size of the first.

    Raises:
        ValueError: ``fps`` given.
        VideoDecodeError: no frames, a gap in the numbering, or an unreadable JPEG.
    """
    sampling = sampling or Sampling()  # every 10th frame, the original size
    sample_every, fps, short_side = sampling.sample_every, sampling.fps, sampling.short_side
    if fps is not None:
        raise ConfigError(
            f"{folder}: a frame folder has no timestamps, so it cannot be sampled at --fps "
            f"{fps:g}; use --sample-every k (a folder extracted at R frames/s gives R/k)"
        )
    entries = frame_entries(folder)
    frames: list[np.ndarray] = []
    size = None
    for i in every_kth(len(entries), sample_every):
        rgb = _decode_jpeg(entries[i].path)
        if size is None:  # the first frame fixes the size, as for a video
            size = resized_shape(rgb.shape[0], rgb.shape[1], short_side)
        frames.append(resize_frame(rgb, size))
    return np.stack(frames)  # (N, H, W, 3)


def probe_frame_folder(folder) -> tuple[int, int]:
    """Check a folder's numbering and decode its first frame: ``(height, width)``."""
    rgb = _decode_jpeg(frame_entries(folder)[0].path)
    return rgb.shape[0], rgb.shape[1]


def write_frame_folder(folder, frames: np.ndarray, *, quality: int = 95) -> Path:
    """Write uint8 ``(N, H, W, 3)`` frames as ``img_00001.jpg`` ... (``rrn synth``, the tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        (folder / FRAME_NAME.format(i + 1)).write_bytes(encode_jpeg(frame, quality))
    return folder

"""The one frame source: a video's sampled frames from the frame cache, else decoded (and cached).

Training, evaluation, feature extraction, prediction and ``rrn cache`` all read frames through
a :class:`FrameSource`, so the sampling that keys the cache is exactly the sampling the decoder
applies (one :class:`~rrn.data.sampling.Sampling` value), and a cache built by ``rrn cache``
is what every other command reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rrn.data.cache_entries import CachedFrames, CacheEntryError
from rrn.data.cache_store import FrameCache, resolve_cache_dir
from rrn.data.decode import VideoDecodeError, decode_video, iter_decoded, resolve_backend
from rrn.data.sampling import Sampling

logger = logging.getLogger(__name__)


def read_frames(path: str | os.PathLike, sampling: Sampling, decoder: str = "auto") -> np.ndarray:
    """The sampled frames of a video file (decoded) or a frame folder (read by index), uncached.

    Returns:
        uint8 ``(N, H, W, 3)`` RGB.

    Raises:
        VideoDecodeError: missing, empty or unreadable video or frame folder.
    """
    if Path(path).is_dir():
        from rrn.data.frame_folder import read_frame_folder

        return read_frame_folder(path, sampling)
    return decode_video(Path(path), sampling, backend=decoder)


class FrameSource:
    """Sampled, resized uint8 frames ``(N, H, W, 3)`` of a video or frame folder.

    Args:
        sampling: Which frames, at which short side (the cache key and the decoder's arguments).
        cache_dir: Frame cache folder, read first and filled with what is decoded; ``None``
            always decodes.
        decoder: Decoding backend (``"auto"``, ``"pyav"``, ``"torchcodec"``).
        cache_format: What is written to the cache: ``"jpeg"`` or ``"npy"`` (both are read).
        cache_quality: JPEG quality of ``cache_format="jpeg"``.
    """

    def __init__(
        self,
        sampling: Sampling,
        *,
        cache_dir: str | os.PathLike | None = None,
        decoder: str = "auto",
        cache_format: str = "jpeg",
        cache_quality: int = 90,
    ):
        self.sampling = sampling
        self.cache = (
            FrameCache(cache_dir, format=cache_format, quality=cache_quality)
            if cache_dir is not None
            else None
        )
        self.decoder = resolve_backend(decoder)

    @classmethod
    def from_config(cls, data) -> FrameSource:
        """The source a :class:`~rrn.config.DataConfig` describes (its cache once ``rrn cache``
        built it under ``<data-root>/.rrn-cache``, or its ``--cache-dir``)."""
        return cls(
            data.sampling(),
            cache_dir=resolve_cache_dir(data.cache_dir, data.data_root),
            decoder=data.decoder,
            cache_format=data.cache_format,
            cache_quality=data.cache_quality,
        )

    def __repr__(self) -> str:
        cache = f"{self.cache.root} ({self.cache.format})" if self.cache is not None else None
        return f"FrameSource({self.sampling}, cache_dir={cache}, decoder={self.decoder!r})"

    def __call__(self, path: str | os.PathLike) -> np.ndarray | CachedFrames:
        """The frames of ``path``: an array, or from the cache a :class:`CachedFrames` that
        reads only the frames it is indexed with (``np.asarray`` gives the whole array).

        Raises:
            VideoDecodeError: the video is missing, empty or cannot be decoded.
        """
        return self.ensure_cached(path)[0]

    def ensure_cached(
        self, path: str | os.PathLike, *, strict: bool = False
    ) -> tuple[np.ndarray | CachedFrames, bool]:
        """``(frames, were_cached)``; decoded frames are added to the cache.

        Decoded frames are served as the cache then holds them (a JPEG entry is read back), so
        a video looks the same on its first read and on every later one: the frames a run sees
        never depend on whether the cache was cold, and a resumed run sees what an uninterrupted
        one saw.

        A cache entry that fails a check (see :mod:`rrn.data.cache_store`) is decoded again and
        rewritten, with a warning. A cache that cannot be written (full, read-only) is a
        warning, or with ``strict`` (what ``rrn cache`` uses) the ``OSError`` itself; ``strict``
        also checks every frame of a cached entry before trusting it.
        """
        if self.cache is not None:
            frames = self.cache.get(path, self.sampling, verify=strict)
            if frames is not None:
                frames.fallback = lambda err: self._redecode(path, len(frames), err)
                return frames, True
        if self._streams(path):
            return self._stream(path, strict), False
        frames = read_frames(path, self.sampling, self.decoder)
        return self._store(path, frames, strict), False

    def _streams(self, path) -> bool:
        """Whether ``path`` is cached frame by frame as it is decoded: a video file (PyAV) into
        a JPEG cache. Then an untrimmed video of an hour never sits in memory decoded (at 4
        frames/s and short side 128: 14,400 frames, 0.9 GB), only its JPEG bytes do."""
        return (
            self.cache is not None
            and self.cache.format == "jpeg"
            and self.decoder == "pyav"
            and Path(path).is_file()  # else read_frames says what is wrong with it
        )

    def _stream(self, path, strict: bool) -> np.ndarray | CachedFrames:
        """Decode ``path`` straight into its cache entry; what the cache then holds (decoded
        the usual way when the cache cannot be written, as :meth:`_store` does)."""
        try:
            self.cache.put(path, iter_decoded(path, self.sampling), self.sampling)
        except OSError as err:  # a full or read-only cache must not stop training
            if strict:
                raise
            logger.warning("rrn: warning: could not write the frame cache for %s: %s", path, err)
            return read_frames(path, self.sampling, self.decoder)
        stored = self.cache.get(path, self.sampling)
        return stored if stored is not None else read_frames(path, self.sampling, self.decoder)

    def _store(self, path, frames: np.ndarray, strict: bool) -> np.ndarray | CachedFrames:
        """Write ``frames`` to the cache; what it now holds for ``path`` (``frames`` themselves
        without a cache, for ``npy``, or if another process removed the entry before it was read
        back)."""
        if self.cache is None:
            return frames
        try:
            self.cache.put(path, frames, self.sampling)
        except OSError as err:  # a full or read-only cache must not stop training
            if strict:
                raise
            logger.warning("rrn: warning: could not write the frame cache for %s: %s", path, err)
            return frames
        if self.cache.format != "jpeg":
            return frames
        stored = self.cache.get(path, self.sampling)
        return frames if stored is None else stored

    def _redecode(self, path, expected: int, err: CacheEntryError) -> np.ndarray | CachedFrames:
        """A cache entry failed a check while being read: decode again, rewrite, serve that."""
        logger.warning("rrn: warning: ignoring %s; decoding %s again", err, path)
        frames = self._store(path, read_frames(path, self.sampling, self.decoder), strict=False)
        if len(frames) != expected:  # the caller chose its frames from the entry's count
            raise VideoDecodeError(
                path,
                f"its cache entry held {expected} frames, the video gives "
                f"{len(frames)}; rewritten, used from the next epoch on",
            )
        return frames

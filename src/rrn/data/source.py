"""The one frame source: a video's sampled frames from the frame cache, else decoded (and cached).

Training, evaluation, feature extraction, prediction and ``rrn cache`` all read frames through
a :class:`FrameSource`, so the sampling that keys the cache is exactly the sampling the decoder
applies (one :class:`~rrn.data.sampling.Sampling` value), and a cache built by ``rrn cache``
is what every other command reads.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from rrn.data.cache import FrameCache, resolve_cache_dir
from rrn.data.decode import decode_video, resolve_backend
from rrn.data.sampling import Sampling


class FrameSource:
    """Sampled, resized uint8 frames ``(N, H, W, 3)`` of a video.

    Args:
        sampling: Which frames, at which short side (the cache key and the decoder's arguments).
        cache_dir: Frame cache folder, read first and filled with what is decoded; ``None``
            always decodes.
        decoder: Decoding backend (``"auto"``, ``"pyav"``, ``"torchcodec"``).
    """

    def __init__(self, sampling: Sampling, *, cache_dir: str | os.PathLike | None = None,
                 decoder: str = "auto"):
        self.sampling = sampling
        self.cache = FrameCache(cache_dir) if cache_dir is not None else None
        self.decoder = resolve_backend(decoder)

    @classmethod
    def from_config(cls, data) -> FrameSource:
        """The source a :class:`~rrn.config.DataConfig` describes (its cache once ``rrn cache``
        built it under ``<data-root>/.rrn-cache``, or its ``--cache-dir``)."""
        return cls(data.sampling(), cache_dir=resolve_cache_dir(data.cache_dir, data.data_root),
                   decoder=data.decoder)

    def __repr__(self) -> str:
        cache = self.cache.root if self.cache is not None else None
        return f"FrameSource({self.sampling}, cache_dir={cache}, decoder={self.decoder!r})"

    def __call__(self, path: str | os.PathLike) -> np.ndarray:
        """The frames of ``path`` (a read-only memory map when they come from the cache).

        Raises:
            VideoDecodeError: the video is missing, empty or cannot be decoded.
        """
        return self.ensure_cached(path)[0]

    def ensure_cached(self, path: str | os.PathLike, *, strict: bool = False) -> tuple[np.ndarray, bool]:
        """``(frames, were_cached)``; decoded frames are added to the cache.

        A cache that cannot be written (full, read-only) is a warning, or with ``strict`` (what
        ``rrn cache`` uses) the ``OSError`` itself.
        """
        if self.cache is not None:
            frames = self.cache.get(path, self.sampling)
            if frames is not None:
                return frames, True
        frames = decode_video(Path(path), **dataclasses.asdict(self.sampling), backend=self.decoder)
        if self.cache is not None:
            try:
                self.cache.put(path, frames, self.sampling)
            except OSError as err:  # a full or read-only cache must not stop training
                if strict:
                    raise
                warnings.warn(f"could not write the frame cache for {path}: {err}", stacklevel=2)
        return frames, False

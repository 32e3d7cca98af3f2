"""The frame cache on disk: each video decoded once into its sampled, resized uint8 frames.

Sampling every 10th frame still decodes every frame (inter-coded video), so a training run
that decodes on the fly pays for 10x the frames it uses, every epoch. ``rrn cache`` pays once.

Formats (:mod:`~rrn.data.cache_entries`; one file per video either way, a chunk reads only its
``T`` frames, training and evaluation read both): ``jpeg`` (``<key>.jpgs``: JPEG frames behind
an index; the default: an order of magnitude less disk for a small loss of read speed and a few
grey levels) or ``npy`` (``<key>.npy``: uncompressed, memory-mapped), one flag away
(``--cache-format npy``) for the last bit of read speed. The measured sizes, speeds and errors,
and the disk a cache of UCF-101 or Kinetics takes: docs/benchmarks.md ("Cache formats").

Keys: ``sha1`` of (absolute path, file size, mtime in ns, the
:class:`~rrn.data.sampling.Sampling` -- sample_every, fps, short_side -- and the key version):
everything that changes the frames, so an edited or replaced video is decoded again. For a
frame folder the size and mtime are its frame count with their total bytes and its latest
modification (:func:`rrn.data.frame_folder.fingerprint`). Both formats of a video share its
key (a ``.npy`` cache built before JPEG existed keeps its keys); the decoder backend and the
JPEG quality are not part of it.

Checks: an entry must hold what its key promises. Frames are ``(N, H, W, 3)`` uint8 whose
short side is the sampling's; every entry records its frame count, size and one CRC-32 per
frame, checked for the frames a read touches; ``rrn cache`` reads every frame of an entry and
compares its frame count with the video container's before counting it as done. A ``.npy``
written before checksums existed is checked against the container (frame count within a few
percent, exact frame size) once per process, and frames it serves must not be all zero. An
entry that fails is ignored with a warning, decoded again and rewritten.

Consistency: decoded frames are served as the cache then holds them (a JPEG entry is read back
after writing), so what a run sees never depends on whether the cache was cold.

Concurrency: a write goes to a unique temporary file in the cache folder, then
``os.replace`` renames it into place (atomic on POSIX and Windows), so readers never see a
partial file and any number of DataLoader workers or DDP ranks can cache the same video at
once (the last rename wins; for one format and quality the contents are identical). An
interrupted ``rrn cache`` leaves at worst stray ``*.tmp`` files, which the next one removes once
they are an hour old, and no worker process (they end with their parent); a rerun skips every
finished video (resumable).

Building a cache (``rrn cache``: every video of a split, the estimate of its disk before) is
:mod:`rrn.data.cache`'s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from rrn.choices import CacheFormat, names
from rrn.data.cache_entries import (
    OPENERS,
    SUFFIX,
    CachedFrames,
    CacheEntryError,
    NpyFrames,
    entry_format,
    write_jpeg,
    write_npy,
)
from rrn.data.decode import VideoDecodeError
from rrn.data.frame_counts import plausible, sampled_shape
from rrn.data.sampling import Sampling
from rrn.errors import ConfigError
from rrn.files import honour_umask

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Part of every key: bump it only when the meaning of cached frames changes."""
DEFAULT_CACHE_DIRNAME = ".rrn-cache"

CACHE_FORMATS = names(CacheFormat)  # declared once, in rrn.choices


def default_cache_dir(data_root) -> Path:
    """Where ``rrn cache`` writes by default and datasets look by default:
    ``<data_root>/.rrn-cache``."""
    return Path(data_root) / DEFAULT_CACHE_DIRNAME


def resolve_cache_dir(cache_dir, data_root) -> Path | None:
    """The cache a dataset should use: ``cache_dir`` when given, else ``<data_root>/.rrn-cache``
    when ``rrn cache`` has made it (so a cache is used transparently once built), else None."""
    if cache_dir is not None:
        return Path(cache_dir)
    if data_root is not None and default_cache_dir(data_root).is_dir():
        return default_cache_dir(data_root)
    return None


def _fingerprint(path: Path) -> tuple[object, int]:
    if path.is_dir():
        from rrn.data.frame_folder import fingerprint

        return fingerprint(path)
    st = path.stat()
    return st.st_size, st.st_mtime_ns


class FrameCache:
    """A folder of cached videos: ``<root>/<key[:2]>/<key>.jpgs`` or ``<key>.npy``.

    Args:
        root: Cache folder (created on the first write).
        format: What :meth:`put` writes: ``"jpeg"`` or ``"npy"``; :meth:`get` reads both.
        quality: JPEG quality (1-100) of the ``jpeg`` format.
    """

    def __init__(self, root, *, format: str = "jpeg", quality: int = 90):
        if format not in CACHE_FORMATS:
            raise ConfigError(
                f"cache format must be one of {', '.join(CACHE_FORMATS)}, got {format!r}"
            )
        if not 1 <= quality <= 100:
            raise ConfigError(f"JPEG quality must be in 1..100, got {quality}")
        self.root = Path(root)
        self.format = format
        self.quality = quality
        self._legacy_ok: set[Path] = set()  # checksum-less .npy entries checked in this process

    def key(self, path, sampling: Sampling) -> str:
        """The cache key of a video (or frame folder): changes whenever the cached frames would.

        Raises:
            OSError: the video is gone. VideoDecodeError: a frame folder without frames.
        """
        path = Path(path).resolve()
        size, mtime = _fingerprint(path)
        s = sampling  # fps is a float in Sampling: `--fps 5` and `fps: 5` find the same file
        ident = f"v{FORMAT_VERSION}|{path}|{size}|{mtime}|{s.sample_every}|{s.fps}|{s.short_side}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def file(self, path, sampling: Sampling, format: str | None = None) -> Path:
        """The entry file of ``path`` in ``format`` (default: the format this cache writes)."""
        key = self.key(path, sampling)
        return self.root / key[:2] / f"{key}{SUFFIX[format or self.format]}"

    def find(self, path, sampling: Sampling) -> Path | None:
        """The existing entry file of ``path`` (this cache's format first), or None."""
        try:
            key = self.key(path, sampling)
        except (OSError, VideoDecodeError):
            return None
        for fmt in (self.format, *(f for f in CACHE_FORMATS if f != self.format)):
            file = self.root / key[:2] / f"{key}{SUFFIX[fmt]}"
            if file.is_file():
                return file
        return None

    def get(self, path, sampling: Sampling, *, verify: bool = False) -> CachedFrames | None:
        """The cached frames of ``path`` (read lazily, see :class:`CachedFrames`), or ``None``
        if absent or not what the key promises (then with a warning: decode it again).

        Args:
            verify: Read and check every frame now and compare the frame count with the
                video's container (what ``rrn cache`` does before counting a video as done).
        """
        file = self.find(path, sampling)
        if file is None:
            return None  # nothing cached, or the video itself is gone: nothing can be trusted
        try:
            entry = OPENERS[entry_format(file)](file)
            self._check_promise(entry, Path(path), sampling, against_container=verify)
            if verify:
                entry.verify()
        except FileNotFoundError:
            return None  # removed between find and open
        except CacheEntryError as err:
            logger.warning("rrn: warning: ignoring %s; decoding the video again", err)
            return None
        return entry

    def _check_promise(
        self, entry: CachedFrames, path: Path, sampling: Sampling, *, against_container: bool
    ) -> None:
        """Frame size from the key's short side; frame count and size from the container for
        entries without checksums (once per process) or when asked."""
        _, h, w, _ = entry.shape
        if sampling.short_side is not None and min(h, w) != sampling.short_side:
            raise CacheEntryError(
                entry.file, f"frames are {h}x{w}, its key promises short side {sampling.short_side}"
            )
        legacy = isinstance(entry, NpyFrames) and entry.legacy
        if not (against_container or (legacy and entry.file not in self._legacy_ok)):
            return
        try:
            promised = sampled_shape(path, sampling)
        except (VideoDecodeError, ValueError):
            return  # the container says nothing usable: the entry is all there is
        if (h, w) != (promised.height, promised.width) or not plausible(entry.shape[0], promised):
            raise CacheEntryError(
                entry.file,
                f"holds {entry.shape[0]} frames of {h}x{w}; {path} promises "
                f"{promised.frames:.0f} of {promised.height}x{promised.width}",
            )
        self._legacy_ok.add(entry.file)

    def put(self, path, frames: np.ndarray | Iterable[np.ndarray], sampling: Sampling) -> Path:
        """Store frames atomically (temporary file + rename) in this cache's format.

        Args:
            frames: uint8 ``(N, H, W, 3)``; or, for the ``jpeg`` format, an iterable of
                ``(H, W, 3)`` frames (a decoder's), each encoded as it comes, so a long video
                is cached without holding its decoded frames (a ``.npy`` needs them all).

        Returns:
            The entry file.

        Raises:
            ValueError: ``frames`` are not uint8 ``(N, H, W, 3)`` with the sampling's short side.
        """
        if isinstance(frames, np.ndarray) or self.format != "jpeg":
            frames = np.ascontiguousarray(
                frames if isinstance(frames, np.ndarray) else list(frames), dtype=np.uint8
            )
            _check_frames(frames.shape, sampling)
        else:
            frames = _checked(frames, sampling)
        f = self.file(path, sampling)
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{f.stem}.", suffix=".tmp", dir=f.parent)
        try:
            honour_umask(fd)  # a shared cache: readable by whoever the umask lets read
            with os.fdopen(fd, "wb") as fh:
                if self.format == "npy":
                    write_npy(fh, frames)
                else:
                    write_jpeg(fh, frames, self.quality)
            os.replace(tmp, f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f


def _check_frames(shape: tuple[int, ...], sampling: Sampling) -> None:
    """``shape`` is ``(N >= 1, H, W, 3)`` with the sampling's short side (else ValueError)."""
    if (
        len(shape) != 4
        or shape[-1] != 3
        or shape[0] < 1
        or (sampling.short_side is not None and min(shape[1:3]) != sampling.short_side)
    ):
        raise ValueError(f"frames {shape} do not fit {sampling.describe()} (uint8 (N, H, W, 3))")


def _checked(frames: Iterable[np.ndarray], sampling: Sampling) -> Iterator[np.ndarray]:
    """The frames of an iterable, each checked as :meth:`FrameCache.put` checks an array."""
    for frame in frames:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        _check_frames((1, *frame.shape), sampling)
        yield frame


STALE_AFTER_S = 3600.0


def remove_stale_temporaries(root: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove the temporary files of cache writes that a killed process never finished.

    A write takes seconds; a temporary file untouched for ``older_than_s`` belongs to no live
    writer (a concurrent ``rrn cache`` or DataLoader worker writing now is left alone).

    Returns:
        How many files were removed.
    """
    now, removed = time.time(), 0
    for tmp in Path(root).glob("*/.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            continue  # another process removed or finished it meanwhile
    return removed

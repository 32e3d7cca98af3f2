"""Frame cache: each video decoded once into its sampled, resized uint8 frames on disk.

Sampling every 10th frame still decodes every frame (inter-coded video), so a training run
that decodes on the fly pays for 10x the frames it uses, every epoch. ``rrn cache`` pays once.

Formats (:mod:`~rrn.data.cache_entries`; one file per video either way, a chunk reads only its
``T`` frames, training and evaluation read both): ``jpeg`` (``<key>.jpgs``: JPEG frames behind
an index; the default) or ``npy`` (``<key>.npy``: uncompressed, memory-mapped). Measured by
``benchmarks/data.py`` (``benchmarks/data_results.md``): on real UCF-101 and HMDB-51 clips JPEG
at quality 90 takes ~9x less disk than ``.npy`` at short side 128 and ~14x less at 256 (mean
error ~2 grey levels), and a 2-worker DataLoader still delivers 0.75-0.91x the clips/s -- a cache of
UCF-101 at the training default (short side 256, every 10th frame) is ~4.7 GB as JPEG against
~65 GB as ``.npy``, of Kinetics-400 ~0.2 TB against ~2.8 TB. ``.npy`` stays one flag away
(``--cache-format npy``) for the last bit of read speed.

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
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
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
from rrn.runtime.workers import pool_worker_init

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


@dataclass
class CacheReport:
    """What :func:`build_cache` did."""

    videos: int = 0
    """Videos now in the cache (newly written + already there)."""
    already_cached: int = 0
    frames: int = 0
    bytes: int = 0
    """Bytes of their entries on disk."""
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(video_id, reason)`` of every video that could not be cached."""
    other_format: int = 0
    """Entries already there in the other format (kept: both are read)."""

    def summary(self, fmt: str | None = None, root: Path | None = None) -> str:
        lines = [
            f"cached {self.videos} videos ({self.already_cached} were already cached), "
            f"{self.frames} frames, {self.bytes / 1e6:.1f} MB on disk in {self.seconds:.1f} s; "
            f"{len(self.failures)} failed"
        ]
        if self.other_format:
            lines.append(
                f"  {self.other_format} of them are in the other format than "
                f"{fmt or 'asked for'} "
                "and were kept as they are (training reads both); to rewrite them, remove "
                f"{root or 'the cache folder'} and run rrn cache again"
            )
        lines += [f"  FAILED {vid}: {reason}" for vid, reason in self.failures]
        return "\n".join(lines)


def _cache_one(task) -> tuple[str, int, int, bool, str | None, bool]:
    """Worker: ensure one video is cached. Returns (video_id, frames, bytes on disk, was_cached,
    error, whether its entry is in the other format)."""
    source, path, video_id = task
    try:
        frames, was_cached = source.ensure_cached(path, strict=True)
        entry = source.cache.find(path, source.sampling)
        other = entry is not None and entry_format(entry) != source.cache.format
        return video_id, len(frames), entry.stat().st_size if entry else 0, was_cached, None, other
    except VideoDecodeError as err:
        return video_id, 0, 0, False, err.reason, False
    except OSError as err:
        return video_id, 0, 0, False, f"{type(err).__name__}: {err}", False


@dataclass
class CacheEstimate:
    """The disk a cache will take, estimated before building it (:func:`estimate_cache`)."""

    videos: int
    frames_per_video: float
    """Mean sampled frames per video, from the containers of ``probed`` videos."""
    probed: int
    bytes_per_frame: float
    """Measured on the entries of ``measured`` videos, in the cache's format."""
    measured: int
    format: str
    free_bytes: int | None
    """Free space on the cache's file system (None when it cannot be told)."""

    @property
    def total_bytes(self) -> float:
        return self.videos * self.frames_per_video * self.bytes_per_frame

    def summary(self) -> str:
        free = "" if self.free_bytes is None else f"; {_size(self.free_bytes)} free there"
        return (
            f"estimate: {self.videos} videos x {self.frames_per_video:.1f} frames (mean of "
            f"{self.probed} containers) x {self.bytes_per_frame / 1e3:.1f} kB/frame "
            f"({self.format}, "
            f"measured on {self.measured} videos, now cached) = "
            f"~{_size(self.total_bytes)}{free}"
        )

    @property
    def fits(self) -> bool:
        return self.free_bytes is None or self.total_bytes <= self.free_bytes


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _measure(paths, source, measure: int) -> tuple[int, int]:
    """Cache up to ``measure`` of ``paths`` (work ``build_cache`` then skips); the frames and
    bytes of their entries in the cache's format (entries of the other format, kept from an
    earlier run, say nothing about what this one writes)."""
    frames = nbytes = done = 0
    for path in paths:
        if done == measure:
            break
        try:
            got, _ = source.ensure_cached(path, strict=True)
            entry = source.cache.find(path, source.sampling)
        except (VideoDecodeError, OSError):
            continue
        if entry is not None and entry_format(entry) == source.cache.format:
            frames, nbytes, done = frames + len(got), nbytes + entry.stat().st_size, done + 1
    return frames, nbytes


def estimate_cache(records, source, *, probe: int = 100, measure: int = 3) -> CacheEstimate | None:
    """Estimate the disk the cache of ``records`` will take: mean sampled frames per video from
    the containers of up to ``probe`` videos (evenly spread over the list), times the bytes
    per frame of the entries of ``measure`` videos (the shortest probed ones first), cached
    here in ``source``'s format (so the estimate is this dataset's, at this quality).

    Returns:
        The estimate, or None when no probed video could be read.
    """
    paths = list(dict.fromkeys(str(r.path) for r in records))
    if not paths:
        return None
    step = max(1, len(paths) // probe)
    probed: dict[str, float] = {}
    for path in paths[::step][:probe]:
        try:
            probed[path] = sampled_shape(path, source.sampling).frames
        except (VideoDecodeError, ValueError, OSError):
            continue
    counts = list(probed.values())
    # the shortest probed videos are measured: untrimmed videos of an hour get their estimate in
    # seconds, not after three of them are cached (bytes per frame do not depend on length)
    shortest_first = sorted(paths, key=lambda p: probed.get(p, math.inf))
    frames, nbytes = _measure(shortest_first, source, measure)
    if not counts or not frames:
        return None
    source.cache.root.mkdir(parents=True, exist_ok=True)
    try:
        free = shutil.disk_usage(source.cache.root).free
    except OSError:
        free = None
    return CacheEstimate(
        len(paths),
        sum(counts) / len(counts),
        len(counts),
        nbytes / frames,
        min(measure, len(paths)),
        source.cache.format,
        free,
    )


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


def build_cache(records, source, *, workers: int = 1, progress: bool = True) -> CacheReport:
    """Decode every record once into the frame cache of ``source`` (skipping those already cached).

    A video that fails to decode is reported in ``failures`` and the run goes on.

    Args:
        records: :class:`~rrn.data.splits.VideoRecord` s (duplicates are cached once).
        source: The :class:`~rrn.data.source.FrameSource` (sampling, cache folder, decoder)
            whose cache to fill: the one training and evaluation will read.
        workers: Parallel decoding processes (1 = in this process).
        progress: Show a progress bar (on a terminal, see :mod:`rrn.progress`).

    Returns:
        The report: videos, frames, bytes, failures.
    """
    from rrn.progress import progress_bar

    if source.cache is None:
        raise ValueError("build_cache needs a FrameSource with a cache folder")
    remove_stale_temporaries(source.cache.root)
    seen: dict[Path, str] = {}
    for r in records:
        seen.setdefault(Path(r.path), r.video_id)
    tasks = [(source, str(p), vid) for p, vid in seen.items()]
    report = CacheReport()
    start = time.perf_counter()
    bar = progress_bar(enabled=progress, total=len(tasks), desc="caching", unit="video")

    def account(result) -> None:
        video_id, n, nbytes, was_cached, error, other = result
        report.other_format += other
        if error is not None:
            report.failures.append((video_id, error))
            logger.warning("rrn: warning: skipped %s: %s", video_id, error)
        else:
            report.videos += 1
            report.already_cached += was_cached
            report.frames += n
            report.bytes += nbytes
        bar.update(1)

    try:
        if workers <= 1:
            for task in tasks:
                account(_cache_one(task))
        else:
            # spawn: forking a process whose torch/OpenMP threads are running can deadlock;
            # pool_worker_init: workers of a killed rrn cache end instead of living on, and leave
            # Ctrl-C to the main process
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=mp.get_context("spawn"),
                initializer=pool_worker_init,
                initargs=(os.getpid(),),
            ) as pool:
                try:
                    for fut in as_completed([pool.submit(_cache_one, t) for t in tasks]):
                        account(fut.result())
                # Ctrl-C: the videos in hand finish, the others are not started
                except BaseException:
                    # wait=True: the with block's own shutdown(wait=True) would otherwise reset
                    # cancel_futures before the pool's thread reads it, and every video got cached
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    report.failures.sort()
    report.seconds = time.perf_counter() - start
    return report

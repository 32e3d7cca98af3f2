"""Building the frame cache (``rrn cache``): every video of a split decoded once into its entry,
in worker processes, with the disk it will take estimated before (:func:`estimate_cache`) and a
report after (:func:`build_cache`). A video that fails is reported and the others go on; a rerun
skips every finished video.

The cache itself (keys, checked reads, atomic writes, where it lives) is
:mod:`rrn.data.cache_store`; its names are importable from here too, as before.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from rrn.data.cache_entries import entry_format
from rrn.data.cache_store import (  # noqa: F401 - the storage's names, importable from here as before
    CACHE_FORMATS,
    DEFAULT_CACHE_DIRNAME,
    FORMAT_VERSION,
    STALE_AFTER_S,
    FrameCache,
    default_cache_dir,
    remove_stale_temporaries,
    resolve_cache_dir,
)
from rrn.data.decode import VideoDecodeError
from rrn.data.frame_counts import sampled_shape
from rrn.runtime.workers import pool_worker_init

logger = logging.getLogger(__name__)


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


@dataclass(kw_only=True)
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
        videos=len(paths),
        frames_per_video=sum(counts) / len(counts),
        probed=len(counts),
        bytes_per_frame=nbytes / frames,
        measured=min(measure, len(paths)),
        format=source.cache.format,
        free_bytes=free,
    )


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

"""Frame cache: each video decoded once into its sampled, resized uint8 frames on disk.

Sampling every 10th frame still decodes every frame (inter-coded video), so a training run
that decodes on the fly pays for 10x the frames it uses, every epoch. ``rrn cache`` pays once.

Format: one uncompressed ``.npy`` per video (``(N, H, W, 3)`` uint8), opened memory-mapped,
so a training item reads only the ``T`` frames of its chunk. Measured by
``benchmarks/data.py`` (``benchmarks/data_results.md``; 2 CPU cores, 320x240 videos, short
side 128, every 10th frame): reading a whole cached video takes 0.31 ms from ``.npy`` vs
2.8 ms from a zip of JPEGs (q=90), i.e. ~9x faster (a T=2 chunk via mmap: 0.19 ms), and
DataLoader throughput from the ``.npy`` cache is ~10x that of direct decoding. JPEG is ~6x
smaller on disk (155 vs 985 kB per video). UCF-101 at short side 128, every 10th frame, is about
13k videos x 18 frames x 128x171x3 B = ~16 GB as ``.npy`` — acceptable for the speed, and the
memory-mapped read of one chunk is what keeps many DataLoader workers cheap.

Keys: ``sha1`` of (absolute path, file size, mtime in ns, the
:class:`~rrn.data.sampling.Sampling` -- sample_every, fps, short_side -- and the format
version): everything that changes the frames, so an edited or replaced video is decoded
again. The decoder backend is not part of the key (both produce the same sampled frames up to
resize rounding).

Concurrency: a write goes to a unique temporary file in the cache folder, then
``os.replace`` renames it into place (atomic on POSIX and Windows), so readers never see a
partial file and any number of DataLoader workers or DDP ranks can cache the same video at
once (the last rename wins; the contents are identical). An interrupted ``rrn cache`` leaves
at worst stray ``*.tmp`` files; a rerun skips every finished video (resumable).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rrn.data.decode import VideoDecodeError
from rrn.data.sampling import Sampling

FORMAT_VERSION = 1
DEFAULT_CACHE_DIRNAME = ".rrn-cache"


def default_cache_dir(data_root) -> Path:
    """Where ``rrn cache`` writes by default and datasets look by default: ``<data_root>/.rrn-cache``."""
    return Path(data_root) / DEFAULT_CACHE_DIRNAME


def resolve_cache_dir(cache_dir, data_root) -> Path | None:
    """The cache a dataset should use: ``cache_dir`` when given, else ``<data_root>/.rrn-cache``
    when ``rrn cache`` has made it (so a cache is used transparently once built), else None."""
    if cache_dir is not None:
        return Path(cache_dir)
    if data_root is not None and default_cache_dir(data_root).is_dir():
        return default_cache_dir(data_root)
    return None


class FrameCache:
    """A folder of cached videos: ``<root>/<key[:2]>/<key>.npy``.

    Args:
        root: Cache folder (created on the first write).
    """

    def __init__(self, root):
        self.root = Path(root)

    def key(self, path, sampling: Sampling) -> str:
        """The cache key of a video: changes whenever the cached frames would."""
        path = Path(path).resolve()
        st = path.stat()
        s = sampling  # fps is a float in Sampling: `--fps 5` and `fps: 5` find the same file
        ident = f"v{FORMAT_VERSION}|{path}|{st.st_size}|{st.st_mtime_ns}|{s.sample_every}|{s.fps}|{s.short_side}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def file(self, path, sampling: Sampling) -> Path:
        key = self.key(path, sampling)
        return self.root / key[:2] / f"{key}.npy"

    def get(self, path, sampling: Sampling, *, mmap: bool = True) -> np.ndarray | None:
        """The cached frames ``(N, H, W, 3)`` uint8 (memory-mapped by default), or ``None`` if absent."""
        try:
            f = self.file(path, sampling)
        except OSError:
            return None  # the video itself is gone: nothing cached can be trusted
        try:
            return np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            # Not written by us (renames are atomic): a damaged disk or a foreign file. Recompute.
            warnings.warn(f"ignoring unreadable cache file {f}: {err}", stacklevel=2)
            return None

    def put(self, path, frames: np.ndarray, sampling: Sampling) -> Path:
        """Store frames atomically (temporary file + rename); returns the cache file."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        f = self.file(path, sampling)
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{f.stem}.", suffix=".tmp", dir=f.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, frames, allow_pickle=False)
            os.replace(tmp, f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f


@dataclass
class CacheReport:
    """What :func:`build_cache` did."""

    videos: int = 0
    """Videos now in the cache (newly written + already there)."""
    already_cached: int = 0
    frames: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """``(video_id, reason)`` of every video that could not be cached."""

    def summary(self) -> str:
        lines = [
            f"cached {self.videos} videos ({self.already_cached} were already cached), "
            f"{self.frames} frames, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s; "
            f"{len(self.failures)} failed"
        ]
        lines += [f"  FAILED {vid}: {reason}" for vid, reason in self.failures]
        return "\n".join(lines)


def _cache_one(task) -> tuple[str, int, int, bool, str | None]:
    """Worker: ensure one video is cached. Returns (video_id, frames, bytes, was_cached, error)."""
    source, path, video_id = task
    try:
        frames, was_cached = source.ensure_cached(path, strict=True)
        return video_id, int(frames.shape[0]), int(frames.nbytes), was_cached, None
    except VideoDecodeError as err:
        return video_id, 0, 0, False, err.reason
    except OSError as err:
        return video_id, 0, 0, False, f"{type(err).__name__}: {err}"


def build_cache(records, source, *, workers: int = 1, progress: bool = True) -> CacheReport:
    """Decode every record once into the frame cache of ``source`` (skipping those already cached).

    A video that fails to decode is reported in ``failures`` and the run goes on.

    Args:
        records: :class:`~rrn.data.splits.VideoRecord` s (duplicates are cached once).
        source: The :class:`~rrn.data.source.FrameSource` (sampling, cache folder, decoder)
            whose cache to fill: the one training and evaluation will read.
        workers: Parallel decoding processes (1 = in this process).
        progress: Show a progress bar on stderr.

    Returns:
        The report: videos, frames, bytes, failures.
    """
    from tqdm import tqdm

    if source.cache is None:
        raise ValueError("build_cache needs a FrameSource with a cache folder")
    seen: dict[Path, str] = {}
    for r in records:
        seen.setdefault(Path(r.path), r.video_id)
    tasks = [(source, str(p), vid) for p, vid in seen.items()]
    report = CacheReport()
    start = time.perf_counter()
    bar = tqdm(total=len(tasks), desc="caching", unit="video", disable=not progress, file=sys.stderr)

    def account(result) -> None:
        video_id, n, nbytes, was_cached, error = result
        if error is not None:
            report.failures.append((video_id, error))
            bar.write(f"warning: skipped {video_id}: {error}")
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
            # spawn: forking a process whose torch/OpenMP threads are running can deadlock
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                for fut in as_completed([pool.submit(_cache_one, t) for t in tasks]):
                    account(fut.result())
    finally:
        bar.close()
    report.failures.sort()
    report.seconds = time.perf_counter() - start
    return report

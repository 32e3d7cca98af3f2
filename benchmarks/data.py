"""Data-loading benchmark: rrn direct decode vs rrn frame cache vs torchvision's UCF101.

On one generated UCF-layout folder (320x240 MPEG-4 part 2 videos, like UCF-101's Xvid), all
measured side by side in one run:

* time to first batch and clips/s of a training DataLoader over one epoch, for
  ``VideoChunkDataset`` decoding directly, the same reading the frame cache, and
  ``torchvision.datasets.UCF101`` (needs torchcodec + FFmpeg; skipped with a note if absent);
* the cache format: one ``.npy`` per video (memory-mapped) vs a zip of JPEGs, read speed and size.

Writes the table to ``benchmarks/data_results.md``. Usage: ``python benchmarks/data.py [--videos 48]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from rrn.data import (
    ClipTransform,
    FrameSource,
    Sampling,
    VideoChunkDataset,
    build_cache,
    collate_chunks,
    default_short_side,
    load_split,
)
from rrn.data.cache import FrameCache
from rrn.data.synth import write_video

FRAME_SIZE = 112
SAMPLING = Sampling(sample_every=10, short_side=default_short_side(FRAME_SIZE))  # short side 128


def make_folder(root: Path, videos: int, frames: int) -> None:
    """UCF-layout folder of 320x240 MPEG-4 videos with a moving square (plus split files)."""
    classes = ["ClassA", "ClassB", "ClassC", "ClassD"]
    rng = np.random.default_rng(0)
    train, test = [], []
    yy, xx = np.mgrid[0:240, 0:320]
    for v in range(videos):
        k = v % len(classes)
        name = classes[k]
        g, c = v // len(classes) + 1, 1
        rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
        bg = (rng.random((240 // 16, 320 // 16, 3)) * 200).repeat(16, 0).repeat(16, 1)
        x0, y0 = rng.uniform(0, 320), rng.uniform(0, 240)
        clip = np.empty((frames, 240, 320, 3), np.uint8)
        for t in range(frames):
            img = bg.copy()
            m = (np.abs((xx - x0 - 3 * t) % 320 - 20) < 20) & (np.abs((yy - y0) % 240 - 20) < 20)
            img[m] = 255
            clip[t] = img
        write_video(root / rel, clip, fps=25, codec="mpeg4", options={"qscale": "4"})
        (test if g % 4 == 1 else train).append(rel if g % 4 == 1 else f"{rel} {k + 1}")
    (root / "classInd.txt").write_text("".join(f"{i + 1} {n}\r\n" for i, n in enumerate(classes)))
    (root / "trainlist01.txt").write_text("".join(f"{line}\r\n" for line in train))
    (root / "testlist01.txt").write_text("".join(f"{line}\r\n" for line in test))


def time_loader(loader, max_batches: int | None = None) -> tuple[float, float, int]:
    """(seconds to first batch, clips/s over the whole pass, clips) of one pass over a loader."""
    start = time.perf_counter()
    first = None
    clips = 0
    for i, batch in enumerate(loader):
        if first is None:
            first = time.perf_counter() - start
        clips += len(batch["label"]) if isinstance(batch, dict) else len(batch[0])
        if max_batches is not None and i + 1 >= max_batches:
            break
    return first, clips / (time.perf_counter() - start), clips


def train_set(records, args, *, cache_dir=None, chunks_per_video: int = 1) -> VideoChunkDataset:
    """rrn's training set: every 10th frame at short side 128 (PyAV, or the frame cache), 112 px crops."""
    source = FrameSource(SAMPLING, cache_dir=cache_dir, decoder="pyav")
    return VideoChunkDataset(records, source=source, transform=ClipTransform(FRAME_SIZE, train=True),
                             context=args.context, chunks_per_video=chunks_per_video, seed=0)


def bench_rrn(records, cache_dir, args) -> tuple[float, float, int]:
    ds = train_set(records, args, cache_dir=cache_dir, chunks_per_video=args.chunks_per_video)
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        collate_fn=collate_chunks, persistent_workers=False)
    return time_loader(loader)


def bench_torchvision(root: Path, args) -> tuple[float, float, int] | str:
    try:
        import torchcodec  # noqa: F401
    except ImportError:
        return "skipped: torchvision.datasets.UCF101 needs torchcodec (and FFmpeg), not installed"
    from torchvision.datasets import UCF101

    start = time.perf_counter()
    try:
        # Same clips as rrn's: T frames, every 10th frame (frame_rate = fps / 10).
        ds = UCF101(str(root), str(root), frames_per_clip=args.context, step_between_clips=args.context,
                    frame_rate=2.5, fold=1, train=True, num_workers=args.workers, output_format="TCHW")
    except Exception as err:  # noqa: BLE001
        return f"skipped: torchvision UCF101 failed ({type(err).__name__}: {err})"
    scan = time.perf_counter() - start  # UCF101 indexes every video before the first clip
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        collate_fn=lambda b: [torch.stack([x[0] for x in b])])
    first, rate, clips = time_loader(loader, max_batches=len(ds) // args.batch_size)
    return scan + first, rate, clips, scan


UCF101_SPLIT1_VIDEOS = 13320  # torchvision's UCF101 indexes the whole folder, train and test


def _first_batch_note(tv, direct, videos: int) -> str:
    """Measured ratio here, and the linear extrapolation of torchvision's scan to UCF-101."""
    per_video = tv[3] / videos
    full = per_video * UCF101_SPLIT1_VIDEOS + (tv[0] - tv[3])
    return (f" First batch vs torchvision here ({videos} videos): **{tv[0] / direct[0]:.1f}x** sooner "
            f"(target >= 20x). torchvision scans every video of the folder before its first clip "
            f"({per_video * 1e3:.1f} ms per video here) while rrn's first batch does not depend on the "
            f"dataset's size: for UCF-101's {UCF101_SPLIT1_VIDEOS} videos that is ~{full:.0f} s vs "
            f"{direct[0]:.2f} s, **~{full / direct[0]:.0f}x** (linear extrapolation, not measured).")


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def bench_real(args) -> list[str]:
    """On real UCF-101 clips (``../shared/data`` when present): torchvision's per-video index
    cost, which its first batch waits for on the whole folder, vs rrn's first batch."""
    mini = SHARED / "ucf101_mini" / "UCF-101"
    if not mini.is_dir():
        return []
    try:
        import torchcodec  # noqa: F401
        from torchvision.datasets.video_utils import VideoClips
    except ImportError:
        return ["", "Real UCF-101 clips: torchvision's column skipped (torchcodec not installed)."]
    paths = sorted(str(p) for p in mini.glob("*/*.mp4"))
    paths += sorted(str(p) for p in (SHARED / "videos" / "ucf101_avi").glob("*/*.avi"))
    VideoClips(paths[:2], clip_length_in_frames=args.context, frames_between_clips=args.context,
               frame_rate=2.5, num_workers=0)  # warm-up: imports, FFmpeg initialisation
    start = time.perf_counter()
    VideoClips(paths, clip_length_in_frames=args.context, frames_between_clips=args.context,
               frame_rate=2.5, num_workers=args.workers, output_format="TCHW")
    per_video = (time.perf_counter() - start) / len(paths)
    split = load_split("ucf101", mini, SHARED / "ucfTrainTestlist", 1, missing="skip")
    ds = train_set(split.train, args)
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        collate_fn=collate_chunks)
    first, _, _ = time_loader(loader, max_batches=1)
    full = per_video * UCF101_SPLIT1_VIDEOS
    return ["", f"Real UCF-101 clips ({len(paths)} files of `../shared/data`: H.264 re-encodes and "
            f"original Xvid AVIs): torchvision's index costs **{per_video * 1e3:.1f} ms per video** "
            f"({args.workers} workers), i.e. ~{full:.0f} s over UCF-101's {UCF101_SPLIT1_VIDEOS} "
            f"videos before its first clip (extrapolated from the measured per-video cost); rrn's "
            f"first batch on these clips: **{first:.2f} s**, whatever the dataset's size "
            f"(**~{full / first:.0f}x** sooner at UCF-101 scale)."]


def bench_formats(records, short_side: int) -> dict:
    """Read speed and size: one .npy per video vs a zip of JPEG frames (q=90)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    tmp = Path(tempfile.mkdtemp())
    cache = FrameCache(tmp / "npy")
    sampling = Sampling(sample_every=10, short_side=short_side)
    decode = FrameSource(sampling, decoder="pyav")  # no cache: always decodes
    npy_bytes = jpg_bytes = 0
    zips = []
    for r in records:
        frames = decode(r.path)
        npy_bytes += cache.put(r.path, frames, sampling).stat().st_size
        zpath = tmp / f"{len(zips)}.zip"
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as z:
            for i, f in enumerate(frames):
                z.writestr(f"{i:05d}.jpg", encode_jpeg(torch.from_numpy(f).permute(2, 0, 1), quality=90).numpy().tobytes())
        jpg_bytes += zpath.stat().st_size
        zips.append(zpath)
    t = time.perf_counter()
    for r in records:
        np.array(cache.get(r.path, sampling))  # full read into memory
    t_npy = time.perf_counter() - t
    t = time.perf_counter()
    for r in records:
        np.asarray(cache.get(r.path, sampling)[2:4])  # one chunk of T=2 (mmap)
    t_npy_chunk = time.perf_counter() - t
    t = time.perf_counter()
    for zpath in zips:
        with zipfile.ZipFile(zpath) as z:
            np.stack([decode_jpeg(torch.frombuffer(bytearray(z.read(n)), dtype=torch.uint8)).permute(1, 2, 0).numpy()
                      for n in z.namelist()])
    t_jpg = time.perf_counter() - t
    shutil.rmtree(tmp)
    n = len(records)
    return {"npy_ms": 1e3 * t_npy / n, "npy_chunk_ms": 1e3 * t_npy_chunk / n, "jpg_ms": 1e3 * t_jpg / n,
            "npy_kb": npy_bytes / n / 1e3, "jpg_kb": jpg_bytes / n / 1e3}


def _every(sampling: Sampling) -> str:
    """'every 10th frame' (the rate half of :meth:`Sampling.describe`)."""
    return sampling.describe().split(", ")[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=48)
    p.add_argument("--frames", type=int, default=150, help="frames per video (UCF-101: ~186 on average)")
    p.add_argument("--context", type=int, default=2, help="T")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunks-per-video", type=int, default=2)
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--out", default=str(Path(__file__).with_name("data_results.md")))
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rrn-bench-data-"))
    try:
        t = time.perf_counter()
        make_folder(root, args.videos, args.frames)
        print(f"generated {args.videos} videos in {time.perf_counter() - t:.1f} s under {root}", file=sys.stderr)
        split = load_split("ucf101", root, root, 1)
        records = split.train

        direct = bench_rrn(records, None, args)
        # outside the data root: torchvision's UCF101 would take any folder there for a class
        cache_dir = Path(tempfile.mkdtemp(prefix="rrn-bench-cache-"))
        source = FrameSource(SAMPLING, cache_dir=cache_dir, decoder="pyav")  # what `rrn cache` fills
        report = build_cache(records, source, workers=args.workers, progress=False)
        cached = bench_rrn(records, cache_dir, args)
        tv = bench_torchvision(root, args)
        real = bench_real(args)
        fmt = bench_formats(records[:16], SAMPLING.short_side)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if "cache_dir" in locals():
            shutil.rmtree(cache_dir, ignore_errors=True)

    rows = [("rrn, direct decode (PyAV)", direct), ("rrn, frame cache (.npy, mmap)", cached)]
    lines = [
        "# Data loading benchmark (`benchmarks/data.py`)",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU; torch {torch.__version__}; "
        f"{len(records)} training videos (320x240 MPEG-4, {args.frames} frames, 25 fps) in the UCF-101 layout; "
        f"{_every(SAMPLING)}, T={args.context}, {args.chunks_per_video} chunks/video, batch {args.batch_size}, "
        f"{args.workers} DataLoader workers, {FRAME_SIZE} px crops from frames decoded at short side "
        f"{SAMPLING.short_side}.",
        "",
        "| loader | first batch (s) | clips/s | clips |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {r[0]:.3f} | {r[1]:.1f} | {r[2]} |" for name, r in rows]
    if isinstance(tv, str):
        lines.append(f"| torchvision.datasets.UCF101 | – | – | {tv} |")
    else:
        lines.append(f"| torchvision.datasets.UCF101 (raw uint8 clips, no resize/crop) | {tv[0]:.3f} | {tv[1]:.1f} | {tv[2]} |")
    lines += [
        "",
        f"Cached vs direct clips/s: **{cached[1] / direct[1]:.1f}x** (target >= 5x)."
        + ("" if isinstance(tv, str) else _first_batch_note(tv, direct, len(records) + len(split.test))),
        f"Building the cache (`rrn cache`, {args.workers} workers): {report.seconds:.1f} s for {report.videos} videos, "
        f"{report.frames} frames, {report.bytes / 1e6:.1f} MB.",
        *real,
        "",
        "Cache format (16 videos, short side 128, every 10th frame):",
        "",
        "| format | read whole video (ms) | read one T=2 chunk (ms) | size per video (kB) |",
        "|---|---:|---:|---:|",
        f"| one `.npy` per video (chosen) | {fmt['npy_ms']:.2f} | {fmt['npy_chunk_ms']:.2f} (mmap) | {fmt['npy_kb']:.0f} |",
        f"| zip of JPEGs (q=90) | {fmt['jpg_ms']:.2f} | (decode all or index) | {fmt['jpg_kb']:.0f} |",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

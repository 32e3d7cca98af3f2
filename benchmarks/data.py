"""Data-loading benchmark: rrn direct decode vs rrn frame cache vs torchvision's UCF101.

On one generated UCF-layout folder (320x240 MPEG-4 part 2 videos, like UCF-101's Xvid), all
measured side by side in one run:

* time to first batch and clips/s of a training DataLoader over one epoch, for
  ``VideoChunkDataset`` decoding directly, the same reading the frame cache, and
  ``torchvision.datasets.UCF101`` (needs torchcodec + FFmpeg; skipped with a note if absent);
* the two cache formats (``--cache-format npy|jpeg``), on real UCF-101 and HMDB-51 clips from
  ``../shared/data`` when present (else the generated videos): bytes per cached frame (file
  sizes of real cache entries, headers, index and checksums included) and JPEG's error at
  short sides 128 and 256; DataLoader clips/s from each format with 2 workers; and the disk a
  cache of UCF-101, HMDB-51 and Kinetics-400 takes, as measured bytes per frame times each
  dataset's sampled frame count (:data:`DATASETS`, sources stated there).

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
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from rrn.data import (
    ClipTransform,
    FrameSource,
    Sampling,
    VideoChunkDataset,
    VideoRecord,
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


def train_set(
    records,
    args,
    *,
    cache_dir=None,
    chunks_per_video: int = 1,
    cache_format: str = "npy",
    frame_size: int = FRAME_SIZE,
) -> VideoChunkDataset:
    """rrn's training set: every 10th frame at short side 8/7 of the crop (PyAV, or the frame
    cache), ``frame_size`` crops."""
    sampling = Sampling(sample_every=10, short_side=default_short_side(frame_size))
    source = FrameSource(sampling, cache_dir=cache_dir, decoder="pyav", cache_format=cache_format)
    return VideoChunkDataset(
        records,
        source=source,
        transform=ClipTransform(frame_size, train=True),
        context=args.context,
        chunks_per_video=chunks_per_video,
        seed=0,
    )


def bench_rrn(records, cache_dir, args, cache_format: str = "npy") -> tuple[float, float, int]:
    ds = train_set(
        records,
        args,
        cache_dir=cache_dir,
        chunks_per_video=args.chunks_per_video,
        cache_format=cache_format,
    )
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=collate_chunks,
        persistent_workers=False,
    )
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
        ds = UCF101(
            str(root),
            str(root),
            frames_per_clip=args.context,
            step_between_clips=args.context,
            frame_rate=2.5,
            fold=1,
            train=True,
            num_workers=args.workers,
            output_format="TCHW",
        )
    except Exception as err:
        return f"skipped: torchvision UCF101 failed ({type(err).__name__}: {err})"
    scan = time.perf_counter() - start  # UCF101 indexes every video before the first clip
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=lambda b: [torch.stack([x[0] for x in b])],
    )
    first, rate, clips = time_loader(loader, max_batches=len(ds) // args.batch_size)
    return scan + first, rate, clips, scan


UCF101_SPLIT1_VIDEOS = 13320  # torchvision's UCF101 indexes the whole folder, train and test


def _first_batch_note(tv, direct, videos: int) -> str:
    """Measured ratio here, and the linear extrapolation of torchvision's scan to UCF-101."""
    per_video = tv[3] / videos
    full = per_video * UCF101_SPLIT1_VIDEOS + (tv[0] - tv[3])
    return (
        f" First batch vs torchvision here ({videos} videos): **{tv[0] / direct[0]:.1f}x** sooner "
        f"(target >= 20x). torchvision scans every video of the folder before its first clip "
        f"({per_video * 1e3:.1f} ms per video here) while rrn's first batch does not depend on the "
        f"dataset's size: for UCF-101's {UCF101_SPLIT1_VIDEOS} videos that is ~{full:.0f} s vs "
        f"{direct[0]:.2f} s, **~{full / direct[0]:.0f}x** (linear extrapolation, not measured)."
    )


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
    VideoClips(
        paths[:2],
        clip_length_in_frames=args.context,
        frames_between_clips=args.context,
        frame_rate=2.5,
        num_workers=0,
    )  # warm-up: imports, FFmpeg initialisation
    start = time.perf_counter()
    VideoClips(
        paths,
        clip_length_in_frames=args.context,
        frames_between_clips=args.context,
        frame_rate=2.5,
        num_workers=args.workers,
        output_format="TCHW",
    )
    per_video = (time.perf_counter() - start) / len(paths)
    split = load_split("ucf101", mini, SHARED / "ucfTrainTestlist", 1, missing="skip")
    ds = train_set(split.train, args)
    loader = DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=collate_chunks,
    )
    first, _, _ = time_loader(loader, max_batches=1)
    full = per_video * UCF101_SPLIT1_VIDEOS
    return [
        "",
        f"Real UCF-101 clips ({len(paths)} files of `../shared/data`: H.264 re-encodes and "
        f"original Xvid AVIs): torchvision's index costs **{per_video * 1e3:.1f} ms per video** "
        f"({args.workers} workers), i.e. ~{full:.0f} s over UCF-101's {UCF101_SPLIT1_VIDEOS} "
        f"videos before its first clip (extrapolated from the measured per-video cost); rrn's "
        f"first batch on these clips: **{first:.2f} s**, whatever the dataset's size "
        f"(**~{full / first:.0f}x** sooner at UCF-101 scale).",
    ]


# Frame counts of whole datasets (what a cache of every video holds), every 10th frame.
DATASETS = {
    # Soomro et al. 2012, Table 1: 13,320 clips, mean length 7.21 s, 25 fps, 320x240.
    "UCF-101": {
        "videos": 13320,
        "frames": 7.21 * 25,
        "source": "13,320 clips x 7.21 s mean x 25 fps (Soomro et al. 2012)",
    },
    # Kuehne et al. 2011: 6,766 clips; the paper gives no mean length: the mean of the HMDB-51
    # clips measured here stands in (filled in by disk_table).
    "HMDB-51": {
        "videos": 6766,
        "frames": None,
        "source": "6,766 clips (Kuehne et al. 2011) x the mean "
        "length of the HMDB-51 clips measured here",
    },
    # Kay et al. 2017: ~246k train + 20k validation clips of ~10 s; YouTube: 30 fps assumed (an
    # upper bound; many are 25), 16:9 frames assumed (most of YouTube).
    "Kinetics-400": {
        "videos": 266000,
        "frames": 10 * 30,
        "aspect": 16 / 9,
        "source": "~246k train + 20k validation clips x 10 s x 30 fps, 16:9 frames "
        "(Kay et al. 2017; fps and aspect assumed)",
    },
}


def real_clips() -> dict[str, list[Path]]:
    """Real clips to measure cache entries on: every 4th of the UCF-101 clips, all HMDB-51 ones."""
    ucf = sorted((SHARED / "ucf101_mini" / "UCF-101").glob("*/*.mp4"))[::4]
    hmdb = sorted((SHARED / "videos" / "hmdb51").glob("*/*.mp4"))
    return {name: clips for name, clips in (("UCF-101", ucf), ("HMDB-51", hmdb)) if clips}


def entry_sizes(clips: list[Path], short_side: int) -> dict:
    """Bytes per cached frame of both formats (real entries: headers, index and checksums
    included), pixels per frame, source frames per clip, JPEG's mean abs error (grey levels)."""
    tmp = Path(tempfile.mkdtemp())
    sampling = Sampling(sample_every=10, short_side=short_side)
    caches = {fmt: FrameCache(tmp / fmt, format=fmt, quality=90) for fmt in ("npy", "jpeg")}
    total = {"npy": 0, "jpeg": 0}
    frames = pixels = source_frames = 0
    err = 0.0
    try:
        for clip in clips:
            decoded = FrameSource(sampling, decoder="pyav")(clip)
            for fmt, cache in caches.items():
                total[fmt] += cache.put(clip, decoded, sampling).stat().st_size
            err += float(
                np.abs(np.asarray(caches["jpeg"].get(clip, sampling)).astype(int) - decoded).sum()
            )
            frames += len(decoded)
            pixels += decoded.shape[1] * decoded.shape[2] * len(decoded)
            source_frames += decode_count(clip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "npy": total["npy"] / frames,
        "jpeg": total["jpeg"] / frames,
        "pixels": pixels / frames,
        "clips": len(clips),
        "frames_per_clip": source_frames / len(clips),
        "jpeg_error": err / (pixels * 3),
    }


def decode_count(clip: Path) -> int:
    """Frames of a clip (every frame decoded)."""
    return len(FrameSource(Sampling(sample_every=1, short_side=16), decoder="pyav")(clip))


def bench_loader_formats(records, args) -> dict:
    """Training DataLoader throughput from a cache of each format, ``args.workers`` workers, at
    the paper's 112 px (short side 128) and the training default 224 px (short side 256): the
    median of ``args.repeats`` passes, the formats interleaved (a shared machine's load then
    weighs on both alike)."""
    out = {}
    for frame_size in (112, 224):
        dirs = {fmt: Path(tempfile.mkdtemp(prefix=f"rrn-bench-{fmt}-")) for fmt in ("npy", "jpeg")}
        try:
            sets = {
                fmt: train_set(
                    records,
                    args,
                    cache_dir=d,
                    chunks_per_video=args.loader_chunks,
                    cache_format=fmt,
                    frame_size=frame_size,
                )
                for fmt, d in dirs.items()
            }
            for ds in sets.values():
                build_cache(records, ds.source, workers=args.workers, progress=False)
            rates: dict[str, list[float]] = {fmt: [] for fmt in sets}
            for _ in range(args.repeats):
                for fmt, ds in sets.items():
                    loader = DataLoader(
                        ds,
                        batch_size=args.batch_size,
                        shuffle=True,
                        num_workers=args.workers,
                        collate_fn=collate_chunks,
                    )
                    rate, clips = steady_rate(loader)
                    rates[fmt].append(rate)
            for fmt, r in rates.items():
                out[(frame_size, fmt)] = (float(np.median(r)), clips)
        finally:
            for d in dirs.values():
                shutil.rmtree(d, ignore_errors=True)
    return out


def steady_rate(loader) -> tuple[float, int]:
    """(clips/s after the first batch, clips): worker start-up excluded, it is paid once per epoch."""
    it = iter(loader)
    next(it)
    start, clips = time.perf_counter(), 0
    for batch in it:
        clips += len(batch["label"])
    return clips / (time.perf_counter() - start), clips


def disk_table(sizes: dict) -> list[str]:
    """Disk of a whole-dataset cache: measured bytes per frame x the dataset's sampled frames.

    A dataset without clips here (Kinetics-400) gets ``.npy``'s exact bytes for its frame size
    and JPEG's bytes per pixel measured on the real clips, pooled.
    """
    rows = []
    hmdb = sizes.get((128, "HMDB-51"))
    for name, d in DATASETS.items():
        frames = d["frames"] or (hmdb["frames_per_clip"] if hmdb else None)
        if frames is None:
            rows.append(f"| {name} | n/a | " + " | ".join(["n/a"] * 4) + " | no clips measured |")
            continue
        sampled = frames / 10 + 0.5  # every 10th frame of each clip: ceil(n / 10) on average
        cells = []
        for short in (128, 256):
            m = sizes.get((short, name))
            if m is None:
                pooled = [v for (s, _), v in sizes.items() if s == short]
                pixels = short * round(short * d["aspect"])
                per_px = sum(v["jpeg"] * v["clips"] for v in pooled) / sum(
                    v["pixels"] * v["clips"] for v in pooled
                )
                npy, jpeg = 3 * pixels + 4, per_px * pixels  # + one CRC per frame
            else:
                npy, jpeg = m["npy"], m["jpeg"]
            cells += [d["videos"] * sampled * npy, d["videos"] * sampled * jpeg]
        rows.append(
            f"| {name} | {d['videos'] * sampled / 1e6:.2f} M ({sampled:.1f}/clip) | "
            + " | ".join(_gb(c) for c in cells)
            + f" | {d['source']} |"
        )
    return rows


def _gb(n: float) -> str:
    return f"{n / 1e12:.2f} TB" if n >= 1e12 else f"{n / 1e9:.1f} GB"


def _every(sampling: Sampling) -> str:
    """'every 10th frame' (the rate half of :meth:`Sampling.describe`)."""
    return sampling.describe().split(", ")[0]


def measure(args) -> dict:
    """Every measurement of the report, on a generated UCF-layout folder and the real clips."""
    root = Path(tempfile.mkdtemp(prefix="rrn-bench-data-"))
    dirs = {
        fmt: Path(tempfile.mkdtemp(prefix=f"rrn-bench-cache-{fmt}-")) for fmt in ("npy", "jpeg")
    }
    try:
        t = time.perf_counter()
        make_folder(root, args.videos, args.frames)
        print(
            f"generated {args.videos} videos in {time.perf_counter() - t:.1f} s under {root}",
            file=sys.stderr,
        )
        split = load_split("ucf101", root, root, 1)
        m = {"split": split, "records": split.train, "direct": bench_rrn(split.train, None, args)}
        # outside the data root: torchvision's UCF101 would take any folder there for a class
        for fmt, cache_dir in dirs.items():  # what `rrn cache --format fmt` fills
            source = FrameSource(SAMPLING, cache_dir=cache_dir, decoder="pyav", cache_format=fmt)
            m[f"report_{fmt}"] = build_cache(
                split.train, source, workers=args.workers, progress=False
            )
            m[f"cached_{fmt}"] = bench_rrn(split.train, cache_dir, args, fmt)
        m["tv"] = bench_torchvision(root, args)
        m["real"] = bench_real(args)
        clips = real_clips() or {"generated": [r.path for r in split.train[:16]]}
        m["clips"] = clips
        m["sizes"] = {
            (short, name): entry_sizes(c, short)
            for short in (128, 256)
            for name, c in clips.items()
        }
        loader_clips = clips.get("UCF-101") or [r.path for r in split.train[:24]]
        m["loader_clips"] = len(loader_clips)
        m["loaders"] = bench_loader_formats([VideoRecord(c, 0, c.stem) for c in loader_clips], args)
    finally:
        for d in (root, *dirs.values()):
            shutil.rmtree(d, ignore_errors=True)
    return m


def format_lines(m: dict, args) -> list[str]:
    """The cache-format section: bytes per frame, JPEG's error, loader throughput, disk sizes."""
    sizes, loaders = m["sizes"], m["loaders"]
    where = ", ".join(f"{len(c)} {name} clips" for name, c in m["clips"].items())
    lines = [
        "",
        "## Cache formats: `.npy` vs JPEG (quality 90), every 10th frame",
        "",
        f"Bytes per cached frame: real cache entries written by `FrameCache` ({where} of "
        "`../shared/data`), file size / frames, headers, index and checksums included.",
        "",
        "| clips | short side | frame (px) | `.npy` B/frame | JPEG B/frame | `.npy` / JPEG | JPEG mean abs error (grey levels) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (short, name), v in sorted(sizes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(
            f"| {name} | {short} | {v['pixels']:.0f} | {v['npy']:.0f} | {v['jpeg']:.0f} | "
            f"{v['npy'] / v['jpeg']:.1f}x | {v['jpeg_error']:.2f} |"
        )
    lines += [
        "",
        f"Training DataLoader from each cache ({m['loader_clips']} UCF-101 clips, "
        f"{args.loader_chunks} chunks/video, T={args.context}, batch {args.batch_size}, "
        f"{args.workers} workers; clips/s after the first batch, median of {args.repeats} "
        "interleaved passes):",
        "",
        "| crop (short side) | `.npy` clips/s | JPEG clips/s | JPEG / `.npy` |",
        "|---|---:|---:|---:|",
    ]
    for size in (112, 224):
        npy, jpg = loaders[(size, "npy")][0], loaders[(size, "jpeg")][0]
        lines.append(
            f"| {size} px ({default_short_side(size)}) | {npy:.0f} | {jpg:.0f} | {jpg / npy:.2f} |"
        )
    lines += [
        "",
        "Disk for a cache of a whole dataset (train + test), every 10th frame = measured bytes per "
        "frame (above) x the dataset's frame count (sources in the last column; an estimate, "
        "not a measurement of the full dataset):",
        "",
        "| dataset | cached frames | `.npy` @128 | JPEG @128 | `.npy` @256 | JPEG @256 | frame count from |",
        "|---|---:|---:|---:|---:|---:|---|",
        *disk_table(sizes),
        "",
    ]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=48)
    p.add_argument(
        "--frames", type=int, default=150, help="frames per video (UCF-101: ~180 on average)"
    )
    p.add_argument("--context", type=int, default=2, help="T")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunks-per-video", type=int, default=2)
    p.add_argument(
        "--loader-chunks", type=int, default=8, help="chunks per video, format loader benchmark"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="passes per format in the format loader benchmark"
    )
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--out", default=str(Path(__file__).with_name("data_results.md")))
    args = p.parse_args()
    load = os.getloadavg()[0]
    m = measure(args)
    records, split, direct, tv = m["records"], m["split"], m["direct"], m["tv"]
    cached, report = m["cached_npy"], m["report_npy"]
    rows = [
        ("rrn, direct decode (PyAV)", direct),
        ("rrn, frame cache (`.npy`, mmap)", cached),
        ("rrn, frame cache (JPEG q90)", m["cached_jpeg"]),
    ]
    lines = [
        "# Data loading benchmark (`benchmarks/data.py`)",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU; torch {torch.__version__}; "
        f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other jobs share the cores); "
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
        lines.append(
            f"| torchvision.datasets.UCF101 (raw uint8 clips, no resize/crop) | {tv[0]:.3f} | {tv[1]:.1f} | {tv[2]} |"
        )
    lines += [
        "",
        f"Cached (`.npy`) vs direct clips/s: **{cached[1] / direct[1]:.1f}x** (target >= 5x); "
        f"JPEG cache vs direct: **{m['cached_jpeg'][1] / direct[1]:.1f}x**."
        + (
            ""
            if isinstance(tv, str)
            else _first_batch_note(tv, direct, len(records) + len(split.test))
        ),
        f"Building the cache (`rrn cache`, {args.workers} workers): {report.seconds:.1f} s for {report.videos} videos, "
        f"{report.frames} frames, {report.bytes / 1e6:.1f} MB as `.npy`; {m['report_jpeg'].seconds:.1f} s, "
        f"{m['report_jpeg'].bytes / 1e6:.1f} MB as JPEG.",
        *m["real"],
        *format_lines(m, args),
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

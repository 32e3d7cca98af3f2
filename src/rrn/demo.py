"""``rrn demo``: the idea of the paper, shown end to end on a laptop CPU in a few minutes.

1. ``rrn synth``: a synthetic action dataset whose classes differ only in the direction of
   motion, so no single frame tells the class (:mod:`rrn.data.synth`).
2. Three ResNet-18s trained identically from scratch: a per-frame model (T=1, no skip) and
   two RRNs with one identity temporal skip (T=2), early (``block1``, stage 1 at 1/4 of the
   input resolution) and late (``block4``, the paper's best position on UCF-101).
3. Each evaluated on held-out groups (video = mean of its chunks' probabilities).
4. A table (video error, clip error, time) and ``report.md`` with the curves, the confusion
   matrices and a per-frame timeline of the winner, saying which position won and why.

Deterministic for a given ``--seed`` (CPU, same thread count).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrn.config import EvalConfig
from rrn.files import atomic_write_json, atomic_write_text

#: (key, label, --skip) of the three models, in the order they are trained.
MODELS = (
    ("per_frame", "per-frame ResNet (T=1)", "none"),
    ("rrn_block1", "RRN T=2, skip at block1", "block1"),
    ("rrn_block4", "RRN T=2, skip at block4", "block4"),
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; ``quick`` is the small setting the test suite runs."""

    classes: int = 4
    videos_per_class: int = 64
    frames: int = 12
    size: int = 64
    frame_size: int = 64
    epochs: int = 8
    chunks_per_video: int = 4
    batch_size: int = 32
    lr: float = 1e-3

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            videos_per_class=8,
            frames=6,
            size=32,
            frame_size=32,
            epochs=1,
            chunks_per_video=1,
            batch_size=8,
        )


def _synth_settings(data: Path) -> dict[str, Any] | None:
    """The settings ``rrn synth`` recorded in ``data``, if the dataset is complete."""
    meta = data / "rrn_synth.json"
    if not (meta.is_file() and (data / "testlist01.txt").is_file()):
        return None
    saved = json.loads(meta.read_text())
    return {k: saved.get(k) for k in ("classes", "videos_per_class", "frames", "size", "seed")}


def _train_config(
    settings: DemoSettings,
    data: Path,
    cache: Path,
    skip: str,
    *,
    out: Path,
    seed: int,
    progress: bool,
):
    from rrn.config import resolve_config

    return resolve_config(
        [
            (
                "rrn demo",
                {
                    "dataset": "ucf101",
                    "data_root": str(data),
                    "split_dir": str(data),
                    "split": 1,
                    "sample_every": 1,
                    "frame_size": settings.frame_size,
                    "hflip": False,
                    # a flip turns right into left
                    "chunks_per_video": settings.chunks_per_video,
                    "cache_dir": str(cache),
                    "cache_format": "npy",
                    # lossless: the 2-3 px texture pan is the whole signal; the frames are tiny
                    "arch": "resnet18",
                    "skip": skip,
                    "skip_type": "identity",
                    "weights": "none",
                    "epochs": settings.epochs,
                    "batch_size": settings.batch_size,
                    "lr": settings.lr,
                    "update_chunks": settings.batch_size,
                    # one Adam step per micro-batch: tiny data, many steps
                    "out": str(out),
                    "seed": seed,
                    "device": "cpu",
                    "workers": 0,
                    "val_every": 0,
                    "checkpoint_every": 0,
                    "progress": progress,
                    # the demo owns its folder: a rerun retrains (same seed, same numbers)
                    "overwrite": True,
                },
            )
        ]
    )


def _synthetic_videos(out: Path, settings: DemoSettings, seed: int) -> Path:
    """``out/data``: the demo's synthetic videos (kept from an earlier run with the same
    settings, with their cache)."""
    from rrn.data import make_synthetic_dataset

    data = out / "data"
    t0 = time.perf_counter()
    wanted = {
        "classes": settings.classes,
        "videos_per_class": settings.videos_per_class,
        "frames": settings.frames,
        "size": settings.size,
        "seed": seed,
    }
    # a rerun: same seed, same videos; keep them (and the cache)
    if _synth_settings(data) == wanted:
        logger.info(f"rrn demo: reusing the synthetic videos in {data}")
    else:
        shutil.rmtree(out / "cache", ignore_errors=True)  # frames of other videos
        make_synthetic_dataset(data, **wanted)
        logger.info(
            f"rrn demo: wrote {settings.classes * settings.videos_per_class} synthetic "
            f"videos ({settings.classes} motion directions) to {data} in "
            f"{time.perf_counter() - t0:.1f}s"
        )
    return data


def run_demo(
    out: str | os.PathLike = "runs/demo",
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole demo into ``out``; returns the table rows and the report path."""
    from rrn.evaluation import evaluate_checkpoint
    from rrn.train import fit

    settings = DemoSettings.quick() if quick else DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = _synthetic_videos(out, settings, seed)
    rows = []
    for key, label, skip in MODELS:
        run_dir = out / key
        cfg = _train_config(
            settings, data, out / "cache", skip, out=run_dir, seed=seed, progress=progress
        )
        logger.info(f"rrn demo: training {label}")
        t0 = time.perf_counter()
        fit(cfg)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = evaluate_checkpoint(
            run_dir,
            settings=EvalConfig(which="last"),
            overrides={"run": {"device": "cpu", "workers": 0, "progress": progress}},
        )
        eval_s = time.perf_counter() - t0
        logger.info(
            f"rrn demo: {label}: video error {result['video_error']:.3f} on "
            f"{result['num_videos']} test videos ({train_s:.0f}s training)"
        )
        rows.append(
            {
                "key": key,
                "model": label,
                "skip": skip,
                "video_error": result["video_error"],
                "clip_error": 1 - result["clip_top1"],
                "train_s": train_s,
                "eval_s": eval_s,
                "num_videos": result["num_videos"],
                "num_chunks": result["num_chunks"],
                "protocol": result["protocol"],
            }
        )
    total_s = time.perf_counter() - start
    report = write_report(out, rows, settings, seed, total_s, quick)
    logger.info(format_table(rows))
    logger.info(f"rrn demo: {total_s:.0f}s in all; report: {report}")
    return {"rows": rows, "report": str(report), "seconds": total_s}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The demo's result table in Markdown."""
    lines = [
        "| model | video error | clip error | train time | eval time |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['video_error']:.3f} | {r['clip_error']:.3f} | "
            f"{r['train_s']:.0f} s | {r['eval_s']:.1f} s |"
        )
    return "\n".join(lines)


def verdict(
    rows: list[dict[str, Any]], classes: int, frame_size: int = DemoSettings.frame_size
) -> list[str]:
    """What the numbers say, in words: which skip position won and why (from the measurement)."""
    chance = 1 - 1 / classes
    by = {r["key"]: r for r in rows}
    frame, early, late = by["per_frame"], by["rrn_block1"], by["rrn_block4"]
    best = min((early, late), key=lambda r: r["video_error"])
    other = late if best is early else early
    text = [
        f"Chance is a video error of {chance:.3f} ({classes} classes). The per-frame model ends at "
        f"{frame['video_error']:.3f}: a single frame of this dataset is a uniformly random view of "
        "a texture, so nothing in it tells the direction of motion, and a per-frame network can "
        "only memorise its training videos."
    ]
    if best["video_error"] < other["video_error"]:
        text.append(
            f"**{best['model']} won** with a video error of {best['video_error']:.3f}, against "
            f"{other['video_error']:.3f} for {other['model']}."
        )
    else:
        text.append(f"Both skip positions tie at a video error of {best['video_error']:.3f}.")
    if best is early and best["video_error"] < other["video_error"]:
        text.append(
            "Why: the temporal skip adds the previous frame's block input to the current frame's "
            "residual sum. At block1 that input is a feature map at 1/4 of the frame's resolution, "
            "where the scene's shift of 2-3 px between frames is still a shift of most of a "
            "feature cell: the block's convolutions see both positions and can tell which way "
            "things moved. "
            "At block4 the map is 1/32 of the frame "
            f"({-(-frame_size // 32)}x{-(-frame_size // 32)} "
            f"cells at {frame_size} px) and every unit summarises "
            "the whole view: a few pixels of motion no longer change it, and what is left is "
            "appearance, which here carries no class information. On UCF-101 the paper finds the "
            "deep position best: real actions are recognised mostly by appearance (scene, objects, "
            "pose), which a late skip combines across frames; motion between frames is visible at "
            "high resolution, appearance deep in the network."
        )
    elif best is late and best["video_error"] < other["video_error"]:
        text.append(
            "Why: block4 combines the appearance of both frames after the whole network has "
            "summarised them; on this run that was enough to read the motion direction, although "
            "motion between frames is usually better visible at high resolution (block1)."
        )
    return text


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    settings: DemoSettings,
    seed: int,
    total_s: float,
    quick: bool,
) -> Path:
    """``report.md`` with the table, the verdict, curves, confusion matrices and a timeline."""
    figures = _figures(out, rows)
    lines = [
        "# rrn demo: temporal skip connections on a synthetic action dataset",
        "",
        f"{settings.classes} classes = motion directions of a panning scene "
        f"({settings.videos_per_class} videos per class, {settings.frames} frames of "
        f"{settings.size}x{settings.size} px, groups disjoint between train and test; `rrn "
        f"synth`). ResNet-18 from scratch on {settings.frame_size} px crops, {settings.epochs} "
        "epochs of Adam "
        f"(lr {settings.lr}, batches of {settings.batch_size} chunks), identical "
        f"for all three models; seed {seed}{'; --quick setting' if quick else ''}. "
        f"Total time {total_s:.0f} s on {os.cpu_count()} CPU cores.",
        "",
        format_table(rows),
        "",
        f"Errors on the {rows[0]['num_videos']} test videos of each model's last checkpoint "
        f"(nothing selected): {'; '.join(dict.fromkeys(r['protocol'] for r in rows))}; clip error "
        "per chunk.",
        "",
        *[p + "\n" for p in verdict(rows, settings.classes, settings.frame_size)],
        "## Training curves",
        "",
    ]
    for r in rows:
        lines.append(f"**{r['model']}**: ![curves]({r['key']}/curves.png)")
        lines.append("")
    lines += ["## Confusion matrices (test videos)", ""]
    for r in rows:
        lines.append(f"**{r['model']}**: ![confusion]({r['key']}/eval_split1_confusion.png)")
        lines.append("")
    if figures.get("timeline"):
        lines += [
            "## Streaming prediction of one test video",
            "",
            f"Per-frame class probabilities of the best model from `forward_video` "
            f"(`rrn predict --timeline`): ![timeline]({figures['timeline']})",
            "",
        ]
    lines += ["Reproduce: `rrn demo" + (" --quick" if quick else "") + f" --seed {seed}`."]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_json(
        out / "results.json", {"rows": rows, "seconds": total_s, "settings": settings.__dict__}
    )
    return path


def _figures(out: Path, rows: list[dict[str, Any]]) -> dict[str, str]:
    """A timeline of the best RRN on its first test video (streaming ``forward_video``)."""
    from rrn.data import load_split
    from rrn.predict import Predictor

    best = min((r for r in rows if r["key"] != "per_frame"), key=lambda r: r["video_error"])
    split = load_split("ucf101", out / "data", out / "data", 1)
    video = split.test[0]
    predictor = Predictor(out / best["key"] / "last.pt")
    name = "timeline.png"
    predictor.plot_timeline(predictor.predict(video.path), out / name)
    return {"timeline": name}

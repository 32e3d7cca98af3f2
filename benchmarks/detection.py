"""Benchmark online evaluation of a detection model: frames/s of ``rrn eval`` on untrimmed video
against the bare step's.

For each arch and frame size, on ``rrn synth --layout thumos14``'s 4 untrimmed test videos
(~33 s each at 25 frames/s, every 2nd frame sampled), with a random-weight RRN (identity skip
at ``block1``, 5 classes; speed does not depend on the weights):

* *bare step*: ``model.step`` on one preprocessed frame at batch 1, the state carried: the
  model's work per frame live, nothing else (``benchmarks/stream.py``'s "RRN step");
  frames/s = 1 / the median call;
* *rrn eval*: ``rrn eval RUN``, the model online over each whole test video (one sampled frame
  per step, the state carried through the video): frames/s = scored frames / the evaluation's
  scoring time as its JSON reports it (reading every frame, decoding it or from the frame
  cache, preprocessing it, the model), (a) decoding the videos, (b) from the frame cache (JPEG),
  each after one untimed evaluation (the first calls at a shape set up the kernels).

Target (issue 21): online evaluation runs at the step's speed, ``rrn eval``'s frames/s within
1.3x of the bare step's (step frames/s / eval frames/s <= 1.3), decoding or cached.

    .venv/bin/python benchmarks/detection.py            # ~5 min on 2 idle cores
    .venv/bin/python benchmarks/detection.py --quick    # seconds: resnet18 at 64 px, short videos
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as under the rrn command line

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import emit

TARGET = 1.3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archs", default="resnet18,resnet50", help="comma-separated")
    p.add_argument("--sizes", default="112", help="frame sides in px (default: 112)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    p.add_argument("--repeats", type=int, default=60, help="timed step calls (default: 60)")
    p.add_argument("--quick", action="store_true", help="resnet18 at 64 px, short videos")
    p.add_argument(
        "--out", default="benchmarks/detection_results.md", help="markdown file, '-' for none"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.sizes, args.repeats = "resnet18", "64", 10
        args.out = "-" if args.out == p.get_default("out") else args.out
    return args


def dataset(work: Path, size: int, quick: bool) -> tuple[Path, list[str]]:
    """The synthetic untrimmed videos (frames of short side ``round(size * 8 / 7)``) and the
    flags that locate them."""
    from rrn.data import make_synthetic_dataset
    from rrn.data.sampling import default_short_side

    data = make_synthetic_dataset(
        work / f"data{size}",
        classes=2 if quick else 4,
        videos_per_class=4 if quick else 16,
        frames=6 if quick else 50,
        size=default_short_side(size),
        layout="thumos14",
    )
    flags = ["--dataset", "thumos14", "--data-root", str(data)]
    return data, flags + ["--split-dir", str(data / "annotations")]


def random_run(work: Path, data: Path, arch: str, size: int) -> Path:
    """A run folder whose last.pt is a random RRN with the data's classes and sampling."""
    from rrn.checkpoint import make_checkpoint, save_checkpoint
    from rrn.config import resolve_config
    from rrn.data.splits import load_annotations
    from rrn.model import build_model

    classes = list(load_annotations("thumos14", data, data / "annotations").classes)
    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(classes), skip_blocks=("block1",)).eval()
    settings = {
        "data": {
            "dataset": "thumos14",
            "data_root": str(data),
            "split_dir": str(data / "annotations"),
            "sample_every": 2,
            "frame_size": size,
        },
        "model": {"arch": arch, "skip": "block1", "weights": "none"},
    }
    cfg = resolve_config([("benchmark", settings)])
    run = work / f"run-{arch}-{size}"
    save_checkpoint(run / "last.pt", make_checkpoint(model, config=cfg.to_dict(), classes=classes))
    return run


def step_fps(run: Path, size: int, repeats: int) -> float:
    """Frames/s of the bare step at batch 1 (1 / the median call, 3 warm-up calls first)."""
    from rrn.checkpoint import load_model

    model = load_model(run)
    frames = torch.randn(16, 3, size, size, generator=torch.Generator().manual_seed(0))
    state, times = None, []
    with torch.inference_mode():
        for i in range(repeats + 3):
            t0 = time.perf_counter()
            _, state = model.step(frames[i % len(frames)][None], state)
            if i >= 3:
                times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def eval_fps(run: Path, out: Path) -> dict:
    """``rrn eval RUN``'s result (its timing: frames, seconds, frames/s)."""
    from rrn.config import EvalConfig
    from rrn.evaluation import evaluate_run

    overrides = {"run": {"device": "cpu", "workers": 0, "progress": False}}
    result = evaluate_run(str(run), settings=EvalConfig(out=str(out)), overrides=overrides)
    return result["results"][0]


def measure(args, work: Path, arch: str, size: int) -> dict:
    from rrn.cli import main as rrn

    data, flags = dataset(work, size, args.quick)
    run = random_run(work, data, arch, size)
    step = step_fps(run, size, args.repeats)
    eval_fps(run, work / f"eval-warmup-{arch}-{size}")  # first calls at these shapes: untimed
    decoded = eval_fps(run, work / f"eval-decoded-{arch}-{size}")  # no cache built yet
    cache = ["--sample-every", "2", "--frame-size", str(size), "--no-progress", "-q"]
    assert rrn(["cache", *flags, *cache]) == 0
    cached = eval_fps(run, work / f"eval-cached-{arch}-{size}")
    return {"arch": arch, "size": size, "step": step, "decoded": decoded, "cached": cached}


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| arch | px | bare step frames/s | rrn eval frames/s, decoding | rrn eval frames/s, "
        "cached | step / eval, decoding | step / eval, cached | frames scored |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        dec, cac = r["decoded"]["timing"], r["cached"]["timing"]
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['step']:.1f} | {dec['frames_per_s']:.1f} | "
            f"{cac['frames_per_s']:.1f} | **{r['step'] / dec['frames_per_s']:.2f}x** | "
            f"**{r['step'] / cac['frames_per_s']:.2f}x** | {dec['frames']} |"
        )
    return lines


def targets(rows: list[dict]) -> list[str]:
    worst = max(
        r["step"] / r[kind]["timing"]["frames_per_s"]
        for r in rows
        for kind in ("decoded", "cached")
    )
    mark = "x" if worst <= TARGET else " "
    missed = "" if worst <= TARGET else " — **missed**"
    return [
        f"- [{mark}] rrn eval frames/s within {TARGET}x of the bare step's, decoding or cached "
        f"(worst: step / eval = {worst:.2f}x){missed}"
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rrn-detection-bench-") as tmp:
        rows = [
            measure(args, Path(tmp), arch, size)
            for arch in args.archs.split(",")
            for size in map(int, args.sizes.split(","))
        ]
    after = os.getloadavg() if load else None
    command = "python benchmarks/detection.py " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = (
        f"Machine: {os.cpu_count()} CPU cores, {args.threads} torch threads, torch "
        f"{torch.__version__}; load average {load[0]:.1f} at start, {after[0]:.1f} at the end "
        "(other jobs share the cores)."
        if load
        else ""
    )
    text = "\n".join(
        [
            "# Online evaluation benchmark",
            "",
            f"`{command.strip()}` — {time.perf_counter() - started:.0f} s in all.",
            "",
            machine,
            "",
            f"rrn synth --layout thumos14's test videos ({rows[0]['decoded']['num_videos']} "
            "untrimmed videos, every 2nd frame), a random RRN (identity skip at block1); bare "
            f"step: model.step at batch 1, median of {args.repeats} calls; rrn eval: the scoring "
            "time its JSON reports (frames read, preprocessed and stepped through the model).",
            "",
            *table(rows),
            "",
            "## Targets",
            "",
            *targets(rows),
            "",
        ]
    )
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

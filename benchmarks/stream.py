"""Benchmark online recognition: the cost of one new prediction at batch 1.

Per sampled frame, for each arch and frame size, at 1 and 2 CPU threads, measured side by
side with interleaved repeats (A, B, C, D, A, B, ...):

* *plain frame*: torchvision's ResNet on the frame (no temporal context at all);
* *RRN step*: ``RecurrentResNet.step`` in eager PyTorch, state carried (T=2, identity skip at
  ``block4``, the paper's best);
* *RRN step, ONNX Runtime*: the same step exported by ``rrn export`` (state as explicit
  tensors), run by onnxruntime with the same thread count;
* *window*: a clip model re-running the last T frames per prediction, every frame through
  the whole network (the RRN's ``forward(clip, greedy=False)``): what window-based
  recognizers do to stream.

Targets (issue 9): RRN step <= 1.1x the plain frame; ONNX Runtime no slower than eager; the
window at least T times slower than the step. End to end: ``rrn stream`` on a real UCF-101
clip of ``../shared/data`` (ResNet-50 RRN at 112 px, ``--sample-every 10``, 2 threads) keeps
up with the clip's frame rate: the margin is seconds of video per second of processing, and
a ``--realtime`` run (the file delivered at its frame rate) must drop no frame.

    .venv/bin/python benchmarks/stream.py            # ~5 min on 2 idle cores
    .venv/bin/python benchmarks/stream.py --quick    # seconds: resnet18 at 64 px, a generated clip
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import emit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NUM_CLASSES = 101
SKIPS = ("block4",)  # T = 2
METHODS = ("plain", "step", "ort", "window")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--archs", default="resnet18,resnet50", help="comma-separated (default: resnet18,resnet50)"
    )
    p.add_argument("--sizes", default="112,224", help="frame sides in px (default: 112,224)")
    p.add_argument("--threads", default="1,2", help="CPU thread counts (default: 1,2)")
    p.add_argument("--repeats", type=int, default=40, help="timed calls per method (default: 40)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default: 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in seconds: resnet18 at 64 px, 1 thread, 5 repeats, a generated clip",
    )
    p.add_argument(
        "--out", default="benchmarks/stream_results.md", help="markdown file, '-' for none"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.sizes, args.threads, args.repeats, args.warmup = (
            "resnet18",
            "64",
            "1",
            5,
            1,
        )
        args.out = "-" if args.out == p.get_default("out") else args.out
    return args


# ---------------------------------------------------------------------------- per frame
def trained_like(arch: str, size: int):
    """A random RRN dressed as rrn.load_model's output (classes, inputs), for export."""
    from rrn.data.sampling import Sampling, default_short_side
    from rrn.data.transforms import InputSpec
    from rrn.model import build_model

    torch.manual_seed(0)
    model = build_model(arch, NUM_CLASSES, SKIPS, "identity").eval()
    model.info = dataclasses.replace(
        model.info,
        classes=tuple(f"class{k}" for k in range(NUM_CLASSES)),
        inputs=InputSpec(size, Sampling(10, None, default_short_side(size))),
    )
    return model


def methods(arch: str, size: int, threads: int, onnx_dir: Path) -> dict[str, Callable[[], None]]:
    """The four ways of getting one new prediction, each a call on the next frame."""
    from rrn.export import ExportedModel

    model = trained_like(arch, size)
    plain = getattr(torchvision.models, arch)(num_classes=NUM_CLASSES).eval()
    runner = ExportedModel(onnx_dir, threads=threads)
    T = model.temporal_context
    frames = torch.randn(16, 3, size, size, generator=torch.Generator().manual_seed(0))
    np_frames = frames.numpy()
    state = {"step": None, "t": 0}

    def nxt() -> int:
        state["t"] = (state["t"] + 1) % len(frames)
        return state["t"]

    def step() -> None:
        _, state["step"] = model.step(frames[nxt()][None], state["step"])

    def window() -> None:
        t = nxt()
        idx = [(t - k) % len(frames) for k in range(T - 1, -1, -1)]
        model(frames[idx][None], greedy=False)  # (1, T, 3, S, S): the last T frames, all the way

    return {
        "plain": lambda: plain(frames[nxt()][None]),
        "step": step,
        "ort": lambda: runner.step(np_frames[nxt()][None]),
        "window": window,
    }


def time_interleaved(
    fns: dict[str, Callable[[], None]], repeats: int, warmup: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                if r >= warmup:
                    times[name].append(1e3 * (time.perf_counter() - t0))
    return times


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def per_frame_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], list[dict]]:
    from rrn.export import export_model

    rows = []
    for arch in args.archs.split(","):
        for size in map(int, args.sizes.split(",")):
            onnx_dir = workdir / f"{arch}-{size}"
            export_model(trained_like(arch, size), onnx_dir, "onnx", check=False)
            for threads in map(int, args.threads.split(",")):
                torch.set_num_threads(threads)
                times = time_interleaved(
                    methods(arch, size, threads, onnx_dir), args.repeats, args.warmup
                )
                rows.append(
                    {
                        "arch": arch,
                        "size": size,
                        "threads": threads,
                        "p50": {m: statistics.median(times[m]) for m in METHODS},
                        "p95": {m: p95(times[m]) for m in METHODS},
                    }
                )
                print(
                    f"  {arch} {size}px {threads} thread(s): "
                    + ", ".join(f"{m} {rows[-1]['p50'][m]:.1f} ms" for m in METHODS),
                    file=sys.stderr,
                )
    head = (
        "| arch | px | threads | plain frame ms p50 / p95 | RRN step ms p50 / p95 | "
        "ONNX Runtime step ms p50 / p95 | window (T=2) ms p50 / p95 | step frames/s | "
        "step / plain | ORT / step | window / step |"
    )
    lines = [head, "|" + "---|" * 3 + "---:|" * 8]
    for r in rows:
        a, b = r["p50"], r["p95"]
        cells = [f"{a[m]:.1f} / {b[m]:.1f}" for m in METHODS]
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['threads']} | "
            + " | ".join(cells)
            + f" | {1e3 / a['step']:.1f} | **{a['step'] / a['plain']:.3f}x** | "
            f"**{a['ort'] / a['step']:.2f}x** | **{a['window'] / a['step']:.2f}x** |"
        )
    return lines, rows


# ---------------------------------------------------------------------------- end to end
def e2e_clip(quick: bool, workdir: Path) -> tuple[Path, str]:
    """The longest real UCF-101 test clip of ../shared/data (generated when it is absent)."""
    manifest = SHARED / "ucf101_mini" / "manifest.csv"
    if not quick and manifest.is_file():
        import csv

        rows = [r for r in csv.DictReader(manifest.open()) if r["official_split1"] == "test"]
        best = max(rows, key=lambda r: float(r["duration_s"]))
        return SHARED / "ucf101_mini" / "UCF-101" / best["path"], "real UCF-101 clip"
    from rrn.data.synth import make_synthetic_dataset

    data = make_synthetic_dataset(
        workdir / "synth", classes=2, videos_per_class=2, frames=50, size=96
    )
    why = "--quick" if quick else f"{manifest} not found"
    return sorted(data.glob("*/*.avi"))[0], f"generated clip ({why})"


def e2e(args: argparse.Namespace, workdir: Path) -> tuple[list[str], dict]:
    """``rrn stream`` (its CLI entry point), on the whole file and with --realtime."""
    from rrn.checkpoint import make_checkpoint, save_checkpoint
    from rrn.cli import main as cli_main
    from rrn.config import resolve_config

    arch, size = ("resnet18", 64) if args.quick else ("resnet50", 112)
    model = trained_like(arch, size)
    cfg = resolve_config(
        [
            (
                "flags",
                {
                    "data": {"frame_size": size, "sample_every": 10},
                    "model": {"arch": arch, "skip": ",".join(SKIPS)},
                },
            )
        ]
    )
    ckpt = save_checkpoint(
        workdir / "e2e" / "last.pt",
        make_checkpoint(model, config=cfg.to_dict(), classes=model.classes),
    )
    clip, what = e2e_clip(args.quick, workdir)
    results = {}
    for mode, extra in (("whole", []), ("realtime", ["--realtime"])):
        events = workdir / f"{mode}.jsonl"
        argv = [
            "stream",
            str(ckpt),
            str(clip),
            "--sample-every",
            "10",
            "--threads",
            "2",
            "--out",
            str(workdir / f"{mode}.mp4"),
            "--json",
            str(events),
            *extra,
        ]
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            if cli_main(argv) != 0:
                raise RuntimeError(f"rrn {' '.join(argv)} failed")
        end = json.loads(events.read_text().splitlines()[-1])
        results[mode] = {**end, "call_s": time.perf_counter() - t0}
    w, rt = results["whole"], results["realtime"]
    margin = w["duration"] / w["wall"]
    lines = [
        f"`rrn stream` on a {what} (`{clip.name}`, {w['frames']} frames, {w['duration']:.2f} s), "
        f"{arch} RRN (T=2 @block4) at {size} px, `--sample-every 10 --threads 2`, with "
        "`--out annotated.mp4 --json events.jsonl`:",
        "",
        "| run | frames read | classified | dropped | step latency p50 / p95 ms | processing s | video s / processing s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| whole file | {w['frames']} | {w['classified']} | {w['dropped']} | "
        f"{w['latency_ms_p50']:.1f} / {w['latency_ms_p95']:.1f} | {w['wall']:.2f} | **{margin:.1f}x** |",
        f"| `--realtime` (file delivered at its frame rate) | {rt['frames']} | {rt['classified']} | "
        f"{rt['dropped']} | {rt['latency_ms_p50']:.1f} / {rt['latency_ms_p95']:.1f} | {rt['wall']:.2f} | "
        f"{rt['duration'] / rt['wall']:.2f}x |",
        "",
        f"Processing = decoding every frame, the model on every 10th, writing every frame to the "
        f"annotated video, from the first frame to the last (`rrn.cli.main` in this process; "
        f"loading the checkpoint and opening the file before it took {w['call_s'] - w['wall']:.1f} s).",
    ]
    return lines, {"margin": margin, "dropped": rt["dropped"], "what": what}


# ---------------------------------------------------------------------------- main
def targets(rows: list[dict], e2e_result: dict) -> list[str]:
    worst_step = max(r["p50"]["step"] / r["p50"]["plain"] for r in rows)
    worst_ort = max(r["p50"]["ort"] / r["p50"]["step"] for r in rows)
    worst_window = min(r["p50"]["window"] / r["p50"]["step"] for r in rows)
    checks = [
        (
            f"RRN step <= 1.1x the plain ResNet frame, T=2 @block4 (worst row: {worst_step:.3f}x)",
            worst_step <= 1.1,
        ),
        (f"ONNX Runtime step no slower than eager (worst row: {worst_ort:.2f}x)", worst_ort <= 1.0),
        (
            f"window re-run >= T = 2 times the step (worst row: {worst_window:.2f}x)",
            worst_window >= 2.0,
        ),
        (
            f"`rrn stream` keeps up with the clip's frame rate on 2 threads ({e2e_result['what']}: "
            f"{e2e_result['margin']:.1f}x real time, {e2e_result['dropped']} frames dropped with --realtime)",
            e2e_result["margin"] >= 1.0 and e2e_result["dropped"] == 0,
        ),
    ]
    return [
        f"- [{'x' if ok else ' '}] {text}{'' if ok else ' — **missed**'}" for text, ok in checks
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rrn-stream-bench-") as tmp:
        frame_lines, rows = per_frame_table(args, Path(tmp))
        torch.set_num_threads(max(map(int, args.threads.split(","))))
        e2e_lines, e2e_result = e2e(args, Path(tmp))
    after = os.getloadavg() if load else None
    command = "python benchmarks/stream.py " + " ".join(sys.argv[1:] if argv is None else argv)
    import onnxruntime

    text = "\n".join(
        [
            "# Streaming benchmark",
            "",
            f"`{command.strip()}` — {args.repeats} interleaved calls per method after {args.warmup} "
            f"warm-up, batch 1; {time.perf_counter() - started:.0f} s in all.",
            "",
            f"Machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, onnxruntime "
            f"{onnxruntime.__version__}; load average {load[0]:.1f} at start, {after[0]:.1f} at the "
            "end (other jobs share the cores)."
            if load
            else "",
            "",
            "## Per sampled frame (random weights, 101 classes)",
            "",
            *frame_lines,
            "",
            "## End to end",
            "",
            *e2e_lines,
            "",
            "## Targets",
            "",
            *targets(rows, e2e_result),
            "",
        ]
    )
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

The engines of ``rrn stream`` and ``rrn serve`` (``--engine torch|onnxruntime``), side by side
in the same run: the recognizer's batched step (``engine.step``: frames and the streams' state
tensors in, logits and the new state out) at batch 1, 4 and 16, time per frame, for resnet18
and resnet50 at 112 px (``--engine-archs``, ``--engine-size``, ``--batches``).

Targets (issue 9): RRN step <= 1.1x the plain frame; ONNX Runtime no slower than eager; the
window at least T times slower than the step. Issue 22: one stream's step (batch 1) at least 2x
faster with the onnxruntime engine than with torch eager. End to end: ``rrn stream`` on a real
UCF-101 clip of ``../shared/data`` (ResNet-50 RRN at 112 px, ``--sample-every 10``, 2 threads),
with each engine, keeps up with the clip's frame rate: the margin is seconds of video per
second of processing, and a ``--realtime`` run (the file delivered at its frame rate) must drop
no frame.

OpenMP threads wait without spinning (``OMP_WAIT_POLICY=PASSIVE``), as under the ``rrn``
command line, which sets it; ONNX Runtime's threads follow the same policy
(:func:`rrn.export.ort_session`).

    .venv/bin/python benchmarks/stream.py            # ~8 min on 2 idle cores
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

# As the rrn command line does, before torch loads OpenMP: what rrn stream and rrn serve run.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
        "--engine-archs",
        default="resnet18,resnet50",
        help="archs of the engines table (default: resnet18,resnet50)",
    )
    p.add_argument(
        "--engine-size", type=int, default=112, help="frame side of the engines table (112)"
    )
    p.add_argument(
        "--batches", default="1,4,16", help="streams per step in the engines table (1,4,16)"
    )
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
        args.engine_archs, args.engine_size, args.batches = "resnet18", 64, "1,2"
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


# ---------------------------------------------------------------------------- engines
ENGINES = ("torch", "onnxruntime")


def engine_calls(model, folder: Path, threads: int, batch: int) -> dict[str, Callable[[], None]]:
    """One batched step of ``batch`` streams through each engine, each carrying its own state
    from call to call, as the recognizer does."""
    from rrn.online.engines import OnnxEngine, TorchEngine

    size = model.inputs.frame_size
    frames = torch.randn(8, batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
    zeros = [torch.zeros(batch, *s[1:]) for s in model.term_shapes(size)]  # J x (B, C, h, w)
    calls = {}
    for name, engine in (
        ("torch", TorchEngine(model)),
        ("onnxruntime", OnnxEngine(folder, threads)),
    ):
        state = {"terms": zeros, "t": 0}

        def call(engine=engine, state=state) -> None:
            state["t"] = (state["t"] + 1) % len(frames)
            _, state["terms"] = engine.step(frames[state["t"]], state["terms"])

        calls[name] = call
    return calls


def engine_table(args: argparse.Namespace, workdir: Path) -> tuple[list[str], list[dict]]:
    from rrn.export import export_model

    size, rows = args.engine_size, []
    for arch in args.engine_archs.split(","):
        model = trained_like(arch, size)
        folder = workdir / f"{arch}-{size}"
        if not (folder / "step.onnx").is_file():
            export_model(model, folder, "onnx", check=False, chunk=False)
        for threads in map(int, args.threads.split(",")):
            torch.set_num_threads(threads)
            for batch in map(int, args.batches.split(",")):
                times = time_interleaved(
                    engine_calls(model, folder, threads, batch), args.repeats, args.warmup
                )
                per_frame = {e: [t / batch for t in times[e]] for e in ENGINES}
                rows.append(
                    {
                        "arch": arch,
                        "size": size,
                        "threads": threads,
                        "batch": batch,
                        "p50": {e: statistics.median(per_frame[e]) for e in ENGINES},
                        "p95": {e: p95(per_frame[e]) for e in ENGINES},
                    }
                )
                print(
                    f"  engines {arch} {size}px {threads} thread(s) batch {batch}: "
                    + ", ".join(f"{e} {rows[-1]['p50'][e]:.1f} ms/frame" for e in ENGINES),
                    file=sys.stderr,
                )
    lines = [
        "| arch | px | threads | batch | torch ms/frame p50 / p95 | onnxruntime ms/frame "
        "p50 / p95 | torch / onnxruntime |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        a, b = r["p50"], r["p95"]
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['threads']} | {r['batch']} | "
            + " | ".join(f"{a[e]:.1f} / {b[e]:.1f}" for e in ENGINES)
            + f" | **{a['torch'] / a['onnxruntime']:.2f}x** |"
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
    """``rrn stream`` (its CLI entry point), on the whole file and with --realtime, with each
    engine; the onnxruntime engine's export made once first (its cost, the first start's)."""
    from rrn.checkpoint import load_model
    from rrn.online.engines import make_engine

    arch, size = ("resnet18", 64) if args.quick else ("resnet50", 112)
    ckpt = e2e_checkpoint(arch, size, workdir)
    clip, what = e2e_clip(args.quick, workdir)
    t0 = time.perf_counter()
    make_engine(load_model(ckpt), "onnxruntime")  # the export into the cache, as a first start does
    export_s = time.perf_counter() - t0
    results = {}
    for mode in ("whole", "realtime"):
        for engine in ENGINES:
            results[engine, mode] = e2e_run(ckpt, clip, engine, mode, workdir)
    head = [
        f"`rrn stream` on a {what} (`{clip.name}`, {results['torch', 'whole']['frames']} frames, "
        f"{results['torch', 'whole']['duration']:.2f} s), {arch} RRN (T=2 @block4) at {size} px, "
        "`--sample-every 10 --threads 2 --engine ENGINE`, with "
        "`--out annotated.mp4 --json events.jsonl`:",
        "",
        "| engine | run | frames read | classified | dropped | step latency p50 / p95 ms | "
        "processing s | video s / processing s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for (engine, mode), r in results.items():
        run = "whole file" if mode == "whole" else "`--realtime` (file delivered at its frame rate)"
        speed = r["duration"] / r["wall"]
        rows.append(
            f"| {engine} | {run} | {r['frames']} | {r['classified']} | {r['dropped']} | "
            f"{r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} | {r['wall']:.2f} | "
            + (f"**{speed:.1f}x** |" if mode == "whole" else f"{speed:.2f}x |")
        )
    w = results["torch", "whole"]
    lines = [
        *head,
        *rows,
        "",
        "Processing = decoding every frame, the model on every 10th, writing every frame to the "
        "annotated video, from the first frame to the last (`rrn.cli.main` in this process; "
        f"loading the checkpoint and opening the file before it took {w['call_s'] - w['wall']:.1f} "
        f"s). The onnxruntime engine's first start exported the step into the cache in "
        f"{export_s:.1f} s (later starts read it: "
        f"{results['onnxruntime', 'whole']['call_s'] - results['onnxruntime', 'whole']['wall']:.1f}"
        " s before the first frame).",
    ]
    margins = {e: results[e, "whole"]["duration"] / results[e, "whole"]["wall"] for e in ENGINES}
    dropped = {e: results[e, "realtime"]["dropped"] for e in ENGINES}
    return lines, {"margin": margins, "dropped": dropped, "what": what}


def e2e_checkpoint(arch: str, size: int, workdir: Path) -> Path:
    from rrn.checkpoint import make_checkpoint, save_checkpoint
    from rrn.config import resolve_config

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
    return save_checkpoint(
        workdir / "e2e" / "last.pt",
        make_checkpoint(model, config=cfg.to_dict(), classes=model.classes),
    )


def e2e_run(ckpt: Path, clip: Path, engine: str, mode: str, workdir: Path) -> dict:
    from rrn.cli import main as cli_main

    events = workdir / f"{engine}-{mode}.jsonl"
    argv = [
        "stream",
        str(ckpt),
        str(clip),
        "--sample-every",
        "10",
        "--threads",
        "2",
        "--engine",
        engine,
        "--out",
        str(workdir / f"{engine}-{mode}.mp4"),
        "--json",
        str(events),
        *(["--realtime"] if mode == "realtime" else []),
    ]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        if cli_main(argv) != 0:
            raise RuntimeError(f"rrn {' '.join(argv)} failed")
    end = json.loads(events.read_text().splitlines()[-1])
    return {**end, "call_s": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- main
def targets(rows: list[dict], engine_rows: list[dict], e2e_result: dict) -> list[str]:
    worst_step = max(r["p50"]["step"] / r["p50"]["plain"] for r in rows)
    worst_ort = max(r["p50"]["ort"] / r["p50"]["step"] for r in rows)
    worst_window = min(r["p50"]["window"] / r["p50"]["step"] for r in rows)
    one = [r for r in engine_rows if r["batch"] == 1]
    worst_one = min(r["p50"]["torch"] / r["p50"]["onnxruntime"] for r in one)
    where = min(one, key=lambda r: r["p50"]["torch"] / r["p50"]["onnxruntime"])
    margin, dropped = e2e_result["margin"], e2e_result["dropped"]
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
            "one stream's step (batch 1) >= 2x faster with the onnxruntime engine than torch "
            f"eager (worst row: {worst_one:.2f}x, {where['arch']} on {where['threads']} "
            "thread(s))",
            worst_one >= 2.0,
        ),
        *(
            (
                f"`rrn stream --engine {e}` keeps up with the clip's frame rate on 2 threads "
                f"({e2e_result['what']}: {margin[e]:.1f}x real time, {dropped[e]} frames "
                "dropped with --realtime)",
                margin[e] >= 1.0 and dropped[e] == 0,
            )
            for e in ENGINES
        ),
    ]
    return [
        f"- [{'x' if ok else ' '}] {text}{'' if ok else ' — **missed**'}" for text, ok in checks
    ]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else "CPU"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loads = [os.getloadavg()[0]]
    started = time.perf_counter()
    cache = os.environ.get("RRN_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="rrn-stream-bench-") as tmp:
        os.environ["RRN_CACHE_HOME"] = str(Path(tmp) / "cache")  # a first start's export
        try:
            frame_lines, rows = per_frame_table(args, Path(tmp))
            loads.append(os.getloadavg()[0])
            engine_lines, engine_rows = engine_table(args, Path(tmp))
            loads.append(os.getloadavg()[0])
            torch.set_num_threads(max(map(int, args.threads.split(","))))
            e2e_lines, e2e_result = e2e(args, Path(tmp))
            loads.append(os.getloadavg()[0])
        finally:
            os.environ.pop("RRN_CACHE_HOME")
            if cache is not None:
                os.environ["RRN_CACHE_HOME"] = cache
    command = "python benchmarks/stream.py " + " ".join(sys.argv[1:] if argv is None else argv)
    import onnxruntime

    text = "\n".join(
        [
            "# Streaming benchmark",
            "",
            f"`{command.strip()}` — {args.repeats} interleaved calls per method after {args.warmup} "
            f"warm-up; {time.perf_counter() - started:.0f} s in all.",
            "",
            f"Machine: {cpu_name()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}, `OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}`; "
            f"load average (1 min) {loads[0]:.1f} at the start, {loads[1]:.1f} after the first table, "
            f"{loads[2]:.1f} after the engines, {loads[3]:.1f} at the end (other jobs share the "
            "cores).",
            "",
            "## Per sampled frame, batch 1 (random weights, 101 classes)",
            "",
            *frame_lines,
            "",
            "## The engines of rrn stream and rrn serve, per frame at batch 1, 4 and 16",
            "",
            "`--engine torch` (the model's `step_terms`, eager) and `--engine onnxruntime` (the "
            "exported `step.onnx`), each called as the recognizer calls it: a batch of frames "
            "and the streams' state tensors in, logits and the new state out; milliseconds per "
            "frame = the call's time / batch.",
            "",
            *engine_lines,
            "",
            "## End to end",
            "",
            *e2e_lines,
            "",
            "## Targets",
            "",
            *targets(rows, engine_rows, e2e_result),
            "",
        ]
    )
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

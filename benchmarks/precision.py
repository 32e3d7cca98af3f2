"""Training step of an RRN on the CPU: full precision vs ``--amp bf16``, with and without
channels_last, measured side by side in one run (repeats interleaved, median reported).

The step is ``rrn train``'s: forward under autocast, cross-entropy on the last frame's logits,
backward, a fused Adam step. Default shape: the demo's (ResNet-18, identity skip at block1,
batches of 32 chunks of T=2 frames at 64 px). bf16 is fast only where the CPU computes it
natively (AVX512-BF16 or AMX; the table says whether this one does); elsewhere oneDNN emulates
it and it is slower than fp32. channels_last is in the table because it is what rrn uses on
CUDA; on the CPU it is not applied (no consistent gain here: 0.95-1.15x of bf16 alone over five runs).

    .venv/bin/python benchmarks/precision.py                  # writes benchmarks/precision_results.md
    .venv/bin/python benchmarks/precision.py --size 112 --batch 8 --out -
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import emit, machine
from rrn.model import build_model
from rrn.runtime import cpu_has_native_bf16

VARIANTS = (  # (label, bf16 autocast, channels_last)
    ("fp32 (default)", False, False),
    ("fp32, channels_last", False, True),
    ("bf16 (`--amp bf16`)", True, False),
    ("bf16, channels_last", True, True),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--skip", default="block1", help="skip position (default: block1)")
    p.add_argument("--size", type=int, default=64, help="frame side in px (default: 64)")
    p.add_argument("--batch", type=int, default=32, help="chunks per step (default: 32)")
    p.add_argument("--context", type=int, default=2, help="frames per chunk T (default: 2)")
    p.add_argument(
        "--repeats", type=int, default=7, help="timed rounds, median reported (default: 7)"
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: 2)")
    p.add_argument("--quick", action="store_true", help="a tiny setting (seconds; for tests)")
    p.add_argument(
        "--out",
        default=str(Path(__file__).with_name("precision_results.md")),
        help="Markdown results file, or - for stdout only",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.repeats, args.warmup = 32, 2, 1, 1
    return args


def make_step(args, bf16: bool, channels_last: bool):
    """One training step of a fresh model with this precision and layout, as a closure."""
    torch.manual_seed(0)
    model = build_model(args.arch, num_classes=101, skip_blocks=(args.skip,)).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    clip = torch.randn(args.batch, args.context, 3, args.size, args.size)
    labels = torch.randint(0, 101, (args.batch,))

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(clip)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def measure(args) -> dict[str, float]:
    """Median seconds per step of every variant, rounds interleaved (A, B, C, D, A, ...)."""
    steps = {label: make_step(args, bf16, cl) for label, bf16, cl in VARIANTS}
    times: dict[str, list[float]] = {label: [] for label in steps}
    for round_ in range(args.warmup + args.repeats):
        for label, step in steps.items():
            t0 = time.perf_counter()
            step()
            if round_ >= args.warmup:
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    medians = measure(args)
    base = medians[VARIANTS[0][0]]
    frames = args.batch * args.context
    lines = [
        "# CPU training step: precision and memory layout",
        "",
        f"`python benchmarks/precision.py{' --quick' if args.quick else ''}`: {args.arch} RRN, skip at "
        f"{args.skip}, {args.batch} chunks x T={args.context} frames at {args.size} px per step "
        f"(forward, backward, fused Adam); median of {args.repeats} interleaved rounds.",
        "",
        f"Machine: {machine(torch.device('cpu'), load)}; native bf16: "
        f"{'yes' if cpu_has_native_bf16() else 'no (bf16 is emulated here)'}.",
        "",
        "| variant | s / step | frames / s | speed vs fp32 |",
        "|---|---:|---:|---:|",
        *[
            f"| {label} | {s:.3f} | {frames / s:.0f} | {base / s:.2f}x |"
            for label, s in medians.items()
        ],
        "",
    ]
    text = "\n".join(lines)
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

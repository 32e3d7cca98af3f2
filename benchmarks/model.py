"""Benchmark the RRN against plain torchvision ResNet on the same frames.

Three tables, every variant measured side by side in one run, repeats interleaved
(variant A, B, C, A, B, C, ...), median of ``--repeats`` after ``--warmup`` rounds:

1. Training step per chunk (forward + backward of cross-entropy on the last frame's logits)
   for T=2 at ``block4``, T=2 at ``block1`` and T=3 (``skips_for_context``: the last two
   blocks). Baselines: plain ResNet on one frame; *needed work* = torchvision's own modules
   on exactly what the last frame needs (the last frame through the whole network, frame
   t-k through the stem and blocks up to the input of the k-th deepest skip block, so the
   only difference left is the temporal additions); and the RRN without greedy forwarding
   (every frame through every block). Memory: on CUDA the peak allocated during the step;
   on CPU the bytes of activations saved for backward (unique storages, parameters
   excluded), counted with ``torch.autograd.graph.saved_tensors_hooks``.
2. A whole video (eval, no_grad): ``forward_video`` vs sliding windows (one ``model(...)``
   call per frame, and all windows stacked into one batch) vs plain ResNet on every frame.

Targets (issue): an identity RRN chunk costs at most 1.05x its needed work; ``forward_video``
at T=2 is at least 1.8x faster than sliding windows and within 1.1x of per-frame ResNet.

    .venv/bin/python benchmarks/model.py                      # resnet18, 112 px, batch 4
    .venv/bin/python benchmarks/model.py --arch resnet50 --size 224 --device cuda --out -
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from rrn.model import build_model, chunk_gflops, load_weights, skips_for_context

NUM_CLASSES = 101


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--arch", default="resnet18", help="torchvision ResNet (default: resnet18)")
    p.add_argument("--size", type=int, default=112, help="frame side in px (default: 112)")
    p.add_argument("--batch", type=int, default=4, help="clips per training step (default: 4)")
    p.add_argument(
        "--video-frames", type=int, default=64, help="frames N of the video (default: 64)"
    )
    p.add_argument(
        "--repeats", type=int, default=5, help="timed rounds, median reported (default: 5)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    p.add_argument("--skip-type", default="identity", choices=("identity", "linear", "nonlinear"))
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads on CPU (default: 1; 0 = torch's default). With 2 threads on "
        "2 shared cores, OpenMP threads spin-wait for each other and times swing 2-20x",
    )
    p.add_argument(
        "--out", default="benchmarks/model_results.md", help="markdown file, '-' for none"
    )
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- helpers
def tv_levels(tv: nn.Module) -> list[tuple[str, nn.Module]]:
    """torchvision ResNet as (name, module) in depth order: the stem, then every block."""
    stem = nn.Sequential(tv.conv1, tv.bn1, tv.relu, tv.maxpool)
    return [("stem", stem)] + [
        (f"layer{s}.{i}", blk)
        for s in (1, 2, 3, 4)
        for i, blk in enumerate(getattr(tv, f"layer{s}"))
    ]


def run_until(tv: nn.Module, x: torch.Tensor, block: str) -> torch.Tensor:
    """torchvision's modules on frames x (B, 3, H, W) up to the *input* of ``block``."""
    for name, module in tv_levels(tv):
        if name == block:
            return x
        x = module(x)
    raise ValueError(f"no block {block!r}")


def needed_work(tv: nn.Module, skips: tuple[str, ...], clip: torch.Tensor) -> list[torch.Tensor]:
    """What the last frame of ``clip`` (B, T, 3, H, W) needs, on plain torchvision modules.

    The last frame runs through the whole network; frame t-k (k = 1..T-1) through the stem
    and blocks up to the input of the k-th deepest skip block, one pass per frame.
    Returns [logits, partial feature maps...].
    """
    T = clip.shape[1]
    outs = [tv(clip[:, -1])]
    for k in range(1, min(T, len(skips) + 1)):
        outs.append(run_until(tv, clip[:, -1 - k], skips[-k]))
    return outs


def needed_work_batched(
    tv: nn.Module, skips: tuple[str, ...], clip: torch.Tensor
) -> list[torch.Tensor]:
    """:func:`needed_work` batched as the RRN batches it: each level runs once on the stack
    of frames that still need it; the oldest frame leaves at the input of each skip block."""
    B = clip.shape[0]
    n = min(clip.shape[1], len(skips) + 1)
    h = clip[:, -n:].flatten(0, 1)  # (B, n, 3, H, W) -> (B*n, 3, H, W)
    partials = []
    for name, module in tv_levels(tv):
        if name in skips and n > 1:
            h = h.unflatten(0, (B, n))  # (B*n, C, h, w) -> (B, n, C, h, w)
            partials.append(h[:, 0])
            n -= 1
            h = h[:, 1:].flatten(0, 1)  # -> (B*(n-1), C, h, w)
        h = module(h)
    return [tv.fc(torch.flatten(tv.avgpool(h), 1)), *partials]


class SavedBytes:
    """Bytes of the activations autograd saves for backward (unique storages, no parameters)."""

    def __init__(self, model: nn.Module) -> None:
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages: dict[int, int] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in self.params:
            self.storages[s.data_ptr()] = s.nbytes()
        return t

    @contextmanager
    def hooks(self):
        self.storages.clear()
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            yield

    @property
    def total(self) -> int:
        return sum(self.storages.values())


class Bench:
    """Time (and measure memory of) named callables with interleaved repeats."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: dict[str, list[float]] = {}
        self.mem: dict[str, int] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, fns: dict[str, Callable[[], None]], repeats: int, warmup: int) -> None:
        for r in range(warmup + repeats):
            for name, fn in fns.items():
                self.sync()
                t0 = time.perf_counter()
                fn()
                self.sync()
                if r >= warmup:
                    self.times.setdefault(name, []).append(time.perf_counter() - t0)

    def median_ms(self, name: str) -> float:
        return 1e3 * statistics.median(self.times[name])


# ---------------------------------------------------------------------------- training steps
def train_step_table(args: argparse.Namespace, device: torch.device) -> tuple[list[str], dict]:
    configs = [
        ("T=2 @block4", ("block4",)),
        ("T=2 @block1", ("block1",)),
        ("T=3", skips_for_context(args.arch, 3)),
    ]
    torch.manual_seed(0)
    tv = getattr(torchvision.models, args.arch)(num_classes=NUM_CLASSES).to(device).train()
    target = torch.randint(0, NUM_CLASSES, (args.batch,), device=device)
    bench = Bench(device)
    fns: dict[str, Callable[[], None]] = {}
    owners: dict[str, nn.Module] = {}  # whose parameters not to count as saved activations
    meta: dict[str, dict] = {}

    def frame_step(clip: torch.Tensor) -> None:
        tv.zero_grad(set_to_none=True)
        F.cross_entropy(tv(clip[:, -1]), target).backward()

    def needed_step(skips: tuple[str, ...], clip: torch.Tensor, work=needed_work_batched) -> None:
        tv.zero_grad(set_to_none=True)
        logits, *partials = work(tv, skips, clip)
        loss = F.cross_entropy(logits, target) + sum(p.sum() for p in partials)
        loss.backward()

    def rrn_step(model: nn.Module, clip: torch.Tensor, greedy: bool) -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(clip, greedy=greedy), target).backward()

    for label, skips in configs:
        model = build_model(args.arch, NUM_CLASSES, skips, args.skip_type)
        load_weights(model, tv.state_dict())
        model.to(device).train()
        T = model.temporal_context
        clip = torch.randn(args.batch, T, 3, args.size, args.size, device=device)
        paths = model.skip_blocks
        meta[label] = {
            "skips": ", ".join(paths),
            "gflops_greedy": chunk_gflops(model, T, args.size) if device.type == "cpu" else None,
            "gflops_naive": chunk_gflops(model, T, args.size, greedy=False)
            if device.type == "cpu"
            else None,
        }
        model.to(device).train()  # chunk_gflops runs on CPU tensors
        fns[f"{label}|frame"] = lambda c=clip: frame_step(c)
        fns[f"{label}|needed"] = lambda p=paths, c=clip: needed_step(p, c)
        fns[f"{label}|perframe"] = lambda p=paths, c=clip: needed_step(p, c, needed_work)
        fns[f"{label}|greedy"] = lambda m=model, c=clip: rrn_step(m, c, True)
        fns[f"{label}|naive"] = lambda m=model, c=clip: rrn_step(m, c, False)
        owners.update({f"{label}|{v}": tv for v in ("frame", "needed", "perframe")})
        owners.update({f"{label}|{v}": model for v in ("greedy", "naive")})

    if device.type == "cpu":
        frame_gflops = chunk_gflops(build_model(args.arch, NUM_CLASSES, ()), 1, args.size)
    bench.run(fns, args.repeats, args.warmup)
    for name, fn in fns.items():  # memory, once per variant, outside the timing
        bench.mem[name] = measure_memory(fn, owners[name], device)

    mem_what = (
        "peak CUDA memory allocated during the step, MiB"
        if device.type == "cuda"
        else "activations saved for backward, MiB"
    )
    lines = [
        f"### Training step per chunk ({args.arch}, {args.size} px, batch {args.batch}, "
        f"{args.skip_type} skips)",
        "",
        "Time: median ms per step (forward + backward). Memory: " + mem_what + ". "
        "*needed* = torchvision modules on exactly the frames and depths the last frame "
        "needs, batched over frames like the RRN (*needed, 1 pass/frame*: each earlier frame in "
        "its own pass); *frame* = plain ResNet on the last frame only; *naive* = RRN with "
        "`greedy=False`. GFLOPs: forward, per clip (in frames of plain ResNet).",
        "",
        "| chunk | skip blocks | frame ms | needed ms | needed, 1 pass/frame ms | RRN greedy ms "
        "| RRN naive ms | greedy / needed | greedy / frame | naive / greedy | frame MiB "
        "| needed MiB | greedy MiB | naive MiB | greedy GFLOPs (frames) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for label, _ in configs:
        ms = {
            v: bench.median_ms(f"{label}|{v}")
            for v in ("frame", "needed", "perframe", "greedy", "naive")
        }
        mib = {v: bench.mem[f"{label}|{v}"] / 2**20 for v in ms}
        g = meta[label]["gflops_greedy"]
        gf = f"{g:.2f} ({g / frame_gflops:.2f})" if g is not None else "-"
        results[label] = {"ms": ms, "mib": mib}
        lines.append(
            f"| {label} | {meta[label]['skips']} | {ms['frame']:.1f} | {ms['needed']:.1f} "
            f"| {ms['perframe']:.1f} | {ms['greedy']:.1f} | {ms['naive']:.1f} | **{ms['greedy'] / ms['needed']:.3f}x** "
            f"| {ms['greedy'] / ms['frame']:.2f}x | {ms['naive'] / ms['greedy']:.2f}x "
            f"| {mib['frame']:.1f} | {mib['needed']:.1f} | {mib['greedy']:.1f} | {mib['naive']:.1f} | {gf} |"
        )
    return lines, results


def measure_memory(fn: Callable[[], None], owner: nn.Module, device: torch.device) -> int:
    """Bytes one call of ``fn`` needs beyond what was allocated before (see the module doc)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    counter = SavedBytes(owner)
    with counter.hooks():
        fn()
    return counter.total


# ---------------------------------------------------------------------------- whole videos
def video_table(args: argparse.Namespace, device: torch.device) -> tuple[list[str], dict]:
    configs = [
        ("T=2 @block4", ("block4",)),
        ("T=2 @block1", ("block1",)),
        ("T=3", skips_for_context(args.arch, 3)),
    ]
    torch.manual_seed(0)
    tv = getattr(torchvision.models, args.arch)(num_classes=NUM_CLASSES).to(device).eval()
    N = args.video_frames
    frames = torch.randn(N, 3, args.size, args.size, device=device)
    bench = Bench(device)
    fns: dict[str, Callable[[], None]] = {}
    for label, skips in configs:
        model = build_model(args.arch, NUM_CLASSES, skips, args.skip_type)
        load_weights(model, tv.state_dict())
        model.to(device).eval()
        T = model.temporal_context
        # All full windows stacked: (N - T + 1, T, 3, H, W); the first T - 1 are shorter.
        windows = frames.unfold(0, T, 1).permute(0, 4, 1, 2, 3)

        def loop(m=model, T=T) -> None:
            for t in range(N):
                m(frames[max(0, t - T + 1) : t + 1][None])

        def batched(m=model, T=T, w=windows) -> None:
            for t in range(T - 1):
                m(frames[: t + 1][None])
            m(w)

        fns[f"{label}|video"] = lambda m=model: m.forward_video(frames)
        fns[f"{label}|loop"] = loop
        fns[f"{label}|batched"] = batched
        fns[f"{label}|frame"] = lambda: tv(frames)
    with torch.no_grad():
        bench.run(fns, args.repeats, args.warmup)
    lines = [
        f"### A {N}-frame video, eval ({args.arch}, {args.size} px, {args.skip_type} skips)",
        "",
        "Median ms for all N frames' logits. *windows, loop* = `model(frames[t-T+1:t+1][None])` "
        "per frame; *windows, batched* = all windows stacked into one batch; *per-frame* = "
        "torchvision ResNet on the N frames as one batch.",
        "",
        "| model | forward_video ms | windows, loop ms | windows, batched ms | per-frame ResNet ms "
        "| loop / forward_video | batched / forward_video | forward_video / per-frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for label, _ in configs:
        ms = {v: bench.median_ms(f"{label}|{v}") for v in ("video", "loop", "batched", "frame")}
        results[label] = ms
        lines.append(
            f"| {label} | {ms['video']:.0f} | {ms['loop']:.0f} | {ms['batched']:.0f} | {ms['frame']:.0f} "
            f"| **{ms['loop'] / ms['video']:.2f}x** | **{ms['batched'] / ms['video']:.2f}x** "
            f"| **{ms['video'] / ms['frame']:.3f}x** |"
        )
    return lines, results


# ---------------------------------------------------------------------------- main
def machine(device: torch.device, load: float | None) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    shared = f", load average {load:.1f} at start (other jobs share the cores)" if load else ""
    return (
        f"{cpu} ({os.cpu_count()} cores{shared}); {torch.get_num_threads()} torch intra-op "
        f"thread(s), torch {torch.__version__}"
    )


def emit(text: str, out: str) -> None:
    """Print a benchmark's Markdown results and write them to ``out`` (``-``: print only)."""
    print(text)
    if out != "-":
        Path(out).write_text(text)
        print(f"wrote {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    train_lines, train = train_step_table(args, device)
    video_lines, video = video_table(args, device)
    ident = args.skip_type == "identity"
    chunk = max(r["ms"]["greedy"] / r["ms"]["needed"] for r in train.values())
    t2 = video["T=2 @block4"]
    checks = [
        (f"identity RRN chunk <= 1.05x its needed work (worst: {chunk:.3f}x)", chunk <= 1.05)
        if ident
        else None,
        (
            f"forward_video >= 1.8x faster than sliding windows at T=2 @block4 "
            f"(loop {t2['loop'] / t2['video']:.2f}x, batched {t2['batched'] / t2['video']:.2f}x)",
            min(t2["loop"], t2["batched"]) / t2["video"] >= 1.8,
        ),
        (
            f"forward_video within 1.1x of per-frame ResNet at T=2 @block4 "
            f"({t2['video'] / t2['frame']:.3f}x)",
            t2["video"] / t2["frame"] <= 1.1,
        ),
    ]
    target_lines = ["### Targets", ""] + [
        f"- [{'x' if ok else ' '}] {text}{'' if ok else ' — **missed**'}"
        for c in checks
        if c
        for text, ok in [c]
    ]
    command = "python benchmarks/model.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [
        "# Model benchmark",
        "",
        f"`{command.strip()}` — {args.repeats} interleaved repeats (median) after {args.warmup} warm-up; "
        f"{time.perf_counter() - started:.0f} s in all.",
        "",
        f"Machine: {machine(device, load)}.",
        "",
    ]
    text = "\n".join(header + train_lines + [""] + video_lines + [""] + target_lines) + "\n"
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

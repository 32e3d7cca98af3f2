"""Benchmark ``rrn serve``: many live streams on loopback, one batched step.

A real ``rrn serve`` process (a random RRN: T=2, identity skip at ``block4``, 112 px, every 10th
frame, i.e. one frame per 0.4 s of a 25 fps stream) and N WebSocket clients in one asyncio
process, each sending a real UCF-101 clip's frames (JPEG, looped) at the clip's frame rate
with their capture times: the frames the model samples (every 10th, as the browser page and
``/v1/model``'s ``interval_s`` have clients do), or with ``--every-frame`` all 25 per second
(the server then skips 9 of 10 unread). Clients and server share this machine's 2 cores.
Measured per configuration:

* *sustained*: every sampled frame classified, none dropped (the server keeps up);
* end-to-end latency p50/p95: a sampled frame sent -> its ``frame`` event received;
* *saturated throughput*: 16 streams sending their sampled frames 8x faster than real time
  (20 per second each, more than the server can step), classified frames per second end to end,
  with ``--max-batch 16`` against ``--max-batch 1`` (one stream at a time), side by side.

Then the most streams sustained at 2.5 sampled frames/s each, searched upward per arch (and
bisected between the last count sustained and the first missed). Everything is measured for
both engines of the model step, ``--engine torch`` and ``--engine onnxruntime``: their servers
run side by side and each measurement is taken on one, then the other (the idle one waits), so
that load from other jobs falls on both alike; the server's own step time per classified frame
and its mean batch come from ``/metrics`` (``rrn_step_seconds``, ``rrn_batch_size``).

Targets (issue 16, this 2-core CPU): saturated, batched >= 1.4x unbatched at 16 streams;
sustained without drops: >= 32 streams for resnet18 and >= 12 for resnet50 at 112 px.
Issue 22: the onnxruntime engine sustains >= 1.2x the streams torch eager sustains.

    .venv/bin/python benchmarks/serve.py            # ~15 min on 2 idle cores
    .venv/bin/python benchmarks/serve.py --quick    # seconds: resnet18 at 64 px, 2 streams
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import emit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FPS = 25.0
SAMPLE_EVERY = 10
SATURATE = 8.0  # capture times 8x real time: 20 sampled frames/s per stream
MAX_STREAMS = 256  # the servers' --max-streams
ENGINES = ("torch", "onnxruntime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archs", default="resnet18,resnet50")
    p.add_argument("--engines", default=",".join(ENGINES), help="engines of the model step")
    p.add_argument("--size", type=int, default=112, help="frame side in px (default: 112)")
    p.add_argument("--streams", default="1,4,16,64", help="stream counts of the table")
    p.add_argument(
        "--search",
        default="8,12,16,24,32,40,48,64",
        help="stream counts tried upward for the most sustained (stops at the first miss)",
    )
    p.add_argument("--seconds", type=float, default=12.0, help="sending time per run")
    p.add_argument(
        "--every-frame",
        action="store_true",
        help="clients send all 25 frames per second, not only the sampled ones",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: resnet18 at 64 px, 2 streams")
    p.add_argument(
        "--out", default="benchmarks/serve_results.md", help="markdown file, '-' for none"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.size, args.streams, args.search, args.seconds = (
            "resnet18",
            64,
            "2",
            "",
            1.5,
        )
        args.out = "-" if args.out == p.get_default("out") else args.out
    return args


# ---------------------------------------------------------------------------- inputs
def clip_frames(size: int, count: int = 100) -> list[bytes]:
    """JPEG frames of a real UCF-101 clip (or a generated one without ../shared/data)."""
    import av
    from PIL import Image

    clips = sorted((SHARED / "ucf101_mini" / "UCF-101").glob("*/*.mp4")) if SHARED.is_dir() else []
    frames = []
    if clips:
        with av.open(str(clips[0])) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == count:
                    break
                frames.append(f.to_ndarray(format="rgb24"))
    else:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(count)]
    out = []
    for rgb in frames:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def write_checkpoint(folder: Path, arch: str, size: int) -> Path:
    from rrn.checkpoint import make_checkpoint, save_checkpoint
    from rrn.config import resolve_config
    from rrn.model import build_model

    model = build_model(arch, num_classes=101, skip_blocks=("block4",), skip_type="identity")
    cfg = resolve_config(
        [
            (
                "bench",
                {
                    "data": {"frame_size": size, "sample_every": SAMPLE_EVERY},
                    "model": {"arch": arch, "skip": "block4"},
                },
            )
        ]
    )
    path = folder / f"{arch}.pt"
    save_checkpoint(
        path,
        make_checkpoint(model.eval(), config=cfg.to_dict(), classes=[f"c{i}" for i in range(101)]),
    )
    return path


def start_server(cmd: list[str], wait_s: float = 300) -> tuple[subprocess.Popen, int]:
    """Run an ``rrn serve ... --port 0`` command line; (the process, the port it printed).
    ``wait_s`` is generous: the onnxruntime engine exports its graph at a first start."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RRN_TOKEN", None)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if m := re.search(r"on http://127\.0\.0\.1:(\d+)/", line):
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("rrn serve did not start")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (every stream gets its ``end``), SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


class ServerProcess:
    """``rrn serve`` in a subprocess on a free loopback port."""

    def __init__(self, ckpt: Path, max_batch: int, engine: str):
        cmd = [
            sys.executable,
            "-m",
            "rrn",
            "serve",
            str(ckpt),
            "--port",
            "0",
            "--max-batch",
            str(max_batch),
            "--max-streams",
            str(MAX_STREAMS),
            "--max-fps",
            "200",
            "--max-wait-ms",
            "2",
            "--engine",
            engine,
        ]
        self.proc, self.port = start_server(cmd)

    def counters(self) -> dict[str, float]:
        """The step counters of the server's /metrics."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            text = r.read().decode()
        names = ("rrn_step_seconds_sum", "rrn_batch_size_count", "rrn_frames_classified_total")
        out = dict.fromkeys(names, 0.0)
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in out:
                out[name] = float(value)
        return out

    def close(self) -> None:
        stop_server(self.proc)


# ---------------------------------------------------------------------------- clients
@dataclass
class StreamResult:
    sent: int = 0
    sampled: int = 0
    classified: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)


async def one_stream(
    port: int,
    sid: str,
    frames: list[bytes],
    seconds: float,
    speed: float,
    offset: float,
    every_frame: bool = False,
) -> StreamResult:
    """Send ``frames`` looped for ``seconds``; capture times advance ``speed`` x real time.
    Only the sampled frames are sent, unless ``every_frame`` (in real time only)."""
    import websockets

    res, sent_at = StreamResult(), {}
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/streams/{sid}", max_size=None) as ws:
        json.loads(await ws.recv())  # start

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "frame":
                    res.classified += 1
                    sent = sent_at.get(msg["frame"])
                    if sent is not None:
                        res.latencies.append((time.perf_counter() - sent) * 1000)
                elif msg["type"] == "dropped":
                    res.dropped += 1
                elif msg["type"] == "end":
                    return

        reader = asyncio.create_task(receive())
        await asyncio.sleep(offset)  # streams start spread over one frame interval
        start, n = time.perf_counter(), 0
        while (now := time.perf_counter() - start) < seconds:
            if (speed > 1 or not every_frame) and n % SAMPLE_EVERY:
                n += 1
                continue
            t = n / FPS
            due = t / speed
            if due > now:
                await asyncio.sleep(due - now)
            sent_at[res.sent] = time.perf_counter()  # by message: the server's frame index
            sent_at.pop(res.sent - 200, None)
            res.sampled += n % SAMPLE_EVERY == 0  # the server keeps every 10th: see CaptureSampler
            await ws.send(struct.pack("<d", t) + frames[n % len(frames)])
            res.sent += 1
            n += 1
        await asyncio.sleep(1.5)  # the answers of the last frames
        await ws.send('{"type": "end"}')
        await asyncio.wait_for(reader, 30)
    return res


async def run_streams(
    port: int, n: int, frames: list[bytes], seconds: float, speed: float, every_frame: bool = False
):
    tasks = [
        one_stream(
            port, f"s{i}", frames, seconds, speed, i * SAMPLE_EVERY / FPS / max(n, 1), every_frame
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    results = await asyncio.gather(*tasks)
    return results, time.perf_counter() - start


def measure(
    server: ServerProcess,
    n: int,
    frames: list[bytes],
    seconds: float,
    speed: float = 1.0,
    every_frame: bool = False,
) -> dict:
    before = server.counters()
    results, wall = asyncio.run(run_streams(server.port, n, frames, seconds, speed, every_frame))
    after = server.counters()
    delta = {k: after[k] - before[k] for k in after}
    stepped = delta["rrn_frames_classified_total"]
    lat = sorted(x for r in results for x in r.latencies)
    sampled = sum(r.sampled for r in results)
    classified = sum(r.classified for r in results)
    dropped = sum(r.dropped for r in results)
    return {
        "streams": n,
        "sampled": sampled,
        "classified": classified,
        "dropped": dropped,
        "sustained": dropped == 0 and classified == sampled,
        "p50": lat[len(lat) // 2] if lat else None,
        "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None,
        "per_s": classified / seconds,
        "step_ms": 1000 * delta["rrn_step_seconds_sum"] / stepped if stepped else None,
        "mean_batch": stepped / delta["rrn_batch_size_count"] if stepped else None,
    }


# ---------------------------------------------------------------------------- the run
def arch_rows(
    arch: str, engines: list[str], args, frames: list[bytes], ckpt: Path
) -> tuple[list[str], dict]:
    """Every configuration of one arch with each engine. The engines' servers run side by side
    and each measurement is taken on every engine's server in turn (the others idle), so load
    from other jobs on the machine falls on the engines alike."""
    counts = [int(s) for s in args.streams.split(",") if s]
    rows = {e: [] for e in engines}
    found = {e: {} for e in engines}
    sat_n = 2 if args.quick else 16
    with servers(ckpt, 16, engines) as batched:
        if not args.quick:
            for e in engines:
                measure(batched[e], 1, frames, 2.0)  # warm-up
        for n in counts:
            for e in engines:
                r = measure(batched[e], n, frames, args.seconds, every_frame=args.every_frame)
                rows[e].append(_row(arch, e, "16", r))
        for e, best in most_sustained(batched, args, frames).items():
            found[e]["max_sustained"] = best
        for e in engines:
            found[e]["saturated_batched"] = measure(
                batched[e], sat_n, frames, args.seconds, SATURATE
            )
    with servers(ckpt, 1, engines) as single:
        for e in engines:
            if not args.quick:
                measure(single[e], 1, frames, 2.0)
            found[e]["saturated_single"] = measure(single[e], sat_n, frames, args.seconds, SATURATE)
        for e in engines:
            r = measure(single[e], sat_n, frames, args.seconds, every_frame=args.every_frame)
            rows[e].append(_row(arch, e, "1", r))
    return [row for e in engines for row in rows[e]], found


@contextlib.contextmanager
def servers(ckpt: Path, max_batch: int, engines: list[str]):
    """One ``rrn serve`` per engine, by engine."""
    started = {}
    try:
        for e in engines:
            started[e] = ServerProcess(ckpt, max_batch, e)
        yield started
    finally:
        for server in started.values():
            server.close()


def most_sustained(servers: dict, args, frames: list[bytes]) -> dict[str, int]:
    """The most streams each server sustains: upward through ``--search`` (and on by 25 % steps
    past its end, up to the servers' --max-streams) to the first count missed, then bisected
    between the last sustained and that one to within 10 %; each count measured on every
    server still searching, in turn."""

    def sustained(engine: str, n: int) -> bool:
        r = measure(servers[engine], n, frames, args.seconds, every_frame=args.every_frame)
        ok = r["sustained"]
        print(f"    {engine}: {n} streams {'sustained' if ok else 'missed'}", file=sys.stderr)
        return ok

    best = dict.fromkeys(servers, 0)
    missed: dict[str, int | None] = dict.fromkeys(servers)
    counts = [int(s) for s in args.search.split(",") if s]
    while counts:
        n = counts.pop(0)
        for e in [e for e in servers if missed[e] is None]:
            if sustained(e, n):
                best[e] = n
            else:
                missed[e] = n
        if not counts and n < MAX_STREAMS and any(m is None for m in missed.values()):
            counts.append(min(MAX_STREAMS, -(-n * 5 // 4 // 8) * 8))  # past the list: +25 %
    while True:
        todo = {
            e: (best[e] + missed[e]) // 2
            for e in servers
            if missed[e] is not None and best[e] and missed[e] - best[e] > max(2, best[e] // 10)
        }
        if not todo:
            return best
        for e, mid in todo.items():
            if sustained(e, mid):
                best[e] = mid
            else:
                missed[e] = mid


def _row(arch: str, engine: str, max_batch: str, r: dict) -> str:
    def ms(x) -> str:
        return "-" if x is None else f"{x:.0f}"

    step = "-" if r["step_ms"] is None else f"{r['step_ms']:.1f}"
    batch = "-" if r["mean_batch"] is None else f"{r['mean_batch']:.1f}"
    return (
        f"| {arch} | {engine} | {max_batch} | {r['streams']} | {r['sampled']} | "
        f"{r['classified']} | {r['dropped']} | {'yes' if r['sustained'] else 'no'} | "
        f"{ms(r['p50'])} | {ms(r['p95'])} | {step} | {batch} |"
    )


def _checks(arch: str, found: dict) -> tuple[list[str], list[tuple[str, bool]]]:
    """Summary lines and targets of one arch, ``found`` by engine."""
    summary, checks = [], []
    for engine, f in found.items():
        b, s = f["saturated_batched"], f["saturated_single"]
        ratio = b["per_s"] / s["per_s"] if s["per_s"] else float("inf")
        summary.append(
            f"- {arch}, {engine}: saturated ({b['streams']} streams at {SATURATE:g}x real time), "
            f"{b['per_s']:.1f} classified frames/s with max batch 16 vs "
            f"{s['per_s']:.1f} with max batch 1: **{ratio:.2f}x**; most streams "
            f"sustained at 2.5 sampled frames/s: **{f['max_sustained']}**"
        )
        checks.append(
            (f"{arch}, {engine}: batched >= 1.4x unbatched end to end ({ratio:.2f}x)", ratio >= 1.4)
        )
        target = {"resnet18": 32, "resnet50": 12}.get(arch)
        if target:
            checks.append(
                (
                    f"{arch}, {engine}: >= {target} streams sustained ({f['max_sustained']})",
                    f["max_sustained"] >= target,
                )
            )
    if set(found) >= set(ENGINES):
        ort, eager = found["onnxruntime"]["max_sustained"], found["torch"]["max_sustained"]
        gain = ort / eager if eager else float("inf")
        checks.append(
            (
                f"{arch}: onnxruntime sustains >= 1.2x the streams of torch eager ({ort} vs "
                f"{eager}: {gain:.2f}x)",
                gain >= 1.2,
            )
        )
    return summary, checks


def cpu_name() -> str:
    with open("/proc/cpuinfo") as fh:
        names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    import onnxruntime
    import torch

    args = parse_args(argv)
    frames = clip_frames(args.size)
    started, loads = time.perf_counter(), [os.getloadavg()[0]]
    table = [
        "| arch | engine | max batch | streams | sampled | classified | dropped | sustained | "
        "e2e p50 ms | e2e p95 ms | step ms/frame | mean batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary, checks = [], []
    cache = os.environ.get("RRN_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="rrn-serve-bench-") as tmp:
        os.environ["RRN_CACHE_HOME"] = str(Path(tmp) / "cache")  # the servers' exports
        try:
            for arch in args.archs.split(","):
                ckpt = write_checkpoint(Path(tmp), arch, args.size)
                rows, found = arch_rows(arch, args.engines.split(","), args, frames, ckpt)
                table += rows
                loads.append(os.getloadavg()[0])
                lines, arch_checks = _checks(arch, found)
                summary += lines
                checks += arch_checks
        finally:
            os.environ.pop("RRN_CACHE_HOME")
            if cache is not None:
                os.environ["RRN_CACHE_HOME"] = cache
    flags = f"{' --quick' if args.quick else ''}{' --every-frame' if args.every_frame else ''}"
    text = "\n".join(
        [
            "# rrn serve: many streams, one batched step",
            "",
            f"Machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}; server and clients on loopback. Command: "
            f"`python benchmarks/serve.py{flags}` ({time.perf_counter() - started:.0f} s); load "
            f"average (1 min) {loads[0]:.1f} at the start, then "
            f"{', '.join(f'{x:.1f}' for x in loads[1:])} after each arch (other "
            "jobs share the cores). Each stream sends a real UCF-101 clip's frames "
            f"(JPEG, 320x240) at {FPS:g} fps ({'all of them' if args.every_frame else 'the sampled ones'} "
            f"sent); the server keeps every {SAMPLE_EVERY}th "
            f"(one per {SAMPLE_EVERY / FPS:.1f} s: 2.5 sampled frames/s per stream); {args.size} px, "
            "random weights (speed only), T=2 identity skip at block4; the server's default "
            "threads (2 for either engine here).",
            "",
            *table,
            "",
            *summary,
            "",
            "Targets (this 2-core CPU):",
            *[f"- [{'x' if ok else ' '}] {text}" for text, ok in checks],
            "",
        ]
    )
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What one hostile client can cost ``rrn serve`` with its default limits, and whether a
well-behaved stream notices (issue 19).

A real ``rrn serve`` process with the default limits (a random RRN: resnet18, T=2, identity
skip at ``block4``, 112 px, every 10th frame: one classified frame per 0.4 s) on loopback;
clients and server share this machine's cores. Measured:

* **CPU per frame**, the worst a frame within the limits can cost: ``prepare_image`` (what a
  decoding worker runs: header checks, decode, resize) on a 4096 x 2160 baseline JPEG, a
  4096 x 2160 progressive JPEG of 64 scans (the scan limit), a 4:1 PNG at the pixel limit, and
  the time to *refuse* the probe's bomb (a progressive JPEG of 120,000 scans);
* **memory per stream**: the server's RSS with 64 streams open (one frame each) minus with none;
* **an upload**: seconds and the server's peak RSS while classifying videos of two lengths
  (memory flat, time linear in the decoded frames), and the bound at the default limits;
* **a canary**: one stream sending a real clip's sampled frames at 2.5 frames/s, end-to-end
  latency p50/p95 alone, then while another client sends the probe's items 1-5 over and over
  (9-byte frames with absurd capture times, 40000 x 1 and 26000 x 1 PNGs, a JPEG scan bomb, an
  upload of 44,000 tiny frames). Target: the canary's p50 within 2x of its unattacked value.

    .venv/bin/python benchmarks/hostile.py           # ~3 min on 2 cores
    .venv/bin/python benchmarks/hostile.py --quick   # seconds: smaller inputs, shorter runs
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--canary-frames", type=int, default=40, help="canary frames per phase")
    p.add_argument("--streams", type=int, default=128, help="streams for the memory figure")
    p.add_argument("--upload-seconds", default="60,240", help="video lengths uploaded")
    p.add_argument("--quick", action="store_true", help="smoke run: small inputs, short phases")
    p.add_argument("--out", default="benchmarks/hostile_results.md", help="'-' for none")
    p.add_argument("--attack", type=int, help=argparse.SUPPRESS)  # the attacking process's port
    p.add_argument("--payloads", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.canary_frames, args.streams, args.upload_seconds = 6, 4, "4,8"
    return args


# ---------------------------------------------------------------------------- hostile inputs
def smooth_image(h: int, w: int, seed: int = 0, noise: int = 8) -> np.ndarray:
    """A camera-like frame (gradients and mild noise): large images stay under 2 MB as JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256], -1)
    return np.clip(base + rng.integers(-noise, noise + 1, (h, w, 3)), 0, 255).astype(np.uint8)


def encode(img: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    return buf.getvalue()


def scan_segments(jpeg: bytes) -> list[bytes]:
    """Each scan of a JPEG: its start-of-scan marker up to the next marker that is not a
    restart or a stuffed byte."""
    out, i = [], jpeg.find(b"\xff\xda")
    while i != -1:
        j = i + 2
        while True:
            j = jpeg.index(b"\xff", j + 1)
            if jpeg[j + 1] != 0 and not 0xD0 <= jpeg[j + 1] <= 0xD7:
                break
        out.append(jpeg[i:j])
        i = jpeg.find(b"\xff\xda", j)
    return out


def with_scans(jpeg: bytes, scans: int) -> bytes:
    """A progressive JPEG whose smallest scan is repeated until it has ``scans`` scans."""
    smallest = min(scan_segments(jpeg), key=len)
    have = jpeg.count(b"\xff\xda")
    return jpeg[:-2] + smallest * max(0, scans - have) + b"\xff\xd9"


def scan_bomb(img: np.ndarray, max_bytes: int) -> bytes:
    """The probe's decoding bomb: a progressive JPEG padded with copies of its smallest scan
    up to ``max_bytes`` (under the frame limit, so only the scan count can refuse it)."""
    jpeg = encode(img, "JPEG", quality=75, progressive=True)
    smallest = min(scan_segments(jpeg), key=len)
    extra = max(0, (max_bytes - len(jpeg)) // len(smallest))
    return jpeg[:-2] + smallest * extra + b"\xff\xd9"


def frame_message(t: float, data: bytes) -> bytes:
    return struct.pack("<d", t) + data


def tiny_frames_video(path: Path, frames: int, side: int = 64) -> Path:
    """The probe's upload bomb: many tiny frames in a small file."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=25)
        s.width = s.height = side
        s.pix_fmt = "yuv420p"
        img = np.zeros((side, side, 3), np.uint8)
        for i in range(frames):
            img[:] = i % 256
            out.mux(s.encode(__import__("av").VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    return path


def camera_video(path: Path, seconds: float, fps: int = 25) -> Path:
    """A 320 x 240 camera-like video of ``seconds`` seconds."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        base = smooth_image(240, 320)
        for i in range(int(seconds * fps)):
            img = np.roll(base, i, axis=1)
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    return path


# ---------------------------------------------------------------------------- the server
class Server:
    """``rrn serve CKPT --port 0`` with the default limits."""

    def __init__(self, ckpt: Path, *flags: str):
        from serve import start_server

        cmd = [sys.executable, "-m", "rrn", "serve", str(ckpt), "--port", "0", *flags]
        self.proc, self.port = start_server(cmd)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep it drained

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024

    def close(self) -> None:
        from serve import stop_server

        stop_server(self.proc)


# ---------------------------------------------------------------------------- measurements
def frame_costs(quick: bool) -> list[str]:
    """Milliseconds of a decoding worker per frame, for the worst frames within the limits."""
    from rrn.serve.frames import FrameError, FrameLimits, prepare_image

    limits = FrameLimits()
    h, w = (540, 1024) if quick else (2160, 4096)
    big = smooth_image(h, w)
    side = int((w * h / 4) ** 0.5)  # side x 4 side: the most pixels at the aspect limit
    cases = {
        f"{w}x{h} baseline JPEG": encode(big, "JPEG", quality=90),
        f"{w}x{h} progressive JPEG, {limits.max_scans} scans (the limit)": with_scans(
            encode(big, "JPEG", quality=90, progressive=True), limits.max_scans
        ),
        f"{4 * side}x{side} PNG (4:1 at the pixel limit)": encode(
            smooth_image(side, 4 * side, noise=0), "PNG", compress_level=9
        ),
    }
    bomb = scan_bomb(big, limits.max_bytes - 16)
    scans = bomb.count(b"\xff\xda")
    bomb_name = f"the probe's bomb: {w}x{h} progressive JPEG of {scans:,} scans"
    lines = ["| frame | bytes | ms per frame (median of 5) | outcome |", "|---|---|---|---|"]
    for name, data in [*cases.items(), (bomb_name, bomb)]:
        times, outcome = [], "decoded and resized"
        for _ in range(5):
            start = time.perf_counter()
            try:
                prepare_image(data, limits, 128, None)
            except FrameError as err:
                outcome = f"refused: {str(err)[:60]}..."
            times.append((time.perf_counter() - start) * 1000)
        lines.append(f"| {name} | {len(data):,} | {sorted(times)[2]:.1f} | {outcome} |")
    return lines


async def open_streams(port: int, n: int, frame: bytes, prefix: str) -> list:
    import websockets

    sockets = []
    for i in range(n):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/v1/streams/{prefix}{i}")
        await ws.recv()  # start
        await ws.send(frame_message(0.0, frame))
        while '"frame"' not in await ws.recv():
            pass
        sockets.append(ws)
    return sockets


def stream_memory(server: Server, n: int, frame: bytes) -> list[str]:
    """The server's RSS over four cycles of ``n`` streams opened (one frame each) and closed:
    the first cycle's growth over ``n`` bounds what a stream costs (it includes buffers the
    process grows once and reuses); later cycles show whether anything stays behind."""

    async def cycles() -> list[tuple[float, float]]:
        out = []
        for c in range(4):
            sockets = await open_streams(server.port, n, frame, f"c{c}_")
            await asyncio.sleep(0.5)
            opened = server.rss_mb()
            for ws in sockets:
                await ws.close()
            await asyncio.sleep(1.0)
            out.append((opened, server.rss_mb()))
        return out

    start = server.rss_mb()
    rounds = asyncio.run(cycles())
    state = __import__("httpx").get(f"http://127.0.0.1:{server.port}/v1/model").json()
    bound = (rounds[0][0] - start) * 1024 / n
    shown = ", ".join(f"{o:.0f}/{c:.0f}" for o, c in rounds)
    drift = (rounds[-1][1] - rounds[1][1]) / (len(rounds) - 2) * 1024 / n
    return [
        f"- model state per stream (`/v1/model`): {state['state_bytes_per_stream'] / 1024:.0f} KiB",
        f"- server RSS {start:.0f} MB at the start; with {n} streams open / after they closed, "
        f"four cycles: {shown} MB; **at most {bound:.0f} KiB per open stream** (the first "
        "cycle's growth over its streams: the state, smoothing, session and socket, and buffers "
        "the process grows once and reuses); after the first cycle RSS moved by "
        f"{drift:.1f} KiB per stream per cycle.",
    ]


def upload(server: Server, video: Path) -> tuple[int, float, float]:
    """(status, seconds, peak server RSS in MB) for one upload."""
    import httpx

    peak, done = [server.rss_mb()], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(server.rss_mb())
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    start = time.perf_counter()
    with open(video, "rb") as fh:
        r = httpx.post(
            f"http://127.0.0.1:{server.port}/v1/predict",
            files={"video": (video.name, fh)},
            timeout=3600,
        )
    seconds = time.perf_counter() - start
    done.set()
    return r.status_code, seconds, max(peak)


def upload_rows(server: Server, lengths: list[float], tmp: Path) -> tuple[list[str], float]:
    lines = [
        "| video | frames | status | seconds | server peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    per_frame = []
    idle = server.rss_mb()
    for seconds in lengths:
        video = camera_video(tmp / f"cam{seconds:g}.mp4", seconds)
        status, took, peak = upload(server, video)
        frames = int(seconds * 25)
        per_frame.append(took / frames)
        lines.append(
            f"| 320x240, {seconds:g} s at 25 fps | {frames} | {status} | {took:.1f} | {peak:.0f} |"
        )
    lines.append(f"\nServer RSS when idle: {idle:.0f} MB.")
    return lines, max(per_frame)


async def attacker(port: int, folder: Path, stop: asyncio.Event, counts: dict) -> None:
    """Items 1-5 of issue 19, over and over, as fast as one client can, until ``stop``."""
    import httpx
    import websockets

    jpeg_bomb = (folder / "bomb.jpg").read_bytes()
    thin = [(folder / "thin0.png").read_bytes(), (folder / "thin1.png").read_bytes()]
    video = (folder / "bomb.mp4").read_bytes()
    async with httpx.AsyncClient(timeout=120) as http:
        i = 0
        while not stop.is_set():
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/v1/streams/attack{i}", max_size=None
            ) as ws:
                await ws.recv()
                messages = [struct.pack("<d", 1e308) + b"x", frame_message(0.0, thin[0])]
                messages += [frame_message(0.04, thin[1])]
                messages += [frame_message(0.5 + 0.4 * k, jpeg_bomb) for k in range(3)]
                for m in messages:
                    await ws.send(m)
                    counts["frames"] += 1
                await ws.send('{"type": "end"}')
                async for raw in ws:
                    if '"end"' in raw[:20]:
                        break
            r = await http.post(
                f"http://127.0.0.1:{port}/v1/predict", files={"video": ("bomb.mp4", video)}
            )
            counts["uploads"] += 1
            counts["statuses"][str(r.status_code)] = (
                counts["statuses"].get(str(r.status_code), 0) + 1
            )
            i += 1


def attack_main(port: int, folder: Path) -> int:
    """The attacking client as its own process (``--attack``): until SIGTERM, then its counts
    as JSON in ``folder/counts.json``."""
    import json
    import signal

    counts = {"frames": 0, "uploads": 0, "statuses": {}}

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        (folder / "attacking").touch()  # SIGTERM is handled from here on
        await attacker(port, folder, stop, counts)

    asyncio.run(run())
    (folder / "counts.json").write_text(json.dumps(counts))
    return 0


def write_payloads(folder: Path, quick: bool) -> Path:
    """Items 2-5 of issue 19 as files, made before the clock starts."""
    h, w = (540, 1024) if quick else (2160, 4096)
    (folder / "thin0.png").write_bytes(encode(smooth_image(1, 40000), "PNG"))
    (folder / "thin1.png").write_bytes(encode(smooth_image(26000, 1), "PNG"))
    (folder / "bomb.jpg").write_bytes(scan_bomb(smooth_image(h, w), 1_990_000))
    tiny_frames_video(folder / "bomb.mp4", 2000 if quick else 44_000)
    return folder


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def canary(port: int, frames: list[bytes], n: int) -> list[float]:
    """A stream at 2.5 sampled frames/s; each frame's send -> frame event, in ms."""
    import websockets

    latencies, sent = [], {}
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/streams/canary") as ws:
        await ws.recv()

        async def receive() -> None:
            async for raw in ws:
                if raw.startswith('{"type": "frame"'):
                    idx = int(re.search(r'"frame": (\d+)', raw).group(1))
                    latencies.append((time.perf_counter() - sent[idx]) * 1000)
                if raw.startswith('{"type": "end"'):
                    return

        reader = asyncio.create_task(receive())
        for i in range(n):
            sent[i] = time.perf_counter()
            await ws.send(frame_message(i * 0.4, frames[i % len(frames)]))
            await asyncio.sleep(0.4)
        await ws.send('{"type": "end"}')
        await asyncio.wait_for(reader, 60)
    return latencies


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` onto ``cpus`` (threads made later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:  # a thread that just ended
            pass


def canary_phase(server: Server, frames: list[bytes], n: int, payloads: Path, cores) -> dict:
    """The canary alone, then while the attacking process runs; with ``cores`` = (the server's
    and the canary's CPUs, the attacker's CPUs), each side on its own cores."""
    import json

    everything = os.sched_getaffinity(0)
    ours, theirs = cores or (everything, everything)
    pin(server.proc.pid, ours)
    pin(os.getpid(), ours)
    try:
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        alone = asyncio.run(canary(server.port, frames, n))
        cpu_alone = (cpu_seconds(server.proc.pid) - cpu0) / (time.perf_counter() - t0)
        (payloads / "attacking").unlink(missing_ok=True)
        attack = subprocess.Popen(
            [sys.executable, __file__, "--attack", str(server.port), "--payloads", str(payloads)],
            preexec_fn=lambda: os.sched_setaffinity(0, theirs),
        )
        try:
            deadline = time.monotonic() + 120
            while not (payloads / "attacking").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)  # the attack is under way before the canary starts
            cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
            attacked = asyncio.run(canary(server.port, frames, n))
            cpu_attacked = (cpu_seconds(server.proc.pid) - cpu0) / (time.perf_counter() - t0)
        finally:
            attack.terminate()
            attack.wait(60)
    finally:
        pin(server.proc.pid, everything)
        pin(os.getpid(), everything)
    counts = json.loads((payloads / "counts.json").read_text())
    return {"alone": alone, "attacked": attacked, "cpu": (cpu_alone, cpu_attacked), **counts}


def canary_rows(server: Server, frames: list[bytes], n: int, payloads: Path) -> list[str]:
    """Two setups: every process on the same cores, and the attacker on a core of its own (what
    its traffic costs the server, without the CPU its own process takes from the machine)."""
    p = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    cpus = sorted(os.sched_getaffinity(0))
    setups = [("same cores", None)]
    if len(cpus) >= 2:
        setups.append(("attacker on its own core", (set(cpus[:-1]), {cpus[-1]})))
    lines = [
        "| setup | canary | frames classified | p50 ms | p95 ms | server CPU (cores) |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for name, cores in setups:
        r = canary_phase(server, frames, n, payloads, cores)
        for phase, cpu in zip(("alone", "attacked"), r["cpu"]):
            xs = r[phase]
            lines.append(
                f"| {name} | {'alone' if phase == 'alone' else 'while attacked'} | "
                f"{len(xs)}/{n} | {p(xs, 0.5):.1f} | {p(xs, 0.95):.1f} | {cpu:.2f} |"
            )
        ratio = p(r["attacked"], 0.5) / p(r["alone"], 0.5)
        ok = "met" if ratio <= 2 else "MISSED"
        notes.append(
            f"- {name}: the attacking client sent {r['frames']} hostile frames on "
            f"{r['uploads']} streams and {r['uploads']} upload bombs (answered {r['statuses']}); "
            f"canary p50 attacked / alone **{ratio:.2f}x** (target <= 2x: {ok})."
        )
    return [*lines, "", *notes]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.attack:
        return attack_main(args.attack, args.payloads)
    from model import emit
    from serve import clip_frames, write_checkpoint

    load = os.getloadavg()[0]
    started = time.perf_counter()
    lines = [
        "# What one hostile client can cost rrn serve (`python benchmarks/hostile.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load:.1f} at the start. "
        "Server: `rrn serve` with its default limits, resnet18 at 112 px, every 10th frame "
        "(0.4 s between classified frames); clients on the same cores.",
        "",
        "## CPU of one frame in a decoding worker",
        "",
        *frame_costs(args.quick),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = write_checkpoint(tmp, "resnet18", 112)
        frames = clip_frames(112, 50)
        server = Server(ckpt, "--max-streams", str(max(64, args.streams + 4)))
        try:
            lines += [
                "",
                "## Memory per stream",
                "",
                *stream_memory(server, args.streams, frames[0]),
            ]
            lengths = [float(x) for x in args.upload_seconds.split(",")]
            rows, per_frame = upload_rows(server, lengths, tmp)
            lines += ["", "## One upload", "", *rows]
            lines.append(
                f"At the default limits (36,000 decoded frames, 600 s, 200 MB) an upload costs at "
                f"most about {per_frame * 36000:.0f} s of one core at this rate "
                f"({per_frame * 1000:.1f} ms per decoded frame of this 320x240 video, measured); "
                "one upload is classified at a time and memory does not grow with its length."
            )
            payloads = write_payloads(tmp, args.quick)
            lines += ["", "## A canary stream while another client sends items 1-5", ""]
            lines += canary_rows(server, frames, args.canary_frames, payloads)
        finally:
            server.close()
    lines += ["", f"Run took {time.perf_counter() - started:.0f} s."]
    emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

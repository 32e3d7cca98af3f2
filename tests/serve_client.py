"""Test-only: a real `rrn serve` process on a free loopback port, and the messages a client
sends it (frames of every kind, hostile ones included), over real sockets."""

import asyncio
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image


@contextmanager
def running_server(run, *flags: str, env: dict | None = None):
    """``rrn serve RUN --port 0 FLAGS``; yields (process, port); killed at the end."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("RRN_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrn", "serve", str(run), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        yield proc, _port(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        proc.stdout.close()


def _port(proc) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if match := re.search(r"on http://127\.0\.0\.1:(\d+)/", line):
            return int(match.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"rrn serve did not start: {proc.stdout.read()}")


def image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def encoded(img: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **options)
    return buf.getvalue()


def frame(t: float, data: bytes) -> bytes:
    """A frame message: 8-byte little-endian float64 capture time, then the image."""
    return struct.pack("<d", t) + data


def jpeg_frame(t: float, seed: int) -> bytes:
    return frame(t, encoded(image(seed)))


def many_scans_jpeg(scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans: the shape
    of a decoding bomb (each repeated scan is decoded again)."""
    data = encoded(image(7, 64, 64), "JPEG", progressive=True, quality=90)
    last = data.rindex(b"\xff\xda")
    scan = data[last:-2]  # the last scan, up to the end-of-image marker
    have = data.count(b"\xff\xda")
    return data[:-2] + scan * max(0, scans - have) + b"\xff\xd9"


async def receive_until(ws, kind: str, timeout: float = 60) -> list[dict]:
    """Messages up to and including the first of type ``kind``."""
    out = []
    while True:
        out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
        if out[-1]["type"] == kind:
            return out


async def canary(port: int, frames: int, name: str = "canary", gap: float = 0.0) -> list[float]:
    """A well-behaved stream: ``frames`` JPEG frames, each sent once the previous one is
    classified; returns each frame's seconds from sending to its ``frame`` event."""
    import websockets

    latencies = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/streams/{name}") as ws:
        await receive_until(ws, "start")
        for i in range(frames):
            sent = time.perf_counter()
            await ws.send(jpeg_frame(i * 0.04, i))
            await receive_until(ws, "frame")
            latencies.append(time.perf_counter() - sent)
            await asyncio.sleep(gap)
        await ws.send('{"type": "end"}')
        await receive_until(ws, "end")
    return latencies

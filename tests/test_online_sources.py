"""Live sources: a real MPEG-TS stream over UDP that stops sending is an ordinary end, said
plainly (not FFmpeg's "Immediate exit requested" and exit 1)."""

import json
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rrn.cli import main
from runs import save_run


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bound(port: int) -> bool:
    """Whether a UDP socket on this machine is bound to ``port`` (Linux's /proc/net/udp)."""
    suffix = f":{port:04X}"
    rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(row.split()[1].endswith(suffix) for row in rows)


def _send_when_bound(url: str, port: int, frames: int) -> None:
    """Send once the receiver listens: a stream sent before that is lost, and on a busy machine
    opening the model and the source takes longer than any fixed delay assumes."""
    deadline = time.monotonic() + 120
    while not _bound(port) and time.monotonic() < deadline:
        time.sleep(0.01)
    _send_mpegts(url, frames)


def _send_mpegts(url: str, frames: int, fps: int = 25) -> None:
    """Encode ``frames`` frames as MPEG-TS to ``url`` at ``fps`` frames/s, then stop sending."""
    rng = np.random.default_rng(0)
    with av.open(url, "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        start = time.perf_counter()
        for i in range(frames):
            img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
            time.sleep(max(0.0, start + (i + 1) / fps - time.perf_counter()))
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.skipif(not Path("/proc/net/udp").exists(), reason="needs Linux's /proc/net/udp")
def test_a_udp_stream_that_stops_sending_is_an_ordinary_end(tmp_path, capsys):
    run = save_run(tmp_path / "run", frame_size=32, sample_every=5)
    port = _free_udp_port()
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    sender = threading.Thread(target=_send_when_bound, args=(url, port, 75), daemon=True)
    sender.start()
    rc = main(
        [
            "stream",
            str(run),
            f"udp://127.0.0.1:{port}",
            "--engine",  # listening within the sender's 1 s: no first-use ONNX export first
            "torch",
            "--timeout",
            "3",
            "--json",
            str(tmp_path / "events.jsonl"),
        ]
    )
    sender.join(60)
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    end = events[-1]
    assert rc == 0, (out, err)
    assert end["type"] == "end" and end["status"] == "end" and end["live"] is True
    assert end["reason"] == "no data for 3 s: the stream ended or stalled"
    assert end["classified"] >= 5 and "Immediate exit" not in out + err
    assert "(no data for 3 s: the stream ended or stalled)" in out
    assert "ms of processing time per classified frame" in out and "real time" not in out

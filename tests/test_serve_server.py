"""rrn serve as a process: it refuses to listen beyond loopback without a token, and SIGTERM
ends every open stream with its `end` event before the process exits."""

import asyncio
import json
import signal
import subprocess
import time

import numpy as np
import pytest

pytest.importorskip("uvicorn")
websockets = pytest.importorskip("websockets")

from rrn.cli import main  # noqa: E402
from runs import save_run  # noqa: E402
from serve_client import jpeg_frame, running_server  # noqa: E402


def test_a_non_loopback_host_needs_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RRN_TOKEN", raising=False)
    run = save_run(tmp_path / "run", frame_size=32)
    assert main(["serve", str(run), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--host 0.0.0.0 makes the service reachable from other machines" in err
    assert "--token or the RRN_TOKEN environment variable" in err


def test_loopback_names():
    from rrn.serve.auth import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.3.2.1") and not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


async def _stream_then_sigterm(port: int, proc: subprocess.Popen) -> list[dict]:
    received = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/streams/cam") as ws:
        received.append(json.loads(await ws.recv()))
        for i in range(3):
            await ws.send(jpeg_frame(i * 0.04, i))
            while (msg := json.loads(await ws.recv()))["type"] != "frame":
                received.append(msg)
            received.append(msg)
        proc.send_signal(signal.SIGTERM)
        try:
            async for raw in ws:
                received.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
    return received


def test_sigterm_ends_every_stream_with_its_end_event(tmp_path):
    run = save_run(tmp_path / "run", frame_size=32, sample_every=1)
    with running_server(run) as (proc, port):
        received = asyncio.run(asyncio.wait_for(_stream_then_sigterm(port, proc), 60))
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM  # 143, as every rrn command
        stdout = proc.stdout.read()
    kinds = [m["type"] for m in received]
    assert kinds[0] == "start" and kinds.count("frame") == 3 and kinds[-1] == "end"
    end = received[-1]
    assert end["reason"] == "the server is shutting down" and end["classified"] == 3
    closing = [m for m in received if m["type"] == "segment" and m["phase"] == "end"]
    assert closing and closing[-1]["stream"] == "cam"  # the open segment was closed
    # ... where the last frame's interval ends, as rrn stream and rrn eval end it
    interval = received[0]["interval_s"]
    assert closing[-1]["last"] == 0.08 and closing[-1]["end"] == round(0.08 + interval, 3)
    assert "rrn serve: stopped" in stdout


def test_sigterm_during_an_upload_stops_its_classification(tmp_path):
    """The process exited only once the upload in hand was classified (issue 19: unbounded with
    a long video); now the classification stops at its next piece and the client gets 503."""
    import threading

    import av
    import httpx

    video = tmp_path / "long.mp4"
    with av.open(str(video), "w") as out:  # 6000 frames: many seconds of work for the model
        stream = out.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(6000):
            img = np.full((64, 64, 3), i % 256, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    run = save_run(tmp_path / "run", frame_size=64, sample_every=1)
    with running_server(run, "--max-upload-frames", "100000") as (proc, port):
        answer = {}

        def upload():
            with open(video, "rb") as fh:
                answer["r"] = httpx.post(
                    f"http://127.0.0.1:{port}/v1/predict",
                    files={"video": ("long.mp4", fh)},
                    timeout=120,
                )

        sender = threading.Thread(target=upload)
        sender.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the classification runs
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            if "rrn_uploads_classifying 1.0" in text:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the upload was never classified")
        proc.send_signal(signal.SIGTERM)
        sender.join(120)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert answer["r"].status_code == 503, answer["r"].text
    assert "shutting down" in answer["r"].json()["detail"]

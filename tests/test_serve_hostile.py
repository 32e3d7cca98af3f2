"""rrn serve against hostile clients (issue 19), each as the probe did it: a real server
process, real clients over sockets. Every test names the probe's finding it guards against.

The server here: a resnet18 at 32 px sampling every frame (one frame per 0.04 s of capture
time), 2 decoding workers, small upload limits so that the bombs stay small."""

import asyncio
import json
import socket
import struct
import time

import httpx
import pytest

pytest.importorskip("uvicorn")
websockets = pytest.importorskip("websockets")

from runs import save_run  # noqa: E402
from serve_client import (  # noqa: E402
    canary,
    encoded,
    frame,
    image,
    jpeg_frame,
    many_scans_jpeg,
    receive_until,
    running_server,
)

LIMITS = ("--decode-workers", "2", "--max-upload-frames", "400", "--max-upload-seconds", "20")
LIMITS += ("--max-frame-bytes", "200000", "--upload-timeout", "3", "--max-fps", "1000")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = save_run(tmp_path_factory.mktemp("hostile") / "run", frame_size=32, sample_every=1)
    with running_server(run, *LIMITS) as (proc, port):
        yield proc, port


def _url(port: int, path: str) -> str:
    return f"ws://127.0.0.1:{port}{path}"


async def _errors_for(port: int, name: str, messages: list, then_ok: bool = True) -> list[dict]:
    """Send ``messages`` on stream ``name``, then (``then_ok``) a good frame; the events up to
    that frame's ``frame`` event (or the errors alone)."""
    got = []
    async with websockets.connect(_url(port, f"/v1/streams/{name}"), max_size=None) as ws:
        await receive_until(ws, "start")
        for m in messages:
            await ws.send(m)
            got += await receive_until(ws, "error", timeout=30)
        if then_ok:
            await ws.send(jpeg_frame(1.0, 1))
            got += await receive_until(ws, "frame", timeout=30)
    return got


def _healthz_ms(port: int) -> float:
    start = time.perf_counter()
    r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert r.status_code == 200, r.text
    return (time.perf_counter() - start) * 1000


# 1. Critical: one 9-byte message hung the server for good ------------------------------------
def test_absurd_capture_times_are_errors_and_the_server_stays_responsive(server):
    _, port = server

    async def probe():
        async with websockets.connect(_url(port, "/v1/streams/clock")) as ws:
            await receive_until(ws, "start")
            await ws.send(struct.pack("<d", 1e308) + b"x")  # the 9-byte message
            e1 = (await receive_until(ws, "error", 10))[-1]
            await ws.send(jpeg_frame(0.0, 0))
            await receive_until(ws, "frame", 30)
            await ws.send(jpeg_frame(1e6, 1))  # a jump of 11.6 days: stalled every stream 2.3 s
            e2 = (await receive_until(ws, "error", 10))[-1]
            await ws.send(jpeg_frame(4e14, 2))  # epoch microseconds, not seconds
            e3 = (await receive_until(ws, "error", 10))[-1]
            await ws.send(jpeg_frame(0.04, 3))  # the stream goes on
            await receive_until(ws, "frame", 30)
            return e1, e2, e3

    e1, e2, e3 = asyncio.run(probe())
    assert "not in seconds" in e1["message"] and e1["kind"] == "frame"
    assert "jumps 1000000.000 s" in e2["message"] and "limit is 60 s" in e2["message"]
    assert "not in seconds" in e3["message"]
    assert _healthz_ms(port) < 2000
    assert len(asyncio.run(canary(port, 3))) == 3


# 2 and 3. High: an elongated image broke every batch it was in, or cost seconds per step -------
def test_an_elongated_image_is_an_error_for_its_stream_only(server):
    _, port = server
    thin = [
        frame(0.0, encoded(image(0, 1, 40000), "PNG")),
        frame(0.04, encoded(image(1, 26000, 1), "PNG")),
    ]

    async def probe():
        attack = asyncio.create_task(_errors_for(port, "thin", thin))
        latencies = await canary(port, 12, name="canary-thin")
        return await attack, latencies

    events, latencies = asyncio.run(probe())
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 2 and all(
        "more elongated than the limit of 4:1" in e["message"] for e in errors
    )
    assert [e["type"] for e in events][-1] == "frame"  # the attacker's own stream goes on
    assert len(latencies) == 12  # no canary frame was lost to another stream's image


# 4. High: a JPEG of 120,000 scans decoded for 20 s within every limit ----------------------
def test_a_jpeg_with_too_many_scans_is_refused_before_decoding(server):
    _, port = server
    bomb = frame(0.0, many_scans_jpeg(100))  # the probe's: 120,000 scans in 1.85 MB
    events = asyncio.run(_errors_for(port, "scans", [bomb]))
    assert "JPEG of 100 scans is over the limit of 16" in events[0]["message"]


# 5. High: a 994 KB mp4 of 44,000 frames took 82 s and 4.5 GB --------------------------------
def _tiny_frames_mp4(path, frames: int):
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((16, 16, 3), i % 256, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_an_upload_with_too_many_frames_is_refused_with_413(server, tmp_path):
    _, port = server
    video = _tiny_frames_mp4(tmp_path / "many.mp4", 2000)  # 80 s at 25 fps, a few KB
    start = time.perf_counter()
    with open(video, "rb") as fh:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/predict", files={"video": ("many.mp4", fh)}, timeout=60
        )
    assert r.status_code == 413, r.text
    assert "over the limit of 20 s" in r.json()["detail"] and time.perf_counter() - start < 10


# 6. Medium: a client declaring more than it sent held the only upload slot -----------------
def test_a_slow_upload_holds_no_slot_and_times_out(server, tmp_path):
    _, port = server
    stalled = socket.create_connection(("127.0.0.1", port))
    body = b'--b\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n\r\n'
    stalled.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" + body
    )  # ... and nothing more
    try:
        video = _tiny_frames_mp4(tmp_path / "ok.mp4", 20)
        with open(video, "rb") as fh:
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/predict", files={"video": ("ok.mp4", fh)}, timeout=60
            )
        assert r.status_code == 200, r.text  # was 503 for 40 s
        stalled.settimeout(30)
        answer = stalled.recv(4096)
        assert b" 408 " in answer.split(b"\r\n")[0]  # after --upload-timeout 3
    finally:
        stalled.close()


# 8. Medium: any web page could drive a loopback service without a token ---------------------
def test_other_origins_and_hosts_are_refused(server):
    _, port = server
    base = f"http://127.0.0.1:{port}"
    evil = {"Origin": "http://evil.example"}
    assert httpx.get(f"{base}/v1/model", headers={"Host": "attacker.example"}).status_code == 403
    assert (
        httpx.post(f"{base}/v1/predict", headers=evil, files={"video": ("v.mp4", b"x")}).status_code
        == 403
    )
    assert (
        httpx.get(f"{base}/v1/model", headers={"Origin": base}).status_code == 200
    )  # its own page
    assert httpx.get(f"http://localhost:{port}/v1/model").status_code == 200

    async def hijack():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                _url(port, "/v1/streams/x"), origin="http://evil.example"
            ):
                pass
        return refused.value.response.status_code

    assert asyncio.run(hijack()) == 403


# 9. Low: a stream id stayed "already open" right after its end ------------------------------
def test_an_id_is_free_again_as_soon_as_its_end_arrives(server):
    _, port = server

    async def reconnect(times: int) -> list[str]:
        kinds = []
        for i in range(times):
            async with websockets.connect(_url(port, "/v1/streams/cam4")) as ws:
                kinds.append(json.loads(await ws.recv())["type"])  # start, or error if refused
                await ws.send(jpeg_frame(0.0, i))
                await ws.send('{"type": "end"}')
                await receive_until(ws, "end")
        return kinds

    assert asyncio.run(reconnect(12)) == ["start"] * 12


# 10 and 11. Low: deep JSON raised RecursionError; an oversized frame closed the connection ---
def test_deep_json_and_oversized_frames_are_errors_and_the_stream_goes_on(server):
    _, port = server
    big = frame(0.0, b"\xff" * 250_000)  # over --max-frame-bytes 200000, under twice that
    events = asyncio.run(_errors_for(port, "odd", ["[" * 100_000, big]))
    errors = [e for e in events if e["type"] == "error"]
    assert 'text messages are {"type": "end"}' in errors[0]["message"]
    assert "over the limit of 200000" in errors[1]["message"]
    assert events[-1]["type"] == "frame"

    async def huge():
        async with websockets.connect(_url(port, "/v1/streams/huge"), max_size=None) as ws:
            await receive_until(ws, "start")
            await ws.send(b"\x00" * 500_000)  # over twice the limit: not read into memory
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            return closed.value.rcvd.code

    assert asyncio.run(huge()) == 1009


# 12. Low: /openapi.json answered without the token ------------------------------------------
def test_there_is_no_openapi_schema(server):
    _, port = server
    assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 404


# Also: the checkpoint's absolute path was in /v1/model, start events and uploads -------------
def test_the_server_names_its_checkpoint_without_its_file_system(server):
    _, port = server
    described = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()
    assert described["checkpoint"] == "run/last.pt"
    assert described["limits"]["max_aspect"] == 4 and described["limits"]["max_jpeg_scans"] == 16


def test_the_server_starts_without_deprecation_warnings(tmp_path):
    run = save_run(tmp_path / "run", frame_size=32)
    with running_server(run) as (proc, port):
        assert _healthz_ms(port) < 5000
        proc.terminate()
        out = proc.stdout.read()
    assert "deprecated" not in out.lower(), out

"""rrn serve in-process (Starlette's test client): concurrent streams equal each stream alone,
authentication, limits, malformed frames hurt only their own stream, state freed on
disconnect, uploads classified as rrn predict does, metrics."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from rrn import load_model
from rrn.config import ServeConfig, StreamConfig
from rrn.online import MultiStreamRecognizer, StreamFrame
from rrn.serve.app import create_app
from runs import save_run

CLASSES = ("Walk", "Run", "Jump", "Wave")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = save_run(
        tmp_path_factory.mktemp("serve") / "run",
        skips=("block2", "block4"),
        skip_type="linear",
        frame_size=32,
        sample_every=1,
        classes=CLASSES,
        seed=4,
    )
    return load_model(run)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 52, 3), dtype=np.uint8)


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def _frame(t: float, img: np.ndarray) -> bytes:
    return struct.pack("<d", t) + _png(img)


def _until(ws, kind: str) -> list[dict]:
    """Messages up to and including the first of type ``kind``."""
    out = []
    while True:
        out.append(ws.receive_json())
        if out[-1]["type"] == kind:
            return out


def _client(model, events=None, **settings) -> TestClient:
    """The app in-process; Starlette's test client names the host "testserver"."""
    settings.setdefault("allowed_hosts", ("testserver",))
    return TestClient(create_app(model, ServeConfig(**settings), events))


def test_two_concurrent_streams_match_each_stream_run_alone(model):
    videos = {"cam-a": [_image(i) for i in range(6)], "cam-b": [_image(10 + i) for i in range(4)]}
    alone = {}
    for k, frames in videos.items():
        rec = MultiStreamRecognizer(model)
        rec.open(k)
        alone[k] = torch.stack(
            [rec.step([StreamFrame(k, f, i, i / 25)])[k].probs for i, f in enumerate(frames)]
        )
    with (
        _client(model, StreamConfig(labels=4), max_wait_ms=20) as client,
        client.websocket_connect("/v1/streams/cam-a") as a,
        client.websocket_connect("/v1/streams/cam-b") as b,
    ):
        assert a.receive_json()["type"] == b.receive_json()["type"] == "start"
        got = {"cam-a": [], "cam-b": []}
        for i in range(6):  # interleaved, each waiting for its answer: nothing is replaced
            for k, ws in (("cam-a", a), ("cam-b", b)):
                if i < len(videos[k]):
                    ws.send_bytes(_frame(i / 25, videos[k][i]))
            for k, ws in (("cam-a", a), ("cam-b", b)):
                if i < len(videos[k]):
                    frame = [m for m in _until(ws, "frame") if m["type"] == "frame"][0]
                    assert frame["stream"] == k and frame["frame"] == i
                    got[k].append(
                        [t["prob"] for t in sorted(frame["top"], key=lambda t: t["class"])]
                    )
        b.send_text('{"type": "end"}')
        end_b = _until(b, "end")[-1]
    for k in videos:
        expected = alone[k][:, [CLASSES.index(c) for c in sorted(CLASSES)]]
        np.testing.assert_allclose(np.array(got[k]), expected.numpy(), atol=1e-4)  # 4 decimals
    assert (
        end_b["classified"] == 4
        and end_b["dropped"] == 0
        and end_b["reason"] == "the client ended the stream"
    )


def test_frames_are_kept_at_the_sampling_interval_by_capture_time(model, tmp_path):
    run = save_run(tmp_path / "run", frame_size=32, sample_every=10, classes=CLASSES)
    with _client(load_model(run)) as client, client.websocket_connect("/v1/streams/s") as ws:
        start = ws.receive_json()
        assert start["interval_s"] == pytest.approx(0.4)  # every 10th frame of 25 fps
        for i in range(25):  # one second at 25 fps: frames at 0, 0.4, 0.8 s are classified
            ws.send_bytes(_frame(i / 25, _image(i)))
        ws.send_text('{"type": "end"}')
        messages = _until(ws, "end")
    times = [m["time"] for m in messages if m["type"] == "frame"]
    end = messages[-1]
    assert end["received"] == 25 and end["sampled"] == 3 and end["skipped"] == 22
    # the three kept frames are classified, or replaced by a newer one while the model was busy
    assert end["classified"] + end["dropped"] == 3 and set(times) <= {0.0, 0.4, 0.8} and times


def test_the_token_guards_every_route_but_healthz(model):
    with _client(model, token="s3cret-0123456789") as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/v1/model", "/metrics"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert (
                client.get(path, headers={"Authorization": "Bearer s3cret-0123456789"}).status_code
                == 200
            )
        assert client.post("/v1/predict", files={"video": ("v.mp4", b"x")}).status_code == 401
        for url, headers in (
            ("/v1/streams/a", {}),
            ("/v1/streams/a?token=nope", {}),
            ("/v1/streams/a", {"Authorization": "Bearer nope"}),
        ):
            with pytest.raises(Exception), client.websocket_connect(url, headers=headers) as ws:  # noqa: B017
                ws.receive_json()
        with client.websocket_connect("/v1/streams/a?token=s3cret-0123456789") as ws:
            assert ws.receive_json()["type"] == "start"
        with client.websocket_connect(
            "/v1/streams/b", headers={"Authorization": "Bearer s3cret-0123456789"}
        ) as ws:
            assert ws.receive_json()["type"] == "start"


def test_every_route_but_the_public_ones_needs_the_token(model):
    """Iterates the app's routes: a route added later is covered without editing this test,
    and one that forgets protection cannot exist (the middleware decides before any route)."""
    from fastapi.routing import APIRoute
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    from rrn.serve.app import PUBLIC

    token = "s3cret-0123456789"
    app = create_app(model, ServeConfig(token=token, allowed_hosts=("testserver",)))
    routes = [r for r in app.routes if isinstance(r, APIRoute | WebSocketRoute)]
    assert {r.path for r in routes} >= {"/", "/healthz", "/metrics", "/v1/model", "/v1/predict"}
    with TestClient(app) as client:
        for route in routes:
            path = route.path.replace("{stream_id}", "probe")
            if isinstance(route, WebSocketRoute):
                with pytest.raises(WebSocketDisconnect) as refused:
                    with client.websocket_connect(path) as ws:
                        ws.receive_json()
                assert refused.value.code == 1008, path
                continue
            for method in route.methods - {"HEAD"}:
                anonymous = client.request(method, path).status_code
                signed = client.request(
                    method, path, headers={"Authorization": f"Bearer {token}"}
                ).status_code
                if path in PUBLIC:
                    assert anonymous != 401 and signed != 401, path
                else:
                    assert anonymous == 401 and signed != 401, (method, path)
        assert client.get("/no-such-route").status_code == 401  # unknown paths fail closed


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none: what a decompression bomb's
    header says, at a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_bad_frames_get_an_error_for_their_stream_only(model):
    bad = {  # capture times 1 s apart: each frame is one the sampling keeps
        "short": b"\x00\x01",
        "time": struct.pack("<d", float("nan")) + b"x" * 10,
        "not an image": struct.pack("<d", 1.0) + b"GIF89a not a frame",
        "too many pixels": struct.pack("<d", 2.0) + _png_header(30000, 30000),
        "many pixels": struct.pack("<d", 3.0) + _png_header(3000, 3000),
        "too big": struct.pack("<d", 4.0) + bytes(30_000),
    }
    with (
        _client(model, max_frame_bytes=20_000, max_pixels=4_000_000) as client,
        client.websocket_connect("/v1/streams/victim") as victim,
        client.websocket_connect("/v1/streams/good") as good,
    ):
        victim.receive_json(), good.receive_json()
        errors = []
        for message in bad.values():
            victim.send_bytes(message)
            errors.append(victim.receive_json())
        victim.send_text("hello")
        errors.append(victim.receive_json())
        good.send_bytes(_frame(0.0, _image(1)))
        assert [m for m in _until(good, "frame") if m["type"] == "frame"][0]["stream"] == "good"
        victim.send_bytes(_frame(5.0, _image(2)))  # the victim's stream still works
        assert _until(victim, "frame")[-1]["frame"] == len(bad)
    assert [e["type"] for e in errors] == ["error"] * 7
    text = " | ".join(e["message"] for e in errors)
    for words in (
        "8-byte little-endian float64",
        "capture time must be a finite number",
        "not a readable JPEG or PNG",
        "more pixels than the limit of 4000000",
        "3000x3000 pixels is over the limit of 4000000",
        "over the limit of 20000",
        'text messages are {"type": "end"}',
    ):
        assert words in text


def test_a_client_that_disconnects_mid_stream_frees_its_state(model):
    app = create_app(model, ServeConfig(allowed_hosts=("testserver",)))
    service = app.state.service
    with TestClient(app) as client:
        with client.websocket_connect("/v1/streams/gone") as ws:
            ws.receive_json()
            ws.send_bytes(_frame(0.0, _image(0)))
            _until(ws, "frame")
            assert "gone" in service.recognizer.streams and "gone" in service.sessions
        # the client closed without {"type": "end"}: the server notices and frees everything
        for _ in range(100):
            if "gone" not in service.recognizer.streams:
                break
            client.get("/healthz")
        assert "gone" not in service.recognizer.streams and "gone" not in service.sessions
        assert client.get("/healthz").json()["open_streams"] == 0


def test_ids_and_the_stream_limit(model):
    # the default idle timeout (30 s): the first stream stays open however busy the machine
    with _client(model, max_streams=1) as client:
        with client.websocket_connect("/v1/streams/one") as first:
            first.receive_json()
            with client.websocket_connect("/v1/streams/two") as second:
                refused = second.receive_json()
            assert refused["type"] == "error" and "1 streams are open" in refused["message"]
        with client.websocket_connect("/v1/streams/bad%20id!") as ws:
            assert "a stream id is" in ws.receive_json()["message"]


def test_an_idle_stream_is_ended(model):
    with _client(model, idle_timeout=0.5) as client:
        with client.websocket_connect("/v1/streams/one") as first:
            first.receive_json()
            end = _until(first, "end")[-1]  # nothing sent for 0.5 s
            assert "no message for 0.5 s" in end["reason"]


def test_a_stream_id_cannot_be_taken_over(model):
    with _client(model) as client, client.websocket_connect("/v1/streams/mine") as mine:
        mine.receive_json()
        with client.websocket_connect("/v1/streams/mine") as thief:
            assert "already open on another connection" in thief.receive_json()["message"]
        mine.send_bytes(_frame(0.0, _image(0)))
        assert _until(mine, "frame")[-1]["stream"] == "mine"


def test_frames_over_the_rate_limit_are_dropped_and_counted(model):
    with _client(model, max_fps=2) as client, client.websocket_connect("/v1/streams/fast") as ws:
        ws.receive_json()
        for i in range(6):
            ws.send_bytes(_frame(i * 0.5, _image(i)))
        ws.send_text('{"type": "end"}')
        messages = _until(ws, "end")
    rate = [m for m in messages if m["type"] == "dropped" and m["reason"] == "rate"]
    assert len(rate) >= 3 and messages[-1]["received"] == 6


def test_model_description_and_metrics(model):
    with _client(model) as client:
        info = client.get("/v1/model").json()
        assert info["classes"] == list(CLASSES) and info["frame_size"] == 32
        assert info["sampling"]["interval_s"] == pytest.approx(1 / 25)
        assert info["state_bytes_per_stream"] == MultiStreamRecognizer(model).state_bytes
        assert info["checkpoint_choice"]["chosen_by"] == "last"
        with client.websocket_connect("/v1/streams/m") as ws:
            ws.receive_json()
            ws.send_bytes(_frame(0.0, _image(0)))
            _until(ws, "frame")
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    value = {s.name: s.value for f in families.values() for s in f.samples}
    assert value["rrn_frames_received_total"] == 1 and value["rrn_frames_classified_total"] == 1
    assert value["rrn_batch_size_count"] == 1 and value["rrn_step_seconds_count"] == 1
    assert "rrn_open_streams" in value and "rrn_frames_dropped_total" in value


def test_an_upload_is_classified_as_rrn_predict_does(model, tmp_path, capsys):
    from rrn.cli import main
    from rrn.data.synth import write_video

    frames = np.stack([_image(i) for i in range(12)])
    video = write_video(tmp_path / "clip.avi", frames, fps=25)
    assert main(["predict", str(model.checkpoint), str(video), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["videos"][0]
    with _client(model, max_upload_mb=1) as client:
        reply = client.post("/v1/predict", files={"video": ("clip.avi", video.read_bytes())})
        too_big = client.post("/v1/predict", files={"video": ("big.avi", bytes(1_100_000))})
        broken = client.post("/v1/predict", files={"video": ("bad.avi", b"not a video")})
    assert reply.status_code == 200
    got = reply.json()["videos"][0]
    assert got["video"] == "clip.avi" and got["num_frames"] == expected["num_frames"]
    assert [t["class"] for t in got["top"]] == [t["class"] for t in expected["top"]]
    np.testing.assert_allclose(
        [t["prob"] for t in got["top"]], [t["prob"] for t in expected["top"]], atol=1e-4
    )
    assert too_big.status_code == 413
    assert broken.status_code == 422 and "error" in broken.json()["videos"][0]


def test_healthz_says_503_while_the_model_cannot_classify(model):
    """Liveness reflects a server that cannot classify (issue 19: six decoding bombs starved
    every stream while /healthz said ok)."""
    import threading
    import time

    app = create_app(model, ServeConfig(allowed_hosts=("testserver",)))
    service = app.state.service
    service.stall_s = 0.3
    gate, step = threading.Event(), service.recognizer.step
    service.recognizer.step = lambda frames: (gate.wait(60), step(frames))[1]

    def healthz_until(code: int) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = client.get("/healthz")
            if r.status_code == code:
                return r.json()
            time.sleep(0.05)
        raise AssertionError(f"/healthz never said {code}")

    with TestClient(app) as client, client.websocket_connect("/v1/streams/s") as ws:
        assert healthz_until(200)["status"] == "ok"
        ws.receive_json()
        ws.send_bytes(_frame(0.0, _image(0)))
        body = healthz_until(503)
        assert body["status"] == "unavailable" and "cannot keep up" in body["reason"]
        gate.set()
        _until(ws, "frame")
        assert healthz_until(200)["batcher_waiting_s"] < 0.3


def test_the_onnxruntime_engine_serves_a_stream_as_torch_does(model):
    """The same WebSocket stream through each engine: the same frames, probabilities to the
    events' 4 decimals (+ 1e-4); /v1/model names the engine."""
    pytest.importorskip("onnxruntime")
    images = [_image(30 + i) for i in range(5)]
    got = {}
    for engine in ("torch", "onnxruntime"):
        with (
            _client(model, StreamConfig(labels=4, engine=engine)) as client,
            client.websocket_connect("/v1/streams/cam") as ws,
        ):
            assert client.get("/v1/model").json()["engine"] == engine
            assert ws.receive_json()["type"] == "start"
            got[engine] = []
            for i, img in enumerate(images):  # each waits for its answer: nothing is replaced
                ws.send_bytes(_frame(i / 25, img))
                (frame,) = [m for m in _until(ws, "frame") if m["type"] == "frame"]
                assert frame["frame"] == i
                got[engine].append(
                    [t["prob"] for t in sorted(frame["top"], key=lambda t: t["class"])]
                )
            ws.send_text('{"type": "end"}')
            assert _until(ws, "end")[-1]["classified"] == len(images)
    np.testing.assert_allclose(got["onnxruntime"], got["torch"], atol=2e-4, rtol=0)
    np.testing.assert_allclose(np.sum(got["torch"], 1), 1.0, atol=1e-3)  # all 4 classes listed

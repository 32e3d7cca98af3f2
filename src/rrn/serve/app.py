"""The HTTP/WebSocket routes of ``rrn serve`` (FastAPI on uvicorn).

* ``GET /``: the browser page (webcam or a local video file, top-3 over the video, a strip of
  the top class over time);
* ``GET /healthz``: whether the service classifies (200) or cannot (503, with the reason);
* ``GET /metrics``: Prometheus text format;
* ``GET /v1/model``: classes, frame size, sampling interval, state bytes per stream, limits;
* ``POST /v1/predict``: a video file (multipart field ``video``) -> ``rrn predict --json``'s JSON;
* ``WS /v1/streams/{stream_id}``: binary messages are frames (8-byte little-endian float64
  capture time, then JPEG or PNG bytes), the text message ``{"type": "end"}`` ends the stream;
  the server sends the events of :mod:`rrn.online.events` as text JSON, each with ``stream``.

Every route needs the token but those in :data:`PUBLIC` (the page and ``/healthz``), and every
request passes the Host and Origin checks: :class:`~rrn.serve.auth.Guard`, a middleware, decides
before any route runs. The server never opens a path or URL a client names: uploads go to a
temporary file of its own, deleted after use. docs/serve.md says what one client can cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from rrn.files import json_text
from rrn.online.events import checkpoint_name, event
from rrn.serve.auth import Guard
from rrn.serve.service import Service
from rrn.serve.session import StreamSession

logger = logging.getLogger(__name__)

PUBLIC = frozenset({"/", "/healthz"})
"""The only paths served without the token: the page (it asks for the token itself) and
liveness. Every other path, present or future, needs it."""
STREAM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
REOPEN_WAIT_S = 5.0
"""How long a connection for a stream id that is still ending waits for it to be free."""
POLICY_VIOLATION, TRY_AGAIN_LATER, GOING_AWAY = 1008, 1013, 1001


def create_app(model, config, events=None) -> FastAPI:
    """The service for ``model`` (from :func:`rrn.load_model`) with ``config`` (a
    :class:`~rrn.config.ServeConfig`; its token is the one required) and ``events`` (a
    :class:`~rrn.config.StreamConfig`: labels, smoothing and segments of the events)."""
    service = Service(model, config, events)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.stopping.set()
        await end_all(service, "the server is shutting down")
        service.close()

    app = FastAPI(
        title="rrn serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.service = service
    app.add_middleware(
        Guard,
        token=config.token,
        bind=config.host,
        public=PUBLIC,
        allowed_hosts=config.allowed_hosts,
        allowed_origins=config.allowed_origins,
    )
    _http_routes(app, service)
    _stream_route(app, service)
    return app


def _http_routes(app: FastAPI, service: Service) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("rrn.serve").joinpath("static/index.html").read_text("utf-8")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok, body = service.health()
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/model")
    async def model_info() -> Response:
        return Response(json_text(service.describe()), media_type="application/json")

    @app.post("/v1/predict")
    async def predict(request: Request) -> Response:
        return await _predict(service, request)


async def _predict(service: Service, request: Request) -> Response:
    """Receive the whole upload first (bounded in size and time, into a file of its own), then
    take the only classification slot: a client that is slow to send holds nothing."""
    c = service.config
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length header")
    if not length.isdigit() or int(length) > c.max_upload_mb * 1_000_000:
        raise HTTPException(413, f"the upload is over the limit of {c.max_upload_mb:g} MB")
    if service.receiving.locked():
        raise HTTPException(503, "too many uploads arriving; retry shortly", {"Retry-After": "2"})
    with tempfile.TemporaryDirectory(prefix="rrn-serve-") as tmp:
        async with service.receiving:
            try:
                path, name = await asyncio.wait_for(
                    _receive_upload(request, Path(tmp)), c.upload_timeout
                )
            except asyncio.TimeoutError:
                raise HTTPException(408, f"the upload took over {c.upload_timeout:g} s") from None
        if not service.predict_slots.acquire(blocking=False):
            raise HTTPException(
                503, "another upload is being classified; retry shortly", {"Retry-After": "2"}
            )
        service.metrics.classifying.inc()
        try:
            loop = asyncio.get_running_loop()
            status, record = await loop.run_in_executor(
                service.uploads, _classify, service, path, name
            )
        finally:
            service.metrics.classifying.dec()
            service.predict_slots.release()
    if status == 200:
        service.metrics.predictions.inc()
    if status in (413, 503):
        raise HTTPException(status, record["error"])
    body = {"checkpoint": checkpoint_name(service.model.checkpoint), "videos": [record]}
    return Response(json_text(body, indent=2), status_code=status, media_type="application/json")


async def _receive_upload(request: Request, folder: Path) -> tuple[Path, str]:
    """The multipart field ``video`` into a file of ``folder``; (its path, the client's name)."""
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("video")
    if upload is None or not hasattr(upload, "read"):
        raise HTTPException(422, "send the video as a multipart file field named 'video'")
    name = Path(upload.filename or "video").name
    path = folder / ("upload" + Path(name).suffix.lower()[:8])
    await asyncio.to_thread(_copy, upload.file, path)
    await form.close()
    return path, name


def _copy(source, path: Path) -> None:
    source.seek(0)
    with open(path, "wb") as fh:
        shutil.copyfileobj(source, fh, 1 << 20)


def _classify(service: Service, path: Path, name: str) -> tuple[int, dict]:
    """(HTTP status, the video's record): 200, 422 (cannot be decoded), 413 (too long) or 503
    (the server is shutting down)."""
    from rrn.data.decode import DecodeLimits, VideoDecodeError, VideoTooLongError
    from rrn.predict import PredictionCancelled

    c = service.config
    limits = DecodeLimits(max_frames=c.max_upload_frames, max_seconds=c.max_upload_seconds)
    try:
        pred = service.predictor().predict(path, top=5, limits=limits, cancel=service.stopping)
    except PredictionCancelled:
        return 503, {"video": name, "error": "the server is shutting down; send it again later"}
    except VideoTooLongError as err:
        return 413, {"video": name, "error": f"{name}: {err.reason}"}
    except VideoDecodeError as err:
        return 422, {"video": name, "error": err.reason}
    record = pred.to_json()
    record["video"] = name  # the client's name for it, not the server's temporary path
    return 200, record


def _stream_route(app: FastAPI, service: Service) -> None:
    @app.websocket("/v1/streams/{stream_id}")
    async def stream(websocket: WebSocket, stream_id: str) -> None:
        await websocket.accept()
        refusal = await _refusal(service, stream_id)
        if refusal is not None:
            record = event("error", stream_id, kind="refused", message=refusal[1])
            await websocket.send_text(json_text(record))
            await websocket.close(code=refusal[0], reason=refusal[1][:120])
            return
        session = StreamSession(service, stream_id, lambda r: _send(websocket, r))
        session.close_socket = lambda: websocket.close(code=GOING_AWAY)
        service.sessions[stream_id] = session
        service.metrics.open_streams.inc()
        service.metrics.streams.inc()
        try:
            await session.start()
            await _receive(websocket, session, service.config.idle_timeout)
        finally:
            await session.end("client gone", notify=False)  # frees state and id if still open
            with contextlib.suppress(Exception):
                await websocket.close()


async def _refusal(service: Service, stream_id: str) -> tuple[int, str] | None:
    if not STREAM_ID.fullmatch(stream_id):
        return POLICY_VIOLATION, "a stream id is 1-64 characters of A-Z a-z 0-9 _ . -"
    old = service.sessions.get(stream_id)
    if old is not None and old.ended:  # ending: its id is free within moments
        deadline = asyncio.get_running_loop().time() + REOPEN_WAIT_S
        while stream_id in service.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
    if stream_id in service.sessions:
        return POLICY_VIOLATION, f"stream {stream_id!r} is already open on another connection"
    if len(service.sessions) >= service.config.max_streams:
        return TRY_AGAIN_LATER, (
            f"{service.config.max_streams} streams are open, the server's limit; try again later"
        )
    if service.stopping.is_set():
        return GOING_AWAY, "the server is shutting down"
    return None


async def _send(websocket: WebSocket, record: dict) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_text(json_text(record))


async def _receive(websocket: WebSocket, session: StreamSession, idle: float) -> None:
    """Frames and text until the client ends the stream, goes away, or goes quiet."""
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=idle)
        except asyncio.TimeoutError:
            await session.end(f"no message for {idle:g} s: the stream ended or stalled")
            return
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await session.frame(message["bytes"])
        elif message.get("text") is not None and await session.text(message["text"]):
            await session.end("the client ended the stream")
            return
        if session.ended:
            return


async def end_all(service: Service, reason: str) -> None:
    """Every open stream gets its ``end`` (closing its open segments), then its socket closes."""

    async def finish(session: StreamSession) -> None:
        await session.end(reason)
        with contextlib.suppress(Exception):
            await session.close_socket()

    await asyncio.gather(
        *(finish(s) for s in list(service.sessions.values())), return_exceptions=True
    )

"""The HTTP/WebSocket routes of ``rrn serve`` (FastAPI on uvicorn).

* ``GET /``: the browser page (webcam or a local video file, top-3 over the video, a strip of
  the top class over time);
* ``GET /healthz``: liveness, never authenticated;
* ``GET /metrics``: Prometheus text format;
* ``GET /v1/model``: classes, frame size, sampling interval, state bytes per stream, checkpoint;
* ``POST /v1/predict``: a video file (multipart field ``video``) -> ``rrn predict --json``'s JSON;
* ``WS /v1/streams/{stream_id}``: binary messages are frames (8-byte little-endian float64
  capture time, then JPEG or PNG bytes), the text message ``{"type": "end"}`` ends the stream;
  the server sends the events of :mod:`rrn.online.events` as text JSON, each with ``stream``.

With a token every route but ``/healthz`` and the page itself needs ``Authorization: Bearer``
(WebSocket: that header or ``?token=``). The server never opens a path or URL a client names:
uploads go to a temporary file of its own, deleted after use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from rrn.files import json_text
from rrn.serve.auth import bearer, token_ok
from rrn.serve.service import Service
from rrn.serve.session import StreamSession

logger = logging.getLogger(__name__)

STREAM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CHUNK = 1 << 20
POLICY_VIOLATION, TRY_AGAIN_LATER, GOING_AWAY = 1008, 1013, 1001


def create_app(model, config, events=None) -> FastAPI:
    """The service for ``model`` (from :func:`rrn.load_model`) with ``config`` (a
    :class:`~rrn.config.ServeConfig`; its token is the one required) and ``events`` (a
    :class:`~rrn.config.StreamConfig`: labels, smoothing and segments of the events)."""
    service = Service(model, config, events)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await end_all(service, "the server is shutting down")
        service.close()

    app = FastAPI(title="rrn serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    _http_routes(app, service)
    _stream_route(app, service)
    return app


def _authorized(
    service: Service, authorization: str | None, query_token: str | None = None
) -> bool:
    return token_ok(service.config.token, bearer(authorization) or query_token)


def _require(service: Service, request: Request) -> None:
    if not _authorized(service, request.headers.get("authorization")):
        raise HTTPException(
            401,
            "a valid 'Authorization: Bearer <token>' header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _http_routes(app: FastAPI, service: Service) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("rrn.serve").joinpath("static/index.html").read_text("utf-8")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "open_streams": len(service.sessions)}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        _require(service, request)
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/model")
    async def model_info(request: Request) -> Response:
        _require(service, request)
        return Response(json_text(service.describe()), media_type="application/json")

    @app.post("/v1/predict")
    async def predict(request: Request) -> Response:
        _require(service, request)
        return await _predict(service, request)


async def _predict(service: Service, request: Request) -> Response:
    limit = int(service.config.max_upload_mb * 1_000_000)
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(411, "send the upload with a Content-Length header")
    if not length.isdigit() or int(length) > limit:
        raise HTTPException(
            413, f"the upload is over the limit of {service.config.max_upload_mb:g} MB"
        )
    if not service.predict_slots.acquire(blocking=False):
        raise HTTPException(
            503, "another upload is being classified; retry shortly", headers={"Retry-After": "2"}
        )
    try:
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("video")
        if upload is None or not hasattr(upload, "read"):
            raise HTTPException(422, "send the video as a multipart file field named 'video'")
        name = Path(upload.filename or "video").name
        with tempfile.TemporaryDirectory(prefix="rrn-serve-") as tmp:
            path = Path(tmp) / ("upload" + Path(name).suffix.lower()[:8])
            with open(path, "wb") as fh:
                while chunk := await upload.read(CHUNK):
                    fh.write(chunk)
            record = await asyncio.to_thread(_classify, service, path, name)
        service.metrics.predictions.inc()
        status = 422 if "error" in record else 200
        body = {"checkpoint": str(service.model.checkpoint), "videos": [record]}
        return Response(
            json_text(body, indent=2), status_code=status, media_type="application/json"
        )
    finally:
        service.predict_slots.release()


def _classify(service: Service, path: Path, name: str) -> dict:
    from rrn.predict import FailedVideo

    predictor = service.predictor()
    (pred,) = predictor.predict_all([path], top=5)
    record = pred.to_json()
    record["video"] = name  # the client's name for it, not the server's temporary path
    if isinstance(pred, FailedVideo):
        record["error"] = record["error"].replace(str(path), name)
    return record


def _stream_route(app: FastAPI, service: Service) -> None:
    @app.websocket("/v1/streams/{stream_id}")
    async def stream(websocket: WebSocket, stream_id: str) -> None:
        if not _authorized(
            service, websocket.headers.get("authorization"), websocket.query_params.get("token")
        ):
            await websocket.close(code=POLICY_VIOLATION, reason="a valid token is required")
            return
        await websocket.accept()
        refusal = _refusal(service, stream_id)
        if refusal is not None:
            await websocket.send_text(
                json_text(
                    {"type": "error", "stream": stream_id, "kind": "refused", "message": refusal[1]}
                )
            )
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
            service.sessions.pop(stream_id, None)
            service.metrics.open_streams.dec()
            await session.end("client gone", notify=False)  # frees the state if still open
            with contextlib.suppress(Exception):
                await websocket.close()


def _refusal(service: Service, stream_id: str) -> tuple[int, str] | None:
    if not STREAM_ID.fullmatch(stream_id):
        return POLICY_VIOLATION, "a stream id is 1-64 characters of A-Z a-z 0-9 _ . -"
    if stream_id in service.sessions:
        return POLICY_VIOLATION, f"stream {stream_id!r} is already open on another connection"
    if len(service.sessions) >= service.config.max_streams:
        return TRY_AGAIN_LATER, (
            f"{service.config.max_streams} streams are open, the server's limit; try again later"
        )
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

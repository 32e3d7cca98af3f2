"""Running the service under uvicorn: on SIGTERM or Ctrl-C every open stream gets its ``end``
(open segments closed) before the connections close and the process exits."""

from __future__ import annotations

import logging

import uvicorn

from rrn.serve.app import end_all

logger = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """uvicorn's server, ending the streams first when it shuts down.

    uvicorn re-raises a captured SIGTERM/SIGINT after its shutdown (the process would die of
    the signal before saying anything); here the signal is recorded instead, and ``rrn serve``
    exits with 128 + its number (143 SIGTERM, 130 Ctrl-C), as every rrn command stopped by a
    signal does.
    """

    stopped_by: int | None = None

    def handle_exit(self, sig: int, frame) -> None:
        self.stopped_by = sig
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()

    async def shutdown(self, sockets=None) -> None:
        service = self.config.app.state.service
        service.stopping.set()  # an upload being classified stops at its next piece
        if service.sessions:
            logger.info("ending %d open stream(s)", len(service.sessions))
        await end_all(service, "the server is shutting down")
        await super().shutdown(sockets=sockets)


def max_message_bytes(config) -> int:
    """The largest WebSocket message read at all: twice ``--max-frame-bytes``. A frame between
    the two limits is an ``error`` for its stream, which goes on; a larger message closes the
    connection (1009, message too big) before it is held in memory."""
    return 2 * config.max_frame_bytes


def serve(app, host: str, port: int, *, log_level: str = "warning", on_ready=None) -> int | None:
    """Serve ``app`` on ``host:port`` until SIGTERM/SIGINT (``port`` 0: a free one).

    ``on_ready(host, port)`` is called once the socket listens (the port actually bound).
    Returns the signal that stopped it (None when it stopped otherwise).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",  # uvicorn's recommended implementation ("websockets" is deprecated)
        ws_max_size=max_message_bytes(app.state.service.config),
        lifespan="on",
        timeout_graceful_shutdown=15,
    )
    server = Server(config)
    if on_ready is not None:
        original = server.startup

        async def startup(sockets=None) -> None:
            await original(sockets=sockets)
            for srv in server.servers:
                for sock in srv.sockets:
                    bound = sock.getsockname()
                    on_ready(bound[0], bound[1])
                    return

        server.startup = startup
    server.run()
    return server.stopped_by

"""``rrn serve RUN_OR_CKPT``: many live streams, one batched model step, over HTTP and WebSocket
(see :mod:`rrn.serve`)."""

from __future__ import annotations

import argparse
import os

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, from_flags
from rrn.config import EvalConfig, RunConfig, ServeConfig, StreamConfig

#: What the events say: the same flags as rrn stream's.
EVENT_FIELDS = ("labels", "smooth", "threshold", "min_segment")
#: What runs the model step: the same flags as rrn stream's.
ENGINE_FIELDS = ("engine", "onnx_dir", "threads")
EPILOG = """\
examples:
  rrn serve runs/ucf_split1                         # http://127.0.0.1:8000/ in a browser
  RRN_TOKEN=$(openssl rand -hex 16) rrn serve runs/ucf_split1 --host 0.0.0.0 --port 8000
  curl -H "Authorization: Bearer $RRN_TOKEN" -F video=@clip.mp4 http://HOST:8000/v1/predict
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a trained model over HTTP/WebSocket: many live streams, one batched step",
        description="An HTTP and WebSocket service: clients send frames with their capture "
        "time over a WebSocket per stream and get the events of rrn stream back; every stream's "
        "newest frame is stepped in one batched model call. Also /v1/predict for uploaded "
        "files, /v1/model, /metrics (Prometheus), /healthz and a browser page at /.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help=MODEL_HELP)
    add_dataclass_arguments(p, ServeConfig, "serve", title="service")
    add_dataclass_arguments(p, StreamConfig, "stream", only=EVENT_FIELDS, title="events")
    add_dataclass_arguments(p, StreamConfig, "stream", only=ENGINE_FIELDS, title="model step")
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    add_dataclass_arguments(p, RunConfig, "run", only=("device",), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.errors import UserError

    cfg = from_flags(ServeConfig, args, "serve")
    if cfg.token is None and os.environ.get("RRN_TOKEN"):
        cfg.token = os.environ["RRN_TOKEN"]
    try:
        from rrn.serve.app import create_app
        from rrn.serve.auth import check_bind
        from rrn.serve.server import serve
    except ImportError as err:
        raise UserError(
            f"rrn serve needs the serve extra ({err.name} is missing): pip install 'rrn[serve]'"
        ) from None
    check_bind(cfg.host, cfg.token)
    from rrn.checkpoint import load_model
    from rrn.distributed import DistInfo, resolve_device

    events = from_flags(StreamConfig, args, "stream")
    if events.threads:
        import torch

        torch.set_num_threads(events.threads)
    device = resolve_device(from_flags(RunConfig, args, "run").device, DistInfo())
    model = load_model(
        args.checkpoint, which=from_flags(EvalConfig, args, "eval").which, device=device
    )
    app = create_app(model, cfg, events)
    auth = "a bearer token" if cfg.token else "no token (loopback only)"
    engine = app.state.service.recognizer.engine.name

    def ready(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        print(
            f"rrn serve: {model.checkpoint} ({len(model.classes)} classes) on "
            f"http://{shown}:{port}/ with {auth}, model step in {engine}; Ctrl-C or SIGTERM "
            "ends every stream and stops",
            flush=True,
        )

    signum = serve(app, cfg.host, cfg.port, on_ready=ready)
    print("rrn serve: stopped", flush=True)
    return 128 + signum if signum else 0

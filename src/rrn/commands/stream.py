"""``rrn stream RUN_OR_CKPT SOURCE [SOURCE ...]``: online recognition of files, cameras or network
streams, all sources stepped in one batched call (see :mod:`rrn.online`)."""

from __future__ import annotations

import argparse
import sys

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, flag_overrides, from_flags
from rrn.config import DataConfig, EvalConfig, RunConfig, StreamConfig

EPILOG = """\
examples:
  rrn stream runs/ucf_split1 video.mp4 --out annotated.mp4 --json events.jsonl
  rrn stream runs/ucf_split1 /dev/video0 --realtime            # a V4L2 camera (camera:0 too)
  rrn stream runs/ucf_split1 rtsp://camera.local/stream --realtime --json events.jsonl
  rrn stream runs/ucf_split1 video.mp4 --realtime              # play a file at its frame rate
  rrn stream runs/ucf_split1 cam1.mp4 rtsp://cam2/s --realtime --out outdir   # several at once
  rrn stream runs/ucf_split1 video.mp4 --json events.jsonl --threshold 0.5 --min-segment 1
"""
SEGMENTS_SHOWN = 20
STOPPING = (
    "\nrrn stream: {signal} received; stopping after the current frame (send it again to "
    "stop at once)"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="classify video files, cameras or network streams online, frame by frame",
        description="Online action recognition: each sampled frame goes through the model's "
        "step with its state carried (the prediction of the chunk ending at that frame); "
        "a live line, an annotated video and an events file show the result. Several sources "
        "are stepped together, one batched model call per round; with --out DIR each gets "
        "its own annotated video and events file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help=MODEL_HELP)
    p.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="+",
        help="video file, /dev/videoN or camera:N, or a stream URL (rtsp://, "
        "http(s)://, udp://, ...); several are recognised at once",
    )
    add_dataclass_arguments(p, StreamConfig, "stream", title="stream")
    add_dataclass_arguments(
        p,
        DataConfig,
        "data",
        only=("sample_every", "fps"),
        title="sampling",
        defaults_from="the checkpoint's",
    )
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    add_dataclass_arguments(p, RunConfig, "run", only=("device",), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from rrn.checkpoint import load_model
    from rrn.distributed import DistInfo, resolve_device
    from rrn.online import sampling_for, stream_sources
    from rrn.runtime.signals import StopRequest

    cfg = from_flags(StreamConfig, args, "stream")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(from_flags(RunConfig, args, "run").device, DistInfo())
    model = load_model(
        args.checkpoint, which=from_flags(EvalConfig, args, "eval").which, device=device
    )
    given = flag_overrides(args, ("data",)).get("data", {})
    data = from_flags(DataConfig, args, "data")
    sampling = sampling_for(
        model,
        data.sample_every if "sample_every" in given else None,
        data.fps if "fps" in given else None,
    )
    live = LiveLine(model.classes) if sys.stderr.isatty() and len(args.sources) == 1 else None
    with StopRequest(STOPPING) as stop:
        summaries = stream_sources(
            model,
            args.sources,
            cfg,
            sampling=sampling,
            on_prediction=live.update if live else None,
            stop=stop,
        )
    if live:
        live.clear()
    for summary in summaries:
        report(summary, cfg, len(summaries) > 1)
    return exit_code(summaries, stop)


def exit_code(summaries, stop) -> int:
    """0 when every source ended normally; 130/143 when stopped by a signal; else 1."""
    for summary in summaries:
        if summary.status == "end" and summary.frames == 0:
            print(f"rrn stream: error: {summary.source} gave no frame", file=sys.stderr)
    if any(s.status == "interrupted" for s in summaries):
        # 130 for Ctrl-C (SIGINT, or a KeyboardInterrupt), 143 SIGTERM
        return 128 + (stop.signum or 2)
    ok = all(s.status == "end" and s.frames > 0 for s in summaries)
    return 0 if ok else 1


class LiveLine:
    """One refreshing terminal line: time, top-1 class and probability, latency, frames/s."""

    def __init__(self, classes: list[str]):
        self.classes = classes
        self.width = 0

    def update(self, pred, summary) -> None:
        ((name, prob),) = pred.top(self.classes, 1)
        dropped = f" | dropped {summary.dropped}" if summary.dropped else ""
        line = (
            f"{pred.time:8.2f} s  {name} {prob:.2f} | step {pred.latency_ms:.1f} ms | "
            f"{summary.rate():.1f} frames/s{dropped}"
        )
        self.width = max(self.width, len(line))
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r" + " " * self.width + "\r")
        sys.stderr.flush()


def report(summary, cfg: StreamConfig, many: bool = False) -> None:
    """The summary: where the stream stopped, counts, speed, segments, output files."""
    s = summary.to_json()
    how = {"end": "ended", "interrupted": "was stopped", "error": "failed"}[summary.status]
    note = f" ({summary.note})" if summary.note else ""
    print(
        f"{summary.source} {how} {summary.where()}{note}: {s['frames']} frames read, "
        f"{s['sampled']} sampled, {s['classified']} classified, {s['dropped']} dropped"
    )
    if summary.classified:
        latency = (
            f"step latency {s['latency_ms_p50']:.1f} ms (p50), {s['latency_ms_p95']:.1f} ms (p95)"
        )
        if summary.live:  # a live source cannot run faster than it sends: say the cost per frame
            per_frame = summary.wall * 1000 / summary.classified
            print(f"{latency}; {per_frame:.1f} ms of processing time per classified frame")
        else:
            speed = summary.end_time / summary.wall if summary.wall > 0 else float("inf")
            print(
                f"{latency}; {s['duration']:.2f} s of video in {s['wall']:.2f} s "
                f"({speed:.1f}x real time)"
            )
    for seg in summary.segments[:SEGMENTS_SHOWN]:
        print(
            f"  {seg['start']:8.2f} - {seg['end']:8.2f} s  {seg['class']} ({seg['mean_prob']:.2f})"
        )
    if len(summary.segments) > SEGMENTS_SHOWN:
        print(f"  ... {len(summary.segments) - SEGMENTS_SHOWN} more segments")
    outputs = (
        ("annotated video", f"{cfg.out}/{summary.stream}.mp4" if many and cfg.out else cfg.out),
        ("events", f"{cfg.out}/{summary.stream}.events.jsonl" if many and cfg.out else None),
        ("events", None if many else cfg.json),
    )
    for label, path in outputs:
        if path:
            print(f"{label}: {path}")
    if summary.status == "error":
        print(
            f"rrn stream: error: the stream stopped {summary.where()}: {summary.error}; the "
            "outputs hold everything up to there",
            file=sys.stderr,
        )

"""``rrn predict RUN_OR_CKPT VIDEO [VIDEO ...]``: top-5 classes per video (see :mod:`rrn.predict`).

A video that cannot be decoded (missing, corrupt, truncated) gets an error line on stderr and an
``{"video", "error"}`` record in ``--json``; the others are still classified, and the exit code
is 1 when any video failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, flag_overrides, from_flags
from rrn.config import EvalConfig, RunConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify videos with a trained checkpoint (top-5, optional timeline plot)",
        description="Classify whole videos: frames are streamed once through the network "
        "(forward_video) and the video's probabilities are the mean over its chunks. A video that "
        "cannot be decoded is reported (stderr; an error record with --json) and the others are "
        "still classified; the exit code is then 1.",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help=MODEL_HELP)
    p.add_argument(
        "videos",
        metavar="VIDEO",
        nargs="+",
        help="video files, or frame folders (img_00001.jpg ...) for a model trained on "
        "--dataset rawframes (timeline in frame numbers: a folder has no timestamps)",
    )
    p.add_argument("--top", type=int, default=5, help="classes to list per video (default: 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document for machines")
    p.add_argument(
        "--timeline",
        metavar="PNG",
        help="plot per-frame class probabilities over time; with several videos "
        "each gets PNG's stem + '-<video stem>.png'",
    )
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    add_dataclass_arguments(p, RunConfig, "run", only=("device",), title="run")
    p.set_defaults(func=run)


def timeline_path(base: str, video: str, many: bool, taken: set[Path] | None = None) -> Path:
    """``base``, or with several videos ``base-<video stem>.png``; a name already in ``taken``
    (two videos with one stem) gets ``-2``, ``-3``... instead of overwriting the first plot."""
    out = Path(base)
    if not many:
        return out
    stem, suffix = f"{out.stem}-{Path(video).stem}", out.suffix or ".png"
    path, n = out.with_name(stem + suffix), 1
    while taken is not None and path in taken:
        n += 1
        path = out.with_name(f"{stem}-{n}{suffix}")
    if taken is not None:
        taken.add(path)
    return path


def run(args: argparse.Namespace) -> int:
    from rrn.distributed import DistInfo, resolve_device
    from rrn.errors import UserError
    from rrn.files import json_text
    from rrn.predict import FailedVideo, Predictor

    if args.top < 1:
        raise UserError(f"--top must be >= 1, got {args.top}")
    device = resolve_device(
        resolve_config([("flags", flag_overrides(args))]).run.device, DistInfo()
    )
    predictor = Predictor(
        args.checkpoint, device=device, which=from_flags(EvalConfig, args, "eval").which
    )
    results, failed, plots = [], 0, set()
    for video, pred in zip(args.videos, predictor.predict_all(args.videos, top=args.top)):
        if isinstance(pred, FailedVideo):  # reported, and the other videos still get their answer
            failed += 1
            print(f"rrn predict: error: cannot decode {video}: {pred.error}", file=sys.stderr)
            results.append(pred.to_json())
            continue
        record = pred.to_json()
        if args.timeline:
            out = timeline_path(args.timeline, video, len(args.videos) > 1, plots)
            predictor.plot_timeline(pred, out, top=args.top)
            record["timeline"] = str(out)
        results.append(record)
        if not args.json:
            print_prediction(record, predictor.context)
    if args.json:
        print(json_text({"checkpoint": str(predictor.path), "videos": results}, indent=2))
    if failed:
        print(
            f"rrn predict: {failed} of {len(args.videos)} videos could not be classified",
            file=sys.stderr,
        )
    return 1 if failed else 0


def print_prediction(record: dict, context: int) -> None:
    print(
        f"{record['video']}  ({record['num_frames']} frames, {record['chunks']} chunks of "
        f"{context})"
    )
    for rank, item in enumerate(record["top"], 1):
        print(f"  {rank}. {item['class']:<30} {item['prob']:.3f}")
    if "timeline" in record:
        print(f"  timeline: {record['timeline']}")

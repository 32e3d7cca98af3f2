"""``rrn eval RUN_OR_CKPT``: video-level accuracy on a test split, or for a detection model
(trained on thumos14/activitynet) per-frame and segment metrics of the model run online; ``rrn
eval SCORES`` scores a folder of per-frame scores (see :mod:`rrn.evaluation`)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import MODEL_HELP, add_dataclass_arguments, flag_overrides, from_flags
from rrn.config import (
    CACHE_FIELDS,
    DATASET_FIELDS,
    DataConfig,
    EvalConfig,
    RunConfig,
    StreamConfig,
)

EPILOG = """\
examples:
  rrn eval runs/ucf_split1                      # best.pt if --val-fraction chose one, else last.pt
  rrn eval runs/ucf_split{split} --split 1 2 3         # one run per split + eval_mean.json
  rrn eval runs/ucf_split1/last.pt --data-root /data/UCF-101 --split-dir /data/ucfTrainTestlist
  rrn eval runs/k400 --views 3crop --flip                 # 3 crops x 2 flips per chunk, averaged
  rrn eval runs/th14                   # a detection run: online over each test video, per frame
  rrn eval runs/th14/eval_split1/scores --threshold 0.5   # score a folder of per-frame scores
"""
#: The data settings an evaluation may change; sampling and frame size stay the checkpoint's.
DATA_FIELDS = tuple(f for f in DATASET_FIELDS if f != "split") + ("eval_stride", *CACHE_FIELDS)
RUN_FIELDS = ("device", "amp", "workers", "pin_memory", "progress")
#: How a detection model's per-frame scores become segments: rrn stream's settings.
SEGMENT_FIELDS = ("smooth", "threshold", "min_segment")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="video-level accuracy of a checkpoint on its test split (JSON, CSV, confusion PNG)",
        description="Evaluate a trained RRN: the prediction for a video is the mean of its "
        "chunk probabilities (paper §3.3). Data settings default to the checkpoint's.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run",
        metavar="RUN_OR_CKPT",
        help=f"{MODEL_HELP}; may contain {{split}} (see --split); or a folder of per-frame "
        "scores (scores.json + <video>.npz, docs/detection.md) to score",
    )
    p.add_argument(
        "--split",
        "--splits",
        dest="splits",
        type=int,
        nargs="+",
        metavar="K",
        help="which official split(s) to test on, as for rrn train (default: the "
        "checkpoint's); several need {split} in the path and also write their mean",
    )
    add_dataclass_arguments(p, EvalConfig, "eval", title="evaluation")
    add_dataclass_arguments(
        p, DataConfig, "data", only=DATA_FIELDS, title="data", defaults_from="the checkpoint's"
    )
    add_dataclass_arguments(p, RunConfig, "run", only=RUN_FIELDS, title="run")
    add_dataclass_arguments(
        p,
        StreamConfig,
        "segments",
        only=SEGMENT_FIELDS,
        title="detection segments (as rrn stream announces them; thumos14/activitynet)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.detection.metrics import is_detection_result
    from rrn.evaluation import evaluate_run
    from rrn.evaluation.detection_scoring import SegmentSettings

    settings = from_flags(EvalConfig, args, "eval")
    tracker = from_flags(StreamConfig, args, "segments")
    out = evaluate_run(
        args.run,
        splits=args.splits,
        settings=settings,
        overrides=flag_overrides(args, ("data", "run")),
        segments=SegmentSettings(tracker.smooth, tracker.threshold, tracker.min_segment),
    )
    for r in out["results"]:
        if is_detection_result(r):
            print(detection_line(r))
            continue
        skipped = f", {len(r['skipped'])} skipped" if r["skipped"] else ""
        print(
            f"split {r['split']}: video accuracy {r['video_top1']:.4f} (error "
            f"{r['video_error']:.4f}, "
            f"top-5 {r['video_top5']:.4f}, clip {r['clip_top1']:.4f}, mean class "
            f"{r['mean_class_accuracy']:.4f}) on {r['num_videos']} videos / {r['num_chunks']} "
            f"chunks{skipped} [{r['protocol']}] -> {r['files']['json']}"
        )
    if out["mean"] is not None:
        m = out["mean"]["mean_over_splits"]
        print(
            f"mean over splits {out['mean']['splits']}: video accuracy {m['video_top1']:.4f} "
            f"(error {m['video_error']:.4f}) -> {out['mean_file']}"
        )
    return 0


def detection_line(r: dict) -> str:
    """One line per detection result: the headline metrics and where the files are."""

    def num(value, fmt=".4f") -> str:
        return "n/a" if value is None else format(value, fmt)

    delay = r["delay_s_median"]
    return (
        f"detection: per-frame mAP {num(r['frame_map'])} (mcAP {num(r['frame_mcap'])}), "
        f"segment mAP@0.5 {num(r['segment_map'].get('0.5'))}, median delay "
        f"{'n/a' if delay is None else f'{delay:.2f} s'}, missed {num(r['missed'], '.1%')} on "
        f"{r['num_videos']} videos / {r['num_frames']} frames -> {r['files']['json']}"
    )

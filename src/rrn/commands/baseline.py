"""``rrn baseline``: linear (avgpool) or GRU classifiers on stored features (Table 1)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import add_dataclass_arguments, from_flags
from rrn.config import BaselineConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline",
        help="train + evaluate a feature baseline (avgpool linear or 128-unit GRU)",
        description="Train a classifier on features from `rrn features` and evaluate it on the "
        "test videos; writes the same JSON / CSV / confusion PNG as `rrn eval`. On features of "
        "untrimmed videos (thumos14, activitynet) the GRU scores every frame online (trained on "
        "windows, MiniROAD's recipe) and is scored like `rrn eval` of a detection run.",
    )
    add_dataclass_arguments(p, BaselineConfig, "baseline", title="baseline")
    p.add_argument("--json", action="store_true", help="print the result JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.baselines import run_baseline
    from rrn.commands.evaluate import detection_line
    from rrn.detection.metrics import is_detection_result
    from rrn.files import json_text

    cfg = from_flags(BaselineConfig, args, "baseline")
    result = run_baseline(cfg)
    detection = is_detection_result(result)
    if args.json:
        print(json_text({k: v for k, v in result.items() if k != "per_class"}, indent=2))
    elif detection:
        print(
            f"{cfg.model} stage {cfg.stage}{' znorm' if cfg.znorm else ''}: "
            + detection_line(result)
        )
    else:
        print(
            f"{cfg.model} stage {cfg.stage}{' znorm' if cfg.znorm else ''}: video error "
            f"{result['video_error']:.3f} (top-5 {result['video_top5']:.3f}) on "
            f"{result['num_videos']} videos -> {result['files']['json']}"
        )
    return 0

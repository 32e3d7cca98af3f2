"""``rrn baseline``: linear (avgpool) or GRU classifiers on stored features (Table 1)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline",
        help="train + evaluate a feature baseline (avgpool linear or 128-unit GRU)",
        description="Train a classifier on features from `rrn features` and evaluate it on the "
        "test videos; writes the same JSON / CSV / confusion PNG as `rrn eval`.",
    )
    p.add_argument("--features", required=True, help="folder written by `rrn features`")
    p.add_argument("--model", default="avgpool", choices=("avgpool", "gru"))
    p.add_argument("--stage", type=int, default=4, choices=(1, 2, 3, 4))
    p.add_argument("--znorm", action="store_true",
                   help="z-normalise features with statistics of the training split")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128, help="GRU units (paper: 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="where to write the results (default: --features)")
    p.add_argument("--json", action="store_true", help="print the result JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.baselines import run_baseline

    result = run_baseline(
        args.features, model=args.model, stage=args.stage, znorm=args.znorm, epochs=args.epochs,
        lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
        hidden=args.hidden, seed=args.seed, out_dir=args.out,
    )
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "per_class"}, indent=2))
    else:
        print(f"{args.model} stage {args.stage}{' znorm' if args.znorm else ''}: video error "
              f"{result['video_error']:.3f} (top-5 {result['video_top5']:.3f}) on "
              f"{result['num_videos']} videos -> {result['files']['json']}")
    return 0

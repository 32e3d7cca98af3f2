"""``rrn synth OUT``: write the synthetic temporal-order dataset (see :mod:`rrn.data.synth`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a synthetic action dataset (UCF-101 layout) whose classes differ only in temporal order",
        description="Write a deterministic synthetic action dataset as .avi files in the UCF-101 "
        "layout (classInd.txt, trainlist01.txt, testlist01.txt). Class k = objects moving along "
        "direction 360*k/K degrees: no single frame tells the class. Train on it with horizontal "
        "flips off and sample_every <= 3.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=4, help="motion directions K (default: 4)")
    p.add_argument("--videos-per-class", type=int, default=16, help="default: 16")
    p.add_argument("--frames", type=int, default=24, help="frames per video (default: 24)")
    p.add_argument("--size", type=int, default=64, help="frame side in px (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.data.synth import make_synthetic_dataset

    out = make_synthetic_dataset(args.out, classes=args.classes, videos_per_class=args.videos_per_class,
                                 frames=args.frames, size=args.size, seed=args.seed)
    n = sum(1 for _ in out.glob("*/*.avi"))
    print(f"wrote {n} videos of {args.classes} classes to {out} "
          f"(train: {out / 'trainlist01.txt'}, test: {out / 'testlist01.txt'})")
    return 0

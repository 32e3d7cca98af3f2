"""``rrn check-data``: report every problem of a dataset before training (see :mod:`rrn.data.check`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.data.splits import add_dataset_arguments

    p = sub.add_parser(
        "check-data",
        help="scan a dataset and report every problem (missing, empty, corrupt videos, ...)",
        description="Parse the split files and decode every listed video; report all problems "
        "at once. Exit code 0 when the dataset is clean, 1 otherwise.",
    )
    add_dataset_arguments(p)
    p.add_argument("--quick", action="store_true",
                   help="only open each video and decode its first frame (misses truncation)")
    p.add_argument("--decoder", default="auto", choices=("auto", "pyav", "torchcodec"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from rrn.data.check import check_dataset
    from rrn.data.splits import split_problems

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing videos are reported below, one per line
        split, line_problems = split_problems(args.dataset, args.data_root, args.split_dir, args.split,
                                              train_list=args.train_list, test_list=args.test_list)
    for message in line_problems:  # every malformed line of every split file, then the videos
        print(f"problem: {message}")
    if split is None:
        return 1
    problems = check_dataset(split, decode=not args.quick, decoder=args.decoder,
                             progress=not args.no_progress)
    n = len(split.train) + len(split.test) + len(split.missing)
    print(f"{len(split.classes)} classes, {len(split.train)} train + {len(split.test)} test videos "
          f"present, {len(split.missing)} missing")
    for p in problems:
        print(f"problem: {p}")
    total = len(problems) + len(line_problems)
    print(f"{total} problem(s) in {n} listed videos" if total else f"OK: {n} videos, no problems")
    return 1 if total else 0

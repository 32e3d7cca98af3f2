"""``rrn check-data``: report every problem of a dataset before training (see
:mod:`rrn.data.check`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator

from rrn.commands.flags import add_dataclass_arguments, flag_overrides
from rrn.config import DATASET_FIELDS, DataConfig, RunConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-data",
        help="scan a dataset and report every problem (missing, empty, corrupt videos, ...)",
        description="Parse the split files and decode every listed video; report all problems "
        "at once. Exit code 0 when the dataset is clean, 1 otherwise. With --missing skip (as "
        "for a Kinetics download, where some videos are always gone) missing videos are counted "
        "as skipped, as training would skip them, not as problems.",
    )
    add_dataclass_arguments(p, DataConfig, "data", only=DATASET_FIELDS, title="data")
    add_dataclass_arguments(p, RunConfig, "run", only=("progress",), title="run")
    p.add_argument(
        "--quick",
        action="store_true",
        help="decode only each video's first frame and read the rest without decoding: "
        "finds truncated files in milliseconds, not damaged data inside a file",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.data.check import check_dataset
    from rrn.data.splits import split_problems

    cfg = resolve_config([("flags", flag_overrides(args))])
    with _silenced("rrn.data.splits"):  # missing videos are reported below, one per line
        split, line_problems = split_problems(**cfg.data.split_kwargs())
    for message in line_problems:  # every malformed line of every split file, then the videos
        print(f"problem: {message}")
    if split is None:
        return 1
    skip = cfg.data.missing == "skip"
    missing = split.missing
    if skip:  # training skips them: counted, not problems
        split.missing = []
    problems = check_dataset(
        split, decode=not args.quick, decoder=cfg.data.decoder, progress=cfg.run.progress
    )
    n = len(split.train) + len(split.test) + len(missing)
    how = " (skipped, as --missing skip trains without them)" if skip and missing else ""
    print(
        f"{len(split.classes)} classes, {len(split.train)} train + {len(split.test)} test videos "
        f"present, {len(missing)} missing{how}"
    )
    if split.annotations is not None:  # untrimmed videos: how their frames are labelled
        from rrn.data.check import frame_summary

        for line in frame_summary(split):
            print(line)
    for p in problems:
        print(f"problem: {p}")
    total = len(problems) + len(line_problems)
    print(f"{total} problem(s) in {n} listed videos" if total else f"OK: {n} videos, no problems")
    return 1 if total else 0


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    """Drop the warnings of logger ``name`` inside the block (the command says it better)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

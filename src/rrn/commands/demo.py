"""``rrn demo``: the main job on the embedded default (synthetic data, CPU, a few minutes)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import add_dataclass_arguments, flag_overrides
from rrn.config import RunConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="show the idea on a synthetic dataset: per-frame ResNet vs RRNs with early/late skips",
        description="Generate a synthetic dataset whose classes differ only in temporal order, "
        "train a per-frame ResNet-18 and two RRNs (identity skip at block1 / block4) on the CPU, "
        "evaluate them and write report.md. About 4 minutes on 2 cores.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--quick", action="store_true", help="a tiny setting (seconds; for tests)")
    add_dataclass_arguments(p, RunConfig, "run", only=("seed", "progress"), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.demo import run_demo

    cfg = resolve_config([("flags", flag_overrides(args))]).run
    run_demo(args.out, quick=args.quick, seed=cfg.seed, progress=cfg.progress)
    return 0

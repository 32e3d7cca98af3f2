"""``rrn experiment GRID.yaml``: run a grid of the paper's experiments, resumably."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrn.commands.flags import add_dataclass_arguments, flag_overrides
from rrn.config import RunConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="run an experiment grid (the paper's tables), resuming finished cells",
        description="Run every cell of a grid file on the requested splits, skipping cells whose "
        "results exist and resuming interrupted training, then write results.md / results.csv / "
        "results.png with the paper's published error beside ours. Grids for the paper's tables "
        "ship in configs/paper/, online action detection grids (thumos14, its synthetic "
        "miniature) in configs/detection/.",
        epilog="example (scaled down for a CPU): rrn experiment "
        "configs/paper/table2_positions.yaml "
        "--set data_root=runs/demo/data --set dataset=ucf101 --set arch=resnet18 "
        "--set frame_size=64 --set epochs=1 --set weights=none",
    )
    p.add_argument("grid", help="grid YAML file (see configs/paper/)")
    p.add_argument("--out", help="output folder (default: runs/<grid name>)")
    p.add_argument(
        "--split",
        "--splits",
        dest="splits",
        type=int,
        nargs="+",
        choices=(1, 2, 3),
        help="splits to run (default: the grid's)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training key of every cell (repeatable), or a feature "
        "setting of the baselines as features.KEY=VALUE",
    )
    p.add_argument("--only", nargs="+", default=[], metavar="CELL", help="run only these cells")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every cell's configuration and list the plan, run nothing",
    )
    add_dataclass_arguments(p, RunConfig, "run", only=("progress",), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.experiment import load_grid, run_grid

    grid = load_grid(args.grid)
    out = Path(args.out or Path("runs") / grid.name)
    progress = resolve_config([("flags", flag_overrides(args))]).run.progress
    rows = run_grid(
        grid,
        out,
        splits=args.splits,
        sets=args.sets,
        only=args.only,
        progress=progress,
        dry_run=args.dry_run,
    )
    from rrn.detection.metrics import is_detection_result
    from rrn.distributed import dist_info_from_env

    if not dist_info_from_env().is_main:
        return 0  # under torchrun rank 0 reports
    width = max(len(r["cell"]) for r in rows)
    for r in rows:
        err = r.get("video_error")
        shown = "" if err is None else f"video error {err:.3f}"
        if is_detection_result(r):
            shown = detection_summary(r)
        paper = "" if r["paper_error"] is None else f" (paper {r['paper_error']:.3f})"
        print(f"{r['cell']:<{width}}  split {r['split']}  {r['status']:<7}  {shown}{paper}")
    if not args.dry_run:
        print(f"results: {out / 'results.md'}")
    return 0


def detection_summary(row: dict) -> str:
    """A detection cell's headline numbers."""

    def num(value, fmt=".3f") -> str:
        return "n/a" if value is None else format(value, fmt)

    return (
        f"per-frame mAP {num(row.get('frame_map'))}, segment mAP@0.5 "
        f"{num(row.get('segment_map_05'))}, median delay {num(row.get('delay_s_median'), '.2f')} s"
    )

"""``rrn train``: train a Recurrent Residual Network (see :func:`rrn.engine.fit`).

Scale out with ``torchrun --nproc_per_node=N -m rrn train ...`` (DDP; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import argparse
import sys

from rrn.config import (
    RunConfig,
    TrainConfig,
    add_config_arguments,
    describe_changes,
    flag_overrides,
    load_yaml,
    make_suggesting,
    resolve_config,
)

EXAMPLES = """\
examples:
  rrn train --data-root data/UCF-101 --split-dir data/ucfTrainTestlist --split 1 \\
            --arch resnet50 --skip block4 --out runs/ucf_split1
  rrn train --config exp.yaml --lr 3e-4               # YAML, then flags override it
  rrn train --out runs/ucf_split1 --resume            # continue an interrupted run
  torchrun --nproc_per_node 4 -m rrn train --config exp.yaml   # DistributedDataParallel

--update-every: a fraction (0.01 = 1% of the training chunks, the paper's setting) or an
integer number of chunks per optimiser step; --batch-size chunks go through the network at
once and gradients accumulate until the step.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an RRN on a video dataset (YAML config + flags; torchrun for DDP)",
        description="Train a Recurrent Residual Network. Settings come from the defaults, then "
        "--config YAML, then the flags below. The run directory (--out) receives config.yaml, "
        "last.pt/best.pt, log.jsonl and curves.png.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    make_suggesting(p)
    p.add_argument("--config", metavar="YAML", help="YAML file of settings (nested by section or flat)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> tuple[TrainConfig, list[str]]:
    """The run's config from defaults (or the resumed checkpoint's), YAML and flags.

    Returns:
        ``(config, notes)``; notes list settings that changed against a resumed run.
    """
    from rrn.checkpoint import LAST, load_checkpoint
    from rrn.cli import UserError

    layers = []
    if args.config:
        layers.append((args.config, load_yaml(args.config)))
    layers.append(("flags", flag_overrides(args)))
    cfg = resolve_config(layers)
    if not cfg.run.resume:
        return cfg, []
    last = f"{cfg.run.out}/{LAST}"
    try:
        saved = load_checkpoint(last)["config"]
    except ValueError as err:
        raise UserError(f"--resume: {err}; start the run without --resume") from None
    saved["run"] = {k: v for k, v in saved["run"].items() if k not in ("resume", "fault")}
    before = resolve_config([(last, saved)])
    cfg = resolve_config([(last, saved), *layers])
    return cfg, describe_changes(before, cfg)


def run(args: argparse.Namespace) -> int:
    from rrn.cli import UserError
    from rrn.engine import NonFiniteLossError, SimulatedCrash, fit

    cfg, changes = resolve(args)
    for change in changes:
        if not change.startswith(("run.resume", "run.progress")):
            print(f"rrn train: --resume with a changed setting: {change}", file=sys.stderr)
    try:
        fit(cfg)
    except OSError as err:  # unwritable --out, an existing run, a missing last.pt
        raise UserError(str(err)) from None
    except NonFiniteLossError as err:
        print(f"rrn train: error: {err}", file=sys.stderr)
        return 1
    except SimulatedCrash as err:
        print(f"rrn train: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"rrn train: interrupted; continue with rrn train --out {cfg.run.out} --resume",
              file=sys.stderr)
        return 130
    return 0


__all__ = ["register", "run", "resolve", "RunConfig"]

"""``rrn train``: train a Recurrent Residual Network (see :func:`rrn.train.fit`).

Scale out with ``torchrun --nproc_per_node=N -m rrn train ...`` (DDP; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import argparse
import sys

from rrn.commands.flags import add_config_arguments, flag_overrides
from rrn.config import load_yaml

EXAMPLES = """\
examples:
  rrn train --data-root data/UCF-101 --split-dir data/ucfTrainTestlist --split 1 \\
            --arch resnet50 --skip block4 --out runs/ucf_split1
  rrn train --config exp.yaml --lr 3e-4               # YAML, then flags override it
  rrn train --out runs/ucf_split1 --resume            # continue an interrupted run
  torchrun --nproc_per_node 4 -m rrn train --config exp.yaml   # DistributedDataParallel

One optimiser step per --update-fraction of the training chunks (0.01 = 1%, the paper's
setting) or per --update-chunks N chunks; --batch-size chunks go through the network at once
and gradients accumulate until the step.
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
    p.add_argument(
        "--config", metavar="YAML", help="YAML file of settings (nested by section or flat)"
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.train import NonFiniteLossError, TrainingStopped, fit, resolve_train_config

    layers = [(args.config, load_yaml(args.config))] if args.config else []
    cfg, changes = resolve_train_config([*layers, ("flags", flag_overrides(args))])
    for change in changes:
        print(f"rrn train: --resume with a changed setting: {change}", file=sys.stderr)
    try:
        fit(cfg)
    except NonFiniteLossError as err:
        print(f"rrn train: error: {err}", file=sys.stderr)
        return 1
    except TrainingStopped as err:  # SIGTERM / SIGINT / SIGUSR1: last.pt holds the step reached
        print(
            f"rrn train: {err}; continue with rrn train --out {cfg.run.out} --resume",
            file=sys.stderr,
        )
        return err.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        print(
            f"rrn train: interrupted; continue with rrn train --out {cfg.run.out} --resume",
            file=sys.stderr,
        )
        return 130
    return 0

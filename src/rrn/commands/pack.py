"""``rrn pack RUN_OR_CKPT OUT``: a run's model as a package (model.safetensors, config.json and
its model card, README.md) that every command and ``rrn.load_model`` take (see
:mod:`rrn.package`)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import add_dataclass_arguments, from_flags
from rrn.config import EvalConfig

EPILOG = """\
examples:
  rrn pack runs/ucf_split1 packages/ucf_split1   # best.pt if --val-fraction chose it, else last.pt
  rrn predict packages/ucf_split1 video.mp4       # the package, as a run or a checkpoint
  rrn pack runs/k400 packages/k400 --license cc-by-4.0 --results results/split1/eval_split1.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.package.settings import PackConfig

    p = sub.add_parser(
        "pack",
        help="write a run's model as a package: model.safetensors, config.json and its model "
        "card (README.md with the evaluations and their protocol)",
        description="Package a trained model: its weights as safetensors (nothing executable), "
        "config.json (model, classes, input spec, training settings without local paths, which "
        "checkpoint and how it was chosen) and a model card in the Hugging Face Hub's "
        "convention, whose model-index holds the run's evaluations of this checkpoint with "
        "their protocol. Every command that takes RUN_OR_CKPT takes the package folder.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN_OR_CKPT", help="run directory or checkpoint file")
    p.add_argument("out", metavar="OUT", help="the package folder (created; empty or a package)")
    add_dataclass_arguments(p, PackConfig, "pack", title="package")
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.package.pack import pack_run
    from rrn.package.settings import PackConfig

    cfg = from_flags(PackConfig, args, "pack")
    packed = pack_run(
        args.run,
        args.out,
        which=from_flags(EvalConfig, args, "eval").which,
        name=cfg.model_name,
        license=cfg.license,
        results=cfg.results,
    )
    report(packed)
    return 0


def report(packed, where: str | None = None, verb: str = "packed") -> None:
    """What was packed (or pushed), the files (or ``where`` they went) and which evaluations the
    card of a packed checkpoint holds."""
    model, ckpt = packed.config["model"], packed.config["checkpoint"]
    print(
        f"{verb} {packed.checkpoint} ({model['arch']}, skips "
        f"{', '.join(model['skip_blocks']) or 'none'}, {model['num_classes']} classes; chosen "
        f"by {ckpt['chosen_by']}, step {ckpt['global_step']}) -> {where or packed.folder}"
    )
    if where is None:  # what was written
        for path in packed.files:
            size = path.stat().st_size
            print(f"  {path} ({size / 1e6:.1f} MB)" if size >= 1e5 else f"  {path} ({size} bytes)")
    if packed.checkpoint.is_dir():  # a package folder pushed as it is: its card is its own
        return
    said = ", ".join(p.name for p in packed.reported) or "none"
    print(f"model card: evaluations reported: {said}")
    for why in packed.left_out:
        print(f"  not reported: {why}")

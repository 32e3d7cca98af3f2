"""``rrn push RUN_OR_PACKAGE org/name [--private]``: pack a run's model (``rrn pack``), or take a
package folder as it is, and upload it to the Hugging Face Hub in one commit (see
:mod:`rrn.package.pack`)."""

from __future__ import annotations

import argparse

from rrn.commands.flags import add_dataclass_arguments, from_flags
from rrn.config import EvalConfig

EPILOG = """\
examples:
  hf auth login                                   # once; or export HF_TOKEN (never a flag)
  rrn push runs/ucf_split1 my-lab/rrn-ucf101-split1 --private --license mit
  rrn predict hf://my-lab/rrn-ucf101-split1 video.mp4
"""


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.package.settings import PackConfig

    p = sub.add_parser(
        "push",
        help="pack a run's model and upload it to the Hugging Face Hub in one commit",
        description="rrn pack into a temporary folder (or a package folder as it is, once it "
        "loads), then one commit of model.safetensors, config.json and README.md to the model "
        "repository (created when missing). The token "
        "comes from huggingface_hub's usual places: HF_TOKEN, or the login cache of "
        "`hf auth login`. Needs the hub extra: pip install 'rrn[hub]'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run",
        metavar="RUN_OR_PACKAGE",
        help="run directory or checkpoint file (packed), or a package folder (uploaded as it is)",
    )
    p.add_argument("repo_id", metavar="ORG/NAME", help="the Hub model repository")
    p.add_argument(
        "--private",
        action="store_true",
        help="create the repository private (an existing one keeps its visibility)",
    )
    add_dataclass_arguments(p, PackConfig, "pack", only=("license", "results"), title="package")
    add_dataclass_arguments(p, EvalConfig, "eval", only=("which",), title="checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.commands.pack import report
    from rrn.package.pack import push_run
    from rrn.package.settings import PackConfig

    cfg = from_flags(PackConfig, args, "pack")
    packed, commit = push_run(
        args.run,
        args.repo_id,
        private=args.private,
        which=from_flags(EvalConfig, args, "eval").which,
        license=cfg.license,
        results=cfg.results,
    )
    url = getattr(commit, "commit_url", None) or f"hf://{args.repo_id}"
    files = ", ".join(p.name for p in packed.files)
    report(packed, where=f"{url} (one commit: {files})", verb="pushed")
    print(f"load it with: rrn predict hf://{args.repo_id} VIDEO")
    return 0

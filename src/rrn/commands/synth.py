"""``rrn synth OUT``: write the synthetic temporal-order dataset (see :mod:`rrn.data.synth`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.data.formats import synth_layouts

    layouts = synth_layouts()
    p = sub.add_parser(
        "synth",
        help="write a synthetic action dataset whose classes differ only in temporal order",
        description="Write a deterministic synthetic action dataset, by default as .avi files in "
        "the UCF-101 layout (classInd.txt, trainlist01.txt, testlist01.txt); --layout writes the "
        f"same videos as a miniature of another dataset format ({', '.join(layouts[1:])}); "
        "the formats of untrimmed videos get untrimmed videos instead, one action of every class "
        "each between stretches of background motion that is no class. "
        "Class k = objects moving along direction 360*k/K degrees: no single frame "
        "tells the class. Train on it with horizontal flips off and sample_every <= 3.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--classes", type=int, default=4, help="motion directions K (default: 4)")
    p.add_argument("--videos-per-class", type=int, default=16, help="default: 16")
    p.add_argument("--frames", type=int, default=24, help="frames per video (default: 24)")
    p.add_argument("--size", type=int, default=64, help="frame side in px (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument(
        "--layout",
        choices=layouts,
        default=layouts[0],
        help=f"the dataset format to write (default: {layouts[0]}); the flags that read it are "
        "printed and stored in OUT/rrn_synth.json",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rrn.data.synth import make_synthetic_dataset
    from rrn.errors import UserError

    target = Path(args.out)
    if target.is_dir() and any(target.iterdir()):  # e.g. a real dataset's folder, by mistake
        raise UserError(
            f"{target} is not empty: rrn synth writes split files and class folders "
            "that would replace or mix with what is there; choose a new or empty "
            "folder"
        )
    out = make_synthetic_dataset(
        args.out,
        classes=args.classes,
        videos_per_class=args.videos_per_class,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        layout=args.layout,
    )
    info = json.loads((out / "rrn_synth.json").read_text())
    print(
        f"wrote {info['videos']} videos of {args.classes} classes to {out} in the {args.layout} "
        f"layout (train: {info['train']}, test: {info['test']})"
    )
    print(f"read it with: {info['flags']}")
    print("train with --no-hflip: its classes are directions (a mirrored MoveRight is MoveLeft)")
    return 0

"""``rrn features``: per-frame features of a dataset from a frozen network (baselines, Table 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrn.cli import UserError


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset flags shared with ``rrn train`` (same names and meaning)."""
    p.add_argument("--dataset", default="ucf101", choices=("ucf101", "hmdb51", "list"))
    p.add_argument("--data-root", required=True, help="folder with the videos")
    p.add_argument("--split-dir", help="folder with the split files (default: --data-root)")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument("--train-list", help="with --dataset list: 'path label' lines")
    p.add_argument("--test-list", help="with --dataset list: 'path label' lines")
    p.add_argument("--missing", default="error", choices=("error", "skip"),
                   help="a listed video missing on disk: stop (default) or skip it")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="extract frozen per-frame features (stage 2/3/4, pooled) for the baselines",
        description="Run a frozen network over every sampled frame of every video and store the "
        "globally average-pooled features at the end of stages 2, 3, 4 (one .npz per video). "
        "Resumable; under torchrun the videos are sharded across ranks.",
    )
    add_dataset_arguments(p)
    p.add_argument("--source", default="imagenet",
                   help="imagenet (torchvision weights, the paper's baseline), none (random; "
                   "for tests), or an rrn checkpoint / run directory")
    p.add_argument("--arch", default="resnet50", help="architecture for --source imagenet/none")
    p.add_argument("--stages", default="2,3,4", help="comma-separated stages to store")
    p.add_argument("--sample-every", type=int, default=10)
    p.add_argument("--fps", type=float)
    p.add_argument("--frame-size", type=int, default=224)
    p.add_argument("--float16", action="store_true", help="store features as float16")
    p.add_argument("--decoder", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def load_dataset_split(args: argparse.Namespace):
    from rrn.data import load_split

    return load_split(args.dataset, args.data_root, args.split_dir or args.data_root, args.split,
                      train_list=args.train_list, test_list=args.test_list, missing=args.missing)


def run(args: argparse.Namespace) -> int:
    from rrn import distributed as rdist
    from rrn.baselines import extract_features, load_feature_model

    try:
        stages = tuple(int(s) for s in args.stages.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--stages expects comma-separated numbers such as 2,3,4, got {args.stages!r}") from None
    if not stages or any(s not in (1, 2, 3, 4) for s in stages):
        raise UserError(f"--stages must name stages among 1,2,3,4, got {args.stages!r}")
    split = load_dataset_split(args)
    records = split.train + split.test
    subsets = ["train"] * len(split.train) + ["test"] * len(split.test)
    owner = not rdist.is_initialized()  # a caller's process group (rrn experiment) stays
    info, device = rdist.init_distributed(args.device)
    try:
        model = load_feature_model(args.source, args.arch, str(device))
        report = extract_features(
            records, subsets, args.out, model=model, classes=split.classes, stages=stages,
            sample_every=args.sample_every, fps=args.fps, frame_size=args.frame_size,
            float16=args.float16, decoder=args.decoder, device=str(device), rank=info.rank,
            world_size=info.world_size, progress=args.progress and info.is_main, source=args.source,
        )
        rdist.barrier()
        if info.is_main and info.world_size > 1:  # metadata again, now with every shard's failures
            from rrn.baselines import _write_meta

            _write_meta(
                Path(args.out), records, subsets, split.classes, stages,
                world_size=info.world_size, source=args.source, sample_every=args.sample_every,
                fps=args.fps, frame_size=args.frame_size, float16=args.float16,
            )
    finally:
        if owner:
            rdist.cleanup()
    if info.is_main:
        print(f"features: {report.written} videos written, {report.reused} already there, "
              f"{report.frames} frames in {report.seconds:.1f}s -> {args.out}")
        for vid, why in report.failures:
            print(f"  skipped {vid}: {why}")
    return 0

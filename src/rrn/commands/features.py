"""``rrn features``: per-frame features of a dataset from a frozen network (baselines, Table 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrn.cli import UserError
from rrn.data.splits import add_dataset_arguments, split_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="extract frozen per-frame features (stage 2/3/4, pooled) for the baselines",
        description="Run a frozen network over every sampled frame of every video and store the "
        "globally average-pooled features at the end of stages 2, 3, 4 (one .npz per video). "
        "Resumable; under torchrun the videos are sharded across ranks.",
    )
    add_dataset_arguments(p)  # the same flags as rrn cache / check-data
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


def run(args: argparse.Namespace) -> int:
    from rrn import distributed as rdist
    from rrn.baselines import extract_features, load_feature_model
    from rrn.data.cache import resolve_cache_dir

    try:
        stages = tuple(int(s) for s in args.stages.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--stages expects comma-separated numbers such as 2,3,4, got {args.stages!r}") from None
    if not stages or any(s not in (1, 2, 3, 4) for s in stages):
        raise UserError(f"--stages must name stages among 1,2,3,4, got {args.stages!r}")
    split = split_from_args(args)
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
            cache_dir=resolve_cache_dir(None, args.data_root),  # <data-root>/.rrn-cache once built
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

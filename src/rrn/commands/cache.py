"""``rrn cache``: decode every video of a split once into the frame cache (see :mod:`rrn.data.cache`)."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    from rrn.data.splits import add_dataset_arguments

    p = sub.add_parser(
        "cache",
        help="decode each video once into its sampled, resized frames on disk",
        description="Decode each video of the split (train and test) once into its sampled, "
        "resized uint8 frames. Resumable (finished videos are skipped), safe to run "
        "concurrently; datasets given the same --cache-dir and sampling options use it.",
    )
    add_dataset_arguments(p)
    p.add_argument("--cache-dir", default=None, help="default: <data-root>/.rrn-cache")
    p.add_argument("--sample-every", type=int, default=10, help="keep every k-th frame (default: 10)")
    p.add_argument("--fps", type=float, default=None, help="sample at this frame rate instead")
    p.add_argument("--frame-size", type=int, default=224,
                   help="training crop size; the cache stores frames with short side round(8/7 x this) (default: 224, as rrn train)")
    p.add_argument("--short-side", type=int, default=None, help="override the stored short side")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel decoders")
    p.add_argument("--decoder", default="auto", choices=("auto", "pyav", "torchcodec"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.data.cache import build_cache, default_cache_dir
    from rrn.data.decode import resolve_backend
    from rrn.data.splits import split_from_args
    from rrn.data.transforms import default_short_side

    resolve_backend(args.decoder)  # configuration errors before any work
    split = split_from_args(args)
    cache_dir = args.cache_dir or default_cache_dir(args.data_root)
    short_side = args.short_side or default_short_side(args.frame_size)
    report = build_cache(split.train + split.test, cache_dir, sample_every=args.sample_every,
                         fps=args.fps, short_side=short_side, workers=args.workers,
                         decoder=args.decoder, progress=not args.no_progress)
    print(f"cache {cache_dir} (sample_every={args.sample_every}, fps={args.fps}, short_side={short_side})")
    print(report.summary())
    return 1 if report.failures else 0

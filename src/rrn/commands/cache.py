"""``rrn cache``: decode every video of a split once into the frame cache (see
:mod:`rrn.data.cache`)."""

from __future__ import annotations

import argparse
import logging

from rrn.commands.flags import add_dataclass_arguments, flag_overrides
from rrn.config import (
    CACHE_FIELDS,
    DATASET_FIELDS,
    FRAME_FIELDS,
    DataConfig,
    RunConfig,
    resolve_config,
)

logger = logging.getLogger(__name__)

#: The dataset and the sampling: the same flags, help and defaults as rrn train's.
DATA_FIELDS = DATASET_FIELDS + FRAME_FIELDS + CACHE_FIELDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="decode each video once into its sampled, resized frames on disk",
        description="Decode each video of the split (train and test) once into its sampled, "
        "resized uint8 frames, under --cache-dir (default <data-root>/.rrn-cache, which rrn "
        "train/eval/features/predict then read, whichever format). Prints the disk it will take "
        "before it starts. Resumable (finished videos are checked and skipped), safe to run "
        "concurrently. Give the same sampling flags as to rrn train.",
    )
    add_dataclass_arguments(
        p,
        DataConfig,
        "data",
        only=DATA_FIELDS,
        title="data",
        aliases={"cache_format": "--format", "cache_quality": "--quality"},
    )
    add_dataclass_arguments(p, RunConfig, "run", only=("workers", "progress"), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.data import FrameSource, build_cache, default_cache_dir
    from rrn.data.cache import estimate_cache
    from rrn.files import check_writable
    from rrn.runtime import resolve_workers

    cfg = resolve_config([("flags", flag_overrides(args))])
    d = cfg.data
    split = d.load_split()
    source = FrameSource(
        d.sampling(),
        cache_dir=d.cache_dir or default_cache_dir(d.data_root),
        decoder=d.decoder,
        cache_format=d.cache_format,
        cache_quality=d.cache_quality,
    )
    check_writable(source.cache.root, "--cache-dir")  # one line now, not one failure per video
    fmt = "npy" if d.cache_format == "npy" else f"jpeg, quality {d.cache_quality}"
    print(f"cache {source.cache.root} ({d.sampling().describe()}; writes {fmt})", flush=True)
    estimate = estimate_cache(split.train + split.test, source)
    if estimate is not None:
        print(estimate.summary(), flush=True)
        if not estimate.fits:
            logger.warning(
                "rrn cache: warning: the estimate exceeds the free space; choose another "
                "--cache-dir, --format jpeg or a smaller --short-side"
            )
    report = build_cache(
        split.train + split.test,
        source,
        workers=resolve_workers(cfg.run.workers),
        progress=cfg.run.progress,
    )
    print(report.summary(d.cache_format, source.cache.root))
    return 1 if report.failures else 0

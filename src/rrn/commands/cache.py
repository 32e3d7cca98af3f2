"""``rrn cache``: decode every video of a split once into the frame cache (see :mod:`rrn.data.cache`)."""

from __future__ import annotations

import argparse

from rrn.config import (
    DataConfig,
    RunConfig,
    add_dataclass_arguments,
    flag_overrides,
    resolve_config,
)

#: The dataset and the sampling: the same flags, help and defaults as rrn train's.
DATA_FIELDS = ("dataset", "data_root", "split_dir", "split", "train_list", "test_list", "missing",
               "sample_every", "fps", "frame_size", "short_side", "cache_dir", "decoder")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="decode each video once into its sampled, resized frames on disk",
        description="Decode each video of the split (train and test) once into its sampled, "
        "resized uint8 frames, under --cache-dir (default <data-root>/.rrn-cache, which rrn "
        "train/eval/features/predict then read). Resumable (finished videos are skipped), safe "
        "to run concurrently. Give the same sampling flags as to rrn train.",
    )
    add_dataclass_arguments(p, DataConfig, "data", only=DATA_FIELDS, title="data")
    add_dataclass_arguments(p, RunConfig, "run", only=("workers", "progress"), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.data import FrameSource, build_cache, default_cache_dir
    from rrn.train import resolve_workers

    cfg = resolve_config([("flags", flag_overrides(args))])
    d = cfg.data
    split = d.load_split()
    source = FrameSource(d.sampling(), cache_dir=d.cache_dir or default_cache_dir(d.data_root),
                         decoder=d.decoder)
    report = build_cache(split.train + split.test, source, workers=resolve_workers(cfg.run.workers),
                         progress=cfg.run.progress)
    print(f"cache {source.cache.root} ({d.sampling().describe()})")
    print(report.summary())
    return 1 if report.failures else 0

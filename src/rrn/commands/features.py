"""``rrn features``: per-frame features of a dataset from a frozen network (baselines, Table 1)."""

from __future__ import annotations

import argparse

from rrn.commands.cache import DATA_FIELDS
from rrn.commands.flags import add_dataclass_arguments, flag_overrides, from_flags
from rrn.config import DataConfig, FeaturesConfig, ModelConfig, RunConfig, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="extract frozen per-frame features (stage 2/3/4, pooled) for the baselines",
        description="Run a frozen network over every sampled frame of every video and store the "
        "globally average-pooled features at the end of stages 2, 3, 4 (one .npz per video). "
        "Resumable; under torchrun the videos are sharded across ranks.",
    )
    add_dataclass_arguments(p, FeaturesConfig, "features", title="features")
    add_dataclass_arguments(p, ModelConfig, "model", only=("arch",), title="model")
    add_dataclass_arguments(p, DataConfig, "data", only=DATA_FIELDS, title="data")
    add_dataclass_arguments(p, RunConfig, "run", only=("device", "progress"), title="run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rrn.baselines import extract_dataset_features
    from rrn.distributed import dist_info_from_env

    feats = from_flags(FeaturesConfig, args, "features")
    cfg = resolve_config([("flags", flag_overrides(args))])
    report = extract_dataset_features(cfg, feats)
    if dist_info_from_env().is_main:
        print(report.summary(feats.out))
    return 0

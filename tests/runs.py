"""Test-only runs: an rrn run directory holding a random model (as rrn.load_model expects one),
and the argv/config of a tiny `rrn train` on synthetic data."""

from pathlib import Path

import torch
from torch import nn

from rrn.checkpoint import make_checkpoint, save_checkpoint
from rrn.cli import build_parser
from rrn.commands.flags import flag_overrides
from rrn.config import resolve_config
from rrn.model import build_model


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm the statistics and affine parameters of a trained network.

    A fresh BatchNorm maps zero to zero (mean 0, bias 0), which would hide the difference
    between "no previous frame" and "a zero previous frame" at a projection shortcut.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=g))


def save_run(
    run: Path,
    *,
    skips=("block4",),
    skip_type="identity",
    arch="resnet18",
    frame_size=32,
    sample_every=1,
    classes=("A", "B", "C"),
    seed=0,
) -> Path:
    """Write ``run/last.pt``: a random RRN with trained-looking BatchNorm, its config, classes."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=len(classes), skip_blocks=skips, skip_type=skip_type)
    randomize_batchnorm(model, seed)
    cfg = resolve_config(
        [
            (
                "flags",
                {
                    "data": {"frame_size": frame_size, "sample_every": sample_every},
                    "model": {
                        "arch": arch,
                        "skip": ",".join(skips) or "none",
                        "skip_type": skip_type,
                    },
                },
            )
        ]
    )
    save_checkpoint(
        run / "last.pt", make_checkpoint(model.eval(), config=cfg.to_dict(), classes=list(classes))
    )
    return run


def tiny_train_flags(*, sample_every: int = 1, update_chunks: int = 2) -> list[str]:
    """`rrn train` flags for a random resnet18 at 32 px, batch 2, in this process, quiet."""
    return [
        "--arch",
        "resnet18",
        "--skip",
        "block4",
        "--frame-size",
        "32",
        "--sample-every",
        str(sample_every),
        "--no-hflip",
        "--weights",
        "none",
        "--batch-size",
        "2",
        "--update-chunks",
        str(update_chunks),
        "--workers",
        "0",
        "--no-progress",
    ]


def tiny_train_argv(synth, out, *extra) -> list[str]:
    """`rrn train` argv for a resnet18 at 32 px on ``synth``, two chunks per optimiser step."""
    return [
        "train",
        "--data-root",
        str(synth),
        *tiny_train_flags(),
        "--lr",
        "1e-3",
        "--out",
        str(out),
        *extra,
    ]


def train_config(argv: list[str]):
    """The TrainConfig `rrn train` resolves from ``argv`` (to call fit with test hooks)."""
    from rrn.train import resolve_train_config

    args = build_parser().parse_args(argv)
    return resolve_train_config([("flags", flag_overrides(args))])[0]

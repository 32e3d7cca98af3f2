"""Test-only: an rrn run directory holding a random model, as rrn.load_model expects one."""

from pathlib import Path

import torch
from torch import nn

from rrn.checkpoint import make_checkpoint, save_checkpoint
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


def save_run(run: Path, *, skips=("block4",), skip_type="identity", arch="resnet18",
             frame_size=32, sample_every=1, classes=("A", "B", "C"), seed=0) -> Path:
    """Write ``run/last.pt``: a random RRN with trained-looking BatchNorm, its config, classes."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=len(classes), skip_blocks=skips, skip_type=skip_type)
    randomize_batchnorm(model, seed)
    cfg = resolve_config([("flags", {
        "data": {"frame_size": frame_size, "sample_every": sample_every},
        "model": {"arch": arch, "skip": ",".join(skips) or "none", "skip_type": skip_type},
    })])
    save_checkpoint(run / "last.pt", make_checkpoint(model.eval(), config=cfg.to_dict(),
                                                     classes=list(classes)))
    return run

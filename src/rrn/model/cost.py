"""What a model costs: its parameters, and the FLOPs of one chunk (greedy or all frames)."""

from __future__ import annotations

import torch
from torch import nn

from rrn.model.blocks import is_temporal
from rrn.model.network import RecurrentResNet


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total and temporal (new) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    temporal = sum(p.numel() for n, p in model.named_parameters() if is_temporal(n))
    return {"total": total, "temporal": temporal}


def chunk_gflops(model: RecurrentResNet, context: int, size: int, greedy: bool = True) -> float:
    """Forward GFLOPs (multiply-add = 2 FLOPs) of one chunk of ``context`` frames at ``size``."""
    from torch.utils.flop_counter import FlopCounterMode

    clip = torch.zeros(1, context, 3, size, size)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip, greedy=greedy)
    model.train(was_training)
    return counter.get_total_flops() / 1e9

"""Residual blocks that can carry a temporal skip: torchvision's, with the sum exposed.

:class:`TemporalBasicBlock` and :class:`TemporalBottleneck` subclass torchvision's blocks, so
every parameter keeps its torchvision name (``conv1``, ``bn1``, ``downsample``) and a block
without a skip runs torchvision's own ``forward``. They add what a skip block needs (paper
Sec. 3, eq. 2-4)::

    y_t = relu(residual_sum(x_t) + temporal_term(x_{t-1}))
    residual_sum(x) = F(x) + shortcut(x)        temporal_term(x) = S(x, shortcut)

``temporal`` is the skip ``S`` given to the block (:mod:`rrn.model.skips`), None where the block
has none; its parameters are the only ones torchvision's block does not have.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

TEMPORAL = "temporal"  # the name of a block's skip module: `layer4.2.temporal.weight`


def is_temporal(name: str) -> bool:
    """Whether the parameter or buffer ``name`` belongs to a temporal skip."""
    return f".{TEMPORAL}." in name


class TemporalBlock:
    """What the two temporal blocks share; mixed in before the torchvision block class."""

    # torchvision's attributes, read here (set by BasicBlock / Bottleneck)
    conv1: nn.Conv2d
    downsample: nn.Module | None
    relu: nn.Module
    stride: int
    temporal: nn.Module | None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_module(TEMPORAL, None)  # S: given by the network at its skip blocks

    @property
    def in_channels(self) -> int:
        return self.conv1.in_channels

    @property
    def out_channels(self) -> int:
        raise NotImplementedError

    def shortcut(self, x: Tensor) -> Tensor:
        """The block's shortcut: ``x``, or its projection ``downsample`` where the shape changes."""
        return x if self.downsample is None else self.downsample(x)

    def residual_sum(self, x: Tensor) -> Tensor:
        """``F(x) + shortcut(x)``: the block's ``forward`` without its final ReLU."""
        raise NotImplementedError

    def temporal_term(self, x_prev: Tensor) -> Tensor:
        """``S(x_{t-1})``, shaped like the block's output."""
        if self.temporal is None:
            raise RuntimeError("this block has no temporal skip")
        return self.temporal(x_prev, self.shortcut)


class TemporalBasicBlock(TemporalBlock, tv_resnet.BasicBlock):
    """torchvision's ``BasicBlock`` (resnet18/34) that can carry a temporal skip."""

    @property
    def out_channels(self) -> int:
        return self.conv2.out_channels

    def residual_sum(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return out + self.shortcut(x)


class TemporalBottleneck(TemporalBlock, tv_resnet.Bottleneck):
    """torchvision's ``Bottleneck`` (resnet50/101/152) that can carry a temporal skip."""

    @property
    def out_channels(self) -> int:
        return self.conv3.out_channels

    def residual_sum(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x)

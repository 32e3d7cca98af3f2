"""The model builder: a Recurrent Residual Network from names, with its initial weights."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from torch import Tensor

from rrn.model.network import RecurrentResNet
from rrn.model.weights import WeightsSource, load_weights


def build_model(
    arch: str = "resnet50",
    num_classes: int = 101,
    skip_blocks: str | Sequence[str] = ("block4",),
    skip_type: str = "identity",
    weights: str | os.PathLike | Mapping[str, Tensor] | WeightsSource | None = None,
    temporal_init: str = "kaiming",
) -> RecurrentResNet:
    """Build a Recurrent Residual Network.

    Args:
        arch: A key of :data:`~rrn.model.ARCHITECTURES`: resnet18, resnet34, resnet50 (the
            paper's), resnet101, resnet152.
        num_classes: Number of action classes K (the classifier ``fc`` is sized to it).
        skip_blocks: Blocks with a temporal skip: module paths (``"layer4.2"``) or the paper's
            aliases ``block1`` (``layer1.0``), ``block2`` (last block of stage 2),
            ``midblock4`` (``layer4.0``), ``block4`` (last block of stage 4). Empty = a plain
            per-frame ResNet. The receptive field is ``len(skip_blocks) + 1`` frames.
        skip_type: A key of :data:`~rrn.model.SKIP_TYPES`: ``identity`` (eq. 2), ``linear``
            (1x1 conv, eq. 3) or ``nonlinear`` (relu of a 1x1 conv, eq. 4).
        weights: Initial weights (:func:`~rrn.model.resolve_weights`): None (random init),
            ``"imagenet"`` (torchvision's ImageNet weights for ``arch``, downloaded by
            torchvision), the path of a torchvision state dict or of an rrn checkpoint of
            ``arch``, or a state dict. The classifier is re-initialised when its size differs
            from ``num_classes``.
        temporal_init: ``kaiming`` or ``zero`` (linear skips only: a pretrained network then
            starts out exactly as the per-frame ResNet).

    Returns:
        The model; ``model.config`` rebuilds it via ``build_model(**model.config)`` and
        ``model.info.weights`` tells what loading the weights did.
    """
    if isinstance(skip_blocks, str):
        skip_blocks = [s.strip() for s in skip_blocks.split(",") if s.strip()]
    model = RecurrentResNet(arch, num_classes, skip_blocks, skip_type, temporal_init)
    model.info = dataclasses.replace(model.info, weights=load_weights(model, weights))
    return model

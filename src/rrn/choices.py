"""Every fixed set of names a setting can take, declared once as a ``Literal`` type.

The settings schema (:mod:`rrn.config`) uses these as field types; its validation and the
command line's ``choices`` are derived from the types themselves (:func:`names`), and the modules
that own a concept (the cache's entry formats, the decoders) read the same names, so no second
tuple of them exists anywhere. Where a concept is a registry of records that need torch (the
model's architectures and skip types: :data:`rrn.model.ARCHITECTURES`,
:data:`rrn.model.SKIP_TYPES`), the ``Literal`` lists its keys and a test ties the two, so the
command line can offer the names without loading torch. Torch-free, imports nothing from rrn.
"""

from __future__ import annotations

import typing
from typing import Literal

Arch = Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
SkipType = Literal["identity", "linear", "nonlinear"]
TemporalInit = Literal["kaiming", "zero"]
Stage = Literal["stem", "layer1", "layer2", "layer3", "layer4"]
Schedule = Literal["constant", "step", "cosine"]
DatasetName = Literal[
    "ucf101", "hmdb51", "list", "kinetics", "ssv2", "rawframes", "thumos14", "activitynet"
]
CacheFormat = Literal["jpeg", "npy"]
Decoder = Literal["auto", "pyav", "torchcodec"]
Tracker = Literal["wandb", "mlflow", "tensorboard"]
Engine = Literal["torch", "onnxruntime"]


def names(choice) -> tuple:
    """The names a ``Literal`` type allows, in declaration order."""
    return typing.get_args(choice)

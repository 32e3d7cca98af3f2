"""What a model knows about itself: one record, ``model.info``.

:class:`ModelInfo` is set where a model is made, and nowhere else: :func:`rrn.model.build_model`
fills in the architecture and what loading its initial weights did (:class:`WeightsReport`);
:func:`rrn.checkpoint.load_model` (its ``build_from_checkpoint``) adds what the checkpoint
knows (class names, how frames are prepared, the training settings, which file and how it was
chosen). Everything else reads it, through the record or the model's read-only properties of
the same names (``model.classes``, ``model.inputs``, ``model.checkpoint``, ``model.choice``,
``model.skip_blocks`` ...). To describe a model differently, give it a new record:
``model.info = dataclasses.replace(model.info, ...)``. (timm's ``pretrained_cfg`` and
nanoGPT's ``GPTConfig`` are the examples.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rrn.config import TrainConfig
    from rrn.data.transforms import InputSpec


@dataclass(frozen=True)
class WeightsReport:
    """Where a model's weights came from and what loading them did."""

    source: str = "none"
    """``none`` (initialised at random), ``imagenet`` (torchvision's), ``a state dict`` (given
    in memory) or the file's path (a state dict file or an rrn checkpoint)."""
    missing: tuple[str, ...] = ()
    """The model's tensors the weights do not have, left as initialised: the temporal skips'
    (new to torchvision's weights), a classifier the weights lack."""
    skipped: tuple[str, ...] = ()
    """Tensors of the weights left out: a classifier of another number of classes."""
    unused: tuple[str, ...] = ()
    """Tensors of the weights the model has no place for: temporal skips at blocks where the
    model has none (an rrn checkpoint with skips elsewhere)."""

    def __str__(self) -> str:
        """One line for a log: ``imagenet weights (fresh: layer4.2.temporal.weight)``."""
        if self.source == "none":
            return "random initialisation"
        fresh = [*self.missing, *self.skipped]
        said = "imagenet weights" if self.source == "imagenet" else f"weights of {self.source}"
        return said + (f" (fresh: {', '.join(fresh)})" if fresh else "")


@dataclass(frozen=True)
class ModelInfo:
    """What a model knows about itself (``model.info``); see the module docstring."""

    arch: str
    """The torchvision ResNet it is built on (a key of :data:`rrn.model.ARCHITECTURES`)."""
    skip_blocks: tuple[str, ...]
    """Module paths of the blocks with a temporal skip, in depth order."""
    skip_type: str
    """How the skips compute ``S(x_{t-1})`` (a key of :data:`rrn.model.SKIP_TYPES`)."""
    weights: WeightsReport = WeightsReport()
    """Where its weights came from: initial weights (``build_model``), or the checkpoint it
    was loaded from (``load_model``)."""
    classes: tuple[str, ...] | None = None
    """Class names in label order (a loaded model; None on a fresh one)."""
    inputs: InputSpec | None = None
    """How its frames are prepared: frame size, sampling, normalisation
    (:class:`~rrn.data.transforms.InputSpec`; ``inputs.transform()`` for uint8 frames)."""
    train_config: TrainConfig | None = None
    """The :class:`~rrn.config.TrainConfig` it was trained with."""
    checkpoint: Path | None = None
    """The checkpoint file it was loaded from."""
    choice: Mapping[str, Any] | None = None
    """How that checkpoint was chosen (:func:`rrn.checkpoint.checkpoint_choice`: ``file``,
    ``chosen_by``, ``description``, ``epoch``, ``global_step``)."""

    @property
    def temporal_context(self) -> int:
        """Receptive field in frames: number of skip blocks + 1."""
        return len(self.skip_blocks) + 1

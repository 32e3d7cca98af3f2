"""Initial weights: where they come from (:func:`resolve_weights`) and how they enter a model
(:func:`load_weights`), the one path for the model builder, training (``--weights``) and the
feature baselines (``--source``), as timm's ``_builder.load_pretrained`` is for timm.

A model's initial weights are one of

* ``none``: as the layers initialise themselves (torchvision's rules, :data:`~rrn.model.skips.INITS`
  for the temporal skips);
* ``imagenet``: torchvision's ImageNet weights of the architecture (:attr:`ArchSpec.weights`),
  from torchvision's cache or downloaded; offline, a one-line error names the ways out;
* a state dict file: torchvision's ``.pth`` (also inside ``{"model": ...}`` or
  ``{"state_dict": ...}``, with DDP's ``module.`` prefix), or a state dict given in memory;
* an rrn checkpoint (marked :data:`CHECKPOINT_FORMAT`): the weights of a trained RRN of the
  same architecture, e.g. pre-trained on Kinetics.

Whatever the source, one rule says what loads: every tensor of the model comes from the weights
by name and shape, except the temporal skips' (new to torchvision's weights) and a classifier of
another number of classes, which keep their initialisation; temporal tensors of the weights that
the model has no place for are left out; anything else that differs is an error naming it.
The report says which (:class:`~rrn.model.info.WeightsReport`, ``model.info.weights``).

Restoring a trained model from its own checkpoint (``rrn.load_model``, ``--resume``) is not
initialisation: there every tensor must match (:func:`rrn.checkpoint.load_state_checked`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from rrn.model.archs import get_arch
from rrn.model.blocks import is_temporal
from rrn.model.errors import WeightsError, WeightsUnavailableError
from rrn.model.info import WeightsReport

if TYPE_CHECKING:
    from torch import nn

#: The ``format`` entry that marks an rrn checkpoint (:mod:`rrn.checkpoint` writes it).
CHECKPOINT_FORMAT = "rrn-checkpoint"
#: The values of ``--weights`` / ``--source`` that are not a file.
WEIGHT_KEYWORDS = ("imagenet", "none")
#: The classifier's tensors: kept fresh when the weights have another number of classes.
CLASSIFIER = ("fc.weight", "fc.bias")

_WHAT = (
    "pass none, imagenet, a torchvision ResNet state dict (.pth) or an rrn checkpoint (RUN/last.pt)"
)


@dataclass(frozen=True)
class WeightsSource:
    """Initial weights, resolved by :func:`resolve_weights`: what they are and where."""

    kind: Literal["none", "imagenet", "state_dict", "checkpoint"]
    path: Path | None = None
    """The file of a ``state_dict`` or ``checkpoint``."""
    state: Mapping[str, Tensor] | None = field(default=None, repr=False, compare=False)
    """A ``state_dict`` given in memory (no file)."""
    name: str | None = None
    """Where a state dict in memory came from (a model package), for reports."""

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.name is not None:
            return self.name
        return "a state dict" if self.kind == "state_dict" else self.kind


def weights_keyword(value: Any) -> str | None:
    """``"imagenet"`` or ``"none"`` when ``value`` (``--weights``, a feature ``--source``) is one
    of those keywords, in any case (None and ``""`` mean ``"none"``); None when it names a file.
    The one place those words are recognised."""
    word = "none" if value is None else str(value).strip().lower() or "none"
    return word if word in WEIGHT_KEYWORDS else None


def resolve_weights(
    value: str | os.PathLike | Mapping[str, Tensor] | WeightsSource | None,
) -> WeightsSource:
    """What ``value`` names as initial weights: the one place ``--weights`` is interpreted.

    Args:
        value: ``None`` / ``"none"``, ``"imagenet"`` (any case), the path of a state dict file
            or of an rrn checkpoint, a state dict in memory, or a resolved source.

    Raises:
        WeightsError: no such file, or a file torch cannot load safely.
    """
    if isinstance(value, WeightsSource):
        return value
    if isinstance(value, Mapping):
        return WeightsSource("state_dict", state=value)
    keyword = weights_keyword(value)
    if keyword == "imagenet":
        return WeightsSource("imagenet")
    if keyword == "none":
        return WeightsSource("none")
    path = Path(value)
    if path.is_dir():
        raise WeightsError(
            f"weights {path} is a directory; pass a file in it (RUN/last.pt), or to rrn train "
            "a model package folder (rrn pack) or hf://org/name"
        )
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; {_WHAT}")
    kind = "checkpoint" if _is_checkpoint(_read(path)) else "state_dict"
    return WeightsSource(kind, path=path)


def load_weights(
    model: nn.Module, weights: str | os.PathLike | Mapping[str, Tensor] | WeightsSource | None
) -> WeightsReport:
    """Load initial weights into ``model`` (a :class:`~rrn.model.RecurrentResNet`) by the one
    rule of the module docstring: the one place initial weights enter a model.

    Args:
        model: The model, freshly built.
        weights: Anything :func:`resolve_weights` takes.

    Returns:
        What loading did (also what ``build_model`` records as ``model.info.weights``).

    Raises:
        WeightsError: the weights are not weights, or not this architecture's (the message
            names the first tensors that differ and what to pass instead).
        WeightsUnavailableError: ``imagenet`` offline and not in torchvision's cache.
    """
    source = resolve_weights(weights)
    if source.kind == "none":
        return WeightsReport()
    if source.kind == "imagenet":
        state = imagenet_state_dict(model.arch)
    elif source.kind == "checkpoint":
        state = _checkpoint_state(source.path, model.arch)
    elif source.path is not None:
        state = _state_dict_file(source.path)
    else:
        state = source.state
    return _fit(model, state, str(source))


def imagenet_state_dict(arch: str) -> dict[str, Tensor]:
    """torchvision's ImageNet weights of ``arch``: from its cache (``$TORCH_HOME``), else
    downloaded.

    Raises:
        WeightsUnavailableError: offline and not cached; the message names the ways out.
    """
    from rrn.progress import on_terminal

    weights = get_arch(arch).weights.DEFAULT
    try:  # torchvision's download bar, as rrn's own bars: on a terminal only, not in job logs
        return weights.get_state_dict(progress=on_terminal())
    except OSError as err:  # urllib's URLError and socket errors are OSErrors
        reason = getattr(err, "reason", None) or err.strerror or err
        file = Path(weights.url).name
        raise WeightsUnavailableError(
            f"cannot download torchvision's ImageNet weights for {arch} ({reason}); train from "
            f"scratch with --weights none, or download {weights.url} elsewhere and pass "
            f"--weights /path/to/{file} (a torchvision state dict; or put it in "
            f"$TORCH_HOME/hub/checkpoints/ where torchvision looks first)"
        ) from None


def _read(path: Path) -> Any:
    from rrn.files import load_torch_file

    try:
        return load_torch_file(path)
    except ValueError as reason:
        raise WeightsError(
            f"weights file {path} is not a file torch can load safely ({reason}); {_WHAT}"
        ) from None


def _is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def _state_dict_file(path: Path) -> Mapping[str, Tensor]:
    """A state dict from ``path``: bare, or under ``model`` / ``state_dict`` (training scripts)."""
    obj = _read(path)
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(
            f"{path} does not hold a state dict (a mapping of names to tensors); pass "
            "a torchvision ResNet state dict (.pth) or an rrn checkpoint (RUN/last.pt)"
        )
    return obj


def _checkpoint_state(path: Path, arch: str) -> Mapping[str, Tensor]:
    """The weights of the rrn checkpoint ``path``, which must hold an ``arch`` network (another
    architecture's tensors would load by name into the blocks they share: a truncated net)."""
    ckpt = _read(path)
    description, state = ckpt.get("model_config"), ckpt.get("model")
    if not (isinstance(description, Mapping) and isinstance(state, Mapping)):
        raise WeightsError(f"weights {path}: the checkpoint lacks its model description or weights")
    check_weights_arch(path, saved=description.get("arch"), arch=arch)
    return state


def check_weights_arch(given: str | os.PathLike, *, saved: Any, arch: str) -> None:
    """Refuse weights of a trained network of another architecture than the run's (its tensors
    would load by name into the blocks the two share: a truncated net).

    Raises:
        WeightsError: naming both architectures and the ways out.
    """
    if saved != arch:
        raise WeightsError(
            f"--weights {given} holds a {saved}, this run builds a {arch}: train with "
            f"--arch {saved}, or give weights of a {arch}"
        )


def _few(keys: list[str]) -> str:
    """A handful of names, not a hundred."""
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return (", ".join(keys[:3]) + more) or "none"


def _fit(model: nn.Module, state: Mapping[str, Tensor], source: str) -> WeightsReport:
    """Load ``state`` into ``model`` by the rule of the module docstring; report what it did."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    skipped = [k for k in CLASSIFIER if k in state and k in own and state[k].shape != own[k].shape]
    unused = [k for k in state if k not in own and is_temporal(k)]
    state = {k: v for k, v in state.items() if k not in skipped and k not in unused}
    # load_state_dict raises a RuntimeError listing every mismatch (e.g. resnet50 weights into
    # resnet18); say in one line which model the weights do not fit.
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if wrong:
        raise WeightsError(
            f"weights do not fit {model.arch}: shapes differ for {_few(wrong)}. "
            f"Pass a state dict of torchvision's {model.arch}."
        )
    missing = [k for k in own if k not in state and k not in skipped]
    not_new = [k for k in missing if not is_temporal(k) and k not in CLASSIFIER]
    unexpected = [k for k in state if k not in own]
    if not_new or unexpected:
        raise WeightsError(
            f"weights do not fit {model.arch}: {len(not_new)} tensors missing ({_few(not_new)}), "
            f"{len(unexpected)} unexpected ({_few(unexpected)}). Pass a state dict of "
            f"torchvision's {model.arch}."
        )
    model.load_state_dict(state, strict=False)
    return WeightsReport(source, tuple(missing), tuple(skipped), tuple(unused))

"""The architectures: the torchvision ResNets rrn builds on, one record each in
:data:`ARCHITECTURES`, and the names of their residual blocks (where temporal skips go).

An architecture is an :class:`ArchSpec` (torchvision's registry of models, ``register_model`` /
``get_model``, and timm's ``create_model`` are the examples): its torchvision builder, the
block type and the blocks per stage it is made of, and torchvision's ImageNet weights for it. A
new one is one more record passed to :func:`register_arch`, and its name in
:data:`rrn.choices.Arch` for the command line (a test ties the two).

Blocks are named as torchvision names their modules (``layer4.2``), or by the paper's aliases
(:data:`ALIASES`), resolved per architecture by :func:`resolve_skip_blocks`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torchvision.models import WeightsEnum, get_model_builder, get_model_weights
from torchvision.models import resnet as tv_resnet

from rrn.errors import ConfigError
from rrn.model.blocks import TemporalBasicBlock, TemporalBottleneck
from rrn.model.errors import ModelError

if TYPE_CHECKING:
    from rrn.config import ModelConfig

STAGES = (1, 2, 3, 4)
ALIASES = ("block1", "block2", "midblock4", "block4")


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """A torchvision ResNet that temporal skips can be added to."""

    name: str
    """The name ``--arch`` takes (a key of :data:`ARCHITECTURES`), torchvision's too."""
    builder: Callable[..., tv_resnet.ResNet]
    """torchvision's builder of the plain network (``torchvision.models.resnet50``)."""
    block: type[TemporalBasicBlock] | type[TemporalBottleneck]
    """rrn's subclass of the torchvision block the network is made of."""
    layers: tuple[int, int, int, int]
    """Blocks per stage, as torchvision's builder passes them to ``ResNet``."""
    weights: type[WeightsEnum]
    """torchvision's weights of it; ``weights.DEFAULT`` are the ImageNet weights ``imagenet``
    loads."""

    @property
    def block_paths(self) -> tuple[str, ...]:
        """Every residual block as a torchvision module path, in depth order."""
        return tuple(f"layer{s}.{i}" for s, n in zip(STAGES, self.layers) for i in range(n))

    @property
    def aliases(self) -> dict[str, str]:
        """The paper's block names and the module paths they stand for in this network."""
        return {
            "block1": "layer1.0",  # first block of stage 1
            "block2": f"layer2.{self.layers[1] - 1}",  # last block of stage 2
            "midblock4": "layer4.0",  # the projection-shortcut block of stage 4
            "block4": f"layer4.{self.layers[3] - 1}",  # last block of stage 4 (paper's best)
        }


#: The registry of architectures, shallowest first (``--arch``'s choices).
ARCHITECTURES: dict[str, ArchSpec] = {}


def register_arch(spec: ArchSpec) -> ArchSpec:
    """Add an architecture to :data:`ARCHITECTURES`; a name can be registered once."""
    if spec.name in ARCHITECTURES:
        raise ValueError(f"architecture {spec.name!r} is registered already")
    ARCHITECTURES[spec.name] = spec
    return spec


# torchvision's ResNets, their builders and weights looked up in torchvision's own registry
for _name, _block, _layers in (
    ("resnet18", TemporalBasicBlock, (2, 2, 2, 2)),
    ("resnet34", TemporalBasicBlock, (3, 4, 6, 3)),
    ("resnet50", TemporalBottleneck, (3, 4, 6, 3)),
    ("resnet101", TemporalBottleneck, (3, 4, 23, 3)),
    ("resnet152", TemporalBottleneck, (3, 8, 36, 3)),
):
    register_arch(
        ArchSpec(
            name=_name,
            builder=get_model_builder(_name),
            block=_block,
            layers=_layers,
            weights=get_model_weights(_name),
        )
    )


def get_arch(name: str) -> ArchSpec:
    """The record of architecture ``name``.

    Raises:
        ModelError: an unknown name (the message lists the registered ones and the closest).
    """
    if name not in ARCHITECTURES:
        hint = difflib.get_close_matches(str(name), ARCHITECTURES, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ModelError(f"unknown arch {name!r}; choose one of {', '.join(ARCHITECTURES)}.{extra}")
    return ARCHITECTURES[name]


def block_paths(arch: str) -> tuple[str, ...]:
    """All residual blocks of ``arch`` as torchvision module paths, in depth order."""
    return get_arch(arch).block_paths


def resolve_skip_blocks(arch: str, names: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve block names (paths like ``"layer4.2"`` or the paper's aliases) to module paths.

    Args:
        arch: A key of :data:`ARCHITECTURES`.
        names: Block names; a single comma-separated string is accepted too.

    Returns:
        The module paths in depth order.

    Raises:
        ModelError: For an unknown name (the message lists the valid ones) or a block named
            twice.
    """
    spec = get_arch(arch)
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    paths, aliases = spec.block_paths, spec.aliases
    resolved: list[str] = []
    given: dict[str, str] = {}  # module path -> the name that asked for it
    for name in (n.strip() for n in names):
        key = name.lower().replace("_", "").replace("-", "") if name not in paths else name
        path = aliases.get(key, name if name in paths else None)
        if path is None:
            valid = list(ALIASES) + list(paths)
            hint = difflib.get_close_matches(name, valid, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ModelError(
                f"unknown skip block {name!r} for {arch}.{extra} Valid names: aliases "
                f"{', '.join(ALIASES)} or module paths {', '.join(paths)}."
            )
        if path in resolved:
            raise ModelError(
                f"skip blocks {given[path]!r} and {name!r} both resolve to {path}; each block "
                "can carry one temporal skip (T-1 skips must sit at different blocks)."
            )
        resolved.append(path)
        given[path] = name
    return tuple(sorted(resolved, key=paths.index))


def skips_for_context(arch: str, context: int) -> tuple[str, ...]:
    """The last ``context - 1`` blocks of ``arch``: the skips of a receptive field of ``context``.

    ``context=2`` gives the paper's best position (``block4``, the last block of stage 4).
    """
    paths = block_paths(arch)
    if not 1 <= context <= len(paths) + 1:
        raise ModelError(
            f"context must be between 1 and {len(paths) + 1} for {arch}, got {context}"
        )
    return paths[len(paths) - (context - 1) :]


def resolve_skips(model_cfg: ModelConfig) -> tuple[str, ...]:
    """The module paths of the temporal skips from ``--skip`` / ``--context`` (see ModelConfig)."""
    m = model_cfg
    if m.skip is None:
        if m.context:
            return skips_for_context(m.arch, m.context)
        return resolve_skip_blocks(m.arch, ["block4"])
    skips = resolve_skip_blocks(m.arch, list(m.skip))
    if m.context is not None and len(skips) + 1 != m.context:
        raise ConfigError(
            f"--context {m.context} needs {m.context - 1} temporal skip(s) but --skip "
            f"{','.join(m.skip)} resolves to {len(skips)} ({', '.join(skips) or 'none'})"
        )
    return skips

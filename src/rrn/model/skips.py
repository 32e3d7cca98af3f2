"""The skip types: how a temporal skip computes ``S(x_{t-1})``, a record each in :data:`SKIP_TYPES`.

A skip block adds ``S(x_{t-1})``, the term of its previous frame's input, to its residual sum
(paper Sec. 3)::

    y_t = relu(F(x_t) + shortcut(x_t) + S(x_{t-1}))

``S`` is a small module the block calls as ``S(x_prev, shortcut)``, with ``shortcut`` the block's
own shortcut (the identity, or its projection where the block changes shape), the way
pytorchvideo's ``ResBlock`` calls the ``branch_fusion`` it is given: the block never asks which
skip it has. A skip type is a :class:`SkipSpec`: the module, the paper's equation, and the rules of
its initialisation (``temporal_init``). Its parameters are registered under the block as
``temporal`` (``layer4.2.temporal.weight``), the only names a torchvision ResNet does not have.

A new skip type is one more record passed to :func:`register_skip_type`, and its name in
:data:`rrn.choices.SkipType` for the command line (a test ties the two).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rrn.model.errors import ModelError

Shortcut = Callable[[Tensor], Tensor]

#: ``temporal_init``: how a skip's parameters start. ``kaiming`` is how torchvision initialises
#: its convolutions (He normal, fan-out); ``zero`` makes a pretrained network start out exactly
#: as the per-frame ResNet where the skip is linear in its parameters.
INITS: dict[str, Callable[[Tensor], Tensor]] = {
    "kaiming": lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    "zero": nn.init.zeros_,
}


class Skip(nn.Module):
    """A skip module ``S``: made for one block from its ``(in_channels, out_channels, stride)``,
    called by it as ``S(x_prev, shortcut)`` and shaped like the block's output; its parameters
    are initialised by :meth:`reset_parameters`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()

    def forward(self, x_prev: Tensor, shortcut: Shortcut) -> Tensor:
        raise NotImplementedError

    def reset_parameters(self, init: str) -> None:
        """Initialise the parameters as ``temporal_init`` says (a key of :data:`INITS`);
        nothing to do without parameters."""


class IdentitySkip(Skip):
    """Eq. 2: ``S(x) = x``; where the block changes shape (stride or channels), ``x`` goes through
    the block's projection shortcut, whose weights the current frame's path uses too.

    No parameters of its own: ``temporal_init`` has nothing to initialise.
    """

    def forward(self, x_prev: Tensor, shortcut: Shortcut) -> Tensor:
        return shortcut(x_prev)


class LinearSkip(Skip):
    """Eq. 3: ``S(x) = W x``, a 1x1 convolution with the block's stride from its input to its
    output channels, in place of the shortcut (a projection block's shortcut is not used).

    Its one parameter is ``weight`` (out, in, 1, 1), saved as ``<block>.temporal.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(in_channels, out_channels, stride)
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))

    def forward(self, x_prev: Tensor, shortcut: Shortcut) -> Tensor:
        return F.conv2d(x_prev, self.weight, stride=self.stride)

    def reset_parameters(self, init: str) -> None:
        INITS[init](self.weight)

    def extra_repr(self) -> str:
        out_ch, in_ch = self.weight.shape[:2]
        return f"{in_ch}, {out_ch}, kernel_size=1, stride={self.stride}"


class NonlinearSkip(LinearSkip):
    """Eq. 4: ``S(x) = relu(W x)``, the ReLU of :class:`LinearSkip`'s convolution."""

    def forward(self, x_prev: Tensor, shortcut: Shortcut) -> Tensor:
        return F.relu(super().forward(x_prev, shortcut))


@dataclass(frozen=True)
class SkipSpec:
    """A skip type: the module that computes ``S(x_{t-1})`` and how it is initialised."""

    name: str
    """The name ``--skip-type`` takes (a key of :data:`SKIP_TYPES`)."""
    equation: int
    """The paper's equation it implements."""
    module: type[Skip]
    """The :class:`Skip` class: made per block, called by it as ``S(x_prev, shortcut)``; its
    parameters are the block's ``temporal.*``."""
    refused_inits: Mapping[str, str] = field(default_factory=dict)
    """``temporal_init`` values that cannot train this skip, each with the reason."""

    def make(self, in_channels: int, out_channels: int, stride: int, init: str) -> Skip:
        """The skip of one block, its parameters initialised by ``init`` (a key of :data:`INITS`).

        Raises:
            ModelError: an unknown ``init``, or one this skip refuses (the message says why).
        """
        check_init(init)
        if init in self.refused_inits:
            raise ModelError(
                f"temporal_init={init!r} cannot train a {self.name!r} skip: "
                f"{self.refused_inits[init]}"
            )
        skip = self.module(in_channels, out_channels, stride)
        with torch.no_grad():
            skip.reset_parameters(init)
        return skip


#: The registry of skip types, in the paper's order (``--skip-type``'s choices).
SKIP_TYPES: dict[str, SkipSpec] = {}


def register_skip_type(spec: SkipSpec) -> SkipSpec:
    """Add a skip type to :data:`SKIP_TYPES`; a name can be registered once."""
    if spec.name in SKIP_TYPES:
        raise ValueError(f"skip type {spec.name!r} is registered already")
    SKIP_TYPES[spec.name] = spec
    return spec


register_skip_type(SkipSpec("identity", 2, IdentitySkip))
register_skip_type(SkipSpec("linear", 3, LinearSkip))
register_skip_type(
    SkipSpec(
        "nonlinear",
        4,
        NonlinearSkip,
        refused_inits={
            "zero": "relu(W x) with W = 0 has zero gradient. Use temporal_init='kaiming', or "
            "skip_type='linear'."
        },
    )
)


def get_skip_type(name: str) -> SkipSpec:
    """The record of skip type ``name``.

    Raises:
        ModelError: an unknown name (the message lists the registered ones).
    """
    if name not in SKIP_TYPES:
        hint = difflib.get_close_matches(str(name), SKIP_TYPES, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ModelError(f"skip_type must be one of {', '.join(SKIP_TYPES)}, got {name!r}.{extra}")
    return SKIP_TYPES[name]


def check_init(init: str) -> None:
    """Raise :class:`ModelError` unless ``init`` is a key of :data:`INITS`."""
    if init not in INITS:
        raise ModelError(f"temporal_init must be one of {', '.join(INITS)}, got {init!r}")

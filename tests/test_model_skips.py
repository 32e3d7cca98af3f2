"""The skip types: the registry, the modules a block calls, their initialisation, and a new skip
type added as one record (forward, step and forward_video agree; torchvision's weights load)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import rrn.model
from rrn.choices import SkipType, TemporalInit, names
from rrn.model import (
    INITS,
    SKIP_TYPES,
    ModelError,
    Skip,
    SkipSpec,
    TemporalBasicBlock,
    build_model,
    get_skip_type,
)

K, SIZE = 5, 32


def test_the_skip_type_and_init_choices_are_the_registries():
    """--skip-type's and --temporal-init's choices (torch-free Literals) are the registries'."""
    assert names(SkipType) == tuple(SKIP_TYPES) and names(TemporalInit) == tuple(INITS)
    assert all(spec.name == name for name, spec in SKIP_TYPES.items())


def _projection_block() -> TemporalBasicBlock:
    """resnet18's layer4.0: stride 2, 256 -> 512 channels, a projection shortcut."""
    torch.manual_seed(0)
    return build_model("resnet18", K, ()).layer4[0].eval()


@pytest.mark.parametrize("skip_type", SKIP_TYPES)
def test_each_skip_is_the_module_the_block_calls(skip_type):
    """The block hands its skip the previous input and its own shortcut: identity goes through
    the projection (eq. 2), linear / nonlinear use their own strided 1x1 weights (eq. 3, 4)."""
    block = _projection_block()
    block.temporal = get_skip_type(skip_type).make(256, 512, 2, "kaiming")
    x = torch.randn(2, 256, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        term = block.temporal_term(x)
        expected = {
            "identity": lambda: block.downsample(x),
            "linear": lambda: F.conv2d(x, block.temporal.weight, stride=2),
            "nonlinear": lambda: F.relu(F.conv2d(x, block.temporal.weight, stride=2)),
        }[skip_type]()
    assert term.shape == (2, 512, 2, 2) == block(x).shape
    assert_close(term, expected)
    params = dict(block.temporal.named_parameters())
    assert {k: tuple(v.shape) for k, v in params.items()} == (
        {} if skip_type == "identity" else {"weight": (512, 256, 1, 1)}
    )


@pytest.mark.parametrize("skip_type", ["linear", "nonlinear"])
def test_temporal_init_kaiming_is_torchvisions_conv_init(skip_type):
    """kaiming: He normal with fan-out (std sqrt(2 / (512 * 1 * 1))), as torchvision's convs."""
    torch.manual_seed(0)
    w = get_skip_type(skip_type).make(256, 512, 2, "kaiming").weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)
    zero = get_skip_type("linear").make(256, 512, 2, "zero").weight
    assert torch.count_nonzero(zero) == 0


def test_an_init_a_skip_cannot_train_with_is_refused_with_the_reason():
    with pytest.raises(ModelError, match="'nonlinear' skip: relu\\(W x\\) with W = 0 has zero"):
        get_skip_type("nonlinear").make(8, 8, 1, "zero")
    with pytest.raises(ModelError, match="temporal_init must be one of kaiming, zero, got 'ones'"):
        get_skip_type("linear").make(8, 8, 1, "ones")
    assert get_skip_type("identity").make(8, 8, 1, "zero") is not None  # nothing to initialise
    with pytest.raises(ModelError, match="got 'linaer'. Did you mean 'linear'"):
        get_skip_type("linaer")


def test_every_block_is_built_as_a_temporal_block_and_only_skip_blocks_hold_a_skip():
    model = build_model("resnet18", K, ("block1", "block4"), "linear")
    blocks = {
        f"layer{s}.{i}": b
        for s in (1, 2, 3, 4)
        for i, b in enumerate(model.get_submodule(f"layer{s}"))
    }
    assert all(type(b) is TemporalBasicBlock for b in blocks.values())
    assert {p for p, b in blocks.items() if b.temporal is not None} == {"layer1.0", "layer4.1"}


def test_forward_code_never_asks_which_skip_it_has():
    """The skip is injected: no class swapped in place, no type: ignore, and neither the
    network nor the blocks compare the skip type's name."""
    src = Path(rrn.model.__file__).parent
    for path in src.glob("*.py"):
        text = path.read_text()
        assert "__class__ =" not in text and "type: ignore" not in text, path.name
    for name in ("network.py", "blocks.py"):
        text = (src / name).read_text()
        assert not re.search(r"skip_type\s*(==|!=|in\b)", text), name
        assert not any(f'"{t}"' in text for t in SKIP_TYPES), name


class ScaledSkip(Skip):
    """A skip type that is not the paper's: S(x) = a * shortcut(x), one learned scalar."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(in_channels, out_channels, stride)
        self.scale = nn.Parameter(torch.empty(()))

    def reset_parameters(self, init: str) -> None:
        self.scale.fill_(0.0 if init == "zero" else 1.0)

    def forward(self, x_prev, shortcut):
        return self.scale * shortcut(x_prev)


def test_a_new_skip_type_is_one_record(monkeypatch):
    """Registered, it builds, streams and loads torchvision's weights like the paper's three."""
    monkeypatch.setitem(SKIP_TYPES, "scaled", SkipSpec("scaled", 0, ScaledSkip))
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=K).eval()
    model = build_model("resnet18", K, ("block1", "midblock4"), "scaled", tv.state_dict())
    model.eval()
    assert model.info.weights.missing == ("layer1.0.temporal.scale", "layer4.0.temporal.scale")
    assert model.layer1[0].temporal.scale == 1.0  # its own rule for temporal_init="kaiming"
    with torch.no_grad():
        model.layer4[0].temporal.scale.fill_(0.5)
        frames = torch.randn(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
        video = model.forward_video(frames)  # (N, K)
        state, rows = None, []
        for frame in frames:
            logits, state = model.step(frame, state)
            rows.append(logits)
        assert_close(torch.stack(rows), video, atol=1e-5, rtol=1e-4)
        assert_close(model(frames[None]), video[-1:], atol=1e-5, rtol=1e-4)
        assert (video[1:] - tv(frames)[1:]).abs().max() > 1e-3  # the skip changes the output

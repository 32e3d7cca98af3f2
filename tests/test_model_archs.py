"""The architectures: the registry, each entry against torchvision, and where the temporal skips
go (--skip and --context resolved to module paths)."""

import pytest
import torch
from torch.testing import assert_close

from rrn.choices import Arch, names
from rrn.model import ALIASES, ARCHITECTURES, build_model, get_arch, resolve_skip_blocks

K = 5


def test_the_arch_choices_are_the_registry():
    """--arch's choices (a torch-free Literal, so the command line starts without torch) name
    exactly the registered architectures, in order."""
    assert names(Arch) == tuple(ARCHITECTURES)
    assert all(spec.name == name for name, spec in ARCHITECTURES.items())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_is_torchvisions_and_loads_its_state_dict(arch):
    """Built from its record, each network is torchvision's (the same blocks per stage, blocks of
    torchvision's type): torchvision's state dict loads with exactly the temporal tensors
    missing, and with no skips the network computes torchvision's logits."""
    spec = get_arch(arch)
    torch.manual_seed(0)
    tv = spec.builder(num_classes=K).eval()
    assert tuple(len(getattr(tv, f"layer{s}")) for s in (1, 2, 3, 4)) == spec.layers
    assert issubclass(spec.block, type(tv.layer1[0]))
    imagenet = spec.weights.DEFAULT.meta["num_params"]  # the weights `imagenet` loads fit it
    assert imagenet == sum(p.numel() for p in tv.parameters()) + (1000 - K) * (
        tv.fc.in_features + 1
    )
    skips = resolve_skip_blocks(arch, ALIASES)
    model = build_model(arch, K, ALIASES, "linear", weights=tv.state_dict()).eval()
    assert model.info.weights.missing == tuple(f"{p}.temporal.weight" for p in skips)
    own = model.state_dict()
    assert set(own) == set(tv.state_dict()) | set(model.info.weights.missing)
    assert all(torch.equal(own[k], v) for k, v in tv.state_dict().items())
    plain = build_model(arch, K, (), weights=tv.state_dict()).eval()
    clip = torch.randn(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(plain(clip), tv(clip[:, -1]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "model_cfg, expected",
    [
        ({}, ("layer4.1",)),  # default: block4
        ({"context": 3}, ("layer4.0", "layer4.1")),  # the last T-1 blocks
        ({"skip": ("block1", "block4"), "context": 3}, ("layer1.0", "layer4.1")),
        ({"skip": ()}, ()),  # --skip none: a per-frame ResNet
    ],
)
def test_resolve_skips(model_cfg, expected):
    from rrn.config import ModelConfig
    from rrn.model import resolve_skips, skips_for_context

    assert resolve_skips(ModelConfig(arch="resnet18", **model_cfg)) == expected
    if "context" in model_cfg and "skip" not in model_cfg:
        assert expected == skips_for_context("resnet18", 3)


def test_resolve_skips_names_an_unknown_block():
    from rrn.config import ModelConfig
    from rrn.model import resolve_skips

    with pytest.raises(ValueError, match="block9"):
        resolve_skips(ModelConfig(arch="resnet18", skip=("block9",)))

"""Where the temporal skips go: --skip and --context resolved to module paths."""

import pytest


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


def test_the_weights_keywords_are_recognised_in_one_place():
    from rrn.model import weights_keyword

    assert [weights_keyword(v) for v in ("imagenet", "ImageNet", " none ", "", None)] == [
        "imagenet",
        "imagenet",
        "none",
        "none",
        "none",
    ]
    assert weights_keyword("runs/x/last.pt") is None and weights_keyword("imagenet.pth") is None

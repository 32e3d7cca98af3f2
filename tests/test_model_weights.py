"""Initial weights: one resolver and one loader (none, imagenet, a state dict file or in memory,
an rrn checkpoint) under one rule, used by the builder, training and the feature baselines."""

from __future__ import annotations

import pytest
import torch
import torchvision

from rrn.errors import UserError
from rrn.model import (
    WeightsError,
    WeightsReport,
    WeightsSource,
    WeightsUnavailableError,
    build_model,
    load_weights,
    resolve_weights,
    weights_keyword,
)
from runs import save_run

K = 3


def test_the_weights_keywords_are_recognised_in_one_place():
    assert [weights_keyword(v) for v in ("imagenet", "ImageNet", " none ", "", None)] == [
        "imagenet",
        "imagenet",
        "none",
        "none",
        "none",
    ]
    assert weights_keyword("runs/x/last.pt") is None and weights_keyword("imagenet.pth") is None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A torchvision resnet18 state dict file and rrn runs: resnet18 with linear skips at block4
    (3 classes), and a resnet34."""
    tmp = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=K)
    torch.save(tv.state_dict(), tmp / "resnet18.pth")
    r18 = save_run(tmp / "r18", skips=("block4",), skip_type="linear", classes=("a", "b", "c"))
    r34 = save_run(tmp / "r34", arch="resnet34")
    return {"tv": tv, "pth": tmp / "resnet18.pth", "r18": r18 / "last.pt", "r34": r34 / "last.pt"}


def test_resolve_names_what_a_value_is(files, tmp_path):
    assert resolve_weights(None) == resolve_weights("None") == WeightsSource("none")
    assert resolve_weights("IMAGENET") == WeightsSource("imagenet")
    assert resolve_weights(str(files["pth"])) == WeightsSource("state_dict", files["pth"])
    assert resolve_weights(files["r18"]) == WeightsSource("checkpoint", files["r18"])
    given = resolve_weights(files["tv"].state_dict())
    assert given.kind == "state_dict" and given.path is None and str(given) == "a state dict"
    with pytest.raises(WeightsError, match="nope.pth does not exist; pass none, imagenet, a "):
        resolve_weights(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="is a directory; pass a file in it"):
        resolve_weights(files["r18"].parent)
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(WeightsError, match="notes.txt is not a file torch can load safely"):
        resolve_weights(tmp_path / "notes.txt")
    assert issubclass(WeightsError, UserError) and issubclass(WeightsError, ValueError)


def test_a_checkpoint_initialises_another_skip_layout_of_its_architecture(files):
    """Fine-tuning from an rrn checkpoint (linear skip at layer4.1, 3 classes) into identity
    skips at layer1.0 and 7 classes: every shared tensor loads; the classifier stays fresh, the
    checkpoint's skip weight is left out, nothing is new to initialise for identity skips."""
    saved = torch.load(files["r18"], weights_only=True)["model"]
    model = build_model("resnet18", 7, ("block1",), "identity", weights=files["r18"])
    assert model.info.weights == WeightsReport(
        str(files["r18"]),
        missing=(),
        skipped=("fc.weight", "fc.bias"),
        unused=("layer4.1.temporal.weight",),
    )
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in saved.items() if k in own and k[:3] != "fc.")
    linear = build_model("resnet18", K, ("block1", "block4"), "linear", weights=files["r18"])
    assert linear.info.weights.missing == ("layer1.0.temporal.weight",)
    assert torch.equal(linear.layer4[1].temporal.weight, saved["layer4.1.temporal.weight"])
    assert torch.equal(linear.fc.weight, saved["fc.weight"])  # same classes: kept
    assert (
        str(linear.info.weights) == f"weights of {files['r18']} (fresh: layer1.0.temporal.weight)"
    )


def test_a_checkpoint_of_another_architecture_is_refused(files):
    with pytest.raises(WeightsError, match="holds a resnet34, this run builds a resnet18"):
        build_model("resnet18", K, ("block4",), weights=files["r34"])


def test_the_same_rule_refuses_foreign_tensors_from_any_source(files):
    sd = files["tv"].state_dict()
    model = build_model("resnet18", K, ("block4",), "linear")
    with pytest.raises(WeightsError, match=r"1 unexpected \(layer5.0.conv1.weight\)"):
        load_weights(model, {**sd, "layer5.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"1 tensors missing \(layer1.0.bn1.bias\)"):
        load_weights(model, {k: v for k, v in sd.items() if k != "layer1.0.bn1.bias"})
    before = model.conv1.weight.clone()
    with pytest.raises(WeightsError, match="shapes differ for conv1.weight"):
        load_weights(model, {**sd, "conv1.weight": torch.zeros(64, 3, 3, 3)})
    assert torch.equal(model.conv1.weight, before)  # refused before anything was loaded


def test_imagenet_offline_names_the_ways_out(monkeypatch):
    import socket
    import urllib.error

    from torchvision.models import WeightsEnum

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(WeightsUnavailableError) as err:
        build_model("resnet50", K, ("block4",), weights="imagenet")
    message = str(err.value)
    assert "ImageNet weights for resnet50 (" in message and "Name or service not known" in message
    assert "--weights none" in message and "--weights /path/to/resnet50-" in message
    assert "\n" not in message and isinstance(err.value, UserError)


@pytest.mark.parametrize("terminal", [True, False])
def test_the_imagenet_download_shows_a_bar_on_a_terminal_only(monkeypatch, terminal):
    from torchvision.models import WeightsEnum

    import rrn.progress

    asked = []

    def download(self, *args, progress=None, **kwargs):
        asked.append(progress)
        return build_model("resnet18", 1000, ()).state_dict()

    monkeypatch.setattr(WeightsEnum, "get_state_dict", download)
    monkeypatch.setattr(rrn.progress, "on_terminal", lambda: terminal)
    build_model("resnet18", K, ("block4",), weights="imagenet")
    assert asked == [terminal]  # a job's log gets no bar of carriage returns


def test_the_builder_training_and_the_baselines_load_through_the_one_loader(files, monkeypatch):
    """build_model, rrn train's create_model and rrn features' load_feature_model all give their
    weights to rrn.model.weights._fit (here spied on) and agree on the result."""
    from rrn.baselines import load_feature_model
    from rrn.config import TrainConfig
    from rrn.model import weights as weights_module
    from rrn.train.builders import create_model

    seen, fit = [], weights_module._fit
    monkeypatch.setattr(
        weights_module,
        "_fit",
        lambda model, state, source: seen.append(source) or fit(model, state, source),
    )
    pth = str(files["pth"])
    built = build_model("resnet18", 1000, (), weights=pth)
    cfg = TrainConfig().replace(model={"arch": "resnet18", "skip": (), "weights": pth})
    trained, note = create_model(cfg, 1000)
    features = load_feature_model(pth, "resnet18")
    assert seen == [pth, pth, pth] and note == f"weights of {pth} (fresh: fc.weight, fc.bias)"
    loaded = {k: v for k, v in built.state_dict().items() if k[:3] != "fc."}  # fc: fresh
    for model in (trained, features):
        assert model.info.weights == built.info.weights
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.items())
    resumed, note = create_model(cfg, 1000, resuming=True)  # last.pt goes over it: no weights
    assert seen == [pth, pth, pth] and note == "resumed"
    assert resumed.info.weights == WeightsReport()

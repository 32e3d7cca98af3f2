"""model.info: one record of what a model knows about itself, set where the model is made (the
builder, load_model) and read everywhere else through read-only properties."""

from __future__ import annotations

import dataclasses

import pytest

from rrn.checkpoint import checkpoint_choice, load_checkpoint, load_model
from rrn.model import ModelInfo, WeightsReport, build_model
from runs import save_run

READ = ("arch", "skip_blocks", "skip_type", "temporal_context", "classes", "inputs")
READ += ("train_config", "checkpoint", "choice", "config")


def test_a_built_model_describes_its_architecture_and_weights():
    model = build_model("resnet18", 4, "block4, block1", "linear")
    assert model.info == ModelInfo("resnet18", ("layer1.0", "layer4.1"), "linear", WeightsReport())
    assert (model.arch, model.skip_blocks, model.skip_type) == (
        "resnet18",
        model.info.skip_blocks,
        "linear",
    )
    assert model.temporal_context == model.info.temporal_context == 3
    assert model.classes is model.inputs is model.checkpoint is model.choice is None
    assert model.config == {
        "arch": "resnet18",
        "num_classes": 4,
        "skip_blocks": ["layer1.0", "layer4.1"],
        "skip_type": "linear",
    }
    assert build_model(**model.config).info == model.info


def test_load_model_describes_the_checkpoint_in_the_record(tmp_path):
    run = save_run(tmp_path / "run", skips=("block4",), frame_size=32, sample_every=2)
    model = load_model(run)
    path = run / "last.pt"
    info = model.info
    assert (info.arch, info.skip_blocks, info.skip_type) == ("resnet18", ("layer4.1",), "identity")
    assert info.weights == WeightsReport(str(path)) and info.checkpoint == path
    assert info.classes == ("A", "B", "C") and model.classes == ["A", "B", "C"]
    assert info.inputs.frame_size == 32 and info.inputs.sampling.sample_every == 2
    assert info.train_config.data.frame_size == 32
    assert info.choice == checkpoint_choice(path, load_checkpoint(path)) == model.choice
    assert model.inputs is info.inputs and model.train_config is info.train_config
    assert model.checkpoint == path and model.temporal_context == 2


@pytest.mark.parametrize("name", READ)
def test_the_description_is_read_only_on_the_model(name):
    model = build_model("resnet18", 2, ())
    with pytest.raises(AttributeError):
        setattr(model, name, getattr(model, name))


def test_a_new_description_is_a_new_record(tmp_path):
    """To describe a model otherwise, give it a new record: every reader sees it."""
    model = load_model(save_run(tmp_path / "run", frame_size=32))
    before = model.info
    model.info = dataclasses.replace(before, classes=("x", "y", "z"))
    assert model.classes == ["x", "y", "z"] and before.classes == ("A", "B", "C")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.info.classes = ("a",)

"""Checkpoints: atomic writes, weights_only loading, run-directory lookup."""

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from rrn.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
    unwrap,
)
from rrn.config import TrainConfig
from rrn.files import atomic_save, check_writable


class Tiny(nn.Module):
    def __init__(self, k=3):
        super().__init__()
        self.fc = nn.Linear(4, k)
        self.bn = nn.BatchNorm1d(4)
        self.config = {"arch": "tiny", "num_classes": k, "skip_blocks": ("layer4.2",)}


def test_checkpoint_loads_with_weights_only(tmp_path):
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.fc(torch.randn(2, 4)).sum().backward()
    opt.step()
    ckpt = make_checkpoint(
        model,
        config=TrainConfig().to_dict(),
        classes=["a", "b", "c"],
        optimizer=opt,
        progress={"epoch": 1, "step_in_epoch": 3},
        metrics={"loss": 0.5},
    )
    path = save_checkpoint(tmp_path / "last.pt", ckpt)
    # the contract: plain torch.load with weights_only=True works
    raw = torch.load(path, weights_only=True)
    assert raw["classes"] == ["a", "b", "c"]
    loaded = load_checkpoint(path)
    assert loaded["model_config"]["skip_blocks"] == ["layer4.2"]
    assert TrainConfig.from_dict(loaded["config"]) == TrainConfig()
    for k, v in model.state_dict().items():
        assert torch.equal(loaded["model"][k], v)
    opt2 = torch.optim.Adam(Tiny().parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp file left


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"x": torch.ones(2)}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save({"x": Boom()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(2))
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_load_rejects_foreign_files(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an rrn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_folder_holding_half_a_package_or_score_folder_is_told_what_it_lacks(tmp_path):
    with pytest.raises(CheckpointError) as plain:
        find_checkpoint(tmp_path)
    assert str(plain.value).endswith("or a checkpoint file")
    (tmp_path / "video_1.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="as a score folder it lacks scores.json"):
        find_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="as a package folder it lacks config.json"):
        find_checkpoint(tmp_path)


def test_find_checkpoint_takes_best_only_when_a_validation_split_chose_it(tmp_path):
    with pytest.raises(CheckpointError, match="without last.pt"):
        find_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="without best.pt or last.pt"):
        find_checkpoint(tmp_path, "best")
    (tmp_path / "last.pt").write_bytes(b"")
    assert find_checkpoint(tmp_path).name == "last.pt"
    (tmp_path / "best.pt").write_bytes(b"")
    assert (
        find_checkpoint(tmp_path).name == "last.pt"
    )  # no config: nothing says how best.pt was chosen
    (tmp_path / "config.yaml").write_text("data:\n  val_fraction: 0.0\nrun:\n  val_every: 1\n")
    assert find_checkpoint(tmp_path).name == "last.pt"  # chosen on the test split: never by default
    assert find_checkpoint(tmp_path, "best").name == "best.pt"  # unless asked for
    (tmp_path / "config.yaml").write_text("data:\n  val_fraction: 0.1\n")
    assert find_checkpoint(tmp_path).name == "best.pt"  # chosen on a validation split
    assert find_checkpoint(tmp_path, "last").name == "last.pt"
    assert find_checkpoint(tmp_path / "best.pt").name == "best.pt"


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write to the output directory"):
        check_writable(blocker / "run")


def test_unwrap():
    inner = Tiny()
    wrapper = nn.Module()
    wrapper.module = inner
    assert unwrap(wrapper) is inner


# ------------------------------------------------------------- checkpoints of earlier rrn versions
OLD_KEYS = Path(__file__).parent / "fixtures" / "state_dict_keys_8f5747d.json"
OLD_MODELS = json.loads(OLD_KEYS.read_text())["models"]


@pytest.mark.parametrize(
    "old",
    OLD_MODELS,
    ids=[f"{m['model_config']['arch']}-{m['model_config']['skip_type']}" for m in OLD_MODELS],
)
def test_a_checkpoint_written_before_the_skip_registry_still_loads(old, tmp_path):
    """The fixture holds the model description and every state-dict name and shape that rrn
    wrote at 8f5747d (temporal skips swapped in by class, before the skip-type registry), for
    each skip type at block1, midblock4 and block4: a checkpoint with exactly those tensors
    loads into today's model, every tensor where it was."""
    from rrn.checkpoint import FORMAT, load_model

    g = torch.Generator().manual_seed(0)
    state = {
        k: torch.zeros((), dtype=torch.long)
        if k.endswith("num_batches_tracked")
        else torch.randn(shape, generator=g)
        for k, shape in old["state"].items()
    }
    classes = [f"c{k}" for k in range(old["model_config"]["num_classes"])]
    ckpt = {
        "format": FORMAT,
        "version": 1,
        "model": state,
        "model_config": old["model_config"],
        "config": TrainConfig().to_dict(),
        "classes": classes,
    }
    save_checkpoint(tmp_path / "last.pt", ckpt)
    model = load_model(tmp_path)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == old["state"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.config == old["model_config"] and model.classes == classes

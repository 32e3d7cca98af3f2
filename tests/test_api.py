"""The public Python API: rrn.load_model gives a trained model with everything needed to use it."""

import numpy as np
import pytest
import torch

import rrn
from rrn.checkpoint import CheckpointError, make_checkpoint, save_checkpoint
from rrn.config import resolve_config
from rrn.data import ClipTransform, Sampling, decode_video


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth):
    folder = tmp_path_factory.mktemp("api") / "run"
    cfg = resolve_config(
        [
            (
                "flags",
                {
                    "data": {"data_root": str(synth), "frame_size": 32, "sample_every": 2},
                    "model": {"arch": "resnet18", "skip": ["layer4.1"], "context": 2},
                },
            )
        ]
    )
    for name, seed in (("last.pt", 0), ("best.pt", 1)):
        torch.manual_seed(seed)
        model = rrn.build_model("resnet18", num_classes=2, skip_blocks=("block4",))
        save_checkpoint(
            folder / name,
            make_checkpoint(model, config=cfg.to_dict(), classes=["MoveRight", "MoveLeft"]),
        )
    return folder


def test_load_model_returns_the_trained_model_with_its_inputs(run):
    model = rrn.load_model(run)
    assert isinstance(model, rrn.RecurrentResNet) and not model.training
    assert model.checkpoint == run / "last.pt"  # last by default: never a test-selected file
    assert model.classes == ["MoveRight", "MoveLeft"] and model.temporal_context == 2
    assert model.inputs.frame_size == 32
    assert model.inputs.sampling == Sampling(sample_every=2, short_side=37)  # round(32 * 8 / 7)
    assert model.train_config.model.arch == "resnet18"
    saved = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert rrn.load_model(run, which="best").checkpoint == run / "best.pt"
    assert rrn.load_model(run / "best.pt").checkpoint == run / "best.pt"


def test_loaded_inputs_preprocess_as_evaluation_does(run, synth):
    model = rrn.load_model(run)
    video = sorted(synth.glob("*/*.avi"))[0]
    s = model.inputs.sampling
    frames = decode_video(video, Sampling(sample_every=s.sample_every, short_side=s.short_side))
    x = model.inputs.transform()(frames)  # (N, 3, 32, 32)
    torch.testing.assert_close(x, ClipTransform(32, train=False)(frames))
    with torch.no_grad():
        per_frame = model.forward_video(x)
    assert per_frame.shape == (len(frames), 2)
    spec = model.inputs.to_dict()
    assert spec["mean"] == pytest.approx([0.485, 0.456, 0.406]) and spec["sample_every"] == 2
    assert np.isfinite(per_frame.numpy()).all()


def test_load_model_errors_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        rrn.load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="without last.pt"):
        rrn.load_model(tmp_path / "empty")


def test_the_command_line_sets_passive_openmp_waiting_before_torch_loads():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, sys, rrn.cli; print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "PASSIVE"], out.stderr
    code = "import os, rrn.cli; print(os.environ['OMP_WAIT_POLICY'])"  # a user's choice wins
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "ACTIVE"

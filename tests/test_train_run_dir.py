"""The run folder: resume/overwrite policy, the log."""

import pytest
import torch

from rrn.train import (
    RunState,
)
from train_helpers import ClipNet


def test_run_dir_policy(tmp_path):
    from rrn.checkpoint import LAST
    from rrn.config import TrainConfig
    from rrn.train import RunDir

    run = RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    assert run.resumed is None and run.path.is_dir()
    model = ClipNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    run.start(TrainConfig(), ["a", "b"], {"note": 1})
    state = RunState(steps_per_epoch=4, epoch=1, step_in_epoch=2, global_step=6)
    run.save(LAST, model, opt, scaler, state)
    run.close()
    with pytest.raises(FileNotFoundError, match="--resume"):
        RunDir.open(tmp_path / "empty", resume=True, overwrite=False)
    (tmp_path / "r" / "best.pt").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    resumed = RunDir.open(tmp_path / "r", resume=True, overwrite=False)
    assert resumed.restore(opt, scaler, 4, 1) == state
    with pytest.raises(ValueError, match="4 steps per epoch"):
        resumed.restore(opt, scaler, 5, 1)
    with pytest.raises(ValueError, match="classes"):
        resumed.check_resume(TrainConfig(), ["a", "c"])
    resumed.close()
    fresh = RunDir.open(tmp_path / "r", resume=False, overwrite=True)
    fresh.start(TrainConfig(), ["a", "b"], {})
    assert not (tmp_path / "r" / "best.pt").exists()  # nothing of the replaced run survives
    fresh.close()
    # other ranks write nothing
    quiet = RunDir(tmp_path / "q", is_main=False)
    quiet.start(TrainConfig(), ["a"], {})
    quiet.save(LAST, model, opt, scaler, state)
    quiet.log({"kind": "x"})
    assert list((tmp_path / "q").iterdir()) == []


def test_the_run_log_is_strict_json_when_a_number_is_not_finite(tmp_path):
    import json

    from rrn.config import TrainConfig
    from rrn.files import json_text
    from rrn.train import RunDir

    def refuse(constant):  # what jq, JavaScript and strict JSON libraries do with NaN / Infinity
        raise ValueError(constant)

    record = {"loss": float("nan"), "acc": [0.5, float("inf")], "n": 3, "ok": True}
    assert json.loads(json_text(record), parse_constant=refuse) == {
        "loss": None,
        "acc": [0.5, None],
        "n": 3,
        "ok": True,
    }
    run = RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    run.start(TrainConfig(), ["a", "b"], {"val_loss": float("nan")})
    run.log({"kind": "epoch", "epoch": 1, "train_loss": float("-inf")})
    run.close()
    lines = [
        json.loads(line, parse_constant=refuse) for line in (tmp_path / "r" / "log.jsonl").open()
    ]
    assert lines[0]["val_loss"] is None and lines[1]["train_loss"] is None

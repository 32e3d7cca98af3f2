"""rrn train on untrimmed videos (`rrn synth --layout thumos14`): chunks labelled by their last
frame, the soft-target loss on multi-hot targets, exact mid-epoch resume, the frame cache,
--weights from a recognition run, and the settings refused for temporal datasets."""

import json
import shlex

import pytest
import torch
import torch.nn.functional as F

from faults import CrashAfter, SimulatedCrash
from processes import torchrun_two
from rrn.cli import main
from rrn.config import ConfigError, resolve_config
from rrn.data import make_synthetic_dataset
from rrn.train import fit
from rrn.train.step import chunk_loss_sum, chunks_correct
from runs import save_run, tiny_train_flags
from runs import train_config as config_of

TINY = [
    *tiny_train_flags(sample_every=2, update_chunks=4),
    "--seconds-per-chunk",
    "0.5",
    "--lr",
    "1e-3",
]


@pytest.fixture(scope="module")
def thumos(tmp_path_factory):
    """2 train + 2 untrimmed test videos of ~2.6 s at 25 frames/s, 32 px, cached."""
    out = make_synthetic_dataset(
        tmp_path_factory.mktemp("thumos"),
        classes=2,
        videos_per_class=4,
        frames=6,
        size=32,
        layout="thumos14",
    )
    flags = shlex.split(json.loads((out / "rrn_synth.json").read_text())["flags"])
    cache = ["--frame-size", "32", "--sample-every", "2", "--workers", "1", "--no-progress"]
    assert main(["cache", *flags, *cache]) == 0
    return flags


def argv(flags, out, *extra):
    return ["train", *flags, *TINY, "--out", str(out), *extra]


def test_a_detection_run_trains_background_and_the_actions_and_resumes_exactly(
    thumos, tmp_path, capsys
):
    common = ["--epochs", "2", "--val-every", "0"]
    assert main(argv(thumos, tmp_path / "a", *common)) == 0
    text = capsys.readouterr().out
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    start = log[0]
    per_epoch, chunks = start["steps_per_epoch"], start["train_chunks"]
    assert "3 classes" in text and start["test_videos"] == 2 and start["selection"]
    assert per_epoch == -(-chunks // 4) >= 3, "the resume test needs 3+ steps per epoch"
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert [e["train_chunks"] for e in epochs] == [chunks, chunks]
    assert all(0 <= e["train_acc"] <= 1 and e["train_loss"] > 0 for e in epochs)
    ckpt = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert ckpt["classes"] == ["Background", "MoveLeft", "MoveRight"]
    assert ckpt["config"]["data"]["background_fraction"] == 0.5

    # killed one step after a mid-epoch checkpoint of epoch 2; resumed: the same weights
    every = ["--checkpoint-every", str(per_epoch + 2)]
    with pytest.raises(SimulatedCrash):
        fit(
            config_of(argv(thumos, tmp_path / "b", *common, *every)),
            hooks=[CrashAfter(per_epoch + 3)],
        )
    killed = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["progress"]
    assert (killed["epoch"], killed["step_in_epoch"]) == (1, 2)
    assert main(["train", "--out", str(tmp_path / "b"), "--resume", "--no-progress"]) == 0
    a = ckpt["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for key, value in a.items():
        assert torch.equal(value, b["model"][key]), key
    assert (
        b["progress"]["history"][-1]["train_loss"] == ckpt["progress"]["history"][-1]["train_loss"]
    )


def test_weights_of_a_recognition_run_load_with_a_fresh_classifier(thumos, tmp_path):
    from rrn.train.builders import create_model, with_resolved_skips

    # a recognition run of three classes: the size of Background + MoveLeft + MoveRight
    recognition = save_run(tmp_path / "ucf", classes=("A", "B", "C"))
    cfg = with_resolved_skips(
        config_of(argv(thumos, tmp_path / "run", "--weights", str(recognition / "last.pt")))
    )
    classes = ["Background", "MoveLeft", "MoveRight"]
    model, note = create_model(cfg, 3, classes=classes)
    saved = torch.load(recognition / "last.pt", weights_only=True)["model"]
    assert torch.equal(model.state_dict()["conv1.weight"], saved["conv1.weight"])
    assert not torch.equal(model.state_dict()["fc.weight"], saved["fc.weight"])
    assert "classifier re-initialised" in note
    same, note = create_model(cfg, 3, classes=["A", "B", "C"])  # its own classes: all of it
    assert torch.equal(same.state_dict()["fc.weight"], saved["fc.weight"])
    assert "re-initialised" not in note


@pytest.mark.parametrize("flag", [["--val-fraction", "0.3"], ["--watch-test"]])
def test_evaluation_during_training_is_refused_for_untrimmed_videos(flag, tmp_path):
    with pytest.raises(ConfigError, match=f"{flag[0]} with --dataset thumos14: .*per frame"):
        config_of(["train", "--dataset", "thumos14", "--data-root", str(tmp_path), *flag])
    data = {"dataset": "thumos14", "background_fraction": "none"}
    assert resolve_config([("flags", {"data": data})]).data.background_fraction is None
    with pytest.raises(ConfigError, match="--background-fraction must be in 0..1"):
        resolve_config([("flags", {"data": {"background_fraction": 1.5}})])


def test_the_loss_reads_a_multi_hot_target_as_a_distribution():
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, 0.3]])
    target = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0]])  # Background; Diving + CliffDiving
    log_p = F.log_softmax(logits, 1)
    want = -log_p[0, 0] - 0.5 * (log_p[1, 1] + log_p[1, 2])
    assert chunk_loss_sum(logits, target).item() == pytest.approx(want.item(), rel=1e-6)
    # a one-hot target is the usual cross-entropy of its class
    hard = torch.tensor([0, 2])
    assert chunk_loss_sum(logits, F.one_hot(hard, 4).float()).item() == pytest.approx(
        chunk_loss_sum(logits, hard).item(), rel=1e-6
    )
    # correct when the top class is one of the frame's classes
    assert chunks_correct(logits, target).item() == 2
    assert chunks_correct(logits, torch.tensor([[0.0, 1, 0, 0], [0, 1, 0, 0]])).item() == 0


DDP_SCRIPT = r"""
import os, sys, torch
from rrn.config import resolve_config
from rrn.train import fit

data, ann, out = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(1)
cfg = resolve_config([("flags", {
    "data": {"dataset": "thumos14", "data_root": data, "split_dir": ann, "frame_size": 32,
             "sample_every": 2, "hflip": False, "seconds_per_chunk": 0.5},
    "model": {"arch": "resnet18", "skip": "block4", "weights": "none"},
    "optim": {"epochs": 1, "batch_size": 2, "update_chunks": 4, "lr": 1e-3},
    "run": {"out": out, "workers": 0, "progress": False, "device": "cpu", "val_every": 0},
})])
result = fit(cfg)
torch.save(result["model"].state_dict(), os.path.join(out, "rank%s.state" % os.environ["RANK"]))
"""


def test_two_ddp_processes_train_one_detection_model(thumos, tmp_path):
    """torchrun with 2 CPU processes (gloo): the ranks split the epoch's chunks and end with
    identical weights; rank 0 writes the one checkpoint."""

    data, ann = thumos[thumos.index("--data-root") + 1], thumos[thumos.index("--split-dir") + 1]
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "run"
    torchrun_two(str(script), data, ann, str(out))
    rank0 = torch.load(out / "rank0.state", weights_only=True)
    rank1 = torch.load(out / "rank1.state", weights_only=True)
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    chunks = log[0]["train_chunks"]
    steps = [r for r in log if r["kind"] == "step"]
    assert log[0]["world_size"] == 2 and sum(s["chunks"] for s in steps) == chunks + chunks % 2
    last = torch.load(out / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, last[k]) for k, v in rank0.items())


def test_training_warns_of_intervals_that_teach_nothing(thumos, tmp_path, logs_warning):
    """An interval that ends before it starts labels no frame: rrn train says so (and where
    rrn check-data lists them all), and trains on."""
    import shutil
    from pathlib import Path

    from rrn.train.builders import create_datasets

    ann = Path(thumos[thumos.index("--split-dir") + 1])
    copy = shutil.copytree(ann, tmp_path / "annotations")
    val = sorted(copy.rglob("*_val.txt"))[0]
    video = val.read_text().split()[0]
    with val.open("a") as f:
        f.write(f"{video} 2.0 1.5\n")
    flags = [*thumos]
    flags[flags.index("--split-dir") + 1] = str(copy)
    cfg = config_of(argv(flags, tmp_path / "run"))
    with logs_warning(
        rf"1 annotation problem: {video}: interval 2-1.5 s at .*{val.name}:\d+ does not end "
        r"after it starts.*rrn check-data with the same --dataset, --data-root and --split-dir"
    ):
        datasets = create_datasets(cfg, cfg.data.load_split(), 2)
    assert len(datasets.train) > 0

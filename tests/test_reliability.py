"""Numbers that can be trusted and runs that survive (issue 11): validation-only selection,
signals, the run lock, what a killed run leaves, log consistency, BatchNorm with one chunk,
errors for people and file permissions."""

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from faults import CrashAfter, SimulatedCrash
from rrn.cli import main
from rrn.data import load_split, make_synthetic_dataset
from rrn.data.holdout import carve_validation, group_of
from rrn.train import Hook, TrainingStopped, fit
from runs import tiny_train_argv as argv
from runs import train_config as config_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    # 2 classes x 8 videos of 8 frames at 32 px: 4 groups per class, 3 of them for training
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), classes=2, videos_per_class=8, frames=8, size=32, seed=0
    )


def weights(run):
    return torch.load(Path(run) / "last.pt", weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


@pytest.fixture(scope="module")
def reference(synth, tmp_path_factory):
    """An uninterrupted 2-epoch run: what every interrupted and resumed run must end with."""
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main(argv(synth, run, "--epochs", "2", "--val-every", "0")) == 0
    return run


# ------------------------------------------------------------------ 1. no test-split selection
def test_validation_is_carved_by_group_and_chooses_best(synth, tmp_path, capsys):
    split = load_split("ucf101", synth, synth, 1)
    train, val = carve_validation(split.train, 0.3, seed=0)
    assert {group_of(r) for r in train}.isdisjoint({group_of(r) for r in val})
    assert {r.label for r in val} == {0, 1} and len(train) + len(val) == len(split.train)
    assert carve_validation(split.train, 0.3, seed=0) == (train, val)  # pure
    run = tmp_path / "val"
    assert main(argv(synth, run, "--epochs", "2", "--val-fraction", "0.3")) == 0
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert log[0]["val_videos"] == len(val) and log[0]["train_chunks"] == len(train)
    assert "validation videos held out by group" in log[0]["selection"]
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert all(e["val_videos"] == len(val) for e in epochs) and not any(
        "test_video_top1" in e for e in epochs
    )
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["selection"] == "validation"
    capsys.readouterr()
    # rrn eval RUN takes best.pt here: a validation split chose it
    assert main(["eval", str(run), "--workers", "0", "--no-progress"]) == 0
    result = json.loads((run / "eval_split1.json").read_text())
    assert result["checkpoint"] == str(run / "best.pt")
    assert result["checkpoint_choice"]["chosen_by"] == "validation"
    assert "test split played no part" in result["checkpoint_choice"]["description"]


def test_an_old_test_selected_best_is_not_evaluated_by_default(synth, reference, tmp_path, capsys):
    run = tmp_path / "old"
    run.mkdir()
    ckpt = torch.load(reference / "last.pt", weights_only=True)
    ckpt["config"]["run"]["val_every"] = 1  # how runs were configured before
    del ckpt["selection"]  # and they did not record how best.pt was chosen
    torch.save(ckpt, run / "best.pt")
    torch.save(ckpt, run / "last.pt")
    (run / "config.yaml").write_text((reference / "config.yaml").read_text())
    assert main(["eval", str(run), "--workers", "0", "--no-progress"]) == 0
    assert json.loads((run / "eval_split1.json").read_text())["checkpoint"] == str(run / "last.pt")
    assert "warning" not in capsys.readouterr().err
    # asked for explicitly, it is evaluated, and the output says how it was chosen
    assert main(["eval", str(run), "--which", "best", "--workers", "0", "--no-progress"]) == 0
    assert "ON THE TEST SPLIT" in capsys.readouterr().err
    choice = json.loads((run / "eval_split1.json").read_text())["checkpoint_choice"]
    assert choice["chosen_by"] == "test" and choice["file"] == str(run / "best.pt")


def test_watching_the_test_split_never_selects(synth, tmp_path):
    run = tmp_path / "watch"
    assert main(argv(synth, run, "--epochs", "2", "--watch-test")) == 0
    epochs = [
        json.loads(x)
        for x in (run / "log.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "epoch"
    ]
    assert all("test_video_top1" in e and "val_video_top1" not in e for e in epochs)
    assert not (run / "best.pt").exists() and not any(e["best"] for e in epochs)


# ------------------------------------------------------------------------------ 2. signals
class SignalAfter(Hook):
    """Send ``signum`` to this process after optimiser step ``step`` (as a scheduler would)."""

    def __init__(self, signum, step):
        self.signum, self.step = signum, step

    def after_step(self, state):
        if state.global_step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(
    "signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGUSR1, 138)]
)
def test_a_signal_stops_at_the_step_and_resume_is_exact(synth, reference, tmp_path, signum, code):
    run = tmp_path / "sig"
    cfg = config_of(
        argv(synth, run, "--epochs", "2", "--val-every", "0", "--checkpoint-every", "0")
    )
    with pytest.raises(TrainingStopped) as stopped:
        fit(cfg, hooks=[SignalAfter(signum, 3)])  # arrives during step 4: step 4 is finished
    assert stopped.value.exit_code == code and stopped.value.global_step == 4
    progress = torch.load(run / "last.pt", weights_only=True)["progress"]
    assert progress["global_step"] == 4  # written on the signal, though --checkpoint-every 0
    assert signal.getsignal(signum) is not None and signal.getsignal(signum) != fit  # restored
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert_same_weights(weights(run), weights(reference))


def test_sigterm_to_a_real_run_with_loader_workers(synth, reference, tmp_path):
    """A separate process with 2 DataLoader workers, signalled like a batch scheduler does."""
    run = tmp_path / "proc"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "rrn", *argv(synth, run, "--epochs", "2", "--val-every", "0")]
    cmd[cmd.index("--workers") + 1] = "2"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "log.jsonl"

    def stepped() -> bool:  # the state the signal needs: a step done, its record written
        return log.exists() and '"kind": "step"' in log.read_text()

    try:
        deadline = time.monotonic() + 300
        while not stepped() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert stepped(), "no step within 300 s"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    assert torch.load(run / "last.pt", weights_only=True)["progress"]["global_step"] >= 1
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert_same_weights(weights(run), weights(reference))


# ------------------------------------------------------------------- 2. lock, temporaries, log
HOLD = (
    "import sys, time; from rrn.train.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(600)"
)


def test_a_second_run_into_a_held_folder_is_refused_and_a_dead_holder_is_not(
    synth, tmp_path, capsys
):
    run = tmp_path / "locked"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(argv(synth, run, "--epochs", "1", "--val-every", "0")) == 2
        err = capsys.readouterr().err
        assert f"is in use by another rrn train (pid {holder.pid}" in err and "another --out" in err
        assert not (run / "last.pt").exists()
    finally:
        holder.kill()  # kill -9: the lock dies with its process
        holder.wait()
    assert main(argv(synth, run, "--epochs", "1", "--val-every", "0")) == 0


def test_a_killed_run_leaves_nothing_behind_and_its_log_is_consistent(synth, reference, tmp_path):
    run = tmp_path / "killed"
    cfg = config_of(
        argv(synth, run, "--epochs", "2", "--val-every", "0", "--checkpoint-every", "2")
    )
    with pytest.raises(SimulatedCrash):
        fit(cfg, hooks=[CrashAfter(5)])  # last.pt at step 4; the log has step 5 too
    (run / ".last.pt.x1y2.tmp").write_bytes(b"\0" * 4096)  # a checkpoint write cut by kill -9
    with open(run / "log.jsonl", "a") as fh:
        fh.write('{"kind": "step", "global_st')  # a log line cut by kill -9
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert not list(run.glob(".*.tmp"))
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]  # all parse
    steps = [r["global_step"] for r in records if r["kind"] == "step"]
    total = torch.load(run / "last.pt", weights_only=True)["progress"]["global_step"]
    assert steps == list(range(1, total + 1))  # every step once, none lost, none twice
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
    assert [r["kind"] for r in records].count("resume") == 1
    assert_same_weights(weights(run), weights(reference))


# ------------------------------------------------------------- 3. BatchNorm with one chunk
def test_a_micro_batch_of_one_chunk_at_32_px_trains(synth, tmp_path):
    # layer4 of a 32 px frame is 1x1: one chunk leaves BatchNorm one value per channel
    run = tmp_path / "one"
    args = argv(synth, run, "--epochs", "1", "--val-every", "0")
    args[args.index("--batch-size") + 1] = "1"
    assert main(args) == 0
    assert torch.load(run / "last.pt", weights_only=True)["progress"]["epoch"] == 1


def test_a_skipped_video_leaving_one_chunk_at_32_px_trains(synth, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth, data)
    victim = load_split("ucf101", data, data, 1).train[0]
    victim.path.write_bytes(b"not a video")
    assert main(argv(data, tmp_path / "run", "--epochs", "1", "--val-every", "0")) == 0
    assert f"rrn: warning: skipping video {victim.video_id}: " in capsys.readouterr().err


# ---------------------------------------------------------------- 4. errors for people
def test_a_full_disk_while_writing_a_checkpoint(synth, reference, tmp_path, capsys, monkeypatch):
    import rrn.checkpoint

    run = tmp_path / "full"
    assert main(argv(synth, run, "--epochs", "1", "--val-every", "0")) == 0
    before = (run / "last.pt").read_bytes()
    real = torch.save

    def full_disk(obj, fh, *a, **k):
        real(obj, fh, *a, **k)  # the bytes are written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rrn.checkpoint.torch, "save", full_disk)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 2
    err = [x for x in capsys.readouterr().err.strip().splitlines() if "changed setting" not in x]
    assert len(err) == 1 and "No space left on device" in err[0]
    assert f"cannot write {run / 'last.pt'}" in err[0] and "previous last.pt is intact" in err[0]
    assert (run / "last.pt").read_bytes() == before and not list(run.glob(".*.tmp"))


def test_eval_into_an_unwritable_folder_fails_before_evaluating(
    reference, tmp_path, capsys, monkeypatch
):
    import rrn.evaluation

    monkeypatch.setattr(rrn.evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated first"))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert (
        main(
            [
                "eval",
                str(reference),
                "--out",
                str(blocker / "out"),
                "--workers",
                "0",
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot write to the output directory" in err and str(blocker / "out") in err


def test_weights_that_are_not_a_checkpoint(synth, tmp_path, capsys):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are not weights")
    args = argv(synth, tmp_path / "r", "--epochs", "1")
    args[args.index("--weights") + 1] = str(bogus)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bogus) in err and "state dict" in err
    assert "Traceback" not in err


def test_resume_with_another_architecture(synth, reference, tmp_path, capsys):
    import shutil

    run = tmp_path / "arch"
    shutil.copytree(reference, run)
    assert (
        main(["train", "--out", str(run), "--resume", "--arch", "resnet34", "--epochs", "3"]) == 2
    )
    err = capsys.readouterr().err
    assert "--arch resnet18 -> resnet34" in err and f"--weights {run / 'last.pt'}" in err


def test_a_class_mismatch_names_the_first_difference():
    from rrn.evaluation import class_difference

    assert (
        class_difference(["a", "b", "c"], ["a", "c", "b"])
        == "class 1 is 'b' in the checkpoint, 'c' in the data"
    )
    assert class_difference(["a", "b"], ["a", "b", "c"]) == "2 classes vs 3"


def test_a_checkpoint_whose_config_disagrees_with_its_weights(reference, tmp_path, capsys):
    ckpt = torch.load(reference / "last.pt", weights_only=True)
    ckpt["model_config"]["arch"] = "resnet50"  # crafted: says resnet50, holds resnet18 weights
    torch.save(ckpt, tmp_path / "crafted.pt")
    assert main(["eval", str(tmp_path / "crafted.pt"), "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weights do not match the model it describes" in err
    video = next(Path(ckpt["config"]["data"]["data_root"]).glob("*/*.avi"))
    assert main(["predict", str(tmp_path / "crafted.pt"), str(video)]) == 2


def test_resuming_a_crafted_checkpoint_is_one_line(reference, tmp_path, capsys):
    import shutil

    run = tmp_path / "crafted"
    shutil.copytree(reference, run)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    ckpt["model_config"]["arch"] = ckpt["config"]["model"]["arch"] = (
        "resnet34"  # resnet18 weights inside
    )
    torch.save(ckpt, run / "last.pt")
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "Traceback" not in err and err.count("error:") == 1
    )  # the other lines: the changed settings
    assert (
        f"--resume: {run / 'last.pt'}: its weights do not match the model it describes"
        in err.splitlines()[-1]
    )


def test_weights_of_another_architecture_are_refused(synth, tmp_path, capsys):
    from runs import save_run

    other = save_run(tmp_path / "r34", arch="resnet34", classes=("MoveRight", "MoveLeft"))
    args = argv(synth, tmp_path / "r", "--epochs", "1", "--val-every", "0")
    args[args.index("--weights") + 1] = str(other / "last.pt")  # resnet18's tensors all exist in it
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a resnet34, this run builds a resnet18" in err and "--arch resnet34" in err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_resume_cannot_change_which_videos_are_held_out(synth, reference, tmp_path, capsys):
    import shutil

    run = tmp_path / "val"
    shutil.copytree(reference, run)  # trained on every training video (no --val-fraction)
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--resume",
                "--epochs",
                "3",
                "--val-fraction",
                "0.25",
                "--val-every",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--val-fraction 0.0 -> 0.25" in err and "--weights" in err


def test_resuming_a_finished_run_writes_nothing(synth, reference, tmp_path, capsys):
    import shutil

    run = tmp_path / "done"
    shutil.copytree(reference, run)  # 2 epochs, finished
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".rrn-lock"}
    assert (
        main(
            [
                "train",
                "--out",
                str(run),
                "--resume",
                "--epochs",
                "2",
                "--lr",
                "0.5",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "already finished 2 epoch(s)" in capsys.readouterr().out
    # config.yaml still describes the weights in last.pt (not --lr 0.5), the log gained no record
    assert {
        p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".rrn-lock"
    } == files
    # killed after last.pt, before its epoch record reached the log: the resume puts it back
    log = run / "log.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert (
        log.read_bytes() == files["log.jsonl"]
        or json.loads(log.read_text().splitlines()[-1])["kind"] == "epoch"
    )
    assert (run / "config.yaml").read_bytes() == files["config.yaml"]


def test_overwrite_removes_everything_of_the_replaced_run_first(synth, reference, tmp_path):
    import shutil

    run = tmp_path / "ow"
    shutil.copytree(reference, run)
    assert main(["eval", str(run), "--workers", "0", "--no-progress"]) == 0
    assert (run / "eval_split1.json").exists()
    # the new run dies before its first checkpoint: no file of the old one may be left to pass for it
    with pytest.raises(SimulatedCrash):
        fit(
            config_of(
                argv(
                    synth,
                    run,
                    "--epochs",
                    "1",
                    "--overwrite",
                    "--checkpoint-every",
                    "0",
                    "--lr",
                    "0.01",
                )
            ),
            hooks=[CrashAfter(1)],
        )
    assert not any(
        (run / name).exists()
        for name in (
            "last.pt",
            "best.pt",
            "eval_split1.json",
            "eval_split1_per_class.csv",
            "eval_split1_confusion.png",
        )
    )
    assert yaml_of(run / "config.yaml")["optim"]["lr"] == 0.01


def yaml_of(path):
    import yaml

    return yaml.safe_load(path.read_text())


def test_settings_that_would_fail_later_are_refused_first():
    from rrn.config import ConfigError, resolve_config

    with pytest.raises(ConfigError, match="--seed must be in 0..4294967295"):
        resolve_config([("flags", {"run": {"seed": -1}})])
    with pytest.raises(ConfigError, match="never evaluated"):
        resolve_config([("flags", {"data": {"val_fraction": 0.25}, "run": {"val_every": 0}})])


def test_a_second_signal_waits_for_the_checkpoint_being_written(caplog):
    from rrn.runtime.signals import StopRequest

    written = []
    with caplog.at_level(logging.INFO, logger="rrn"), pytest.raises(KeyboardInterrupt):
        with StopRequest() as stop:
            signal.raise_signal(signal.SIGINT)  # the first: a request
            assert stop.requested
            with stop.writing():
                signal.raise_signal(signal.SIGINT)  # the second, mid-write: deferred
                written.append("whole checkpoint")
            pytest.fail("the deferred signal must act when the write ends")
    assert written == ["whole checkpoint"]
    assert "stopping once the checkpoint being written is complete" in caplog.text


def test_ctrl_c_outside_a_command_is_one_line(monkeypatch, capsys):
    import rrn.cli

    def interrupted():
        raise KeyboardInterrupt  # e.g. while torch is being imported

    monkeypatch.setattr(rrn.cli, "build_parser", interrupted)
    assert rrn.cli.main(["train"]) == 130
    assert capsys.readouterr().err.strip() == "rrn: interrupted"


def test_the_command_line_parses_without_importing_torch():
    code = "import sys, rrn.cli; rrn.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # `rrn --help` and Ctrl-C stay instant


def test_no_readable_training_or_test_video_is_an_error_not_a_nan_success(
    synth, reference, tmp_path, capsys
):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth, data, ignore=shutil.ignore_patterns(".rrn-cache"))
    for video in data.glob("*/*.avi"):
        video.write_bytes(b"not a video")
    assert main(argv(data, tmp_path / "r", "--epochs", "1", "--val-every", "0")) == 2
    err = capsys.readouterr().err
    assert "epoch 1 trained on no chunk: all" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "last.pt").exists()
    assert (
        main(
            [
                "eval",
                str(reference),
                "--data-root",
                str(data),
                "--split-dir",
                str(data),
                "--workers",
                "0",
                "--no-progress",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no video could be evaluated: all" in err and "Traceback" not in err


def test_files_honour_the_umask(synth, tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "perm"
        assert main(argv(synth, run, "--epochs", "1", "--val-every", "0")) == 0
        assert main(["eval", str(run), "--workers", "0", "--no-progress"]) == 0
    finally:
        os.umask(old)
    for name in (
        "last.pt",
        "config.yaml",
        "curves.png",
        "eval_split1.json",
        "eval_split1_per_class.csv",
    ):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name


def test_slurm_tasks_are_ranks_without_torchrun():
    from rrn.distributed import DistInfo, dist_info_from_env, first_host

    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}
    assert dist_info_from_env(env) == DistInfo(rank=5, world_size=8, local_rank=1)
    assert dist_info_from_env({**env, "RANK": "0", "WORLD_SIZE": "2"}) == DistInfo(
        0, 2, 0
    )  # torchrun wins
    assert dist_info_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == DistInfo()  # one task
    # srun's step count wins over the job's: srun -n 2 inside an 8-task allocation is 2 processes
    assert (
        dist_info_from_env({**env, "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}).world_size
        == 2
    )
    assert first_host("gpu[07-09,12],cpu1") == "gpu07" and first_host("node3") == "node3"


def test_slurm_rendezvous_says_what_it_waits_for(monkeypatch, caplog):
    from rrn.distributed import DistInfo, _slurm_rendezvous

    env = {"SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "4242"}
    monkeypatch.setattr(os, "environ", env)
    with caplog.at_level(logging.INFO, logger="rrn"):
        _slurm_rendezvous(DistInfo(rank=0, world_size=2, local_rank=0))
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["WORLD_SIZE"]) == ("gpu07", "29742", "2")
    said = caplog.text
    assert "task 0 of 2: waiting for the other tasks at gpu07:29742" in said and "srun" in said


# ---------------------------------------------------------------- what rrn cache leaves
def _children(pid):
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent pid
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find processes")
def test_a_killed_rrn_cache_leaves_no_worker_alive(tmp_path):
    data = make_synthetic_dataset(
        tmp_path / "data", classes=2, videos_per_class=24, frames=24, size=64, seed=0
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rrn",
            "cache",
            "--data-root",
            str(data),
            "--workers",
            "2",
            "--sample-every",
            "1",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while len(workers := _children(proc.pid)) < 2 and time.time() < deadline:
            assert proc.poll() is None, "rrn cache ended before its workers could be seen"
            time.sleep(0.05)
        assert len(workers) >= 2
    finally:
        proc.kill()  # kill -9: no cleanup runs in the parent
        proc.wait()
    deadline = time.monotonic() + 60  # an upper bound on a busy machine, not a wait
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [
        w
        for w in workers
        if Path(f"/proc/{w}").exists()
        and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ]
    assert not alive, f"cache workers outlived their parent: {alive}"


def _started_workers(pid: int) -> int:
    """Pool workers of ``pid`` that have run their initializer (Ctrl-C ignored). A worker still
    starting Python when Ctrl-C comes dies of it with a traceback: a separate, known edge (the
    first second of a run), not what the test below is about."""
    count = 0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            ignored = next(
                int(line.split()[1], 16)
                for line in Path(f"/proc/{child}/status").open()
                if line.startswith("SigIgn:")
            )
        except (OSError, StopIteration):
            continue
        count += b"spawn_main" in cmdline and bool(ignored & (1 << (signal.SIGINT - 1)))
    return count


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find processes")
def test_ctrl_c_stops_rrn_cache_with_workers_at_once(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: the videos in hand finish, the
    rest are not started, one line is printed, exit 130; a rerun continues."""
    # 96 frames a video: caching all 80 takes longer than the second worker needs to start
    data = make_synthetic_dataset(
        tmp_path / "data", classes=2, videos_per_class=40, frames=96, size=64, seed=0
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [
        sys.executable,
        "-m",
        "rrn",
        "cache",
        "--data-root",
        str(data),
        "--workers",
        "2",
        "--sample-every",
        "1",
        "--format",
        "npy",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while (
        len(list((data / ".rrn-cache").rglob("*.npy"))) < 2 or _started_workers(proc.pid) < 2
    ) and time.time() < deadline:
        time.sleep(0.05)
    at_ctrl_c = len(list((data / ".rrn-cache").rglob("*.npy")))
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "rrn: interrupted"
    cached = len(list((data / ".rrn-cache").rglob("*.npy")))
    # the videos in the workers' hands and the pool's few queued ones, not the other ~70
    assert cached < 60 and cached - at_ctrl_c <= 8, (at_ctrl_c, cached)


def test_stale_cache_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    from rrn.data.cache import remove_stale_temporaries

    (tmp_path / "ab").mkdir()
    old, new = tmp_path / "ab" / ".abc.x1.tmp", tmp_path / "ab" / ".abd.x2.tmp"
    old.write_bytes(b"0" * 100)
    new.write_bytes(b"0" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not old.exists() and new.exists()  # a write in progress elsewhere is left alone


def test_umask_is_read_without_changing_it():
    from rrn.files import current_umask

    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # unchanged by reading it
    finally:
        os.umask(old)


def test_an_error_in_a_loader_worker_ends_the_process(tmp_path):
    """Workers ignore SIGTERM (a scheduler's signal is the main process's to handle); one that
    raised must still not keep the main process waiting for it at exit."""
    script = tmp_path / "fails.py"
    script.write_text(
        "import torch\n"
        "from torch.utils.data import DataLoader, Dataset\n"
        "from rrn.runtime.signals import stop_safe_worker_init\n"
        "class D(Dataset):\n"
        "    def __len__(self): return 16\n"
        "    def __getitem__(self, i):\n"
        "        if i == 0: raise EOFError('a broken file')\n"
        "        return torch.zeros(3)\n"
        "for b in DataLoader(D(), batch_size=2, num_workers=2, worker_init_fn=stop_safe_worker_init()): pass\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "a broken file" in proc.stderr

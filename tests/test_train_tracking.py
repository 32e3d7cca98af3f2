"""Experiment tracking (``rrn train --track``): W&B, MLflow and TensorBoard receive the records of
log.jsonl, the config and the model, and a resumed run continues the same tracked run. Offline
only: W&B with WANDB_MODE=offline, MLflow on a sqlite store, everything in the test's folder."""

import base64
import hashlib
import json
import logging
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import rrn
from faults import CrashAfter, SimulatedCrash
from rrn.cli import main
from rrn.config import TrainConfig
from rrn.errors import UserError
from rrn.package.folder import FILES
from rrn.train import fit
from rrn.train.tracking import TRACKING, TrackedRun, Tracker, Trackers, scalars
from runs import tiny_train_argv as argv
from runs import train_config as config_of
from wandb_offline import read_run

# mlflow's sqlite store on SQLAlchemy 2.1
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def offline_trackers(mp: pytest.MonkeyPatch, root: Path) -> str:
    """Point W&B and MLflow at ``root`` (no network, nothing in the home folder); the MLflow
    store's URI."""
    for var, sub in (
        ("WANDB_DIR", "wandb"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_DATA_DIR", "wandb-data"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
        ("WANDB_ARTIFACT_DIR", "wandb-artifacts"),
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
        mp.setenv(var, str(root / sub))
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    mp.delenv("WANDB_PROJECT", raising=False)
    mp.delenv("WANDB_NAME", raising=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    mp.chdir(root)  # whatever a tracker writes relative to the working folder stays here too
    from mlflow import MlflowClient

    MlflowClient(uri).create_experiment("rrn", artifact_location=str(root / "mlflow-artifacts"))
    return uri


@pytest.fixture(scope="module")
def tracked(synth, tmp_path_factory):
    """A 2-epoch run tracked by all three, killed after step 3 (last.pt holds step 2, the
    trackers already had step 3), then resumed to its end by ``rrn train --resume``."""
    root = tmp_path_factory.mktemp("tracked")
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        uri = offline_trackers(mp, root)
        cfg = config_of(
            argv(
                synth,
                run,
                *("--epochs", "2", "--watch-test", "--checkpoint-every", "0"),
                *("--track", "wandb,mlflow,tensorboard"),
            )
        )
        with pytest.raises(SimulatedCrash):
            fit(cfg, hooks=[CrashAfter(3)])
        saved = json.loads((run / TRACKING).read_text())
        assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
        yield {"root": root, "run": run, "uri": uri, "saved_at_crash": saved}


def mlflow_package(tracked) -> Path:
    """The folder of the model package in the MLflow run's artifacts."""
    from mlflow import MlflowClient

    run_id = json.loads((tracked["run"] / TRACKING).read_text())["mlflow"]["run_id"]
    stored = tracked["root"] / "mlflow-artifacts" / run_id / "artifacts"  # in the test's folder
    assert MlflowClient(tracked["uri"]).get_run(run_id).info.artifact_uri == str(stored)
    return stored / "model"


def md5_of(path: Path) -> str:
    """W&B's digest of a file: its MD5, base64."""
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def log_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def step_losses(run: Path) -> dict[int, float]:
    return {r["global_step"]: r["loss"] for r in log_of(run) if r["kind"] == "step"}


def epoch_records(run: Path) -> list[dict]:
    return [r for r in log_of(run) if r["kind"] == "epoch"]


def test_the_tracked_run_id_survives_the_resume(tracked):
    saved = json.loads((tracked["run"] / TRACKING).read_text())
    assert saved == tracked["saved_at_crash"]  # the resume continued the runs it recorded
    assert set(saved) == {"wandb", "mlflow"}  # TensorBoard needs no id: its folder is the run
    assert saved["mlflow"]["tracking_uri"] == tracked["uri"]


def test_wandb_gets_the_log_the_config_and_the_model(tracked):
    run = tracked["run"]
    files = sorted((tracked["root"] / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2  # the killed start and the resume: one W&B run, synced as one
    first, resumed = (read_run(f) for f in files)
    assert first["id"] == resumed["id"] == json.loads((run / TRACKING).read_text())["wandb"]["id"]
    assert first["exit_code"] == 1 and resumed["exit_code"] == 0
    steps = {
        h["global_step"]: h["step/loss"]
        for part in (first, resumed)
        for h in part["history"]
        if "step/loss" in h
    }
    assert steps == step_losses(run)  # every step, the values of log.jsonl
    redone = [h["global_step"] for h in resumed["history"] if "step/loss" in h]
    assert redone == [3, 4]  # the resume continues after last.pt's step 2 (3 again: the kill)
    twice = [h["step/loss"] for h in first["history"] + resumed["history"] if h["global_step"] == 3]
    assert twice == [steps[3]] * 2  # resume is exact: the step redone has the same loss
    logged = [h for h in first["history"] + resumed["history"] if "epoch/test_video_top1" in h]
    assert [(h["global_step"], h["epoch/test_video_top1"]) for h in logged] == [
        (r["global_step"], r["test_video_top1"]) for r in epoch_records(run)
    ]
    assert first["config"]["model"] == resumed["config"]["model"]
    assert first["config"]["model"]["arch"] == "resnet18"
    assert first["config"]["run"]["track"] == ["wandb", "mlflow", "tensorboard"]
    assert first["artifacts"] == []  # the model goes up once the run finished
    [(name, kind, aliases, contents)] = resumed["artifacts"]
    assert (name, kind) == (f"model-{first['id']}", "model") and "last" in aliases
    package = mlflow_package(tracked)  # the same package went to both
    assert sorted(contents) == sorted(
        (f, (package / f).stat().st_size, md5_of(package / f)) for f in FILES
    )


def test_mlflow_gets_the_log_the_config_and_the_model(tracked):
    from mlflow import MlflowClient

    run = tracked["run"]
    client = MlflowClient(tracked["uri"])
    experiment = client.get_experiment_by_name("rrn")
    [found] = client.search_runs([experiment.experiment_id])  # the resume made no second run
    run_id = found.info.run_id
    assert run_id == json.loads((run / TRACKING).read_text())["mlflow"]["run_id"]
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    history = client.get_metric_history(run_id, "step/loss")
    assert [m.step for m in history] == [1, 2, 3, 3, 4]  # step 3 twice: logged, killed, redone
    assert {m.step: m.value for m in history} == step_losses(run)
    assert {m.step: m.value for m in history if m.step == 3} == {3: step_losses(run)[3]}
    top1 = client.get_metric_history(run_id, "epoch/test_video_top1")
    assert [(m.step, m.value) for m in top1] == [
        (r["global_step"], r["test_video_top1"]) for r in epoch_records(run)
    ]
    params = found.data.params
    assert params["model.arch"] == "resnet18" and params["optim.epochs"] == "2"
    assert params["run.track"] == "wandb,mlflow,tensorboard"
    config = client.download_artifacts(run_id, "config.yaml", str(tracked["root"] / "dl"))
    assert Path(config).read_text() == (run / "config.yaml").read_text()
    listed = client.list_artifacts(run_id, "model")
    assert sorted(a.path for a in listed) == sorted(f"model/{f}" for f in FILES)
    package = mlflow_package(tracked)  # the package of last.pt (no validation split chose best)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    weights = load_file(package / "model.safetensors")
    assert weights.keys() == ckpt["model"].keys()
    assert all(torch.equal(weights[k], v) for k, v in ckpt["model"].items())
    a, b = rrn.load_model(run), rrn.load_model(package)  # strict: it is a package of this run
    assert b.classes == a.classes and b.config == a.config and b.inputs == a.inputs


def test_tensorboard_gets_the_log_and_a_resume_replaces_what_the_kill_cut(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tracked["run"]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    losses = events.Scalars("step/loss")
    assert [e.step for e in losses] == [1, 2, 3, 4]  # the killed run's step 3 purged, as the log's
    expected = step_losses(run)
    assert [e.value for e in losses] == pytest.approx([expected[e.step] for e in losses], rel=1e-6)
    top1 = events.Scalars("epoch/test_video_top1")
    assert [e.step for e in top1] == [r["global_step"] for r in epoch_records(run)]
    assert [e.value for e in top1] == pytest.approx(
        [r["test_video_top1"] for r in epoch_records(run)]
    )
    config = events.Tensors("config/text_summary")  # the config as text: at the start, the resume
    assert [e.step for e in config] == [0, 2]
    assert (run / "config.yaml").read_text() in config[-1].tensor_proto.string_val[0].decode()


def test_a_missing_tracker_is_one_line_before_anything_starts(synth, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    run = tmp_path / "run"
    assert main(argv(synth, run, "--epochs", "1", "--track", "wandb,mlflow")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--track mlflow needs the mlflow package" in err and "pip install 'rrn[mlflow]'" in err
    assert not run.exists()  # not even the run folder


def test_a_resume_whose_mlflow_run_is_gone_is_refused(tmp_path, monkeypatch):
    uri = offline_trackers(monkeypatch, tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / TRACKING).write_text(json.dumps({"mlflow": {"run_id": "0" * 32, "tracking_uri": uri}}))
    tracked = TrackedRun(path=run, config=TrainConfig().to_dict(), resumed_step=2)
    with pytest.raises(
        UserError, match=f"MLflow run 0{{32}} this run folder tracks is not in {uri}"
    ):
        Trackers.open(["mlflow"], tracked)


def _invalid_wandb_setting(*args, **kwargs):
    """What wandb.init raises for a setting its pydantic model refuses (WANDB_MODE=bogus in a
    fresh process; a process that already set W&B up keeps its settings)."""
    import pydantic

    pydantic.TypeAdapter(int).validate_python("bogus")


@pytest.mark.parametrize(
    "name, setup, said",
    [
        (
            "wandb",
            lambda mp: mp.setattr("wandb.init", _invalid_wandb_setting),
            "input_value='bogus'",
        ),
        ("wandb", lambda mp: mp.setenv("WANDB_PROJECT", "a/b"), "Invalid project name 'a/b'"),
        (
            "mlflow",
            lambda mp: mp.setenv("MLFLOW_TRACKING_URI", "bogus://x"),
            "unsupported URI 'bogus://x'",
        ),
    ],
)
def test_settings_a_tracker_refuses_are_one_user_error_naming_them(
    tmp_path, monkeypatch, name, setup, said
):
    offline_trackers(monkeypatch, tmp_path)
    setup(monkeypatch)
    (tmp_path / "run").mkdir()
    tracked = TrackedRun(path=tmp_path / "run", config=TrainConfig().to_dict())
    with pytest.raises(UserError) as caught:
        Trackers.open([name], tracked)
    message = str(caught.value)
    assert message.startswith(f"--track {name}: {name} refused to start the run (")
    assert said in message and f"or drop --track {name}" in message and "\n" not in message


def test_an_error_of_rrn_s_own_in_a_tracker_is_not_taken_for_the_user_s(tmp_path, monkeypatch):
    class Broken(Tracker):
        name = "mlflow"

        def __init__(self, run):
            raise KeyError("a bug")

    monkeypatch.setitem(rrn.train.tracking.TRACKERS, "mlflow", Broken)
    tracked = TrackedRun(path=tmp_path, config=TrainConfig().to_dict())
    with pytest.raises(KeyError, match="a bug"):
        Trackers.open(["mlflow"], tracked)


class Failing(Tracker):
    name = "flaky"

    def __init__(self):
        self.seen = []

    def log(self, metrics, step):
        self.seen.append(step)
        if step == 2:
            raise ConnectionError("server gone")


def test_a_tracker_failing_mid_run_is_dropped_with_a_warning(caplog):
    flaky, kept = Failing(), Failing()
    kept.log = lambda metrics, step: kept.seen.append(step)
    trackers = Trackers([flaky, kept])
    with caplog.at_level(logging.WARNING, logger="rrn"):
        for step in (1, 2, 3):
            trackers.log({"kind": "step", "loss": 0.5, "global_step": step}, step)
    assert flaky.seen == [1, 2] and kept.seen == [1, 2, 3]
    assert "flaky failed logging (server gone)" in caplog.text


def test_a_record_gives_its_numbers_named_by_kind():
    record = {"kind": "epoch", "global_step": 4, "train_loss": 0.5, "lr": None, "ok": True}
    record |= {"skipped": ["v1"], "val_videos": 3, "time": 1.0}
    assert scalars(record) == {"epoch/train_loss": 0.5, "epoch/val_videos": 3}


def test_a_model_that_cannot_be_packed_leaves_the_finished_run_a_success(
    tmp_path, monkeypatch, caplog
):
    import rrn.train.tracking as tracking

    uploaded = []

    class Recording(Tracker):
        name = "recording"

        def artifact(self, path, which):
            uploaded.append((path, which))

    def broken(run, out):
        raise ValueError("the card cannot be written")

    monkeypatch.setattr(tracking, "find_checkpoint", lambda run, which: run / "last.pt")
    monkeypatch.setattr(tracking, "pack_run", broken)
    with caplog.at_level(logging.WARNING, logger="rrn"):
        Trackers([Recording()]).artifact(tmp_path)  # no exception: training had succeeded
    assert uploaded == []
    assert "packing the model for the trackers failed (the card cannot be written)" in caplog.text

"""Experiment trackers (``rrn train --track wandb,mlflow,tensorboard``): consumers of the records
:class:`~rrn.train.run_dir.RunDir` writes to ``log.jsonl``, never a second logging path.

Each tracker gets the run's config when it opens, the numbers of every record the run logs at a
step (each ``--log-every`` optimiser step; each epoch with its validation and watched-test
evaluations) named ``kind/key`` (``step/loss``, ``epoch/val_video_top1``) at the run's global
step, and, when the run finishes its epochs, its model package (``rrn pack``) as an artifact.
A tracker's run id is kept in ``RUN/tracking.json``, so ``--resume`` continues the same tracked
run; the steps a kill cut from ``log.jsonl`` are logged again at their global steps, with the
same values (resume is exact).

Where each tracker is pointed follows its own conventions: W&B's ``WANDB_*`` variables (project
``rrn`` when ``WANDB_PROJECT`` is unset; its files under ``RUN/wandb`` unless ``WANDB_DIR`` is
set), MLflow's ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` (experiment ``rrn`` when
unset). TensorBoard writes ``RUN/tensorboard`` whenever ``tensorboard`` is installed, named or
not; a resumed run purges the events after its checkpoint's step, as its log is cut back.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rrn.checkpoint import find_checkpoint
from rrn.errors import UserError
from rrn.files import atomic_write_text, json_text
from rrn.package.pack import pack_run
from rrn.train.step import TrainingStopped

logger = logging.getLogger(__name__)

TRACKING = "tracking.json"
"""The tracked runs' ids, in the run folder."""

#: tracker -> the module it needs; each is an extra of rrn's of the same name.
MODULES = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "torch.utils.tensorboard"}


def check_trackers(names: Iterable[str]) -> None:
    """Fail before training when a named tracker's package is not installed.

    Raises:
        UserError: one line naming the package and how to install it.
    """
    for name in dict.fromkeys(names):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(MODULES[name])
        except ImportError as err:
            raise UserError(
                f"--track {name} needs the {name} package ({err}): pip install 'rrn[{name}]'"
            ) from None


def model_artifact(run_dir: Path, staging: Path) -> tuple[Path, str]:
    """What a finished run gives its trackers as its model: the package ``rrn pack RUN`` writes
    (``model.safetensors``, ``config.json``, the model card) of the checkpoint ``rrn eval RUN``
    evaluates (``best.pt`` when a validation split chose it, else ``last.pt``), and which
    checkpoint that is (``best``/``last``).

    Args:
        run_dir: The run folder.
        staging: An empty folder, removed by the caller after the upload.
    """
    checkpoint = find_checkpoint(run_dir, "auto")
    packed = pack_run(checkpoint, staging / run_dir.name)  # the card is named after the run
    return packed.folder, checkpoint.stem


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a log record, named ``kind/key`` (the global step is the x-axis, the wall
    time the tracker's own)."""
    kind = record.get("kind", "")
    return {
        f"{kind}/{key}": value
        for key, value in record.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and key not in ("time", "global_step")
    }


@dataclass(kw_only=True)
class TrackedRun:
    """What a tracker is opened with."""

    path: Path
    """The run folder."""
    config: dict[str, Any]
    """The resolved config (``TrainConfig.to_dict()``)."""
    resumed_step: int | None = None
    """The global step a resumed run continues after; None for a new run."""
    saved: dict[str, Any] = field(default_factory=dict)
    """``RUN/tracking.json`` of a resumed run: each tracker's run id."""


class Tracker:
    """One experiment tracker of a run, on rank 0."""

    name = ""
    settings = ""
    """Where the tracker's own settings come from, for the message when it refuses them."""

    @staticmethod
    def refuses(err: Exception) -> bool:
        """Whether ``err``, raised while opening the run, is the tracker refusing its settings
        or its server (the user's to fix), not a bug."""
        return False

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record ``metrics`` at global step ``step``."""

    def artifact(self, path: Path, which: str) -> None:
        """Upload the run's model (a file or a folder) of its checkpoint ``which``."""

    def close(self, status: str) -> None:
        """End the tracked run: ``finished``, ``stopped`` (resumable) or ``failed``."""

    def saved(self) -> dict[str, Any] | None:
        """What ``RUN/tracking.json`` keeps to continue this tracked run, if anything."""
        return None

    def where(self) -> str:
        """Where this tracker writes, for people."""
        return self.name


class TensorBoardTracker(Tracker):
    """``RUN/tensorboard`` event files (scalars, and the config as text)."""

    name = "tensorboard"

    def __init__(self, run: TrackedRun):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.tensorboard import SummaryWriter
        purge = None if run.resumed_step is None else run.resumed_step + 1
        self.writer = SummaryWriter(str(run.path / "tensorboard"), purge_step=purge)
        text = yaml.safe_dump(run.config, sort_keys=False)
        self.writer.add_text("config", f"```yaml\n{text}```", run.resumed_step or 0)
        self.folder = run.path / "tensorboard"

    def where(self) -> str:
        return f"tensorboard: {self.folder}"

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self, status: str) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    """A Weights & Biases run; the global step is its x-axis (``global_step``)."""

    name = "wandb"
    settings = (
        "the WANDB_* environment (WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY, ...) and `wandb login`"
    )

    @staticmethod
    def refuses(err: Exception) -> bool:
        import pydantic
        import wandb

        return isinstance(err, wandb.errors.Error | pydantic.ValidationError)

    def __init__(self, run: TrackedRun):
        import wandb

        saved = run.saved.get(self.name) or {}
        self.run = wandb.init(
            project=saved.get("project") or os.environ.get("WANDB_PROJECT") or "rrn",
            entity=saved.get("entity") or None,
            name=None if os.environ.get("WANDB_NAME") else run.path.name,
            id=saved.get("id"),
            resume="allow" if saved.get("id") else None,
            dir=None if os.environ.get("WANDB_DIR") else str(run.path),
            config=run.config,
            allow_val_change=True,  # a resumed run may change settings (--epochs...)
        )
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log({**metrics, "global_step": step})

    def artifact(self, path: Path, which: str) -> None:
        import wandb

        meta = {"file": path.name, "checkpoint": which}
        art = wandb.Artifact(f"model-{self.run.id}", type="model", metadata=meta)
        if path.is_dir():
            art.add_dir(str(path))
        else:
            art.add_file(str(path))
        self.run.log_artifact(art, aliases=["latest", which])

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "finished" else 1)

    def saved(self) -> dict[str, Any]:
        return {"id": self.run.id, "project": self.run.project, "entity": self.run.entity}

    def where(self) -> str:
        if self.run.url:
            return f"wandb: {self.run.url}"
        return f"wandb: offline run {self.run.id} (wandb sync {Path(self.run.dir).parent})"


class MlflowTracker(Tracker):
    """An MLflow run: the config as parameters (and ``config.yaml``), metrics per step."""

    name = "mlflow"
    settings = (
        "MLFLOW_TRACKING_URI (a store it can open: sqlite:///mlflow.db, http://HOST:PORT) "
        "and MLFLOW_EXPERIMENT_NAME"
    )
    STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}

    @staticmethod
    def refuses(err: Exception) -> bool:
        from mlflow.exceptions import MlflowException

        return isinstance(err, MlflowException)

    def __init__(self, run: TrackedRun):
        import mlflow
        from mlflow import MlflowClient

        saved = run.saved.get(self.name) or {}
        env_uri = os.environ.get("MLFLOW_TRACKING_URI")
        self.uri = (saved.get("tracking_uri") if not env_uri else None) or mlflow.get_tracking_uri()
        self.client = MlflowClient(self.uri)
        if saved.get("run_id"):
            self.run_id = self._continue(saved)
        else:
            self.run_id = self._create(run)
        known = self.client.get_run(self.run_id).data.params
        params = {
            f"{section}.{key}": _param(value)
            for section, values in run.config.items()
            for key, value in values.items()
        }
        self._params({k: v for k, v in params.items() if k not in known})
        self.client.log_text(
            self.run_id, yaml.safe_dump(run.config, sort_keys=False), "config.yaml"
        )

    def _create(self, run: TrackedRun) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "rrn"
        experiment = self.client.get_experiment_by_name(name)
        eid = experiment.experiment_id if experiment else self.client.create_experiment(name)
        created = self.client.create_run(
            eid, run_name=run.path.name, tags={"rrn.run_dir": str(run.path.resolve())}
        )
        return created.info.run_id

    def _continue(self, saved: dict[str, Any]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(saved["run_id"])
        except MlflowException:
            raise UserError(
                f"--resume: the MLflow run {saved['run_id']} this run folder tracks is not in "
                f"{self.uri} (it was started in {saved.get('tracking_uri')}); point "
                f"MLFLOW_TRACKING_URI at that store, or delete {TRACKING} to start a new MLflow run"
            ) from None
        self.client.update_run(saved["run_id"], status="RUNNING")
        return saved["run_id"]

    def _params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 per call
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=items)

    def artifact(self, path: Path, which: str) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), "model")
        else:
            self.client.log_artifact(self.run_id, str(path), "model")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=self.STATUS[status])

    def saved(self) -> dict[str, Any]:
        experiment = self.client.get_run(self.run_id).info.experiment_id
        return {"run_id": self.run_id, "experiment_id": experiment, "tracking_uri": self.uri}

    def where(self) -> str:
        return f"mlflow: run {self.run_id} in {self.uri}"


TRACKERS: dict[str, type[Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "wandb": WandbTracker,
    "mlflow": MlflowTracker,
}


def _open_tracker(name: str, run: TrackedRun) -> Tracker:
    """``TRACKERS[name](run)``; the tracker's own refusal of its settings (a bad mode or
    project, a store it cannot open or reach) is a :class:`UserError` naming them."""
    kind = TRACKERS[name]
    try:
        return kind(run)
    except Exception as err:
        if not kind.refuses(err):
            raise
        why = " ".join(str(err).split()) or type(err).__name__
        raise UserError(
            f"--track {name}: {name} refused to start the run ({why[:400]}); fix "
            f"{kind.settings}, or drop --track {name}"
        ) from None


def _param(value: Any) -> str:
    """A config value as an MLflow parameter (lists as ``a,b``, as on the command line)."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


class Trackers:
    """The trackers of one run, fed by :meth:`RunDir.log <rrn.train.run_dir.RunDir.log>`.

    A tracker that fails while the run trains (its server gone...) is warned about once and
    dropped; training goes on and ``log.jsonl`` keeps every record.
    """

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    @classmethod
    def open(cls, names: Iterable[str], run: TrackedRun) -> Trackers:
        """Open the named trackers (and TensorBoard where installed) and record their run ids.

        Raises:
            UserError: a named tracker's package is missing, or its resumed run cannot be found.
        """
        names = list(dict.fromkeys(names))
        check_trackers(names)
        if "tensorboard" not in names and _tensorboard_installed():
            names.insert(0, "tensorboard")
        path = run.path / TRACKING
        if run.resumed_step is not None and path.is_file():
            run.saved = _read_saved(path)
        opened = cls([])
        try:
            for name in names:
                opened.trackers.append(_open_tracker(name, run))
        except BaseException:
            opened.close(None)
            raise
        saved = {t.name: s for t in opened.trackers if (s := t.saved())}
        if saved:
            atomic_write_text(path, json_text(saved, indent=2) + "\n")
        return opened

    def where(self) -> list[str]:
        """Where each tracker writes, for people."""
        return [t.where() for t in self.trackers]

    def log(self, record: dict[str, Any], step: int) -> None:
        """Give every tracker the numbers of ``record`` at ``step``."""
        metrics = scalars(record)
        if metrics:
            self._each("logging", lambda t: t.log(metrics, step))

    def artifact(self, run_dir: Path) -> None:
        """Upload the finished run's model (:func:`model_artifact`) to every tracker."""
        if not any(type(t).artifact is not Tracker.artifact for t in self.trackers):
            return
        with tempfile.TemporaryDirectory(prefix="rrn-artifact-") as staging:
            try:
                path, which = model_artifact(run_dir, Path(staging))
            except Exception as err:  # the run itself succeeded: it must not end in an error
                logger.warning(
                    "rrn train: warning: packing the model for the trackers failed (%s); they "
                    "get no model (rrn pack %s OUT says more)",
                    err,
                    run_dir,
                )
                return
            self._each("uploading the model", lambda t: t.artifact(path, which))

    def close(self, error: BaseException | None) -> None:
        """End every tracked run; ``error`` is what ended training, if anything did."""
        status = _status(error)
        for tracker in self.trackers:
            try:
                tracker.close(status)
            except Exception as err:  # the run's own outcome matters more than its tracker's
                logger.warning(
                    "rrn train: warning: closing the %s run failed: %s", tracker.name, err
                )
        self.trackers = []

    def _each(self, what: str, call) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as err:
                logger.warning(
                    "rrn train: warning: %s failed %s (%s); it follows this run no further, "
                    "log.jsonl keeps every record",
                    tracker.name,
                    what,
                    err,
                )
                self.trackers.remove(tracker)


def _status(error: BaseException | None) -> str:
    if error is None:
        return "finished"
    return "stopped" if isinstance(error, TrainingStopped | KeyboardInterrupt) else "failed"


def _tensorboard_installed() -> bool:
    try:
        check_trackers(["tensorboard"])
    except UserError:
        return False
    return True


def _read_saved(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(
            f"--resume: {path} cannot be read ({err}); delete it to start new tracked runs"
        ) from None
    return saved if isinstance(saved, dict) else {}

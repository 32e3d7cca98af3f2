"""The run folder and everything written to it (the role of timm's ``CheckpointSaver``).

:class:`RunDir` owns ``RUN/``: the policy for an existing run (``--resume`` continues it,
``--overwrite`` replaces it, anything else is refused), ``config.yaml``, ``log.jsonl`` (and
TensorBoard events when installed), ``last.pt`` / ``best.pt`` and ``curves.png``. Only rank 0
writes; the other ranks get the same object with writing turned off, so the loop has one code
path.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rrn.checkpoint import (
    BEST,
    LAST,
    atomic_write_text,
    check_writable,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
)
from rrn.config import TrainConfig, describe_changes, resolve_config
from rrn.train.state import RunState

LOG = "log.jsonl"
CURVES = "curves.png"
CONFIG = "config.yaml"


def resolve_train_config(layers: list[tuple[str, dict[str, Any]]]) -> tuple[TrainConfig, list[str]]:
    """The configuration of ``rrn train``: ``layers`` (YAML, flags) over the defaults, or with
    ``--resume`` over the configuration the run was started with.

    Returns:
        ``(config, changes)``; ``changes`` lists the settings a resumed run now changes.
    """
    cfg = resolve_config(layers)
    if not cfg.run.resume:
        return cfg, []
    last = Path(cfg.run.out) / LAST
    try:
        saved = load_checkpoint(last)["config"]
    except ValueError as err:
        raise FileNotFoundError(f"--resume: {err}; start the run without --resume") from None
    name = str(last)
    before = resolve_config([(name, saved)], quiet=[name])
    cfg = resolve_config([(name, saved), *layers], quiet=[name])
    changes = [c for c in describe_changes(before, cfg)
               if not c.startswith(("run.resume", "run.progress", "run.overwrite"))]
    return cfg, changes


class RunDir:
    """A run folder, checked writable on every rank before any training.

    Args:
        path: The folder (created if missing).
        is_main: Whether this process writes (rank 0).
    """

    def __init__(self, path: str | Path, *, is_main: bool = True):
        self.path = check_writable(path)
        self.is_main = is_main
        self.resumed: dict[str, Any] | None = None
        self._config: dict[str, Any] = {}
        self._classes: list[str] = []
        self._tb = None

    @classmethod
    def open(cls, path: str | Path, *, resume: bool, overwrite: bool, is_main: bool = True) -> RunDir:
        """Apply the policy for a folder that may hold a run; with ``resume`` load its ``last.pt``.

        Raises:
            FileNotFoundError: ``resume`` without a ``last.pt``.
            FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite``.
        """
        run = cls(path, is_main=is_main)
        last = run.path / LAST
        if resume:
            if not last.is_file():
                raise FileNotFoundError(f"--resume: {last} does not exist; start the run without --resume")
            run.resumed = load_checkpoint(last)
        elif last.exists() and not overwrite:
            raise FileExistsError(
                f"{run.path} already holds a run ({LAST}); continue it with --resume, replace it "
                "with --overwrite, or choose another --out"
            )
        return run

    def restore(self, optimizer, scaler, steps_per_epoch: int, world_size: int) -> RunState:
        """The state to start from: fresh, or the resumed checkpoint's (optimiser and scaler
        loaded in place).

        Raises:
            ValueError: the resumed run was cut into a different number of steps per epoch.
        """
        if self.resumed is None:
            return RunState(steps_per_epoch=steps_per_epoch, world_size=world_size)
        ckpt = self.resumed
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        state = RunState.from_dict(ckpt["progress"])
        if state.steps_per_epoch not in (0, steps_per_epoch):
            raise ValueError(
                f"--resume: {self.path / LAST} was written with {state.steps_per_epoch} steps per "
                f"epoch, this configuration gives {steps_per_epoch}; keep --update-fraction/"
                "--update-chunks, --batch-size and the number of processes of the original run"
            )
        state.steps_per_epoch, state.world_size = steps_per_epoch, world_size
        return state

    def check_classes(self, classes: list[str]) -> None:
        if self.resumed is not None and self.resumed["classes"] != classes:
            raise ValueError(f"--resume: the classes of {self.path / LAST} differ from those of the data")

    def start(self, cfg: TrainConfig, classes: list[str], record: dict[str, Any]) -> None:
        """Write ``config.yaml`` and the log's start (or resume) line; a fresh run first removes
        what an overwritten one left."""
        self._config, self._classes = cfg.to_dict(), list(classes)
        if not self.is_main:
            return
        if self.resumed is None:
            for stale in (BEST, LOG, CURVES):
                (self.path / stale).unlink(missing_ok=True)
        atomic_write_text(self.path / CONFIG, cfg.to_yaml())
        self._tb = _tensorboard(self.path)
        self.log({"kind": "start" if self.resumed is None else "resume", **record})

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        """Append a line to ``log.jsonl`` (and its numbers to TensorBoard at ``step``)."""
        if not self.is_main:
            return
        record = {**record, "time": round(time.time(), 3)}
        with open(self.path / LOG, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is not None and step is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and key != "time":
                    self._tb.add_scalar(f"{record.get('kind', '')}/{key}", value, step)

    def print(self, text: str) -> None:
        if self.is_main:
            tqdm.write(text, file=sys.stdout)

    def save(self, name: str, model, optimizer, scaler, state: RunState,
             metrics: dict[str, Any] | None = None) -> None:
        """Write checkpoint ``name`` (``last.pt`` or ``best.pt``) atomically."""
        if self.is_main:
            ckpt = make_checkpoint(model, config=self._config, classes=self._classes,
                                   optimizer=optimizer, scaler=scaler, progress=state.to_dict(),
                                   metrics=metrics)
            save_checkpoint(self.path / name, ckpt)

    def plot(self, history: list[dict[str, Any]]) -> None:
        if self.is_main:
            from rrn.plots import plot_curves

            plot_curves(history, self.path / CURVES)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _tensorboard(path: Path):
    """A TensorBoard writer under ``RUN/tensorboard`` when the package is installed, else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(str(path / "tensorboard"))
    except Exception:  # noqa: BLE001 - tensorboard not installed: log.jsonl only
        return None


__all__ = ["BEST", "CONFIG", "CURVES", "LAST", "LOG", "RunDir", "resolve_train_config"]

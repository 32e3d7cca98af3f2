"""The run folder and everything written to it (the role of timm's ``CheckpointSaver``).

:class:`RunDir` owns ``RUN/``: a lock so one run writes it at a time, the policy for an existing
run (``--resume`` continues it, ``--overwrite`` replaces it, anything else is refused),
``config.yaml``, ``log.jsonl`` and the experiment trackers fed from it
(:mod:`~rrn.train.tracking`: ``--track``, and TensorBoard events when installed), ``last.pt`` /
``best.pt`` and ``curves.png``. Only rank 0 writes; the other ranks get the same object with
writing turned off, so the loop has one code path.

What a killed run leaves is put right at the next start: temporary files of interrupted writes
are removed, and a resumed run's ``log.jsonl`` is cut back to the checkpoint it resumes from (a
line cut mid-write and the steps after the checkpoint dropped, epochs the checkpoint holds but
the log lost restored), so the log never counts a step twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rrn import distributed as rdist
from rrn.checkpoint import BEST, LAST, load_checkpoint, make_checkpoint, save_checkpoint
from rrn.config import TrainConfig, describe_changes, resolve_config
from rrn.errors import ConfigError
from rrn.files import atomic_write_text, check_writable, json_text
from rrn.train.lock import RunLock, RunLocked
from rrn.train.state import RunState
from rrn.train.tracking import TRACKING, TrackedRun, Trackers

logger = logging.getLogger(__name__)

LOG = "log.jsonl"
CURVES = "curves.png"
CONFIG = "config.yaml"
WRITTEN = (LAST, BEST, CONFIG, CURVES, LOG, TRACKING)  # files written by temporary file + rename


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
    changes = [
        c
        for c in describe_changes(before, cfg)
        if not c.startswith(("run.resume", "run.progress", "run.overwrite"))
    ]
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
        self._trackers = Trackers([])
        self._lock: RunLock | None = None
        self.guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        """Wraps every checkpoint write (training sets :meth:`StopRequest.writing`)."""

    def _take_lock(self) -> None:
        """Rank 0 locks the folder; every rank learns whether it could."""
        refusal = None
        if self.is_main:
            try:
                self._lock = RunLock(self.path).acquire()
            except RunLocked as err:
                refusal = str(err)
        refusal = rdist.all_gather_objects(refusal)[0]
        if refusal:
            raise RunLocked(refusal)
        if self.is_main:  # temporaries of writes a killed run left (only ours: we hold the lock)
            for name in WRITTEN:
                for tmp in self.path.glob(f".{name}.*.tmp"):
                    tmp.unlink(missing_ok=True)

    @classmethod
    def open(
        cls, path: str | Path, *, resume: bool, overwrite: bool, is_main: bool = True
    ) -> RunDir:
        """Apply the policy for a folder that may hold a run; with ``resume`` load its ``last.pt``.

        Raises:
            RunLocked: another ``rrn train`` writes this folder.
            FileNotFoundError: ``resume`` without a ``last.pt``.
            FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite``.
        """
        run = cls(path, is_main=is_main)
        run._take_lock()
        try:
            run._apply_policy(resume, overwrite)
        except BaseException:
            run.close()
            raise
        return run

    def _apply_policy(self, resume: bool, overwrite: bool) -> None:
        last = self.path / LAST
        if resume:
            if not last.is_file():
                raise FileNotFoundError(
                    f"--resume: {last} does not exist; start the run without --resume"
                )
            self.resumed = load_checkpoint(last)
        elif last.exists() and not overwrite:
            raise FileExistsError(
                f"{self.path} already holds a run ({LAST}); continue it with --resume, replace it "
                "with --overwrite, or choose another --out"
            )

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
            raise ConfigError(
                f"--resume: {self.path / LAST} was written with {state.steps_per_epoch} steps per "
                f"epoch, this configuration gives {steps_per_epoch}; keep --update-fraction/"
                "--update-chunks, --batch-size and the number of processes of the original run"
            )
        state.steps_per_epoch, state.world_size = steps_per_epoch, world_size
        return state

    def check_resume(self, cfg: TrainConfig, classes: list[str]) -> None:
        """A resumed run must be the same network on the same classes.

        Raises:
            ValueError: naming what differs and how to start from the run's weights instead.
        """
        if self.resumed is None:
            return
        last = self.path / LAST
        if self.resumed["classes"] != classes:
            raise ConfigError(f"--resume: the classes of {last} differ from those of the data")
        saved = (self.resumed.get("config") or {}).get("model") or {}
        now = cfg.to_dict()["model"]
        changed = [
            f"--{k.replace('_', '-')} {_shown(saved.get(k))} -> {_shown(now[k])}"
            for k in ("arch", "skip", "skip_type", "context", "freeze")
            if saved.get(k) != now[k]
        ]
        if changed:
            raise ConfigError(
                f"--resume: {last} was trained as another network ({'; '.join(changed)}); it "
                "cannot be continued as this one. Keep the run's model settings, or start a new "
                f"run (another --out) from its weights with --weights {last}"
            )
        self._check_same_videos(cfg)

    def _check_same_videos(self, cfg: TrainConfig) -> None:
        """The videos a resumed run trains on, and those it holds out, must stay what they were:
        validation videos it already trained on would choose ``best.pt`` dishonestly."""
        saved = self.resumed.get("config") or {}
        was, now = saved.get("data") or {}, cfg.to_dict()["data"]
        before = {
            k: was.get(k, 0.0 if k == "val_fraction" else now[k])  # older runs: no hold-out
            for k in ("dataset", "split", "val_fraction")
        }
        changed = [
            f"--{k.replace('_', '-')} {v} -> {now[k]}" for k, v in before.items() if v != now[k]
        ]
        saved_seed = (saved.get("run") or {}).get("seed", cfg.run.seed)
        if now["val_fraction"] and saved_seed != cfg.run.seed:
            changed.append(
                f"--seed {saved['run']['seed']} -> {cfg.run.seed} (it draws the validation groups)"
            )
        if changed:
            raise ConfigError(
                f"--resume: {self.path / LAST} was trained on other videos ({'; '.join(changed)}); "
                "continuing would train on held-out videos or report on ones already trained on. "
                "Keep the run's data settings, or start a new run (another --out) from its weights "
                f"with --weights {self.path / LAST}"
            )

    def start(self, cfg: TrainConfig, classes: list[str], record: dict[str, Any]) -> None:
        """Write ``config.yaml`` and the log's start (or resume) line; a fresh run first removes
        what an overwritten one left."""
        self._config, self._classes = cfg.to_dict(), list(classes)
        if not self.is_main:
            return
        # --overwrite: nothing of the replaced run may be mistaken for this one's
        if self.resumed is None:
            old = (LAST, BEST, LOG, CURVES, TRACKING, *(p.name for p in self.path.glob("eval_*")))
            for stale in old:
                (self.path / stale).unlink(missing_ok=True)
            shutil.rmtree(self.path / "tensorboard", ignore_errors=True)
        else:
            self.repair_log()
        atomic_write_text(self.path / CONFIG, cfg.to_yaml())
        resumed = self.resumed and RunState.from_dict(self.resumed["progress"])
        at = resumed.global_step if resumed else None  # a resumed run continues after this step
        tracked = TrackedRun(path=self.path, config=self._config, resumed_step=at)
        self._trackers = Trackers.open(cfg.run.track, tracked)
        if cfg.run.track:
            self.say(f"rrn train: tracked by {'; '.join(self._trackers.where())}")
        self.log({"kind": "start" if self.resumed is None else "resume", **record})

    def repair_log(self) -> None:
        """Resuming a run with nothing left to train: only put back the log records a kill cut
        off (``log.jsonl`` then agrees with ``last.pt`` again); nothing else is written."""
        if self.is_main and self.resumed is not None:
            self._repair_log(RunState.from_dict(self.resumed["progress"]))

    def _repair_log(self, state: RunState) -> None:
        """Cut ``log.jsonl`` back to what the resumed checkpoint holds."""
        path, kept = self.path / LOG, []
        lines = path.read_text().splitlines() if path.exists() else []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # cut mid-write by a kill
            after = record.get("global_step", 0) > state.global_step
            if after or (record.get("kind") == "epoch" and record.get("epoch", -1) >= state.epoch):
                continue
            kept.append(record)
        logged = {r["epoch"] for r in kept if r.get("kind") == "epoch"}
        kept += [r for r in state.history if r.get("epoch") not in logged]
        if len(kept) != len(lines):
            atomic_write_text(path, "".join(json_text(r) + "\n" for r in kept))

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        """Append a line to ``log.jsonl``, and give its numbers to the run's trackers at
        ``step`` (a record without a step is for the log only)."""
        if not self.is_main:
            return
        record = {**record, "time": round(time.time(), 3)}
        with open(self.path / LOG, "a") as fh:
            fh.write(json_text(record) + "\n")
        if step is not None:
            self._trackers.log(record, step)

    def track_model(self) -> None:
        """The run finished its epochs: give its model to its trackers (none: nothing)."""
        if self.is_main:
            self._trackers.artifact(self.path)

    def say(self, text: str) -> None:
        """Log ``text`` (INFO) on the main rank only: the run's progress for people."""
        if self.is_main:
            logger.info(text)

    def warn(self, text: str) -> None:
        """Log ``text`` as a WARNING on the main rank only: what a person should act on (shown
        on stderr, also with ``-q``)."""
        if self.is_main:
            logger.warning(text)

    def save(
        self,
        name: str,
        model,
        optimizer,
        scaler,
        state: RunState,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """Write checkpoint ``name`` atomically: ``last.pt``, or ``best.pt`` (chosen on the
        validation split).

        Raises:
            OSError: the write failed (a full disk...); the message says the previous file of
                that name is intact.
        """
        if not self.is_main:
            return
        ckpt = make_checkpoint(
            model,
            config=self._config,
            classes=self._classes,
            optimizer=optimizer,
            scaler=scaler,
            progress=state.to_dict(),
            metrics=metrics,
            selection="validation" if name == BEST else "last",
        )
        try:
            with self.guard():
                save_checkpoint(self.path / name, ckpt)
        except OSError as err:
            kept = (
                f"the previous {name} is intact"
                if (self.path / name).exists()
                else f"no {name} was written before"
            )
            raise OSError(
                f"cannot write {self.path / name} ({err.strerror or err}); "
                f"{kept} (the interrupted write was removed). Free space or fix the "
                "folder, then continue with --resume"
            ) from None

    def plot(self, history: list[dict[str, Any]]) -> None:
        if self.is_main:
            from rrn.plots import plot_curves

            plot_curves(history, self.path / CURVES)

    def close(self, error: BaseException | None = None) -> None:
        """End the tracked runs (``error``: what ended training, if anything) and unlock."""
        self._trackers.close(error)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


__all__ = ["BEST", "CONFIG", "CURVES", "LAST", "LOG", "RunDir", "resolve_train_config"]


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)

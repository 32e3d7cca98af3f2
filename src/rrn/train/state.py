"""The state of a training run: where it stands and what it has seen, saved in every checkpoint.

:class:`RunState` is the whole of it: epoch, step within the epoch, global step, the best
metric so far, the epoch history and the running totals of the current epoch. It is advanced
after every optimiser step (:meth:`RunState.advance`) and every epoch
(:meth:`RunState.end_epoch`), and goes to and from a checkpoint's ``progress`` entry, so a
resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpochTotals:
    """Running sums of an epoch over all ranks (kept in checkpoints so resumed logs agree)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    chunks: float = 0.0
    skipped: list[int] = field(default_factory=list)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.chunks if self.chunks else float("nan")

    @property
    def acc(self) -> float:
        return self.correct / self.chunks if self.chunks else float("nan")


@dataclass
class StepInfo:
    """One optimiser step, as reported to ``on_step`` callbacks and the log."""

    epoch: int
    step_in_epoch: int  # steps completed in this epoch
    steps_per_epoch: int
    global_step: int  # steps completed in the run
    loss: float  # mean chunk loss of this step, over all ranks
    acc: float
    chunks: int
    lr: float
    clips_per_s: float

    def record(self) -> dict[str, Any]:
        """The ``log.jsonl`` line of this step."""
        return {
            "kind": "step",
            "epoch": self.epoch,
            "step": self.step_in_epoch,
            "global_step": self.global_step,
            "loss": self.loss,
            "acc": self.acc,
            "chunks": self.chunks,
            "lr": self.lr,
            "clips_per_s": self.clips_per_s,
        }


@dataclass
class RunState:
    """Where a run stands. ``epoch`` and ``step_in_epoch`` count what is complete."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    steps_per_epoch: int = 0
    world_size: int = 1
    best_metric: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    totals: EpochTotals = field(default_factory=EpochTotals)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``progress`` entry (primitives only: loads with ``weights_only``)."""
        out = dataclasses.asdict(self)
        out["history"] = list(self.history)
        return out

    @classmethod
    def from_dict(cls, progress: dict[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict`; keys missing in older checkpoints take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in progress.items() if k in known and v is not None}
        values["totals"] = EpochTotals(**progress.get("totals") or {})
        values["history"] = list(progress.get("history") or [])
        return cls(**values)

    def advance(
        self, loss_sum: float, correct: float, chunks: float, lr: float, seconds: float
    ) -> StepInfo:
        """Count one optimiser step over ``chunks`` chunks (all ranks) and describe it."""
        self.step_in_epoch += 1
        self.global_step += 1
        self.totals.loss_sum += loss_sum
        self.totals.correct += correct
        self.totals.chunks += chunks
        return StepInfo(
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            steps_per_epoch=self.steps_per_epoch,
            global_step=self.global_step,
            loss=loss_sum / max(chunks, 1),
            acc=correct / max(chunks, 1),
            chunks=int(chunks),
            lr=lr,
            clips_per_s=chunks / max(seconds, 1e-9),
        )

    def end_epoch(self, record: dict[str, Any], metric: float | None) -> bool:
        """Close the epoch with its log ``record``; True when ``metric`` (the validation
        accuracy; None when there is none) is the best so far."""
        is_best = metric is not None and metric > self.best_metric
        if is_best:
            self.best_metric = metric
        record["best"] = is_best
        self.history.append(record)
        self.epoch += 1
        self.step_in_epoch = 0
        self.totals = EpochTotals()
        return is_best

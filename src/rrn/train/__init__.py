"""Training: a run's state, its folder, the builders, one optimiser step, the loop.

* :mod:`~rrn.train.state`: :class:`RunState` (to and from a checkpoint);
* :mod:`~rrn.train.run_dir`: :class:`RunDir`, owner of the run folder (policy, config,
  log, checkpoints, curves);
* :mod:`~rrn.train.builders`: ``create_model``, ``create_optimizer``, ``create_datasets``,
  ``create_train_loader`` from a :class:`~rrn.config.TrainConfig`;
* :mod:`~rrn.train.step`: a micro-batch's forward/backward and the optimiser step;
* :mod:`~rrn.train.loop`: :func:`train_one_epoch` and :func:`fit`.

Training sits above evaluation (:mod:`rrn.evaluation`, used for the validation split) and the
runtime layer (:mod:`rrn.runtime`: precision, workers, stop requests); neither imports it.
"""

from rrn.train.builders import (
    StepPlan,
    create_datasets,
    create_model,
    create_optimizer,
    create_train_loader,
    freeze_stages,
    lr_at,
    prepare_model,
)
from rrn.train.loop import fit, train_one_epoch
from rrn.train.run_dir import RunDir, resolve_train_config
from rrn.train.state import EpochTotals, RunState, StepInfo
from rrn.train.step import (
    Hook,
    NonFiniteLossError,
    StepContext,
    TrainingStopped,
    forward_backward,
    optimizer_step,
)

__all__ = [
    "EpochTotals",
    "Hook",
    "NonFiniteLossError",
    "RunDir",
    "RunState",
    "StepContext",
    "StepInfo",
    "StepPlan",
    "TrainingStopped",
    "create_datasets",
    "create_model",
    "create_optimizer",
    "create_train_loader",
    "fit",
    "forward_backward",
    "freeze_stages",
    "lr_at",
    "optimizer_step",
    "prepare_model",
    "resolve_train_config",
    "train_one_epoch",
]

"""Evaluation (paper §3.3): the loop over a split's videos, and evaluating a run or checkpoint.

* :mod:`~rrn.evaluation.loop`: :func:`evaluate` (a video's prediction is the mean of its M
  chunks' probabilities; DDP's padded duplicates counted once) and :func:`create_eval_loader`;
* :mod:`~rrn.evaluation.run`: :func:`evaluate_checkpoint` and :func:`evaluate_run`, which write
  the results, the per-class CSV and the confusion plot next to the checkpoint;
* :mod:`~rrn.evaluation.detection`: a detection model (a run on thumos14/activitynet) run
  online over every whole test video, its per-frame scores written to a score folder;
* :mod:`~rrn.evaluation.detection_scoring`: any score folder scored against the annotations
  (the segments ``rrn stream`` would announce, every detection metric, the files).

Training uses the loop for its validation split; nothing here imports :mod:`rrn.train`.
"""

from rrn.evaluation.loop import chunk_loss, create_eval_loader, evaluate
from rrn.evaluation.run import (
    class_difference,
    eval_config,
    eval_protocol,
    eval_targets,
    evaluate_checkpoint,
    evaluate_run,
    results_dir,
)

__all__ = [
    "chunk_loss",
    "class_difference",
    "create_eval_loader",
    "eval_config",
    "eval_protocol",
    "eval_targets",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_run",
    "results_dir",
]

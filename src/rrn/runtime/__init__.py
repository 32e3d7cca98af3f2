"""The runtime layer: what training, evaluation, caching and streaming share about the machine.

* :mod:`~rrn.runtime.precision`: the autocast dtype ``--amp`` means on a device;
* :mod:`~rrn.runtime.workers`: how many worker processes, and workers that end with their parent;
* :mod:`~rrn.runtime.signals`: :class:`StopRequest` (SIGTERM/SIGINT/SIGUSR1 as a request honoured
  at the next safe point) and the DataLoader worker init that leaves stopping to the main process.

It imports nothing from rrn: the layer under data and model (README's package table), so the
frame cache's workers, training and streaming all use it.
"""

from rrn.runtime.precision import amp_dtype, cpu_has_native_bf16, precision_name
from rrn.runtime.signals import STOP_SIGNALS, StopRequest, stop_safe_worker_init
from rrn.runtime.workers import exit_with_parent, pool_worker_init, resolve_workers

__all__ = [
    "STOP_SIGNALS",
    "StopRequest",
    "amp_dtype",
    "cpu_has_native_bf16",
    "exit_with_parent",
    "pool_worker_init",
    "precision_name",
    "resolve_workers",
    "stop_safe_worker_init",
]

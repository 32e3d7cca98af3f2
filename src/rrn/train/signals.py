"""Stopping a run cleanly when a scheduler or a person asks: SIGTERM, SIGINT, SIGUSR1.

(``rrn stream`` stops the same way, after the frame in hand.)

Batch schedulers send SIGTERM (SLURM: also SIGUSR1 with ``--signal``) some time before they kill
a job; Ctrl-C sends SIGINT. :class:`StopRequest` turns each into a request the training loop
honours at the next optimiser step boundary: all ranks agree on it in the step's all-reduce,
``last.pt`` is written, and the run ends with :class:`TrainingStopped` (exit code 128 + the
signal's number: 143 SIGTERM, 130 SIGINT, 138 SIGUSR1). ``--resume`` then ends with the weights an
uninterrupted run would have. A second signal while stopping does what the signal normally does.

DataLoader workers ignore these signals (:func:`ignore_stop_signals`): a scheduler signals every
process of the job, and a worker that died would take the batch the main process still needs.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1")
                     if hasattr(signal, name))


class TrainingStopped(Exception):
    """The run stopped on a signal after writing its checkpoint."""

    def __init__(self, signum: int, checkpoint: str, global_step: int):
        self.signum = signum
        self.checkpoint = checkpoint
        self.global_step = global_step
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after global step {global_step}; {checkpoint} holds it")


class StopRequest:
    """Catches :data:`STOP_SIGNALS` while active (a context manager; main thread only).

    Args:
        announce: Printed when the first signal arrives; ``{signal}`` becomes its name.
    """

    def __init__(self, announce: str = "rrn train: {signal} received; stopping after the "
                 "current step (send it again to stop at once)") -> None:
        self.signum: int | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # asked twice: the signal's own behaviour, now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        self.signum = signum
        print(self.announce.format(signal=signal.Signals(signum).name), flush=True)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: leave stopping to the main process."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)

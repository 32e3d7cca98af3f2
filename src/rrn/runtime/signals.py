"""Stopping a run cleanly when a scheduler or a person asks: SIGTERM, SIGINT, SIGUSR1.

Batch schedulers send SIGTERM (SLURM: also SIGUSR1 with ``--signal``) some time before they kill
a job; Ctrl-C sends SIGINT. :class:`StopRequest` turns each into a request the training loop
honours at the next optimiser step boundary: all ranks agree on it in the step's all-reduce,
``last.pt`` is written, and the run ends with :class:`rrn.train.TrainingStopped` (exit code
128 + the signal's number: 143 SIGTERM, 130 SIGINT, 138 SIGUSR1). ``--resume`` then ends with
the weights an uninterrupted run would have (``rrn stream`` and ``rrn cache`` stop the same
way: after the frame or video in hand). A second signal while stopping does what the signal
normally does, except while a checkpoint is being written (:meth:`StopRequest.writing`): then
it waits for the write to finish, so the checkpoint on disk is always a whole one.

DataLoader workers ignore these signals (:func:`ignore_stop_signals`): a scheduler signals every
process of the job, and a worker that died would take the batch the main process still needs.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import multiprocessing
import signal
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1") if hasattr(signal, name)
)


class StopRequest:
    """Catches :data:`STOP_SIGNALS` while active (a context manager; main thread only).

    Args:
        announce: Printed when the first signal arrives; ``{signal}`` becomes its name.
    """

    def __init__(
        self,
        announce: str = "rrn train: {signal} received; stopping after the "
        "current step (send it again to stop at once)",
    ) -> None:
        self.signum: int | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}
        self._writing = False
        self._closing = False
        self._deferred: int | None = None

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

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A section a second signal must not cut (a checkpoint being written): its own
        behaviour (KeyboardInterrupt, termination) happens when the section ends."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
            if self._deferred is not None:
                self._act(self._deferred)

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        """The short, bounded end of a stop (outputs being closed, a summary being written): a
        second signal is announced and otherwise ignored, so that what the first one asked for
        (complete outputs and their summary) is not cut off at its last moment."""
        before, self._closing = self._closing, True
        try:
            yield
        finally:
            self._closing = before

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            logger.info(self.announce.format(signal=signal.Signals(signum).name))
        elif self._closing:
            logger.info(
                "%s again: already stopping, closing the outputs", signal.Signals(signum).name
            )
        elif self._writing:
            self._deferred = signum
            logger.info(
                "%s again: stopping once the checkpoint being written is complete",
                signal.Signals(signum).name,
            )
        else:
            self._act(signum)

    def _act(self, signum: int) -> None:
        """Asked twice: the signal's own behaviour, now."""
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
        signal.raise_signal(signum)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: leave stopping to the main process."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def stop_safe_worker_init():
    """The ``worker_init_fn`` of rrn's DataLoaders (:func:`ignore_stop_signals`), called in the
    main process when a loader is built.

    Workers that ignore SIGTERM would outlive a main process that ends with an error:
    multiprocessing ends daemonic children at exit with SIGTERM and then waits for them, forever.
    So an exit hook (run before multiprocessing's) kills any such worker still alive.
    """
    _register_reaper()
    return ignore_stop_signals


@functools.cache
def _register_reaper() -> None:
    """Once per process: the exit hook of :func:`stop_safe_worker_init`."""
    atexit.register(_kill_daemonic_children)


def _kill_daemonic_children() -> None:
    children = [c for c in multiprocessing.active_children() if c.daemon]
    if not children:
        return
    if hasattr(signal, "SIGCHLD"):  # torch's handler would raise "worker killed" mid-hook
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout=5)

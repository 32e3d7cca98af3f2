"""Worker processes: how many to start, and workers that never outlive their parent.

A process pool's workers wait on a queue; when their parent is killed (``kill -9``, an OOM kill,
a scheduler), nothing tells them, and they live on. :func:`exit_with_parent` is a pool
``initializer``: a daemon thread checks every half second that the parent still exists and
ends the worker when it does not (portable: the parent's pid is compared, no Linux-only prctl).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time


def resolve_workers(workers: int | None) -> int:
    """``--workers``, or by default the CPU cores this process may use (at most 8), shared by the
    processes a torchrun job starts on this machine."""
    if workers is not None:
        return workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    per_node = os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("SLURM_NTASKS_PER_NODE", "1")
    per_machine = int(re.match(r"\d*", per_node).group() or 1)  # SLURM writes e.g. "4(x2)"
    return max(1, min(8, cores // max(1, per_machine)))


def exit_with_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    """Watch ``parent_pid`` from a daemon thread; ``os._exit`` when it is gone."""

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent_pid:  # re-parented: the parent died
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def pool_worker_init(parent_pid: int) -> None:
    """A pool ``initializer``: :func:`exit_with_parent`, and Ctrl-C left to the parent (a terminal
    sends it to every process of the group; the parent stops the pool, one message in all)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)

"""One run per folder: an exclusive lock held while ``rrn train`` writes a run.

The lock is ``fcntl.flock`` on ``RUN/.rrn-lock``: the operating system releases it when its process
ends, however it ends (``kill -9`` included), so a dead run never leaves a stale lock. The file
records who holds it (pid, host, start time, command), for the message a second run gets.
Where ``fcntl`` does not exist (Windows) the file is created exclusively and a holder whose pid is
no longer alive on this host counts as stale.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from rrn.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".rrn-lock"


class RunLocked(UserError, FileExistsError):
    """Another process holds the run folder.

    A user error (wait for that run, or choose another ``--out``: the message names the
    process); a ``FileExistsError`` as before for callers.
    """


class RunLock:
    """The lock of one run folder; :meth:`acquire` or raise :class:`RunLocked`."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self._acquire_exclusive()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLocked(self._refusal()) from None
        self._fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, self._holder().encode())
        return self

    def release(self) -> None:
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            if fcntl is None:
                self.path.unlink(missing_ok=True)

    def _holder(self) -> str:
        return json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv),
            }
        )

    def _refusal(self) -> str:
        try:
            who = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            who = {}
        holder = (
            f"pid {who.get('pid')} on {who.get('host')}, since {who.get('since')}"
            if who
            else "another process"
        )
        return (
            f"{self.path.parent} is in use by another rrn train ({holder}); wait for it to "
            "finish, stop it, or choose another --out"
        )

    def _acquire_exclusive(self) -> RunLock:
        for _ in range(2):
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                os.write(self._fd, self._holder().encode())
                return self
            except FileExistsError:
                if not self._stale():
                    raise RunLocked(self._refusal()) from None
                self.path.unlink(missing_ok=True)
        raise RunLocked(self._refusal())

    def _stale(self) -> bool:
        try:
            who = json.loads(self.path.read_text())
            if who.get("host") != socket.gethostname():
                return False
            os.kill(int(who["pid"]), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError, KeyError):
            return False
        return False

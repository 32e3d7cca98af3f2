"""File utilities every layer uses: atomic writes (temporary file + rename), strict JSON,
the umask for files made by ``mkstemp``, a writability check, and loading a torch file safely.

The bottom layer of the package: it imports nothing from rrn.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync, then rename it into
    place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        honour_umask(fd)
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def current_umask() -> int:
    """The process umask, read without changing it where the system says it (Linux reports it
    in /proc/self/status; elsewhere it is set and restored, which is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(fd: int) -> None:
    """Give a ``mkstemp`` file (always 0600) the permissions a plain ``open`` would: 0666 less
    the umask, so a shared cache or a colleague's ``rrn eval`` can read what was written."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~current_umask())


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place."""
    import torch  # here, not at the top: the command line's parser imports this module

    return atomic_write(path, lambda fh: torch.save(obj, fh), "wb")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically (temporary file + rename)."""
    return atomic_write(path, lambda fh: fh.write(text), "w")


def json_text(obj: Any, **kwargs) -> str:
    """``json.dumps`` that stays strict JSON: a NaN or infinite float (a loss over no chunk, an
    accuracy over no video) is written as ``null``, which every JSON reader accepts (``NaN`` is
    Python's extension; jq, JavaScript and most JSON libraries refuse it)."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json_text(obj, indent=2, sort_keys=False) + "\n")


def check_writable(directory: str | os.PathLike, flag: str = "--out") -> Path:
    """Create ``directory`` and prove a file can be written there, before any work (``flag``:
    the option that chose it, named in the error).

    Raises:
        OSError: with a message naming the directory, when it cannot be created or written.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OSError(
            f"cannot write to the output directory {directory} ({err.strerror or err}); "
            f"choose another {flag}"
        ) from None
    return directory


def load_torch_file(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file it cannot load safely raises ValueError
    with a one-line reason (a text file, a truncated one, a pickle of classes...)."""
    import torch

    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        # torch.save writes a zip file (or a legacy pickle)
        if head != b"PK" and head[:1] != b"\x80":
            raise ValueError("not a file written by torch.save")
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError((str(err).strip().splitlines() or [type(err).__name__])[0][:200]) from None

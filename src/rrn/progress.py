"""Progress bars, drawn on a terminal only.

A tqdm bar redraws itself with carriage returns: what a terminal needs, and tens of kilobytes
of overwritten frames in a log file (``rrn demo > demo.log 2>&1``). So a bar is drawn only when
stderr, where bars go, is a terminal; elsewhere none is, and each pass's own line says what it
did, as pip does: one line per epoch of training (its validation included), the results of
``rrn eval``, the reports of ``rrn cache``, ``rrn check-data`` and ``rrn features``.
``--no-progress`` (``run.progress``) turns the bars off on a terminal too.

The bottom layer of the package: it imports nothing from rrn.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def on_terminal() -> bool:
    """Whether stderr (looked up now: a test or a caller may replace it) is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal, else a silent one that
    still iterates (its ``update``, ``set_postfix`` and ``close`` do nothing), so the caller
    never branches.

    Args:
        iterable: What to iterate, as for ``tqdm``; or None with ``total=`` and ``update``.
        enabled: The caller's setting (``run.progress``); off, no bar anywhere.
        options: tqdm's own (``desc``, ``unit``, ``total``, ``leave``, ...).
    """
    return tqdm(iterable, file=sys.stderr, disable=not (enabled and on_terminal()), **options)

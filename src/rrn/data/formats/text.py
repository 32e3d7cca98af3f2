"""The parsing every split format shares: reading annotation text, numbered lines, class
index files, relative paths that stay under the data root, and reporting a malformed line by
file and line. Each format module (:mod:`rrn.data.formats`) and :mod:`rrn.data.splits` import
them from here; nothing here imports either, so the formats and the splits form no cycle.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from rrn.errors import UserError


class SplitError(UserError, ValueError):
    """A split file (or the data root) is not as expected; the message names file and line.

    A user error (fix the file, the flags that find it, or pass ``--missing skip``); a
    ``ValueError`` as before for callers.
    """


class LineErrors:
    """Where the parsers report malformed lines: raised at once (the default: training stops
    at the first, naming it), or collected (``collect=True``: ``rrn check-data`` lists every bad
    line of every split file in one pass). Passed explicitly to every parser.
    """

    def __init__(self, collect: bool = False):
        self.collect = collect
        self.messages: list[str] = []

    def report(self, message: str) -> None:
        """A malformed line, ``message`` naming its file and line.

        Raises:
            SplitError: when not collecting.
        """
        if not self.collect:
            raise SplitError(message)
        self.messages.append(message)


class Entry(NamedTuple):
    """One line of a split or annotation file: a video, its label, and where it is listed."""

    side: str
    """``"train"`` or ``"test"``."""
    path: str | tuple[str, ...]
    """The video's path relative to the data root, or candidate paths tried in order."""
    label: int
    """0-based class index."""
    source: Path
    """The file that lists it."""
    line: int
    """Its 1-based line number there."""
    frames: int | None = None
    """Frames the line announces (rawframes' ``total_frames``), else None."""
    annotation: Any = None
    """An untrimmed video's labelled intervals
    (:class:`~rrn.detection.annotations.VideoAnnotations`) for a temporal format, else None
    (then ``label`` is the video's class)."""


def read_split_text(path: Path) -> str:
    """The text of a split or annotation file (UTF-8, a byte-order mark tolerated).

    Raises:
        SplitError: the file is missing or not UTF-8.
    """
    if not path.is_file():
        raise SplitError(f"split file {path} not found; check --split-dir")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SplitError(f"{path}: not a UTF-8 text file ({err})") from None


def lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a text file as ``(1-based line number, whitespace-split fields)``."""
    text = read_split_text(path)
    # splitlines() handles CRLF, LF and CR alike.
    return [(i, line.split()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_class_index(path: Path) -> list[str]:
    """Parse a ``classInd.txt`` (``<1-based index> <name>`` lines, indices 1..K in order)."""
    classes: list[str] = []
    for lineno, fields in lines(path):
        # a broken classInd.txt shifts every label: always fatal, even when collecting
        if len(fields) != 2 or not fields[0].isdigit():
            raise SplitError(
                f"{path}:{lineno}: expected '<index> <ClassName>', got {' '.join(fields)!r}"
            )
        if int(fields[0]) != len(classes) + 1:
            raise SplitError(
                f"{path}:{lineno}: class indices must run 1, 2, 3, ... in order; "
                f"expected {len(classes) + 1}, got {fields[0]}"
            )
        if fields[1] in classes:
            raise SplitError(f"{path}:{lineno}: class {fields[1]!r} is listed twice")
        classes.append(fields[1])
    if not classes:
        raise SplitError(f"{path}: no classes listed")
    return classes


def check_relative(rel: str, src: Path, lineno: int, errors: LineErrors) -> str | None:
    """The path as POSIX, or None (reported) when it would leave the data root."""
    p = PurePosixPath(rel.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", rel):
        errors.report(
            f"{src}:{lineno}: path {rel!r} leaves the data root; list paths must be relative "
            "to --data-root without '..'"
        )
        return None
    return str(p)


def is_plain_name(name: str) -> bool:
    """Whether ``name`` (a video id, a class label) can be one file or folder name: not empty,
    no path separator, not ``.`` or ``..``."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def numbered_classes(
    entries: list[Entry], ind: Path, errors: LineErrors
) -> tuple[list[Entry], list[str]]:
    """Entries and classes ``"0", "1", ...`` of a list without a class index (``ind`` is where
    one would be): see :func:`without_label_gaps`."""
    entries = without_label_gaps(entries, ind, errors)
    return entries, [str(i) for i in range(max((e.label for e in entries), default=-1) + 1)]


def without_label_gaps(entries: list[Entry], ind: Path, errors: LineErrors) -> list[Entry]:
    """Without a ``classInd.txt`` the classes are ``0..largest label``: a label past one that no
    line uses would add classes without any video (one label 999: a 1000-class model), so each
    such line is a bad line, dropped when collecting."""
    used = {e.label for e in entries}
    gap = 0  # the smallest unused label
    while gap in used:
        gap += 1
    if all(e.label < gap for e in entries):
        return entries
    top = max(used)
    for _, _, label, src, lineno, *_ in entries:
        if label > gap:
            errors.report(
                f"{src}:{lineno}: label {label}, but no line has label {gap}"
                f"{' (labels are 0-based)' if gap == 0 else ''}: without a class index "
                f"the classes are 0..{top} (the largest label), {top + 1 - len(used)} of them "
                f"without any video. Fix the label, or name the classes in {ind} ('<1-based index> "
                "<name>' lines: label k is named on the line '<k+1> <name>')"
            )
    return [e for e in entries if e.label < gap]

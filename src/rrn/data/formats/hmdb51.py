"""HMDB-51 (``--dataset hmdb51``): one ``<class>_test_split<k>.txt`` per class with lines
``<video> <0|1|2>`` (1 = train, 2 = test, 0 = unused); classes sorted by name."""

from __future__ import annotations

import re
from pathlib import Path

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource
from rrn.data.formats.text import (
    Entry,
    LineErrors,
    SplitError,
    check_relative,
    lines,
)


def _hmdb51(split_dir: Path, split: int, errors: LineErrors) -> tuple[list[Entry], list[str]]:
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    files = sorted(p for p in split_dir.glob(f"*_test_split{split}.txt") if pattern.match(p.name))
    if not files:
        raise SplitError(
            f"no HMDB-51 split files '<class>_test_split{split}.txt' in {split_dir}; check "
            "--split-dir"
        )
    classes = [pattern.match(p.name).group(1) for p in files]
    entries: list[Entry] = []
    for label, (name, path) in enumerate(zip(classes, files)):
        for lineno, fields in lines(path):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                errors.report(
                    f"{path}:{lineno}: expected '<video> <0|1|2>', got {' '.join(fields)!r}"
                )
                continue
            rel = check_relative(f"{name}/{fields[0]}", path, lineno, errors)
            if rel is not None and fields[1] != "0":
                entries.append(
                    Entry(
                        "train" if fields[1] == "1" else "test",
                        rel,
                        label,
                        source=path,
                        line=lineno,
                    )
                )
    return entries, classes


def parse_hmdb51(source: SplitSource, errors: LineErrors) -> Annotations:
    """The format's :class:`~rrn.data.formats.base.Parser`: ``--split``'s files."""
    return Annotations(*_hmdb51(source.split_dir, source.split, errors))


FORMAT = DatasetFormat(
    name="hmdb51",
    title="HMDB-51",
    parse=parse_hmdb51,
    annotations="the official <class>_test_split<k>.txt files",
    videos="<class>/<video>.avi",
    splits=3,
)

"""Custom datasets (``--dataset list``): list files of ``relative/path <0-based label>`` lines
(mmaction2's convention), with class names from an optional ``classInd.txt`` in ``split_dir``
(UCF format) or else ``"0", "1", ...``.

Without list files: one folder per class under the data root, sorted by name, and ``split = k``
in 1..3 is a 3-fold split: a video goes to test when ``(group - 1) % 3 == k - 1``, where
``group`` is the ``_gNN_`` number of UCF-style names (so groups never straddle train and test)
or, for other names, the video's 1-based position within its sorted class folder."""

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
    numbered_classes,
    read_class_index,
)


def _lists(
    split_dir: Path, train_list, test_list, errors: LineErrors
) -> tuple[list[Entry], list[str]]:
    ind = split_dir / "classInd.txt"
    classes = read_class_index(ind) if ind.is_file() else None
    entries: list[Entry] = []
    for side, src in (("train", Path(train_list)), ("test", Path(test_list))):
        for lineno, fields in lines(src):
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                errors.report(
                    f"{src}:{lineno}: expected '<relative/path> <0-based label>', got "
                    f"{' '.join(fields)!r}"
                )
                continue
            label = int(fields[1])
            if label < 0 or (classes is not None and label >= len(classes)):
                known = f"0..{len(classes) - 1} from {ind}" if classes is not None else ">= 0"
                errors.report(f"{src}:{lineno}: label {label} is not a valid class ({known})")
                continue
            rel = check_relative(fields[0], src, lineno, errors)
            if rel is None:
                continue
            entries.append(Entry(side, rel, label, source=src, line=lineno))
    if classes is None:
        entries, classes = numbered_classes(entries, ind, errors)
    return entries, classes


def _folders(root: Path, split: int, errors: LineErrors) -> tuple[list[Entry], list[str]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise SplitError(f"{root} has no class folders; expected <data-root>/<Class>/<video> files")
    entries: list[Entry] = []
    for label, name in enumerate(classes):
        videos = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in FORMAT.extensions)
        for pos, video in enumerate(videos, 1):
            m = re.search(r"_g(\d+)_", video.name)
            group = int(m.group(1)) if m else pos
            side = "test" if (group - 1) % 3 == split - 1 else "train"
            entries.append(Entry(side, f"{name}/{video.name}", label, source=root / name, line=pos))
    return entries, classes


def parse_list(source: SplitSource, errors: LineErrors) -> Annotations:
    """The format's :class:`~rrn.data.formats.base.Parser`: the list files when given, else the
    class folders."""
    if source.train_list is not None and source.test_list is not None:
        return Annotations(*_lists(source.split_dir, source.train_list, source.test_list, errors))
    return Annotations(*_folders(source.root, source.split, errors))


FORMAT = DatasetFormat(
    name="list",
    parse=parse_list,
    annotations="--train-list and --test-list ('relative/path <0-based label>' lines) and an "
    "optional classInd.txt; without lists, one folder per class under --data-root, split by "
    "--split into 3 folds",
    videos="<relative/path> (without lists: <Class>/<video>)",
    splits=3,
    list_files="optional",
)

"""mmaction2's frame-folder lists (``rawframes``): ``--train-list`` and ``--test-list``.

Lines ``<frame_dir> <total_frames> <label>`` (0-based label), the frames of each video in
``--data-root/<frame_dir>/img_00001.jpg``, ``img_00002.jpg``, ... (read by
:mod:`rrn.data.frame_folder`, without decoding video). Class names come from an optional
``classInd.txt`` in ``--split-dir`` (UCF-101's ``<1-based index> <name>`` format), else
``"0", "1", ...``. ``total_frames`` is kept on the record (:attr:`VideoRecord.num_frames`):
``rrn check-data`` compares it with the folder, ``rrn cache`` estimates from it.
"""

from __future__ import annotations

from pathlib import Path

from rrn.data.formats.text import (
    Entry,
    LineErrors,
    SplitError,
    check_relative,
    lines,
    numbered_classes,
    read_class_index,
)


def _parse_line(
    fields: list[str], src: Path, lineno: int, classes: list[str] | None, errors: LineErrors
) -> Entry | None:
    """``(rel, label, frames)`` of one line, or None (reported)."""
    if len(fields) != 3 or not fields[1].isdigit() or not fields[2].lstrip("-").isdigit():
        errors.report(
            f"{src}:{lineno}: expected '<frame_dir> <total_frames> <0-based label>', "
            f"got {' '.join(fields)!r}"
        )
        return None
    frames, label = int(fields[1]), int(fields[2])
    if frames < 1:
        errors.report(f"{src}:{lineno}: total_frames must be >= 1, got {frames}")
        return None
    if label < 0 or (classes is not None and label >= len(classes)):
        known = f"0..{len(classes) - 1} from classInd.txt" if classes is not None else ">= 0"
        errors.report(f"{src}:{lineno}: label {label} is not a valid class ({known})")
        return None
    rel = check_relative(fields[0], src, lineno, errors)
    return None if rel is None else (rel.rstrip("/"), label, frames)


def parse_rawframes(
    *, split_dir: Path, errors: LineErrors, train_list=None, test_list=None, **_
) -> tuple[list[Entry], list[str], bool]:
    """Entries (frame folders) and classes of two mmaction2 rawframe lists.

    Raises:
        SplitError: a list is not given or missing, or ``classInd.txt`` is malformed.
    """
    if train_list is None or test_list is None:
        raise SplitError(
            "--dataset rawframes needs both --train-list and --test-list "
            "('frame_dir total_frames label' lines)"
        )
    ind = split_dir / "classInd.txt"
    classes = read_class_index(ind) if ind.is_file() else None
    entries: list[Entry] = []
    for side, src in (("train", Path(train_list)), ("test", Path(test_list))):
        for lineno, fields in lines(src):
            if (got := _parse_line(fields, src, lineno, classes, errors)) is not None:
                rel, label, frames = got
                entries.append(Entry(side, rel, label, src, lineno, frames))
    # labels 0..largest: one past an unused label is refused, as for --dataset list
    if classes is None:
        entries, classes = numbered_classes(entries, ind, errors)
    return entries, classes, True

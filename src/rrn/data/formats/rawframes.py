"""mmaction2's frame-folder lists (``rawframes``): ``--train-list`` and ``--test-list``.

Lines ``<frame_dir> <total_frames> <label>`` (0-based label), the frames of each video in
``--data-root/<frame_dir>/img_00001.jpg``, ``img_00002.jpg``, ... (read by
:mod:`rrn.data.frame_folder`, without decoding video). Class names come from an optional
``classInd.txt`` in ``--split-dir`` (UCF-101's ``<1-based index> <name>`` format), else
``"0", "1", ...``. ``total_frames`` is kept on the record (:attr:`VideoRecord.num_frames`):
``rrn check-data`` compares it with the folder, ``rrn cache`` estimates from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import (
    Entry,
    LineErrors,
    SplitError,
    check_relative,
    lines,
    numbered_classes,
    read_class_index,
)
from rrn.data.synth_layouts import SynthVideo, shell_word


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


def parse_rawframes(source: SplitSource, errors: LineErrors) -> Annotations:
    """Entries (frame folders) and classes of two mmaction2 rawframe lists.

    Raises:
        SplitError: a list is missing, or ``classInd.txt`` is malformed.
    """
    if source.train_list is None or source.test_list is None:
        raise SplitError(FORMAT.list_files_problem(source.train_list, source.test_list))
    ind = source.split_dir / "classInd.txt"
    classes = read_class_index(ind) if ind.is_file() else None
    entries: list[Entry] = []
    for side, src in (("train", Path(source.train_list)), ("test", Path(source.test_list))):
        for lineno, fields in lines(src):
            if (got := _parse_line(fields, src, lineno, classes, errors)) is not None:
                rel, label, frames = got
                entries.append(Entry(side, rel, label, source=src, line=lineno, frames=frames))
    # labels 0..largest: one past an unused label is refused, as for --dataset list
    if classes is None:
        entries, classes = numbered_classes(entries, ind, errors)
    return Annotations(entries, classes)


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """Frame folders ``rawframes/<Class>/<video>/img_00001.jpg`` ... (JPEG quality 95) and
    mmaction2 lists ``train_list.txt`` / ``test_list.txt`` with a ``classInd.txt``."""
    from rrn.data.frame_folder import write_frame_folder

    listed = {"train": [], "test": []}
    for video in videos:
        rel = f"{video.name}/{video.stem}"
        write_frame_folder(out / "rawframes" / rel, video.frames, quality=95)
        listed["test" if video.test else "train"].append(f"{rel} {len(video.frames)} {video.label}")
    for side, items in listed.items():
        (out / f"{side}_list.txt").write_text("".join(f"{line}\n" for line in items))
    (out / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(classes)))
    return SynthWritten(
        f"--data-root {shell_word(out / 'rawframes')} --split-dir {shell_word(out)} "
        f"--train-list {shell_word(out / 'train_list.txt')} "
        f"--test-list {shell_word(out / 'test_list.txt')}",
        sum(map(len, listed.values())),
        out / "train_list.txt",
        out / "test_list.txt",
    )


FORMAT = DatasetFormat(
    name="rawframes",
    parse=parse_rawframes,
    annotations="--train-list and --test-list ('frame_dir total_frames label' lines) and an "
    "optional classInd.txt",
    videos="<frame_dir>/img_00001.jpg, img_00002.jpg, ...",
    list_files="required",
    frame_folders=True,
    timestamps=False,
    extensions=(),
    synth=write_synth,
)

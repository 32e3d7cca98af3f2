"""UCF-101 (``--dataset ucf101``), as distributed in ``ucfTrainTestlist/``: ``classInd.txt`` =
``<1-based index> <Class>``; ``trainlist0k.txt`` = ``<Class>/<video>.avi <1-based label>``;
``testlist0k.txt`` = ``<Class>/<video>.avi`` (no label: it is the class folder's)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import (
    Entry,
    LineErrors,
    check_relative,
    lines,
    read_class_index,
)
from rrn.data.synth_layouts import SynthVideo, shell_word, write_video


def _ucf101(split_dir: Path, split: int, errors: LineErrors) -> tuple[list[Entry], list[str]]:
    classes = read_class_index(split_dir / "classInd.txt")
    index = {name: i for i, name in enumerate(classes)}
    entries: list[Entry] = []
    train_file = split_dir / f"trainlist0{split}.txt"
    for lineno, fields in lines(train_file):
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            errors.report(
                f"{train_file}:{lineno}: expected '<Class>/<video>.avi <label 1..{len(classes)}>', "
                f"got {' '.join(fields)!r}"
            )
            continue
        rel = check_relative(fields[0], train_file, lineno, errors)
        if rel is None:
            continue
        label = int(fields[1])
        if not 1 <= label <= len(classes):
            errors.report(
                f"{train_file}:{lineno}: label {label} is not in classInd.txt (1..{len(classes)})"
            )
            continue
        parts = PurePosixPath(rel).parts
        if len(parts) < 2 or parts[0] not in index:
            where = (
                f"class folder {parts[0]!r} is not in" if len(parts) > 1 else "no class folder from"
            )
            errors.report(
                f"{train_file}:{lineno}: {rel}: {where} {split_dir / 'classInd.txt'}; UCF-101 "
                "lists '<Class>/<video>' with a class of classInd.txt: fix the line, or add the "
                "class there"
            )
            continue
        if index[parts[0]] != label - 1:
            errors.report(
                f"{train_file}:{lineno}: label {label} ({classes[label - 1]}) contradicts the "
                f"class folder {parts[0]!r} ({index[parts[0]] + 1} in classInd.txt)"
            )
            continue
        entries.append(Entry("train", rel, label - 1, source=train_file, line=lineno))
    test_file = split_dir / f"testlist0{split}.txt"
    for lineno, fields in lines(test_file):
        rel = check_relative(fields[0], test_file, lineno, errors)
        if rel is None:
            continue
        parts = PurePosixPath(rel).parts
        if len(fields) > 2 or len(parts) < 2:
            errors.report(
                f"{test_file}:{lineno}: expected '<Class>/<video>.avi', got {' '.join(fields)!r}"
            )
            continue
        if parts[0] not in index:
            errors.report(
                f"{test_file}:{lineno}: class folder {parts[0]!r} is not in "
                f"{split_dir / 'classInd.txt'}"
            )
            continue
        entries.append(Entry("test", rel, index[parts[0]], source=test_file, line=lineno))
    return entries, classes


def parse_ucf101(source: SplitSource, errors: LineErrors) -> Annotations:
    """The format's :class:`~rrn.data.formats.base.Parser`: ``--split``'s lists."""
    return Annotations(*_ucf101(source.split_dir, source.split, errors))


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """UCF-101's layout: ``<Class>/v_<Class>_gGG_cCC.avi`` and the three split files (CRLF)."""
    train_lines, test_lines = [], []
    for video in videos:
        rel = f"{video.name}/{video.stem}.avi"
        write_video(out / rel, video.frames, fps=25)
        if video.test:
            test_lines.append(rel)
        else:
            train_lines.append(f"{rel} {video.label + 1}")
    crlf = "\r\n"  # as the official UCF-101 files
    index = "".join(f"{i + 1} {n}{crlf}" for i, n in enumerate(classes))
    (out / "classInd.txt").write_bytes(index.encode())
    (out / "trainlist01.txt").write_bytes("".join(line + crlf for line in train_lines).encode())
    (out / "testlist01.txt").write_bytes("".join(line + crlf for line in test_lines).encode())
    return SynthWritten(
        f"--data-root {shell_word(out)}",
        len(train_lines) + len(test_lines),
        out / "trainlist01.txt",
        out / "testlist01.txt",
    )


FORMAT = DatasetFormat(
    name="ucf101",
    title="UCF-101",
    parse=parse_ucf101,
    annotations="classInd.txt, trainlist0<k>.txt and testlist0<k>.txt (ucfTrainTestlist/)",
    videos="<Class>/<video>.avi",
    splits=3,
    synth=write_synth,
)

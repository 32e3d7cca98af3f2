"""Kinetics (400/600/700) as distributed: ``train.csv`` and ``validate.csv`` in ``--split-dir``.

Rows ``label,youtube_id,time_start,time_end,split`` (a header line names the columns; their
order may vary, extra columns are ignored). Classes are the labels of ``train.csv``, sorted by
name (the order of the official class lists and of mmaction2's label maps). Training reads
``train.csv``, evaluation ``validate.csv`` (``test.csv`` has no labels).

Videos are named ``<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>`` (the official
downloader's naming) under ``--data-root/train/`` and ``--data-root/validate/`` (or ``val/``),
either in class folders (``train/<label>/``; a label's spaces may be underscores) or flat;
both layouts are common and are tried in that order. Any video extension is found by its stem.
Missing videos are normal for Kinetics (removed from YouTube): ``--missing skip`` uses those
present and reports the others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import Entry, LineErrors, SplitError, is_plain_name, read_split_text
from rrn.data.synth_layouts import SynthVideo, shell_word, write_video

COLUMNS = ("label", "youtube_id", "time_start", "time_end")
SPLIT_FOLDERS = {"train": ("train",), "test": ("validate", "val")}


def read_csv(path: Path, errors: LineErrors) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` for every non-blank data row of an annotation CSV with a header.

    Raises:
        SplitError: the file is missing, not UTF-8, or its header lacks a needed column.
    """
    reader = csv.reader(io.StringIO(read_split_text(path)))
    header = [h.strip() for h in next(reader, [])]
    if absent := [c for c in COLUMNS if c not in header]:
        raise SplitError(
            f"{path}:1: the header must name the columns {','.join(COLUMNS)}; "
            f"{','.join(absent)} missing (got {','.join(header) or 'an empty line'})"
        )
    rows = []
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            errors.report(
                f"{path}:{reader.line_num}: expected {len(header)} fields "
                f"({','.join(header)}), got {len(fields)}: {','.join(fields)!r}"
            )
            continue
        rows.append((reader.line_num, {h: f.strip() for h, f in zip(header, fields)}))
    return rows


def video_name(row: dict[str, str], path: Path, line: int, errors: LineErrors) -> str | None:
    """``<youtube_id>_<start:06d>_<end:06d>``, or None (reported) for a malformed row."""
    yid = row["youtube_id"]
    try:
        start, end = float(row["time_start"]), float(row["time_end"])
    except ValueError:
        start = end = float("nan")
    if not (start.is_integer() and end.is_integer() and 0 <= start < end):
        errors.report(
            f"{path}:{line}: time_start {row['time_start']!r} and time_end "
            f"{row['time_end']!r} "
            "must be whole seconds with time_start < time_end"
        )
        return None
    if not is_plain_name(yid):
        errors.report(f"{path}:{line}: youtube_id {yid!r} is not a video id")
        return None
    return f"{yid}_{int(start):06d}_{int(end):06d}"


def _candidates(side: str, label: str, name: str) -> tuple[str, ...]:
    """Where a video may be: in its class folder (label as is, or with underscores), or flat."""
    folders = dict.fromkeys((label, label.replace(" ", "_")))
    return tuple(f"{d}/{c}/{name}.mp4" for d in SPLIT_FOLDERS[side] for c in folders) + tuple(
        f"{d}/{name}.mp4" for d in SPLIT_FOLDERS[side]
    )


def parse_kinetics(source: SplitSource, errors: LineErrors) -> Annotations:
    """Entries and classes of Kinetics' ``train.csv`` (train) and ``validate.csv`` (test).

    Raises:
        SplitError: an annotation file is missing or has no usable header, or the data root has
            no ``train/`` or ``validate/``/``val/`` folder.
    """
    root, split_dir = source.root, source.split_dir
    for side, folders in SPLIT_FOLDERS.items():
        if not any((root / d).is_dir() for d in folders):
            raise SplitError(
                f"{root} has no {' or '.join(f'{d}/' for d in folders)} folder: "
                f"--dataset kinetics expects the {side} videos there (in class "
                "folders or flat)"
            )
    files = {"train": split_dir / "train.csv", "test": split_dir / "validate.csv"}
    rows = {side: read_csv(path, errors) for side, path in files.items()}
    classes = sorted({r["label"] for _, r in rows["train"] if is_plain_name(r["label"])})
    index = {name: i for i, name in enumerate(classes)}
    entries: list[Entry] = []
    for side, path in files.items():
        for line, row in rows[side]:
            name = video_name(row, path, line, errors)
            if name is None:
                continue
            if row["label"] not in index:
                why = (
                    "cannot name a class folder"
                    if not is_plain_name(row["label"])
                    else f"is not a class of {files['train']}"
                )
                errors.report(f"{path}:{line}: label {row['label']!r} {why}")
                continue
            entries.append(
                Entry(
                    side,
                    _candidates(side, row["label"], name),
                    index[row["label"]],
                    source=path,
                    line=line,
                )
            )
    if not classes:
        raise SplitError(f"{files['train']}: no classes (no usable row)")
    return Annotations(entries, classes)


def kinetics_label(name: str) -> str:
    """``MoveRight`` -> ``move right`` (Kinetics labels are lower case with spaces)."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """``train.csv`` / ``validate.csv`` (labels with spaces, e.g. ``move right``), videos
    ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (MJPEG) in class folders under ``train/`` and flat
    under ``val/``: both layouts Kinetics downloads come in, and the ``val/`` spelling."""
    rows = {"train": [], "validate": []}
    for i, video in enumerate(videos):
        label = kinetics_label(video.name)
        yid, start = f"yt{i:05d}-g{video.group:02d}", 10 * video.clip
        name = f"{yid}_{start:06d}_{start + 10:06d}.mp4"
        side = "validate" if video.test else "train"
        path = out / "val" / name if video.test else out / "train" / label / name
        write_video(path, video.frames, fps=25)
        rows[side].append(f"{label},{yid},{start},{start + 10},{side}")
    for side, lines in rows.items():
        (out / f"{side}.csv").write_text(
            "label,youtube_id,time_start,time_end,split\n" + "".join(f"{line}\n" for line in lines)
        )
    return SynthWritten(
        f"--data-root {shell_word(out)}",
        sum(map(len, rows.values())),
        out / "train.csv",
        out / "validate.csv",
    )


FORMAT = DatasetFormat(
    name="kinetics",
    title="Kinetics",
    test_side="validation",
    parse=parse_kinetics,
    annotations="train.csv and validate.csv, rows label,youtube_id,time_start,time_end,split",
    videos="train/ and validate/ (or val/), <youtube_id>_<start:06d>_<end:06d>.<ext> in class "
    "folders or flat",
    synth=write_synth,
)

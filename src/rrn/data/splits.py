"""Split files -> video records: which videos train, which test, with which label.

The annotation files are parsed by the dataset's format (:data:`rrn.data.formats.FORMATS`, one
module per format); this module checks the flags against the format's traits (``--split``, the
list files), finds every entry on disk and builds the records (:func:`load_split`), or collects
every malformed line at once for ``rrn check-data`` (:func:`split_problems`).

A listed video missing under its exact name is resolved by its stem with another of the format's
video extensions (re-encoded ``.mp4`` copies of UCF-101 are common). Still missing: an error
naming the split file and line (``missing="error"``), or dropped and reported in
:attr:`DatasetSplit.missing` (``missing="skip"``). A video listed twice on one side, or found
through a symbolic link that leads outside the data root, is a malformed line; an empty train or
test side is an error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rrn.data.formats import DatasetFormat, SplitSource, dataset_format
from rrn.data.formats.text import (  # noqa: F401 - SplitError, Entry, readers: their public home is text
    Entry,
    LineErrors,
    SplitError,
    check_relative,
    is_plain_name,
    lines,
    numbered_classes,
    read_class_index,
    read_split_text,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split."""

    path: Path
    """The video file on disk (resolved by stem when the listed extension is missing)."""
    label: int
    """0-based class index into :attr:`DatasetSplit.classes`."""
    video_id: str
    """Relative path without extension, e.g. ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"``."""
    num_frames: int | None = None
    """Frames the annotation announces (rawframes' ``total_frames``), else None."""
    annotation: Any = None
    """An untrimmed video's labelled intervals
    (:class:`~rrn.detection.annotations.VideoAnnotations`), for a temporal format (then
    ``label`` is -1: the labels are per frame); None for a video of one class."""


@dataclass
class MissingVideo:
    """A split entry whose file is not under the data root."""

    video_id: str
    listed_in: Path
    line: int
    side: str = ""
    """``"train"`` or ``"test"``."""


@dataclass
class DatasetSplit:
    """Classes and the train/test records of one split."""

    classes: list[str]
    train: list[VideoRecord]
    test: list[VideoRecord]
    missing: list[MissingVideo] = field(default_factory=list)
    """Entries dropped because their file is missing (only with ``missing="skip"``)."""
    annotations: Any = None
    """A temporal format's whole annotation
    (:class:`~rrn.detection.annotations.TemporalAnnotations`), else None."""


def split_problems(
    dataset: str, data_root, split_dir=None, split: int = 1, *, train_list=None, test_list=None
) -> tuple[DatasetSplit | None, list[str]]:
    """Parse a split like :func:`load_split` (``missing="skip"``) but collect every malformed
    line instead of stopping at the first.

    Returns:
        ``(split, problems)``: the split of the well-formed lines (None when a whole file or the
        data root is unusable) and one message per problem, each naming file and line.
    """
    errors = LineErrors(collect=True)
    try:
        result = load_split(
            dataset,
            data_root,
            split_dir,
            split,
            train_list=train_list,
            test_list=test_list,
            missing="skip",
            errors=errors,
        )
    except SplitError as err:
        result = None
        errors.messages.append(str(err))
    return result, errors.messages


def load_split(
    dataset: str,
    data_root,
    split_dir=None,
    split: int = 1,
    *,
    train_list=None,
    test_list=None,
    missing: str = "error",
    errors: LineErrors | None = None,
) -> DatasetSplit:
    """Parse a dataset's split into video records.

    Args:
        dataset: A format's name (:data:`rrn.data.formats.FORMATS`: ``"ucf101"``, ``"hmdb51"``,
            ``"list"``, ``"kinetics"``, ``"ssv2"``, ``"rawframes"``).
        data_root: Folder holding the videos (``<Class>/<video>`` for UCF-101 and HMDB-51) or
            frame folders (``rawframes``).
        split_dir: Folder of the official split or annotation files; for the formats with list
            files, where an optional ``classInd.txt`` is looked up. Defaults to ``data_root``.
        split: Which official split, 1..the format's :attr:`~DatasetFormat.splits`.
        train_list: The training list file of the formats that read list files.
        test_list: The test list file, likewise.
        missing: What to do with an entry whose file is missing: ``"error"`` (raise, naming
            the split file and line), ``"skip"`` (drop, warn, record in ``missing``).
        errors: Where malformed lines go (:class:`~rrn.data.formats.text.LineErrors`):
            default, raise the first; ``LineErrors(collect=True)`` collects them all.

    Returns:
        The split, with ``classes`` in label order.

    Raises:
        SplitError: a missing or malformed split file, an unknown label, a path outside
            ``data_root``, a missing video (``missing="error"``) or an empty train or test side.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    fmt = dataset_format(dataset)
    source = _source(fmt, data_root, split_dir, split, train_list, test_list)
    errors = errors if errors is not None else LineErrors()
    parsed = fmt.parse(source, errors)
    resolver = _Resolver(source.root, fmt)
    out = _records(parsed.entries, parsed.classes, resolver, errors)
    out.annotations = parsed.temporal
    if out.missing:
        _report_missing(out, len(parsed.entries), resolver, missing)
    for side in ("train", "test"):
        if not getattr(out, side):
            raise SplitError(
                f"the {side} side of split {split} of {dataset} under {source.root} is empty"
                + (" after skipping missing videos" if out.missing else "")
                + f"; check --data-root ({fmt.videos}), --split-dir ({fmt.annotations}) and "
                "--split"
            )
    return out


def load_annotations(dataset: str, data_root=None, split_dir=None):
    """The whole annotation of a temporal dataset
    (:class:`~rrn.detection.annotations.TemporalAnnotations`), read from its annotation files
    alone: no video is looked for (scoring a folder of per-frame scores needs none).

    Args:
        dataset: A temporal format's name (``"thumos14"``, ``"activitynet"``).
        data_root: Default of ``split_dir``.
        split_dir: The annotation files (or ActivityNet's file).

    Raises:
        SplitError: not a temporal format, neither folder given, or the annotations are missing
            or malformed (the first malformed line named).
    """
    fmt = dataset_format(dataset)
    if not fmt.temporal:
        raise SplitError(
            f"--dataset {dataset} has no temporal annotations; per-frame scores are scored "
            "against thumos14 or activitynet annotations"
        )
    where = split_dir if split_dir is not None else data_root
    if where is None:
        raise SplitError(f"say where the annotations are: --split-dir ({fmt.annotations})")
    if data_root is not None and Path(data_root).is_dir():
        root = Path(data_root)
    else:  # the videos are not needed: any existing folder passes _source's check
        root = Path(where) if Path(where).is_dir() else Path(where).parent
    source = _source(fmt, root, where, 1, None, None)
    return fmt.parse(source, LineErrors()).temporal


def _source(
    fmt: DatasetFormat, data_root, split_dir, split: int, train_list, test_list
) -> SplitSource:
    """The flags that locate a dataset, checked against its format's traits."""
    if not 1 <= split <= fmt.splits:
        raise SplitError(
            f"{fmt.name} has one official split ({fmt.annotations}); --split {split} must be 1"
            if fmt.splits == 1
            else f"--split must be {', '.join(map(str, range(1, fmt.splits)))} or {fmt.splits}, "
            f"got {split}"
        )
    root = Path(data_root)
    if not root.is_dir():
        raise SplitError(
            f"data root {root} is not a folder; pass the folder that holds {fmt.videos}"
        )
    split_dir = Path(split_dir) if split_dir is not None else root
    # a typo must not pass for "no optional classInd.txt"
    if not (split_dir.is_dir() or (fmt.annotation_file and split_dir.is_file())):
        what = "the file or the folder" if fmt.annotation_file else "the folder"
        raise SplitError(
            f"--split-dir {split_dir} is not a folder{' or a file' * fmt.annotation_file}; "
            f"pass {what} of {fmt.annotations}"
        )
    if problem := fmt.list_files_problem(train_list, test_list):
        raise SplitError(problem)
    lists = [None if p is None else Path(p) for p in (train_list, test_list)]
    return SplitSource(root, split_dir, split, *lists)


def _records(
    entries: list[Entry], classes: list[str], resolve: _Resolver, errors: LineErrors
) -> DatasetSplit:
    """Resolve each entry on disk: a record, or a missing video; a video listed twice on one
    side, or whose file lies outside the data root, is a bad line."""
    out = DatasetSplit(classes=classes, train=[], test=[])
    first_seen: dict[tuple[str, str], tuple[Path, int]] = {}
    for side, rel, label, src, lineno, frames, annotation in entries:
        candidates = (rel,) if isinstance(rel, str) else rel  # a format may name several places
        video_id = str(
            candidates[0] if resolve.folders else PurePosixPath(candidates[0]).with_suffix("")
        )
        if (side, video_id) in first_seen:  # would count the video twice
            at, line = first_seen[(side, video_id)]
            errors.report(
                f"{src}:{lineno}: {video_id} is listed again (first at {at}:{line}); "
                "remove one line"
            )
            continue
        first_seen[(side, video_id)] = (src, lineno)
        path = next((p for p in map(resolve, candidates) if p is not None), None)
        if path is None:
            out.missing.append(MissingVideo(video_id, src, lineno, side))
        elif resolve.outside(path):
            errors.report(
                f"{src}:{lineno}: {path.relative_to(resolve.root)} is a symbolic link (or in a "
                f"linked folder) to {path.resolve()}, outside the data root "
                f"{resolve.root.resolve()}; "
                "paths must stay inside --data-root: move or copy the video into it, or pass a "
                "--data-root that "
                "holds the link's target"
            )
        else:
            record = VideoRecord(path, label, video_id, frames, annotation)
            (out.train if side == "train" else out.test).append(record)
    return out


def _report_missing(out: DatasetSplit, total: int, resolve: _Resolver, missing: str) -> None:
    first, root = out.missing[0], resolve.root
    if missing == "error":
        tried = (
            f"the extensions {', '.join(resolve.extensions)}" if resolve.extensions else "no other"
        )
        raise SplitError(
            f"{first.listed_in}:{first.line}: video {first.video_id!r} not found under {root} "
            f"(tried the listed name and {tried}); "
            f"{len(out.missing)} of {total} listed videos are missing. Check --data-root, or "
            "pass --missing skip (load_split(..., missing='skip')) to use only the videos present."
        )
    logger.warning(
        "rrn: warning: %d of %d listed videos are missing under %s and were skipped "
        "(first: %s, %s)",
        len(out.missing),
        total,
        root,
        first.video_id,
        f"{first.listed_in}:{first.line}",
    )


class _Resolver:
    """Find listed videos (or frame folders, for a format of them) on disk, listing each folder
    once (13k ``stat`` calls -> 101 listings)."""

    def __init__(self, root: Path, fmt: DatasetFormat):
        self.root = root
        self.folders = fmt.frame_folders
        self.extensions = fmt.extensions
        self._dirs: dict[Path, tuple[set[str], dict[str, list[str]]]] = {}
        self._real_root = os.path.realpath(root)
        self._folder_inside: dict[Path, bool] = {}

    def outside(self, path: Path) -> bool:
        """Whether a found video really lies outside the root: it, or a folder on its way, is a
        symbolic link pointing elsewhere (one ``realpath`` per folder, one per linked file)."""
        if path.parent not in self._folder_inside:
            real = os.path.realpath(path.parent)
            inside = os.path.commonpath([real, self._real_root]) == self._real_root
            self._folder_inside[path.parent] = inside
        if not self._folder_inside[path.parent]:
            return True
        if not path.is_symlink():
            return False
        real = os.path.realpath(path)
        return os.path.commonpath([real, self._real_root]) != self._real_root

    def __call__(self, rel: str) -> Path | None:
        path = self.root / rel
        if path.parent not in self._dirs:
            names: set[str] = set()
            by_stem: dict[str, list[str]] = {}
            if path.parent.is_dir():
                for name in sorted(os.listdir(path.parent)):
                    names.add(name)
                    stem, ext = os.path.splitext(name)
                    if ext.lower() in self.extensions:
                        by_stem.setdefault(stem, []).append(name)
            self._dirs[path.parent] = (names, by_stem)
        names, by_stem = self._dirs[path.parent]
        if self.folders:
            return path if path.name in names and path.is_dir() else None
        if path.name in names and path.is_file():
            return path
        # Same stem, another video extension, in the format's order of preference.
        candidates = by_stem.get(path.stem, [])
        for ext in self.extensions:
            for name in candidates:
                if name.lower().endswith(ext) and (path.parent / name).is_file():
                    return path.parent / name
        return None

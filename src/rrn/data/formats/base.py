"""What a dataset format is: the record each format module declares (:class:`DatasetFormat`),
the parser every format provides (:class:`Parser`: annotation files in, typed records out) and
the writer of its ``rrn synth`` miniature (:class:`SynthLayout`).

The code that reads data asks a format's record, never its name: whether a mirrored video is
another class, whether its frames carry timestamps, where its videos lie, which flags locate its
annotation files. Adding a format is one module that declares a :class:`DatasetFormat` and one
line in :data:`rrn.data.formats.FORMATS` (docs/data.md, "Adding a dataset format").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from rrn.data.decode import VIDEO_EXTENSIONS
from rrn.data.formats.text import Entry, LineErrors

if TYPE_CHECKING:
    from rrn.data.synth_layouts import SynthVideo

#: How a format uses ``--train-list`` / ``--test-list``: not at all (its own annotation files),
#: both required, or both or neither (without them it finds its videos another way).
ListFiles = Literal["unused", "required", "optional"]


@dataclass(frozen=True)
class SplitSource:
    """Where a dataset's annotations and videos are: the flags that locate them, resolved."""

    root: Path
    """``--data-root``: the videos or frame folders."""
    split_dir: Path
    """``--split-dir``: the annotation files as distributed (default: ``root``)."""
    split: int = 1
    """``--split``: which official split (1..:attr:`DatasetFormat.splits`)."""
    train_list: Path | None = None
    """``--train-list``, for the formats that read list files."""
    test_list: Path | None = None
    """``--test-list``, likewise."""


@dataclass(frozen=True)
class Annotations:
    """What a parser returns: the listed entries and the class names in label order."""

    entries: list[Entry]
    """One record per annotated line, on the train or the test side, not yet found on disk."""
    classes: list[str]
    """Class names; an entry's label indexes this list."""
    temporal: Any = None
    """A temporal format's whole annotation
    (:class:`~rrn.detection.annotations.TemporalAnnotations`: every annotated video, its
    intervals and duration), for the checks of ``rrn check-data``; None for the others."""


class Parser(Protocol):
    """A format's parser: its annotation files as distributed -> :class:`Annotations`.

    Args:
        source: Where the files are (:class:`SplitSource`); a parser reads only what its format
            uses (``train_list`` / ``test_list`` when :attr:`DatasetFormat.list_files` says so).
        errors: Where a malformed line goes (:class:`~rrn.data.formats.text.LineErrors`): report
            it naming file and line, then skip it; the collector raises or collects.

    Returns:
        The entries (paths relative to ``source.root``, checked by
        :func:`~rrn.data.formats.text.check_relative`) and the classes. Finding the entries on
        disk, duplicates and empty sides are :func:`rrn.data.splits.load_split`'s job.

    Raises:
        SplitError: a whole file is missing or unusable (a class index, a header, not JSON).
    """

    def __call__(self, source: SplitSource, errors: LineErrors, /) -> Annotations: ...


class SynthWritten(NamedTuple):
    """What a synth layout writer wrote."""

    flags: str
    """The flags that locate it, after ``--dataset NAME`` (paths quoted for a shell)."""
    videos: int
    """Videos (or frame folders) written."""
    train: Path
    """The file that lists the training side."""
    test: Path
    """The file that lists the test side."""


class SynthLayout(Protocol):
    """Writes ``rrn synth``'s rendered videos in a format's layout (``rrn synth --layout``).

    Args:
        out: The dataset folder (created, empty).
        classes: Class names in label order.
        videos: The rendered videos (:class:`~rrn.data.synth_layouts.SynthVideo`), each with its
            label, class name, group, clip number, side and uint8 ``(N, S, S, 3)`` frames.
    """

    def __call__(
        self, out: Path, classes: list[str], videos: Iterable[SynthVideo], /
    ) -> SynthWritten: ...


@dataclass(frozen=True)
class DatasetFormat:
    """One ``--dataset`` format and its traits: what the code that reads data asks instead of
    its name."""

    name: str
    """The ``--dataset`` name (lower case, one word)."""
    parse: Parser
    """Annotation files -> entries and classes (:class:`Parser`)."""
    annotations: str
    """The annotation files it reads, as people know them (for messages and docs)."""
    videos: str
    """Where its videos (or frame folders) lie under ``--data-root`` (for messages)."""
    splits: int = 1
    """Official train/test splits: ``--split`` takes 1..splits."""
    list_files: ListFiles = "unused"
    """How it uses ``--train-list`` / ``--test-list`` (:data:`ListFiles`)."""
    frame_folders: bool = False
    """Entries are folders of JPEG frames (``img_00001.jpg`` ...), not video files."""
    timestamps: bool = True
    """Its frames carry timestamps, so ``--fps`` can sample them by time; without, only
    ``--sample-every``."""
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    """Video file extensions, in order of preference: a listed video missing under its name is
    found by its stem with one of them (none for frame folders)."""
    direction_dependent: bool = False
    """A class can be a direction ("from left to right"): a horizontally flipped video is
    another class, so training flips and evaluation's ``--flip`` are warned against."""
    synth: SynthLayout | None = None
    """Writes ``rrn synth --layout NAME``'s miniature of it, or None (then the tests use a
    hand-written fixture)."""
    temporal: bool = False
    """Its annotations are labelled intervals of untrimmed videos (seconds), not one class per
    video: each entry carries its video's intervals (``Entry.annotation``), a record's label
    is per sampled frame (the intervals containing its time), training draws chunks from
    inside each video labelled by their last frame, and ``rrn synth`` renders untrimmed
    videos for it."""
    background: bool = False
    """Class 0 is ``Background``, the label of a frame inside no interval (temporal formats):
    ``--background-fraction`` bounds its share of the training chunks and ``rrn check-data``
    reports its share of the frames."""
    annotation_file: bool = False
    """``--split-dir`` may name its annotation file itself (ActivityNet's ``FILE.json``), not
    only the folder holding it."""
    title: str | None = None
    """The public dataset's name for people (``UCF-101``), for model cards; None for a format
    of one's own data (list files, frame folders)."""
    test_side: str = "test"
    """What the dataset calls the videos a model is tested on (Kinetics tests on ``validation``
    videos), for model cards."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"a format's name is one lower-case word, got {self.name!r}")
        if self.splits < 1:
            raise ValueError(f"{self.name}: splits must be >= 1, got {self.splits}")
        if self.frame_folders == bool(self.extensions):
            raise ValueError(
                f"{self.name}: frame folders have no video extensions, video files need some"
            )
        if self.background and not self.temporal:
            raise ValueError(
                f"{self.name}: a background class labels frames outside every interval; "
                "it needs temporal annotations (temporal=True)"
            )

    def list_files_problem(self, train_list, test_list) -> str | None:
        """What is wrong with the ``--train-list`` / ``--test-list`` given, or None."""
        given = (train_list is not None) + (test_list is not None)
        if self.list_files == "unused" or given == 2:
            return None
        if given == 0 and self.list_files == "optional":
            return None
        either = ", or neither" if self.list_files == "optional" else ""
        return (
            f"--dataset {self.name} needs both --train-list and --test-list{either}; "
            f"it reads {self.annotations}"
        )

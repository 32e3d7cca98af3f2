"""Temporal annotations of untrimmed videos as typed records: THUMOS'14's text files and
ActivityNet's JSON, read into one :class:`TemporalAnnotations`.

**THUMOS'14** (:func:`read_thumos14`): ``<Class>_val.txt`` and ``<Class>_test.txt`` files found
anywhere under a folder (the two official annotation folders can sit there unpacked; hidden
files and ``__MACOSX`` folders are skipped), one action instance per line, ``<video> <start>
<end>`` in seconds, whitespace-separated (CRLF or LF). ``Ambiguous_val.txt`` and
``Ambiguous_test.txt`` mark stretches that are never a target and never scored. The classes are
the annotated names (the files' ``<Class>``, Ambiguous aside), sorted, after ``Background`` at
index 0. The ``val`` videos train and the ``test`` videos test (the convention of online action
detection: THUMOS'14's training set is trimmed UCF-101 clips).

**ActivityNet** (:func:`read_activitynet`): ``{"database": {<video id>: {"subset": ...,
"duration": <seconds>, "annotations": [{"segment": [<start>, <end>], "label": <class>}]}}}``
(other keys ignored), the JSON people also write for their own videos, given as the file or a
folder holding one ``.json``. Subset ``training`` trains, ``validation`` tests, ``testing``
(no annotations in ActivityNet) is skipped. ``duration`` may be left out. A label
``Ambiguous`` marks an ambiguous stretch, as THUMOS'14's Ambiguous files do. Classes as above.

A malformed line or entry is reported by file and line (THUMOS'14) or file and JSON path
(ActivityNet) to a :class:`~rrn.data.formats.text.LineErrors`; by default every one is collected
and one :class:`~rrn.data.formats.text.SplitError` lists them all.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from rrn.data.formats.text import LineErrors, SplitError, is_plain_name, lines, read_split_text
from rrn.data.synth_layouts import SYNTH_INFO
from rrn.detection.classes import BACKGROUND
from rrn.detection.segments import Segment

AMBIGUOUS = "Ambiguous"
"""The name that marks a stretch that is never a target and never scored."""
AMBIGUOUS_LABEL = -1
""":attr:`Interval.label` of an ambiguous stretch."""

Subset = Literal["train", "test"]
THUMOS_FILE = re.compile(r"(?P<name>.+)_(?P<subset>val|test)\.txt")
THUMOS_SUBSETS: dict[str, Subset] = {"val": "train", "test": "test"}
ACTIVITYNET_SUBSETS: dict[str, Subset | None] = {
    "training": "train",
    "validation": "test",
    "testing": None,
}


class Interval(NamedTuple):
    """One annotated stretch of a video, ``[start, end)`` in seconds."""

    start: float
    end: float
    label: int
    """Class index (>= 1), or :data:`AMBIGUOUS_LABEL`."""
    where: str
    """Where it is annotated: ``file:line``, or ``file: <JSON path>``."""


@dataclass(frozen=True)
class VideoAnnotations:
    """The annotated intervals of one video."""

    video: str
    """The video id (THUMOS'14's ``video_test_0000004``, ActivityNet's key)."""
    subset: Subset
    """``"train"`` or ``"test"``."""
    intervals: tuple[Interval, ...]
    """The action instances, sorted by start (then end, then class)."""
    ambiguous: tuple[Interval, ...] = ()
    """The ambiguous stretches, sorted the same way."""
    duration: float | None = None
    """Seconds, where the annotation says (ActivityNet); None for THUMOS'14."""

    def segments(self) -> list[Segment]:
        """The action instances as :class:`~rrn.detection.segments.Segment` records."""
        return [Segment(self.video, i.label, i.start, i.end) for i in self.intervals]

    def ambiguous_segments(self) -> list[Segment]:
        """The ambiguous stretches as segments (label :data:`AMBIGUOUS_LABEL`)."""
        return [Segment(self.video, i.label, i.start, i.end) for i in self.ambiguous]

    def to_json(self) -> dict[str, Any]:
        """``{"intervals": [[start, end, class], ...], "ambiguous": [[start, end], ...],
        "duration": ...}``: what :meth:`from_json` reads back (a feature folder's record of its
        videos' labels)."""
        return {
            "intervals": [[i.start, i.end, i.label] for i in self.intervals],
            "ambiguous": [[i.start, i.end] for i in self.ambiguous],
            "duration": self.duration,
        }

    @classmethod
    def from_json(cls, video: str, subset: Subset, data: dict[str, Any], where: str = ""):
        """The record :meth:`to_json` wrote (``where``: the file, named in each interval)."""
        return cls(
            video,
            subset,
            tuple(Interval(float(s), float(e), int(k), where) for s, e, k in data["intervals"]),
            tuple(
                Interval(float(s), float(e), AMBIGUOUS_LABEL, where) for s, e in data["ambiguous"]
            ),
            data.get("duration"),
        )


@dataclass(frozen=True)
class TemporalAnnotations:
    """Every annotated video of a dataset, with its classes."""

    classes: tuple[str, ...]
    """``Background`` first, then the annotated class names, sorted."""
    videos: tuple[VideoAnnotations, ...]
    """The train videos, then the test videos, each sorted by id."""
    source: Path
    """The folder or file read."""

    def subset(self, side: Subset) -> tuple[VideoAnnotations, ...]:
        """The videos of one side, ``"train"`` or ``"test"``."""
        return tuple(v for v in self.videos if v.subset == side)


def _seconds(value: Any) -> float | None:
    """A non-negative, finite number of seconds from a text field or a JSON value, else None."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out >= 0 else None


def _raise_collected(given: LineErrors | None, sink: LineErrors, source: Path) -> None:
    """Raise one error listing every collected problem, unless the caller collects them."""
    if given is None and sink.messages:
        count = len(sink.messages)
        raise SplitError(
            f"{count} malformed annotation{'s' if count > 1 else ''} in {source} (fix each, or "
            "remove it):\n" + "\n".join(sink.messages)
        )


def _assemble(
    classes: tuple[str, ...], found: dict[tuple[Subset, str], list[Interval]], durations, source
) -> TemporalAnnotations:
    """Group each video's intervals, actions apart from ambiguous stretches, sorted."""
    videos = []
    for subset, video in sorted(found, key=lambda key: (key[0] != "train", key[1])):
        intervals = sorted(found[subset, video], key=lambda i: (i.start, i.end, i.label))
        videos.append(
            VideoAnnotations(
                video,
                subset,
                tuple(i for i in intervals if i.label != AMBIGUOUS_LABEL),
                ambiguous=tuple(i for i in intervals if i.label == AMBIGUOUS_LABEL),
                duration=durations.get((subset, video)),
            )
        )
    return TemporalAnnotations(classes, tuple(videos), source)


# ---------------------------------------------------------------------------- THUMOS'14
def read_thumos14(folder: str | Path, errors: LineErrors | None = None) -> TemporalAnnotations:
    """THUMOS'14's temporal annotations found anywhere under ``folder``.

    Args:
        folder: Where the ``<Class>_val.txt`` / ``<Class>_test.txt`` files are (at any depth).
        errors: Where malformed lines go; default: all collected, then one error raised.
            A collecting :class:`~rrn.data.formats.text.LineErrors` keeps them (the lines are
            dropped) and nothing is raised for them.

    Returns:
        The annotations: ``val`` files give the train side, ``test`` files the test side.

    Raises:
        SplitError: ``folder`` is not a folder or holds no annotation file; a file is not
            UTF-8; malformed lines (unless ``errors`` collects them).
    """
    folder = Path(folder)
    sink = errors if errors is not None else LineErrors(collect=True)
    files = _thumos_files(folder, sink)
    classes = (BACKGROUND, *sorted({name for name, _ in files if name != AMBIGUOUS}))
    index = {name: k for k, name in enumerate(classes)}
    found: dict[tuple[Subset, str], list[Interval]] = {}
    for (name, subset), path in sorted(files.items()):
        label = AMBIGUOUS_LABEL if name == AMBIGUOUS else index[name]
        for video, start, end, where in _thumos_lines(path, sink):
            found.setdefault((THUMOS_SUBSETS[subset], video), []).append(
                Interval(start, end, label, where)
            )
    _raise_collected(errors, sink, folder)
    return _assemble(classes, found, {}, folder)


def _skipped(path: Path, folder: Path) -> bool:
    """Hidden files and folders, and the ``__MACOSX`` copies a zip made on a Mac unpacks."""
    return any(p.startswith(".") or p == "__MACOSX" for p in path.relative_to(folder).parts)


def _thumos_files(folder: Path, errors: LineErrors) -> dict[tuple[str, str], Path]:
    """``(class name, "val" | "test") -> file`` of every annotation file under ``folder``."""
    if not folder.is_dir():
        raise SplitError(
            f"{folder} is not a folder; pass the folder holding THUMOS'14's annotation files "
            "(<Class>_val.txt, <Class>_test.txt; the official annotation folders unpacked)"
        )
    found: dict[tuple[str, str], Path] = {}
    folders: dict[tuple[str, str], Path] = {}  # named as a file: an unpacking gone wrong
    for path in sorted(folder.rglob("*.txt")):
        match = THUMOS_FILE.fullmatch(path.name)
        if match is None or _skipped(path, folder):
            continue
        key = (match["name"], match["subset"])
        if not path.is_file():
            folders.setdefault(key, path)
        elif match["name"] == BACKGROUND:
            errors.report(
                f"{path}: the class name {BACKGROUND!r} is reserved for frames in no interval; "
                "rename the class (the file)"
            )
        elif key in found:
            errors.report(f"{path}: a second {path.name} (the first is {found[key]}); keep one")
        else:
            found[key] = path
    for key, path in folders.items():
        if key not in found:
            errors.report(f"{path}: a folder, not the annotation file; put the file there")
    if not found:
        raise SplitError(
            f"no THUMOS'14 annotation file (<Class>_val.txt, <Class>_test.txt) anywhere under "
            f"{folder}; unpack the official temporal annotations there"
        )
    return found


def _thumos_lines(path: Path, errors: LineErrors) -> list[tuple[str, float, float, str]]:
    """``(video, start, end, "file:line")`` of each well-formed line of one annotation file."""
    out = []
    for lineno, fields in lines(path):
        where = f"{path}:{lineno}"
        if len(fields) != 3:
            errors.report(
                f"{where}: expected '<video> <start> <end>' (seconds), got {' '.join(fields)!r}"
            )
            continue
        video, start, end = fields[0], _seconds(fields[1]), _seconds(fields[2])
        if start is None or end is None:
            errors.report(
                f"{where}: start and end must be seconds (non-negative numbers), "
                f"got {fields[1]!r} and {fields[2]!r}"
            )
        elif not is_plain_name(video):
            errors.report(f"{where}: {video!r} is not a video id (one file name, no folder)")
        else:
            out.append((video, start, end, where))
    return out


# ---------------------------------------------------------------------------- ActivityNet
def read_activitynet(path: str | Path, errors: LineErrors | None = None) -> TemporalAnnotations:
    """ActivityNet-style JSON annotations.

    Args:
        path: The JSON file, or a folder holding exactly one ``.json``.
        errors: Where malformed entries go, as for :func:`read_thumos14`.

    Returns:
        The annotations: subset ``training`` gives the train side, ``validation`` the test side.

    Raises:
        SplitError: no such file, no or several ``.json`` in the folder, not JSON, no
            ``"database"`` object; malformed entries (unless ``errors`` collects them).
    """
    file = _activitynet_file(Path(path))
    sink = errors if errors is not None else LineErrors(collect=True)
    found: dict[tuple[Subset, str], list[tuple[str, float, float, str]]] = {}
    durations: dict[tuple[Subset, str], float | None] = {}
    for video, entry in _database(file).items():
        parsed = _activitynet_video(file, video, entry, sink)
        if parsed is not None:
            subset, duration, annotations = parsed
            found[subset, video], durations[subset, video] = annotations, duration
    _raise_collected(errors, sink, file)
    names = {name for annotations in found.values() for name, *_ in annotations}
    classes = (BACKGROUND, *sorted(names - {AMBIGUOUS}))
    index = {name: k for k, name in enumerate(classes)} | {AMBIGUOUS: AMBIGUOUS_LABEL}
    intervals = {
        key: [Interval(start, end, index[name], where) for name, start, end, where in found[key]]
        for key in found
    }
    return _assemble(classes, intervals, durations, file)


def _activitynet_file(path: Path) -> Path:
    """The JSON file itself, or the one ``.json`` in a folder (``rrn synth``'s own
    :data:`~rrn.data.synth_layouts.SYNTH_INFO` beside it is no annotation file)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise SplitError(f"{path} not found; pass ActivityNet's JSON file (or its folder)")
    found = sorted(
        p for p in path.glob("*.json") if not p.name.startswith(".") and p.name != SYNTH_INFO
    )
    if len(found) != 1:
        raise SplitError(
            f"{'no' if not found else 'several'} .json files in {path}"
            f"{' (' + ', '.join(p.name for p in found) + ')' if found else ''}; pass the "
            "annotation file itself (FILE.json)"
        )
    return found[0]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class _RepeatedKey(ValueError):
    """A key twice in one JSON object: ``json`` would keep the last silently."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(
                f"{json.dumps(key)} appears twice in one object (a JSON reader keeps only the "
                "last); give each video once"
            )
        out[key] = value
    return out


def _database(file: Path) -> dict[str, Any]:
    """The ``"database"`` object of an ActivityNet JSON file."""
    text = read_split_text(file)  # its own error for a missing or non-UTF-8 file
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise SplitError(f"{file}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    except _RepeatedKey as err:
        raise SplitError(f"{file}: {err}") from None
    except (ValueError, RecursionError) as err:  # NaN/Infinity; arrays nested past the stack
        raise SplitError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise SplitError(
            f'{file}: expected ActivityNet\'s layout {{"database": {{<video id>: {{"subset": '
            '..., "duration": ..., "annotations": [...]}}}}; there is no "database" object at '
            "the top"
        )
    return data["database"]


def _activitynet_video(
    file: Path, video: str, entry: Any, errors: LineErrors
) -> tuple[Subset, float | None, list[tuple[str, float, float, str]]] | None:
    """``(subset, duration, [(label, start, end, where)])`` of one well-formed video entry of a
    training or validation subset; None for a testing entry or a reported problem."""
    at = f"{file}: database[{json.dumps(video)}]"
    if not isinstance(entry, dict):
        errors.report(f'{at}: expected an object with "subset" and "annotations"')
        return None
    subset = entry.get("subset")
    if not isinstance(subset, str) or subset not in ACTIVITYNET_SUBSETS:
        errors.report(
            f'{at}.subset: expected "training", "validation" or "testing", got {subset!r}'
        )
        return None
    side = ACTIVITYNET_SUBSETS[subset]
    if side is None:
        return None
    duration = entry.get("duration")
    if duration is not None and not _seconds(duration):
        errors.report(f"{at}.duration: expected the video's length in seconds, got {duration!r}")
        return None
    if not is_plain_name(video):
        errors.report(f"{at}: {video!r} is not a video id (one file name, no folder)")
        return None
    annotations = entry.get("annotations")
    if not isinstance(annotations, list):
        errors.report(
            f'{at}.annotations: expected a list of {{"segment": [<start>, <end>], "label": '
            f"<class>}}, got {annotations!r}"
        )
        return None
    parsed = [
        _activitynet_annotation(f"{at}.annotations[{k}]", a, errors)
        for k, a in enumerate(annotations)
    ]
    return side, None if duration is None else float(duration), [p for p in parsed if p]


def _activitynet_annotation(
    at: str, annotation: Any, errors: LineErrors
) -> tuple[str, float, float, str] | None:
    """``(label, start, end, where)`` of one annotation, or None (reported)."""
    if not isinstance(annotation, dict):
        errors.report(f'{at}: expected {{"segment": [<start>, <end>], "label": <class>}}')
        return None
    segment, label = annotation.get("segment"), annotation.get("label")
    seconds = [_seconds(s) for s in segment] if isinstance(segment, list) else []
    if len(seconds) != 2 or None in seconds:
        errors.report(
            f"{at}.segment: expected [<start>, <end>] in seconds (two non-negative numbers), "
            f"got {segment!r}"
        )
        return None
    if not isinstance(label, str) or not label.strip():
        errors.report(f"{at}.label: expected a class name, got {label!r}")
        return None
    if label == BACKGROUND:
        errors.report(f"{at}.label: {BACKGROUND!r} is reserved for frames in no interval")
        return None
    return label, seconds[0], seconds[1], at

"""THUMOS'14's temporal annotations (``--dataset thumos14``), for online action detection.

* ``<Class>_val.txt`` and ``<Class>_test.txt`` anywhere under ``--split-dir`` (the two official
  annotation folders unpacked there), one action instance per line: ``<video> <start> <end>``
  in seconds; ``Ambiguous_val.txt`` / ``Ambiguous_test.txt`` mark stretches never a target nor
  scored. Read by :func:`rrn.detection.annotations.read_thumos14`, which names every malformed
  line by file and line.
* Classes: ``Background`` (index 0), then the annotated names, sorted.
* The ``val`` videos train and the ``test`` videos test (the convention of online action
  detection); only annotated videos are used.
* Videos ``<video>.<ext>`` (``video_validation_0000051.mp4``) flat in ``--data-root`` or under
  its ``validation/`` and ``test/`` folders.

The reader lives in :mod:`rrn.detection.annotations`, which imports this package's
:mod:`~rrn.data.formats.text`: it is imported when a split is parsed, not with the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import Entry, LineErrors
from rrn.data.synth_layouts import SYNTH_FPS, SynthVideo, shell_word, write_video

#: The side of the split -> the folder under ``--data-root`` its videos may sit in.
FOLDERS = {"train": "validation", "test": "test"}
#: The side -> the suffix of its annotation files.
SUFFIXES = {"train": "val", "test": "test"}
#: Where ``rrn synth`` puts the annotation files under the dataset folder, as distributed.
SYNTH_ANNOTATIONS = {
    "train": "annotations/TH14_Temporal_annotations_validation/annotation",
    "test": "annotations/TH14_Temporal_Annotations_Test/annotations/annotation",
}


def temporal_entries(annotations, folders: dict[str, tuple[str, ...]]) -> list[Entry]:
    """One entry per annotated video of ``annotations``
    (:class:`~rrn.detection.annotations.TemporalAnnotations`), its intervals attached, label -1.

    Args:
        folders: Side -> the places a video ``<video>.mp4`` is looked for (``"{}.mp4"`` style
            patterns, relative to the data root), in order; the resolver also tries the
            format's other extensions.
    """
    entries = []
    for video in annotations.videos:
        where = (video.intervals or video.ambiguous or (None,))[0]
        source, line = _listed_at(where.where if where else str(annotations.source))
        candidates = tuple(p.format(video.video) for p in folders[video.subset])
        entries.append(Entry(video.subset, candidates, -1, source, line, annotation=video))
    return entries


def _listed_at(where: str) -> tuple[Path, int]:
    """``(file, line)`` of an interval's ``file:line`` (1 when the place names no line)."""
    file, _, line = where.rpartition(":")
    return (Path(file), int(line)) if file and line.isdigit() else (Path(where.split(":")[0]), 1)


def parse_thumos14(source: SplitSource, errors: LineErrors) -> Annotations:
    """The format's :class:`~rrn.data.formats.base.Parser`: every annotation file under
    ``--split-dir``, one entry per annotated video."""
    from rrn.detection.annotations import read_thumos14  # imports formats.text: not at the top

    annotations = read_thumos14(source.split_dir, errors)
    folders = {side: ("{}.mp4", f"{folder}/{{}}.mp4") for side, folder in FOLDERS.items()}
    return Annotations(
        temporal_entries(annotations, folders), list(annotations.classes), annotations
    )


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """THUMOS'14's layout: ``validation/video_validation_NNNNNNN.mp4`` (train) and
    ``test/video_test_NNNNNNN.mp4`` (MJPEG at 25 frames/s), the ``<Class>_val.txt`` /
    ``<Class>_test.txt`` files and ``Ambiguous_*.txt`` in the official annotation folders."""
    lines: dict[tuple[str, str], list[str]] = {}
    count = {"train": 0, "test": 0}
    for video in videos:
        side = "test" if video.test else "train"
        count[side] += 1
        name = f"video_{FOLDERS[side]}_{count[side]:07d}"
        write_video(out / FOLDERS[side] / f"{name}.mp4", video.frames, fps=SYNTH_FPS)
        for interval in video.intervals:
            label = "Ambiguous" if interval.label < 0 else classes[interval.label]
            lines.setdefault((side, label), []).append(f"{name} {' '.join(interval.seconds())}")
    files = {}
    for side in ("train", "test"):
        folder = out / SYNTH_ANNOTATIONS[side]
        folder.mkdir(parents=True, exist_ok=True)
        for label in [*classes, "Ambiguous"]:
            files[side, label] = folder / f"{label}_{SUFFIXES[side]}.txt"
            files[side, label].write_text("".join(f"{x}\n" for x in lines.get((side, label), [])))
    return SynthWritten(
        f"--data-root {shell_word(out)} --split-dir {shell_word(out / 'annotations')}",
        sum(count.values()),
        out / SYNTH_ANNOTATIONS["train"],
        out / SYNTH_ANNOTATIONS["test"],
    )


FORMAT = DatasetFormat(
    name="thumos14",
    title="THUMOS'14",
    parse=parse_thumos14,
    annotations="<Class>_val.txt and <Class>_test.txt (THUMOS'14's temporal annotations)",
    videos="<video>.mp4, flat or under validation/ and test/",
    temporal=True,
    background=True,
    synth=write_synth,
)

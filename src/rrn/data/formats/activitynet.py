"""ActivityNet-style JSON annotations (``--dataset activitynet``): the file people also write
for their own untrimmed videos.

* ``--split-dir FILE.json`` (or a folder holding one ``.json``): ``{"database": {<video id>:
  {"subset": "training" | "validation" | "testing", "duration": <seconds>, "annotations":
  [{"segment": [<start>, <end>], "label": <class>}]}}}``. Read by
  :func:`rrn.detection.annotations.read_activitynet`, which names every malformed entry by file
  and JSON path. A label ``Ambiguous`` marks a stretch never a target nor scored.
* Classes: ``Background`` (index 0), then the annotated labels, sorted.
* Subset ``training`` trains, ``validation`` tests; ``testing`` (no annotations) is skipped.
* Videos ``<video id>.<ext>`` or ``v_<video id>.<ext>`` (ActivityNet's downloads) flat in
  ``--data-root``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import LineErrors, read_split_text
from rrn.data.formats.thumos14 import temporal_entries
from rrn.data.synth_layouts import SYNTH_FPS, SynthVideo, shell_word, write_video

SYNTH_FILE = "activity_net.json"
SUBSETS = {"train": "training", "test": "validation"}


def parse_activitynet(source: SplitSource, errors: LineErrors) -> Annotations:
    """The format's :class:`~rrn.data.formats.base.Parser`: the JSON file, one entry per video
    of the training and validation subsets, listed at the line of its key."""
    from rrn.detection.annotations import read_activitynet  # imports formats.text: not at the top

    annotations = read_activitynet(source.split_dir, errors)
    places = ("{}.mp4", "v_{}.mp4")
    entries = temporal_entries(annotations, {"train": places, "test": places})
    file = Path(annotations.source)
    lines = _key_lines(file)
    entries = [e._replace(source=file, line=lines.get(e.annotation.video, 1)) for e in entries]
    return Annotations(entries, list(annotations.classes), annotations)


def _key_lines(file: Path) -> dict[str, int]:
    """Video id -> the line where its key opens an object (``"id": {``), for messages."""
    found: dict[str, int] = {}
    for lineno, line in enumerate(read_split_text(file).splitlines(), 1):
        for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:\s*\{', line):
            try:
                found.setdefault(json.loads(f'"{match[1]}"'), lineno)
            except ValueError:
                continue
    return found


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """ActivityNet's JSON (one entry per video, its duration and segments; an ambiguous stretch
    labelled ``Ambiguous``) and videos ``<id>.mp4`` (MJPEG at 25 frames/s) flat under ``out``."""
    database = {}
    for i, video in enumerate(videos):
        vid = f"synth{i + 1:04d}"
        write_video(out / f"{vid}.mp4", video.frames, fps=SYNTH_FPS)
        segments = [
            {
                "segment": [float(s) for s in interval.seconds()],
                "label": "Ambiguous" if interval.label < 0 else classes[interval.label],
            }
            for interval in video.intervals
        ]
        database[vid] = {
            "subset": SUBSETS["test" if video.test else "train"],
            "duration": len(video.frames) / SYNTH_FPS,
            "annotations": segments,
        }
    file = out / SYNTH_FILE
    file.write_text(json.dumps({"version": "rrn synth", "database": database}, indent=1) + "\n")
    return SynthWritten(
        f"--data-root {shell_word(out)} --split-dir {shell_word(file)}", len(database), file, file
    )


FORMAT = DatasetFormat(
    name="activitynet",
    title="ActivityNet",
    test_side="validation",
    parse=parse_activitynet,
    annotations='ActivityNet\'s JSON ({"database": {<id>: {"subset", "duration", "annotations"}}})',
    videos="<id>.mp4 or v_<id>.mp4, flat",
    temporal=True,
    background=True,
    annotation_file=True,
    synth=write_synth,
)

"""Something-Something v2 as distributed: three JSON files in ``--split-dir``, videos flat.

* ``something-something-v2-labels.json``: ``{"<class name>": "<index>", ...}``, indices
  0..K-1 (the class order);
* ``something-something-v2-train.json`` (train) and ``something-something-v2-validation.json``
  (test): lists of ``{"id": "78687", "template": "Holding [something] next to [something]",
  ...}``; the class is the template with its brackets removed ("Holding something next to
  something");
* videos ``<id>.webm`` (VP9) flat under ``--data-root``.

The class is often the direction or order of a motion ("Pushing something from left to
right"): train without horizontal flips (``--no-hflip``) and evaluate without ``--flip``
(the record says so: :attr:`~rrn.data.formats.base.DatasetFormat.direction_dependent`).
A malformed entry is reported by file and line (where the entry starts) and skipped.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rrn.data.formats.base import Annotations, DatasetFormat, SplitSource, SynthWritten
from rrn.data.formats.text import Entry, LineErrors, SplitError, is_plain_name, read_split_text
from rrn.data.synth_layouts import SynthVideo, shell_word, write_video

LABELS = "something-something-v2-labels.json"
FILES = {
    "train": "something-something-v2-train.json",
    "test": "something-something-v2-validation.json",
}
#: Something-Something v2 templates for the four named directions (real SSv2 classes).
SYNTH_TEMPLATES = {
    "MoveRight": "Pushing [something] from left to right",
    "MoveLeft": "Pushing [something] from right to left",
    "MoveUp": "Moving [something] up",
    "MoveDown": "Moving [something] down",
}


def json_items(path: Path) -> list[tuple[int, Any]]:
    """``(line, item)`` for each item of a JSON file holding one list, ``line`` where it starts.

    Raises:
        SplitError: not a JSON list (naming the line where parsing failed).
    """
    text = read_split_text(path)
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    decoder, items = json.JSONDecoder(), []
    pos = len(text) - len(text.lstrip())
    if not text.startswith("[", pos):
        raise SplitError(f"{path}:{line(pos)}: expected a JSON list ('[')")
    pos += 1
    try:
        while True:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            if text.startswith("]", pos):
                return items
            item, end = decoder.raw_decode(text, pos)
            items.append((line(pos), item))
            pos = end + len(text[end:]) - len(text[end:].lstrip())
            if text.startswith(",", pos):
                pos += 1
            elif not text.startswith("]", pos):
                raise SplitError(f"{path}:{line(pos)}: expected ',' or ']' after an entry")
    except json.JSONDecodeError as err:
        raise SplitError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None


def read_labels(path: Path) -> list[str]:
    """Class names in index order from ``{name: "index"}``; a broken file is always fatal."""
    try:
        labels = json.loads(read_split_text(path))
    except json.JSONDecodeError as err:
        raise SplitError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:  # arrays nested past the stack
        raise SplitError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(labels, dict) or not labels:
        raise SplitError(f'{path}: expected a JSON object {{"class name": "index", ...}}')
    try:
        by_index = {int(v): k for k, v in labels.items()}
    except (TypeError, ValueError):
        raise SplitError(f'{path}: every value must be a class index such as "0"') from None
    if sorted(by_index) != list(range(len(labels))):
        raise SplitError(f"{path}: class indices must be 0..{len(labels) - 1}, each once")
    return [by_index[i] for i in range(len(labels))]


def _entry(
    item: Any, index: dict[str, int], path: Path, line: int, errors: LineErrors
) -> tuple[str, int] | None:
    """``(relative video path, label)`` of one list item, or None (reported)."""
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("id"), str | int)
        or not isinstance(item.get("template"), str)
    ):
        errors.report(
            f'{path}:{line}: expected an object with "id" and "template", got {str(item)[:80]!r}'
        )
        return None
    vid = str(item["id"])
    if not is_plain_name(vid):
        errors.report(f"{path}:{line}: id {vid!r} is not a video id")
        return None
    name = item["template"].replace("[", "").replace("]", "")
    if name not in index:
        errors.report(
            f"{path}:{line}: template {item['template']!r} (class {name!r}) is not in {LABELS}"
        )
        return None
    return f"{vid}.webm", index[name]


def parse_ssv2(source: SplitSource, errors: LineErrors) -> Annotations:
    """Entries and classes of Something-Something v2 (train: train.json, test: validation.json).

    Raises:
        SplitError: a JSON file is missing or not a list.
    """
    classes = read_labels(source.split_dir / LABELS)
    index = {name: i for i, name in enumerate(classes)}
    entries: list[Entry] = []
    for side, name in FILES.items():
        path = source.split_dir / name
        for line, item in json_items(path):
            if (got := _entry(item, index, path, line, errors)) is not None:
                entries.append(Entry(side, got[0], got[1], source=path, line=line))
    return Annotations(entries, classes)


def synth_template(name: str) -> str:
    """The template of a synthetic class (``MoveRight`` -> ``Pushing [something] from ...``)."""
    return SYNTH_TEMPLATES.get(name, f"Moving [something] {name.removeprefix('Move')}")


def write_synth(out: Path, classes: list[str], videos: Iterable[SynthVideo]) -> SynthWritten:
    """The three JSON files with Something-Something's templates, videos ``<id>.webm`` in VP9
    flat under ``out``."""
    entries = {"train": [], "validation": []}
    for i, video in enumerate(videos):
        vid = str(100 + i)
        write_video(
            out / f"{vid}.webm",
            video.frames,
            fps=12,
            codec="libvpx-vp9",
            pix_fmt="yuv420p",
            options={"crf": "4", "b:v": "0", "deadline": "realtime", "cpu-used": "8"},
        )
        template = synth_template(video.name)
        entries["validation" if video.test else "train"].append(
            {
                "id": vid,
                "label": template.replace("[something]", "a box").lower(),
                "template": template,
                "placeholders": ["a box"],
            }
        )
    labels = {
        synth_template(n).replace("[", "").replace("]", ""): str(i) for i, n in enumerate(classes)
    }
    (out / LABELS).write_text(json.dumps(labels, indent=1) + "\n")
    for side, items in entries.items():
        (out / f"something-something-v2-{side}.json").write_text(json.dumps(items, indent=1) + "\n")
    return SynthWritten(
        f"--data-root {shell_word(out)}",
        sum(map(len, entries.values())),
        out / FILES["train"],
        out / FILES["test"],
    )


FORMAT = DatasetFormat(
    name="ssv2",
    title="Something-Something v2",
    test_side="validation",
    parse=parse_ssv2,
    annotations=f"{LABELS}, {FILES['train']} and {FILES['test']}",
    videos="<id>.webm, flat",
    direction_dependent=True,
    synth=write_synth,
)

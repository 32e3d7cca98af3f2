"""Every dataset format, one module each, under one registry (:data:`FORMATS`).

Each module declares its :class:`~rrn.data.formats.base.DatasetFormat`: its parser (annotation
files as distributed -> typed :class:`~rrn.data.formats.text.Entry` records that
:func:`rrn.data.splits.load_split` resolves on disk, a malformed line reported by file and line
to the explicit collector it is given, so ``rrn check-data`` lists every bad line at once), its
traits (direction-dependent classes, timestamps, frame folders, list files, splits, video
extensions) and its ``rrn synth`` layout writer. The code that reads data asks the record, never
the name. The shared parsing lives in :mod:`~rrn.data.formats.text`:

* :mod:`~rrn.data.formats.ucf101`: UCF-101's ``ucfTrainTestlist/`` (CRLF as distributed);
* :mod:`~rrn.data.formats.hmdb51`: HMDB-51's ``<class>_test_split<k>.txt`` files;
* :mod:`~rrn.data.formats.lists`: list files (``relative/path label``) or class folders;
* :mod:`~rrn.data.formats.kinetics`: ``train.csv`` / ``validate.csv`` (Kinetics-400/600/700);
* :mod:`~rrn.data.formats.ssv2`: Something-Something v2's JSON files;
* :mod:`~rrn.data.formats.rawframes`: mmaction2's frame-folder lists;
* :mod:`~rrn.data.formats.thumos14`: THUMOS'14's temporal annotations (untrimmed videos);
* :mod:`~rrn.data.formats.activitynet`: ActivityNet-style JSON (untrimmed videos).

:data:`rrn.choices.DatasetName` lists the same names in the same order (a test ties them), so
``--dataset``'s choices and the settings' validation follow the registry; ``rrn synth --layout``
takes the names of :func:`synth_layouts`.
"""

from __future__ import annotations

from pathlib import Path

from rrn.data.formats import (
    activitynet,
    hmdb51,
    kinetics,
    lists,
    rawframes,
    ssv2,
    thumos14,
    ucf101,
)
from rrn.data.formats.base import (
    Annotations,
    DatasetFormat,
    Parser,
    SplitSource,
    SynthLayout,
    SynthWritten,
)
from rrn.data.formats.text import SplitError
from rrn.data.synth_layouts import SYNTH_INFO

#: ``--dataset`` name -> its format, in :data:`rrn.choices.DatasetName`'s order.
FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        ucf101.FORMAT,
        hmdb51.FORMAT,
        lists.FORMAT,
        kinetics.FORMAT,
        ssv2.FORMAT,
        rawframes.FORMAT,
        thumos14.FORMAT,
        activitynet.FORMAT,
    )
}


def dataset_format(name: str) -> DatasetFormat:
    """The format named ``name``.

    Raises:
        SplitError: no format has that name (the message lists them).
    """
    if name not in FORMATS:
        raise SplitError(f"unknown dataset {name!r}; choose {', '.join(FORMATS)}")
    return FORMATS[name]


def synth_layouts() -> tuple[str, ...]:
    """The formats ``rrn synth --layout`` can write (those with a synth writer), in order."""
    return tuple(name for name, f in FORMATS.items() if f.synth is not None)


def flip_changes_class(data) -> str | None:
    """Why a horizontally mirrored video of this data is another class, or None when a mirror
    keeps every label: its format's classes depend on direction (``ssv2``), or it is ``rrn
    synth``'s temporal-order data (classes are directions of motion, in any layout).

    Args:
        data: The data settings (:class:`~rrn.config.DataConfig`): ``dataset``, ``data_root``,
            ``split_dir``.
    """
    if dataset_format(data.dataset).direction_dependent:
        return f"--dataset {data.dataset}, whose classes depend on direction"
    for folder in (data.split_dir, data.data_root):
        if folder and (Path(folder) / SYNTH_INFO).is_file():
            return f"rrn synth's data ({folder}), whose classes are directions of motion"
    return None


__all__ = [
    "FORMATS",
    "Annotations",
    "DatasetFormat",
    "Parser",
    "SplitSource",
    "SynthLayout",
    "SynthWritten",
    "dataset_format",
    "flip_changes_class",
    "synth_layouts",
]

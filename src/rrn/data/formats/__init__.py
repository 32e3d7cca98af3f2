"""Every dataset format in its own module, under one registry (:data:`PARSERS`).

Each parser turns a dataset's annotation files, as distributed, into typed
:class:`~rrn.data.formats.text.Entry` records that :func:`rrn.data.splits.load_split` resolves on
disk, reporting a malformed line by file and line to the explicit collector it is given (so
``rrn check-data`` lists every bad line at once); the shared parsing lives in
:mod:`~rrn.data.formats.text`:

* :mod:`~rrn.data.formats.ucf101`: UCF-101's ``ucfTrainTestlist/`` (CRLF as distributed);
* :mod:`~rrn.data.formats.hmdb51`: HMDB-51's ``<class>_test_split<k>.txt`` files;
* :mod:`~rrn.data.formats.lists`: list files (``relative/path label``) or class folders;
* :mod:`~rrn.data.formats.kinetics`: ``train.csv`` / ``validate.csv`` (Kinetics-400/600/700);
* :mod:`~rrn.data.formats.ssv2`: Something-Something v2's JSON files;
* :mod:`~rrn.data.formats.rawframes`: mmaction2's frame-folder lists.
"""

from rrn.data.formats.hmdb51 import parse_hmdb51
from rrn.data.formats.kinetics import parse_kinetics
from rrn.data.formats.lists import parse_list
from rrn.data.formats.rawframes import parse_rawframes
from rrn.data.formats.ssv2 import parse_ssv2
from rrn.data.formats.ucf101 import parse_ucf101

#: ``--dataset`` name -> parser, called with keyword arguments ``root``, ``split_dir``, ``split``,
#: ``train_list``, ``test_list`` and ``errors`` (a :class:`~rrn.data.formats.text.LineErrors`),
#: returning ``(entries, classes, folders)``.
PARSERS = {
    "ucf101": parse_ucf101,
    "hmdb51": parse_hmdb51,
    "list": parse_list,
    "kinetics": parse_kinetics,
    "ssv2": parse_ssv2,
    "rawframes": parse_rawframes,
}

__all__ = [
    "PARSERS",
    "parse_hmdb51",
    "parse_kinetics",
    "parse_list",
    "parse_rawframes",
    "parse_ssv2",
    "parse_ucf101",
]

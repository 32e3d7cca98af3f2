"""Annotation formats beyond UCF-101, HMDB-51 and plain lists: one module per format.

Each parser turns a dataset's annotation files, as distributed, into the entries
:func:`rrn.data.splits.load_split` resolves on disk (``(side, relative path or candidate
paths, label, file, line[, frames])``), reporting a malformed line by file and line through
the same collector as the UCF-101 parser (so ``rrn check-data`` lists every bad line at once):

* :mod:`~rrn.data.formats.kinetics`: ``train.csv`` / ``validate.csv`` (Kinetics-400/600/700);
* :mod:`~rrn.data.formats.ssv2`: Something-Something v2's JSON files;
* :mod:`~rrn.data.formats.rawframes`: mmaction2's frame-folder lists.
"""

from rrn.data.formats.kinetics import parse_kinetics
from rrn.data.formats.rawframes import parse_rawframes
from rrn.data.formats.ssv2 import parse_ssv2

#: ``--dataset`` name -> parser returning ``(entries, classes, folders)``.
PARSERS = {"kinetics": parse_kinetics, "ssv2": parse_ssv2, "rawframes": parse_rawframes}

__all__ = ["PARSERS", "parse_kinetics", "parse_rawframes", "parse_ssv2"]

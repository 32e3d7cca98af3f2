"""Online action detection in untrimmed video: temporal annotations and their metrics.

One module per concern, each pure (no video, no model):

* :mod:`~rrn.detection.segments`: the :class:`~rrn.detection.segments.Segment` record (a
  video's stretch of one class, with a score when predicted) that annotations produce and
  metrics consume;
* :mod:`~rrn.detection.annotations`: THUMOS'14's ``<Class>_val.txt``/``<Class>_test.txt`` files
  and ActivityNet's JSON as typed records, the label of every sampled frame (multi-hot, with an
  ignore mask for ambiguous frames), and the checks ``rrn check-data`` reports;
* :mod:`~rrn.detection.metrics`: per-frame mAP and mcAP (as the LSTR/TeSTra/MiniROAD evaluation
  code computes them), segment mAP at several tIoU thresholds (as ActivityNet's detection
  evaluation computes it) and the detection delay, with the protocol written beside them;
* :mod:`~rrn.detection.scores`: score folders, the per-frame scores of every test video that
  the metrics read, whatever produced them (``rrn eval``, the GRU baseline, an exported model).

The package sits in the data and model layer: it imports :mod:`rrn.data.formats.text` (how a
malformed line is reported), :mod:`rrn.errors`, :mod:`rrn.files` and numpy, nothing above.
Scoring a score folder (the online tracker's segments, the files written) is
:mod:`rrn.evaluation.detection_scoring`'s.
"""

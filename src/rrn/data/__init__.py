"""Video data: split files and their formats, decoding, sampling, the frame cache, datasets.

One module per concern (each module's docstring says what it owns):

* :mod:`~rrn.data.formats`: every dataset format, one registry of typed records (parser,
  traits, synth layout); :mod:`~rrn.data.splits`: a format's entries found on disk -> video
  records; :mod:`~rrn.data.holdout`: a validation split carved by group;
* :mod:`~rrn.data.decode` (a video file -> uint8 frames), :mod:`~rrn.data.frame_folder` (a
  folder of JPEG frames -> the same), :mod:`~rrn.data.jpeg`, :mod:`~rrn.data.frame_counts`
  (what a container promises, read without decoding);
* :mod:`~rrn.data.sampling`: pure index rules and :class:`Sampling`, the frames a video gives;
* the frame cache: :mod:`~rrn.data.cache_store` (on disk: keys, checked reads, atomic
  writes; entry formats in :mod:`~rrn.data.cache_entries`), :mod:`~rrn.data.cache` (building
  it: ``rrn cache``) and :mod:`~rrn.data.source` (cache, else decode);
* :mod:`~rrn.data.transforms` (one random draw per clip) and :mod:`~rrn.data.datasets`
  (records + frames + sampling + transforms);
* :mod:`~rrn.data.synth` and :mod:`~rrn.data.synth_layouts` (``rrn synth``),
  :mod:`~rrn.data.check` (``rrn check-data``).

The names below are imported on first use (PEP 562): the settings schema validates with
:mod:`~rrn.data.sampling` and the format registry, and importing those must not load torch
(``rrn --help`` stays instant).
"""

import importlib

#: public name -> the module that owns it
_OWNERS = {
    "CacheReport": "cache",
    "FrameCache": "cache_store",
    "build_cache": "cache",
    "default_cache_dir": "cache_store",
    "Problem": "check",
    "check_dataset": "check",
    "SkippedVideo": "datasets",
    "VideoChunkDataset": "datasets",
    "collate_chunks": "datasets",
    "collate_videos": "datasets",
    "DecodeLimits": "decode",
    "VideoDecodeError": "decode",
    "VideoTooLongError": "decode",
    "available_decoders": "decode",
    "decode_video": "decode",
    "iter_decoded": "decode",
    "Sampling": "sampling",
    "default_short_side": "sampling",
    "eval_chunks": "sampling",
    "train_chunk": "sampling",
    "FrameSource": "source",
    "DatasetSplit": "splits",
    "SplitError": "splits",
    "VideoRecord": "splits",
    "load_split": "splits",
    "make_synthetic_dataset": "synth",
    "ClipTransform": "transforms",
    "EvalViews": "transforms",
}

__all__ = sorted(_OWNERS)


def __getattr__(name: str):
    if name in _OWNERS:
        value = getattr(importlib.import_module(f"rrn.data.{_OWNERS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rrn.data' has no attribute {name!r}")

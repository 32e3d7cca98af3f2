"""Video data: decoding, split files, chunk sampling, transforms, datasets, frame cache.

One module per concern (see each module's docstring): :mod:`~rrn.data.decode` (path ->
uint8 frames), :mod:`~rrn.data.splits` (split files -> records), :mod:`~rrn.data.sampling`
(pure index rules, :class:`Sampling`), :mod:`~rrn.data.source` (cache, else decode),
:mod:`~rrn.data.transforms` (one random draw per clip),
:mod:`~rrn.data.datasets` (the three combined), :mod:`~rrn.data.cache` (decode once),
:mod:`~rrn.data.synth` (the synthetic dataset), :mod:`~rrn.data.check` (``rrn check-data``);
:mod:`~rrn.data.formats` (every dataset format: one registry of typed records, each with its
parser, traits and synth layout),
:mod:`~rrn.data.frame_folder` (frame folder -> uint8 frames, no video decoding),
:mod:`~rrn.data.cache_entries` (the ``jpeg`` and ``npy`` cache entry formats).

The names below are imported on first use (PEP 562), so that importing one light module of the
package (the settings schema asks :mod:`~rrn.data.sampling` to validate) does not load torch:
``rrn --help`` stays instant.
"""

import importlib

#: public name -> the module that owns it
_OWNERS = {
    "CacheReport": "cache",
    "FrameCache": "cache",
    "build_cache": "cache",
    "default_cache_dir": "cache",
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

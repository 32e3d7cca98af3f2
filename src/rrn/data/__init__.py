"""Video data: decoding, split files, chunk sampling, transforms, datasets, frame cache.

One module per concern (see each module's docstring): :mod:`~rrn.data.decode` (path ->
uint8 frames), :mod:`~rrn.data.splits` (split files -> records), :mod:`~rrn.data.sampling`
(pure index rules, :class:`Sampling`), :mod:`~rrn.data.source` (cache, else decode),
:mod:`~rrn.data.transforms` (one random draw per clip),
:mod:`~rrn.data.datasets` (the three combined), :mod:`~rrn.data.cache` (decode once),
:mod:`~rrn.data.synth` (the synthetic dataset), :mod:`~rrn.data.check` (``rrn check-data``);
:mod:`~rrn.data.formats` (Kinetics, Something-Something v2, mmaction2 frame-folder lists),
:mod:`~rrn.data.frame_folder` (frame folder -> uint8 frames, no video decoding),
:mod:`~rrn.data.cache_entries` (the ``jpeg`` and ``npy`` cache entry formats).
"""

from rrn.data.cache import CacheReport, FrameCache, build_cache, default_cache_dir
from rrn.data.check import Problem, check_dataset
from rrn.data.datasets import SkippedVideo, VideoChunkDataset, collate_chunks, collate_videos
from rrn.data.decode import VideoDecodeError, available_decoders, decode_video
from rrn.data.sampling import Sampling, default_short_side, eval_chunks, train_chunk
from rrn.data.source import FrameSource
from rrn.data.splits import DatasetSplit, SplitError, VideoRecord, load_split
from rrn.data.synth import make_synthetic_dataset
from rrn.data.transforms import ClipTransform, EvalViews

__all__ = [
    "CacheReport", "ClipTransform", "DatasetSplit", "EvalViews", "FrameCache", "FrameSource", "Problem",
    "Sampling", "SkippedVideo",
    "SplitError", "VideoChunkDataset", "VideoDecodeError", "VideoRecord", "available_decoders",
    "build_cache", "check_dataset", "collate_chunks", "collate_videos", "decode_video",
    "default_cache_dir", "default_short_side", "eval_chunks", "load_split",
    "make_synthetic_dataset", "train_chunk",
]

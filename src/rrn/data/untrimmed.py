"""Training chunks from inside untrimmed videos, for online action detection (the temporal
formats: ``--dataset thumos14``, ``activitynet``).

An online model answers, at every sampled frame, for *that* frame, having seen only the frames
before it. So a training chunk is the ``T`` sampled frames **ending** at a frame drawn from
inside the video (:func:`~rrn.data.sampling.chunk_ending_at`), and its target is the label of
that **last** frame (:func:`~rrn.detection.labels.frame_labels`: the intervals containing its
time, half-open; Background when none): ``{"clip": (T, 3, S, S), "target": (K,) multi-hot,
"label": one of its classes, "video_index"}``. The loss reads the multi-hot target as a
distribution (:mod:`rrn.train.step`).

* **Ambiguous frames are never a target**: the last frame is drawn among the frames outside
  every ambiguous stretch (earlier frames of the chunk may lie in one: they are input only).
* **Background is a class**, and a setting keeps it from swamping the batches: with
  ``background_fraction = f``, item ``i`` draws its last frame among its video's background
  frames when :func:`~rrn.data.sampling.is_background_item` says so (exactly ``floor(n f)`` of
  any ``n`` first items, evenly spread), else among its action frames (a video without frames
  of the kind asked gives one of the other kind). ``f`` is capped at the background share of
  the training frames: the setting bounds it, never raises it. ``None``: last frames drawn
  uniformly, background as it comes.
* **Chunks per video scale with its length**: one per ``seconds_per_chunk`` seconds of it
  (:func:`~rrn.data.sampling.chunks_for`), times ``chunks_per_video``.

Every draw comes from ``np.random.default_rng((seed, epoch, index))``, and the number of items
of each video from its container's header (fixed when the set is built, whatever the cache
holds), so the data order is a pure function of ``(seed, epoch, index)``: resumed runs and any
number of workers or processes draw the same chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from rrn.data.datasets import SkippedVideo
from rrn.data.decode import VideoDecodeError
from rrn.data.frame_counts import sampled_shape
from rrn.data.sampling import Timeline, chunk_ending_at, chunks_for, is_background_item
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.transforms import ClipTransform
from rrn.detection.labels import frame_labels

logger = logging.getLogger(__name__)


class VideoPlan(NamedTuple):
    """What the training set knows of one untrimmed video before reading a frame of it."""

    timeline: Timeline | None
    """When its sampled frames are; None when its header could not be read (no chunks)."""
    chunks: int
    """Training items per epoch."""
    background: int
    """Sampled frames that are Background and not ambiguous (by the header's frame count)."""
    action: int
    """Sampled frames with an action and not ambiguous."""


def plan_video(
    record: VideoRecord,
    timeline: Timeline | None,
    num_classes: int,
    *,
    seconds_per_chunk: float,
    chunks_per_video: int = 1,
) -> VideoPlan:
    """A video's :class:`VideoPlan`: its frames labelled by its timeline, its chunks counted;
    a video without any frame outside its ambiguous stretches gives none."""
    if timeline is None:
        return VideoPlan(None, 0, 0, 0)
    labels = frame_labels(record.annotation, timeline.times(), num_classes)
    usable = ~labels.ignore  # (N,)
    background = int((labels.targets[:, 0] & usable).sum())
    action = int(usable.sum()) - background
    chunks = chunks_for(timeline.seconds, seconds_per_chunk, chunks_per_video)
    return VideoPlan(timeline, chunks if background + action else 0, background, action)


def probe_timeline(record: VideoRecord, source: FrameSource) -> Timeline | None:
    """The timeline of a video from its container's header, or None (a warning logged) when
    unreadable."""
    try:
        return sampled_shape(record.path, source.sampling).timeline(source.sampling)
    except (VideoDecodeError, ValueError, OSError) as err:
        logger.warning("rrn: warning: skipping video %s: %s", record.video_id, err)
        return None


def frame_times(record: VideoRecord, source: FrameSource, frames: int) -> np.ndarray | None:
    """(N,) seconds of the first ``frames`` sampled frames of a video (its timeline from the
    container's header), or None (a warning logged) when the header cannot be read."""
    timeline = probe_timeline(record, source)
    return None if timeline is None else timeline.times(frames)


class UntrimmedChunkDataset(Dataset):
    """Training chunks from inside untrimmed videos, labelled by their last frame (see the
    module docstring).

    Args:
        records: The videos, each with its :attr:`~rrn.data.splits.VideoRecord.annotation`.
        source: Where frames come from (cache, else decode).
        transform: A training :class:`~rrn.data.transforms.ClipTransform`.
        context: Frames per chunk ``T``.
        num_classes: ``K``, Background (class 0) included.
        timelines: Each video's :class:`~rrn.data.sampling.Timeline` (default: read from its
            container's header; None for a video to leave out).
        seconds_per_chunk: One training chunk per this many seconds of a video, per epoch.
        chunks_per_video: Multiplies that.
        background_fraction: The share of items whose last frame is Background, at most
            (capped at its share of the frames); None: drawn as the frames come.
        seed: Base seed of all random draws.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        *,
        source: FrameSource,
        transform: ClipTransform,
        context: int,
        num_classes: int,
        timelines: Sequence[Timeline | None] | None = None,
        seconds_per_chunk: float = 1.0,
        chunks_per_video: int = 1,
        background_fraction: float | None = 0.5,
        seed: int = 0,
    ):
        if context < 1:
            raise ValueError(f"context (T) must be >= 1, got {context}")
        self.records = list(records)
        if timelines is None:
            timelines = [probe_timeline(r, source) for r in self.records]
        self.plans = [
            plan_video(
                r,
                t,
                num_classes,
                seconds_per_chunk=seconds_per_chunk,
                chunks_per_video=chunks_per_video,
            )
            for r, t in zip(self.records, timelines, strict=True)
        ]
        self.starts = np.cumsum([0] + [p.chunks for p in self.plans])  # (V + 1,)
        self.source, self.transform, self.context = source, transform, context
        self.num_classes, self.seed, self.epoch = num_classes, seed, 0
        self.train = True
        self.background_fraction = _capped(background_fraction, self.plans)

    @classmethod
    def from_config(
        cls, records: list[VideoRecord], data, *, num_classes: int, context: int, seed: int = 0
    ) -> UntrimmedChunkDataset:
        """The training set a :class:`~rrn.config.DataConfig` describes."""
        return cls(
            records,
            source=FrameSource.from_config(data),
            transform=ClipTransform(data.frame_size, True, hflip=data.hflip),
            context=context,
            num_classes=num_classes,
            seconds_per_chunk=data.seconds_per_chunk,
            chunks_per_video=data.chunks_per_video,
            background_fraction=data.background_fraction,
            seed=seed,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of this epoch (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def video_index(self, index: int) -> int:
        """The record behind item ``index`` (videos without chunks are passed over)."""
        return int(np.searchsorted(self.starts, index, side="right")) - 1

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        vi = self.video_index(index)
        rec, plan = self.records[vi], self.plans[vi]
        try:
            frames = self.source(rec.path)
        except VideoDecodeError as err:
            logger.warning("rrn: warning: skipping video %s: %s", rec.video_id, err)
            return SkippedVideo(vi, rec.video_id, err.reason)
        labels = frame_labels(rec.annotation, plan.timeline.times(len(frames)), self.num_classes)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        last = self._last_frame(labels, index, rng)
        if last is None:  # the decoded video is shorter than its header said
            return SkippedVideo(vi, rec.video_id, "no sampled frame outside ambiguous stretches")
        idx = chunk_ending_at(last, self.context)
        clip = self.transform(np.asarray(frames[list(idx)]), rng)  # (T, 3, S, S)
        target = labels.targets[last]  # (K,) multi-hot
        return {
            "clip": clip,
            "target": torch.from_numpy(target.astype(np.float32)),
            "label": int(np.flatnonzero(target)[0]),  # Background, or the first action class
            "video_index": vi,
            "frame": last,
        }

    def _last_frame(self, labels, index: int, rng: np.random.Generator) -> int | None:
        """The frame item ``index`` answers for: outside every ambiguous stretch, from the
        background or the action frames as :func:`~rrn.data.sampling.is_background_item`
        says (either, without a background fraction or when the video has none of that kind)."""
        usable = ~labels.ignore  # (N,)
        pool = usable
        if self.background_fraction is not None:
            background = labels.targets[:, 0]  # (N,)
            want = (
                background if is_background_item(index, self.background_fraction) else ~background
            )
            if (usable & want).any():
                pool = usable & want
        candidates = np.flatnonzero(pool)
        if not len(candidates):
            return None
        return int(candidates[rng.integers(len(candidates))])


def _capped(fraction: float | None, plans: Sequence[VideoPlan]) -> float | None:
    """``fraction`` capped at the background share of the planned videos' usable frames."""
    if fraction is None:
        return None
    frames = sum(p.background + p.action for p in plans if p.chunks)
    share = sum(p.background for p in plans if p.chunks) / frames if frames else 0.0
    return min(fraction, share)

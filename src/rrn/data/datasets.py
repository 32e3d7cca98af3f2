"""Datasets: records + a frame source (cache, else decode) + chunk sampling + transforms.

* train: ``len = len(records) * chunks_per_video``; item ``i`` is one random chunk of video
  ``i // chunks_per_video``: ``{"clip": (T, 3, S, S), "label", "video_index"}``.
* eval: ``len = len(records)``; item ``i`` is every chunk of video ``i`` (see
  :func:`rrn.data.sampling.eval_chunks`): ``{"clips": (M, T, 3, S, S), "label", "video_index"}``,
  or with several evaluation views (:class:`~rrn.data.transforms.EvalViews`) every view of
  every chunk, ``(M, V, T, 3, S, S)``.

All randomness (chunk start, crop, flip) comes from ``np.random.default_rng((seed, epoch,
index))``: a pure function of the item, so results do not depend on ``num_workers``, worker
order or process, and a resumed run redraws exactly what it would have drawn.

A video that cannot be decoded yields a :class:`SkippedVideo` (falsy, carries the video
index and the reason) and a warning instead of raising, so one bad file never kills an
epoch; the collate functions drop it and list its index under ``"skipped"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from rrn.data.decode import VideoDecodeError
from rrn.data.sampling import eval_chunks, train_chunk
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.transforms import CENTRE_CROP, ClipTransform, EvalViews

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedVideo:
    """What a dataset yields for a video it could not read. Falsy, like ``None``."""

    video_index: int
    video_id: str
    reason: str

    def __bool__(self) -> bool:
        return False


class VideoChunkDataset(Dataset):
    """Chunks of ``T`` sampled frames from a list of videos, built from injected parts.

    Args:
        records: The videos.
        source: Where frames come from (:class:`~rrn.data.source.FrameSource`: cache, else
            decode, with one sampling).
        transform: :class:`~rrn.data.transforms.ClipTransform`; its ``train`` flag makes this a
            training set (one random chunk per item, jittered) or an evaluation set (all chunks
            of a video, centre crop).
        context: Frames per chunk ``T``.
        chunks_per_video: Training items per video per epoch.
        eval_stride: Distance between eval chunk starts; default ``T`` (non-overlapping).
        seed: Base seed of all random draws.
    """

    def __init__(
        self,
        records: list[VideoRecord],
        *,
        source: FrameSource,
        transform: ClipTransform,
        context: int,
        chunks_per_video: int = 1,
        eval_stride: int | None = None,
        seed: int = 0,
    ):
        if context < 1:
            raise ValueError(f"context (T) must be >= 1, got {context}")
        if chunks_per_video < 1:
            raise ValueError(f"chunks_per_video must be >= 1, got {chunks_per_video}")
        self.records = list(records)
        self.source = source
        self.transform = transform
        self.context = context
        self.train = transform.train
        self.chunks_per_video = chunks_per_video
        self.eval_stride = eval_stride
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_config(
        cls,
        records: list[VideoRecord],
        data,
        *,
        context: int,
        train: bool,
        seed: int = 0,
        views: EvalViews = CENTRE_CROP,
    ) -> VideoChunkDataset:
        """The training or evaluation set a :class:`~rrn.config.DataConfig` describes (an
        evaluation set with ``views`` of each chunk)."""
        return cls(
            records,
            source=FrameSource.from_config(data),
            transform=ClipTransform(data.frame_size, train, hflip=data.hflip, views=views),
            context=context,
            chunks_per_video=data.chunks_per_video if train else 1,
            eval_stride=data.eval_stride,
            seed=seed,
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of this epoch (call before each epoch, like
        ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * (self.chunks_per_video if self.train else 1)

    def video_index(self, index: int) -> int:
        """The record behind dataset item ``index``."""
        return index // self.chunks_per_video if self.train else index

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        vi = self.video_index(index)
        rec = self.records[vi]
        try:
            frames = self.source(rec.path)
        except VideoDecodeError as err:
            logger.warning("rrn: warning: skipping video %s: %s", rec.video_id, err)
            return SkippedVideo(vi, rec.video_id, err.reason)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.train:
            idx = train_chunk(len(frames), self.context, rng)
            clip = self.transform(np.asarray(frames[list(idx)]), rng)  # (T, 3, S, S)
            return {"clip": clip, "label": rec.label, "video_index": vi}
        chunks = eval_chunks(len(frames), self.context, self.eval_stride)
        used = sorted({i for c in chunks for i in c})
        # (M, T)
        pos = torch.tensor([[{f: j for j, f in enumerate(used)}[i] for i in c] for c in chunks])
        if self.transform.views.count == 1:
            x = self.transform(np.asarray(frames[used]), None)  # (N', 3, S, S): each frame once
            return {"clips": x[pos], "label": rec.label, "video_index": vi}  # (M, T, 3, S, S)
        x = self.transform.views_of(np.asarray(frames[used]))  # (V, N', 3, S, S)
        clips = x[:, pos].transpose(0, 1)  # (V, M, T, 3, S, S) -> (M, V, T, 3, S, S)
        return {"clips": clips, "label": rec.label, "video_index": vi}


def _split_skipped(batch) -> tuple[list[dict], list[int]]:
    items, skipped = [], []
    for item in batch:
        if isinstance(item, SkippedVideo):
            skipped.append(item.video_index)
        elif item is None:
            skipped.append(-1)  # a dataset that returned a bare None: index unknown
        else:
            items.append(item)
    return items, skipped


def collate_chunks(batch) -> dict:
    """Collate training items; skipped videos are dropped and listed.

    Returns:
        ``{"clip": (B, T, 3, S, S), "label": (B,) long, "video_index": (B,) long,
        "skipped": list of video indices}``, and ``"target": (B, K)`` float multi-hot when the
        items carry one (chunks of untrimmed videos); ``B`` may be 0 (then ``clip`` is empty).
    """
    items, skipped = _split_skipped(batch)
    if not items:
        return {
            "clip": torch.empty(0),
            "label": torch.empty(0, dtype=torch.long),
            "video_index": torch.empty(0, dtype=torch.long),
            "skipped": skipped,
        }
    out = {
        "clip": torch.stack([it["clip"] for it in items]),  # B x (T, 3, S, S) -> (B, T, 3, S, S)
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "video_index": torch.tensor([it["video_index"] for it in items], dtype=torch.long),
        "skipped": skipped,
    }
    if "target" in items[0]:  # untrimmed videos (rrn.data.untrimmed): the last frame's labels
        out["target"] = torch.stack([it["target"] for it in items])  # B x (K,) -> (B, K)
    return out


def collate_videos(batch) -> dict:
    """Collate evaluation items (whole videos); skipped videos are dropped and listed.

    Returns:
        ``{"clips": (sum M, T, 3, S, S) (or (sum M, V, T, 3, S, S) with views), "chunk_video": (sum
        M,) long video index per chunk,
        "label": (V,) long, "video_index": (V,) long, "skipped": list of video indices}``.
    """
    items, skipped = _split_skipped(batch)
    if not items:
        return {
            "clips": torch.empty(0),
            "chunk_video": torch.empty(0, dtype=torch.long),
            "label": torch.empty(0, dtype=torch.long),
            "video_index": torch.empty(0, dtype=torch.long),
            "skipped": skipped,
        }
    return {
        "clips": torch.cat([it["clips"] for it in items]),
        # (M_v, [V,] T, 3, S, S) -> (sum M, [V,] T, 3, S, S)
        "chunk_video": torch.cat(
            [torch.full((len(it["clips"]),), it["video_index"], dtype=torch.long) for it in items]
        ),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "video_index": torch.tensor([it["video_index"] for it in items], dtype=torch.long),
        "skipped": skipped,
    }

"""Datasets: records + decoding (or the frame cache) + chunk sampling + transforms.

* train: ``len = len(records) * chunks_per_video``; item ``i`` is one random chunk of video
  ``i // chunks_per_video``: ``{"clip": (T, 3, S, S), "label", "video_index"}``.
* eval: ``len = len(records)``; item ``i`` is every chunk of video ``i`` (see
  :func:`rrn.data.sampling.eval_chunks`): ``{"clips": (M, T, 3, S, S), "label", "video_index"}``.

All randomness (chunk start, crop, flip) comes from ``np.random.default_rng((seed, epoch,
index))``: a pure function of the item, so results do not depend on ``num_workers``, worker
order or process, and a resumed run redraws exactly what it would have drawn.

A video that cannot be decoded yields a :class:`SkippedVideo` (falsy, carries the video
index and the reason) and a warning instead of raising, so one bad file never kills an
epoch; the collate functions drop it and list its index under ``"skipped"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from rrn.data.cache import FrameCache
from rrn.data.decode import VideoDecodeError, decode_video, resolve_backend
from rrn.data.sampling import eval_chunks, train_chunk
from rrn.data.splits import VideoRecord
from rrn.data.transforms import ClipTransform, default_short_side


@dataclass(frozen=True)
class SkippedVideo:
    """What a dataset yields for a video it could not read. Falsy, like ``None``."""

    video_index: int
    video_id: str
    reason: str

    def __bool__(self) -> bool:
        return False


class VideoChunkDataset(Dataset):
    """Chunks of ``T`` sampled frames from a list of videos.

    Args:
        records: The videos.
        context: Frames per chunk ``T``.
        train: Random chunks + jitter (``True``) or all chunks + centre crop (``False``).
        sample_every: Keep every k-th decoded frame (paper: 10).
        fps: Sample at this frame rate instead (overrides ``sample_every``).
        frame_size: Output side ``S``.
        short_side: Decode-time resize of the shorter side; default ``round(S * 8 / 7)``.
        chunks_per_video: Training items per video per epoch.
        eval_stride: Distance between eval chunk starts; default ``T`` (non-overlapping).
        cache_dir: Frame cache folder (see :mod:`rrn.data.cache`). Cached videos are read
            from it, others are decoded and added to it; ``None`` always decodes.
        decoder: Decoding backend (``"auto"``, ``"pyav"``, ``"torchcodec"``).
        seed: Base seed of all random draws.
        hflip: Random horizontal flips in training (off for direction classes such as
            ``rrn synth``'s, where a flipped MoveRight is a MoveLeft).
    """

    def __init__(
        self,
        records: list[VideoRecord],
        *,
        context: int,
        train: bool,
        sample_every: int = 10,
        fps: float | None = None,
        frame_size: int = 112,
        short_side: int | None = None,
        chunks_per_video: int = 1,
        eval_stride: int | None = None,
        cache_dir=None,
        decoder: str = "auto",
        seed: int = 0,
        hflip: bool = True,
    ):
        if context < 1:
            raise ValueError(f"context (T) must be >= 1, got {context}")
        if chunks_per_video < 1:
            raise ValueError(f"chunks_per_video must be >= 1, got {chunks_per_video}")
        if sample_every < 1:
            raise ValueError(f"sample_every must be >= 1, got {sample_every}")
        self.records = list(records)
        self.context = context
        self.train = train
        self.sample_every = sample_every
        self.fps = fps
        self.frame_size = frame_size
        self.short_side = default_short_side(frame_size) if short_side is None else short_side
        self.chunks_per_video = chunks_per_video
        self.eval_stride = eval_stride
        self.cache = FrameCache(cache_dir) if cache_dir is not None else None
        self.decoder = resolve_backend(decoder)
        self.seed = seed
        self.epoch = 0
        self.transform = ClipTransform(frame_size, train, hflip=hflip)

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of this epoch (call before each epoch, like ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * (self.chunks_per_video if self.train else 1)

    def video_index(self, index: int) -> int:
        """The record behind dataset item ``index``."""
        return index // self.chunks_per_video if self.train else index

    def load_frames(self, video_index: int) -> np.ndarray:
        """All sampled, resized frames of a video ``(N, H, W, 3)`` uint8 (cache first)."""
        rec = self.records[video_index]
        key = (self.sample_every, self.fps, self.short_side)
        if self.cache is not None:
            frames = self.cache.get(rec.path, *key)
            if frames is not None:
                return frames
        frames = decode_video(rec.path, sample_every=self.sample_every, fps=self.fps,
                              short_side=self.short_side, backend=self.decoder)
        if self.cache is not None:
            try:
                self.cache.put(rec.path, frames, *key)
            except OSError as err:  # a full or read-only cache must not stop training
                warnings.warn(f"could not write frame cache for {rec.video_id}: {err}", stacklevel=2)
        return frames

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        vi = self.video_index(index)
        rec = self.records[vi]
        try:
            frames = self.load_frames(vi)
        except VideoDecodeError as err:
            warnings.warn(f"skipping video {rec.video_id}: {err}", stacklevel=2)
            return SkippedVideo(vi, rec.video_id, err.reason)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.train:
            idx = train_chunk(len(frames), self.context, rng)
            clip = self.transform(np.asarray(frames[list(idx)]), rng)  # (T, 3, S, S)
            return {"clip": clip, "label": rec.label, "video_index": vi}
        chunks = eval_chunks(len(frames), self.context, self.eval_stride)
        used = sorted({i for c in chunks for i in c})
        pos = {f: j for j, f in enumerate(used)}
        x = self.transform(np.asarray(frames[used]), None)  # (N', 3, S, S): each frame once
        clips = x[torch.tensor([[pos[i] for i in c] for c in chunks])]  # (M, T, 3, S, S)
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
        "skipped": list of video indices}``; ``B`` may be 0 (then ``clip`` is empty).
    """
    items, skipped = _split_skipped(batch)
    if not items:
        return {"clip": torch.empty(0), "label": torch.empty(0, dtype=torch.long),
                "video_index": torch.empty(0, dtype=torch.long), "skipped": skipped}
    return {
        "clip": torch.stack([it["clip"] for it in items]),  # B x (T, 3, S, S) -> (B, T, 3, S, S)
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "video_index": torch.tensor([it["video_index"] for it in items], dtype=torch.long),
        "skipped": skipped,
    }


def collate_videos(batch) -> dict:
    """Collate evaluation items (whole videos); skipped videos are dropped and listed.

    Returns:
        ``{"clips": (sum M, T, 3, S, S), "chunk_video": (sum M,) long video index per chunk,
        "label": (V,) long, "video_index": (V,) long, "skipped": list of video indices}``.
    """
    items, skipped = _split_skipped(batch)
    if not items:
        return {"clips": torch.empty(0), "chunk_video": torch.empty(0, dtype=torch.long),
                "label": torch.empty(0, dtype=torch.long),
                "video_index": torch.empty(0, dtype=torch.long), "skipped": skipped}
    return {
        "clips": torch.cat([it["clips"] for it in items]),  # V x (M_v, T, 3, S, S) -> (sum M, T, 3, S, S)
        "chunk_video": torch.cat(
            [torch.full((len(it["clips"]),), it["video_index"], dtype=torch.long) for it in items]
        ),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "video_index": torch.tensor([it["video_index"] for it in items], dtype=torch.long),
        "skipped": skipped,
    }


"""Evaluation loop (paper §3.3): a video's prediction is the mean of its M chunks' probabilities.

Under DDP each rank evaluates its share; the duplicates that ``DistributedSampler`` pads in
are removed by video index before anything is counted, so every video counts exactly once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from rrn import distributed as rdist
from rrn.checkpoint import unwrap
from rrn.errors import UserError
from rrn.metrics import video_probs_from_chunks
from rrn.progress import progress_bar
from rrn.runtime import resolve_workers, stop_safe_worker_init


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    device: torch.device,
    chunk_batch: int = 32,
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Chunk and video probabilities of every test video, gathered from all ranks.

    Args:
        model: the model (a DDP wrapper is unwrapped: evaluation needs no gradient sync).
        loader: yields ``collate_videos`` batches (see
            :func:`create_eval_loader`).
        device: where the model lives.
        chunk_batch: clips (chunks, or chunk views) per forward pass.
        dtype: autocast dtype (None = full precision).
        progress: show a progress bar.

    Returns:
        On every rank, sorted by video index and each video counted once:
        ``video_index`` (V,), ``labels`` (V,), ``video_probs`` (V, K) = mean of the video's
        chunk probabilities, ``chunk_probs`` (C, K) (each the mean over the chunk's views),
        ``chunk_labels`` (C,), ``chunk_video``
        (C,) position of each chunk's video in 0..V-1, ``skipped`` (video indices).
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    per_video: dict[int, tuple[int, torch.Tensor]] = {}
    skipped: list[int] = []
    for batch in progress_bar(loader, enabled=progress, desc="eval", unit="batch", leave=False):
        skipped += [int(i) for i in batch["skipped"]]
        clips = batch["clips"]  # (sum M, T, 3, S, S), or (sum M, views, T, 3, S, S)
        if clips.numel() == 0:
            continue
        probs_all = _chunk_probs(net, clips, device, chunk_batch, dtype)  # (sum M, K)
        for vi, label in zip(batch["video_index"].tolist(), batch["label"].tolist()):
            per_video[vi] = (label, probs_all[batch["chunk_video"] == vi])  # (M_v, K)
    net.train(was_training)
    return _gather(per_video, skipped)


def _chunk_probs(
    net: nn.Module,
    clips: torch.Tensor,
    device: torch.device,
    chunk_batch: int,
    dtype: torch.dtype | None,
) -> torch.Tensor:
    """Probabilities of each chunk, averaged over its views: ``(C, K)``.

    ``clips``: ``(C, T, 3, S, S)``, or ``(C, views, T, 3, S, S)`` for several views of each
    chunk; ``chunk_batch`` clips (chunk views) go through the network at once.
    """
    views = clips.shape[1] if clips.ndim == 6 else 1
    step = max(1, chunk_batch // views)
    probs = []
    for lo in range(0, clips.shape[0], step):
        x = clips[lo : lo + step].to(device, non_blocking=True)
        b = x.shape[0]
        x = x.flatten(0, 1) if views > 1 else x  # (b, views, T, 3, S, S) -> (b*views, T, 3, S, S)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = net(x)  # (b*views, K)
        p = logits.float().softmax(dim=1).cpu()
        probs.append(p.view(b, views, -1).mean(dim=1))  # (b*views, K) -> (b, views, K) -> (b, K)
    return torch.cat(probs)  # (C, K)


def _gather(per_video: dict[int, tuple[int, torch.Tensor]], skipped: list[int]) -> dict[str, Any]:
    merged: dict[int, tuple[int, torch.Tensor]] = {}
    for part in rdist.all_gather_objects(per_video):
        for vi, value in part.items():
            merged.setdefault(vi, value)  # DistributedSampler's padded duplicates count once
    skipped = sorted({i for part in rdist.all_gather_objects(skipped) for i in part})
    order = sorted(merged)
    if not order:
        raise UserError(
            f"no video could be evaluated: all {len(skipped)} were skipped as "
            "unreadable (the warnings above say why; rrn check-data lists every "
            "problem)"
        )
    chunk_probs = torch.cat([merged[vi][1] for vi in order])  # (C, K)
    counts = torch.tensor([merged[vi][1].shape[0] for vi in order])
    chunk_video = torch.repeat_interleave(torch.arange(len(order)), counts)  # (C,)
    labels = torch.tensor([merged[vi][0] for vi in order], dtype=torch.long)
    return {
        "video_index": torch.tensor(order, dtype=torch.long),
        "labels": labels,
        "video_probs": video_probs_from_chunks(chunk_probs, chunk_video, len(order)),
        "chunk_probs": chunk_probs,
        "chunk_labels": labels[chunk_video],
        "chunk_video": chunk_video,
        "skipped": skipped,
    }


def chunk_loss(chunk_probs: torch.Tensor, chunk_labels: torch.Tensor) -> float:
    """Mean cross-entropy of chunk probabilities."""
    picked = chunk_probs.gather(1, chunk_labels[:, None]).clamp_min(1e-12)
    return float(-picked.log().mean())


def create_eval_loader(
    dataset, *, workers: int | None = 0, videos_per_batch: int = 4, pin_memory: bool = False
) -> DataLoader:
    """Whole-video batches (``collate_videos``), sharded over DDP ranks without shuffling."""
    from rrn.data import collate_videos

    sampler = None
    if rdist.is_enabled():
        sampler = DistributedSampler(dataset, shuffle=False)  # pads with duplicates: removed later
    return DataLoader(
        dataset,
        batch_size=videos_per_batch,
        sampler=sampler,
        shuffle=False,
        num_workers=resolve_workers(workers),
        collate_fn=collate_videos,
        pin_memory=pin_memory,
        worker_init_fn=stop_safe_worker_init(),
    )

"""Evaluating a detection model (a run on ``--dataset thumos14`` or ``activitynet``): the model
runs online over each whole test video, its per-frame scores are written to a score folder, and
the metrics read that folder (:func:`~rrn.evaluation.detection_scoring.score_folder`), as they
read any other score source's.

Online means as it runs live: one sampled frame per step, the skip states carried from the
video's first frame to its last, nothing of a later frame seen. :func:`video_scores` gets
exactly that from :meth:`~rrn.model.RecurrentResNet.forward_pieces` (pieces of
:data:`PIECE` frames, each level batched over a piece's frames: the outputs of
``model.step`` frame by frame, at the cost of a batched pass), with the frames read as training
read them (the frame cache, else decoded piece by piece while the model runs) and centre-cropped.

``rrn eval RUN`` writes, next to the checkpoint (or into ``--out``)::

    eval_split1.json              task "detection", every metric, the protocol, checkpoint, timing
    eval_split1_per_class.csv     frame AP, cAP and segment AP per tIoU of every class
    eval_split1/scores/           <video>.npz per test video + scores.json (rrn.detection.scores)
    eval_split1/segments.json     the segments the online tracker announced
    eval_split1/timeline_<video>.png  the first test videos' scores against their ground truth

Under torchrun each process scores a share of the videos; rank 0 gathers and writes them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrn import distributed as rdist
from rrn.checkpoint import checkpoint_choice
from rrn.config import ConfigError, EvalConfig, TrainConfig
from rrn.data.decode import VideoDecodeError, iter_decoded
from rrn.data.formats.text import SplitError
from rrn.data.source import FrameSource
from rrn.data.transforms import ClipTransform
from rrn.data.untrimmed import probe_timeline
from rrn.detection.scores import (
    SCORES_META,
    read_scores_meta,
    write_scores_meta,
    write_video_scores,
)
from rrn.evaluation.detection_scoring import (
    SegmentSettings,
    score_folder,
    write_detection_results,
)
from rrn.progress import progress_bar
from rrn.runtime import amp_dtype, precision_name

logger = logging.getLogger(__name__)

PIECE = 64
"""Sampled frames read, then stepped through the model, at a time."""


def check_detection_settings(settings: EvalConfig) -> None:
    """Refuse the evaluation settings that have no meaning online.

    Raises:
        ConfigError: ``--views 3crop`` or ``--flip``: the model sees one centre crop per frame
            live, and is scored as it runs.
    """
    if settings.views != "center" or settings.flip:
        raise ConfigError(
            "--views 3crop and --flip average several views of a chunk; a detection model is "
            "scored online, one centre crop per frame as it runs live: drop them"
        )


def frame_pieces(source: FrameSource, path, piece: int = PIECE) -> Iterator[np.ndarray]:
    """uint8 ``(n <= piece, H, W, 3)`` pieces of a video's sampled frames, in order: from the
    frame cache, else decoded piece by piece (an hour of video never sits in memory decoded).

    Raises:
        VideoDecodeError: the video cannot be read.
    """
    if source.cache is None and source.decoder == "pyav" and Path(path).is_file():
        frames: list[np.ndarray] = []
        for frame in iter_decoded(path, source.sampling):
            frames.append(frame)
            if len(frames) == piece:
                yield np.stack(frames)
                frames = []
        if frames:
            yield np.stack(frames)
        return
    frames = source(path)
    for lo in range(0, len(frames), piece):
        yield np.asarray(frames[lo : lo + piece])


@torch.inference_mode()
def video_scores(model, pieces, transform, device, dtype=None) -> np.ndarray:
    """(N, K) float32 probabilities of every frame of a video, the model run online over it.

    Args:
        model: A :class:`~rrn.model.RecurrentResNet` in eval mode.
        pieces: The video's frames in order, uint8 ``(n, H, W, 3)`` each.
        transform: Frames -> float ``(n, 3, S, S)`` (an evaluation
            :class:`~rrn.data.transforms.ClipTransform`).
        device: Where the model is.
        dtype: Autocast dtype (None: full precision).
    """
    inputs = (transform(p).to(device, non_blocking=True) for p in pieces)
    probs = []
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for logits in model.forward_pieces(inputs):  # (n, K), the skip states carried
            probs.append(logits.float().softmax(dim=-1).cpu())
    if not probs:  # a video without a frame
        return np.zeros((0, model.num_classes), np.float32)
    return torch.cat(probs).numpy()  # (N, K)


@dataclass
class _Scored:
    """One process's share of the test videos, scored."""

    scores: dict[str, tuple[np.ndarray, np.ndarray]]
    """Video id -> ((N, K) scores, (N,) times)."""
    skipped: dict[str, str]
    """Video id -> why it could not be scored."""
    intervals: set[float]
    """Seconds between two sampled frames, of each video (one value unless frame rates vary)."""

    @property
    def interval_s(self) -> float | None:
        """The interval shared by every video, None when they differ (or none was scored)."""
        return next(iter(self.intervals)) if len(self.intervals) == 1 else None


def _score_videos(model, records, cfg: TrainConfig, info, device) -> _Scored:
    """Score this process's share of ``records`` (``records[rank::world_size]``)."""
    source = FrameSource.from_config(cfg.data)
    transform = ClipTransform(cfg.data.frame_size, train=False)
    dtype = amp_dtype(cfg.run.amp, device)
    out = _Scored({}, {}, set())
    mine = records[info.rank :: info.world_size]
    bar = progress_bar(mine, enabled=cfg.run.progress and info.is_main, desc="eval", unit="video")
    for rec in bar:
        timeline = probe_timeline(rec, source)  # logs a warning when it fails
        if timeline is None:
            out.skipped[rec.video_id] = "its container's header could not be read"
            continue
        try:
            scores = video_scores(model, frame_pieces(source, rec.path), transform, device, dtype)
        except VideoDecodeError as err:
            logger.warning("rrn eval: warning: skipping video %s: %s", rec.video_id, err)
            out.skipped[rec.video_id] = err.reason
            continue
        if not len(scores):
            logger.warning("rrn eval: warning: skipping video %s: no sampled frame", rec.video_id)
            out.skipped[rec.video_id] = "no sampled frame"
            continue
        out.scores[rec.video_id] = (scores, timeline.times(len(scores)))
        out.intervals.add(timeline.step / timeline.rate)
    return out


def _gathered(part: _Scored) -> _Scored:
    """Every process's share, merged (on every rank)."""
    merged = _Scored({}, {}, set())
    for other in rdist.all_gather_objects(part):
        merged.scores.update(other.scores)
        merged.skipped.update(other.skipped)
        merged.intervals |= other.intervals
    return merged


def evaluate_detection_checkpoint(
    model,
    data,
    cfg: TrainConfig,
    *,
    ckpt: Mapping[str, Any],
    ckpt_path: Path,
    out_dir: Path,
    segments: SegmentSettings,
    info: rdist.DistInfo,
    device: torch.device,
) -> dict[str, Any] | None:
    """Score every test video of ``data`` online with ``model`` and write the results.

    Args:
        model: The checkpoint's model, on ``device``.
        data: The :class:`~rrn.data.splits.DatasetSplit` (its ``test`` records carry their
            annotations, ``temporal`` the whole annotation).
        cfg: The checkpoint's data and model settings with this machine's run settings.
        ckpt, ckpt_path: The checkpoint (how it was chosen, its progress) and its file.
        out_dir: Where the results go.
        segments: How scores become segments.
        info, device: This process's place in a torchrun job and its device.

    Returns:
        The result written to ``eval_split<k>.json`` on rank 0, None on the other ranks.
    """
    model.eval()
    t0 = time.perf_counter()
    scored = _gathered(_score_videos(model, list(data.test), cfg, info, device))
    seconds = time.perf_counter() - t0
    if not info.is_main:
        return None
    stem = f"eval_split{cfg.data.split}"
    folder = out_dir / stem / "scores"
    for video, (scores, times) in scored.scores.items():
        write_video_scores(folder, video, scores, times)
    sampling = cfg.data.sampling()
    write_scores_meta(
        folder,
        classes=list(ckpt["classes"]),
        sampling=sampling_text(sampling, scored.interval_s),
        source=f"{ckpt_path} run online ({precision_name(cfg.run.amp, device)})",
        interval_s=scored.interval_s,
        context=model.temporal_context,
        skipped=scored.skipped,
        data={
            "dataset": cfg.data.dataset,  # the paths absolute: the folder is read from anywhere
            **{k: _absolute(getattr(cfg.data, k)) for k in ("data_root", "split_dir")},
        },
    )
    result = score_folder(folder, data.annotations, segments)
    frames = sum(len(s) for s, _ in scored.scores.values())
    choice = checkpoint_choice(ckpt_path, ckpt)
    result.result["protocol"] += (
        f" Checkpoint: {ckpt_path.name}, {choice['description']} (never chosen on the test videos)."
    )
    extra = {
        "split": cfg.data.split,
        "dataset": cfg.data.dataset,
        "checkpoint": str(ckpt_path),
        "checkpoint_choice": choice,
        "checkpoint_progress": {
            k: (ckpt.get("progress") or {}).get(k) for k in ("epoch", "global_step")
        },
        "context": model.temporal_context,
        "precision": precision_name(cfg.run.amp, device),
        "timing": {
            "seconds": round(seconds, 3),
            "frames": frames,
            "frames_per_s": round(frames / max(seconds, 1e-9), 3),
            "device": str(device),
            "world_size": info.world_size,
        },
        "config": cfg.to_dict(),
    }
    return write_detection_results(result, out_dir, stem, extra=extra)


def evaluate_score_folder(
    folder: str | os.PathLike,
    *,
    data: Mapping[str, Any] | None = None,
    segments: SegmentSettings | None = None,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Score a folder of per-frame scores (any source: ``rrn eval``'s, the GRU baseline's, an
    exported model's) against its dataset's test annotations, and write the results as
    ``eval_scores.json``, ``eval_scores_per_class.csv`` and ``eval_scores/`` (segments,
    timelines) in ``out`` (default: the folder's parent).

    Args:
        folder: The score folder (:mod:`rrn.detection.scores`).
        data: ``dataset``, ``data_root``, ``split_dir`` locating the annotations; each defaults
            to the folder's ``scores.json`` (``data``).
        segments: How scores become segments.

    Raises:
        ConfigError: no dataset known.
    """
    from rrn.data.splits import load_annotations

    meta = read_scores_meta(folder)
    keys = ("dataset", "data_root", "split_dir")
    where = {**(meta["data"] or {}), **{k: v for k, v in (data or {}).items() if k in keys}}
    if not where.get("dataset"):
        raise ConfigError(
            f"{folder}: say which annotations to score it against: --dataset thumos14 "
            "(or activitynet) --split-dir ANNOTATIONS"
        )
    try:
        annotations = load_annotations(
            where["dataset"], where.get("data_root"), where.get("split_dir")
        )
    except SplitError as err:
        given = set(data or {}) & set(keys)
        stored = {k: v for k, v in (meta["data"] or {}).items() if k in keys and k not in given}
        if not stored:
            raise
        raise SplitError(
            f"{err} (as {Path(folder) / SCORES_META} names them: {stored}; a relative path, as "
            "an older rrn wrote them, is taken from the current folder): pass --data-root and "
            "--split-dir where they are now"
        ) from None
    scored = score_folder(folder, annotations, segments or SegmentSettings())
    extra = {"dataset": where["dataset"], "annotations": str(annotations.source)}
    return write_detection_results(
        scored, Path(out) if out else Path(folder).resolve().parent, "eval_scores", extra=extra
    )


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path in (None, "") else str(Path(path).resolve())


def sampling_text(sampling, interval_s: float | None) -> str:
    """``'every 2nd frame (12.5 frames/s), short side 64'``: the sampling, with its rate."""
    text = sampling.describe()
    if interval_s and not sampling.fps:
        rate, _, size = text.partition(", ")
        return f"{rate} ({1 / interval_s:g} frames/s), {size}"
    return text

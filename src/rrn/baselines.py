"""The paper's baselines (Table 1): frozen per-frame features + a linear classifier or a GRU.

:func:`extract_features` runs a frozen network (torchvision ResNet-50 with ImageNet weights by
default, or any rrn checkpoint, whose skip states are then carried along the video) over every
sampled frame of every video and stores the globally average-pooled features at the end of
stages 2, 3 and 4, one ``.npz`` per video. It is resumable (finished videos are skipped) and
shards videos across torchrun ranks.

:func:`run_baseline` trains on those features, as in the paper's Sec. 4.1:

* ``avgpool``: the mean of a video's frame features (optionally z-normalised with statistics
  from the training split only) and a linear classifier (softmax regression);
* ``gru``: a 128-unit GRU over the sequence of frame features, classifying from its last
  hidden state.

Both write the same evaluation files as ``rrn eval`` (:func:`rrn.metrics.evaluate_probs`).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rrn.checkpoint import atomic_write, atomic_write_json
from rrn.data import ClipTransform, FrameCache, VideoRecord, decode_video, default_short_side
from rrn.data.decode import VideoDecodeError

FEATURE_STAGES = (2, 3, 4)
META_FILE = "features.json"


# ------------------------------------------------------------------------------ extraction
@dataclass
class FeatureReport:
    """What one :func:`extract_features` call did (per process)."""

    written: int = 0
    reused: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


def feature_file(out_dir: str | os.PathLike, video_id: str) -> Path:
    """Where the features of ``video_id`` live: ``OUT/videos/<video_id>.npz``."""
    return Path(out_dir) / "videos" / f"{video_id}.npz"


def load_feature_model(source: str, arch: str = "resnet50", device: str = "cpu") -> nn.Module:
    """The frozen network: ``imagenet`` / ``none`` (random, fixed seed; for tests) / an rrn checkpoint."""
    from rrn.model import build_model

    if source.lower() in ("imagenet", "none"):
        weights = None if source.lower() == "none" else "imagenet"
        # a fixed seed: every rank and every resumed run of `--source none` uses one network
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(arch, num_classes=1000, skip_blocks=(), weights=weights)
    elif Path(source).exists():
        from rrn.checkpoint import build_from_checkpoint, find_checkpoint, load_checkpoint

        model = build_from_checkpoint(load_checkpoint(find_checkpoint(source)), device)
    else:
        raise FileNotFoundError(
            f"feature source {source!r} is neither 'imagenet', 'none' nor an existing rrn "
            "checkpoint or run directory"
        )
    return model.to(device).eval()


@torch.no_grad()
def extract_features(
    records: Sequence[VideoRecord],
    subsets: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    model: nn.Module,
    classes: Sequence[str],
    stages: Sequence[int] = FEATURE_STAGES,
    sample_every: int = 10,
    fps: float | None = None,
    frame_size: int = 224,
    float16: bool = False,
    decoder: str = "auto",
    device: str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    source: str = "",
    cache_dir: str | os.PathLike | None = None,
) -> FeatureReport:
    """Per-frame pooled features of ``records`` written to ``out_dir``.

    Args:
        records: Videos; ``subsets[i]`` ("train"/"test") is stored with record ``i``.
        out_dir: Output folder (``videos/<video_id>.npz`` + ``features.json``).
        model: Frozen network with ``video_features`` (:class:`rrn.model.RecurrentResNet`).
        classes: Class names, stored in the metadata.
        stages: Stages whose end is pooled: arrays ``stage2``... of shape (N, C).
        float16: Store features as float16 (half the disk).
        cache_dir: A frame cache (``rrn cache``) to read the sampled frames from, when built
            with the same sampling; videos not in it are decoded.
        rank, world_size: This process takes videos ``rank::world_size``; rank 0 writes
            the metadata once every shard is done (call again after the others finish, or
            under torchrun where a barrier waits for them).

    Returns:
        This process's :class:`FeatureReport`. Failed videos are listed, never fatal.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    transform = ClipTransform(frame_size, train=False)
    short_side = default_short_side(frame_size)
    report = FeatureReport()
    cache = FrameCache(cache_dir) if cache_dir is not None else None
    start = time.perf_counter()
    mine = list(range(rank, len(records), world_size))
    bar = tqdm(mine, desc=f"features[{rank}]", disable=not progress, unit="video")
    for i in bar:
        rec = records[i]
        path = feature_file(out, rec.video_id)
        if path.exists():
            report.reused += 1
            continue
        try:
            frames = cache.get(rec.path, sample_every, fps, short_side) if cache is not None else None
            if frames is None:
                frames = decode_video(rec.path, sample_every=sample_every, fps=fps,
                                      short_side=short_side, backend=decoder)
        except VideoDecodeError as err:
            warnings.warn(f"skipping video {rec.video_id}: {err}", stacklevel=2)
            report.failures.append((rec.video_id, str(err)))
            continue
        x = transform(np.array(frames)).to(device)  # (N, H, W, 3) uint8 -> (N, 3, S, S); copies a read-only mmap
        feats = model.video_features(x, stages=stages)  # {stage: (N, C)}
        dtype = np.float16 if float16 else np.float32
        arrays = {f"stage{s}": f.float().cpu().numpy().astype(dtype) for s, f in feats.items()}
        arrays["label"] = np.array(rec.label)
        atomic_write(path, lambda fh, arrays=arrays: np.savez(fh, **arrays))
        report.written += 1
        report.frames += len(frames)
    report.seconds = time.perf_counter() - start
    failures_file = out / f"failures.rank{rank}.json"
    atomic_write_json(failures_file, report.failures)
    if rank == 0:
        _write_meta(out, records, subsets, classes, stages, source=source, sample_every=sample_every,
                    fps=fps, frame_size=frame_size, float16=float16, world_size=world_size)
    return report


def _write_meta(out: Path, records, subsets, classes, stages, world_size: int, **settings) -> None:
    failures: list[Any] = []
    for r in range(world_size):
        f = out / f"failures.rank{r}.json"
        if f.exists():
            failures += json.loads(f.read_text())
    atomic_write_json(out / META_FILE, {
        **settings,
        "classes": list(classes),
        "stages": list(stages),
        "videos": [
            {"video_id": r.video_id, "label": r.label, "subset": s}
            for r, s in zip(records, subsets)
        ],
        "failures": failures,
    })


# ------------------------------------------------------------------------------ classifiers
def load_features(
    features_dir: str | os.PathLike, stage: int
) -> tuple[dict[str, list[np.ndarray]], dict[str, torch.Tensor], dict[str, list[str]], list[str]]:
    """Read stored features: per subset, the (N_i, C) sequences, labels and video ids.

    Raises:
        FileNotFoundError: no ``features.json`` (run ``rrn features`` first) or a listed
            video's file is missing (extraction unfinished).
    """
    root = Path(features_dir)
    meta_path = root / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found: run `rrn features --out {root}` first")
    meta = json.loads(meta_path.read_text())
    if stage not in meta["stages"]:
        raise ValueError(f"{root} holds stages {meta['stages']}, not stage {stage}")
    failed = {vid for vid, _ in meta.get("failures", [])}
    seqs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    ids: dict[str, list[str]] = {"train": [], "test": []}
    missing = []
    for v in meta["videos"]:
        if v["video_id"] in failed:
            continue
        path = feature_file(root, v["video_id"])
        if not path.exists():
            missing.append(v["video_id"])
            continue
        with np.load(path) as z:
            seqs[v["subset"]].append(z[f"stage{stage}"].astype(np.float32))
        labels[v["subset"]].append(v["label"])
        ids[v["subset"]].append(v["video_id"])
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} videos listed in {meta_path} have no features (e.g. {missing[0]}); "
            "rerun `rrn features` with the same --out to finish the extraction"
        )
    for subset in ("train", "test"):
        if not seqs[subset]:
            raise ValueError(f"{root}: no {subset} videos with features")
    return seqs, {k: torch.tensor(v) for k, v in labels.items()}, ids, meta["classes"]


class AvgPoolClassifier(nn.Module):
    """Mean of the frame features -> (optional z-normalisation) -> linear layer."""

    def __init__(self, dim: int, num_classes: int, mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if mean is None else mean)
        self.register_buffer("std", torch.ones(dim) if std is None else std)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) zero-padded sequences, lengths (B,) -> logits (B, K)."""
        pooled = x.sum(dim=1) / lengths[:, None].to(x.dtype)  # (B, N, C) -> (B, C)
        return self.fc((pooled - self.mean) / self.std)


class GRUClassifier(nn.Module):
    """A GRU (128 units in the paper) over the frame features; classifies its last state."""

    def __init__(self, dim: int, num_classes: int, hidden: int = 128,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if mean is None else mean)
        self.register_buffer("std", torch.ones(dim) if std is None else std)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std  # (B, N, C)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)  # h: (1, B, hidden), the state after each video's last frame
        return self.fc(h[0])


def _pad(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    x = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.from_numpy(s)
    return x, lengths  # (V, N_max, C), (V,)


def znorm_stats(train_seqs: Sequence[np.ndarray], pooled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per feature from the training split only (of video means, or of frames)."""
    rows = np.stack([s.mean(0) for s in train_seqs]) if pooled else np.concatenate(train_seqs)
    mean = torch.from_numpy(rows.mean(0)).float()
    std = torch.from_numpy(rows.std(0)).float().clamp(min=1e-6)
    return mean, std


def run_baseline(
    features_dir: str | os.PathLike,
    *,
    model: str = "avgpool",
    stage: int = 4,
    znorm: bool = False,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    hidden: int = 128,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Train a baseline classifier on stored features and evaluate it on the test videos.

    Returns:
        The evaluation JSON (as :func:`rrn.metrics.evaluate_probs`), also written to
        ``out_dir`` (default: the features folder) as ``baseline_<model>_stage<s>[_znorm].json``.
    """
    from rrn.metrics import evaluate_probs

    if model not in ("avgpool", "gru"):
        raise ValueError(f"--model must be avgpool or gru, got {model!r}")
    seqs, labels, ids, classes = load_features(features_dir, stage)
    torch.manual_seed(seed)
    dim = seqs["train"][0].shape[1]
    mean, std = znorm_stats(seqs["train"], pooled=model == "avgpool") if znorm else (None, None)
    if model == "avgpool":
        clf: nn.Module = AvgPoolClassifier(dim, len(classes), mean, std)
    else:
        clf = GRUClassifier(dim, len(classes), hidden, mean, std)
    x_train, len_train = _pad(seqs["train"])
    y_train = labels["train"]
    opt = torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    clf.train()
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=gen)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            loss = nn.functional.cross_entropy(clf(x_train[idx], len_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - start
    clf.eval()
    x_test, len_test = _pad(seqs["test"])
    with torch.no_grad():
        probs = clf(x_test, len_test).softmax(dim=1)  # (V, K)
    stem = f"baseline_{model}_stage{stage}{'_znorm' if znorm else ''}"
    return evaluate_probs(
        probs, labels["test"], classes,
        out_dir=out_dir if out_dir is not None else features_dir,
        stem=stem,
        video_ids=ids["test"],
        extra={
            "model": model, "stage": stage, "znorm": znorm, "features": str(features_dir),
            "epochs": epochs, "lr": lr, "train_videos": len(y_train), "train_seconds": train_s,
        },
        plot=plot,
    )

"""The paper's baselines, part one: frozen per-frame features, extracted and read back.

:func:`extract_features` runs a frozen network (torchvision ResNet-50 with ImageNet weights by
default, or any rrn checkpoint, whose skip states are then carried along the video) over every
sampled frame of every video and stores the globally average-pooled features at the end of
stages 2, 3 and 4, one ``.npz`` per video. It is resumable (finished videos are skipped; a
folder of other settings is refused) and shards videos across torchrun ranks.
:func:`load_features` reads them back for the classifiers (:mod:`rrn.baselines.training`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rrn import distributed as rdist
from rrn.config import ConfigError, FeaturesConfig, TrainConfig
from rrn.data import ClipTransform, FrameSource, VideoRecord
from rrn.data.decode import VideoDecodeError
from rrn.data.untrimmed import frame_times
from rrn.errors import UserError
from rrn.files import atomic_write, atomic_write_json
from rrn.model import weights_keyword

logger = logging.getLogger(__name__)

FEATURE_STAGES = (2, 3, 4)
META_FILE = "features.json"
EXTRACTION_FILE = "extraction.json"  # the settings, written before the first video
#: Frames per network call: the segment of :meth:`rrn.model.RecurrentResNet.video_features`.
FEATURE_PIECE = 64


# ------------------------------------------------------------------------------ extraction
@dataclass
class FeatureReport:
    """What one :func:`extract_features` call did (per process)."""

    written: int = 0
    reused: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    def summary(self, out: str | os.PathLike) -> str:
        lines = [
            f"features: {self.written} videos written, {self.reused} already there, "
            f"{self.frames} frames in {self.seconds:.1f}s -> {out}"
        ]
        return "\n".join(lines + [f"  skipped {vid}: {why}" for vid, why in self.failures])


def feature_file(out_dir: str | os.PathLike, video_id: str) -> Path:
    """Where the features of ``video_id`` live: ``OUT/videos/<video_id>.npz``."""
    return Path(out_dir) / "videos" / f"{video_id}.npz"


def load_feature_model(
    source: str, arch: str = "resnet50", device: str | torch.device = "cpu"
) -> nn.Module:
    """The frozen network ``--source`` names, through the one weights path
    (:func:`rrn.model.resolve_weights`): an rrn checkpoint, or a run directory for its
    ``last.pt``, or a model package (a folder or ``hf://org/name``) is that trained network as
    it is (its own architecture and skips); ``imagenet``, ``none`` (random, with a fixed seed;
    for tests) or a torchvision state dict file initialise a per-frame ``arch``."""
    from rrn.checkpoint import find_checkpoint, load_model
    from rrn.model import build_model, resolve_weights
    from rrn.package.folder import is_package
    from rrn.package.hub import is_hub_uri

    if is_hub_uri(source) or is_package(source):
        return load_model(source, device=device)
    if weights_keyword(source) is None and Path(source).is_dir():
        source = find_checkpoint(source, which="last")
    weights = resolve_weights(source)
    if weights.kind == "checkpoint":
        model = load_model(weights.path, device=device)
    else:
        # a fixed seed: every rank and every resumed run of `--source none` uses one network
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(arch, num_classes=1000, skip_blocks=(), weights=weights)
    return model.to(device).eval()


@torch.no_grad()
def extract_features(
    records: Sequence[VideoRecord],
    out_dir: str | os.PathLike,
    *,
    model: nn.Module,
    source: FrameSource,
    frame_size: int,
    stages: Sequence[int] = FEATURE_STAGES,
    float16: bool = False,
    device: str | torch.device = "cpu",
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> FeatureReport:
    """Per-frame pooled features of ``records`` written to ``out_dir/videos/<video_id>.npz``.

    Args:
        records: Videos; this process takes ``records[rank::world_size]``.
        out_dir: Output folder; a video whose file exists is skipped (resumable).
        model: Frozen network with ``video_features`` (:class:`rrn.model.RecurrentResNet`).
        source: Where frames come from (sampling, frame cache, decoder).
        frame_size: Centre crop fed to the network.
        stages: Stages whose end is pooled: arrays ``stage2``... of shape (N, C).
        float16: Store features as float16 (half the disk).

    Returns:
        This process's :class:`FeatureReport`, also written to ``failures.rank<r>.json``
        (failed videos are listed, never fatal).
    """
    from rrn.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    transform = ClipTransform(frame_size, train=False)
    report = FeatureReport()
    start = time.perf_counter()
    mine = list(range(rank, len(records), world_size))
    for i in progress_bar(mine, enabled=progress, desc=f"features[{rank}]", unit="video"):
        rec = records[i]
        path = feature_file(out, rec.video_id)
        if path.exists():
            report.reused += 1
            continue
        try:
            frames = source(rec.path)
        except VideoDecodeError as err:
            logger.warning("rrn: warning: skipping video %s: %s", rec.video_id, err)
            report.failures.append((rec.video_id, str(err)))
            continue
        arrays = _pooled_features(
            model, frames, transform=transform, stages=stages, float16=float16, device=device
        )
        arrays["label"] = np.array(rec.label)
        if rec.annotation is not None:  # an untrimmed video: its labels are per frame, by time
            times = frame_times(rec, source, len(frames))
            if times is None:
                report.failures.append((rec.video_id, "its container's header is unreadable"))
                continue
            arrays["times"] = times
        atomic_write(path, lambda fh, arrays=arrays: np.savez(fh, **arrays))
        report.written += 1
        report.frames += len(frames)
    report.seconds = time.perf_counter() - start
    atomic_write_json(out / f"failures.rank{rank}.json", report.failures)
    return report


def _pooled_features(
    model: nn.Module,
    frames: np.ndarray,
    *,
    transform: ClipTransform,
    stages: Sequence[int],
    float16: bool,
    device: str | torch.device,
) -> dict[str, np.ndarray]:
    """``stage<s>`` -> (N, C) pooled features of a video's ``frames`` (N, H, W, 3) uint8, run
    :data:`FEATURE_PIECE` frames at a time: the network input of an untrimmed video at 224 px
    would otherwise be 0.6 MB a frame, all at once."""
    dtype = np.float16 if float16 else np.float32
    pieces = (  # (n, H, W, 3) uint8 -> (n, 3, S, S); np.array copies a read-only mmap's piece
        transform(np.array(frames[s : s + FEATURE_PIECE])).to(device)
        for s in range(0, len(frames), FEATURE_PIECE)
    )
    parts: dict[int, list[np.ndarray]] = {s: [] for s in stages}
    for feats in model.feature_pieces(pieces, stages=stages):  # {stage: (n, C)}
        for s, f in feats.items():
            parts[s].append(f.float().cpu().numpy().astype(dtype))
    return {f"stage{s}": np.concatenate(v) for s, v in parts.items()}


def write_features_meta(
    out: str | os.PathLike, records, subsets, classes, stages, world_size: int, **settings
) -> Path:
    """``features.json``: settings, classes, stages, every video with its subset, and the
    failures of all ``world_size`` shards (call once every shard is done)."""
    out = Path(out)
    failures: list[Any] = []
    for r in range(world_size):
        f = out / f"failures.rank{r}.json"
        if f.exists():
            failures += json.loads(f.read_text())
    return atomic_write_json(
        out / META_FILE,
        {
            **settings,
            "classes": list(classes),
            "stages": list(stages),
            "videos": [
                {"video_id": r.video_id, "label": r.label, "subset": s}
                | ({} if r.annotation is None else {"annotation": r.annotation.to_json()})
                for r, s in zip(records, subsets)
            ],
            "failures": failures,
        },
    )


def extract_dataset_features(cfg: TrainConfig, feats: FeaturesConfig) -> FeatureReport:
    """``rrn features``: every video of ``cfg.data``'s split through the frozen network
    ``feats.source`` (``cfg.model.arch`` for imagenet/none), sharded over torchrun ranks.

    Returns:
        This process's report; rank 0 writes ``features.json`` once every shard is done.
    """
    if not feats.out:
        raise ConfigError("--out is required (the folder for the features)")
    split = cfg.data.load_split()
    records = split.train + split.test
    subsets = ["train"] * len(split.train) + ["test"] * len(split.test)
    owner = not rdist.is_initialized()  # a caller's process group (rrn experiment) stays
    info, device = rdist.init_distributed(cfg.run.device)
    try:
        model = load_feature_model(feats.source, cfg.model.arch, device)
        settings = extraction_settings(model, cfg, feats)
        claim_features_folder(feats.out, settings, info.is_main)
        report = extract_features(
            records,
            feats.out,
            model=model,
            source=FrameSource.from_config(cfg.data),
            frame_size=cfg.data.frame_size,
            stages=feats.stages,
            float16=feats.float16,
            device=device,
            rank=info.rank,
            world_size=info.world_size,
            progress=cfg.run.progress and info.is_main,
        )
        rdist.barrier()
        if info.is_main:
            write_features_meta(
                feats.out,
                records,
                subsets,
                split.classes,
                feats.stages,
                info.world_size,
                **{k: v for k, v in settings.items() if k != "stages"},
            )
    finally:
        if owner:
            rdist.cleanup()
    return report


def extraction_settings(
    model: nn.Module, cfg: TrainConfig, feats: FeaturesConfig
) -> dict[str, Any]:
    """Everything a video's stored features depend on. ``weights`` is a digest of the network's
    weights (a checkpoint trained further in place is another network); ``arch`` is the
    network's own, a checkpoint's rather than ``--arch``; ``source`` is for people."""
    from rrn.package.hub import is_hub_uri

    d, weights = cfg.data, model.info.weights.source
    return {
        "source": weights_keyword(feats.source)
        or (weights if is_hub_uri(weights) else str(Path(weights).resolve())),
        "weights": weights_digest(model),
        "arch": model.arch,
        "sample_every": None if d.fps else d.sample_every,
        "fps": d.fps,
        "frame_size": d.frame_size,
        "short_side": d.sampling().short_side,
        "float16": feats.float16,
        "stages": sorted(set(feats.stages)),
    }


def weights_digest(model: nn.Module) -> str:
    """A short SHA-256 of the model's parameters and buffers (names and values)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def claim_features_folder(out: str | os.PathLike, settings: dict[str, Any], is_main: bool) -> None:
    """Record ``settings`` in ``OUT/extraction.json``, or refuse a folder whose videos were
    extracted with other ones: resuming would mix two networks' (or samplings') features.

    Raises:
        ConfigError: the folder holds features of other settings (each change is named).
    """
    path = Path(out) / EXTRACTION_FILE
    before = _recorded_settings(Path(out))
    if before is not None:
        compared = [
            k for k in settings if k in before and not (k == "source" and "weights" in before)
        ]
        changes = [
            f"{k} {before[k]!r} -> {settings[k]!r}" for k in compared if before[k] != settings[k]
        ]
        if changes:
            raise ConfigError(
                f"{out} holds features extracted with other settings "
                f"({'; '.join(changes)}); "
                "extract into another --out, or delete it to start over"
            )
    rdist.barrier()  # every rank has compared before rank 0 writes
    if is_main and not path.exists():
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, settings)


def _recorded_settings(out: Path) -> dict[str, Any] | None:
    """The settings ``out`` was extracted with: ``extraction.json``, or for a folder from before
    it, its ``features.json`` read as :func:`extraction_settings` would write it (a checkpoint
    source there is the path as typed and ``arch`` is ``--arch``: neither is compared)."""
    if (out / EXTRACTION_FILE).exists():
        return json.loads((out / EXTRACTION_FILE).read_text())
    if not (out / META_FILE).exists():
        return None
    before = read_features_meta(out)
    source = str(before.get("source"))
    if weights_keyword(source) is not None:
        before["source"] = weights_keyword(source)
    else:
        before.pop("source", None)
        before.pop("arch", None)
    if before.get("fps"):
        before["sample_every"] = None
    before["stages"] = sorted(set(before.get("stages", [])))
    return before


# ------------------------------------------------------------------------------ reading them back
def read_features_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``features.json`` of a feature folder, its shape checked: the one reader of it.

    Raises:
        FileNotFoundError: no such file (run ``rrn features`` first).
        UserError: not JSON (a write cut short), or not what ``rrn features`` writes.
    """
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `rrn features --out {Path(folder)}` first")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise UserError(
            f"{path} is not valid JSON ({str(err).splitlines()[0]}): run `rrn features` again "
            "into a new --out"
        ) from None
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not (
        isinstance(videos, list)
        and all(isinstance(v, dict) and "video_id" in v for v in videos)
        and isinstance(meta.get("stages"), list)
    ):
        raise UserError(
            f"{path} is not a features.json as rrn features writes it (a list of videos with "
            "their ids and the stages stored): run `rrn features` again into a new --out"
        )
    return meta


def holds_untrimmed(meta: dict[str, Any]) -> bool:
    """Whether a ``features.json`` describes untrimmed videos (their intervals recorded)."""
    return any("annotation" in v for v in meta["videos"])


def load_features(
    features_dir: str | os.PathLike, stage: int
) -> tuple[dict[str, list[np.ndarray]], dict[str, torch.Tensor], dict[str, list[str]], list[str]]:
    """Read stored features: per subset, the (N_i, C) sequences, labels and video ids.

    Raises:
        FileNotFoundError: no ``features.json`` (run ``rrn features`` first) or a listed
            video's file is missing (extraction unfinished).
    """
    root = Path(features_dir)
    meta = read_features_meta(root)
    if holds_untrimmed(meta):
        raise ConfigError(
            f"{root} holds features of untrimmed videos, labelled per frame: rrn baseline "
            "--model gru scores them per frame (rrn.baselines.run_detection_baseline)"
        )
    if stage not in meta["stages"]:
        raise ConfigError(f"{root} holds stages {meta['stages']}, not stage {stage}")
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
            f"{len(missing)} videos listed in {root / META_FILE} have no features (e.g. "
            f"{missing[0]}); rerun `rrn features` with the same --out to finish the extraction"
        )
    for subset in ("train", "test"):
        if not seqs[subset]:
            raise UserError(f"{root}: no {subset} videos with features")
    return seqs, {k: torch.tensor(v) for k, v in labels.items()}, ids, meta["classes"]

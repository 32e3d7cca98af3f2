"""``rrn baseline --model gru`` on the features of untrimmed videos (``rrn features`` on
``--dataset thumos14`` or ``activitynet``): the paper's GRU baseline as an online detector,
scored by the same metrics through the same score files as ``rrn eval``.

:func:`run_detection_baseline` reads the frozen per-frame features (each video's ``times`` and
labelled intervals are in the feature folder), trains a
:class:`~rrn.detection.baseline.DetectionGRU` with MiniROAD's recipe
(:func:`~rrn.detection.baseline.train_detection_gru`), runs it online over every test video
from a zero state, writes its per-frame scores as a score folder (:mod:`rrn.detection.scores`)
and scores that folder (:func:`~rrn.evaluation.detection_scoring.score_folder`). It writes,
into ``--out`` (default: the features folder)::

    baseline_gru_stage4[_znorm].json, ..._per_class.csv   the metrics (as rrn eval's)
    baseline_gru_stage4[_znorm]/scores/                    the score folder
    baseline_gru_stage4[_znorm]/segments.json, timeline_<video>.png
    baseline_gru_stage4[_znorm]/model.pt                   the GRU's weights and classes
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from rrn.baselines.features import (
    META_FILE,
    feature_file,
    holds_untrimmed,
    read_features_meta,
)
from rrn.baselines.models import znorm_stats
from rrn.config import BaselineConfig, ConfigError
from rrn.data.sampling import Sampling
from rrn.detection.annotations import TemporalAnnotations, VideoAnnotations
from rrn.detection.baseline import DetectionGRU, train_detection_gru, video_probs
from rrn.detection.labels import frame_labels
from rrn.detection.scores import write_scores_meta, write_video_scores
from rrn.errors import UserError
from rrn.evaluation.detection import sampling_text
from rrn.evaluation.detection_scoring import (
    SegmentSettings,
    score_folder,
    write_detection_results,
)
from rrn.files import atomic_write


def is_detection_features(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds features of untrimmed videos (their intervals recorded)."""
    if not (Path(folder) / META_FILE).is_file():
        return False
    return holds_untrimmed(read_features_meta(folder))


class FeatureVideo(NamedTuple):
    """One untrimmed video's stored features."""

    annotation: VideoAnnotations
    features: np.ndarray
    """(N, C) float32."""
    times: np.ndarray
    """(N,) seconds."""


class DetectionFeatures(NamedTuple):
    """A feature folder of untrimmed videos."""

    classes: tuple[str, ...]
    videos: list[FeatureVideo]
    """The extracted videos, as listed (train first)."""
    failed: dict[str, str]
    """Video id -> why it has no features."""
    annotations: TemporalAnnotations
    """Every listed video's intervals (those that failed too: they are reported as skipped)."""
    meta: dict[str, Any]


def load_detection_features(folder: str | os.PathLike, stage: int) -> DetectionFeatures:
    """The features of ``stage`` of every video, with its times and intervals.

    Raises:
        FileNotFoundError: no ``features.json``, or a listed video's file is missing.
        ConfigError: the stage was not stored, or the folder holds trimmed videos.
    """
    root = Path(folder)
    meta = read_features_meta(root)
    if stage not in meta["stages"]:
        raise ConfigError(f"{root} holds stages {meta['stages']}, not stage {stage}")
    if not holds_untrimmed(meta):
        raise ConfigError(f"{root} holds features of trimmed videos: use --model avgpool or gru")
    failed = {vid: why for vid, why in meta.get("failures", [])}
    annotations, videos = [], []
    for v in meta["videos"]:
        ann = VideoAnnotations.from_json(
            v["video_id"], v["subset"], v["annotation"], str(root / META_FILE)
        )
        annotations.append(ann)
        if ann.video in failed:
            continue
        path = feature_file(root, ann.video)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} missing: rerun `rrn features` with the same --out to finish it"
            )
        with np.load(path) as z:
            videos.append(
                FeatureVideo(ann, z[f"stage{stage}"].astype(np.float32), z["times"].astype(float))
            )
    classes = tuple(meta["classes"])
    return DetectionFeatures(
        classes, videos, failed, TemporalAnnotations(classes, tuple(annotations), root), meta
    )


def run_detection_baseline(cfg: BaselineConfig, *, plot: bool = True) -> dict[str, Any]:
    """Train the GRU on the training videos' features and score it online on the test videos.

    Returns:
        The detection result (as ``rrn eval``'s), also written to ``<out>/<stem>.json``.

    Raises:
        ConfigError: ``--model avgpool`` (a video-level classifier has no per-frame score) or
            no ``--features``.
    """
    if not cfg.features:
        raise ConfigError("--features is required (the folder written by rrn features)")
    if cfg.model != "gru":
        raise ConfigError(
            f"--model {cfg.model} classifies whole videos; features of untrimmed videos need a "
            "score at every frame: --model gru"
        )
    data = load_detection_features(cfg.features, cfg.stage)
    train = [v for v in data.videos if v.annotation.subset == "train"]
    test = [v for v in data.videos if v.annotation.subset == "test"]
    if not train or not test:
        raise UserError(f"{cfg.features}: no train or no test video with features")
    labels = [frame_labels(v.annotation, v.times, len(data.classes)) for v in train]
    seqs = [torch.from_numpy(v.features) for v in train]
    torch.manual_seed(cfg.seed)
    mean, std = (
        znorm_stats([v.features for v in train], pooled=False) if cfg.znorm else (None, None)
    )
    model = DetectionGRU(seqs[0].shape[1], len(data.classes), cfg.hidden, mean, std)
    start = time.perf_counter()
    history = train_detection_gru(
        model, seqs, [x.targets for x in labels], [x.ignore for x in labels], cfg
    )
    train_s = time.perf_counter() - start
    out = Path(cfg.out if cfg.out is not None else cfg.features)
    atomic_write(
        out / cfg.stem / "model.pt",
        lambda fh: torch.save({"state_dict": model.state_dict(), "classes": data.classes}, fh),
    )
    folder = _write_scores(model, data, test, cfg, out / cfg.stem / "scores")
    scored = score_folder(folder, data.annotations, SegmentSettings())
    scored.result["protocol"] += (
        f" Scores: a {cfg.hidden}-unit GRU over the frozen stage-{cfg.stage} features"
        f"{' (z-normalised with training statistics)' if cfg.znorm else ''}, trained on windows"
        f" of {cfg.window} frames every {cfg.window_stride} frames with the loss on their last "
        f"{cfg.loss_steps} (MiniROAD's recipe), run online from a zero state at each test "
        "video's start."
    )
    extra = {
        "model": "gru",
        "stage": cfg.stage,
        "znorm": cfg.znorm,
        "features": str(cfg.features),
        "classifier": {k: getattr(cfg, k) for k in _CLASSIFIER},
        "train_videos": len(train),
        "train_loss": history,
        "train_seconds": round(train_s, 3),
    }
    return write_detection_results(scored, out, cfg.stem, extra=extra, plot=3 if plot else 0)


_CLASSIFIER = ("hidden", "epochs", "lr", "weight_decay", "batch_size", "window")
_CLASSIFIER += ("window_stride", "loss_steps", "seed")


def _write_scores(model, data: DetectionFeatures, test, cfg: BaselineConfig, folder: Path) -> Path:
    """Each test video's per-frame probabilities as a score folder."""
    for v in test:
        write_video_scores(
            folder, v.annotation.video, video_probs(model, torch.from_numpy(v.features)), v.times
        )
    gaps = {round(float(np.median(np.diff(v.times))), 9) for v in test if len(v.times) > 1}
    interval = next(iter(gaps)) if len(gaps) == 1 else None
    meta = data.meta
    sampling = Sampling(meta.get("sample_every") or 1, meta.get("fps"), meta.get("short_side"))
    write_scores_meta(
        folder,
        classes=data.classes,
        sampling=sampling_text(sampling, interval),
        source=f"GRU baseline ({cfg.hidden} units) on stage-{cfg.stage} features of "
        f"{meta.get('source')} ({cfg.features})",
        interval_s=interval,
        context=1,
        skipped={
            v.video: data.failed[v.video]
            for v in data.annotations.subset("test")
            if v.video in data.failed
        },
    )
    return folder

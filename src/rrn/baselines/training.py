"""The paper's baselines, part three: a classifier (:mod:`rrn.baselines.models`) trained on the
stored features of the training videos (:mod:`rrn.baselines.features`) and evaluated on the test
videos (:func:`run_baseline`), z-normalised with statistics of the training split only when
asked. It writes the same evaluation files as ``rrn eval`` (:func:`rrn.metrics.evaluate_probs`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rrn.baselines.detection import is_detection_features, run_detection_baseline
from rrn.baselines.features import load_features
from rrn.baselines.models import AvgPoolClassifier, GRUClassifier, znorm_stats
from rrn.config import BaselineConfig, ConfigError


def _pad(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    x = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.from_numpy(s)
    return x, lengths  # (V, N_max, C), (V,)


def baseline_protocol(model: str) -> str:
    """How a baseline's number is measured (written into its JSON, like ``rrn eval``'s)."""
    over = (
        "mean of the features of all sampled frames"
        if model == "avgpool"
        else "GRU over all sampled frames"
    )
    return f"video-level, {over}, 1 centre crop"


def run_baseline(cfg: BaselineConfig, *, plot: bool = True) -> dict[str, Any]:
    """Train a baseline classifier on stored features and evaluate it on the test videos.

    On features of untrimmed videos (``rrn features`` on thumos14 or activitynet) this is
    :func:`~rrn.baselines.detection.run_detection_baseline`: the GRU as an online detector.

    Returns:
        The evaluation JSON (as :func:`rrn.metrics.evaluate_probs`), also written to
        ``cfg.out`` (default: the features folder) as ``baseline_<model>_stage<s>[_znorm].json``.
    """
    from rrn.metrics import evaluate_probs

    if not cfg.features:
        raise ConfigError("--features is required (the folder written by rrn features)")
    if is_detection_features(cfg.features):  # untrimmed videos: a score at every frame
        return run_detection_baseline(cfg, plot=plot)
    seqs, labels, ids, classes = load_features(cfg.features, cfg.stage)
    torch.manual_seed(cfg.seed)
    dim = seqs["train"][0].shape[1]
    mean, std = (
        znorm_stats(seqs["train"], pooled=cfg.model == "avgpool") if cfg.znorm else (None, None)
    )
    if cfg.model == "avgpool":
        clf: nn.Module = AvgPoolClassifier(dim, len(classes), mean, std)
    else:
        clf = GRUClassifier(dim, len(classes), cfg.hidden, mean, std)
    start = time.perf_counter()
    _train_classifier(clf, seqs["train"], labels["train"], cfg)
    train_s = time.perf_counter() - start
    clf.eval()
    x_test, len_test = _pad(seqs["test"])
    with torch.no_grad():
        probs = clf(x_test, len_test).softmax(dim=1)  # (V, K)
    return evaluate_probs(
        probs,
        labels["test"],
        classes,
        out_dir=cfg.out if cfg.out is not None else cfg.features,
        stem=cfg.stem,
        video_ids=ids["test"],
        extra={
            "protocol": baseline_protocol(cfg.model),
            "model": cfg.model,
            "stage": cfg.stage,
            "znorm": cfg.znorm,
            "features": str(cfg.features),
            "epochs": cfg.epochs,
            "lr": cfg.lr,
            "train_videos": len(labels["train"]),
            "train_seconds": train_s,
        },
        plot=plot,
    )


def _train_classifier(
    clf: nn.Module, train_seqs, y_train: torch.Tensor, cfg: BaselineConfig
) -> None:
    """Adam on the cross-entropy of shuffled mini-batches of videos."""
    x_train, len_train = _pad(train_seqs)
    opt = torch.optim.Adam(clf.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    clf.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(y_train), generator=gen)
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            loss = nn.functional.cross_entropy(clf(x_train[idx], len_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

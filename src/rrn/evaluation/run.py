"""Evaluation of a trained run or checkpoint on a test split (paper §3.3), as a library.

Each video's prediction is the mean of its M chunks' probabilities (each chunk's the mean over
its spatial views: one centre crop by default, or 3 crops and/or their mirror images, see
:class:`~rrn.data.transforms.EvalViews`). :func:`evaluate_checkpoint` writes, next to the
checkpoint (or into ``EvalConfig.out``): ``eval_split{k}.json`` (``video_error``, ``video_top1``,
``video_top5``, ``clip_top1``, ``mean_class_accuracy``, ``num_videos``, ``num_chunks``,
``protocol`` -- e.g. "video-level, all N//T chunks (T=2), 1 centre crop" --, ``views``, split,
checkpoint, config, timing), ``eval_split{k}_per_class.csv`` and ``eval_split{k}_confusion.png``.

:func:`evaluate_run` evaluates one run per split when its path holds ``{split}``
(``runs/ucf_split{split}`` with splits 1 2 3) and writes their mean, as the paper reports it, to
``eval_mean.json``. Both run under torchrun; the videos that ``DistributedSampler`` pads in are
counted once.

Data settings default to the checkpoint's (the frames a model sees must be sampled as in its
training); the run settings (device, precision, workers) are this machine's.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rrn import distributed as rdist
from rrn.checkpoint import build_from_checkpoint, checkpoint_choice, open_checkpoint
from rrn.config import ConfigError, EvalConfig, TrainConfig, resolve_config
from rrn.data.formats import dataset_format, flip_changes_class
from rrn.data.transforms import EvalViews
from rrn.detection.scores import is_score_folder
from rrn.evaluation.detection import (
    check_detection_settings,
    evaluate_detection_checkpoint,
    evaluate_score_folder,
)
from rrn.evaluation.detection_scoring import SegmentSettings
from rrn.evaluation.loop import create_eval_loader, evaluate
from rrn.files import atomic_write_json, check_writable
from rrn.metrics import evaluate_probs, mean_over_splits
from rrn.runtime import amp_dtype, precision_name

logger = logging.getLogger(__name__)


def eval_targets(run: str, splits: Sequence[int] | None) -> list[tuple[int | None, str]]:
    """``(split, path)`` pairs to evaluate: one checkpoint, or ``{split}`` filled in per split.

    Raises:
        ConfigError: ``{split}`` without splits, or several splits for one checkpoint (it would
            be tested on videos it trained on).
    """
    placeholder = "{split}" in run
    if placeholder and not splits:
        raise ConfigError(f"{run} contains {{split}}: say which with --split, e.g. --split 1 2 3")
    if not placeholder and splits and len(splits) > 1:
        raise ConfigError(
            f"--split {' '.join(map(str, splits))} with one checkpoint would test on videos it "
            "trained on; put {split} in the path, one run per split "
            "(e.g. rrn eval runs/ucf_split{split} --split 1 2 3)"
        )
    if bad := [k for k in splits or [] if k not in (1, 2, 3)]:
        raise ConfigError(f"--split must be among 1 2 3, got {bad}")
    if not splits:
        return [(None, run)]
    return [(k, run.replace("{split}", str(k))) for k in splits]


def eval_config(
    ckpt: Mapping[str, Any],
    name: str,
    overrides: Mapping[str, Mapping[str, Any]],
    split: int | None,
) -> TrainConfig:
    """The checkpoint's data and model settings, this machine's run settings, then ``overrides``
    (``{"data": {...}, "run": {...}}``) and ``split``."""
    saved = {k: v for k, v in (ckpt.get("config") or {}).items() if k != "run"}
    seed = (ckpt.get("config") or {}).get("run", {}).get("seed")
    if seed is not None:
        saved["run"] = {"seed": seed}
    data = {**overrides.get("data", {}), **({"split": split} if split is not None else {})}
    return resolve_config([(name, saved), ("flags", {**overrides, "data": data})], quiet=[name])


def results_dir(settings: EvalConfig, split: int, ckpt_path: Path) -> Path:
    """Where the results of ``split`` go: ``--out`` with ``{split}`` filled in, else the
    checkpoint's folder (a model package's own folder)."""
    if settings.out:
        return Path(settings.out.replace("{split}", str(split)))
    return ckpt_path if ckpt_path.is_dir() else ckpt_path.parent


def class_difference(trained: list[str], data: list[str]) -> str:
    """The first way two class lists differ, in words."""
    if len(trained) != len(data):
        return f"{len(trained)} classes vs {len(data)}"
    i = next(i for i, (a, b) in enumerate(zip(trained, data)) if a != b)
    return f"class {i} is {trained[i]!r} in the checkpoint, {data[i]!r} in the data"


def evaluate_checkpoint(
    path: str | os.PathLike,
    *,
    split: int | None = None,
    settings: EvalConfig | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    info: rdist.DistInfo | None = None,
    device: torch.device | None = None,
    segments: SegmentSettings | None = None,
) -> dict[str, Any] | None:
    """Evaluate one checkpoint (or run directory) on one split.

    A detection model (a run on a temporal dataset: ``thumos14``, ``activitynet``) is run online
    over every whole test video and scored per frame and per segment instead
    (:mod:`rrn.evaluation.detection`).

    Args:
        path: a checkpoint file or a run directory (``settings.which`` picks the file), a model
            package folder or ``hf://org/name[@revision]`` (then ``settings.out`` is needed).
        split: the split to test on (default: the checkpoint's).
        settings: which checkpoint, chunks per forward pass, output folder.
        overrides: data and run settings replacing the checkpoint's / the defaults, nested by
            section (``{"data": {"data_root": ...}, "run": {"workers": 0}}``).
        info, device: this process's place in a torchrun job and its device (default: single
            process, ``run.device``).
        segments: How a detection model's scores become segments (``rrn stream``'s smoothing,
            threshold and minimum segment; default: its defaults).

    Returns:
        The result written to ``eval_split{k}.json`` on rank 0, None on the other ranks.
    """
    from rrn.package.hub import is_hub_uri

    settings = settings or EvalConfig()
    if is_hub_uri(str(path)) and not settings.out:
        raise ConfigError(
            f"{path} is read from the Hugging Face cache, no place for results: say where they "
            "go with --out DIR"
        )
    ckpt_path, ckpt = open_checkpoint(path, settings.which)
    cfg = eval_config(ckpt, str(ckpt_path), overrides or {}, split)
    info = info or rdist.DistInfo()
    device = device or rdist.resolve_device(cfg.run.device, info)
    temporal = dataset_format(cfg.data.dataset).temporal
    if temporal:
        check_detection_settings(settings)
    if info.is_main:
        _warn_other_split(ckpt, ckpt_path, split)
    data = cfg.data.load_split()
    if data.classes != list(ckpt["classes"]):
        raise ConfigError(
            f"the classes of {ckpt_path} differ from those of "
            f"{cfg.data.split_dir or cfg.data.data_root} "
            f"({class_difference(list(ckpt['classes']), data.classes)}); evaluate on the dataset "
            "it was trained on, with its class index"
        )
    out_dir = results_dir(settings, cfg.data.split, ckpt_path)
    if info.is_main:
        check_writable(out_dir)  # before the evaluation, not after it
    model = build_from_checkpoint(ckpt, device, name=str(ckpt_path))
    if temporal:
        result = evaluate_detection_checkpoint(
            model,
            data,
            cfg,
            ckpt=ckpt,
            ckpt_path=ckpt_path,
            out_dir=out_dir,
            segments=segments or SegmentSettings(),
            info=info,
            device=device,
        )
        rdist.barrier()  # the ranks leave together
        return result
    res, seconds = _run(model, data.test, cfg, settings, info, device)
    evaluated = _Evaluated(
        res=res,
        seconds=seconds,
        data=data,
        cfg=cfg,
        ckpt=ckpt,
        ckpt_path=ckpt_path,
        context=model.temporal_context,
        settings=settings,
        info=info,
        device=device,
    )
    result = _write(evaluated, out_dir) if info.is_main else None
    rdist.barrier()  # the ranks leave together: none ends its process while rank 0 still writes
    return result


def _warn_other_split(ckpt: Mapping[str, Any], ckpt_path: Path, split: int | None) -> None:
    """Warn when the checkpoint was trained on another split or chosen on the test split."""
    trained_on = (ckpt.get("config") or {}).get("data", {}).get("split")
    if split is not None and trained_on not in (None, split):
        logger.warning(
            "rrn eval: warning: %s was trained on split %s, evaluating split %s",
            ckpt_path,
            trained_on,
            split,
        )
    choice = checkpoint_choice(ckpt_path, ckpt)
    if choice["chosen_by"] == "test":
        logger.warning("rrn eval: warning: %s was chosen by %s", ckpt_path, choice["description"])


def eval_protocol(views: EvalViews, context: int, stride: int | None) -> str:
    """How a number was measured, written beside it: ``'video-level, all N//T chunks (T=2), 1
    centre crop'``, ``'video-level, chunks at stride 1 (T=2), 3 crops x 2 flips'``, ..."""
    chunks = "all N//T chunks" if stride in (None, context) else f"chunks at stride {stride}"
    return f"video-level, {chunks} (T={context}), {views.describe()}"


def _run(model, records, cfg: TrainConfig, settings: EvalConfig, info, device):
    from rrn.data import VideoChunkDataset

    views = EvalViews.named(settings.views, settings.flip)
    if views.flip and info.is_main and (why := flip_changes_class(cfg.data)):
        logger.warning(
            f"rrn eval: warning: --flip (eval.flip) on {why} mirrors 'left to right' "
            "into 'right to left', another class"
        )
    dataset = VideoChunkDataset.from_config(
        records,
        cfg.data,
        context=model.temporal_context,
        train=False,
        seed=cfg.run.seed,
        views=views,
    )
    loader = create_eval_loader(
        dataset, workers=cfg.run.workers, pin_memory=cfg.run.pin_memory and device.type == "cuda"
    )
    t0 = time.perf_counter()
    res = evaluate(
        model,
        loader,
        device=device,
        chunk_batch=settings.batch_size,
        dtype=amp_dtype(cfg.run.amp, device),
        progress=cfg.run.progress and info.is_main,
    )
    return res, time.perf_counter() - t0


@dataclass(kw_only=True)
class _Evaluated:
    """A checkpoint's evaluation on one split, before it is written."""

    res: dict[str, Any]
    seconds: float
    data: Any
    """The :class:`~rrn.data.splits.DatasetSplit` evaluated on."""
    cfg: TrainConfig
    ckpt: Mapping[str, Any]
    ckpt_path: Path
    context: int
    settings: EvalConfig
    info: Any
    device: torch.device


def _write(e: _Evaluated, out_dir: Path) -> dict[str, Any]:
    res, seconds, data, cfg, ckpt, ckpt_path = e.res, e.seconds, e.data, e.cfg, e.ckpt, e.ckpt_path
    context, settings, info, device = e.context, e.settings, e.info, e.device
    d = cfg.data
    views = EvalViews.named(settings.views, settings.flip)
    ids = [data.test[i].video_id for i in res["video_index"].tolist()]
    extra = {
        "split": d.split,
        "dataset": d.dataset,
        "checkpoint": str(ckpt_path),
        "checkpoint_choice": checkpoint_choice(ckpt_path, ckpt),
        "checkpoint_progress": {
            k: (ckpt.get("progress") or {}).get(k) for k in ("epoch", "global_step")
        },
        "context": context,
        "eval_stride": d.eval_stride,
        "protocol": eval_protocol(views, context, d.eval_stride),
        "precision": precision_name(cfg.run.amp, device),
        "views": {"crops": views.crops, "flip": views.flip, "per_chunk": views.count},
        "skipped": [data.test[i].video_id for i in res["skipped"] if i >= 0],
        "num_test_videos": len(data.test),
        "timing": {
            "seconds": round(seconds, 3),
            "videos_per_s": round(len(ids) / max(seconds, 1e-9), 3),
            "device": str(device),
            "world_size": info.world_size,
        },
        "config": cfg.to_dict(),
    }
    return evaluate_probs(
        res["video_probs"],
        res["labels"],
        data.classes,
        out_dir=out_dir,
        stem=f"eval_split{d.split}",
        chunk_probs=res["chunk_probs"],
        chunk_labels=res["chunk_labels"],
        video_ids=ids,
        extra=extra,
    )


def evaluate_run(
    run: str,
    *,
    splits: Sequence[int] | None = None,
    settings: EvalConfig | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    segments: SegmentSettings | None = None,
) -> dict[str, Any]:
    """Evaluate a run (or one run per split via ``{split}`` in ``run``) and, for several splits,
    write the mean over them to ``eval_mean.json``. A score folder (per-frame scores of a
    detection model, :mod:`rrn.detection.scores`) is scored against its dataset's annotations
    (:func:`~rrn.evaluation.detection.evaluate_score_folder`).

    Returns:
        ``{"results": [per-split results], "mean": eval_mean.json's content or None,
        "mean_file": its path or None}`` on rank 0; empty results on the other ranks.
    """
    settings = settings or EvalConfig()
    overrides = overrides or {}
    if is_score_folder(run):
        result = evaluate_score_folder(
            run, data=overrides.get("data", {}), segments=segments, out=settings.out
        )
        return {"results": [result], "mean": None, "mean_file": None}
    targets = eval_targets(run, splits)
    run_cfg = resolve_config([("flags", {"run": overrides.get("run", {})})]).run
    owner = not rdist.is_initialized()
    info, device = rdist.init_distributed(run_cfg.device)
    results = []
    try:
        for split, path in targets:
            result = evaluate_checkpoint(
                path,
                split=split,
                settings=settings,
                overrides=overrides,
                info=info,
                device=device,
                segments=segments,
            )
            if result is not None:
                results.append(result)
    finally:
        if owner:
            rdist.cleanup()
    mean = mean_file = None
    if info.is_main and len(targets) > 1:
        mean = mean_over_splits(results)
        folders = [results_dir(settings, r["split"], Path(r["checkpoint"])) for r in results]
        out = Path(os.path.commonpath([str(f.resolve()) for f in folders]))  # the folder they share
        mean_file = atomic_write_json(out / "eval_mean.json", mean)
    return {"results": results, "mean": mean, "mean_file": mean_file}

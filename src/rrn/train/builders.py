"""Builders: each piece of a training run made from the config, one function per concern
(timm's ``create_*``): the model, the optimiser, the datasets, the step plan and the loaders.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from rrn import distributed as rdist
from rrn.checkpoint import load_state_checked
from rrn.config import ModelConfig, OptimConfig, TrainConfig
from rrn.distributed import MicroBatch, ResumableDistributedSampler, StepBatchSampler
from rrn.model import WeightsSource, resolve_skips, resolve_weights
from rrn.model.weights import check_weights_arch
from rrn.runtime import resolve_workers, stop_safe_worker_init

logger = logging.getLogger(__name__)

STAGE_MODULES = {"stem": ("conv1", "bn1"), **{f"layer{i}": (f"layer{i}",) for i in range(1, 5)}}


# ---------------------------------------------------------------------------------- the model
def with_resolved_skips(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with ``skip`` as module paths and ``context`` set: what is saved with the run."""
    skips = resolve_skips(cfg.model)
    return cfg.replace(model={"skip": skips, "context": len(skips) + 1})


def create_model(
    cfg: TrainConfig,
    num_classes: int,
    *,
    resuming: bool = False,
    classes: list[str] | None = None,
) -> tuple[nn.Module, str]:
    """The model ``cfg.model`` describes, with its initial weights, and a note saying which.

    The weights are ``--weights`` through the one weights path (:func:`rrn.model.load_weights`:
    none, imagenet, a state dict file, or an rrn checkpoint of the same architecture, every
    tensor whose name and shape fit). A resumed run starts from random weights (``last.pt`` is
    loaded over them, no download). Given the run's ``classes``, the classifier of an rrn
    checkpoint trained on other classes is re-initialised even where its size fits (a
    recognition run of 21 classes has no Background to give a detection run of 20 + 1).
    """
    from rrn.model import build_model

    weights, trained_on = (None, None) if resuming else initial_weights(cfg.model)
    model = build_model(
        arch=cfg.model.arch,
        num_classes=num_classes,
        skip_blocks=cfg.model.skip,
        skip_type=cfg.model.skip_type,
        weights=weights,
        temporal_init=cfg.model.temporal_init,
    )
    note = "resumed" if resuming else str(model.info.weights)
    if trained_on is not None and classes is not None and list(trained_on) != list(classes):
        model.fc.reset_parameters()  # torchvision's initialisation of the classifier
        note += " (classifier re-initialised: the weights were trained on other classes)"
    return model, note


def initial_weights(model_cfg: ModelConfig) -> tuple[WeightsSource, list[str] | None]:
    """``--weights`` resolved (:func:`rrn.model.resolve_weights`), and the classes they were
    trained on (None when they do not say: torchvision's, a bare state dict).

    Beside what the model layer reads, a model package folder (``rrn pack``) or
    ``hf://org/name[@revision]`` gives its weights (``model.safetensors``; downloaded into the
    Hub's cache), which must be of ``--arch``.

    Raises:
        WeightsError: a package of another architecture; what ``resolve_weights`` raises.
        PackageError, HubError: a package that is incomplete or damaged, or not to be had.
    """
    from rrn.checkpoint import load_checkpoint, open_checkpoint
    from rrn.package.folder import is_package
    from rrn.package.hub import is_hub_uri

    given = model_cfg.weights
    if is_hub_uri(given) or is_package(given):
        _, ckpt = open_checkpoint(given)
        check_weights_arch(given, saved=ckpt["model_config"].get("arch"), arch=model_cfg.arch)
        return WeightsSource("state_dict", state=ckpt["model"], name=str(given)), ckpt["classes"]
    source = resolve_weights(given)
    if source.kind != "checkpoint":
        return source, None
    return source, load_checkpoint(source.path).get("classes")


def freeze_stages(model: nn.Module, stages: tuple[str, ...]) -> list[nn.Module]:
    """Stop gradients through ``stages``; return their BatchNorm layers (kept in eval mode)."""
    frozen_bn: list[nn.Module] = []
    for stage in stages:
        for name in STAGE_MODULES[stage]:
            module = model.get_submodule(name)
            for p in module.parameters():
                p.requires_grad_(False)
            frozen_bn += [
                m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            ]
    return frozen_bn


def prepare_model(
    model: nn.Module,
    cfg: TrainConfig,
    info: rdist.DistInfo,
    device: torch.device,
    state_dict=None,
    source: str = "the resumed checkpoint",
) -> tuple[nn.Module, list[nn.Module]]:
    """Freeze stages, load a resumed ``state_dict``, move to ``device`` and wrap for DDP.

    Returns:
        ``(model, frozen_bn)``: the (possibly DDP-wrapped) model and the BatchNorm layers of
        frozen stages, which training keeps in eval mode.
    """
    frozen_bn = freeze_stages(model, cfg.model.freeze)
    if state_dict is not None:
        load_state_checked(model, state_dict, source)
    model.to(device)
    if device.type == "cuda" and cfg.run.channels_last:
        model.to(memory_format=torch.channels_last)
    if not info.enabled:
        return model, frozen_bn
    if cfg.model.sync_bn and device.type != "cuda":
        if info.is_main:
            logger.warning(
                "rrn train: warning: --sync-bn (run.sync_bn) needs CUDA (SyncBatchNorm "
                "has no CPU kernel); each process keeps its own BatchNorm statistics"
            )
    elif cfg.model.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        frozen_bn = [
            m
            for m in model.modules()
            if isinstance(m, nn.SyncBatchNorm) and not any(p.requires_grad for p in m.parameters())
        ]
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None), frozen_bn


# ---------------------------------------------------------------------------- the optimiser
def create_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """Adam over the trainable parameters (the paper's optimiser), with torch's fused kernel
    where it has one (CPU and CUDA since torch 2.4; docs/benchmarks.md)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(trainable, lr=optim.lr, weight_decay=optim.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch or a device without it
        return torch.optim.Adam(trainable, lr=optim.lr, weight_decay=optim.weight_decay)


def lr_at(step: int, cfg: OptimConfig, steps_per_epoch: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): a pure function, nothing to save.

    ``constant``; ``step``: times ``lr_gamma`` after each epoch in ``lr_milestones``;
    ``cosine``: from ``lr`` to 0 over all steps. A linear warm-up multiplies any of them.
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    lr = cfg.lr
    if cfg.schedule == "step":
        epoch = step / max(1, steps_per_epoch)
        lr *= cfg.lr_gamma ** sum(epoch >= m for m in cfg.lr_milestones)
    elif cfg.schedule == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if cfg.warmup_steps and step < cfg.warmup_steps:
        lr *= (step + 1) / (cfg.warmup_steps + 1)
    return lr


@dataclass(frozen=True)
class StepPlan:
    """How an epoch is cut into optimiser steps over ``world_size`` processes."""

    chunks_per_step: int  # over all processes, as configured
    local_step: int  # this process's chunks per step
    steps_per_epoch: int

    @classmethod
    def create(cls, optim: OptimConfig, num_chunks: int, world_size: int) -> StepPlan:
        chunks = optim.chunks_per_step(num_chunks)
        local = math.ceil(chunks / world_size)
        per_rank = math.ceil(num_chunks / world_size)  # DistributedSampler pads to this
        return cls(chunks, local, math.ceil(per_rank / local))


# ------------------------------------------------------------------------ data and loaders
class Datasets(NamedTuple):
    """A run's data: training chunks; whole videos of the validation and test splits."""

    train: Any
    val: Any  # None without --val-fraction
    test: Any


def create_datasets(cfg: TrainConfig, split, context: int) -> Datasets:
    """The training set (random chunks), the validation set carved from the training videos by
    group (``--val-fraction``; else None) and the test set (all chunks of each video)."""
    from rrn.data import VideoChunkDataset
    from rrn.data.holdout import carve_validation

    train, val = split.train, []
    if cfg.data.val_fraction:
        train, val = carve_validation(split.train, cfg.data.val_fraction, cfg.run.seed)

    def make(records, is_train):
        return VideoChunkDataset.from_config(
            records, cfg.data, context=context, train=is_train, seed=cfg.run.seed
        )

    if split.annotations is not None:  # untrimmed videos: chunks labelled by their last frame
        return Datasets(_untrimmed(cfg, split, context), None, make(split.test, False))
    return Datasets(make(train, True), make(val, False) if val else None, make(split.test, False))


def _untrimmed(cfg: TrainConfig, split, context: int):
    """The training chunks of untrimmed videos (:mod:`rrn.data.untrimmed`)."""
    from rrn.data.untrimmed import UntrimmedChunkDataset

    dataset = UntrimmedChunkDataset.from_config(
        split.train, cfg.data, num_classes=len(split.classes), context=context, seed=cfg.run.seed
    )
    main = rdist.dist_info_from_env().is_main
    if dataset.source.cache is None and main:
        logger.warning(
            "rrn train: warning: no frame cache for %s: every chunk decodes its whole untrimmed "
            "video; run rrn cache with the same --data-root and sampling flags first",
            cfg.data.data_root,
        )
    if main:
        _warn_of_annotation_problems(split.annotations)
    return dataset


def _warn_of_annotation_problems(annotations) -> None:
    """Say what ``rrn check-data`` would find in the annotations themselves (intervals that
    label no frame or pass their video's stated end, classes without a training interval):
    training goes on, but such an interval or class teaches nothing."""
    from rrn.detection.labels import check_annotations

    problems = check_annotations(annotations)
    if problems:
        shown = "; ".join(str(p) for p in problems[:2])
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        logger.warning(
            "rrn train: warning: %d annotation problem%s: %s%s; rrn check-data with the same "
            "--dataset, --data-root and --split-dir lists them all",
            len(problems),
            "s" if len(problems) > 1 else "",
            shown,
            more,
        )


def create_train_loader(
    dataset,
    plan: StepPlan,
    epoch: int,
    step_in_epoch: int,
    *,
    cfg: TrainConfig,
    info: rdist.DistInfo,
    device: torch.device,
) -> tuple[DataLoader, list[MicroBatch]]:
    """This epoch's loader from ``step_in_epoch`` on, and its schedule of micro-batches."""
    from rrn.data import collate_chunks

    dataset.set_epoch(epoch)
    sampler = ResumableDistributedSampler(
        dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.run.seed
    )
    sampler.set_epoch(epoch)
    sampler.set_start(min(step_in_epoch * plan.local_step, sampler.num_samples))
    batches = StepBatchSampler(sampler, cfg.optim.batch_size, plan.local_step)
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=resolve_workers(cfg.run.workers),
        collate_fn=collate_chunks,
        pin_memory=cfg.run.pin_memory and device.type == "cuda",
        worker_init_fn=stop_safe_worker_init(),
    )
    return loader, batches.schedule()

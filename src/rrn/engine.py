"""Training and evaluation loops as plain functions: :func:`train_one_epoch`, :func:`evaluate`, :func:`fit`.

Optimisation follows the paper: cross-entropy on each chunk's last-frame output, Adam, and one
optimiser step per ``update_every`` of the training chunks (1% by default). A step's chunks are
processed in micro-batches of ``batch_size`` whose gradients accumulate, each micro-batch's loss
summed and divided by the step's chunk count, so the step's gradient is the mean over its chunks
whatever the micro-batch size (memory stays bounded).

DDP is detected from torchrun's environment (:mod:`rrn.distributed`); non-final micro-batches
run under ``no_sync()``; only rank 0 writes files and logs. Data order and augmentation are a
pure function of (seed, epoch, index), and a checkpoint records the step reached inside the
epoch, so a resumed run ends with exactly the weights of an uninterrupted one.

Evaluation follows §3.3: a video's prediction is the mean of its M chunks' probabilities; the
duplicates that ``DistributedSampler`` pads in are removed by video index before counting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from rrn import distributed as rdist
from rrn.checkpoint import (
    BEST,
    LAST,
    atomic_write_text,
    check_writable,
    is_rrn_checkpoint,
    load_checkpoint,
    load_weights_into,
    make_checkpoint,
    save_checkpoint,
    unwrap,
)
from rrn.config import OptimConfig, TrainConfig, parse_fault
from rrn.distributed import MicroBatch, ResumableDistributedSampler, StepBatchSampler
from rrn.metrics import compute_metrics, video_probs_from_chunks


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the weights were not updated with it."""


class SimulatedCrash(RuntimeError):
    """Raised by ``--fault crash@N`` to test recovery."""


# --------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------


def chunks_per_step(update_every: float, num_chunks: int) -> int:
    """Chunks per optimiser step: a fraction (float) of ``num_chunks`` or a count (int)."""
    if isinstance(update_every, int):
        return max(1, update_every)
    return max(1, round(update_every * num_chunks))


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


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16/fp16 on CUDA, None (full precision) on CPU or with ``none``."""
    if device.type != "cuda" or amp == "none":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


STAGE_MODULES = {"stem": ("conv1", "bn1"), **{f"layer{i}": (f"layer{i}",) for i in range(1, 5)}}


def freeze_stages(model: nn.Module, stages: tuple[str, ...]) -> list[nn.Module]:
    """Stop gradients through ``stages``; return their BatchNorm layers (kept in eval mode)."""
    frozen_bn: list[nn.Module] = []
    for stage in stages:
        for name in STAGE_MODULES[stage]:
            module = model.get_submodule(name)
            for p in module.parameters():
                p.requires_grad_(False)
            frozen_bn += [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return frozen_bn


def set_train_mode(model: nn.Module, frozen_bn: list[nn.Module]) -> None:
    model.train()
    for m in frozen_bn:
        m.eval()  # frozen stages keep their (e.g. ImageNet) running statistics


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module):
    """BatchNorm layers still normalise with batch statistics but leave their running estimates
    as they are (momentum 0) for the duration; restored afterwards."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved):
            m.momentum = momentum


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank, so all ranks hold one model."""
    if rdist.is_enabled():
        for buf in unwrap(model).buffers():
            torch.distributed.broadcast(buf, src=0)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class EpochTotals:
    """Running sums of an epoch over all ranks (kept in checkpoints so resumed logs agree)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    chunks: float = 0.0
    skipped: list[int] = dataclasses.field(default_factory=list)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.chunks if self.chunks else float("nan")

    @property
    def acc(self) -> float:
        return self.correct / self.chunks if self.chunks else float("nan")


@dataclasses.dataclass
class StepInfo:
    """What :func:`train_one_epoch` reports after each optimiser step."""

    epoch: int
    step_in_epoch: int  # steps completed in this epoch
    steps_per_epoch: int
    global_step: int  # steps completed in the run
    loss: float  # mean chunk loss of this step, over all ranks
    acc: float
    chunks: int
    lr: float
    clips_per_s: float
    totals: EpochTotals


def _fault(spec: str | None) -> tuple[str, int]:
    return parse_fault(spec) if spec else ("", -1)


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    schedule: list[MicroBatch],
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    epoch: int,
    steps_per_epoch: int,
    global_step: int = 0,
    lr_fn: Callable[[int], float] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    dtype: torch.dtype | None = None,
    grad_clip: float | None = None,
    frozen_bn: list[nn.Module] | None = None,
    totals: EpochTotals | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    progress: bool = False,
    fault: str | None = None,
    clip_shape: tuple[int, ...] | None = None,
) -> EpochTotals:
    """Train for (the rest of) one epoch.

    Args:
        model: the model, possibly wrapped in DistributedDataParallel.
        loader: yields ``collate_chunks`` batches in the order of ``schedule``.
        schedule: one :class:`MicroBatch` per batch (``StepBatchSampler.schedule()``).
        optimizer: stepped once per optimiser step (after the step's last micro-batch).
        device: where the model lives.
        epoch: 0-based epoch (for logs and errors).
        steps_per_epoch: optimiser steps in a full epoch.
        global_step: optimiser steps completed before this call.
        lr_fn: ``global_step -> learning rate`` set before each step.
        scaler: fp16 gradient scaler (None or disabled otherwise).
        dtype: autocast dtype (None = full precision).
        grad_clip: clip the global gradient norm to this value.
        frozen_bn: BatchNorm layers of frozen stages, kept in eval mode.
        totals: running sums of the epoch so far (a resumed epoch continues them).
        on_step: called after every optimiser step (logging, checkpoints).
        progress: show a progress bar.
        fault: ``crash@N`` / ``nan@N`` testing hook (see ``--fault``).
        clip_shape: (T, 3, S, S) of a clip, for the dummy forward a DDP rank with an all-skipped
            micro-batch needs to stay in step with the others.

    Returns:
        The epoch's :class:`EpochTotals` (over all ranks).

    Raises:
        NonFiniteLossError: before applying a step whose loss is not finite.
    """
    totals = totals or EpochTotals()
    is_ddp = isinstance(model, DDP)
    world = torch.distributed.get_world_size() if rdist.is_enabled() else 1
    set_train_mode(model, frozen_bn or [])
    fault_kind, fault_step = _fault(fault)
    use_scaler = scaler is not None and scaler.is_enabled()

    step_loss = torch.zeros((), device=device, dtype=torch.float64)
    step_correct = torch.zeros((), device=device, dtype=torch.float64)
    step_chunks = 0
    t_step = time.perf_counter()
    bar = tqdm(total=len(schedule), desc=f"epoch {epoch + 1}", unit="batch", disable=not progress,
               dynamic_ncols=True, leave=False)
    for batch, mb in zip(loader, schedule, strict=True):
        totals.skipped.extend(int(i) for i in batch["skipped"])
        clip = batch["clip"].to(device, non_blocking=True)  # (B, T, 3, S, S)
        labels = batch["label"].to(device, non_blocking=True)  # (B,)
        weight = 1.0
        if clip.numel() == 0:
            if not is_ddp or clip_shape is None:
                clip = None
            else:  # every rank must run forward/backward for the gradient all-reduce
                clip = torch.zeros((2, *clip_shape), device=device)  # 2: BatchNorm needs > 1 value
                labels = torch.zeros(2, dtype=torch.long, device=device)
                weight = 0.0
        if clip is not None:
            sync = contextlib.nullcontext() if (mb.last or not is_ddp) else model.no_sync()
            # the dummy batch of zeros must not move BatchNorm's running statistics
            keep_bn = frozen_bn_stats(model) if weight == 0.0 else contextlib.nullcontext()
            with sync, keep_bn:
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    logits = model(clip)  # (B, K): the last frame's output
                loss_sum = F.cross_entropy(logits.float(), labels, reduction="sum") * weight
                if fault_kind == "nan" and global_step + 1 == fault_step:
                    loss_sum = loss_sum * float("nan")
                # The mean over the step's chunks (DDP averages the ranks' gradients).
                loss = loss_sum / mb.step_chunks
                (scaler.scale(loss) if use_scaler else loss).backward()
            if weight:
                step_loss += loss_sum.detach().double()
                step_correct += (logits.argmax(1) == labels).sum().double()
                step_chunks += labels.numel()
        bar.update(1)
        if not mb.last:
            continue

        # ---- optimiser step: agree on the step's numbers across ranks first
        stats = torch.stack([step_loss, step_correct, torch.tensor(float(step_chunks), device=device, dtype=torch.float64)])
        rdist.all_reduce_sum(stats)
        loss_total, correct_total, chunks_total = stats.tolist()
        if not math.isfinite(loss_total):
            bar.close()
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"the training loss is {loss_total} at epoch {epoch + 1}, step "
                f"{mb.step + 1}/{steps_per_epoch} (global step {global_step + 1})"
            )
        nominal = mb.step_chunks * world
        if 0 < chunks_total < nominal:  # skipped videos: rescale to the mean over real chunks
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.mul_(nominal / chunks_total)
        lr = lr_fn(global_step) if lr_fn else optimizer.param_groups[0]["lr"]
        for group in optimizer.param_groups:
            group["lr"] = lr
        if chunks_total > 0:
            if use_scaler:
                if grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                if grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        global_step += 1
        totals.loss_sum += loss_total
        totals.correct += correct_total
        totals.chunks += chunks_total
        now = time.perf_counter()
        info = StepInfo(
            epoch=epoch, step_in_epoch=mb.step + 1, steps_per_epoch=steps_per_epoch,
            global_step=global_step, loss=loss_total / max(chunks_total, 1),
            acc=correct_total / max(chunks_total, 1), chunks=int(chunks_total), lr=lr,
            clips_per_s=chunks_total / max(now - t_step, 1e-9), totals=totals,
        )
        t_step = now
        step_loss.zero_(), step_correct.zero_()
        step_chunks = 0
        bar.set_postfix(loss=f"{totals.loss:.3f}", acc=f"{totals.acc:.3f}",
                        clips_s=f"{info.clips_per_s:.1f}", refresh=False)
        if on_step is not None:
            on_step(info)
        if fault_kind == "crash" and global_step == fault_step:
            bar.close()
            raise SimulatedCrash(f"--fault crash@{fault_step}: stopped after global step {global_step}")
    bar.close()
    return totals


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def eval_loader(dataset: Any, *, workers: int = 0, videos_per_batch: int = 4, pin_memory: bool = False) -> DataLoader:
    """Whole-video batches (``collate_videos``), sharded over DDP ranks without shuffling."""
    from rrn.data import collate_videos

    sampler = None
    if rdist.is_enabled():
        sampler = DistributedSampler(dataset, shuffle=False)  # pads with duplicates: removed later
    return DataLoader(dataset, batch_size=videos_per_batch, sampler=sampler, shuffle=False,
                      num_workers=workers, collate_fn=collate_videos, pin_memory=pin_memory)


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
        loader: yields ``collate_videos`` batches (see :func:`eval_loader`).
        device: where the model lives.
        chunk_batch: chunks per forward pass.
        dtype: autocast dtype (None = full precision).
        progress: show a progress bar.

    Returns:
        On every rank, sorted by video index and each video counted once:
        ``video_index`` (V,), ``labels`` (V,), ``video_probs`` (V, K) = mean of the video's
        chunk probabilities, ``chunk_probs`` (C, K), ``chunk_labels`` (C,), ``chunk_video``
        (C,) position of each chunk's video in 0..V-1, ``skipped`` (video indices).
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    per_video: dict[int, tuple[int, torch.Tensor]] = {}
    skipped: list[int] = []
    for batch in tqdm(loader, desc="eval", unit="batch", disable=not progress, leave=False):
        skipped += [int(i) for i in batch["skipped"]]
        clips = batch["clips"]  # (sum M, T, 3, S, S)
        if clips.numel() == 0:
            continue
        probs = []
        for lo in range(0, clips.shape[0], chunk_batch):
            x = clips[lo : lo + chunk_batch].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = net(x)  # (b, K)
            probs.append(logits.float().softmax(dim=1).cpu())
        probs_all = torch.cat(probs)  # (sum M, K)
        for vi, label in zip(batch["video_index"].tolist(), batch["label"].tolist()):
            per_video[vi] = (label, probs_all[batch["chunk_video"] == vi])  # (M_v, K)
    net.train(was_training)

    merged: dict[int, tuple[int, torch.Tensor]] = {}
    for part in rdist.all_gather_objects(per_video):
        for vi, value in part.items():
            merged.setdefault(vi, value)  # DistributedSampler's padded duplicates count once
    skipped = sorted({i for part in rdist.all_gather_objects(skipped) for i in part})
    order = sorted(merged)
    if not order:
        raise RuntimeError("no test video could be evaluated (all were skipped)")
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


# --------------------------------------------------------------------------------------------
# Run logging
# --------------------------------------------------------------------------------------------


class RunLogger:
    """``RUN/log.jsonl`` lines (+ TensorBoard scalars when installed); a no-op off rank 0."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool = True):
        self.enabled = enabled
        self.path = run_dir / "log.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: jsonl only
                self.tb = None

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        if not self.enabled:
            return
        record = {**record, "time": round(time.time(), 3)}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None and step is not None:
            kind = record.get("kind", "")
            for key, value in record.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and key != "time":
                    self.tb.add_scalar(f"{kind}/{key}", value, step)

    def print(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=sys.stdout)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_log(run_dir: str | os.PathLike, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of ``RUN/log.jsonl`` (optionally only one ``kind``: step, epoch, ...)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if kind is None or r.get("kind") == kind]


# --------------------------------------------------------------------------------------------
# fit: everything rrn train does
# --------------------------------------------------------------------------------------------


def resolve_skips(cfg: TrainConfig) -> tuple[str, ...]:
    """The module paths of the temporal skips from ``--skip`` / ``--context`` (see ModelConfig)."""
    from rrn.model import resolve_skip_blocks, skips_for_context

    m = cfg.model
    if m.skip is None:
        if m.context is None:
            return resolve_skip_blocks(m.arch, ["block4"])
        return skips_for_context(m.arch, m.context)
    skips = resolve_skip_blocks(m.arch, list(m.skip))
    if m.context is not None and len(skips) + 1 != m.context:
        raise ValueError(
            f"--context {m.context} needs {m.context - 1} temporal skip(s) but --skip "
            f"{','.join(m.skip)} resolves to {len(skips)} ({', '.join(skips) or 'none'})"
        )
    return skips


def _build_model(cfg: TrainConfig, num_classes: int, skips: tuple[str, ...], resuming: bool) -> tuple[nn.Module, str]:
    from rrn.model import build_model

    weights = cfg.model.weights
    init_ckpt = None
    if resuming or weights.lower() == "none":
        weights_arg = None  # resume: the weights come from last.pt (no download)
    elif weights.lower() == "imagenet":
        weights_arg = "imagenet"
    else:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"--weights {weights}: no such file (expected none, imagenet or a file)")
        if is_rrn_checkpoint(weights):
            init_ckpt, weights_arg = weights, None
        else:
            weights_arg = weights
    model = build_model(arch=cfg.model.arch, num_classes=num_classes, skip_blocks=skips,
                        skip_type=cfg.model.skip_type, weights=weights_arg,
                        temporal_init=cfg.model.temporal_init)
    note = "random initialisation" if weights_arg is None else f"{weights_arg} weights"
    if init_ckpt is not None:
        missing = load_weights_into(model, load_checkpoint(init_ckpt)["model"])
        note = f"weights of {init_ckpt}" + (f" (fresh: {', '.join(missing)})" if missing else "")
    if resuming:
        note = "resumed"
    return model, note


def fit(cfg: TrainConfig) -> dict[str, Any]:
    """Train as configured: the whole of ``rrn train`` (also under torchrun).

    Returns:
        ``run_dir``, ``global_step``, ``history`` (epoch records), ``best_metric``,
        ``last``/``best`` checkpoint paths, ``classes``, ``config`` and the trained ``model``
        (unwrapped; identical on every rank).

    Raises:
        OSError: the run directory cannot be written (before any training).
        NonFiniteLossError: the loss became NaN/inf; ``last.pt`` holds the last good weights.
        FileNotFoundError: ``--resume`` without a ``last.pt`` in ``--out``.
    """
    owner = not rdist.is_initialized()  # a caller's process group is left to the caller
    info, device = rdist.init_distributed(cfg.run.device)
    try:
        return _fit(cfg, info, device)
    finally:
        if owner:
            rdist.cleanup()


def _fit(cfg: TrainConfig, info: rdist.DistInfo, device: torch.device) -> dict[str, Any]:
    from rrn.data import VideoChunkDataset, collate_chunks, load_split
    from rrn.data.cache import resolve_cache_dir

    run_dir = check_writable(cfg.run.out)  # every rank: fail before any training
    main = info.is_main
    resume_ckpt = None
    if cfg.run.resume:
        if not (run_dir / LAST).is_file():
            raise FileNotFoundError(f"--resume: {run_dir / LAST} does not exist; start the run without --resume")
        resume_ckpt = load_checkpoint(run_dir / LAST)
    elif (run_dir / LAST).exists() and not cfg.run.overwrite:
        raise FileExistsError(
            f"{run_dir} already holds a run ({LAST}); continue it with --resume, replace it with "
            "--overwrite, or choose another --out"
        )

    torch.manual_seed(cfg.run.seed)
    if cfg.data.data_root is None:
        raise ValueError("--data-root is required (the folder with the videos)")
    split = load_split(cfg.data.dataset, cfg.data.data_root, cfg.data.split_dir, cfg.data.split,
                       train_list=cfg.data.train_list, test_list=cfg.data.test_list,
                       missing=cfg.data.missing)
    skips = resolve_skips(cfg)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, skip=skips, context=len(skips) + 1))
    if resume_ckpt is not None and resume_ckpt["classes"] != split.classes:
        raise ValueError(f"--resume: the classes of {run_dir / LAST} differ from those of the data")

    model, init_note = _build_model(cfg, len(split.classes), skips, resume_ckpt is not None)
    frozen_bn = freeze_stages(model, cfg.model.freeze)
    if resume_ckpt is not None:
        model.load_state_dict(resume_ckpt["model"])
    model.to(device)
    if device.type == "cuda" and cfg.run.channels_last:
        model.to(memory_format=torch.channels_last)
    if info.enabled:
        if cfg.model.sync_bn and device.type != "cuda":
            if main:
                print("rrn train: warning: --sync-bn needs CUDA (SyncBatchNorm has no CPU kernel); "
                      "each process keeps its own BatchNorm statistics", file=sys.stderr)
        elif cfg.model.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            frozen_bn = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm) and not any(p.requires_grad for p in m.parameters())]
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    dtype = amp_dtype(cfg.run.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    context = len(skips) + 1
    data_kw = dict(sample_every=cfg.data.sample_every, fps=cfg.data.fps, frame_size=cfg.data.frame_size,
                   short_side=cfg.data.short_side,
                   cache_dir=resolve_cache_dir(cfg.data.cache_dir, cfg.data.data_root),
                   decoder=cfg.data.decoder, seed=cfg.run.seed)
    train_set = VideoChunkDataset(split.train, context=context, train=True, hflip=cfg.data.hflip,
                                  chunks_per_video=cfg.data.chunks_per_video, **data_kw)
    val_set = VideoChunkDataset(split.test, context=context, train=False, eval_stride=cfg.data.eval_stride, **data_kw)
    sampler = ResumableDistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank,
                                          shuffle=True, seed=cfg.run.seed)
    step_chunks = chunks_per_step(cfg.optim.update_every, len(train_set))
    local_step = math.ceil(step_chunks / info.world_size)
    steps_per_epoch = math.ceil(sampler.num_samples / local_step)
    pin = cfg.run.pin_memory and device.type == "cuda"
    clip_shape = (context, 3, cfg.data.frame_size, cfg.data.frame_size)

    epoch, step_in_epoch, global_step = 0, 0, 0
    best_metric = -math.inf
    history: list[dict[str, Any]] = []
    totals = EpochTotals()
    if resume_ckpt is not None:
        optimizer.load_state_dict(resume_ckpt["optimizer"])
        if resume_ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(resume_ckpt["scaler"])
        prog = resume_ckpt["progress"]
        epoch, step_in_epoch, global_step = prog["epoch"], prog["step_in_epoch"], prog["global_step"]
        best_metric = prog.get("best_metric", -math.inf)
        history = list(prog.get("history", []))
        totals = EpochTotals(**prog.get("totals", {}))
        if prog.get("steps_per_epoch") not in (None, steps_per_epoch):
            raise ValueError(
                f"--resume: {run_dir / LAST} was written with {prog['steps_per_epoch']} steps per "
                f"epoch, this configuration gives {steps_per_epoch}; keep --update-every, "
                "--batch-size and the number of processes of the original run"
            )

    config_dict = cfg.to_dict()
    logger = RunLogger(run_dir, enabled=main)
    if main:
        if resume_ckpt is None:
            for stale in (run_dir / BEST, run_dir / "log.jsonl", run_dir / "curves.png"):
                stale.unlink(missing_ok=True)  # --overwrite: nothing of the old run survives
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        logger.log({"kind": "start" if resume_ckpt is None else "resume", "global_step": global_step,
                    "epoch": epoch, "step_in_epoch": step_in_epoch, "world_size": info.world_size,
                    "device": str(device), "train_chunks": len(train_set), "test_videos": len(val_set),
                    "chunks_per_step": step_chunks, "steps_per_epoch": steps_per_epoch,
                    "init": init_note})
        logger.print(
            f"rrn train: {cfg.model.arch} skips={','.join(skips) or 'none'} T={context} | "
            f"{len(split.classes)} classes, {len(train_set)} train chunks, {len(val_set)} test videos | "
            f"{step_chunks} chunks/step, {steps_per_epoch} steps/epoch | {info.world_size} x {device}"
            f" | {init_note} -> {run_dir}"
        )

    def progress_dict(ep: int, sie: int, gs: int, tot: EpochTotals) -> dict[str, Any]:
        return {"epoch": ep, "step_in_epoch": sie, "global_step": gs, "steps_per_epoch": steps_per_epoch,
                "best_metric": best_metric, "history": history, "totals": dataclasses.asdict(tot),
                "world_size": info.world_size}

    def write(path_name: str, prog: dict[str, Any], metrics: dict[str, Any] | None = None) -> None:
        if main:
            ckpt = make_checkpoint(model, config=config_dict, classes=split.classes, optimizer=optimizer,
                                   scaler=scaler, progress=prog, metrics=metrics)
            save_checkpoint(run_dir / path_name, ckpt)

    def on_step(s: StepInfo) -> None:
        if s.global_step % cfg.run.log_every == 0:
            logger.log({"kind": "step", "epoch": s.epoch, "step": s.step_in_epoch, "global_step": s.global_step,
                        "loss": s.loss, "acc": s.acc, "chunks": s.chunks, "lr": s.lr,
                        "clips_per_s": s.clips_per_s}, step=s.global_step)
        every = cfg.run.checkpoint_every
        if every and s.global_step % every == 0 and s.step_in_epoch < s.steps_per_epoch:
            write(LAST, progress_dict(s.epoch, s.step_in_epoch, s.global_step, s.totals))

    if epoch >= cfg.optim.epochs:
        logger.print(f"rrn train: {run_dir} already finished {epoch} epoch(s); raise --epochs to continue")
    lr_fn = lambda step: lr_at(step, cfg.optim, steps_per_epoch)  # noqa: E731
    try:
        while epoch < cfg.optim.epochs:
            t0 = time.perf_counter()
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch)
            sampler.set_start(min(step_in_epoch * local_step, sampler.num_samples))
            batches = StepBatchSampler(sampler, cfg.optim.batch_size, local_step)
            loader = DataLoader(train_set, batch_sampler=batches, num_workers=cfg.run.workers,
                                collate_fn=collate_chunks, pin_memory=pin)
            totals = train_one_epoch(
                model, loader, batches.schedule(), optimizer, device=device, epoch=epoch,
                steps_per_epoch=steps_per_epoch, global_step=global_step, lr_fn=lr_fn, scaler=scaler,
                dtype=dtype, grad_clip=cfg.optim.grad_clip, frozen_bn=frozen_bn, totals=totals,
                on_step=on_step, progress=cfg.run.progress and main, fault=cfg.run.fault,
                clip_shape=clip_shape,
            )
            global_step += steps_per_epoch - step_in_epoch
            sync_buffers(model)
            skipped = sorted({i for part in rdist.all_gather_objects(totals.skipped) for i in part})
            record: dict[str, Any] = {
                "kind": "epoch", "epoch": epoch, "global_step": global_step, "train_loss": totals.loss,
                "train_acc": totals.acc, "train_chunks": int(totals.chunks), "lr": lr_fn(global_step - 1),
                "skipped": [train_set.records[i].video_id if i >= 0 else "?" for i in skipped],
            }
            last_epoch = epoch + 1 == cfg.optim.epochs
            if cfg.run.val_every and ((epoch + 1) % cfg.run.val_every == 0 or last_epoch):
                res = evaluate(model, eval_loader(val_set, workers=cfg.run.workers, pin_memory=pin),
                               device=device, chunk_batch=2 * cfg.optim.batch_size, dtype=dtype,
                               progress=cfg.run.progress and main)
                m, _ = compute_metrics(res["video_probs"], res["labels"], chunk_probs=res["chunk_probs"],
                                       chunk_labels=res["chunk_labels"])
                record.update(val_loss=chunk_loss(res["chunk_probs"], res["chunk_labels"]),
                              val_video_top1=m["video_top1"], val_video_top5=m["video_top5"],
                              val_clip_top1=m["clip_top1"], val_mean_class_accuracy=m["mean_class_accuracy"],
                              val_videos=m["num_videos"])
                metric = m["video_top1"]
            else:
                metric = -totals.loss
            record["time_s"] = round(time.perf_counter() - t0, 2)
            is_best = metric > best_metric
            if is_best:
                best_metric = metric
            record["best"] = is_best
            history.append(record)
            epoch, step_in_epoch = epoch + 1, 0
            prog = progress_dict(epoch, 0, global_step, EpochTotals())
            write(LAST, prog, record)
            if is_best:
                write(BEST, prog, record)
            logger.log(record, step=global_step)
            if main:
                from rrn.plots import plot_curves

                plot_curves(history, run_dir / "curves.png")
                val = (f" | test video acc {record['val_video_top1']:.3f} clip acc {record['val_clip_top1']:.3f}"
                       if "val_video_top1" in record else "")
                logger.print(f"epoch {epoch}/{cfg.optim.epochs}: loss {totals.loss:.4f} acc {totals.acc:.3f}{val}"
                             f"{' *best*' if is_best else ''} ({record['time_s']:.1f}s)")
                if record["skipped"]:
                    logger.print(f"  skipped {len(skipped)} unreadable video(s): {', '.join(record['skipped'])}")
            totals = EpochTotals()
    except NonFiniteLossError as err:
        last = run_dir / LAST
        kept = (f"the last good checkpoint is {last}" if last.is_file()
                else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"{err}; stopped without applying it, {kept}. Lower --lr (now {cfg.optim.lr:g}), "
            "set --grad-clip, or check the input data; continue with --resume"
        ) from None
    finally:
        logger.close()
    rdist.barrier()
    return {
        "run_dir": str(run_dir), "global_step": global_step, "history": history,
        "best_metric": best_metric, "last": str(run_dir / LAST), "best": str(run_dir / BEST),
        "classes": split.classes, "config": config_dict, "model": unwrap(model),
    }

"""The training loop: :func:`train_one_epoch` and :func:`fit`, read top to bottom.

Optimisation follows the paper: cross-entropy on each chunk's last-frame output, Adam, and one
optimiser step per ``--update-fraction`` of the training chunks (1% by default; or every
``--update-chunks``), gradients accumulated over micro-batches (:mod:`rrn.train.step`).

DDP is detected from torchrun's environment (:mod:`rrn.distributed`); only rank 0 writes
(:class:`~rrn.train.run_dir.RunDir`). Data order and augmentation are a pure function of
(seed, epoch, index), and a checkpoint holds the :class:`~rrn.train.state.RunState` reached
inside the epoch, so a resumed run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rrn import distributed as rdist
from rrn.checkpoint import BEST, LAST, unwrap
from rrn.config import TrainConfig
from rrn.data.formats import flip_changes_class
from rrn.errors import UserError
from rrn.evaluation.loop import chunk_loss, create_eval_loader, evaluate
from rrn.metrics import compute_metrics
from rrn.progress import progress_bar
from rrn.runtime import StopRequest, amp_dtype, cpu_has_native_bf16, precision_name
from rrn.train.builders import (
    Datasets,
    StepPlan,
    create_datasets,
    create_model,
    create_optimizer,
    create_train_loader,
    lr_at,
    prepare_model,
    with_resolved_skips,
)
from rrn.train.run_dir import RunDir
from rrn.train.state import EpochTotals, RunState, StepInfo
from rrn.train.step import (
    Hook,
    NonFiniteLossError,
    StepContext,
    TrainingStopped,
    forward_backward,
    optimizer_step,
    set_train_mode,
    sync_buffers,
)
from rrn.train.tracking import check_trackers


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    schedule: list,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    ctx: StepContext,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
) -> EpochTotals:
    """Train for (the rest of) one epoch; ``state`` advances after every optimiser step.

    Args:
        model: the model, possibly wrapped in DistributedDataParallel.
        loader: yields ``collate_chunks`` batches in the order of ``schedule``.
        schedule: one :class:`~rrn.distributed.MicroBatch` per batch.
        optimizer: stepped once per optimiser step (after the step's last micro-batch).
        state: the run's state; its epoch totals continue where a resumed epoch stopped.
        ctx: device, precision, clipping, learning rate and hooks of the run.
        on_step: called after every optimiser step (logging, checkpoints).

    Returns:
        The epoch's totals over all ranks.

    Raises:
        NonFiniteLossError: before applying a step whose loss is not finite.
        StopAtStep: after the step during which a stop was requested (``ctx.stop``).
    """
    set_train_mode(model, ctx.frozen_bn)
    world = torch.distributed.get_world_size() if rdist.is_enabled() else 1
    sums = torch.zeros(4, device=ctx.device, dtype=torch.float64)  # loss sum, correct, chunks, stop
    t_step = time.perf_counter()
    bar = progress_bar(
        enabled=ctx.progress,
        total=len(schedule),
        desc=f"epoch {state.epoch + 1}",
        unit="batch",
        dynamic_ncols=True,
        leave=False,
    )
    with contextlib.closing(bar):
        for batch, mb in zip(loader, schedule, strict=True):
            state.totals.skipped.extend(int(i) for i in batch["skipped"])
            forward_backward(model, batch, mb, ctx, state.global_step, sums)
            bar.update(1)
            if not mb.last:
                continue
            lr = ctx.lr_fn(state.global_step) if ctx.lr_fn else optimizer.param_groups[0]["lr"]
            where = (
                f"epoch {state.epoch + 1}, step {mb.step + 1}/{state.steps_per_epoch} "
                f"(global step {state.global_step + 1})"
            )
            step = optimizer_step(
                model,
                optimizer,
                sums,
                nominal_chunks=mb.step_chunks * world,
                lr=lr,
                ctx=ctx,
                where=where,
            )
            sums.zero_()
            now = time.perf_counter()
            info = state.advance(*step[:3], lr=lr, seconds=now - t_step)
            t_step = now
            bar.set_postfix(
                loss=f"{state.totals.loss:.3f}",
                acc=f"{state.totals.acc:.3f}",
                clips_s=f"{info.clips_per_s:.1f}",
                refresh=False,
            )
            if on_step is not None:
                on_step(info)
            for hook in ctx.hooks:
                hook.after_step(state)
            if step.stop:
                raise StopAtStep()
    return state.totals


class StopAtStep(Exception):
    """Every rank agreed, in the step's all-reduce, to stop after it (a signal arrived)."""


def fit(cfg: TrainConfig, *, hooks: Sequence[Hook] = ()) -> dict[str, Any]:
    """Train as configured: the whole of ``rrn train`` (also under torchrun).

    Args:
        cfg: the resolved configuration (see :func:`~rrn.train.run_dir.resolve_train_config`).
        hooks: callbacks (:class:`~rrn.train.step.Hook`), e.g. the test suite's faults.

    Returns:
        ``run_dir``, ``global_step``, ``history`` (epoch records), ``best_metric``,
        ``last``/``best`` checkpoint paths, ``classes``, ``config`` and the trained ``model``
        (unwrapped; identical on every rank).

    Raises:
        OSError: the run directory cannot be written, holds another run, or has no ``last.pt``
            to resume (before any training).
        NonFiniteLossError: the loss became NaN/inf; ``last.pt`` holds the last good weights.
        UserError: a ``--track`` tracker is not installed, or cannot continue its run (before
            any training).
    """
    check_trackers(cfg.run.track)  # a missing tracker fails before anything starts
    owner = not rdist.is_initialized()  # a caller's process group is left to the caller
    info, device = rdist.init_distributed(cfg.run.device)
    try:
        return _fit(cfg, info, device, hooks)
    finally:
        if owner:
            rdist.cleanup()


def _fit(
    cfg: TrainConfig, info: rdist.DistInfo, device: torch.device, hooks: Sequence[Hook]
) -> dict[str, Any]:
    run = RunDir.open(
        cfg.run.out, resume=cfg.run.resume, overwrite=cfg.run.overwrite, is_main=info.is_main
    )
    try:
        torch.manual_seed(cfg.run.seed)
        split = cfg.data.load_split()
        cfg = with_resolved_skips(cfg)
        run.check_resume(cfg, split.classes)
        model, init_note = create_model(
            cfg, len(split.classes), resuming=run.resumed is not None, classes=split.classes
        )
        model, frozen_bn = prepare_model(
            model,
            cfg,
            info,
            device,
            run.resumed and run.resumed["model"],
            source=f"--resume: {run.path / LAST}",
        )
        optimizer = create_optimizer(model, cfg.optim)
        dtype = amp_dtype(cfg.run.amp, device)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        data = create_datasets(cfg, split, cfg.model.context)
        plan = StepPlan.create(cfg.optim, len(data.train), info.world_size)
        state = run.restore(optimizer, scaler, plan.steps_per_epoch, info.world_size)
        ctx = StepContext(
            device=device,
            dtype=dtype,
            scaler=scaler,
            grad_clip=cfg.optim.grad_clip,
            lr_fn=lambda step: lr_at(step, cfg.optim, plan.steps_per_epoch),
            frozen_bn=frozen_bn,
            hooks=hooks,
            progress=cfg.run.progress and info.is_main,
            clip_shape=(cfg.model.context, 3, cfg.data.frame_size, cfg.data.frame_size),
        )
        t = Training(
            run=run,
            cfg=cfg,
            model=model,
            optimizer=optimizer,
            scaler=scaler,
            state=state,
            plan=plan,
            data=data,
            ctx=ctx,
            info=info,
            device=device,
        )
        _start(t, split.classes, init_note, split.missing)
        with StopRequest() as ctx.stop:
            run.guard = ctx.stop.writing
            _epochs(t)
        run.track_model()
    except BaseException as err:
        run.close(err)
        raise
    run.close()
    rdist.barrier()
    return _result(t, split.classes)


def _result(t: Training, classes: list[str]) -> dict[str, Any]:
    """What :func:`fit` returns: the run's folder, checkpoints, history and model."""
    return {
        "run_dir": str(t.run.path),
        "global_step": t.state.global_step,
        "history": t.state.history,
        "best_metric": t.state.best_metric,
        "last": str(t.run.path / LAST),
        "best": str(t.run.path / BEST),
        "classes": classes,
        "config": t.cfg.to_dict(),
        "model": unwrap(t.model),
    }


@dataclass(kw_only=True)
class Training:
    """What the loop of one run carries from start to end (built once by :func:`_fit`)."""

    run: RunDir
    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    state: RunState
    plan: StepPlan
    data: Datasets
    ctx: StepContext
    info: rdist.DistInfo
    device: torch.device

    def save(self, name: str, record: dict[str, Any] | None = None) -> None:
        """Checkpoint ``name`` (``last.pt`` / ``best.pt``) of the run as it is now."""
        self.run.save(name, self.model, self.optimizer, self.scaler, self.state, record)


def _epochs(t: Training) -> None:
    """The epoch loop, with its checkpoints, and the ways it ends early."""
    run, cfg, model, state, data, ctx = t.run, t.cfg, t.model, t.state, t.data, t.ctx

    def on_step(s: StepInfo) -> None:
        if s.global_step % cfg.run.log_every == 0:
            run.log(s.record(), step=s.global_step)
        every = cfg.run.checkpoint_every
        if every and s.global_step % every == 0 and s.step_in_epoch < s.steps_per_epoch:
            t.save(LAST)

    try:
        while state.epoch < cfg.optim.epochs:
            t0 = time.perf_counter()
            loader, schedule = create_train_loader(
                data.train,
                t.plan,
                state.epoch,
                state.step_in_epoch,
                cfg=cfg,
                info=t.info,
                device=t.device,
            )
            totals = train_one_epoch(
                model, loader, schedule, t.optimizer, state, ctx, on_step=on_step
            )
            if not totals.chunks:
                raise UserError(
                    f"epoch {state.epoch + 1} trained on no chunk: all "
                    f"{len(data.train)} training "
                    "chunks were skipped as unreadable (the warnings above say why; "
                    "rrn check-data lists every problem)"
                )
            record = _epoch_record(model, state, data, cfg, ctx)
            record["time_s"] = round(time.perf_counter() - t0, 2)
            _end_epoch(t, record)
            if rdist.any_true(ctx.stop.requested, t.device):
                raise StopAtStep()
    except StopAtStep:
        t.save(LAST)
        raise TrainingStopped(
            ctx.stop.signum or signal.SIGTERM, str(run.path / LAST), state.global_step
        ) from None
    except NonFiniteLossError as err:
        raise _explained(err, run, cfg) from None


def _start(t: Training, classes: list[str], init_note: str, missing: list) -> None:
    """Write the run's config and first log line; print what is about to happen. A resumed run
    that has nothing left to train writes nothing: its config.yaml and log still describe the
    weights in last.pt, whatever flags this resume was given (only log records a kill cut off
    are put back)."""
    run, cfg, state, plan, data = t.run, t.cfg, t.state, t.plan, t.data
    info, device = t.info, t.device
    if state.epoch >= cfg.optim.epochs:
        run.repair_log()
        run.say(
            f"rrn train: {run.path} already finished {state.epoch} epoch(s); nothing trained "
            "or written; raise --epochs to continue"
        )
        return
    n_val = len(data.val) if data.val is not None else 0
    precision = precision_name(cfg.run.amp, device)
    selection = (
        f"best.pt: best video accuracy on {n_val} validation videos held out by group"
        if n_val
        else "none (no --val-fraction): the run's result is last.pt"
    )
    run.start(
        cfg,
        classes,
        {
            "global_step": state.global_step,
            "epoch": state.epoch,
            "step_in_epoch": state.step_in_epoch,
            "world_size": info.world_size,
            "device": str(device),
            "train_chunks": len(data.train),
            "val_videos": n_val,
            "test_videos": len(data.test),
            "watch_test": cfg.run.watch_test,
            "selection": selection,
            "chunks_per_step": plan.chunks_per_step,
            "steps_per_epoch": plan.steps_per_epoch,
            "init": init_note,
            "missing_videos": {
                side: sum(m.side == side for m in missing) for side in ("train", "test")
            },
            "precision": precision,
        },
    )
    _note_data(run, cfg, missing)
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        run.warn(
            "rrn train: warning: this CPU has no native bf16 (AVX512-BF16 or AMX): --amp bf16 "
            "is emulated and slower than full precision; use --amp none"
        )
    skips = ",".join(cfg.model.skip) or "none"
    run.say(
        f"rrn train: {cfg.model.arch} skips={skips} T={cfg.model.context} | {len(classes)} "
        f"classes, {len(data.train)} train chunks, {n_val} validation + {len(data.test)} test "
        f"videos | {plan.chunks_per_step} chunks/step, {plan.steps_per_epoch} steps/epoch | "
        f"{info.world_size} x {device} {precision} | {init_note} -> {run.path}\n"
        f"rrn train: checkpoint selection: {selection}"
        + (
            "; the test split is watched (logged as test_*), never used to choose"
            if cfg.run.watch_test
            else ""
        )
    )


def _note_data(run: RunDir, cfg: TrainConfig, missing: list) -> None:
    """Log the listed videos ``--missing skip`` left out (normal for Kinetics) and warn about
    flips on a dataset whose classes are directions."""
    if missing:  # the counts are in the start record; the list follows it
        run.log(
            {
                "kind": "missing_videos",
                "videos": [f"{m.listed_in}:{m.line} {m.video_id}" for m in missing],
            }
        )
        n_train = sum(m.side == "train" for m in missing)
        run.say(
            f"rrn train: {len(missing)} listed videos are missing and skipped ({n_train} "
            "train, "
            f"{len(missing) - n_train} test); listed in {run.path / 'log.jsonl'}"
        )
    if cfg.data.hflip and (why := flip_changes_class(cfg.data)):
        run.warn(
            f"rrn train: warning: horizontal flips on {why} turn 'from left to right' into "
            "'from right to left', another class; train with --no-hflip"
        )


def _epoch_record(
    model: nn.Module, state: RunState, data: Datasets, cfg: TrainConfig, ctx: StepContext
) -> dict[str, Any]:
    """The epoch's log record: training totals over all ranks, skipped videos and, when due,
    the evaluation on the validation split (``val_*``) and the watched test split (``test_*``)."""
    sync_buffers(model)
    totals = state.totals
    skipped = sorted({i for part in rdist.all_gather_objects(totals.skipped) for i in part})
    record: dict[str, Any] = {
        "kind": "epoch",
        "epoch": state.epoch,
        "global_step": state.global_step,
        "train_loss": totals.loss,
        "train_acc": totals.acc,
        "train_chunks": int(totals.chunks),
        "lr": ctx.lr_fn(state.global_step - 1) if ctx.lr_fn else None,
        "skipped": [data.train.records[i].video_id if i >= 0 else "?" for i in skipped],
    }
    every, last_epoch = cfg.run.val_every, state.epoch + 1 == cfg.optim.epochs
    if every and ((state.epoch + 1) % every == 0 or last_epoch):
        for prefix, dataset in (
            ("val", data.val),
            ("test", data.test if cfg.run.watch_test else None),
        ):
            if dataset is not None:
                record.update(_scores(model, dataset, prefix, cfg, ctx))
    return record


def _scores(
    model: nn.Module, dataset, prefix: str, cfg: TrainConfig, ctx: StepContext
) -> dict[str, Any]:
    loader = create_eval_loader(
        dataset, workers=cfg.run.workers, pin_memory=ctx.device.type == "cuda"
    )
    res = evaluate(
        model,
        loader,
        device=ctx.device,
        chunk_batch=2 * cfg.optim.batch_size,
        dtype=ctx.dtype,
        progress=ctx.progress,
    )
    m, _ = compute_metrics(
        res["video_probs"],
        res["labels"],
        chunk_probs=res["chunk_probs"],
        chunk_labels=res["chunk_labels"],
    )
    return {
        f"{prefix}_loss": chunk_loss(res["chunk_probs"], res["chunk_labels"]),
        f"{prefix}_video_top1": m["video_top1"],
        f"{prefix}_video_top5": m["video_top5"],
        f"{prefix}_clip_top1": m["clip_top1"],
        f"{prefix}_mean_class_accuracy": m["mean_class_accuracy"],
        f"{prefix}_videos": m["num_videos"],
    }


def _end_epoch(t: Training, record: dict[str, Any]) -> None:
    """Close the epoch: state, checkpoints, log, curves, one logged line."""
    run, state, cfg = t.run, t.state, t.cfg
    skipped = record["skipped"]
    is_best = state.end_epoch(record, record.get("val_video_top1"))  # validation only, never test
    t.save(LAST, record)
    if is_best:
        t.save(BEST, record)
    run.log(record, step=state.global_step)
    run.plot(state.history)
    val = "".join(
        f" | {name} video acc {record[f'{key}_video_top1']:.3f} clip acc "
        f"{record[f'{key}_clip_top1']:.3f}"
        for key, name in (("val", "val"), ("test", "test (watched)"))
        if f"{key}_video_top1" in record
    )
    run.say(
        f"epoch {state.epoch}/{cfg.optim.epochs}: loss {record['train_loss']:.4f} "
        f"acc {record['train_acc']:.3f}{val}{' *best*' if is_best else ''} "
        f"({record['time_s']:.1f}s)"
    )
    if skipped:
        run.say(f"  skipped {len(skipped)} unreadable video(s): {', '.join(skipped)}")


def _explained(err: NonFiniteLossError, run: RunDir, cfg: TrainConfig) -> NonFiniteLossError:
    last = run.path / LAST
    kept = (
        f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
    )
    return NonFiniteLossError(
        f"{err}; stopped without applying it, {kept}. Lower --lr (now {cfg.optim.lr:g}), "
        "set --grad-clip, or check the input data; continue with --resume"
    )

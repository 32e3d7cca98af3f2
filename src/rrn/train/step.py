"""One micro-batch forward/backward, and one optimiser step over the accumulated gradients.

A step's chunks go through the network in micro-batches whose gradients accumulate; each
micro-batch's loss is summed and divided by the step's chunk count, so the step's gradient is
the mean over its chunks whatever the micro-batch size (memory stays bounded). Non-final
micro-batches of a DDP run skip the gradient all-reduce (``no_sync``).
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from rrn import distributed as rdist
from rrn.checkpoint import unwrap
from rrn.distributed import MicroBatch


class TrainingStopped(Exception):
    """The run stopped on a signal after writing its checkpoint."""

    def __init__(self, signum: int, checkpoint: str, global_step: int):
        self.signum = signum
        self.checkpoint = checkpoint
        self.global_step = global_step
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} after global step {global_step}; {checkpoint} holds it"
        )


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the weights were not updated with it.

    Not a :class:`~rrn.errors.UserError`: no input was wrong that rrn could name, the run
    diverged (a learning rate too high, fp16 overflow, a bug). ``rrn train`` reports it in one
    line with exit code 1, the run failed, and the message says which checkpoint is intact.
    """


class Hook:
    """Callbacks into :func:`~rrn.train.loop.fit`; override what you need.

    The test suite injects its faults (a crash after step N, a NaN loss at step N) this way, so
    no testing switch lives in configs or checkpoints.
    """

    def loss(self, global_step: int, loss_sum: torch.Tensor) -> torch.Tensor:
        """Called with each micro-batch's summed loss of the step ``global_step + 1``."""
        return loss_sum

    def after_step(self, state) -> None:
        """Called after every optimiser step with the :class:`~rrn.train.state.RunState`."""


@dataclass
class StepContext:
    """What every micro-batch and optimiser step of a run needs, fixed for the run."""

    device: torch.device
    dtype: torch.dtype | None = None  # autocast dtype; None = full precision
    scaler: torch.amp.GradScaler | None = None  # fp16 only
    grad_clip: float | None = None
    lr_fn: Callable[[int], float] | None = None  # global step -> learning rate
    frozen_bn: list[nn.Module] = field(default_factory=list)
    clip_shape: tuple[int, ...] | None = None  # (T, 3, S, S): the DDP dummy batch's clips
    hooks: Sequence[Hook] = ()
    progress: bool = False
    stop: Any = None  # a StopRequest (rrn.runtime.signals): stop at the next step boundary

    @property
    def use_scaler(self) -> bool:
        return self.scaler is not None and self.scaler.is_enabled()


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


@contextlib.contextmanager
def batchnorm_from_running_stats(model: nn.Module, clip: torch.Tensor):
    """A single clip whose last feature map is one pixel leaves BatchNorm one value per channel,
    from which it cannot estimate batch statistics (PyTorch raises). For such a micro-batch (a
    batch of one, or of two with one video skipped, at <= 32 px) normalise with the running
    statistics instead, and leave them unchanged."""
    H, W = clip.shape[-2:]
    single = clip.shape[0] == 1 and math.ceil(H / 32) * math.ceil(W / 32) == 1
    bns = [m for m in model.modules() if type(m) in (nn.BatchNorm2d, nn.BatchNorm1d) and m.training]
    if not single or not bns:
        yield
        return
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()


def sync_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank, so all ranks hold one model."""
    if rdist.is_enabled():
        for buf in unwrap(model).buffers():
            torch.distributed.broadcast(buf, src=0)


def _inputs(model: nn.Module, batch: dict[str, Any], ctx: StepContext):
    """``(clip, labels, weight)`` of a micro-batch; None when there is nothing to run.
    ``labels`` is the ``(B,)`` class of each chunk, or the ``(B, K)`` multi-hot ``target`` of
    its last frame when the batch carries one (chunks of untrimmed videos).

    A DDP rank whose micro-batch was all unreadable videos still runs forward/backward (every
    rank must join the gradient all-reduce) on two clips of zeros with weight 0.
    """
    clip = batch["clip"].to(ctx.device, non_blocking=True)  # (B, T, 3, S, S)
    labels = batch.get("target", batch["label"]).to(ctx.device, non_blocking=True)  # (B[, K])
    if clip.numel():
        return clip, labels, 1.0
    if not isinstance(model, DDP) or ctx.clip_shape is None:
        return None
    clip = torch.zeros((2, *ctx.clip_shape), device=ctx.device)  # 2: BatchNorm needs > 1 value
    return clip, torch.zeros(2, dtype=torch.long, device=ctx.device), 0.0


def chunk_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The summed cross-entropy of a micro-batch's last-frame outputs ``(B, K)``.

    ``labels``: ``(B,)`` class indices, or ``(B, K)`` multi-hot targets (a frame of untrimmed
    video inside intervals of several classes has all of them): each row normalised to a
    distribution, ``-sum_k (y_k / sum y) log softmax(z)_k``, the softmax cross-entropy LSTR,
    TeSTra and MiniROAD train online detection with.
    """
    logits = logits.float()
    if labels.ndim == 1:
        return F.cross_entropy(logits, labels, reduction="sum")
    target = labels.float() / labels.float().sum(1, keepdim=True).clamp_min(1)  # (B, K)
    return F.cross_entropy(logits, target, reduction="sum")


def chunks_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Chunks whose top class is their class (or, multi-hot, one of their classes)."""
    top = logits.argmax(1)  # (B,)
    if labels.ndim == 1:
        return (top == labels).sum()
    return (labels.gather(1, top[:, None]) > 0).sum()


def forward_backward(
    model: nn.Module,
    batch: dict[str, Any],
    mb: MicroBatch,
    ctx: StepContext,
    global_step: int,
    sums: torch.Tensor,
) -> None:
    """Forward and backward one micro-batch; add its (loss sum, correct, chunks) to ``sums``."""
    inputs = _inputs(model, batch, ctx)
    if inputs is None:
        return
    clip, labels, weight = inputs
    sync = model.no_sync() if isinstance(model, DDP) and not mb.last else contextlib.nullcontext()
    # the dummy batch of zeros must not move BatchNorm's running statistics
    keep_bn = frozen_bn_stats(model) if weight == 0.0 else contextlib.nullcontext()
    with sync, keep_bn, batchnorm_from_running_stats(model, clip):
        with torch.autocast(
            ctx.device.type, dtype=ctx.dtype or torch.float32, enabled=ctx.dtype is not None
        ):
            logits = model(clip)  # (B, K): the last frame's output
        loss_sum = chunk_loss_sum(logits, labels) * weight
        for hook in ctx.hooks:
            loss_sum = hook.loss(global_step, loss_sum)
        loss = loss_sum / mb.step_chunks  # the mean over the step's chunks (DDP averages ranks)
        (ctx.scaler.scale(loss) if ctx.use_scaler else loss).backward()
    if weight:
        correct = chunks_correct(logits, labels)
        sums[:3] += torch.stack(
            [
                loss_sum.detach().double(),
                correct.double(),
                torch.tensor(float(len(labels)), device=sums.device, dtype=torch.float64),
            ]
        )


class StepTotals(NamedTuple):
    """One optimiser step over all ranks."""

    loss_sum: float
    correct: float
    chunks: float
    stop: bool  # some rank was asked to stop (a signal): every rank stops after this step


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    sums: torch.Tensor,
    *,
    nominal_chunks: int,
    lr: float,
    ctx: StepContext,
    where: str,
) -> StepTotals:
    """Apply one optimiser step to the accumulated gradients, the same on every rank.

    All-reduces the step's (loss sum, correct, chunks, stop request) in one call; refuses a
    non-finite loss before touching the weights; rescales the gradient to the mean over the real
    chunks when videos were skipped; sets the learning rate; clips (unscaling fp16 gradients
    first); steps.

    Args:
        sums: ``(4,)`` float64: loss sum, correct, chunks of this rank's micro-batches, and a slot
            for the stop request (filled here).

    Returns:
        The step's totals over all ranks.

    Raises:
        NonFiniteLossError: the loss is NaN or infinite (``where`` says which step).
    """
    sums[3] = 1.0 if ctx.stop is not None and ctx.stop.requested else 0.0
    rdist.all_reduce_sum(sums)
    loss_sum, correct, chunks, stop = sums.tolist()
    if not math.isfinite(loss_sum):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(f"the training loss is {loss_sum} at {where}")
    if 0 < chunks < nominal_chunks:  # skipped videos: the mean over the chunks that were real
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(nominal_chunks / chunks)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if chunks > 0:
        if ctx.grad_clip:
            if ctx.use_scaler:
                ctx.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        if ctx.use_scaler:
            ctx.scaler.step(optimizer)
            ctx.scaler.update()
        else:
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepTotals(loss_sum, correct, chunks, stop > 0)

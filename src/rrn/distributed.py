"""Distributed helpers: torchrun detection, collectives, and the resumable training samplers.

DDP is on when torchrun's environment says so (``WORLD_SIZE`` > 1, with ``RANK`` and
``LOCAL_RANK``), or, without torchrun, SLURM's (``srun`` with several tasks: ``SLURM_PROCID``,
``SLURM_STEP_NUM_TASKS`` or ``SLURM_NTASKS``, ``SLURM_LOCALID``; the first host of the job's node
list is the rendezvous);
the backend is NCCL on CUDA and gloo on CPU. Without torchrun every helper
degrades to the single-process case, so the engine has one code path.

Training order is a pure function of (seed, epoch, position): :class:`ResumableDistributedSampler`
is a ``DistributedSampler`` (permutation seeded by ``seed + epoch``) that can start at an offset,
and :class:`StepBatchSampler` cuts a rank's indices into optimiser steps and micro-batches, so
a run resumed at a step boundary sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Sampler

from rrn.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info_from_env(env: dict[str, str] | None = None) -> DistInfo:
    """Where this process sits: torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; else, for
    processes started by SLURM's ``srun`` (one task per GPU), ``SLURM_PROCID``, the step's
    ``SLURM_STEP_NUM_TASKS`` (else the job's ``SLURM_NTASKS``), ``SLURM_LOCALID``; absent = a
    single process."""
    env = os.environ if env is None else env
    # srun's step, else the job's
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    if "WORLD_SIZE" not in env and tasks > 1 and "SLURM_PROCID" in env:
        return DistInfo(
            rank=int(env["SLURM_PROCID"]),
            world_size=tasks,
            local_rank=int(env.get("SLURM_LOCALID", 0)),
        )
    return DistInfo(
        rank=int(env.get("RANK", 0)),
        world_size=int(env.get("WORLD_SIZE", 1)),
        local_rank=int(env.get("LOCAL_RANK", 0)),
    )


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not m:
        raise ConfigError(f"cannot read the SLURM node list {nodelist!r}; export MASTER_ADDR")
    prefix, ranges = m.group(1), m.group(2)
    return prefix + ranges.split(",")[0].split("-")[0] if ranges else prefix


def _slurm_rendezvous(info: DistInfo) -> None:
    """``env://`` rendezvous for ``srun``-started processes: torchrun's variables from SLURM's."""
    env = os.environ
    if "WORLD_SIZE" in env or not info.enabled:
        return
    env.setdefault(
        "MASTER_ADDR",
        first_host(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "localhost")),
    )
    env.setdefault("MASTER_PORT", str(29500 + int(env.get("SLURM_JOB_ID", "0")) % 1000))
    env["RANK"], env["WORLD_SIZE"] = str(info.rank), str(info.world_size)
    env["LOCAL_RANK"] = str(info.local_rank)
    # a command typed in a multi-task job's shell, without srun, would wait here silently
    if info.is_main:
        logger.warning(
            f"rrn: SLURM task {info.rank} of {info.world_size}: waiting for the other "
            "tasks at "
            f"{env['MASTER_ADDR']}:{env['MASTER_PORT']} (every task must be started by srun; for "
            "one process in a multi-task job, run it with SLURM_NTASKS=1)"
        )


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """``auto``/``cuda``/``cpu`` -> a concrete device; under DDP each process gets its GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                "--device cuda was asked for but no CUDA GPU is visible; use --device cpu"
            )
        if info.enabled:
            return torch.device("cuda", info.local_rank)
        return torch.device(name)
    return torch.device(name)


def init_distributed(
    device: str = "auto", timeout_s: float = 1800
) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; pick this process's device.

    Returns:
        ``(info, device)``. Calling it twice is harmless.
    """
    info = dist_info_from_env()
    dev = resolve_device(device, info)
    _slurm_rendezvous(info)
    if info.enabled and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return info, dev


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    """A process group exists (whoever created it)."""
    return dist.is_available() and dist.is_initialized()


def is_enabled() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_enabled():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes in place (no-op without DDP); returns it."""
    if is_enabled():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_true(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every process when ``flag`` is true on any."""
    if not is_enabled():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` without DDP)."""
    if not is_enabled():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that can skip the first ``start`` indices of this rank's share.

    The permutation is seeded by ``seed + epoch`` exactly as in ``DistributedSampler``; with
    ``num_replicas=1, rank=0`` it is a plain seeded shuffle usable without a process group.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        """Begin the next iteration at position ``start`` of this rank's index list."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside this rank's {self.num_samples} samples")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


@dataclass(frozen=True)
class MicroBatch:
    """Position of one micro-batch in the epoch's schedule."""

    step: int  # optimiser step within the epoch, counted from 0 at the epoch's start
    last: bool  # the step's final micro-batch: all-reduce gradients and step the optimiser
    step_chunks: int  # chunks this rank contributes to the step (the loss divisor)


class StepBatchSampler(Sampler[list[int]]):
    """Cut a sampler's indices into optimiser steps of ``step_size``, each into micro-batches.

    Micro-batches never straddle a step, so each step's gradient is exactly the mean over its
    chunks whatever ``batch_size`` is, and a resumed run can start at any step boundary. The
    final step of an epoch may be partial; it still steps.

    Args:
        sampler: a :class:`ResumableDistributedSampler` (its ``start`` must be a multiple of
            ``step_size``).
        batch_size: chunks per micro-batch.
        step_size: this rank's chunks per optimiser step.
    """

    def __init__(self, sampler: ResumableDistributedSampler, batch_size: int, step_size: int):
        if batch_size < 1 or step_size < 1:
            raise ValueError("batch_size and step_size must be >= 1")
        if sampler.start % step_size:
            raise ValueError(f"start {sampler.start} is not at a step boundary of {step_size}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.step_size = step_size

    @property
    def first_step(self) -> int:
        return self.sampler.start // self.step_size

    def steps_per_epoch(self) -> int:
        return math.ceil(self.sampler.num_samples / self.step_size)

    def schedule(self) -> list[MicroBatch]:
        """One :class:`MicroBatch` per batch this sampler yields, in the same order."""
        out = []
        total = self.sampler.num_samples
        for step in range(self.first_step, self.steps_per_epoch()):
            size = min(self.step_size, total - step * self.step_size)
            n_micro = math.ceil(size / self.batch_size)
            out += [MicroBatch(step, i == n_micro - 1, size) for i in range(n_micro)]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.sampler)
        for lo in range(0, len(indices), self.step_size):
            step = indices[lo : lo + self.step_size]
            for b in range(0, len(step), self.batch_size):
                yield step[b : b + self.batch_size]

    def __len__(self) -> int:
        return len(self.schedule())

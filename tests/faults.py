"""Test-only faults injected through training hooks (rrn.train.Hook): no switch in configs."""

import torch

from rrn.train import Hook


class SimulatedCrash(RuntimeError):
    """Raised by :class:`CrashAfter` to stand for a killed process."""


class CrashAfter(Hook):
    """Stop the run right after optimiser step ``step`` (as a kill would, minus the OS)."""

    def __init__(self, step: int):
        self.step = step

    def after_step(self, state) -> None:
        if state.global_step == self.step:
            raise SimulatedCrash(f"crash after global step {state.global_step}")


class NanAt(Hook):
    """Make the loss of optimiser step ``step`` (1-based) NaN."""

    def __init__(self, step: int):
        self.step = step

    def loss(self, global_step: int, loss_sum: torch.Tensor) -> torch.Tensor:
        return loss_sum * float("nan") if global_step + 1 == self.step else loss_sum

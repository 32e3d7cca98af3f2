"""The run state: epoch totals, to and from a checkpoint."""

import math

import torch

from rrn.train import (
    EpochTotals,
    RunState,
)
from train_helpers import _saved


def test_epoch_totals():
    t = EpochTotals(loss_sum=3.0, correct=1.0, chunks=4.0)
    assert t.loss == 0.75 and t.acc == 0.25
    assert math.isnan(EpochTotals().loss)


def test_run_state_round_trips_through_a_checkpoint_entry():
    state = RunState(steps_per_epoch=3, world_size=2)
    info = state.advance(loss_sum=2.0, correct=1.0, chunks=4.0, lr=0.1, seconds=2.0)
    assert (info.step_in_epoch, info.global_step, info.loss, info.acc) == (1, 1, 0.5, 0.25)
    assert info.clips_per_s == 2.0 and info.record()["kind"] == "step"
    state.totals.skipped.append(7)
    again = RunState.from_dict(torch.load(_saved(state.to_dict()), weights_only=True))
    assert again == state and isinstance(again.totals, EpochTotals)
    assert state.end_epoch({"kind": "epoch"}, metric=0.3) is True
    assert (state.epoch, state.step_in_epoch, state.global_step) == (1, 0, 1)
    assert state.totals == EpochTotals() and state.history == [{"kind": "epoch", "best": True}]
    assert state.end_epoch({"kind": "epoch"}, metric=0.2) is False and state.best_metric == 0.3
    # an older checkpoint without some entries still loads
    assert RunState.from_dict({"epoch": 2, "step_in_epoch": 1, "global_step": 9}).global_step == 9

"""The builders: step plans, learning-rate schedules, frozen stages."""

import pytest
import torch

from rrn.config import OptimConfig
from rrn.train import (
    freeze_stages,
    lr_at,
)
from rrn.train.step import set_train_mode
from train_helpers import make_data, run_epoch


def test_chunks_per_step():
    assert (
        OptimConfig(update_fraction=0.01).chunks_per_step(9537) == 95
    )  # the paper's 1% of UCF-101 split 1
    assert OptimConfig(update_fraction=0.01).chunks_per_step(10) == 1
    assert OptimConfig(update_fraction=1.0).chunks_per_step(10) == 10
    assert OptimConfig(update_chunks=64).chunks_per_step(10) == 64  # chunks win over the fraction


def test_lr_schedules():
    const = OptimConfig(lr=1.0, epochs=4)
    assert [lr_at(s, const, 10) for s in (0, 39)] == [1.0, 1.0]
    step = OptimConfig(lr=1.0, epochs=4, schedule="step", lr_milestones=(1, 3), lr_gamma=0.1)
    assert [lr_at(s, step, 10) for s in (9, 10, 29, 30)] == pytest.approx([1, 0.1, 0.1, 0.01])
    cos = OptimConfig(lr=1.0, epochs=2, schedule="cosine")
    assert lr_at(0, cos, 10) == 1.0 and lr_at(10, cos, 10) == pytest.approx(0.5)
    assert lr_at(20, cos, 10) == pytest.approx(0.0, abs=1e-12)
    warm = OptimConfig(lr=1.0, epochs=1, warmup_steps=3)
    assert [lr_at(s, warm, 10) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_lr_is_set_per_step():
    data = make_data(4)
    lrs = []
    run_epoch(
        data,
        batch_size=1,
        step_size=2,
        lr_fn=lambda step: 0.5 / (step + 1),
        on_step=lambda s: lrs.append(s.lr),
    )
    assert lrs == [0.5, 0.25]


def test_freeze_stages_keeps_bn_statistics():
    from rrn.model import build_model

    model = build_model("resnet18", num_classes=2, skip_blocks=("block4",))
    frozen_bn = freeze_stages(model, ("stem", "layer1"))
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    assert model.layer2[0].conv1.weight.requires_grad and model.fc.weight.requires_grad
    set_train_mode(model, frozen_bn)
    assert (
        not model.bn1.training and not model.layer1[1].bn2.training and model.layer2[0].bn1.training
    )
    stats = model.bn1.running_mean.clone()
    model(torch.randn(2, 2, 3, 32, 32))
    assert torch.equal(stats, model.bn1.running_mean)


def test_step_plan_cuts_epochs_into_steps():
    from rrn.train import StepPlan

    plan = StepPlan.create(OptimConfig(update_chunks=6), num_chunks=13, world_size=2)
    # 13 chunks padded to 7 per rank, 3 per rank per step: 3 steps
    assert (plan.chunks_per_step, plan.local_step, plan.steps_per_epoch) == (6, 3, 3)
    assert StepPlan.create(OptimConfig(), 9537, 1).chunks_per_step == 95

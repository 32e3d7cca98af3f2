"""One step's pieces: BatchNorm statistics of frozen stages."""

import torch


def test_frozen_bn_stats_keeps_running_estimates_and_restores_momentum():
    from rrn.model import build_model
    from rrn.train.step import frozen_bn_stats

    model = build_model("resnet18", num_classes=3, skip_blocks=("block1",)).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with frozen_bn_stats(model):
        model(torch.zeros(2, 2, 3, 32, 32)).sum().backward()  # the dummy batch of a DDP rank
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}
    model(torch.randn(2, 2, 3, 32, 32))  # outside: the estimates move again
    assert not torch.equal(before["bn1.running_mean"], model.state_dict()["bn1.running_mean"])

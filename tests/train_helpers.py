"""Shared by the training tests: a tiny clip model with the RRN calling convention and its data."""

import io

import torch
from torch import nn

from rrn.distributed import ResumableDistributedSampler, StepBatchSampler
from rrn.train import (
    RunState,
    StepContext,
    train_one_epoch,
)

T, S, K = 2, 4, 3


class ClipNet(nn.Module):
    """Linear classifier of the last frame: a model with the RRN calling convention."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * S * S, K)

    def forward(self, clip):  # (B, T, 3, S, S) -> (B, K)
        return self.fc(clip[:, -1].flatten(1))  # (B, 3, S, S) -> (B, 3*S*S)


def make_data(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(T, 3, S, S, generator=g), i % K) for i in range(n)]


def loader_for(data, batch_size, step_size, skip=()):
    sampler = ResumableDistributedSampler(list(range(len(data))), shuffle=False)
    batches = StepBatchSampler(sampler, batch_size, step_size)

    def gen():
        for idx in batches:
            kept = [i for i in idx if i not in skip]
            clip = torch.stack([data[i][0] for i in kept]) if kept else torch.empty(0)
            yield {
                "clip": clip,
                "label": torch.tensor([data[i][1] for i in kept], dtype=torch.long),
                "video_index": torch.tensor(kept, dtype=torch.long),
                "skipped": [i for i in idx if i in skip],
            }

    return gen(), batches.schedule(), batches.steps_per_epoch()


def run_epoch(data, batch_size, step_size, skip=(), lr=0.1, on_step=None, **ctx):
    model = ClipNet()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loader, schedule, steps = loader_for(data, batch_size, step_size, skip)
    state = RunState(steps_per_epoch=steps)
    totals = train_one_epoch(
        model,
        loader,
        schedule,
        opt,
        state,
        StepContext(device=torch.device("cpu"), **ctx),
        on_step=on_step,
    )
    return model, totals


def _saved(obj):

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf

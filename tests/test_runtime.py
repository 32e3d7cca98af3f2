"""The runtime layer: precision and worker counts."""

import torch


def test_amp_dtype():
    from rrn.runtime import amp_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp_dtype("auto", cpu) is None  # full precision on CPU unless bf16 is asked for
    assert amp_dtype("fp16", cpu) is None
    assert amp_dtype("bf16", cpu) is torch.bfloat16
    assert amp_dtype("none", cpu) is None
    assert amp_dtype("none", cuda) is None
    assert amp_dtype("fp16", cuda) is torch.float16
    assert amp_dtype("bf16", cuda) is torch.bfloat16


def test_default_workers_follow_the_machine(monkeypatch):
    import os

    from rrn.runtime import resolve_workers

    assert resolve_workers(3) == 3 and resolve_workers(0) == 0
    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert resolve_workers(None) == max(1, min(8, cores))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * cores))  # more processes than cores
    assert resolve_workers(None) == 1

"""Distributed helpers and samplers (the 2-process DDP run is in test_cli_train_eval.py)."""

import pytest
import torch

from rrn.distributed import (
    DistInfo,
    ResumableDistributedSampler,
    StepBatchSampler,
    all_gather_objects,
    all_reduce_sum,
    dist_info_from_env,
)


def test_dist_info_from_env():
    assert dist_info_from_env({}) == DistInfo(0, 1, 0)
    info = dist_info_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert info.enabled and not info.is_main and info.local_rank == 1


def test_single_process_collectives_are_identity():
    t = torch.tensor([1.0, 2.0])
    assert all_reduce_sum(t) is t and t.tolist() == [1.0, 2.0]
    assert all_gather_objects({"a": 1}) == [{"a": 1}]


def test_sampler_order_is_a_function_of_seed_and_epoch():
    data = list(range(20))
    a = ResumableDistributedSampler(data, seed=1)
    b = ResumableDistributedSampler(data, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b) and sorted(a) == data
    b.set_epoch(4)
    assert list(a) != list(b)
    c = ResumableDistributedSampler(data, seed=2)
    c.set_epoch(3)
    assert list(c) != list(a)


def test_sampler_start_offset_resumes_the_same_order():
    data = list(range(17))
    full = ResumableDistributedSampler(data, seed=0)
    tail = ResumableDistributedSampler(data, seed=0)
    tail.set_start(6)
    assert list(tail) == list(full)[6:] and len(tail) == 11


def test_ranks_partition_the_data_with_padding():
    data = list(range(7))
    shards = [list(ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=0))
              for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4  # 8 = 7 + 1 padded duplicate
    assert set(shards[0]) | set(shards[1]) == set(data)


def test_step_batch_sampler_schedule():
    data = list(range(10))
    sampler = ResumableDistributedSampler(data, shuffle=False)
    batches = StepBatchSampler(sampler, batch_size=2, step_size=3)
    assert list(batches) == [[0, 1], [2], [3, 4], [5], [6, 7], [8], [9]]
    sched = batches.schedule()
    assert [(m.step, m.last, m.step_chunks) for m in sched] == [
        (0, False, 3), (0, True, 3), (1, False, 3), (1, True, 3),
        (2, False, 3), (2, True, 3), (3, True, 1),  # the final partial step still steps
    ]
    assert batches.steps_per_epoch() == 4 and len(batches) == 7
    sampler.set_start(6)
    resumed = StepBatchSampler(sampler, batch_size=2, step_size=3)
    assert list(resumed) == [[6, 7], [8], [9]]
    assert [m.step for m in resumed.schedule()] == [2, 2, 3]
    sampler.set_start(4)
    with pytest.raises(ValueError, match="step boundary"):
        StepBatchSampler(sampler, batch_size=2, step_size=3)

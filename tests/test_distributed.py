"""Distributed helpers and samplers (the 2-process DDP run is in test_cli_train_eval.py)."""

import pytest
import torch

from processes import torchrun_two
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
    shards = [
        list(ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=0)) for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 4  # 8 = 7 + 1 padded duplicate
    assert set(shards[0]) | set(shards[1]) == set(data)


def test_step_batch_sampler_schedule():
    data = list(range(10))
    sampler = ResumableDistributedSampler(data, shuffle=False)
    batches = StepBatchSampler(sampler, batch_size=2, step_size=3)
    assert list(batches) == [[0, 1], [2], [3, 4], [5], [6, 7], [8], [9]]
    sched = batches.schedule()
    assert [(m.step, m.last, m.step_chunks) for m in sched] == [
        (0, False, 3),
        (0, True, 3),
        (1, False, 3),
        (1, True, 3),
        (2, False, 3),
        (2, True, 3),
        (3, True, 1),  # the final partial step still steps
    ]
    assert batches.steps_per_epoch() == 4 and len(batches) == 7
    sampler.set_start(6)
    resumed = StepBatchSampler(sampler, batch_size=2, step_size=3)
    assert list(resumed) == [[6, 7], [8], [9]]
    assert [m.step for m in resumed.schedule()] == [2, 2, 3]
    sampler.set_start(4)
    with pytest.raises(ValueError, match="step boundary"):
        StepBatchSampler(sampler, batch_size=2, step_size=3)


DDP_SCRIPT = r"""
import os, sys, torch
from rrn.cli import main
from rrn.config import resolve_config
from rrn.train import fit

from rrn.distributed import cleanup, init_distributed

data, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
init_distributed("cpu")  # one process group for both fit and eval: they leave it to us
cfg = resolve_config([("flags", {
    "data": {"data_root": data, "frame_size": 32, "sample_every": 1, "hflip": False},
    "model": {"arch": "resnet18", "skip": "block4", "weights": "none"},
    "optim": {"epochs": 1, "batch_size": 3, "update_chunks": 6, "lr": 1e-3},
    "run": {"out": out, "workers": 0, "progress": False, "device": "cpu", "val_every": 1,
            "watch_test": True},
})])
result = fit(cfg)
torch.save(result["model"].state_dict(), os.path.join(out, "rank%s.state" % os.environ["RANK"]))
rc = main(["eval", out, "--which", "last", "--workers", "0", "--no-progress",
           "--device", "cpu", "--out", os.path.join(out, "ddp_eval")])
cleanup()
sys.exit(rc)
"""


def test_ddp_two_gloo_processes(tmp_path):
    """2 CPU processes (gloo): identical weights on both ranks, one checkpoint, exact eval counts."""
    import json

    from rrn.cli import main
    from rrn.data import load_split, make_synthetic_dataset

    data = make_synthetic_dataset(
        tmp_path / "data", classes=3, videos_per_class=6, frames=8, size=32, seed=0
    )
    for side in ("train", "test"):  # odd counts, so that DistributedSampler pads a duplicate
        path = data / f"{side}list01.txt"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[: len(lines) - 1 + len(lines) % 2]) + "\n")
    split = load_split("ucf101", data, data, 1)
    n_train, n_test = len(split.train), len(split.test)
    assert n_train % 2 == 1 and n_test % 2 == 1
    out = tmp_path / "run"
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun_two(str(script), str(data), str(out), timeout=240)

    rank0 = torch.load(out / "rank0.state", weights_only=True)
    rank1 = torch.load(out / "rank1.state", weights_only=True)
    for key, value in rank0.items():  # parameters and BatchNorm statistics
        assert torch.equal(value, rank1[key]), key
    last = torch.load(out / "last.pt", weights_only=True)
    assert all(torch.equal(v, last["model"][k]) for k, v in rank0.items())

    # only rank 0 wrote: one checkpoint (no validation split: no best.pt), no stray temporary
    # files, one log, the run lock (tensorboard/ appears only where tensorboard is installed)
    names = sorted(p.name for p in out.iterdir() if p.name != "tensorboard")
    assert names == [
        ".rrn-lock",
        "config.yaml",
        "curves.png",
        "ddp_eval",
        "last.pt",
        "log.jsonl",
        "rank0.state",
        "rank1.state",
    ]
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in log].count("start") == 1 and log[0]["world_size"] == 2
    steps = [r for r in log if r["kind"] == "step"]
    # n_train padded to n_train + 1, half per rank; 3 per rank per step (--update-chunks 6)
    per_rank = (n_train + 1) // 2
    expected = [2 * min(3, per_rank - lo) for lo in range(0, per_rank, 3)]
    assert [s["chunks"] for s in steps] == expected and sum(expected) == n_train + 1
    assert last["optimizer"]["state"][0]["step"] == len(expected)

    # DDP evaluation counts each test video once (the padded duplicate is dropped)
    ddp = json.loads((out / "ddp_eval" / "eval_split1.json").read_text())
    assert ddp["num_videos"] == n_test and ddp["timing"]["world_size"] == 2
    assert (
        main(
            [
                "eval",
                str(out),
                "--which",
                "last",
                "--workers",
                "0",
                "--no-progress",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "single"),
            ]
        )
        == 0
    )
    single = json.loads((tmp_path / "single" / "eval_split1.json").read_text())
    assert ddp["num_chunks"] == single["num_chunks"] == n_test * 4
    for key in ("video_top1", "clip_top1", "mean_class_accuracy"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key
    epoch = [r for r in log if r["kind"] == "epoch"][0]
    assert epoch["test_videos"] == n_test
    assert epoch["test_video_top1"] == pytest.approx(single["video_top1"], abs=1e-6)

"""Training units: step accumulation, schedules, skipped items, non-finite loss, evaluation
dedup, the run state and the run folder."""

import copy
import math

import pytest
import torch
from torch import nn

from faults import NanAt
from rrn.config import OptimConfig
from rrn.distributed import ResumableDistributedSampler, StepBatchSampler
from rrn.evaluation import evaluate
from rrn.train import (
    EpochTotals,
    NonFiniteLossError,
    RunState,
    StepContext,
    freeze_stages,
    lr_at,
    train_one_epoch,
)
from rrn.train.step import set_train_mode

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
            yield {"clip": clip, "label": torch.tensor([data[i][1] for i in kept], dtype=torch.long),
                   "video_index": torch.tensor(kept, dtype=torch.long),
                   "skipped": [i for i in idx if i in skip]}

    return gen(), batches.schedule(), batches.steps_per_epoch()


def run_epoch(data, batch_size, step_size, skip=(), lr=0.1, on_step=None, **ctx):
    model = ClipNet()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loader, schedule, steps = loader_for(data, batch_size, step_size, skip)
    state = RunState(steps_per_epoch=steps)
    totals = train_one_epoch(model, loader, schedule, opt, state,
                             StepContext(device=torch.device("cpu"), **ctx), on_step=on_step)
    return model, totals


def test_micro_batch_size_does_not_change_the_step():
    data = make_data(6)
    # one optimiser step per 3 chunks: micro-batches of 1 or 3 give the same mean gradient
    a, ta = run_epoch(data, batch_size=1, step_size=3)
    b, tb = run_epoch(data, batch_size=3, step_size=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
    assert ta.chunks == tb.chunks == 6 and ta.loss == pytest.approx(tb.loss)
    # ... and equals plain SGD on the mean loss of each step's 3 chunks
    ref = ClipNet()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for lo in (0, 3):
        x = torch.stack([c for c, _ in data[lo:lo + 3]])
        y = torch.tensor([lab for _, lab in data[lo:lo + 3]])
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
        opt.zero_grad()
    for pa, pr in zip(a.parameters(), ref.parameters()):
        torch.testing.assert_close(pa, pr, rtol=1e-5, atol=1e-6)


def test_partial_last_step_still_steps_and_counts_steps():
    data = make_data(5)
    steps_seen = []
    model, totals = run_epoch(data, batch_size=2, step_size=2,
                              on_step=lambda s: steps_seen.append((s.step_in_epoch, s.chunks)))
    assert steps_seen == [(1, 2), (2, 2), (3, 1)]


def test_skipped_chunks_leave_the_mean_over_real_chunks():
    data = make_data(4)
    # chunk 1 is unreadable: the step's gradient must be the mean over chunks 0, 2, 3
    a, totals = run_epoch(data, batch_size=2, step_size=4, skip={1})
    assert totals.skipped == [1] and totals.chunks == 3
    ref = ClipNet()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    kept = [0, 2, 3]
    x = torch.stack([data[i][0] for i in kept])
    y = torch.tensor([data[i][1] for i in kept])
    nn.functional.cross_entropy(ref(x), y).backward()
    opt.step()
    for pa, pr in zip(a.parameters(), ref.parameters()):
        torch.testing.assert_close(pa, pr, rtol=1e-5, atol=1e-6)


def test_non_finite_loss_stops_before_the_update():
    data = make_data(6)
    model = ClipNet()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader, schedule, steps = loader_for(data, 2, 2)
    seen = []
    ctx = StepContext(device=torch.device("cpu"), hooks=[NanAt(2)])
    with pytest.raises(NonFiniteLossError, match="global step 2"):
        train_one_epoch(model, loader, schedule, opt, RunState(steps_per_epoch=steps), ctx,
                        on_step=lambda s: seen.append(copy.deepcopy(model.state_dict())))
    assert len(seen) == 1  # step 1 applied, step 2 refused
    assert all(torch.equal(seen[0][k], v) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert not torch.equal(before["fc.weight"], model.fc.weight)


def test_chunks_per_step():
    assert OptimConfig(update_fraction=0.01).chunks_per_step(9537) == 95  # the paper's 1% of UCF-101 split 1
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
    run_epoch(data, batch_size=1, step_size=2, lr_fn=lambda step: 0.5 / (step + 1),
              on_step=lambda s: lrs.append(s.lr))
    assert lrs == [0.5, 0.25]


def test_evaluate_averages_chunks_and_counts_each_video_once():
    class Fixed(nn.Module):
        def forward(self, clip):  # logits = log of the first pixel's 3 channels
            return clip[:, -1, :, 0, 0].log()

    def video(vi, label, probs):  # (M, T, 3, 1, 1) chunks whose probabilities are `probs`
        clips = torch.tensor(probs)[:, None, :, None, None].expand(-1, T, 3, 1, 1)
        return {"clips": clips, "chunk_video": torch.full((len(probs),), vi),
                "label": torch.tensor([label]), "video_index": torch.tensor([vi]), "skipped": []}

    batches = [
        video(0, 0, [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]),  # mean [0.4, 0.5, 0.1] -> wrong
        video(1, 2, [[0.1, 0.1, 0.8]]),
        video(0, 0, [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]),  # a padded duplicate: ignored
    ]
    res = evaluate(Fixed(), batches, device=torch.device("cpu"), chunk_batch=1)
    assert res["video_index"].tolist() == [0, 1]
    torch.testing.assert_close(res["video_probs"][0], torch.tensor([0.4, 0.5, 0.1]))
    assert res["chunk_probs"].shape == (3, 3)
    assert res["chunk_video"].tolist() == [0, 0, 1]
    assert res["chunk_labels"].tolist() == [0, 0, 2]


def test_freeze_stages_keeps_bn_statistics():
    from rrn.model import build_model

    model = build_model("resnet18", num_classes=2, skip_blocks=("block4",))
    frozen_bn = freeze_stages(model, ("stem", "layer1"))
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    assert model.layer2[0].conv1.weight.requires_grad and model.fc.weight.requires_grad
    set_train_mode(model, frozen_bn)
    assert not model.bn1.training and not model.layer1[1].bn2.training and model.layer2[0].bn1.training
    stats = model.bn1.running_mean.clone()
    model(torch.randn(2, 2, 3, 32, 32))
    assert torch.equal(stats, model.bn1.running_mean)


def test_epoch_totals():
    t = EpochTotals(loss_sum=3.0, correct=1.0, chunks=4.0)
    assert t.loss == 0.75 and t.acc == 0.25
    assert math.isnan(EpochTotals().loss)


def test_grad_scaler_path_matches_unscaled_training():
    """The fp16 path (scale, unscale for clipping, step, update) gives the unscaled result."""
    data = make_data(6)
    plain, _ = run_epoch(data, batch_size=2, step_size=3, grad_clip=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    scaled, _ = run_epoch(data, batch_size=2, step_size=3, grad_clip=0.5, scaler=scaler)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**8  # no overflow, no growth yet


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


def test_bf16_step_on_cpu_keeps_fp32_weights_and_tracks_the_fp32_loss():
    """A ResNet-18 RRN step under CPU bf16 autocast: the loss is the fp32 loss to bf16's
    precision, gradients are finite and land in the fp32 parameters."""
    from rrn.model import build_model

    torch.manual_seed(0)
    clip, labels = torch.randn(2, 2, 3, 32, 32), torch.tensor([0, 1])
    losses, grads = [], []
    for bf16 in (False, True):
        torch.manual_seed(1)  # the same weights for both
        # eval-mode BatchNorm: batch statistics of 4 frames at 1x1 (layer4) would amplify any
        # rounding into a different network, in fp32 as much as in bf16
        model = build_model("resnet18", num_classes=2, skip_blocks=("block1",)).eval()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(clip).float(), labels)
        loss.backward()
        losses.append(loss.item())
        grads.append(model.fc.weight.grad)
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[1] != losses[0]  # bf16 did compute
    assert math.isfinite(losses[1]) and abs(losses[1] - losses[0]) < 0.05 * abs(losses[0])
    assert torch.isfinite(grads[1]).all()
    assert torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0) > 0.9


@pytest.mark.parametrize(
    "model_cfg, expected",
    [
        ({}, ("layer4.1",)),  # default: block4
        ({"context": 3}, ("layer4.0", "layer4.1")),  # the last T-1 blocks
        ({"skip": ("block1", "block4"), "context": 3}, ("layer1.0", "layer4.1")),
        ({"skip": ()}, ()),  # --skip none: a per-frame ResNet
    ],
)
def test_resolve_skips(model_cfg, expected):
    from rrn.config import ModelConfig
    from rrn.model import resolve_skips, skips_for_context

    assert resolve_skips(ModelConfig(arch="resnet18", **model_cfg)) == expected
    if "context" in model_cfg and "skip" not in model_cfg:
        assert expected == skips_for_context("resnet18", 3)


def test_resolve_skips_names_an_unknown_block():
    from rrn.config import ModelConfig
    from rrn.model import resolve_skips

    with pytest.raises(ValueError, match="block9"):
        resolve_skips(ModelConfig(arch="resnet18", skip=("block9",)))


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


def _saved(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_run_dir_policy(tmp_path):
    from rrn.checkpoint import LAST
    from rrn.config import TrainConfig
    from rrn.train import RunDir

    run = RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    assert run.resumed is None and run.path.is_dir()
    model = ClipNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    run.start(TrainConfig(), ["a", "b"], {"note": 1})
    state = RunState(steps_per_epoch=4, epoch=1, step_in_epoch=2, global_step=6)
    run.save(LAST, model, opt, scaler, state)
    run.close()
    with pytest.raises(FileNotFoundError, match="--resume"):
        RunDir.open(tmp_path / "empty", resume=True, overwrite=False)
    (tmp_path / "r" / "best.pt").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    resumed = RunDir.open(tmp_path / "r", resume=True, overwrite=False)
    assert resumed.restore(opt, scaler, 4, 1) == state
    with pytest.raises(ValueError, match="4 steps per epoch"):
        resumed.restore(opt, scaler, 5, 1)
    with pytest.raises(ValueError, match="classes"):
        resumed.check_resume(TrainConfig(), ["a", "c"])
    resumed.close()
    fresh = RunDir.open(tmp_path / "r", resume=False, overwrite=True)
    fresh.start(TrainConfig(), ["a", "b"], {})
    assert not (tmp_path / "r" / "best.pt").exists()  # nothing of the replaced run survives
    fresh.close()
    # other ranks write nothing
    quiet = RunDir(tmp_path / "q", is_main=False)
    quiet.start(TrainConfig(), ["a"], {})
    quiet.save(LAST, model, opt, scaler, state)
    quiet.log({"kind": "x"})
    assert list((tmp_path / "q").iterdir()) == []


def test_step_plan_cuts_epochs_into_steps():
    from rrn.train import StepPlan

    plan = StepPlan.create(OptimConfig(update_chunks=6), num_chunks=13, world_size=2)
    # 13 chunks padded to 7 per rank, 3 per rank per step: 3 steps
    assert (plan.chunks_per_step, plan.local_step, plan.steps_per_epoch) == (6, 3, 3)
    assert StepPlan.create(OptimConfig(), 9537, 1).chunks_per_step == 95


def test_default_workers_follow_the_machine(monkeypatch):
    import os

    from rrn.runtime import resolve_workers

    assert resolve_workers(3) == 3 and resolve_workers(0) == 0
    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert resolve_workers(None) == max(1, min(8, cores))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * cores))  # more processes than cores
    assert resolve_workers(None) == 1


def test_precision_benchmark_quick_mode(tmp_path):
    """benchmarks/precision.py --quick: every variant is timed and compared (numbers not judged)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "precision.py"
    out = tmp_path / "r.md"
    subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], check=True,
                   capture_output=True, timeout=300)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| fp32") or line.startswith("| bf16")]
    assert len(rows) == 4 and rows[0].endswith("| 1.00x |")
    assert all(float(r.split("|")[2]) > 0 for r in rows)
    assert "native bf16: " in out.read_text()


def test_the_run_log_is_strict_json_when_a_number_is_not_finite(tmp_path):
    import json

    from rrn.config import TrainConfig
    from rrn.files import json_text
    from rrn.train import RunDir

    def refuse(constant):  # what jq, JavaScript and strict JSON libraries do with NaN / Infinity
        raise ValueError(constant)

    record = {"loss": float("nan"), "acc": [0.5, float("inf")], "n": 3, "ok": True}
    assert json.loads(json_text(record), parse_constant=refuse) == {"loss": None, "acc": [0.5, None],
                                                                   "n": 3, "ok": True}
    run = RunDir.open(tmp_path / "r", resume=False, overwrite=False)
    run.start(TrainConfig(), ["a", "b"], {"val_loss": float("nan")})
    run.log({"kind": "epoch", "epoch": 1, "train_loss": float("-inf")})
    run.close()
    lines = [json.loads(line, parse_constant=refuse) for line in (tmp_path / "r" / "log.jsonl").open()]
    assert lines[0]["val_loss"] is None and lines[1]["train_loss"] is None

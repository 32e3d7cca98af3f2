"""The training loop: one epoch of micro-batches, steps, skipped chunks, non-finite losses, precision."""

import copy
import math

import pytest
import torch
from torch import nn

from faults import NanAt
from rrn.train import (
    NonFiniteLossError,
    RunState,
    StepContext,
    train_one_epoch,
)
from train_helpers import ClipNet, loader_for, make_data, run_epoch


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
        x = torch.stack([c for c, _ in data[lo : lo + 3]])
        y = torch.tensor([lab for _, lab in data[lo : lo + 3]])
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
        opt.zero_grad()
    for pa, pr in zip(a.parameters(), ref.parameters()):
        torch.testing.assert_close(pa, pr, rtol=1e-5, atol=1e-6)


def test_partial_last_step_still_steps_and_counts_steps():
    data = make_data(5)
    steps_seen = []
    model, totals = run_epoch(
        data,
        batch_size=2,
        step_size=2,
        on_step=lambda s: steps_seen.append((s.step_in_epoch, s.chunks)),
    )
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
        train_one_epoch(
            model,
            loader,
            schedule,
            opt,
            RunState(steps_per_epoch=steps),
            ctx,
            on_step=lambda s: seen.append(copy.deepcopy(model.state_dict())),
        )
    assert len(seen) == 1  # step 1 applied, step 2 refused
    assert all(torch.equal(seen[0][k], v) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert not torch.equal(before["fc.weight"], model.fc.weight)


def test_grad_scaler_path_matches_unscaled_training():
    """The fp16 path (scale, unscale for clipping, step, update) gives the unscaled result."""
    data = make_data(6)
    plain, _ = run_epoch(data, batch_size=2, step_size=3, grad_clip=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    scaled, _ = run_epoch(data, batch_size=2, step_size=3, grad_clip=0.5, scaler=scaler)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert scaler.get_scale() == 2.0**8  # no overflow, no growth yet


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
    assert (
        torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0) > 0.9
    )


def test_training_notes_a_person_should_act_on_are_warnings_shown_with_quiet(
    tmp_path, capsys, monkeypatch
):
    """Flips on ssv2 (whose classes are directions) and emulated bf16: WARNING on stderr, so
    -q, which hides the run's INFO lines, still shows them."""
    import json

    import rrn.train.loop
    from rrn.cli import main
    from rrn.data import make_synthetic_dataset
    from runs import tiny_train_argv

    data = make_synthetic_dataset(
        tmp_path / "ssv2", classes=2, videos_per_class=4, frames=6, size=32, layout="ssv2"
    )
    flags = json.loads((data / "rrn_synth.json").read_text())["flags"].split()
    argv = tiny_train_argv(data, tmp_path / "run", "--epochs", "1", "--val-every", "0")
    argv.remove("--no-hflip")  # flips on: the note
    monkeypatch.setattr(rrn.train.loop, "cpu_has_native_bf16", lambda: False)
    assert main(["-q", *argv, *flags[:2], "--hflip", "--amp", "bf16"]) == 0
    out, err = capsys.readouterr()
    assert out == ""  # -q: no INFO line, not even the epoch's
    flips, bf16 = err.splitlines()
    assert flips.startswith("rrn train: warning: horizontal flips on --dataset ssv2, whose ")
    assert flips.endswith("another class; train with --no-hflip")
    assert bf16 == (
        "rrn train: warning: this CPU has no native bf16 (AVX512-BF16 or AMX): --amp bf16 is "
        "emulated and slower than full precision; use --amp none"
    )

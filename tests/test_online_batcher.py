"""The micro-batcher: one step for the waiting frames of many streams, latest frame wins,
streams closed while waiting, and the same numbers as the recognizer alone."""

import threading
import time

import numpy as np
import pytest
import torch

from rrn import load_model
from rrn.online import Dropped, MicroBatcher, MultiStreamRecognizer, StreamFrame
from runs import save_run


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = save_run(
        tmp_path_factory.mktemp("batcher") / "run",
        skips=("block2", "block4"),
        skip_type="identity",
        frame_size=32,
        classes=("A", "B", "C"),
        seed=2,
    )
    return load_model(run)


def _frames(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 36, 36, 3), dtype=np.uint8)


@pytest.mark.parametrize("max_batch", [2, 8])
def test_streams_through_the_batcher_match_each_stream_alone(model, max_batch):
    videos = {f"s{k}": _frames(k, 6) for k in range(4)}
    alone = {}
    for k, frames in videos.items():
        rec = MultiStreamRecognizer(model)
        rec.open(k)
        alone[k] = torch.stack(
            [rec.step([StreamFrame(k, f, i, i / 25)])[k].probs for i, f in enumerate(frames)]
        )
    sizes = []
    with MicroBatcher(
        MultiStreamRecognizer(model),
        max_batch=max_batch,
        max_wait_ms=20,
        on_step=lambda n, s: sizes.append(n),
    ) as batcher:
        for k in videos:
            batcher.open(k)
        got = {k: [] for k in videos}
        for i in range(6):  # every stream's frame i, then wait: nothing is replaced
            futures = {
                k: batcher.submit(StreamFrame(k, f[i], i, i / 25)) for k, f in videos.items()
            }
            for k, fut in futures.items():
                got[k].append(fut.result(timeout=30).probs)
    for k in videos:
        torch.testing.assert_close(torch.stack(got[k]), alone[k], atol=1e-5, rtol=0)
    assert max(sizes) == min(max_batch, 4) and sum(sizes) == 24


def test_the_newest_frame_replaces_a_waiting_one(model):
    rec = MultiStreamRecognizer(model)
    entered, gate = threading.Event(), threading.Event()
    step = rec.step

    def held_step(frames):
        entered.set()
        gate.wait(60)
        return step(frames)

    rec.step = held_step
    with MicroBatcher(rec, max_batch=4, max_wait_ms=0) as batcher:
        batcher.open("a")
        f = _frames(0, 4)
        first = batcher.submit(StreamFrame("a", f[0], 0, 0.0))
        assert entered.wait(30)  # the worker holds frame 0 in its (gated) step
        second = batcher.submit(StreamFrame("a", f[1], 1, 0.04))
        third = batcher.submit(StreamFrame("a", f[2], 2, 0.08))
        assert second.result(timeout=30) == Dropped("a", 1, 0.04, "replaced")
        gate.set()
        assert first.result(timeout=30).index == 0 and third.result(timeout=30).index == 2
        stats = batcher.stats()
    assert (stats.received, stats.classified, stats.dropped) == (3, 2, 1)


def test_a_stream_closed_while_its_frame_waits_does_not_disturb_the_others(model):
    rec = MultiStreamRecognizer(model)
    entered, gate = threading.Event(), threading.Event()
    step = rec.step
    rec.step = lambda frames: (entered.set(), gate.wait(60), step(frames))[2]
    with MicroBatcher(rec, max_batch=4, max_wait_ms=0) as batcher:
        for k in ("a", "b", "c"):
            batcher.open(k)
        f = _frames(1, 2)
        busy = batcher.submit(StreamFrame("c", f[0], 0, 0.0))
        assert entered.wait(30)  # the worker holds c's frame in its (gated) step
        waiting = {k: batcher.submit(StreamFrame(k, f[1], 1, 0.04)) for k in ("a", "b")}
        assert batcher.close("a")
        gate.set()
        assert waiting["a"].result(timeout=30) == Dropped("a", 1, 0.04, "closed")
        assert (
            waiting["b"].result(timeout=30).stream == "b" and busy.result(timeout=30).stream == "c"
        )
        assert "a" not in rec.streams


def test_a_failing_step_fails_its_batch_and_the_batcher_goes_on(model):
    rec = MultiStreamRecognizer(model)
    step, calls = rec.step, []

    def flaky(frames):
        calls.append(len(frames))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return step(frames)

    rec.step = flaky
    with MicroBatcher(rec, max_wait_ms=0) as batcher:
        batcher.open("a")
        f = _frames(2, 2)
        with pytest.raises(RuntimeError, match="boom"):
            batcher.submit(StreamFrame("a", f[0], 0, 0.0)).result(timeout=30)
        assert batcher.submit(StreamFrame("a", f[1], 1, 0.04)).result(timeout=30).index == 1


def test_shutdown_resolves_what_waits(model):
    batcher = MicroBatcher(MultiStreamRecognizer(model), max_wait_ms=0)
    batcher.shutdown()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(StreamFrame("a", _frames(0, 1)[0], 0, 0.0))


def test_opening_and_closing_streams_never_wait_for_a_step_in_progress(model):
    """An event loop opens and closes streams: a slow step must not freeze it (issue 19: while
    a step was slow, connect/disconnect churn froze rrn serve's loop)."""
    rec = MultiStreamRecognizer(model)
    gate, step = threading.Event(), rec.step
    rec.step = lambda frames: (gate.wait(30), step(frames))[1]
    with MicroBatcher(rec, max_wait_ms=0) as batcher:
        batcher.open("busy")
        held = batcher.submit(StreamFrame("busy", _frames(0, 1)[0], 0, 0.0))
        deadline = time.monotonic() + 30
        while batcher.stalled_for() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the worker is inside the held step
        for i in range(50):
            batcher.open(f"s{i}")
            assert batcher.close(f"s{i}")
        batcher.open("again")
        # all of it while the step was held (was: each waited for it, until the gate's 30 s):
        # a state, not a wall-clock bound that a busy machine can exceed
        assert not held.done()
        with pytest.raises(KeyError, match="already open"):
            batcher.open("again")
        gate.set()
        assert held.result(timeout=30).stream == "busy"
        late = batcher.submit(StreamFrame("again", _frames(0, 1)[0], 0, 0.0)).result(timeout=30)
        assert late.stream == "again" and batcher.open_streams == 2
    assert set(rec.streams) == {"busy", "again"}  # the opens and closes were applied, in order


def test_a_stream_whose_step_fails_costs_only_itself_its_frame(model):
    """A batch that fails is stepped again stream by stream: the others get exactly what they
    get alone (their states change only when their own step succeeds)."""
    rec, alone = MultiStreamRecognizer(model), MultiStreamRecognizer(model)
    step, sizes = rec.step, []

    def fragile(frames):
        sizes.append(len(frames))
        if any(f.stream == "bad" for f in frames):
            raise RuntimeError("swscale refused the image")
        return step(frames)

    rec.step = fragile
    f = _frames(3, 3)
    alone.open("good")
    expected = [alone.step([StreamFrame("good", f[i], i, i / 25)])["good"].probs for i in range(3)]
    with MicroBatcher(rec, max_batch=4, max_wait_ms=50) as batcher:
        batcher.open("good")
        batcher.open("bad")
        for i in range(3):
            good = batcher.submit(StreamFrame("good", f[i], i, i / 25))
            bad = batcher.submit(StreamFrame("bad", f[i], i, i / 25))
            torch.testing.assert_close(
                good.result(timeout=30).probs, expected[i], atol=1e-6, rtol=0
            )
            with pytest.raises(RuntimeError, match="swscale"):
                bad.result(timeout=30)
        stats = batcher.stats()
    assert stats.classified == 3
    assert 2 in sizes  # the two streams were tried together, then alone

"""The micro-batcher: one step for the waiting frames of many streams, latest frame wins,
streams closed while waiting, and the same numbers as the recognizer alone."""

import threading

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

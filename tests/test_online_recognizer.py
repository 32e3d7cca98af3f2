"""Many streams, one batched step: each stream's outputs equal the stream run alone and
``forward_video``'s rows, whoever else is in the batch; state per stream id, freed at close
and after an idle timeout."""

import random

import numpy as np
import pytest
import torch

from rrn import load_model
from rrn.online import MultiStreamRecognizer, Recognizer, StreamFrame
from runs import save_run

SIZE = 32


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # linear skips at two blocks (T=3): zero terms must equal "no previous frame" exactly
    run = save_run(
        tmp_path_factory.mktemp("multi") / "run",
        skips=("block2", "block4"),
        skip_type="linear",
        frame_size=SIZE,
        classes=("A", "B", "C", "D"),
        seed=1,
    )
    return load_model(run)


def _video(seed: int, n: int) -> np.ndarray:
    """n random RGB frames of 48 x 40 (resized to the model's short side by the recognizer)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)


def _alone(model, frames: np.ndarray) -> torch.Tensor:
    rec = MultiStreamRecognizer(model)
    rec.open("x")
    return torch.stack(
        [rec.step([StreamFrame("x", f, i, i / 25)])["x"].probs for i, f in enumerate(frames)]
    )


def _forward_video(model, rec: MultiStreamRecognizer, frames: np.ndarray) -> torch.Tensor:
    state = rec.open("fv")
    x = model.inputs.transform()(np.stack([rec.rgb(state, f) for f in frames]))  # (N, 3, S, S)
    rec.close("fv")
    with torch.no_grad():
        return model.forward_video(x[None])[0].softmax(-1)  # (1, N, K) -> (N, K)


def test_three_streams_that_start_and_end_at_different_times_match_each_run_alone(model):
    videos = {"A": _video(0, 10), "B": _video(1, 5), "C": _video(2, 5)}
    joins = {"A": 0, "B": 3, "C": 5}  # B runs at A's frames 3..7, C at A's frames 5..9
    rec = MultiStreamRecognizer(model)
    got = {k: [] for k in videos}
    order = random.Random(0)
    for tick in range(10):
        batch = []
        for k, frames in videos.items():
            i = tick - joins[k]
            if i == 0:
                rec.open(k)
            if 0 <= i < len(frames):
                batch.append(StreamFrame(k, frames[i], i, i / 25))
            elif i == len(frames):
                rec.close(k)
        order.shuffle(batch)  # matched by id, never by position
        for k, pred in rec.step(batch).items():
            assert pred.stream == k and pred.batch == len(batch)
            got[k].append(pred.probs)
    assert set(rec.streams) == {"A", "C"}  # B closed after its last frame; A and C still open
    for k, frames in videos.items():
        probs = torch.stack(got[k])
        torch.testing.assert_close(probs, _alone(model, frames), atol=1e-5, rtol=0)
        torch.testing.assert_close(probs, _forward_video(model, rec, frames), atol=1e-5, rtol=1e-4)


def test_the_one_stream_recognizer_is_the_multi_stream_one(model):
    rec = Recognizer(model)
    assert rec.multi.streams.keys() == {Recognizer.STREAM}
    rec.reset()  # a new video: zero state again
    assert rec.multi.streams[Recognizer.STREAM].terms is None


def test_state_is_freed_at_close_and_after_the_idle_timeout(model):
    now = [100.0]
    rec = MultiStreamRecognizer(model, idle_timeout=5.0, clock=lambda: now[0])
    for k in ("a", "b", "c"):
        rec.open(k)
    rec.step([StreamFrame("a", _video(0, 1)[0], 0, 0.0), StreamFrame("b", _video(1, 1)[0], 0, 0.0)])
    assert [len(rec.streams[k].terms) for k in ("a", "b")] == [2, 2]  # one term per skip block
    assert rec.close("b") and not rec.close("b")
    now[0] = 103.0
    rec.touch("c")
    now[0] = 106.0  # a: idle 6 s, c: 3 s
    assert rec.expire() == ["a"] and set(rec.streams) == {"c"}
    with pytest.raises(KeyError, match="'a'"):
        rec.step([StreamFrame("a", _video(0, 1)[0], 1, 0.04)])


def test_one_id_cannot_be_opened_twice_or_stepped_twice(model):
    rec = MultiStreamRecognizer(model)
    rec.open("s")
    with pytest.raises(KeyError, match="already open"):
        rec.open("s")
    frame = _video(0, 1)[0]
    with pytest.raises(ValueError, match="one frame per stream"):
        rec.step([StreamFrame("s", frame, 0, 0.0), StreamFrame("s", frame, 1, 0.04)])


def test_state_bytes_count_the_temporal_terms(model):
    rec = MultiStreamRecognizer(model)
    shapes = model.term_shapes(SIZE)
    assert rec.state_bytes == sum(4 * int(np.prod(s)) for s in shapes) > 0

"""Pure sampling rules: no video needed."""

import numpy as np
import pytest

from rrn.data.sampling import eval_chunks, every_kth, select_by_time, train_chunk


def test_train_chunk_is_consecutive_and_covers_every_start():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(500):
        idx = train_chunk(10, 3, rng)
        assert len(idx) == 3 and idx == tuple(range(idx[0], idx[0] + 3))
        starts.add(idx[0])
    assert starts == set(range(8))  # 0..N-T, uniformly reachable


def test_train_chunk_same_rng_same_chunk():
    a = train_chunk(100, 4, np.random.default_rng((1, 2, 3)))
    b = train_chunk(100, 4, np.random.default_rng((1, 2, 3)))
    assert a == b


@pytest.mark.parametrize(
    "n,t,expected", [(2, 3, (0, 0, 1)), (1, 4, (0, 0, 0, 0)), (3, 3, (0, 1, 2))]
)
def test_short_video_pads_first_frame_at_front(n, t, expected):
    assert train_chunk(n, t, np.random.default_rng(0)) == expected
    assert eval_chunks(n, t) == [expected]


def test_eval_chunks_non_overlapping_drop_tail():
    assert eval_chunks(7, 3) == [(0, 1, 2), (3, 4, 5)]  # M = 7 // 3; frame 6 not covered
    assert eval_chunks(6, 2) == [(0, 1), (2, 3), (4, 5)]
    assert eval_chunks(5, 1) == [(0,), (1,), (2,), (3,), (4,)]


def test_eval_chunks_with_stride():
    assert eval_chunks(5, 3, stride=1) == [(0, 1, 2), (1, 2, 3), (2, 3, 4)]
    assert eval_chunks(9, 2, stride=4) == [(0, 1), (4, 5)]


@pytest.mark.parametrize(
    "fn",
    [
        lambda: train_chunk(0, 2, np.random.default_rng(0)),
        lambda: eval_chunks(0, 2),
        lambda: eval_chunks(5, 0),
        lambda: eval_chunks(5, 2, stride=0),
    ],
)
def test_invalid_inputs_raise(fn):
    with pytest.raises(ValueError):
        fn()


def test_every_kth():
    assert every_kth(25, 10) == (0, 10, 20)
    assert every_kth(3, 1) == (0, 1, 2)


def test_select_by_time_constant_rate():
    ts = [i / 25 for i in range(50)]  # 2 s at 25 fps
    assert select_by_time(ts, 5) == tuple(range(0, 50, 5))


def test_select_by_time_variable_rate_samples_evenly_in_time():
    # 0..1 s dense (100 fps), then a 0.5 s gap, then sparse frames every 0.25 s.
    ts = [i / 100 for i in range(100)] + [1.5, 1.75, 2.0]
    kept = select_by_time(ts, 4)  # targets 0, .25, .5, .75, 1.0 (gap -> 1.5), 1.75, 2.0
    assert [ts[i] for i in kept] == [0.0, 0.25, 0.5, 0.75, 1.5, 1.75, 2.0]
    assert select_by_time(ts, 1000) == tuple(range(len(ts)))  # never keeps a frame twice


def test_frame_selector_is_the_decoders_rule_frame_by_frame():
    from rrn.data.sampling import FrameSelector, Sampling

    every = FrameSelector(Sampling(sample_every=3))
    assert tuple(i for i in range(10) if every.keep(i, None)) == every_kth(10, 3)
    ts = [0.0, 0.1, 0.2, 0.5, 0.6, 0.7, 1.5, 1.6]
    by_time = FrameSelector(Sampling(sample_every=3, fps=4))  # fps wins over sample_every
    assert tuple(i for i, t in enumerate(ts) if by_time.keep(i, t)) == select_by_time(ts, 4)
    untimed = FrameSelector(Sampling(fps=5), base_rate=20)  # no timestamps: index / rate
    assert tuple(i for i in range(12) if untimed.keep(i, None)) == (0, 4, 8)

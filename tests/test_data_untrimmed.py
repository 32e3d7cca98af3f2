"""Training chunks from inside untrimmed videos (rrn.data.untrimmed, the sampling rules it uses):
each chunk ends at a drawn frame and is labelled by that last frame, half-open at interval edges,
multi-hot where classes overlap, never on an ambiguous frame; the background fraction is
honoured; chunks per video scale with its length; every draw is a pure function of (seed, epoch,
index)."""

import math

import numpy as np
import pytest
import torch

from rrn.data.datasets import SkippedVideo, collate_chunks
from rrn.data.decode import VideoDecodeError
from rrn.data.sampling import Timeline, chunk_ending_at, chunks_for, is_background_item
from rrn.data.splits import VideoRecord
from rrn.data.untrimmed import UntrimmedChunkDataset, plan_video
from rrn.detection.annotations import AMBIGUOUS_LABEL, Interval, VideoAnnotations

K = 4  # Background, Diving, CliffDiving, Run


# ---------------------------------------------------------------------------- pure rules
def test_a_chunk_ends_at_its_frame_and_repeats_the_first_frame_near_the_start():
    assert chunk_ending_at(9, 3) == (7, 8, 9)
    assert chunk_ending_at(1, 3) == (0, 0, 1) and chunk_ending_at(0, 3) == (0, 0, 0)
    assert chunk_ending_at(5, 1) == (5,)
    with pytest.raises(ValueError, match="context"):
        chunk_ending_at(3, 0)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1 / 3, 0.9, 1.0])
def test_exactly_floor_n_f_of_the_first_n_items_are_background_items(fraction):
    flags = [is_background_item(i, fraction) for i in range(300)]
    for n in (1, 7, 50, 299, 300):
        assert sum(flags[:n]) == math.floor(n * fraction + 1e-9)
    gaps = np.diff(np.flatnonzero(flags))  # evenly spread: gaps differ by at most one
    assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1


def test_chunks_per_video_scale_with_its_length():
    assert [chunks_for(s, 2.0) for s in (0.5, 2.0, 2.1, 60.0)] == [1, 1, 2, 30]
    assert chunks_for(60.0, 2.0, chunks_per_video=3) == 90


def test_frame_times_are_one_division_and_meet_the_annotations_decimals():
    every_6th = Timeline(rate=24.0, step=6, frames=5)  # THUMOS'14's 4 frames/s at 24 frames/s
    assert every_6th.times().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    ntsc = Timeline(rate=30000 / 1001, step=3, frames=4)
    assert ntsc.times().tolist() == [(j * 3) / (30000 / 1001) for j in range(4)]
    assert Timeline(25.0, 1, 40).times()[7] == 0.28 == float("0.28")  # frame 7 at 25 frames/s
    assert Timeline(25.0, 2, 10).seconds == 0.8 and len(Timeline(25.0, 2, 10).times(3)) == 3


# ---------------------------------------------------------------------------- the dataset
class Frames:
    """A frame source: video ``i`` has ``n`` frames whose pixels are their own index."""

    cache = None

    def __init__(self, lengths: dict[str, int], broken=()):
        self.lengths, self.broken, self.calls = lengths, set(broken), 0

    def __call__(self, path):
        self.calls += 1
        if path.name in self.broken:
            raise VideoDecodeError(path, "corrupt")
        n = self.lengths[path.name]
        return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3))


class FrameIds:
    """A transform that keeps each frame's index, so a test reads which frames a chunk holds."""

    train = True

    def __call__(self, frames, rng):
        return torch.from_numpy(np.array(frames[:, 0, 0, 0], dtype=np.int64))  # (T,)


def record(name, intervals=(), ambiguous=()):
    annotation = VideoAnnotations(
        name,
        "train",
        tuple(Interval(s, e, k, f"{name}:{i}") for i, (s, e, k) in enumerate(intervals)),
        tuple(Interval(s, e, AMBIGUOUS_LABEL, f"amb:{i}") for i, (s, e) in enumerate(ambiguous)),
    )
    return VideoRecord(_Path(name), -1, name, annotation=annotation)


class _Path(str):
    """A path-like name without a file (the frame source is fake)."""

    @property
    def name(self):
        return str(self)


def dataset(records, lengths, *, context=2, rate=4.0, **kw):
    timelines = [Timeline(rate, 1, lengths[r.video_id]) for r in records]
    return UntrimmedChunkDataset(
        records,
        source=Frames(lengths),
        transform=FrameIds(),
        context=context,
        num_classes=K,
        timelines=timelines,
        **kw,
    )


def items(ds, epoch=0):
    ds.set_epoch(epoch)
    return [ds[i] for i in range(len(ds))]


def test_every_chunk_ends_at_the_frame_whose_labels_are_its_target():
    # 4 frames/s, 40 frames = 10 s: Diving [2, 6) s = frames 8..23, CliffDiving [3, 4) inside it,
    # Run [6, 7) meets Diving's end; the rest Background
    rec = record("a", [(2.0, 6.0, 1), (3.0, 4.0, 2), (6.0, 7.0, 3)])
    ds = dataset([rec], {"a": 40}, context=3, background_fraction=None, seconds_per_chunk=0.1)
    assert len(ds) == 100  # 10 s at one chunk per 0.1 s
    seen = {}
    for epoch in range(5):  # 500 draws: every one of the 40 frames is drawn
        for item in items(ds, epoch):
            last = item["frame"]
            assert item["clip"].tolist() == [max(0, last - 2), max(0, last - 1), last]
            assert seen.setdefault(last, item["target"].tolist()) == item["target"].tolist()
            assert item["label"] == int(np.flatnonzero(item["target"])[0])
    assert sorted(seen) == list(range(40))
    want = {
        7: [1, 0, 0, 0],  # 1.75 s: before Diving
        8: [0, 1, 0, 0],  # 2.0 s: Diving's start belongs to it (half-open [start, end))
        12: [0, 1, 1, 0],  # 3.0 s: CliffDiving inside Diving: both (multi-hot)
        15: [0, 1, 1, 0],
        16: [0, 1, 0, 0],  # 4.0 s: CliffDiving's end does not
        23: [0, 1, 0, 0],
        24: [0, 0, 0, 1],  # 6.0 s: Diving has ended where Run starts: never both
        28: [1, 0, 0, 0],  # 7.0 s: Run's end is Background
    }
    for frame, target in want.items():
        assert seen[frame] == target, frame
    assert sum(t[2] for t in seen.values()) == 4  # CliffDiving: frames 12..15


def test_ambiguous_frames_are_never_a_target_but_may_be_input():
    rec = record("a", [(1.0, 3.0, 1)], ambiguous=[(0.5, 1.5), (4.0, 10.0)])
    ds = dataset([rec], {"a": 40}, context=4, background_fraction=None, seconds_per_chunk=0.05)
    lasts = [it["frame"] for it in items(ds)]
    ignored = set(range(2, 6)) | set(range(16, 40))  # [0.5, 1.5) s and [4, 10) s at 4/s
    assert not ignored & set(lasts)
    assert set(lasts) == set(range(40)) - ignored  # every other frame is drawn
    assert any(set(chunk_ending_at(f, 4)) & ignored for f in lasts)  # as input, they appear


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_the_background_fraction_is_honoured_exactly(fraction):
    # 80% of the frames are Background; the setting keeps chunks to its share
    recs = [record("a", [(0.0, 2.0, 1)]), record("b", [(8.0, 10.0, 3)])]
    ds = dataset(recs, {"a": 40, "b": 40}, background_fraction=fraction, seconds_per_chunk=0.1)
    background = [it["target"][0].item() == 1 for it in items(ds)]
    assert len(background) == 200 and sum(background) == math.floor(200 * fraction)
    none = dataset(recs, {"a": 40, "b": 40}, background_fraction=None, seconds_per_chunk=0.1)
    share = np.mean([it["target"][0].item() for it in items(none)])
    assert 0.7 < share < 0.9  # as the frames come: Background swamps the batches


def test_the_fraction_never_raises_backgrounds_share():
    # 20% of the frames are Background: asking for 50% keeps its 20% (the frames' share)
    rec = record("a", [(0.0, 8.0, 1)])
    ds = dataset([rec], {"a": 40}, background_fraction=0.5, seconds_per_chunk=0.1)
    assert ds.background_fraction == pytest.approx(0.2)
    background = sum(it["target"][0].item() for it in items(ds))
    assert background == math.floor(100 * 0.2)


def test_a_video_without_frames_of_the_kind_asked_gives_the_other_kind():
    ds = dataset(
        [record("bg"), record("act", [(0.0, 10.0, 2)])],
        {"bg": 40, "act": 40},
        background_fraction=0.5,
        seconds_per_chunk=1.0,
    )
    by_video = {}
    for it in items(ds):
        by_video.setdefault(it["video_index"], set()).add(tuple(it["target"].tolist()))
    assert by_video == {0: {(1.0, 0.0, 0.0, 0.0)}, 1: {(0.0, 0.0, 1.0, 0.0)}}


def test_chunks_per_video_follow_its_length_and_a_fully_ambiguous_video_gives_none():
    recs = [record("short"), record("long"), record("amb", ambiguous=[(0.0, 100.0)])]
    ds = dataset(recs, {"short": 8, "long": 240, "amb": 40}, seconds_per_chunk=2.0)
    assert [p.chunks for p in ds.plans] == [1, 30, 0]  # 2 s, 60 s, nothing to train on
    assert len(ds) == 31 and ds.video_index(0) == 0 and ds.video_index(30) == 1
    assert {it["video_index"] for it in items(ds)} == {0, 1}
    doubled = dataset(recs, {"short": 8, "long": 240, "amb": 40}, chunks_per_video=2)
    assert [p.chunks for p in doubled.plans] == [2 * 2, 2 * 60, 0]


def test_draws_are_a_pure_function_of_seed_epoch_and_index():
    recs = [record("a", [(1.0, 5.0, 1)]), record("b", [(2.0, 3.0, 2)])]
    lengths = {"a": 40, "b": 40}

    def draws(seed, epoch, order):
        ds = dataset(recs, lengths, seed=seed)
        ds.set_epoch(epoch)
        return {i: (ds[i]["frame"], ds[i]["video_index"]) for i in order}

    forward = draws(0, 1, range(20))
    assert draws(0, 1, reversed(range(20))) == forward  # any order, any worker
    assert draws(0, 2, range(20)) != forward and draws(1, 1, range(20)) != forward


def test_an_unreadable_video_is_skipped(logs_warning):
    recs = [record("a", [(0.0, 5.0, 1)]), record("bad", [(0.0, 5.0, 1)])]
    ds = dataset(recs, {"a": 40, "bad": 40})
    ds.source = Frames({"a": 40, "bad": 40}, broken={"bad"})
    with logs_warning("skipping video bad"):
        got = ds[len(ds) - 1]
    assert isinstance(got, SkippedVideo) and got.video_id == "bad"
    batch = collate_chunks([ds[0], got, ds[1]])
    assert batch["clip"].shape == (2, 2) and batch["target"].shape == (2, K)
    assert batch["skipped"] == [1]


def test_the_plan_labels_the_frames_the_header_announces():
    rec = record("a", [(1.0, 2.0, 1)], ambiguous=[(3.0, 4.0)])
    plan = plan_video(rec, Timeline(4.0, 1, 20), K, seconds_per_chunk=1.0)
    # 5 s at 4/s: 4 action frames, 4 ambiguous, 12 Background
    assert (plan.chunks, plan.background, plan.action) == (5, 12, 4)
    assert plan_video(rec, None, K, seconds_per_chunk=1.0).chunks == 0

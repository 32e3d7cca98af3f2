"""The synthetic dataset: layout, determinism, and that only temporal order tells the class."""

import numpy as np
import pytest

from rrn.data.decode import decode_video
from rrn.data.sampling import Sampling
from rrn.data.splits import load_split
from rrn.data.synth import class_names, make_synthetic_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), classes=4, videos_per_class=16, frames=12, size=32, seed=1
    )


def test_layout_and_split(synth):
    s = load_split("ucf101", synth, synth, 1)
    assert s.classes == ["MoveRight", "MoveUp", "MoveLeft", "MoveDown"]
    assert (
        len(s.train) == 4 * 12 and len(s.test) == 4 * 4
    )  # 2 clips a group: g01-g02 test, g03-g08 train
    assert (synth / "MoveUp" / "v_MoveUp_g08_c02.avi").is_file()
    groups = lambda recs: {r.video_id.split("_g")[1][:2] for r in recs}  # noqa: E731
    assert groups(s.test) == {"01", "02"} and groups(s.train) == {f"{g:02d}" for g in range(3, 9)}
    assert (synth / "trainlist01.txt").read_bytes().endswith(b"\r\n")
    frames = decode_video(s.train[0].path, Sampling(sample_every=1))
    assert frames.shape == (12, 32, 32, 3)


def test_deterministic_per_seed(synth, tmp_path):
    again = make_synthetic_dataset(
        tmp_path / "a", classes=4, videos_per_class=16, frames=12, size=32, seed=1
    )
    other = make_synthetic_dataset(
        tmp_path / "b", classes=4, videos_per_class=16, frames=12, size=32, seed=2
    )
    rel = "MoveLeft/v_MoveLeft_g04_c02.avi"
    assert (again / rel).read_bytes() == (synth / rel).read_bytes()
    assert (other / rel).read_bytes() != (synth / rel).read_bytes()
    assert (again / "trainlist01.txt").read_bytes() == (synth / "trainlist01.txt").read_bytes()


def test_class_names():
    assert class_names(2) == ["MoveRight", "MoveLeft"]
    assert class_names(8)[:3] == ["Move000deg", "Move045deg", "Move090deg"]
    with pytest.raises(ValueError, match="--videos-per-class must be >= 2"):
        make_synthetic_dataset("unused", videos_per_class=1)


def motion_direction(frames):
    """Dominant displacement between consecutive frames (phase correlation on the torus)."""
    x = frames.astype(np.float32).mean(-1)
    bg = np.median(x, axis=0)
    m = np.abs(x - bg) > 20  # the objects
    size = x.shape[1]
    acc = np.zeros((size, size))
    for a, b in zip(m[:-1], m[1:]):
        acc += np.real(np.fft.ifft2(np.fft.fft2(b) * np.conj(np.fft.fft2(a))))
    dy, dx = np.unravel_index(np.argmax(acc), acc.shape)
    dy, dx = (dy + size // 2) % size - size // 2, (dx + size // 2) % size - size // 2
    return round((np.degrees(np.arctan2(-dy, dx)) % 360) / 90) % 4  # class index: R, U, L, D


def test_single_frames_carry_no_class_but_motion_does(synth):
    s = load_split("ucf101", synth, synth, 1)

    def feats(recs):
        out = []
        for r in recs:
            v = decode_video(r.path, Sampling(sample_every=1))
            out.append((v, r.label))
        return out

    train, test = feats(s.train), feats(s.test)
    # Per frame: nearest class mean of 8x8 thumbnails (any single-frame statistic) ~ chance.
    thumb = lambda f: f.reshape(8, 4, 8, 4, 3).mean((1, 3)).ravel()  # noqa: E731
    means = np.stack(
        [np.mean([thumb(f) for v, y in train if y == k for f in v], 0) for k in range(4)]
    )
    hits = [np.argmin(((means - thumb(f)) ** 2).sum(1)) == y for v, y in test for f in v]
    assert np.mean(hits) < 0.45, np.mean(hits)  # chance = 0.25
    # Frame pairs: the displacement tells the class every time.
    assert [motion_direction(v) for v, _ in test] == [y for _, y in test]


# ---------------------------------------------------------------------------- untrimmed videos
@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("thumos"),
        classes=4,
        videos_per_class=4,
        frames=6,
        size=32,
        seed=3,
        layout="thumos14",
    )


def pan(a, b):
    """The whole-frame displacement from frame ``a`` to ``b`` (cross-correlation on the torus),
    as an angle in degrees (counter-clockwise, image y down)."""
    grey = [f.astype(np.float32).mean(-1) for f in (a, b)]
    fa, fb = (np.fft.fft2(g - g.mean()) for g in grey)
    corr = np.real(np.fft.ifft2(fb * np.conj(fa)))
    dy, dx = np.unravel_index(np.argmax(corr), corr.shape)
    size = a.shape[0]
    dy, dx = (dy + size // 2) % size - size // 2, (dx + size // 2) % size - size // 2
    return round(np.degrees(np.arctan2(-dy, dx)) % 360)


def off(a, b):
    """Degrees between two directions."""
    return abs((a - b + 180) % 360 - 180)


def test_untrimmed_videos_hold_every_class_between_background_that_moves_along_none(untrimmed):
    split = load_split("thumos14", untrimmed, untrimmed / "annotations")
    assert split.classes == ["Background", "MoveDown", "MoveLeft", "MoveRight", "MoveUp"]
    assert len(split.train) == 2 and len(split.test) == 2  # as the clips of one class: g01 test
    angle = {"MoveRight": 0, "MoveUp": 90, "MoveLeft": 180, "MoveDown": 270}
    for rec in split.train + split.test:
        frames = decode_video(rec.path, Sampling(sample_every=1))
        ann = rec.annotation
        assert sorted(i.label for i in ann.intervals) == [1, 2, 3, 4] and len(ann.ambiguous) == 1
        spans = sorted((round(i.start * 25), round(i.end * 25), i.label) for i in ann.intervals)
        assert all(e - s == 6 for s, e, _ in spans)  # --frames per action
        stretches = sorted(
            spans + [(round(a.start * 25), round(a.end * 25), -1) for a in ann.ambiguous]
        )
        assert all(a[1] < b[0] for a, b in zip(stretches, stretches[1:]))  # background between
        inside = {t: label for s, e, label in stretches for t in range(s, e)}
        for t in range(1, len(frames)):  # the motion into frame t is its label's
            moved = pan(frames[t - 1], frames[t])
            if inside.get(t, 0) > 0:  # a whole-pixel pan: its direction, up to JPEG's noise
                assert off(moved, angle[split.classes[inside[t]]]) < 20, (rec.video_id, t)
            elif t not in inside:  # background: about halfway between two class directions
                assert min(off(moved, a) for a in angle.values()) > 25, (rec.video_id, t)
        assert len(frames) > spans[-1][1]  # it ends on background


def test_untrimmed_layouts_are_deterministic_and_hold_the_same_intervals(untrimmed, tmp_path):
    again = make_synthetic_dataset(
        tmp_path / "a", classes=4, videos_per_class=4, frames=6, size=32, seed=3, layout="thumos14"
    )
    rel = "validation/video_validation_0000002.mp4"
    assert (again / rel).read_bytes() == (untrimmed / rel).read_bytes()
    files = sorted(p.relative_to(untrimmed) for p in (untrimmed / "annotations").rglob("*.txt"))
    assert [p.name for p in files if "Ambiguous" in p.name] == [
        "Ambiguous_test.txt",
        "Ambiguous_val.txt",
    ]
    assert all((again / p).read_bytes() == (untrimmed / p).read_bytes() for p in files)
    anet = make_synthetic_dataset(
        tmp_path / "b",
        classes=4,
        videos_per_class=4,
        frames=6,
        size=32,
        seed=3,
        layout="activitynet",
    )
    th = load_split("thumos14", untrimmed, untrimmed / "annotations")
    an = load_split("activitynet", anet, anet / "activity_net.json")
    assert an.classes == th.classes

    def strip(recs):
        return [
            ([i[:3] for i in r.annotation.intervals], [a[:2] for a in r.annotation.ambiguous])
            for r in recs
        ]

    assert strip(an.train) == strip(th.train) and strip(an.test) == strip(th.test)
    other = make_synthetic_dataset(
        tmp_path / "c", classes=4, videos_per_class=4, frames=6, size=32, seed=4, layout="thumos14"
    )
    assert (other / rel).read_bytes() != (untrimmed / rel).read_bytes()

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

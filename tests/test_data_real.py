"""Real UCF-101 / HMDB-51 files from ../shared/data (skipped in a fresh clone without it)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from cut_videos import cut_copy, faststart_copy
from rrn.data.check import check_dataset
from rrn.data.datasets import VideoChunkDataset, collate_videos
from rrn.data.decode import VideoDecodeError, decode_video, probe_video
from rrn.data.sampling import Sampling, default_short_side
from rrn.data.source import FrameSource
from rrn.data.splits import SplitError, load_split
from rrn.data.transforms import ClipTransform

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LISTS = DATA / "ucfTrainTestlist"
MINI = DATA / "ucf101_mini" / "UCF-101"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


@pytest.fixture(scope="module")
def mini_split():
    return load_split("ucf101", MINI, LISTS, 1, missing="skip")  # the mini set: most are missing


@pytest.mark.parametrize(
    "split,n_train,n_test", [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)]
)
def test_official_split_files_parse(tmp_path, split, n_train, n_test):
    # Parse against an empty root with missing="skip": every entry is counted in .missing.
    with pytest.raises(SplitError, match="train side .* is empty after skipping"):
        load_split("ucf101", tmp_path, LISTS, split, missing="skip")
    from rrn.data.formats.text import LineErrors
    from rrn.data.formats.ucf101 import _ucf101

    errors = LineErrors(collect=True)
    entries, classes = _ucf101(LISTS, split, errors)
    assert len(classes) == 101 and classes[0] == "ApplyEyeMakeup" and classes[-1] == "YoYo"
    assert sum(e.side == "train" for e in entries) == n_train
    assert sum(e.side == "test" for e in entries) == n_test
    assert all(0 <= e.label < 101 for e in entries) and not errors.messages


def test_mini_set_needs_missing_skip():
    with pytest.raises(SplitError, match=r"trainlist01\.txt:2: .*--missing skip"):
        load_split("ucf101", MINI, LISTS, 1)


def test_mini_resolves_avi_names_to_mp4(mini_split):
    rows = list(csv.DictReader(open(MINI.parent / "manifest.csv")))
    assert len(mini_split.train) + len(mini_split.test) == len(rows) == 97
    assert len(mini_split.classes) == 101
    by_id = {r.video_id: r for r in mini_split.train + mini_split.test}
    for row in rows:
        rec = by_id[row["path"].removesuffix(".mp4")]
        assert rec.path.suffix == ".mp4" and mini_split.classes[rec.label] == row["label"]
        assert (rec in mini_split.test) == (row["official_split1"] == "test")


def test_mini_decodes_frame_counts(mini_split):
    rows = {r["path"]: r for r in csv.DictReader(open(MINI.parent / "manifest.csv"))}
    for rec in mini_split.test[:3]:
        n = int(rows[rec.video_id + ".mp4"]["frames"])
        out = decode_video(rec.path, Sampling(sample_every=10, short_side=128))
        assert out.shape == (len(range(0, n, 10)), 128, 171, 3) and out.dtype == np.uint8
        assert 10 < out.mean() < 245  # a real picture, not a blank


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (DATA / "videos").glob("*/*/*") if p.suffix in (".avi", ".mp4")),
    ids=lambda p: p.name[:30],
)
def test_real_avi_and_hmdb_decode(path):
    out = decode_video(path, Sampling(sample_every=10, short_side=112))
    assert out.ndim == 4 and out.shape[-1] == 3 and min(out.shape[1:3]) == 112
    full = decode_video(path, Sampling(sample_every=1))
    assert full.shape[1:3] in ((240, 320), (256, full.shape[2])) and 306 <= full.shape[2] <= 452
    np.testing.assert_array_equal(decode_video(path, Sampling(sample_every=10))[1], full[10])


def test_real_eval_dataset(mini_split):
    source = FrameSource(Sampling(sample_every=10, short_side=default_short_side(112)))
    ds = VideoChunkDataset(
        mini_split.test[:2], source=source, transform=ClipTransform(112, train=False), context=2
    )
    batch = collate_videos([ds[0], ds[1]])
    assert batch["clips"].shape[1:] == (2, 3, 112, 112) and batch["skipped"] == []


def test_corrupt_copies_reported_not_fatal(mini_split, tmp_path):
    src = mini_split.test[0].path.read_bytes()
    (tmp_path / "trunc.mp4").write_bytes(src[: len(src) // 3])
    (tmp_path / "head.mp4").write_bytes(src[:2000])
    (tmp_path / "zero.mp4").write_bytes(b"")
    for name in ("head.mp4", "zero.mp4"):
        with pytest.raises(VideoDecodeError):
            decode_video(tmp_path / name, Sampling())
    from rrn.data.splits import DatasetSplit, VideoRecord

    recs = [VideoRecord(tmp_path / n, 0, n) for n in ("trunc.mp4", "head.mp4", "zero.mp4")]
    problems = check_dataset(DatasetSplit(["a"], recs, [mini_split.test[0]]))
    assert {p.video for p in problems} >= {"head.mp4", "zero.mp4"}


ALL_CLIPS = (
    sorted(p for p in DATA.rglob("*") if p.suffix in (".avi", ".mp4")) if DATA.is_dir() else []
)


def test_no_real_clip_is_taken_for_truncated():
    # 97 UCF-101 H.264 re-encodes (one extra leading frame), 4 Xvid AVIs, 10 HMDB-51 MP4s
    assert len(ALL_CLIPS) == 111
    wrong = {}
    for clip in ALL_CLIPS:
        try:
            probe_video(clip)  # rrn check-data --quick
            decode_video(
                clip, Sampling(sample_every=10, short_side=32)
            )  # training, caching, check-data
        except VideoDecodeError as err:
            wrong[str(clip.relative_to(DATA))] = err.reason
    assert wrong == {}


def test_cut_real_clips_are_reported_truncated(tmp_path):
    avi = cut_copy(
        DATA / "videos/ucf101_avi/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        tmp_path / "cut.avi",
        0.4,
    )
    remuxed = faststart_copy(
        MINI / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.mp4", tmp_path / "fs.mp4"
    )
    assert (
        len(decode_video(remuxed, Sampling(sample_every=1))) == 165
    )  # remuxing alone loses nothing
    mp4 = cut_copy(remuxed, tmp_path / "cut.mp4", 0.4)
    for path, decoded, total in ((avi, 61, 164), (mp4, 61, 165)):  # the 61 of 165
        with pytest.raises(
            VideoDecodeError,
            match=rf"truncated: (\d+) of {total} frames; the video "
            r"stream ends at \d\.\d\d s of the 6\.[56][06] s its header promises",
        ) as err:
            decode_video(path, Sampling())
        assert abs(int(err.value.reason.split()[1]) - decoded) <= 1  # +-1: FFmpeg's frame threads
        with pytest.raises(VideoDecodeError, match=rf"truncated: about \d+ of {total} frames"):
            probe_video(path)
    from rrn.data.splits import DatasetSplit, VideoRecord

    split = DatasetSplit(
        ["a"],
        [VideoRecord(avi, 0, "a/avi"), VideoRecord(remuxed, 0, "a/fs")],
        [VideoRecord(mp4, 0, "a/mp4")],
    )
    for decode in (True, False):
        problems = check_dataset(split, decode=decode)
        assert [p.video for p in problems] == ["a/avi", "a/mp4"]
        assert all(p.what.startswith("truncated: ") and "re-download" in p.fix for p in problems)

"""Frame cache: keys, atomic writes, resumable parallel build, failures reported."""

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from rrn.data.cache import FrameCache, build_cache
from rrn.data.cache_entries import CachedFrames
from rrn.data.decode import decode_video
from rrn.data.sampling import Sampling
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.synth import write_video


def video(path, n=12):
    frames = np.stack([np.full((24, 32, 3), 8 * i, np.uint8) for i in range(n)])
    return write_video(path, frames, codec="ffv1")


@pytest.mark.parametrize("fmt", ["npy", "jpeg"])
def test_put_get_roundtrip_reads_only_the_indexed_frames(tmp_path, fmt):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c", format=fmt)
    assert cache.get(v, Sampling(10, None, 16)) is None
    arr = np.stack(
        [np.full((16, 20, 3), 10 * i, np.uint8) for i in range(5)]
    )  # flat: JPEG keeps it
    f = cache.put(v, arr, Sampling(10, None, 16))
    assert f.suffix == {"npy": ".npy", "jpeg": ".jpgs"}[fmt]
    got = cache.get(v, Sampling(10, None, 16))
    assert isinstance(got, CachedFrames) and got.shape == (5, 16, 20, 3) and len(got) == 5
    np.testing.assert_array_equal(np.asarray(got), arr)
    np.testing.assert_array_equal(got[[3, 1]], arr[[3, 1]])
    np.testing.assert_array_equal(got[2], arr[2])
    np.testing.assert_array_equal(got[1:4], arr[1:4])
    assert [p.name for p in f.parent.iterdir()] == [f.name]  # no temporary file left behind


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("fmt", ["npy", "jpeg"])
def test_entries_honour_the_umask(tmp_path, fmt):
    # a shared cache: entries readable by group and others when the umask allows (not mkstemp's 0600)
    v = video(tmp_path / "a.avi")
    old = os.umask(0o022)
    try:
        f = FrameCache(tmp_path / "c", format=fmt).put(
            v, np.zeros((1, 16, 21, 3), np.uint8), Sampling(10, None, 16)
        )
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644


def test_put_refuses_frames_that_do_not_fit_the_key(tmp_path):
    v = video(tmp_path / "a.avi")
    with pytest.raises(ValueError, match="short side 16"):
        FrameCache(tmp_path / "c").put(v, np.zeros((2, 4, 5, 3), np.uint8), Sampling(10, None, 16))


def test_key_changes_with_everything_that_changes_frames(tmp_path):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c")
    keys = {
        cache.key(v, Sampling(10, None, 16)),
        cache.key(v, Sampling(5, None, 16)),
        cache.key(v, Sampling(10, 2.0, 16)),
        cache.key(v, Sampling(10, None, 32)),
    }
    assert len(keys) == 4
    before = cache.key(v, Sampling(10, None, 16))
    st = os.stat(v)
    os.utime(v, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "edited" video
    assert cache.key(v, Sampling(10, None, 16)) != before
    assert cache.key(tmp_path / "." / "a.avi", Sampling(10, None, 16)) == cache.key(
        v, Sampling(10, None, 16)
    )


def test_key_is_the_same_sha1_as_before_sampling_became_one_value(tmp_path):
    # caches built before Sampling existed must keep their keys (no silent re-decode of a dataset)
    import hashlib

    v = video(tmp_path / "a.avi")
    st = os.stat(v)
    for sampling, parts in (
        (Sampling(10, None, 16), "10|None|16"),
        (Sampling(10, 5, 128), "10|5.0|128"),
    ):
        ident = f"v1|{v.resolve()}|{st.st_size}|{st.st_mtime_ns}|{parts}"
        assert (
            FrameCache(tmp_path / "c").key(v, sampling) == hashlib.sha1(ident.encode()).hexdigest()
        )


def test_key_treats_an_integer_fps_like_the_same_float(tmp_path):
    # rrn cache --fps 5 passes 5.0; rrn train --fps 5 (or `fps: 5` in YAML) keeps the int 5
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c")
    assert cache.key(v, Sampling(10, 5, 16)) == cache.key(v, Sampling(10, 5.0, 16))


def _hammer(args):
    root, path, value = args
    for _ in range(20):
        FrameCache(root, format="npy").put(
            path, np.full((50, 32, 32, 3), value, np.uint8), Sampling(10, None, 32)
        )
    return True


def test_concurrent_writers_never_expose_partial_files(tmp_path):
    v = video(tmp_path / "a.avi")
    root = tmp_path / "c"
    # spawn, not fork: forking a process that has started torch's thread pools can deadlock
    with mp.get_context("spawn").Pool(3) as pool:
        result = pool.map_async(_hammer, [(root, v, 7)] * 3)
        reads = 0
        deadline = time.monotonic() + 120
        while not result.ready() and time.monotonic() < deadline:
            got = FrameCache(root).get(v, Sampling(10, None, 32))
            if got is not None:
                got = np.asarray(got)
                assert got.shape == (50, 32, 32, 3) and int(got.min()) == int(got.max()) == 7
                reads += 1
        assert all(result.get(timeout=30))
    assert not list(root.rglob("*.tmp"))


@pytest.mark.parametrize("workers", [1, 2])
def test_build_cache_reports_and_resumes(tmp_path, workers):
    recs = [VideoRecord(video(tmp_path / f"v{i}.avi", n=12 + i), 0, f"v{i}") for i in range(3)]
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"")
    recs.append(VideoRecord(bad, 0, "bad"))
    cache_dir = tmp_path / "cache"
    source = FrameSource(Sampling(sample_every=5, short_side=16), cache_dir=cache_dir)
    rep = build_cache(recs, source, workers=workers, progress=False)
    assert rep.videos == 3 and rep.already_cached == 0
    assert rep.frames == 3 + 3 + 3  # 12, 13, 14 frames every 5th -> 3 each
    files = sorted(cache_dir.rglob("*.jpgs"))  # the default format
    assert len(files) == 3 and rep.bytes == sum(f.stat().st_size for f in files)  # bytes on disk
    assert rep.failures == [("bad", "file is empty (0 bytes)")]
    assert "1 failed" in rep.summary() and "FAILED bad" in rep.summary()
    got = FrameCache(cache_dir).get(recs[1].path, Sampling(5, None, 16))
    assert [int(round(f.mean() / 8)) for f in got] == [0, 5, 10]
    again = build_cache(recs, source, workers=workers, progress=False)
    assert again.videos == 3 and again.already_cached == 3 and again.frames == 9


def test_cache_is_used_transparently_once_built(tmp_path):
    from rrn.data.cache import default_cache_dir, resolve_cache_dir

    root = tmp_path / "data"
    root.mkdir()
    assert resolve_cache_dir(None, root) is None  # nothing built: decode directly
    assert resolve_cache_dir(tmp_path / "elsewhere", root) == tmp_path / "elsewhere"
    v = video(root / "a.avi")
    source = FrameSource(
        Sampling(sample_every=10, short_side=16), cache_dir=default_cache_dir(root)
    )
    build_cache([VideoRecord(v, 0, "a")], source, progress=False)
    assert resolve_cache_dir(None, root) == default_cache_dir(root)
    # what training then reads is the cached frames
    cached = FrameCache(resolve_cache_dir(None, root)).get(v, Sampling(10, None, 16))
    assert cached is not None and cached.shape == (2, 16, 21, 3)  # frames 0 and 10, short side 16


def test_build_cache_needs_a_source_with_a_cache(tmp_path):
    v = video(tmp_path / "a.avi")
    with pytest.raises(ValueError, match="cache folder"):
        build_cache([VideoRecord(v, 0, "a")], FrameSource(Sampling(short_side=16)), progress=False)


def test_rrn_cache_defaults_build_what_rrn_train_defaults_read():
    from rrn.cli import build_parser
    from rrn.commands.flags import flag_overrides
    from rrn.config import DataConfig, resolve_config

    parser = build_parser()
    d = DataConfig()
    # no sampling flag given: rrn cache resolves exactly DataConfig's (= rrn train's) sampling
    args = parser.parse_args(["cache", "--data-root", "x"])
    cfg = resolve_config([("flags", flag_overrides(args))])
    assert cfg.data.sampling() == d.sampling()
    assert cfg.data.data_root == "x"
    # and every sampling flag is there, under the same name rrn train reads
    args = parser.parse_args(
        [
            "cache",
            "--data-root",
            "x",
            "--sample-every",
            "5",
            "--fps",
            "5",
            "--frame-size",
            "112",
            "--short-side",
            "100",
        ]
    )
    got = resolve_config([("flags", flag_overrides(args))]).data.sampling()
    train = parser.parse_args(
        [
            "train",
            "--data-root",
            "x",
            "--sample-every",
            "5",
            "--fps",
            "5",
            "--frame-size",
            "112",
            "--short-side",
            "100",
        ]
    )
    assert got == resolve_config([("flags", flag_overrides(train))]).data.sampling()
    assert got == DataConfig(sample_every=5, fps=5, frame_size=112, short_side=100).sampling()


# ------------------------------------------------------------------ both formats, one frame set
def natural_video(path, n=12, size=(72, 96)):
    """Smooth colour fields with a moving soft disk: the statistics of camera frames, not of noise."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(40, 210, (1, 3, 6, 8)).astype(np.float32))
    field = (
        F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[0]
        .permute(1, 2, 0)
        .numpy()
    )
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    frames = []
    for t in range(n):
        disk = np.clip(12 - np.hypot(yy - 36, xx - 20 - 4 * t), 0, 1)[..., None]
        frames.append(np.clip(field * (1 - disk) + 230 * disk, 0, 255).astype(np.uint8))
    return write_video(path, np.stack(frames), codec="ffv1")


def cached_both_ways(v, sampling, tmp_path):
    got, size = {}, {}
    for fmt in ("npy", "jpeg"):
        source = FrameSource(sampling, cache_dir=tmp_path / fmt, cache_format=fmt, cache_quality=90)
        source.ensure_cached(v)  # decode and write
        cached, was_cached = source.ensure_cached(v)
        assert was_cached
        got[fmt] = np.asarray(cached)
        size[fmt] = source.cache.find(v, sampling).stat().st_size
    return got, size


def test_jpeg_and_npy_entries_give_the_same_frames_up_to_jpegs_loss(tmp_path):
    v = natural_video(tmp_path / "a.avi")
    got, size = cached_both_ways(v, Sampling(sample_every=2, short_side=48), tmp_path)
    assert got["npy"].shape == got["jpeg"].shape == (6, 48, 64, 3)
    np.testing.assert_array_equal(
        got["npy"], decode_video(v, Sampling(sample_every=2, short_side=48))
    )  # lossless
    diff = np.abs(got["npy"].astype(int) - got["jpeg"])
    assert 0 < diff.mean() < 3  # grey levels at quality 90; JPEG, not a second copy of the .npy
    assert size["jpeg"] * 3 < size["npy"]


def test_a_cold_and_a_warm_jpeg_cache_serve_the_same_frames(tmp_path):
    # what a run sees must not depend on whether the cache was cold (a resumed run re-reads the
    # videos an interrupted one had just cached, and must see what an uninterrupted run saw)
    v = natural_video(tmp_path / "a.avi")
    sampling = Sampling(sample_every=3, short_side=48)
    source = FrameSource(sampling, cache_dir=tmp_path / "c", cache_format="jpeg")
    first, was_cached = source.ensure_cached(v)
    assert not was_cached
    second, was_cached = source.ensure_cached(v)
    assert was_cached
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert not np.array_equal(
        np.asarray(first), decode_video(v, Sampling(sample_every=3, short_side=48))
    )  # JPEG's


UCF_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucf101_mini" / "UCF-101"


@pytest.mark.skipif(not UCF_MINI.is_dir(), reason="real UCF-101 clips (../shared/data) absent")
def test_jpeg_loss_on_a_real_clip_at_short_side_128(tmp_path):
    v = sorted(UCF_MINI.glob("*/*.mp4"))[0]
    got, size = cached_both_ways(v, Sampling(sample_every=10, short_side=128), tmp_path)
    assert np.abs(got["npy"].astype(int) - got["jpeg"]).mean() < 3
    assert size["jpeg"] * 5 < size["npy"]


def test_a_cache_reads_entries_of_either_format(tmp_path):
    # a .npy cache built before JPEG existed is read by a cache that now writes JPEG
    v = video(tmp_path / "a.avi")
    sampling = Sampling(5, None, 16)
    arr = np.stack([np.full((16, 21, 3), 30 * i, np.uint8) for i in range(3)])
    FrameCache(tmp_path / "c", format="npy").put(v, arr, sampling)
    jpeg_cache = FrameCache(tmp_path / "c", format="jpeg")
    assert jpeg_cache.find(v, sampling).suffix == ".npy"
    np.testing.assert_array_equal(np.asarray(jpeg_cache.get(v, sampling)), arr)
    # both formats of a video share its key: only the suffix differs
    assert jpeg_cache.file(v, sampling).stem == jpeg_cache.file(v, sampling, "npy").stem


def test_a_frame_folders_key_changes_when_its_frames_change(tmp_path):
    from rrn.data.frame_folder import write_frame_folder

    folder = write_frame_folder(tmp_path / "f", np.zeros((4, 16, 16, 3), np.uint8))
    cache = FrameCache(tmp_path / "c")
    keys = [cache.key(folder, Sampling(1, None, 16))]
    (folder / "img_00002.jpg").write_bytes(
        (folder / "img_00001.jpg").read_bytes() + b"\0"
    )  # rewritten
    st = os.stat(folder / "img_00002.jpg")
    os.utime(folder / "img_00002.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    keys.append(cache.key(folder, Sampling(1, None, 16)))
    write_frame_folder(tmp_path / "g", np.zeros((1, 16, 16, 3), np.uint8))
    os.replace(tmp_path / "g" / "img_00001.jpg", folder / "img_00005.jpg")  # a frame added
    keys.append(cache.key(folder, Sampling(1, None, 16)))
    assert len(set(keys)) == 3
    assert cache.key(folder, Sampling(1, None, 16)) == keys[-1]  # and stable otherwise


# ----------------------------- entries that do not hold what their key promises (issue 11, 3.2)
SAMPLING = Sampling(sample_every=1, short_side=16)  # video(): 12 flat frames 0, 8, 16, ... at 24x32


def _grey(frames):
    return [int(round(f.mean() / 8)) for f in np.asarray(frames)]


def _foreign_npy(cache, v, array):
    """What the probe did: a valid .npy at the entry's path, not written by the cache."""
    f = cache.file(v, SAMPLING, "npy")
    f.parent.mkdir(parents=True, exist_ok=True)
    np.save(f, array)
    return f


def test_an_entry_with_too_few_frames_is_decoded_again_and_not_counted_as_done(
    tmp_path, logs_warning
):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c", format="npy")
    truth = FrameSource(SAMPLING)(v)
    assert len(truth) == 12
    _foreign_npy(cache, v, np.asarray(truth)[:7])  # valid header, wrong shape (7 of 12 frames)
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="npy")
    with logs_warning(r"holds 7 frames of 16x21; .* promises 12 of 16x21"):
        frames, was_cached = source.ensure_cached(v)
    assert not was_cached and _grey(frames) == list(range(12))
    got = cache.get(v, SAMPLING)  # rewritten: now the right entry, with checksums
    assert got is not None and _grey(got) == list(range(12)) and not got.legacy
    # rrn cache does not count such an entry as done either
    _foreign_npy(cache, v, np.asarray(truth)[:7])
    with logs_warning("holds 7 frames"):
        report = build_cache([VideoRecord(v, 0, "a")], source, progress=False)
    assert report.videos == 1 and report.already_cached == 0 and report.frames == 12


def test_evaluation_sees_every_chunk_after_a_short_entry(tmp_path, logs_warning):
    # the probe: 57 eval chunks instead of 64 -- here 3 chunks of T=4 instead of 4
    from rrn.data import ClipTransform, VideoChunkDataset

    v = video(tmp_path / "a.avi", n=16)
    cache = FrameCache(tmp_path / "c", format="npy")
    _foreign_npy(cache, v, np.asarray(FrameSource(SAMPLING)(v))[:12])
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c")
    ds = VideoChunkDataset(
        [VideoRecord(v, 0, "a")], source=source, transform=ClipTransform(16, train=False), context=4
    )
    with logs_warning("holds 12 frames"):
        assert ds[0]["clips"].shape[0] == 4


def test_a_wrong_frame_size_is_decoded_again(tmp_path, logs_warning):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c", format="npy")
    _foreign_npy(cache, v, np.full((12, 16, 16, 3), 9, np.uint8))  # 16x16, the video gives 16x21
    with logs_warning("holds 12 frames of 16x16"):
        assert cache.get(v, SAMPLING) is None
    _foreign_npy(cache, v, np.full((12, 20, 30, 3), 9, np.uint8))  # not even the key's short side
    with logs_warning("frames are 20x30, its key promises short side 16"):
        assert cache.get(v, SAMPLING) is None


def _zero_data(file: Path, keep_tail: int) -> None:
    """Zero everything after the .npy header (keeping the last ``keep_tail`` bytes)."""
    raw = bytearray(file.read_bytes())
    start = np.load(file, mmap_mode="r").offset
    raw[start : len(raw) - keep_tail] = bytes(len(raw) - keep_tail - start)
    file.write_bytes(bytes(raw))


def test_zeroed_npy_data_is_detected_when_read_and_by_rrn_cache(tmp_path, logs_warning):
    v = video(tmp_path / "a.avi")
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="npy")
    source.ensure_cached(v)
    f = source.cache.find(v, SAMPLING)
    trailer = 4 * 12 + 20  # 12 CRCs, magic + N, H, W
    _zero_data(f, keep_tail=trailer)
    frames, was_cached = source.ensure_cached(v)
    assert was_cached and len(frames) == 12  # header and trailer intact: the entry opens ...
    with logs_warning(r"frame\(s\) \[3, 4\] differ from their checksum"):
        assert _grey(frames[[3, 4]]) == [3, 4]  # ... but a read is checked: decoded again
    assert _grey(source.cache.get(v, SAMPLING)) == list(range(12))  # and rewritten
    _zero_data(f, keep_tail=trailer)
    with logs_warning("differ from their checksum"):
        report = build_cache([VideoRecord(v, 0, "a")], source, progress=False)  # reads every frame
    assert report.already_cached == 0 and report.videos == 1
    assert _grey(source.cache.get(v, SAMPLING)) == list(range(12))
    _zero_data(f, keep_tail=0)  # the trailer zeroed too: the file no longer adds up
    with logs_warning("size and trailer do not match"):
        assert source.cache.get(v, SAMPLING) is None


def test_a_zeroed_entry_without_checksums_is_detected_when_read(tmp_path, logs_warning):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c", format="npy")
    _foreign_npy(cache, v, np.zeros((12, 16, 21, 3), np.uint8))  # right shape, zeroed data
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="npy")
    frames, was_cached = source.ensure_cached(v)
    assert was_cached
    with logs_warning(r"frame\(s\) \[5, 6\] are all zero"):
        assert _grey(frames[[5, 6]]) == [5, 6]
    assert not cache.get(v, SAMPLING).legacy  # rewritten with checksums


def test_a_damaged_jpeg_entry_is_detected(tmp_path, logs_warning):
    v = video(tmp_path / "a.avi")
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="jpeg")
    source.ensure_cached(v)
    f = source.cache.find(v, SAMPLING)
    raw = bytearray(f.read_bytes())
    raw[-40:-20] = bytes(20)  # inside the last frame's JPEG bytes
    f.write_bytes(bytes(raw))
    frames, _ = source.ensure_cached(v)
    assert _grey(frames[[0, 1]]) == [0, 1]  # untouched frames read without a second decode
    with logs_warning("frame 11 differs from its checksum"):
        assert _grey(frames[[10, 11]]) == [10, 11]
    f.write_bytes(bytes(raw[:-100]))  # truncated: the index no longer matches the size
    with logs_warning("its index says"):
        assert source.cache.get(v, SAMPLING) is None


def test_a_checksumless_npy_from_an_older_cache_is_still_used(tmp_path):
    # .npy entries written before checksums: same key, same file; checked against the container
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c", format="npy")
    truth = np.asarray(FrameSource(SAMPLING)(v))
    f = _foreign_npy(cache, v, truth)
    got = cache.get(v, SAMPLING)
    assert got.legacy and f.stat().st_size == 128 + truth.nbytes
    np.testing.assert_array_equal(np.asarray(got), truth)


def test_estimate_before_building(tmp_path):
    from rrn.data.cache import estimate_cache

    recs = [VideoRecord(video(tmp_path / f"v{i}.avi", n=10 + 5 * i), 0, f"v{i}") for i in range(4)]
    source = FrameSource(Sampling(sample_every=5, short_side=16), cache_dir=tmp_path / "c")
    est = estimate_cache(recs, source, probe=10, measure=2)
    assert est.videos == 4 and est.probed == 4 and est.measured == 2
    assert est.frames_per_video == (2 + 3 + 4 + 5) / 4  # ceil(n / 5) for n = 10, 15, 20, 25
    entries = sorted((tmp_path / "c").rglob("*.jpgs"))
    assert len(entries) == 2  # the two measured videos are cached already
    assert est.bytes_per_frame == sum(f.stat().st_size for f in entries) / (2 + 3)
    assert est.total_bytes == pytest.approx(4 * 3.5 * est.bytes_per_frame)
    assert est.fits and "4 videos x 3.5 frames" in est.summary()
    report = build_cache(recs, source, progress=False)
    assert report.already_cached == 2 and report.frames == 14


@pytest.mark.parametrize("fmt", ["npy", "jpeg"])
def test_an_empty_entry_is_decoded_again_and_rewritten(tmp_path, fmt, logs_warning):
    v = video(tmp_path / "a.avi")
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format=fmt)
    source.ensure_cached(v)
    source.cache.find(v, SAMPLING).write_bytes(
        b""
    )  # 0 bytes (a crash of another tool, a full disk)
    with logs_warning():
        report = build_cache([VideoRecord(v, 0, "a")], source, progress=False)
    assert report.already_cached == 0 and report.videos == 1
    assert _grey(source.cache.get(v, SAMPLING)) == list(range(12))


def test_entries_of_the_other_format_are_kept_and_said_so(tmp_path):
    v = video(tmp_path / "a.avi")
    records = [VideoRecord(v, 0, "a")]
    build_cache(
        records,
        FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="jpeg"),
        progress=False,
    )
    npy = FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="npy")
    report = build_cache(records, npy, progress=False)
    assert report.already_cached == 1 and report.other_format == 1
    text = report.summary("npy", npy.cache.root)
    assert (
        "1 of them are in the other format than npy" in text and f"remove {npy.cache.root}" in text
    )
    assert (
        "other format"
        not in build_cache(
            records,
            FrameSource(SAMPLING, cache_dir=tmp_path / "c", cache_format="jpeg"),
            progress=False,
        ).summary()
    )


def test_the_estimate_measures_the_format_it_will_write(tmp_path):
    """Entries an earlier run wrote in the other format are kept, but say nothing about the
    size of what this run writes: the estimate measures new entries in its own format."""
    from rrn.data.cache import estimate_cache

    recs = [VideoRecord(video(tmp_path / f"v{i}.avi", n=10), 0, f"v{i}") for i in range(4)]
    sampling = Sampling(sample_every=5, short_side=16)
    build_cache(
        recs[:2],
        FrameSource(sampling, cache_dir=tmp_path / "c", cache_format="jpeg"),
        progress=False,
    )  # v0, v1 as JPEG
    est = estimate_cache(
        recs,
        FrameSource(sampling, cache_dir=tmp_path / "c", cache_format="npy"),
        probe=10,
        measure=2,
    )
    npy = sorted((tmp_path / "c").rglob("*.npy"))
    assert est.format == "npy" and len(npy) == 2  # v2, v3 written as .npy and measured
    assert est.bytes_per_frame == sum(f.stat().st_size for f in npy) / (2 + 2)


def test_rrn_cache_warns_when_the_estimate_exceeds_the_free_space(
    synth, tmp_path, capsys, monkeypatch
):
    import dataclasses

    import rrn.data.cache
    from rrn.cli import main

    estimate = rrn.data.cache.estimate_cache
    monkeypatch.setattr(  # a disk with one free byte
        rrn.data.cache,
        "estimate_cache",
        lambda *a, **k: dataclasses.replace(estimate(*a, **k), free_bytes=1),
    )
    argv = ["cache", "--data-root", str(synth), "--cache-dir", str(tmp_path / "c")]
    assert main(["-q", *argv, "--workers", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("cache ") and "; 0.0 kB free there" in out  # what the command prints
    assert err == (
        "rrn cache: warning: the estimate exceeds the free space; choose another --cache-dir, "
        "--format jpeg or a smaller --short-side\n"
    )

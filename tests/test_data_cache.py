"""Frame cache: keys, atomic writes, resumable parallel build, failures reported."""

import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from rrn.data.cache import FrameCache, build_cache
from rrn.data.sampling import Sampling
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.synth import write_video


def video(path, n=12):
    frames = np.stack([np.full((24, 32, 3), 8 * i, np.uint8) for i in range(n)])
    return write_video(path, frames, codec="ffv1")


def test_put_get_roundtrip_and_mmap(tmp_path):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c")
    assert cache.get(v, Sampling(10, None, 16)) is None
    arr = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    f = cache.put(v, arr, Sampling(10, None, 16))
    got = cache.get(v, Sampling(10, None, 16))
    assert isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, arr)
    assert [p.name for p in f.parent.iterdir()] == [f.name]  # no temporary file left behind


def test_key_changes_with_everything_that_changes_frames(tmp_path):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c")
    keys = {cache.key(v, Sampling(10, None, 16)), cache.key(v, Sampling(5, None, 16)),
            cache.key(v, Sampling(10, 2.0, 16)), cache.key(v, Sampling(10, None, 32))}
    assert len(keys) == 4
    before = cache.key(v, Sampling(10, None, 16))
    st = os.stat(v)
    os.utime(v, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "edited" video
    assert cache.key(v, Sampling(10, None, 16)) != before
    assert cache.key(tmp_path / "." / "a.avi", Sampling(10, None, 16)) == cache.key(v, Sampling(10, None, 16))


def test_key_is_the_same_sha1_as_before_sampling_became_one_value(tmp_path):
    # caches built before Sampling existed must keep their keys (no silent re-decode of a dataset)
    import hashlib

    v = video(tmp_path / "a.avi")
    st = os.stat(v)
    for sampling, parts in ((Sampling(10, None, 16), "10|None|16"), (Sampling(10, 5, 128), "10|5.0|128")):
        ident = f"v1|{v.resolve()}|{st.st_size}|{st.st_mtime_ns}|{parts}"
        assert FrameCache(tmp_path / "c").key(v, sampling) == hashlib.sha1(ident.encode()).hexdigest()


def test_key_treats_an_integer_fps_like_the_same_float(tmp_path):
    # rrn cache --fps 5 passes 5.0; rrn train --fps 5 (or `fps: 5` in YAML) keeps the int 5
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "c")
    assert cache.key(v, Sampling(10, 5, 16)) == cache.key(v, Sampling(10, 5.0, 16))


def _hammer(args):
    root, path, value = args
    for _ in range(20):
        FrameCache(root).put(path, np.full((50, 32, 32, 3), value, np.uint8), Sampling(10, None, 16))
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
            got = FrameCache(root).get(v, Sampling(10, None, 16))
            if got is not None:
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
    assert rep.bytes == 9 * 16 * 21 * 3  # 24x32 -> short side 16 -> 16x21
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
    source = FrameSource(Sampling(sample_every=10, short_side=16), cache_dir=default_cache_dir(root))
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
    from rrn.config import DataConfig, flag_overrides, resolve_config

    parser = build_parser()
    d = DataConfig()
    # no sampling flag given: rrn cache resolves exactly DataConfig's (= rrn train's) sampling
    args = parser.parse_args(["cache", "--data-root", "x"])
    cfg = resolve_config([("flags", flag_overrides(args))])
    assert cfg.data.sampling() == d.sampling()
    assert cfg.data.data_root == "x"
    # and every sampling flag is there, under the same name rrn train reads
    args = parser.parse_args(["cache", "--data-root", "x", "--sample-every", "5", "--fps", "5",
                              "--frame-size", "112", "--short-side", "100"])
    got = resolve_config([("flags", flag_overrides(args))]).data.sampling()
    train = parser.parse_args(["train", "--data-root", "x", "--sample-every", "5", "--fps", "5",
                               "--frame-size", "112", "--short-side", "100"])
    assert got == resolve_config([("flags", flag_overrides(train))]).data.sampling()
    assert got == DataConfig(sample_every=5, fps=5, frame_size=112, short_side=100).sampling()

"""FrameSource (cache, else decode and fill the cache) and Sampling (the cache key and the
decoder's arguments as one value), on tiny lossless videos whose frame i is flat grey 8*i."""

import dataclasses
import os

import numpy as np
import pytest

from rrn.config import DataConfig
from rrn.data.cache import FrameCache, build_cache, default_cache_dir
from rrn.data.cache_entries import CachedFrames
from rrn.data.decode import VideoDecodeError, decode_video
from rrn.data.sampling import Sampling
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.synth import write_video

SAMPLING = Sampling(sample_every=5, short_side=16)  # 12 frames -> 0, 5, 10; 24x32 -> 16x21


def video(path, n=12, step=8):
    frames = np.stack([np.full((24, 32, 3), step * i, np.uint8) for i in range(n)])
    return write_video(path, frames, codec="ffv1")  # 25 frames/s


def grey_ids(frames, step=8):
    return [int(round(f.mean() / step)) for f in frames]


# ---------------------------------------------------------------------------------- FrameSource
def test_reads_the_cache_when_the_video_is_there(tmp_path):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "cache")
    poison = np.full((4, 16, 21, 3), 200, np.uint8)  # not what decoding gives: 3 frames 0, 5, 10
    cache.put(v, poison, SAMPLING)
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "cache")
    frames, was_cached = source.ensure_cached(v)
    assert was_cached
    np.testing.assert_array_equal(frames, poison)
    assert isinstance(frames, CachedFrames) and frames.shape == poison.shape  # read lazily
    np.testing.assert_array_equal(source(v), poison)
    # another sampling is another entry: decoded, not the poisoned one
    other = FrameSource(Sampling(sample_every=5, short_side=18), cache_dir=tmp_path / "cache")
    got, was_cached = other.ensure_cached(v)
    assert not was_cached and grey_ids(got) == [0, 5, 10] and got.shape == (3, 18, 24, 3)


def test_decodes_and_fills_the_cache_when_absent(tmp_path):
    v = video(tmp_path / "a.avi")
    cache = FrameCache(tmp_path / "cache")
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "cache")
    assert cache.get(v, SAMPLING) is None
    frames, was_cached = source.ensure_cached(v)
    assert not was_cached
    decoded = decode_video(v, Sampling(sample_every=5, short_side=16))
    assert frames.shape == (3, 16, 21, 3) and frames.dtype == np.uint8
    assert grey_ids(frames) == [0, 5, 10]
    np.testing.assert_array_equal(frames, decoded)
    np.testing.assert_array_equal(
        cache.get(v, SAMPLING), decoded
    )  # filled, under the sampling's key
    frames, was_cached = source.ensure_cached(v)
    assert was_cached
    np.testing.assert_array_equal(frames, decoded)


def test_without_a_cache_it_always_decodes_and_writes_nothing(tmp_path):
    v = video(tmp_path / "a.avi")
    source = FrameSource(SAMPLING)
    assert source.cache is None
    for _ in range(2):
        frames, was_cached = source.ensure_cached(v)
        assert not was_cached and grey_ids(frames) == [0, 5, 10]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi"]


def test_fps_sampling_is_passed_to_the_decoder(tmp_path):
    v = video(tmp_path / "a.avi", n=50, step=5)  # 2 s at 25 frames/s
    frames = FrameSource(Sampling(sample_every=10, fps=5, short_side=16))(v)
    np.testing.assert_array_equal(frames, decode_video(v, Sampling(fps=5, short_side=16)))
    # 5 frames/s of 25: every 5th frame, whatever sample_every says
    assert grey_ids(frames, step=5) == list(range(0, 50, 5))


def test_an_integer_fps_is_the_same_sampling_and_cache_entry_as_the_float(tmp_path):
    # `rrn cache --fps 5` (a float flag) and a YAML `fps: 5` (an int) must share one cache entry
    v = video(tmp_path / "a.avi")
    as_int, as_float = Sampling(fps=5, short_side=16), Sampling(fps=5.0, short_side=16)
    assert as_int == as_float and hash(as_int) == hash(as_float)
    assert isinstance(as_int.fps, float)
    cache = FrameCache(tmp_path / "cache")
    assert cache.file(v, as_int) == cache.file(v, as_float)
    _, was_cached = FrameSource(as_int, cache_dir=tmp_path / "cache").ensure_cached(v)
    assert not was_cached
    _, was_cached = FrameSource(as_float, cache_dir=tmp_path / "cache").ensure_cached(v)
    assert was_cached
    assert DataConfig(fps=5).sampling() == DataConfig(fps=5.0).sampling()


def _check_unwritable(tmp_path, cache_dir, logs_warning):
    v = video(tmp_path / "a.avi")
    decoded = decode_video(v, Sampling(sample_every=5, short_side=16))
    source = FrameSource(SAMPLING, cache_dir=cache_dir)
    with pytest.raises(OSError):
        source.ensure_cached(v, strict=True)  # rrn cache: the error itself
    # training: a warning, and the decoded frames all the same
    with logs_warning("could not write the frame cache"):
        frames, was_cached = source.ensure_cached(v)
    assert not was_cached
    np.testing.assert_array_equal(frames, decoded)
    # build_cache (strict) reports the video as failed, naming the OSError
    report = build_cache([VideoRecord(v, 0, "a")], source, progress=False)
    assert report.videos == 0 and [vid for vid, _ in report.failures] == ["a"]
    assert "Error" in report.failures[0][1]


def test_unwritable_cache_under_a_file_raises_in_strict_mode_and_warns_otherwise(
    tmp_path, logs_warning
):
    # works for every user, root included: no folder can be made under a regular file
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    _check_unwritable(tmp_path, blocker / "cache", logs_warning)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root writes into read-only folders (checked under a file instead)",
)
def test_read_only_cache_raises_in_strict_mode_and_warns_otherwise(tmp_path, logs_warning):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        _check_unwritable(tmp_path, cache_dir, logs_warning)
        assert list(cache_dir.iterdir()) == []
    finally:
        cache_dir.chmod(0o755)


def test_missing_and_empty_videos_raise_decode_errors(tmp_path):
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "cache")
    with pytest.raises(VideoDecodeError):
        source(tmp_path / "gone.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        source(tmp_path / "empty.avi")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.npy"))


def test_from_config_uses_the_data_configs_sampling_cache_and_decoder(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    source = FrameSource.from_config(DataConfig(data_root=str(root), frame_size=112))
    assert source.sampling == Sampling(sample_every=10, fps=None, short_side=128)  # 8/7 x 112
    assert source.cache is None  # rrn cache has not built <data-root>/.rrn-cache: decode
    assert source.decoder == "pyav"  # auto
    default_cache_dir(root).mkdir()
    assert FrameSource.from_config(DataConfig(data_root=str(root))).cache.root == default_cache_dir(
        root
    )
    source = FrameSource.from_config(
        DataConfig(
            data_root=str(root), cache_dir=str(tmp_path / "c"), sample_every=3, fps=2, short_side=50
        )
    )
    assert source.cache.root == tmp_path / "c"
    assert source.sampling == Sampling(sample_every=3, fps=2.0, short_side=50)


def test_unknown_decoder_is_refused_at_construction():
    with pytest.raises(ValueError, match="unknown decoder"):
        FrameSource(SAMPLING, decoder="nope")


# ------------------------------------------------------------------------------------ Sampling
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_every": 0}, "sample_every"),
        ({"sample_every": -3}, "sample_every"),
        ({"fps": 0}, "fps"),
        ({"fps": -5.0}, "fps"),
        ({"short_side": 0}, "short_side"),
    ],
)
def test_sampling_rejects_impossible_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sampling(**kwargs)


def test_sampling_defaults_and_is_immutable():
    s = Sampling()
    assert (s.sample_every, s.fps, s.short_side) == (10, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.fps = 5.0  # a cache key must not change under a dataset's feet


@pytest.mark.parametrize(
    "sampling, text",
    [
        (Sampling(), "every 10th frame, original size"),
        (Sampling(10, None, 256), "every 10th frame, short side 256"),
        (Sampling(1, None, 128), "every frame, short side 128"),
        (Sampling(2), "every 2nd frame, original size"),
        (Sampling(3), "every 3rd frame, original size"),
        (Sampling(11), "every 11th frame, original size"),
        (Sampling(12), "every 12th frame, original size"),
        (Sampling(21), "every 21st frame, original size"),
        (Sampling(22), "every 22nd frame, original size"),
        (Sampling(113), "every 113th frame, original size"),
        (Sampling(fps=5, short_side=128), "5 frames/s, short side 128"),
        (Sampling(sample_every=3, fps=2.5), "2.5 frames/s, original size"),
    ],
)
def test_sampling_describe(sampling, text):
    assert sampling.describe() == text

"""The frame cache takes long (untrimmed) videos: a JPEG entry is written while its video is
decoded, never holding the decoded frames together, and rrn cache's disk estimate is measured on
the shortest videos, so it comes first."""

import numpy as np
import pytest

from rrn.data import source as source_module
from rrn.data.cache import FrameCache, estimate_cache
from rrn.data.decode import VideoDecodeError, decode_video
from rrn.data.sampling import Sampling
from rrn.data.source import FrameSource
from rrn.data.splits import VideoRecord
from rrn.data.synth import write_video

SAMPLING = Sampling(sample_every=2, short_side=16)


def video(path, n):
    frames = np.stack([np.full((16, 24, 3), (5 * i) % 256, np.uint8) for i in range(n)])
    return write_video(path, frames, codec="ffv1")


def test_a_streamed_entry_is_the_entry_of_the_whole_array(tmp_path):
    v = video(tmp_path / "a.avi", 30)
    frames = decode_video(v, SAMPLING)
    whole = FrameCache(tmp_path / "whole").put(v, frames, SAMPLING).read_bytes()
    streamed = FrameCache(tmp_path / "streamed").put(v, iter(list(frames)), SAMPLING)
    assert streamed.read_bytes() == whole
    with pytest.raises(ValueError, match="do not fit"):  # each frame checked as it comes
        FrameCache(tmp_path / "bad").put(v, iter([frames[0], frames[0][:8]]), SAMPLING)
    with pytest.raises(ValueError, match="no frame"):
        FrameCache(tmp_path / "none").put(v, iter([]), SAMPLING)
    assert not list((tmp_path / "bad").rglob("*.*")) and not list((tmp_path / "none").rglob("*.*"))


def test_a_video_is_cached_frame_by_frame_as_it_is_decoded(tmp_path, monkeypatch):
    v = video(tmp_path / "a.avi", 40)
    held = []  # decoded frames not yet encoded when the next one is decoded
    encoded = []

    def counting_decoder(path, sampling):
        for i, frame in enumerate(decode_video(path, sampling)):
            held.append(i - len(encoded))
            yield frame

    from rrn.data import cache_entries

    real = cache_entries.encode_jpeg
    monkeypatch.setattr(source_module, "iter_decoded", counting_decoder)
    monkeypatch.setattr(cache_entries, "encode_jpeg", lambda f, q: encoded.append(1) or real(f, q))
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c")
    frames, was_cached = source.ensure_cached(v)
    assert not was_cached and len(frames) == 20 and len(encoded) == 20
    assert max(held) == 0  # each frame encoded before the next is decoded
    # what it serves is what the cache holds, read back (the JPEG frames)
    np.testing.assert_array_equal(np.asarray(frames), np.asarray(source.cache.get(v, SAMPLING)))


def test_a_video_that_fails_midway_leaves_no_entry(tmp_path, monkeypatch):
    v = video(tmp_path / "a.avi", 20)

    def broken(path, sampling):
        yield from decode_video(path, sampling)[:3]
        raise VideoDecodeError(path, "truncated after 3 frames")

    monkeypatch.setattr(source_module, "iter_decoded", broken)
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c")
    with pytest.raises(VideoDecodeError, match="truncated"):
        source.ensure_cached(v)
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]


def test_the_estimate_measures_the_shortest_videos_first(tmp_path):
    lengths = [400, 12, 300, 20]  # the long ones first in the list
    records = [
        VideoRecord(video(tmp_path / f"v{i}.avi", n), -1, f"v{i}") for i, n in enumerate(lengths)
    ]
    source = FrameSource(SAMPLING, cache_dir=tmp_path / "c")
    est = estimate_cache(records, source, probe=10, measure=2)
    assert est.frames_per_video == sum(n // 2 for n in lengths) / 4
    cached = {r.video_id for r in records if source.cache.find(r.path, SAMPLING)}
    assert cached == {"v1", "v3"}  # 12 and 20 frames: measured (and cached) first

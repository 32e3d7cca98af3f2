"""Frame messages and sampling by capture time (pure: no server)."""

import struct

import pytest

from rrn.serve.frames import CaptureSampler, FrameError, FrameLimits, parse_frame


def test_a_client_sending_every_frame_gets_the_frames_decoding_keeps():
    s = CaptureSampler(0.4)  # every 10th frame of 25 fps
    kept = [i for i in range(60) if s.keep(i / 25)]
    assert kept == [0, 10, 20, 30, 40, 50]


def test_a_client_sending_only_sampled_frames_keeps_them_all_despite_jitter():
    s = CaptureSampler(0.4)
    times = [0.0, 0.398, 0.801, 1.197, 1.602, 1.999]
    assert all(s.keep(t) for t in times)


def test_a_gap_skips_the_targets_it_missed_and_time_cannot_go_back():
    s = CaptureSampler(0.4)
    assert s.keep(0.0) and s.keep(1.3) and not s.keep(1.4) and s.keep(1.6)
    with pytest.raises(FrameError, match="before the previous frame"):
        s.keep(1.0)


def test_parse_frame():
    limits = FrameLimits(max_bytes=100)
    assert parse_frame(struct.pack("<d", 1.5) + b"jpeg", limits) == (1.5, b"jpeg")
    for message, words in (
        (b"short", "8-byte"),
        (struct.pack("<d", -1.0) + b"x", ">= 0"),
        (struct.pack("<d", 0.0) + bytes(200), "over the limit of 100"),
    ):
        with pytest.raises(FrameError, match=words):
            parse_frame(message, limits)


def test_sampling_costs_the_same_whatever_the_gap():
    """A capture time of 1e308 (or epoch microseconds) looped `next_t += interval` for ever."""
    import time

    s = CaptureSampler(0.4, max_gap=1e12)
    start = time.perf_counter()
    assert s.keep(0.0) and s.keep(9e9) and not s.keep(9e9 + 0.1) and s.keep(9e9 + 0.4)
    assert time.perf_counter() - start < 5  # the loop took hours; 5 s holds on a busy machine
    for t in (1e10, 1e308, 1.7e15):
        with pytest.raises(FrameError, match="not in seconds"):
            CaptureSampler(0.4).keep(t)


def test_a_jump_past_the_limit_is_refused_and_leaves_the_sampler_as_it_was():
    s = CaptureSampler(0.4, max_gap=60)
    assert s.keep(100.0)
    with pytest.raises(FrameError, match="jumps 61.000 s past the previous frame's"):
        s.keep(161.0)
    assert s.last == 100.0 and s.keep(100.4) and s.keep(160.0)


def _encoded(w, h, fmt="PNG", **kw):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


def test_images_are_checked_from_their_header_before_decoding():
    from rrn.serve.frames import decode_image

    limits = FrameLimits(max_pixels=10_000, max_aspect=4.0, max_scans=20)
    assert decode_image(_encoded(40, 10), limits).shape == (10, 40, 3)  # 4:1 is allowed
    for data, words in (
        (_encoded(41, 10), "more elongated than the limit of 4:1"),
        (_encoded(10, 41), "more elongated than the limit of 4:1"),
        (_encoded(101, 100), "over the limit of 10000 pixels"),
        (b"GIF89a" + bytes(20), "not a readable JPEG or PNG"),
    ):
        with pytest.raises(FrameError, match=words):
            decode_image(data, limits)
    progressive = _encoded(64, 64, "JPEG", progressive=True)
    assert decode_image(progressive, limits).shape == (64, 64, 3)
    last = progressive.rindex(b"\xff\xda")
    bomb = progressive[:-2] + progressive[last:-2] * 30 + b"\xff\xd9"
    with pytest.raises(FrameError, match=r"JPEG of \d+ scans is over the limit of 20"):
        decode_image(bomb, limits)


def test_a_frame_is_resized_where_it_is_decoded_to_the_size_its_stream_fixed():
    from rrn.serve.frames import prepare_image

    limits = FrameLimits()
    first = prepare_image(_encoded(64, 48), limits, short_side=24, size=None)
    assert first.shape == (24, 32, 3)  # short side 24, aspect kept
    later = prepare_image(_encoded(48, 64), limits, short_side=24, size=first.shape[:2])
    assert later.shape == (24, 32, 3)  # the stream's size, whatever this frame's

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

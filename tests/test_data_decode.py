"""Decoding tiny videos written with PyAV: values of the sampled frames, odd inputs, bad files."""

from fractions import Fraction

import av
import numpy as np
import pytest

from cut_videos import cut_avi_before_frame, cut_copy
from rrn.data.decode import (
    VideoDecodeError,
    available_decoders,
    decode_video,
    probe_video,
    resized_shape,
    resolve_backend,
)
from rrn.data.sampling import Sampling
from rrn.data.synth import write_video


def index_frames(n, h=24, w=32):
    """Frame i is flat grey 8*i (lossless codecs give it back exactly)."""
    return np.stack([np.full((h, w, 3), 8 * i, np.uint8) for i in range(n)])


def frame_ids(frames):
    return [int(round(f.mean() / 8)) for f in frames]


@pytest.fixture
def lossless(tmp_path):
    return write_video(tmp_path / "v.avi", index_frames(25), codec="ffv1")


def test_every_kth_frame_values(lossless):
    out = decode_video(lossless, Sampling(sample_every=10), backend="pyav")
    assert out.dtype == np.uint8 and out.shape == (3, 24, 32, 3)
    assert frame_ids(out) == [0, 10, 20]
    np.testing.assert_array_equal(
        decode_video(lossless, Sampling(sample_every=1)), index_frames(25)
    )


def test_fps_overrides_sample_every(lossless):
    out = decode_video(lossless, Sampling(sample_every=3, fps=5))  # 25 fps -> every 5th frame
    assert frame_ids(out) == [0, 5, 10, 15, 20]


def test_short_side_resize_keeps_aspect(tmp_path):
    frames = index_frames(4, h=30, w=51)  # odd width
    path = write_video(tmp_path / "odd.avi", frames, codec="ffv1")
    out = decode_video(path, Sampling(sample_every=1, short_side=20))
    assert out.shape == (4, 20, 34, 3)  # 51 * 20 / 30 = 34
    assert frame_ids(out) == [0, 1, 2, 3]  # flat frames stay flat through the resize
    assert resized_shape(240, 320, 128) == (128, 171)
    assert resized_shape(320, 240, 128) == (171, 128)  # portrait


def test_mp4_with_audio_at_29_97(tmp_path):
    path = tmp_path / "a.mp4"
    frames = index_frames(30, h=32, w=48)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=Fraction(30000, 1001))
        vs.width, vs.height, vs.pix_fmt = 48, 32, "yuv420p"
        vs.options = {"qscale": "1"}
        aus = c.add_stream("aac", rate=16000)
        for i, f in enumerate(frames):
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
            a = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            a.sample_rate, a.pts = 16000, i * 1024
            for p in aus.encode(a):
                c.mux(p)
        for s in (vs, aus):
            for p in s.encode():
                c.mux(p)
    out = decode_video(path, Sampling(sample_every=10))
    assert out.shape == (3, 32, 48, 3)
    assert frame_ids(out) == [0, 10, 20]  # lossy, but flat frames stay within a grey level


def test_grayscale_video_becomes_rgb(tmp_path):
    frames = index_frames(5)
    path = write_video(tmp_path / "g.mkv", frames, codec="ffv1", pix_fmt="gray")
    out = decode_video(path, Sampling(sample_every=2))
    assert out.shape == (3, 24, 32, 3)
    assert frame_ids(out) == [0, 2, 4]
    assert np.all(out[..., 0] == out[..., 1])


def test_variable_frame_rate_sampled_by_time(tmp_path):
    times_ms = [0, 40, 80, 120, 160, 600, 1000, 1040]  # a 440 ms hole
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "bgr0"
        s.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            fr = av.VideoFrame.from_ndarray(index_frames(8)[i], format="rgb24")
            fr.pts, fr.time_base = t, Fraction(1, 1000)
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = decode_video(path, Sampling(fps=5))  # targets 0, .2, .4, .6, .8, 1.0 s
    assert frame_ids(out) == [0, 5, 6]  # 0 s, first frame >= .2 s is 0.6 s, then 1.0 s
    assert frame_ids(decode_video(path, Sampling(sample_every=3))) == [
        0,
        3,
        6,
    ]  # by count, not time


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty"),
        (b"this is not a video at all" * 50, "not a readable video"),
    ],
)
def test_bad_files_raise_clear_error(tmp_path, content, reason):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=reason) as err:
        decode_video(path, Sampling())
    assert str(path) in str(err.value)
    with pytest.raises(VideoDecodeError):
        probe_video(path)


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="not readable"):
        decode_video(tmp_path / "nope.avi", Sampling())


def test_truncated_video(tmp_path, lossless):
    data = lossless.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:300])  # header only, no complete frame
    with pytest.raises(VideoDecodeError):
        decode_video(cut, Sampling())
    half = tmp_path / "half.avi"
    half.write_bytes(data[: len(data) // 2])  # never a short video: unreadable or truncated
    with pytest.raises(VideoDecodeError, match=r"half\.avi: (not a readable|truncated)"):
        decode_video(half, Sampling(sample_every=1))


def random_frames(n, h=48, w=64):
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def write_faststart_mp4(path, frames):
    """MPEG-4 in an MP4 with its index in front (as web videos are): a cut copy still opens."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize(
    "name,writer",
    [
        ("v.mp4", write_faststart_mp4),  # what threaded decoding let through
        ("v.avi", lambda p, f: write_video(p, f, codec="mpeg4")),
        ("v.mkv", lambda p, f: write_video(p, f, codec="ffv1")),
        ("v.webm", lambda p, f: write_video(p, f, codec="libvpx")),
    ],
)
def test_cut_file_is_reported_truncated_not_decoded_short(tmp_path, name, writer):
    full = writer(tmp_path / name, random_frames(40))
    assert len(decode_video(full, Sampling(sample_every=1))) == 40 and probe_video(full) == (48, 64)
    cut = cut_copy(full, tmp_path / f"cut-{name}", 0.45)
    with pytest.raises(
        VideoDecodeError,
        match=r"truncated: (\d+) of 40 frames; the video stream "
        r"ends at [\d.]+ s of the 1\.60 s its header promises",
    ) as err:
        decode_video(cut, Sampling(sample_every=10))
    decoded = int(err.value.reason.split()[1])
    assert 5 < decoded < 30 and str(cut) in str(err.value)
    with pytest.raises(VideoDecodeError, match=r"truncated: about \d+ of 40 frames"):
        probe_video(cut)  # rrn check-data --quick: packets read, not decoded


def test_avi_cut_at_a_frame_boundary(tmp_path):
    # rrn synth's MJPEG AVI, cut after 6 of its 16 frames: every remaining frame decodes cleanly
    full = write_video(tmp_path / "v.avi", random_frames(16, 32, 32))
    cut = cut_avi_before_frame(full, tmp_path / "cut.avi", 6)
    with pytest.raises(
        VideoDecodeError,
        match=r"truncated: 6 of 16 frames; the video stream ends at "
        r"0\.24 s of the 0\.64 s",
    ):
        decode_video(cut, Sampling(sample_every=1))
    with pytest.raises(VideoDecodeError, match=r"truncated: about 6 of 16 frames"):
        probe_video(cut)


def test_file_ending_inside_its_last_frame(tmp_path):
    full = write_video(tmp_path / "v.avi", random_frames(40), codec="mpeg4")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(
        data[: data.rindex(b"idx1") - 100]
    )  # all 40 chunks begin, the last one ends early
    for check in (lambda p: decode_video(p, Sampling(sample_every=1)), probe_video):
        with pytest.raises(
            VideoDecodeError, match="truncated: the file ends inside frame 40 of 40"
        ):
            check(cut)


def test_dropped_frames_and_a_lost_index_are_not_truncation(tmp_path):
    # An AVI with empty chunks for dropped frames (its header counts 14 frames, 9 carry data)
    path = tmp_path / "drops.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 25)
        frames = random_frames(14)
        for i in (0, 1, 2, 5, 6, 7, 8, 12, 13):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 14
    assert len(decode_video(path, Sampling(sample_every=1))) == 9 and probe_video(path) == (48, 64)
    # every frame there, only the index at the end of the file lost: nothing is missing
    full = write_video(tmp_path / "v.avi", random_frames(16, 32, 32))
    data = full.read_bytes()
    no_index = tmp_path / "no-index.avi"
    no_index.write_bytes(data[: data.rindex(b"idx1")])
    assert len(decode_video(no_index, Sampling(sample_every=1))) == 16 and probe_video(
        no_index
    ) == (32, 32)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        a = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        a.sample_rate = 8000
        for p in s.encode(a):
            c.mux(p)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        decode_video(path, Sampling())


def test_backend_selection():
    assert available_decoders()[0] == "pyav"
    with pytest.raises(ValueError, match="unknown decoder"):
        decode_video("x.avi", Sampling(), backend="opencv")
    if "torchcodec" not in available_decoders():
        with pytest.raises(ValueError, match="not installed"):
            decode_video("x.avi", Sampling(), backend="torchcodec")
    assert resolve_backend("auto") == "pyav"  # measured faster for every-k-th-frame sampling


@pytest.mark.skipif("torchcodec" not in available_decoders(), reason="torchcodec not installed")
def test_torchcodec_keeps_the_same_frames_as_pyav(tmp_path, lossless):
    for k in (1, 3, 10):
        tc = decode_video(lossless, Sampling(sample_every=k), backend="torchcodec")
        assert frame_ids(tc) == frame_ids(
            decode_video(lossless, Sampling(sample_every=k), backend="pyav")
        )
    resized = decode_video(lossless, Sampling(sample_every=10, short_side=12), backend="torchcodec")
    assert resized.shape == (3, 12, 16, 3) and frame_ids(resized) == [0, 10, 20]
    # sampling by time goes through PyAV's rule with either backend
    np.testing.assert_array_equal(
        decode_video(lossless, Sampling(fps=5), backend="torchcodec"),
        decode_video(lossless, Sampling(fps=5), backend="pyav"),
    )


def test_stream_that_changes_frame_size_keeps_the_first_size(tmp_path):
    # MPEG-TS files concatenate byte-wise: 5 frames at 48x32, then 6 at 64x48 (a resolution switch)
    a = write_video(tmp_path / "a.ts", np.full((6, 32, 48, 3), 96, np.uint8), codec="mpeg2video")
    b = write_video(tmp_path / "b.ts", np.full((6, 48, 64, 3), 200, np.uint8), codec="mpeg2video")
    both = tmp_path / "ab.ts"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    out = decode_video(both, Sampling(sample_every=1), backend="pyav")
    assert out.shape[1:] == (32, 48, 3) and len(out) >= 10
    assert abs(int(out[0].mean()) - 96) <= 3 and abs(int(out[-1].mean()) - 200) <= 3

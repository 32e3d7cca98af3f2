"""Test-only ways to cut a video file short, as an interrupted download or copy does."""

from pathlib import Path

import av


def cut_copy(path: Path, out: Path, fraction: float) -> Path:
    """Copy of the first ``fraction`` of a file's bytes."""
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def cut_avi_before_frame(path: Path, out: Path, k: int) -> Path:
    """Copy of a video-only AVI that ends just before the chunk of frame ``k`` (0-based):
    frames ``0..k-1`` complete, the header still counting all of them."""
    data = path.read_bytes()
    starts = [i for i in range(data.index(b"movi"), len(data)) if data.startswith(b"00dc", i)]
    out.write_bytes(data[: starts[k]])
    return out


def faststart_copy(path: Path, out: Path) -> Path:
    """The video stream of an MP4 remuxed (not re-encoded) with its index in front, as web
    videos are, so that a cut copy still opens and partly decodes."""
    with (
        av.open(str(path)) as src,
        av.open(str(out), "w", options={"movflags": "faststart"}) as dst,
    ):
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:  # not the flush packet
                packet.stream = stream
                dst.mux(packet)
    return out

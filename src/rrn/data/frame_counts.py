"""What a video's sampled frames will be, read from its container without decoding it.

:func:`sampled_shape` gives, from the container's header (frame count, or duration x frame
rate, and the coded size) and the :class:`~rrn.data.sampling.Sampling`, the number and size of
the frames that decoding will return. Two users: the frame cache checks an entry written
without checksums against it (a ``.npy`` of 57 frames where the video gives 64 is stale or
foreign), and ``rrn cache`` estimates the disk a cache will take before it starts.

Container counts are close to, not always equal to, the decoded count (an edit list, a leading
frame a re-encode added, dropped N-VOPs), hence :func:`plausible`'s tolerance. Frame folders
are exact: their frame count is their file count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rrn.data.decode import VideoDecodeError, resized_shape
from rrn.data.sampling import Sampling, Timeline
from rrn.errors import ConfigError

#: Relative and absolute slack between a container's frame count and the decoded one.
TOLERANCE = (0.05, 2)


@dataclass(frozen=True, kw_only=True)
class SampledShape:
    """The promise of a video + sampling: about ``frames`` frames of ``height x width``."""

    frames: float
    """Sampled frames the container announces (fractional when estimated from duration)."""
    height: int
    width: int
    exact: bool
    """True for frame folders (counted), False for a container's announcement."""
    source_frames: float
    """Frames of the video before sampling."""
    rate: float | None = None
    """The video's frames per second (None for frame folders)."""
    duration: float | None = None
    """The video's seconds by its header (None for frame folders, or when it says none)."""

    @property
    def seconds(self) -> float | None:
        """The video's length: its header's duration, else its frames over its rate."""
        if self.duration is not None:
            return self.duration
        return self.source_frames / self.rate if self.rate else None

    def timeline(self, sampling: Sampling) -> Timeline:
        """When its sampled frames are (:class:`~rrn.data.sampling.Timeline`).

        Raises:
            ValueError: a frame folder sampled every k-th frame: it has no frame rate.
        """
        if sampling.fps is not None:
            return Timeline(sampling.fps, 1, round(self.frames))
        if self.rate is None:
            raise ValueError(
                "neither a frame rate (a frame folder, or a container without one) nor --fps: "
                "the sampled frames have no times; sample with --fps"
            )
        return Timeline(self.rate, sampling.sample_every, round(self.frames))


def sampled_count(source_frames: float, duration_s: float | None, sampling: Sampling) -> float:
    """Frames kept by ``sampling`` from a video of ``source_frames`` frames lasting
    ``duration_s``."""
    if sampling.fps is not None:
        if duration_s is None:
            raise ValueError("sampling by fps needs the video's duration")
        return max(1.0, duration_s * sampling.fps)
    return max(1.0, math.ceil(source_frames / sampling.sample_every))


def sampled_shape(path, sampling: Sampling) -> SampledShape:
    """The number and size of the frames ``sampling`` will give for ``path``.

    Raises:
        VideoDecodeError: no readable container, no video stream, or neither a frame count nor
            a duration in it.
    """
    path = Path(path)
    if path.is_dir():
        return _folder_shape(path, sampling)
    import av

    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "the file has no video stream")
            stream = container.streams.video[0]
            height, width = stream.codec_context.height, stream.codec_context.width
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration
                else container.duration / 1e6
                if container.duration
                else None
            )
            count = stream.frames or (duration * rate if duration and rate else 0)
    except VideoDecodeError:
        raise
    except Exception as err:
        raise VideoDecodeError(path, f"not a readable video container ({err})") from None
    if not count or not height:
        raise VideoDecodeError(path, "the container announces neither a frame count nor a duration")
    h, w = resized_shape(height, width, sampling.short_side)
    frames = sampled_count(count, duration, sampling)
    return SampledShape(
        frames=frames,
        height=h,
        width=w,
        exact=False,
        source_frames=float(count),
        rate=rate or None,
        duration=duration or None,
    )


def _folder_shape(folder: Path, sampling: Sampling) -> SampledShape:
    from rrn.data.frame_folder import count_frames, probe_frame_folder

    n = count_frames(folder)
    h, w = resized_shape(*probe_frame_folder(folder), sampling.short_side)
    if sampling.fps is not None:
        raise ConfigError(
            f"{folder}: a frame folder cannot be sampled at --fps; use --sample-every"
        )
    frames = float(sampled_count(n, None, sampling))
    return SampledShape(frames=frames, height=h, width=w, exact=True, source_frames=float(n))


def plausible(frames: int, promised: SampledShape) -> bool:
    """Whether ``frames`` sampled frames fit what the container promised (see :data:`TOLERANCE`)."""
    if promised.exact:
        return frames == promised.frames
    rel, absolute = TOLERANCE
    slack = rel * promised.frames + absolute
    return abs(frames - promised.frames) <= slack

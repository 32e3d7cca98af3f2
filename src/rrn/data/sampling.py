"""Pure frame and chunk sampling: integers in, tuples of integers out.

Nothing here touches a video, so every rule is testable without one (pytorchvideo's
``ClipSampler`` idea). :class:`Sampling` is the value that says which frames a video gives
(every k-th or by frame rate, at which short side): the decoder's arguments, the frame cache's
key, and what the settings schema validates ``--sample-every``/``--fps``/``--short-side`` with.
Two levels:

* which frames of a video are *sampled* at all (:func:`every_kth`, :func:`select_by_time`):
  the paper samples every 10th frame;
* which sampled frames form a *chunk* of ``T`` consecutive sampled frames (the RRN's
  temporal context): training draws one random chunk (:func:`train_chunk`), evaluation
  enumerates all ``M`` of them (:func:`eval_chunks`) and the video score is their mean.

Untrimmed videos (online action detection): a chunk is the ``T`` frames *ending* at the frame
it is labelled by (:func:`chunk_ending_at`), where a frame is in time (:class:`Timeline`),
whether an item draws a background frame (:func:`is_background_item`) and how many chunks a
video gives (:func:`chunks_for`).

Short videos: a video with ``N < T`` sampled frames still yields exactly one chunk, padded
by repeating the *first* frame at the front, e.g. ``N=2, T=3 -> (0, 0, 1)``. Repeating at the
front keeps the last (most recent) frames of the chunk real, which is what a recurrence that
reads the chunk left to right sees last. ``N == 0`` is an error: there is nothing to show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rrn.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video are kept, at which size: one value for the decoder and the cache.

    ``sample_every`` keeps decoded frames ``0, k, 2k, ...``; ``fps``, when given, keeps frames
    evenly spaced in presentation time instead (``sample_every`` is then ignored by decoding
    but stays part of the cache key, so existing caches keep their keys). ``short_side``
    resizes while decoding (``None`` keeps the original size). ``fps`` is stored as a float:
    ``5`` and ``5.0`` are one frame rate and one cache entry.
    """

    sample_every: int = 10
    fps: float | None = None
    short_side: int | None = None

    def __post_init__(self) -> None:
        if self.sample_every < 1:
            raise ConfigError(
                f"sample_every (--sample-every) must be >= 1, got {self.sample_every}"
            )
        if self.fps is not None:
            if self.fps <= 0:
                raise ConfigError(f"fps (--fps) must be > 0, got {self.fps}")
            object.__setattr__(self, "fps", float(self.fps))
        if self.short_side is not None and self.short_side < 1:
            raise ConfigError(f"short_side (--short-side) must be >= 1, got {self.short_side}")

    def describe(self) -> str:
        """``'every 10th frame, short side 256'`` or ``'5 frames/s, short side 128'``."""
        rate = f"{self.fps:g} frames/s" if self.fps else _every(self.sample_every)
        size = f"short side {self.short_side}" if self.short_side else "original size"
        return f"{rate}, {size}"


def _every(k: int) -> str:
    if k == 1:
        return "every frame"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"every {k}{suffix} frame"


def default_short_side(frame_size: int) -> int:
    """Decode-time short side for a crop of ``frame_size``: ``round(frame_size * 8 / 7)`` (112 ->
    128)."""
    return round(frame_size * 8 / 7)


def _check(num_frames: int, context: int) -> None:
    if context < 1:
        raise ValueError(f"context (frames per chunk, T) must be >= 1, got {context}")
    if num_frames < 1:
        raise ValueError(
            f"a video needs at least one sampled frame to form a chunk, got {num_frames}"
        )


def _padded(num_frames: int, context: int) -> tuple[int, ...]:
    # N < T: repeat frame 0 at the front -> (0, ..., 0, 1, ..., N-1), length T.
    return (0,) * (context - num_frames) + tuple(range(num_frames))


def train_chunk(num_frames: int, context: int, rng: np.random.Generator) -> tuple[int, ...]:
    """Draw one training chunk: ``context`` consecutive indices at a uniform random start.

    Args:
        num_frames: Number ``N`` of sampled frames of the video (>= 1).
        context: Chunk length ``T`` (>= 1).
        rng: Source of the random start.

    Returns:
        ``T`` indices into the sampled frames. When ``N < T``, the one padded chunk
        ``(0, ..., 0, 1, ..., N-1)`` (first frame repeated at the front).
    """
    _check(num_frames, context)
    if num_frames < context:
        return _padded(num_frames, context)
    start = int(rng.integers(0, num_frames - context + 1))
    return tuple(range(start, start + context))


def eval_chunks(num_frames: int, context: int, stride: int | None = None) -> list[tuple[int, ...]]:
    """Enumerate the evaluation chunks of a video.

    Chunks start at ``0, stride, 2*stride, ...`` while they fit, so with the default
    ``stride = context`` they are the ``M = N // T`` non-overlapping chunks of the paper; the
    last ``N mod T`` frames, fewer than a chunk, are not covered (as in the paper).

    Args:
        num_frames: Number ``N`` of sampled frames of the video (>= 1).
        context: Chunk length ``T`` (>= 1).
        stride: Distance between chunk starts; ``None`` means ``context``.

    Returns:
        ``M >= 1`` chunks of ``T`` indices each. When ``N < T``, the single padded chunk
        ``(0, ..., 0, 1, ..., N-1)``.
    """
    _check(num_frames, context)
    stride = context if stride is None else stride
    if stride < 1:
        raise ValueError(f"eval stride must be >= 1, got {stride}")
    if num_frames < context:
        return [_padded(num_frames, context)]
    return [tuple(range(s, s + context)) for s in range(0, num_frames - context + 1, stride)]


def every_kth(num_frames: int, k: int) -> tuple[int, ...]:
    """Indices of the decoded frames kept when sampling every ``k``-th frame: ``0, k, 2k, ...``."""
    if k < 1:
        raise ValueError(f"sample_every must be >= 1, got {k}")
    return tuple(range(0, num_frames, k))


def select_by_time(timestamps: Sequence[float], fps: float) -> tuple[int, ...]:
    """Indices of the frames kept when resampling to a target frame rate.

    For each target time ``t0 + j / fps`` the first frame whose timestamp reaches it is
    kept, so variable-frame-rate videos sample evenly in *time*, not in frame count. A frame
    is kept at most once (a target fps above the video's just keeps every frame).

    Args:
        timestamps: Presentation time of each decoded frame, in seconds, in decode order.
        fps: Target frames per second (> 0).

    Returns:
        Increasing indices into ``timestamps``.
    """
    selector = TimeSelector(fps)
    return tuple(i for i, t in enumerate(timestamps) if selector.keep(t))


class TimeSelector:
    """Streaming form of :func:`select_by_time`: feed timestamps in order, ask which to keep.

    Lets a decoder decide per frame, before paying for its colour conversion.
    """

    def __init__(self, fps: float):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.step = 1.0 / fps
        self.next_t: float | None = None

    def keep(self, t: float) -> bool:
        if self.next_t is None:
            self.next_t = t
        # Tolerance: 1e-6 s absorbs rounding of pts * time_base.
        if t + 1e-6 < self.next_t:
            return False
        # Skip target times already passed (gaps in a VFR stream) without keeping twice.
        while self.next_t <= t + 1e-6:
            self.next_t += self.step
        return True


class FrameSelector:
    """A :class:`Sampling`'s frame rule, decided per decoded frame in decoding order.

    Every ``sample_every``-th frame (by decode index), or with ``fps`` the frames
    :class:`TimeSelector` keeps (by presentation time; ``index / base_rate`` where a frame
    has none). The decoder and ``rrn stream`` both ask it, so a file and a live stream keep
    the same frames.

    Args:
        sampling: The rule.
        base_rate: The stream's frame rate, for frames without a timestamp.
    """

    def __init__(self, sampling: Sampling, base_rate: float = 25.0):
        self.sample_every = sampling.sample_every
        self.base_rate = base_rate
        self.times = TimeSelector(sampling.fps) if sampling.fps is not None else None

    def keep(self, index: int, time: float | None) -> bool:
        """Whether decoded frame ``index`` (presented at ``time`` seconds, or None) is sampled."""
        if self.times is None:
            return index % self.sample_every == 0
        return self.times.keep(time if time is not None else index / self.base_rate)


# ------------------------------------------------------------------ inside untrimmed videos
class Timeline(NamedTuple):
    """When a video's sampled frames are: sampled frame ``j`` is at ``j * step / rate`` seconds.

    ``--sample-every k`` keeps decoded frames ``0, k, 2k, ...`` of a video at ``rate`` frames/s
    (``step = k``); ``--fps r`` keeps one frame per ``1 / r`` s (``rate = r``, ``step = 1``).
    """

    rate: float
    """Frames per second of the video (``--sample-every``) or of the sampling (``--fps``)."""
    step: int
    """Decoded frames per sampled frame."""
    frames: int
    """Sampled frames the video's header announces (the decoded count may differ a little)."""

    def times(self, frames: int | None = None) -> np.ndarray:
        """(N,) seconds of sampled frames ``0..N-1`` (default: :attr:`frames`), each one
        division (``(j * step) / rate``), so a frame time equals an annotation's decimal when
        both denote the same number (:mod:`rrn.detection.labels`)."""
        n = self.frames if frames is None else frames
        return (np.arange(n, dtype=np.int64) * self.step) / self.rate

    @property
    def seconds(self) -> float:
        """The sampled stretch's length: ``frames * step / rate``."""
        return self.frames * self.step / self.rate


def chunk_ending_at(last: int, context: int) -> tuple[int, ...]:
    """The ``context`` consecutive sampled frames ending at frame ``last``: the chunk whose
    last-frame output answers for ``last``, as the online model does. Near the start (``last <
    T - 1``) the first frame is repeated at the front, as :func:`train_chunk` pads a short
    video: ``last=1, T=3 -> (0, 0, 1)``."""
    if context < 1:
        raise ValueError(f"context (frames per chunk, T) must be >= 1, got {context}")
    if last < 0:
        raise ValueError(f"a chunk ends at a frame >= 0, got {last}")
    return tuple(max(0, i) for i in range(last - context + 1, last + 1))


def is_background_item(index: int, fraction: float) -> bool:
    """Whether training item ``index`` draws its last frame from the background frames, so that
    exactly ``floor(n * fraction)`` of items ``0..n-1`` do, evenly spread (a Bresenham line:
    item ``i`` is one when ``floor((i + 1) f) > floor(i f)``). A pure function of the index."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a background fraction is in [0, 1], got {fraction}")
    return math.floor((index + 1) * fraction) > math.floor(index * fraction)


def chunks_for(seconds: float, seconds_per_chunk: float, chunks_per_video: int = 1) -> int:
    """Training chunks of an untrimmed video per epoch: one per ``seconds_per_chunk`` seconds
    of it (rounded up, at least one), times ``chunks_per_video``: a long video gives more."""
    if seconds_per_chunk <= 0:
        raise ValueError(f"seconds per chunk must be > 0, got {seconds_per_chunk}")
    return max(1, math.ceil(seconds / seconds_per_chunk - 1e-9)) * chunks_per_video

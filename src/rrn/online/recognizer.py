"""The model stepping through live frames: many streams, one batched step.

Each stream has its own small state (:class:`StreamState`, keyed by a stream id): which frames
its sampling keeps, the model's temporal terms (one tensor per skip block, zeros at the start:
:meth:`~rrn.model.RecurrentResNet.step_terms`, where all-zero terms are exactly "no previous
frame" for every skip type), the last ``smooth`` probability vectors, and the frame size its
first frame fixed. :meth:`MultiStreamRecognizer.step` takes the ready frame of any number of
streams (at most one each), stacks frames and states along the batch dimension B, runs ONE
model step through its engine (:mod:`~rrn.online.engines`: eager PyTorch or ONNX Runtime, the
same outputs to 1e-4) and hands each stream its own row back, matched by id, never by
position. A
stream's outputs are therefore those of the stream run alone (to float rounding): frame ``n``'s
logits are the chunk prediction of its frames ``n-T+1..n``, row ``n`` of ``forward_video``.

:class:`Recognizer` is the one-stream view that ``rrn stream`` uses.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rrn.data.decode import resized_shape, to_rgb
from rrn.data.sampling import FrameSelector, Sampling
from rrn.online.engines import StepEngine, TorchEngine

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Prediction:
    """The model's output at one sampled frame of one stream."""

    index: int
    time: float
    probs: torch.Tensor
    """(K,) this frame's probabilities (the chunk ending here)."""
    smoothed: torch.Tensor
    """(K,) mean of the last ``smooth`` frames' probabilities."""
    latency_ms: float
    """Preprocessing + model step, in milliseconds (the batch's step, shared by its streams)."""
    stream: str = ""
    batch: int = 1
    """Streams stepped in the same call."""

    def top(self, classes: list[str], k: int, smoothed: bool = True) -> list[tuple[str, float]]:
        """The ``k`` most probable (class, probability), best first."""
        p = self.smoothed if smoothed else self.probs
        values, indices = p.topk(min(k, p.numel()))
        return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


@dataclass(frozen=True)
class StreamFrame:
    """One frame of one stream, ready to be stepped.

    ``image`` is a PyAV ``VideoFrame`` (as decoded) or a uint8 RGB array (H, W, 3) of any size:
    both are resized by FFmpeg's swscale with area averaging, as decoding for training does.
    """

    stream: str
    image: object
    index: int
    time: float


@dataclass
class StreamState:
    """What one stream carries between its frames."""

    id: str
    selector: FrameSelector
    terms: list[torch.Tensor] | None
    """(1, C, h, w) per skip block; None before the first frame (all zeros)."""
    recent: deque
    size: tuple[int, int] | None = None
    """(H, W) its frames are resized to, fixed by the first frame."""
    classified: int = 0
    last_active: float = field(default_factory=time.monotonic)


class MultiStreamRecognizer:
    """A trained model stepping any number of streams, one batched call per step.

    Args:
        model: From :func:`rrn.load_model` (needs ``inputs``, ``classes``, ``step_terms``).
        sampling: Which frames of a stream are kept (default: the model's training sampling).
        smooth: Probability vectors averaged per stream (default: the model's context T).
        idle_timeout: Seconds without a frame after which :meth:`expire` closes a stream
            (None: never).
        clock: Monotonic seconds (a parameter so that expiry is testable).
        engine: What runs the step (:func:`~rrn.online.engines.make_engine`; default: the
            model itself, :class:`~rrn.online.engines.TorchEngine`). The state tensors live
            on the engine's device.

    Not thread-safe: one caller at a time (the :class:`~rrn.online.batcher.MicroBatcher`'s
    worker, or a single-threaded loop).
    """

    def __init__(
        self,
        model,
        sampling: Sampling | None = None,
        smooth: int | None = None,
        *,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        engine: StepEngine | None = None,
    ):
        self.model = model
        self.engine = engine or TorchEngine(model)
        self.classes: list[str] = list(model.classes)
        self.sampling = sampling or model.inputs.sampling
        self.smooth = smooth or model.temporal_context
        self.transform = model.inputs.transform()
        self.frame_size = model.inputs.frame_size
        self.device, self.dtype = self.engine.device, self.engine.dtype
        self.term_shapes = [tuple(s[1:]) for s in model.term_shapes(self.frame_size)]
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.streams: dict[str, StreamState] = {}

    @property
    def state_bytes(self) -> int:
        """Bytes of model state one stream holds (its temporal terms)."""
        size = torch.tensor([], dtype=self.dtype).element_size()
        return sum(int(np.prod(s)) for s in self.term_shapes) * size

    def open(self, stream_id: str, base_rate: float = 25.0) -> StreamState:
        """Start stream ``stream_id`` with a zero state (``base_rate`` times frames without a
        timestamp for the sampling rule).

        Raises:
            KeyError: the id is already open.
        """
        if stream_id in self.streams:
            raise KeyError(f"stream {stream_id!r} is already open")
        state = StreamState(
            stream_id,
            FrameSelector(self.sampling, base_rate),
            None,
            deque(maxlen=self.smooth),
            last_active=self.clock(),
        )
        self.streams[stream_id] = state
        return state

    def close(self, stream_id: str) -> bool:
        """Free the stream's state; returns whether it was open."""
        return self.streams.pop(stream_id, None) is not None

    def expire(self, now: float | None = None) -> list[str]:
        """Close the streams idle for longer than ``idle_timeout``; returns their ids."""
        if self.idle_timeout is None:
            return []
        now = self.clock() if now is None else now
        idle = [s.id for s in self.streams.values() if now - s.last_active > self.idle_timeout]
        for stream_id in idle:
            self.close(stream_id)
        return idle

    def keep(self, stream_id: str, index: int, t: float | None) -> bool:
        """Whether the stream's sampling keeps its frame ``index`` at ``t`` s (ask for every
        frame of the stream, in order)."""
        return self.streams[stream_id].selector.keep(index, t)

    def rgb(self, state: StreamState, image) -> np.ndarray:
        """uint8 (H, W, 3) resized as decoding for training does (size fixed by the first frame).

        An array already at the stream's size is used as it is: ``rrn serve`` resizes each
        frame in its stream's decoding worker (:func:`rrn.serve.frames.prepare_image`), so that
        the batched step shared by every stream only stacks them.
        """
        if isinstance(image, np.ndarray):
            if state.size is None:
                state.size = resized_shape(*image.shape[:2], self.sampling.short_side)
            if image.shape[:2] == state.size:
                return image
            import av

            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if state.size is None:
            state.size = resized_shape(image.height, image.width, self.sampling.short_side)
        return to_rgb(image, state.size)

    @torch.inference_mode()
    def step(self, frames: Sequence[StreamFrame]) -> dict[str, Prediction]:
        """One model step for the given frames, at most one per stream, all streams open.

        Returns:
            Each stream's :class:`Prediction`, by stream id.

        Raises:
            KeyError: a stream is not open.
            ValueError: two frames of one stream.
        """
        if not frames:
            return {}
        start = time.perf_counter()
        states = [self.streams[f.stream] for f in frames]
        if len({s.id for s in states}) != len(states):
            raise ValueError("at most one frame per stream in one step")
        # B x (1, H, W, 3) -> (B, 3, S, S)
        x = torch.cat([self.transform(self.rgb(s, f.image)[None]) for s, f in zip(states, frames)])
        terms = [
            torch.cat([self._terms(s)[j] for s in states])  # J x (B, C, h, w)
            for j in range(len(self.term_shapes))
        ]
        logits, new_terms = self.engine.step(x.to(self.device, self.dtype), terms)
        probs = logits.float().softmax(-1).cpu()  # (B, K); .cpu() waits for the device
        latency = (time.perf_counter() - start) * 1000
        now, out = self.clock(), {}
        for row, (state, frame) in enumerate(zip(states, frames)):
            state.terms = [t[row : row + 1] for t in new_terms]  # (B, C, h, w) -> (1, C, h, w)
            state.recent.append(probs[row])
            state.classified += 1
            state.last_active = now
            smoothed = torch.stack(tuple(state.recent)).mean(0)  # (n <= smooth, K) -> (K,)
            out[state.id] = Prediction(
                index=frame.index,
                time=frame.time,
                probs=probs[row],
                smoothed=smoothed,
                latency_ms=latency,
                stream=state.id,
                batch=len(frames),
            )
        return out

    def _terms(self, state: StreamState) -> list[torch.Tensor]:
        if state.terms is None:  # the stream's first frame: no previous frame, all-zero terms
            return [
                torch.zeros((1, *s), device=self.device, dtype=self.dtype) for s in self.term_shapes
            ]
        return state.terms

    def touch(self, stream_id: str) -> None:
        """Note activity on a stream (a frame arrived, even if not classified)."""
        state = self.streams.get(stream_id)
        if state is not None:
            state.last_active = self.clock()


class Recognizer:
    """One stream through :class:`MultiStreamRecognizer`: what ``rrn stream`` steps.

    Args:
        model: From :func:`rrn.load_model` (needs ``inputs`` and ``classes``).
        sampling: Which frames to classify (default: the model's training sampling).
        smooth: Probability vectors averaged (default: the model's temporal context T).
        engine: What runs the step (default: the model itself, in torch).
    """

    STREAM = "0"

    def __init__(
        self,
        model,
        sampling: Sampling | None = None,
        smooth: int | None = None,
        *,
        engine: StepEngine | None = None,
    ):
        self.multi = MultiStreamRecognizer(model, sampling, smooth, engine=engine)
        self.model = model
        self.classes = self.multi.classes
        self.sampling = self.multi.sampling
        self.smooth = self.multi.smooth
        self.device = self.multi.device
        self.reset()

    def reset(self, base_rate: float = 25.0) -> None:
        """Start a new video (zero state); ``base_rate`` times frames without a timestamp."""
        self.multi.close(self.STREAM)
        self.multi.open(self.STREAM, base_rate)

    def keep(self, frame) -> bool:
        """Whether the sampling picks this :class:`~rrn.online.sources.SourceFrame` (ask for
        every frame, in order)."""
        return self.multi.keep(self.STREAM, frame.index, frame.time)

    def classify(self, frame) -> Prediction:
        """One model step on a :class:`~rrn.online.sources.SourceFrame`."""
        item = StreamFrame(self.STREAM, frame.frame, frame.index, frame.time)
        return self.multi.step([item])[self.STREAM]


def sampling_for(model, sample_every: int | None = None, fps: float | None = None) -> Sampling:
    """The model's training sampling with its frame rate replaced (the short side stays).

    ``fps`` samples by time; ``sample_every`` alone samples by frame count, even for a model
    trained with ``fps`` (so the number given is the one applied).
    """
    base = model.inputs.sampling
    if fps is not None:
        return Sampling(base.sample_every, fps, base.short_side)
    if sample_every is not None:
        return Sampling(sample_every, None, base.short_side)
    return base


def interval_seconds(sampling: Sampling, source_fps: float) -> float:
    """Seconds between two sampled frames of a live source: ``1 / fps``, or ``sample_every``
    frames of a source at ``source_fps`` (the rate the training videos had, e.g. 25 for
    UCF-101) when the model samples by frame count."""
    return 1.0 / sampling.fps if sampling.fps else sampling.sample_every / source_fps

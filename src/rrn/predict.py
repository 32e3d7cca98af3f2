"""Predict the action of whole videos with a trained checkpoint (CPU is fine).

A video's (or frame folder's) frames are sampled as in training (``sample_every``/``fps``, short
side; from the frame cache when it holds them), centre-cropped and streamed once through
:meth:`RecurrentResNet.forward_video`, which carries the temporal skip states along: row ``n`` of
its output is the prediction of the chunk ending at frame ``n``. The video prediction is the
mean of the per-frame probabilities over the frames with a full temporal context
(``n >= T - 1``), i.e. the mean over all stride-1 chunks (paper §3.3 with every chunk); shorter
videos use every frame.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

PIECE = 64
"""Sampled frames decoded, then stepped through the model, at a time."""


class PredictionCancelled(RuntimeError):
    """The ``cancel`` event of :meth:`Predictor.predict` was set."""


@dataclass
class VideoPrediction:
    """The result for one video."""

    path: str
    top: list[tuple[str, float]]
    """(class name, probability) of the most probable classes, best first."""
    video_probs: torch.Tensor
    """(K,) mean of the per-frame probabilities over full-context frames."""
    frame_probs: torch.Tensor
    """(N,) x K per-frame probabilities from the streaming forward pass."""
    times: list[float] | None = None
    """Time in seconds of each sampled frame (None when the frame rate is unknown)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "video": self.path,
            "top": [{"class": c, "prob": p} for c, p in self.top],
            "num_frames": int(self.frame_probs.shape[0]),
            **self.extra,
        }


@dataclass
class FailedVideo:
    """A video that could not be classified (missing, unreadable, corrupt or truncated)."""

    path: str
    error: str
    """Why, e.g. ``"truncated: 61 of 165 frames; ..."``."""

    def to_json(self) -> dict[str, Any]:
        return {"video": self.path, "error": self.error}


def _frame_times(path: Path, n: int, sample_every: int, fps: float | None) -> list[float] | None:
    if fps:
        return [i / fps for i in range(n)]
    if path.is_dir():
        return None  # a frame folder has no timestamps: the timeline counts sampled frames
    try:
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
        if rate:
            return [i * sample_every / float(rate) for i in range(n)]
    except Exception:
        pass
    return None


class Predictor:
    """A trained model ready to classify videos (see :func:`rrn.load_model`).

    Frames come from the model's :class:`~rrn.data.source.FrameSource` (its sampling; its
    frame cache when the training data's cache holds the video), preprocessed as in evaluation.

    Args:
        checkpoint: a checkpoint file or a run directory.
        device: where to run (default CPU).
        which: ``"best"`` (falling back to ``"last"``) or ``"last"`` checkpoint of a run directory.
        model: A model :func:`rrn.load_model` already loaded from ``checkpoint`` (then
            ``device`` must be where it is).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        device: str | torch.device = "cpu",
        which: str = "best",
        *,
        model=None,
        cache: bool = True,
    ):
        from rrn.checkpoint import load_model
        from rrn.data import FrameSource

        self.device = torch.device(device)
        self.model = (
            model if model is not None else load_model(checkpoint, which=which, device=self.device)
        )
        self.path = self.model.checkpoint
        self.classes: list[str] = self.model.classes
        self.config = self.model.train_config.data
        self.source = (
            FrameSource.from_config(self.config)
            if cache
            else FrameSource(self.config.sampling(), decoder=self.config.decoder)
        )
        self.transform = self.model.inputs.transform()

    @property
    def context(self) -> int:
        return self.model.temporal_context

    def load(self, video: str | os.PathLike) -> torch.Tensor:
        """Decode (or read from the cache) and transform a video: float (N, 3, S, S)."""
        return self.transform(np.array(self.source(video)))  # uint8 (N, H, W, 3) -> (N, 3, S, S)

    @torch.inference_mode()
    def predict(
        self,
        video: str | os.PathLike,
        top: int = 5,
        *,
        limits=None,
        cancel: threading.Event | None = None,
    ) -> VideoPrediction:
        """Top classes of one video and its per-frame probabilities.

        Args:
            limits: A :class:`~rrn.data.decode.DecodeLimits` for a video decoded while the
                model runs (see the module docstring).
            cancel: Set it to stop between two pieces of such a video.

        Raises:
            VideoDecodeError: the video cannot be decoded (``VideoTooLongError``: over
                ``limits``).
            PredictionCancelled: ``cancel`` was set.
        """
        frame_probs = self._frame_probs(video, limits, cancel)  # (N, K)
        full = (
            frame_probs[self.context - 1 :] if frame_probs.shape[0] >= self.context else frame_probs
        )
        video_probs = full.mean(dim=0)  # (K,)
        k = min(top, len(self.classes))
        values, indices = video_probs.topk(k)
        path = Path(video)
        return VideoPrediction(
            path=str(video),
            top=[(self.classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())],
            video_probs=video_probs,
            frame_probs=frame_probs,
            times=_frame_times(
                path, frame_probs.shape[0], self.config.sample_every, self.config.fps
            ),
            extra={"chunks": int(full.shape[0]), "context": self.context},
        )

    def _frame_probs(self, video, limits, cancel) -> torch.Tensor:
        """(N, K) per-frame probabilities: piece by piece while decoding, or all at once for a
        cached video or a frame folder."""
        if self.source.cache is None and self.source.decoder == "pyav" and Path(video).is_file():
            pieces = self.model.forward_pieces(self._pieces(video, limits, cancel))
            return torch.cat([p.float().softmax(dim=-1).cpu() for p in pieces])
        frames = self.load(video).to(self.device)  # (N, 3, S, S)
        return self.model.forward_video(frames).float().softmax(dim=-1).cpu()

    def _pieces(self, video, limits, cancel) -> Iterator[torch.Tensor]:
        """(n <= PIECE, 3, S, S) transformed frames, as they are decoded."""
        from rrn.data.decode import iter_decoded

        piece: list[np.ndarray] = []
        for frame in iter_decoded(video, self.source.sampling, limits):
            piece.append(frame)
            if len(piece) == PIECE:
                yield self._piece(piece, cancel)
                piece = []
        if piece:
            yield self._piece(piece, cancel)

    def _piece(self, frames: list[np.ndarray], cancel) -> torch.Tensor:
        if cancel is not None and cancel.is_set():
            raise PredictionCancelled("the prediction was cancelled")
        return self.transform(np.stack(frames)).to(self.device)  # (n, H, W, 3) -> (n, 3, S, S)

    def predict_all(
        self, videos: Iterable[str | os.PathLike], top: int = 5
    ) -> Iterator[VideoPrediction | FailedVideo]:
        """:meth:`predict` for each video in turn; a video that cannot be decoded yields a
        :class:`FailedVideo` instead of stopping the others."""
        from rrn.data import VideoDecodeError

        for video in videos:
            try:
                yield self.predict(video, top=top)
            except VideoDecodeError as err:
                yield FailedVideo(str(video), err.reason)

    def plot_timeline(self, pred: VideoPrediction, path: str | os.PathLike, top: int = 5) -> None:
        """Per-frame probabilities of the video's top classes over time, as a PNG."""
        from rrn.plots import plot_timeline

        title = f"{Path(pred.path).name}: {pred.top[0][0]} ({pred.top[0][1]:.2f})"
        plot_timeline(pred.frame_probs, self.classes, path, times=pred.times, top=top, title=title)

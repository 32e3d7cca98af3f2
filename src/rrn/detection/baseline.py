"""The paper's GRU baseline for online action detection: a GRU (128 units, the paper's Table 1)
over frozen per-frame features, one score per class at every frame, trained with MiniROAD's
recipe (An et al., *MiniROAD: Minimal RNN Framework for Online Action Detection*, ICCV 2023,
``datasets/dataset.py`` and ``criterions/loss.py``):

* **windows**: each training item is the ``window`` frames ending at a frame of a training
  video (``window_stride`` frames apart, the first at a random offset each epoch), the hidden
  state from zero at the window's first frame; a window near the video's start begins at the
  video's first frame (MiniROAD pads zeros in front instead, which feeds the GRU frames that
  never occur live);
* **loss on the window's last steps**: only the last ``loss_steps`` frames of a window are
  targets (MiniROAD's ``NONUNIFORM`` loss: the last one), the frames whose past the window holds
  longest; the soft-target cross-entropy of the RRN's training, a multi-hot target divided by
  its sum (:mod:`rrn.train.step`); ambiguous frames are never a target;
* **online at test time**: the hidden state starts at zero at a test video's first frame and is
  carried through the whole video, one frame per step (:meth:`DetectionGRU.step`): the scores
  of the whole video in one pass (:meth:`DetectionGRU.forward`) are exactly those.

Pure torch and numpy (the model layer); reading feature folders and scoring is
:mod:`rrn.baselines.detection`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn


class DetectionGRU(nn.Module):
    """Z-normalised frame features -> GRU -> a linear classifier at every frame.

    Args:
        dim: Feature size C.
        num_classes: K, Background included.
        hidden: GRU units (the paper: 128).
        mean, std: (C,) z-normalisation (default: none, zeros and ones).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        hidden: int = 128,
        mean: Tensor | None = None,
        std: Tensor | None = None,
    ):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if mean is None else mean)
        self.register_buffer("std", torch.ones(dim) if std is None else std)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits at every frame: (B, N, C) features, zero-padded after each sequence's
        ``lengths`` (None: all N) -> (B, N, K). The hidden state starts at zero."""
        x = (x - self.mean) / self.std  # (B, N, C)
        if lengths is None:
            out, _ = self.gru(x)  # (B, N, hidden)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, _ = nn.utils.rnn.pad_packed_sequence(
                self.gru(packed)[0], batch_first=True, total_length=x.shape[1]
            )
        return self.fc(out)

    def step(self, x: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One frame of a live video: ``logits, h = gru.step(features, h)``.

        Args:
            x: (B, C) this frame's features.
            h: (1, B, hidden) the state after the previous frame (None: the video's start).

        Returns:
            Logits (B, K) and the new state.
        """
        out, h = self.gru(((x - self.mean) / self.std)[:, None], h)  # (B, 1, hidden)
        return self.fc(out[:, 0]), h


class Window(NamedTuple):
    """A training window: frames ``start .. end - 1`` of training video ``video``."""

    video: int
    start: int
    end: int


def training_windows(lengths: Sequence[int], *, window: int, stride: int, offset: int):
    """Every video's windows of at most ``window`` frames ending at frames ``offset``,
    ``offset + stride``, ... (clipped at the video's start), as MiniROAD draws them.

    Returns:
        A list of :class:`Window`, video by video.
    """
    if window < 1 or stride < 1 or not 0 <= offset < stride:
        raise ValueError(
            f"need window, stride >= 1 and 0 <= offset < stride, got {window}, {stride}, {offset}"
        )
    return [
        Window(v, max(0, last - window + 1), last + 1)
        for v, n in enumerate(lengths)
        for last in range(offset, n, stride)
    ]


class WindowBatch(NamedTuple):
    """A batch of windows, right-padded."""

    x: Tensor
    """(B, L, C) features."""
    lengths: Tensor
    """(B,) frames of each window."""
    soft: Tensor
    """(B, L, K) targets divided by their sum (zeros where no target)."""
    mask: Tensor
    """(B, L) bool: the frame is a target (among the window's last steps, not ambiguous)."""


def window_batch(windows: Sequence[Window], seqs, targets, ignore, loss_steps: int) -> WindowBatch:
    """The tensors of ``windows`` over the training videos' ``seqs`` ((N_i, C) tensors),
    ``targets`` ((N_i, K) multi-hot) and ``ignore`` ((N_i,) bool)."""
    size = max(w.end - w.start for w in windows)
    dim, num_classes = seqs[0].shape[1], targets[0].shape[1]
    x = torch.zeros(len(windows), size, dim)
    soft = torch.zeros(len(windows), size, num_classes)
    mask = torch.zeros(len(windows), size, dtype=torch.bool)
    for i, (v, start, end) in enumerate(windows):
        n = end - start
        x[i, :n] = seqs[v][start:end]
        y = torch.as_tensor(np.asarray(targets[v][start:end], dtype=np.float32))  # (n, K)
        soft[i, :n] = y / y.sum(dim=1, keepdim=True).clamp(min=1)
        keep = ~torch.as_tensor(np.asarray(ignore[v][start:end], dtype=bool))  # (n,)
        keep[: max(0, n - loss_steps)] = False
        mask[i, :n] = keep
    lengths = torch.tensor([w.end - w.start for w in windows])
    return WindowBatch(x, lengths, soft, mask)


def window_loss(logits: Tensor, batch: WindowBatch) -> Tensor:
    """Mean soft-target cross-entropy over the target frames of a batch: ``-sum_k (y_k / sum y)
    log softmax(z)_k``, the RRN's training loss on each window's last steps."""
    per_frame = -(batch.soft * logits.log_softmax(dim=-1)).sum(dim=-1)  # (B, L)
    return per_frame[batch.mask].mean()


def train_detection_gru(model: DetectionGRU, seqs, targets, ignore, cfg) -> list[float]:
    """Train ``model`` on the training videos' windows with Adam.

    Args:
        seqs, targets, ignore: Per training video: (N_i, C) features, (N_i, K) multi-hot
            labels, (N_i,) ambiguous frames.
        cfg: A :class:`~rrn.config.BaselineConfig` (``epochs``, ``lr``, ``weight_decay``,
            ``batch_size`` windows per step, ``window``, ``window_stride``, ``loss_steps``,
            ``seed``: every draw is a function of ``(seed, epoch)``).

    Returns:
        The mean loss of each epoch.
    """
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lengths = [len(s) for s in seqs]
    model.train()
    history = []
    for epoch in range(cfg.epochs):
        rng = np.random.default_rng((cfg.seed, epoch))
        windows = [
            w
            for w in training_windows(
                lengths,
                window=cfg.window,
                stride=cfg.window_stride,
                offset=int(rng.integers(cfg.window_stride)),
            )
            if not np.all(ignore[w.video][max(w.start, w.end - cfg.loss_steps) : w.end])
        ]
        order = rng.permutation(len(windows))
        losses = []
        for lo in range(0, len(order), cfg.batch_size):
            batch = window_batch(
                [windows[i] for i in order[lo : lo + cfg.batch_size]],
                seqs,
                targets,
                ignore,
                cfg.loss_steps,
            )
            loss = window_loss(model(batch.x, batch.lengths), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)) if losses else float("nan"))
    model.eval()
    return history


@torch.no_grad()
def video_probs(model: DetectionGRU, seq: Tensor) -> np.ndarray:
    """(N, K) float32 probabilities of every frame of a video: the GRU run online over its
    (N, C) features from a zero state (one pass; equal to :meth:`DetectionGRU.step` frame by
    frame)."""
    return model(seq[None])[0].softmax(dim=-1).numpy()

"""The paper's baselines, part two: the classifiers on frozen per-frame features (Sec. 4.1).

* :class:`AvgPoolClassifier`: the mean of a video's frame features (optionally z-normalised)
  and a linear layer (softmax regression);
* :class:`GRUClassifier`: a GRU (128 units in the paper) over the sequence of frame features,
  classifying from its last hidden state;
* :func:`znorm_stats`: their z-normalisation, from the training split only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def znorm_stats(
    train_seqs: Sequence[np.ndarray], pooled: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per feature from the training split only (of video means, or of frames)."""
    rows = np.stack([s.mean(0) for s in train_seqs]) if pooled else np.concatenate(train_seqs)
    mean = torch.from_numpy(rows.mean(0)).float()
    std = torch.from_numpy(rows.std(0)).float().clamp(min=1e-6)
    return mean, std


class AvgPoolClassifier(nn.Module):
    """Mean of the frame features -> (optional z-normalisation) -> linear layer."""

    def __init__(
        self,
        dim: int,
        num_classes: int,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if mean is None else mean)
        self.register_buffer("std", torch.ones(dim) if std is None else std)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) zero-padded sequences, lengths (B,) -> logits (B, K)."""
        pooled = x.sum(dim=1) / lengths[:, None].to(x.dtype)  # (B, N, C) -> (B, C)
        return self.fc((pooled - self.mean) / self.std)


class GRUClassifier(nn.Module):
    """A GRU (128 units in the paper) over the frame features; classifies its last state."""

    def __init__(
        self,
        dim: int,
        num_classes: int,
        hidden: int = 128,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim) if mean is None else mean)
        self.register_buffer("std", torch.ones(dim) if std is None else std)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std  # (B, N, C)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)  # h: (1, B, hidden), the state after each video's last frame
        return self.fc(h[0])

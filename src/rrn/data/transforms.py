"""Clip transforms: uint8 frames ``(T, H, W, 3)`` -> normalised float ``(T, 3, S, S)``.

One random draw per clip, applied to every frame of it: a chunk is a short piece of one
video, and jittering its frames independently would invent motion the RRN would then learn.

* train: multi-scale random crop (side = ``scale * min(H, W)``, scale from
  ``scales``, position uniform), resize to ``S``, horizontal flip with probability 1/2;
* eval: resize the short side to ``round(S * 8 / 7)`` (the decode-time default, so usually
  a no-op), then the centre ``S x S`` crop;
* eval views (:class:`EvalViews`, ``rrn eval --views 3crop [--flip]``): three ``S x S`` crops
  of the frame resized to short side ``S``, at the start, middle and end of its long side, so
  that together they cover the whole frame (the ``ThreeCrop`` of SlowFast and mmaction2),
  and/or each crop mirrored left-right; a video's prediction averages every view;
* both: ``/255`` and ImageNet mean/std normalisation (the backbone is ImageNet-pretrained).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from rrn.data.sampling import Sampling, default_short_side

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EvalViews:
    """The spatial views of an evaluation clip whose probabilities a video's prediction averages.

    ``crops=1``: the centre crop (the paper's protocol); ``crops=3``: three crops covering the
    frame (see the module docstring). ``flip``: each crop also mirrored left-right. Views are
    ordered crop by crop, each followed by its mirror.
    """

    crops: Literal[1, 3] = 1
    flip: bool = False

    def __post_init__(self) -> None:
        if self.crops not in (1, 3):
            raise ValueError(f"crops must be 1 or 3, got {self.crops}")

    @classmethod
    def named(cls, views: str, flip: bool = False) -> EvalViews:
        """From ``rrn eval``'s ``--views center|3crop`` and ``--flip``."""
        if views not in ("center", "3crop"):
            raise ValueError(f"views must be center or 3crop, got {views!r}")
        return cls(crops=3 if views == "3crop" else 1, flip=flip)

    @property
    def count(self) -> int:
        """Views per clip ``V``."""
        return self.crops * (2 if self.flip else 1)

    def describe(self) -> str:
        """``'1 centre crop'``, ``'3 crops x 2 flips'``, ..."""
        crops = "1 centre crop" if self.crops == 1 else "3 crops"
        return f"{crops} x 2 flips" if self.flip else crops


CENTRE_CROP = EvalViews()
"""The paper's evaluation view: one centre crop."""


class ClipTransform:
    """Crop, flip and normalise the frames of one clip.

    Args:
        frame_size: Output side ``S``.
        train: Random crop + flip (``True``) or centre crop (``False``).
        scales: Crop side as a fraction of the shorter frame side, drawn uniformly (train).
        hflip: Flip horizontally with probability 1/2 (train). Turn off when left/right is
            the class (e.g. ``rrn synth``'s MoveRight vs MoveLeft).
        views: The evaluation views :meth:`views_of` returns (eval).
    """

    def __init__(
        self,
        frame_size: int,
        train: bool,
        *,
        scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66),
        hflip: bool = True,
        views: EvalViews = CENTRE_CROP,
    ):
        if frame_size < 1:
            raise ValueError(f"frame_size must be >= 1, got {frame_size}")
        self.frame_size = frame_size
        self.train = train
        self.scales = scales
        self.hflip = hflip
        self.views = views
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(self, frames, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Transform one clip.

        Args:
            frames: uint8 ``(T, H, W, 3)`` array or tensor.
            rng: Randomness of the train jitter (ignored in eval); ``None`` draws a fresh one.

        Returns:
            float32 ``(T, 3, S, S)``.
        """
        x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got {tuple(x.shape)} {x.dtype}")
        x = x.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W)
        h, w = x.shape[-2:]
        s = self.frame_size
        flip = False
        if self.train:
            rng = rng if rng is not None else np.random.default_rng()
            side = max(1, round(min(h, w) * float(rng.choice(self.scales))))
            top = int(rng.integers(0, h - side + 1))
            left = int(rng.integers(0, w - side + 1))
            flip = bool(rng.random() < 0.5) and self.hflip  # drawn anyway: same stream of draws
            x = x[..., top : top + side, left : left + side]  # (T, 3, side, side)
            x = _resize(x.float(), s, s)
        else:
            short = default_short_side(s)
            nh, nw = (
                (short, max(s, round(w * short / h)))
                if h <= w
                else (max(s, round(h * short / w)), short)
            )
            x = _resize(x.float(), nh, nw)
            top, left = (nh - s) // 2, (nw - s) // 2
            x = x[..., top : top + s, left : left + s]  # (T, 3, S, S)
        x = x / 255.0
        if flip:
            x = x.flip(-1)
        return (x - self.mean) / self.std

    def views_of(self, frames) -> torch.Tensor:
        """The evaluation views of a clip (see :class:`EvalViews`).

        Args:
            frames: uint8 ``(T, H, W, 3)`` array or tensor.

        Returns:
            float32 ``(V, T, 3, S, S)``; with one view, ``V = 1`` and the view is ``self(frames)``.
        """
        if self.train:
            raise ValueError("views_of is for evaluation; this transform is a training one")
        if self.views.crops == 1:
            crops = [self(frames)]  # (T, 3, S, S)
        else:
            x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
            x = x.permute(0, 3, 1, 2).float()  # (T, H, W, 3) -> (T, 3, H, W)
            s = self.frame_size
            h, w = x.shape[-2:]
            nh, nw = (s, max(s, round(w * s / h))) if h <= w else (max(s, round(h * s / w)), s)
            x = (_resize(x, nh, nw) / 255.0 - self.mean) / self.std  # short side S: crops span it
            long = nw if h <= w else nh
            starts = (0, (long - s) // 2, long - s)  # start, middle, end of the long side
            crops = [x[..., :, a : a + s] if h <= w else x[..., a : a + s, :] for a in starts]
        if self.views.flip:
            crops = [v for c in crops for v in (c, c.flip(-1))]
        return torch.stack(crops)  # V x (T, 3, S, S) -> (V, T, 3, S, S)


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Antialiased bilinear resize of float ``(T, 3, H, W)`` (no rounding: exact for flat
    images)."""
    if tuple(x.shape[-2:]) == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)


@dataclass(frozen=True)
class InputSpec:
    """How frames must look to a trained model (what :func:`rrn.load_model` attaches to it).

    Frames are sampled and resized while decoding by ``sampling``, centre-cropped to
    ``frame_size`` (after resizing the short side to ``round(8/7 * frame_size)``), scaled to
    [0, 1] and normalised with ``mean`` / ``std`` per RGB channel.
    """

    frame_size: int
    sampling: Sampling
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def transform(self) -> ClipTransform:
        """uint8 ``(N, H, W, 3)`` frames -> float ``(N, 3, S, S)``, exactly as in evaluation."""
        return ClipTransform(self.frame_size, train=False)

    def to_dict(self) -> dict:
        s = self.sampling
        return {
            "frame_size": self.frame_size,
            "sample_every": s.sample_every,
            "fps": s.fps,
            "short_side": s.short_side,
            "crop_short_side": default_short_side(self.frame_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "channels": "RGB",
            "scale": "1/255 then (x - mean) / std",
        }

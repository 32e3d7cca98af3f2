"""The Recurrent Residual Network: a torchvision ResNet with temporal skip connections.

At each chosen residual block the previous frame's *block input* is added to the current
frame's residual sum, before the block's final ReLU (paper Sec. 3, eq. 2-4)::

    y_t = relu(F(x_t) + shortcut(x_t) + S(x_{t-1}))

with ``S`` the skip module of the model's skip type (:mod:`rrn.model.skips`: the identity,
eq. 2; a 1x1 convolution, eq. 3; its ReLU, eq. 4), which each skip block holds and calls
(:mod:`rrn.model.blocks`). Before a chunk's first frame the state is zero.

With K skip blocks at different depths the receptive field is exactly ``K + 1`` frames, and a
chunk's prediction is the output at its last frame. Frame ``t - k`` only has to go as deep as
the input of the k-th deepest skip block, so :meth:`RecurrentResNet.forward` computes just
that ("greedy" forwarding): every block runs once on the stack of frames that still matter at
its depth, batched over time. :meth:`RecurrentResNet.forward_video` runs every frame of a
whole video through the whole network once, carrying the skip states along.

Parameter names are torchvision's (``conv1``, ``layer4.2.conv1``, ``fc``) so ImageNet
weights load unchanged; the only new parameters are ``<block>.temporal.weight``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from rrn.model.archs import STAGES, get_arch, resolve_skip_blocks
from rrn.model.blocks import TemporalBlock, is_temporal
from rrn.model.info import ModelInfo
from rrn.model.skips import check_init, get_skip_type

if TYPE_CHECKING:
    from rrn.config import TrainConfig
    from rrn.data.transforms import InputSpec

# The skip states: the last block input seen at each skip block (None = zero state).
State = list


class RecurrentResNet(tv_resnet.ResNet):
    """A torchvision ResNet whose ``skip_blocks`` carry temporal skip connections.

    Build it with :func:`~rrn.model.build_model`. Inputs are clips ``(B, T, 3, H, W)``; the
    model sees frames through :meth:`_levels`, a flat list of the network's pieces in depth
    order. What it knows about itself is one record, :attr:`info`
    (:class:`~rrn.model.info.ModelInfo`); the properties below read it.
    """

    info: ModelInfo

    def __init__(
        self,
        arch: str,
        num_classes: int,
        skip_blocks: Sequence[str],
        skip_type: str,
        temporal_init: str = "kaiming",
    ) -> None:
        spec, skip = get_arch(arch), get_skip_type(skip_type)
        check_init(temporal_init)
        skip_blocks = resolve_skip_blocks(arch, skip_blocks)
        super().__init__(spec.block, list(spec.layers), num_classes=num_classes)
        for path in skip_blocks:
            block = self.get_submodule(path)
            block.temporal = skip.make(
                block.in_channels, block.out_channels, block.stride, temporal_init
            )
        self._skip_index = {p: i for i, p in enumerate(skip_blocks)}
        self.info = ModelInfo(arch=arch, skip_blocks=skip_blocks, skip_type=skip_type)

    # ------------------------------------------------------------------ what it is (model.info)
    @property
    def arch(self) -> str:
        return self.info.arch

    @property
    def skip_blocks(self) -> tuple[str, ...]:
        return self.info.skip_blocks

    @property
    def skip_type(self) -> str:
        return self.info.skip_type

    @property
    def temporal_context(self) -> int:
        """Receptive field in frames: number of skip blocks + 1."""
        return self.info.temporal_context

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    @property
    def config(self) -> dict[str, Any]:
        """What rebuilds the network: ``build_model(**model.config)`` (a checkpoint's
        ``model_config``)."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "skip_blocks": list(self.skip_blocks),
            "skip_type": self.skip_type,
        }

    @property
    def classes(self) -> list[str] | None:
        """Class names in label order (None on a model not loaded from a checkpoint)."""
        return None if self.info.classes is None else list(self.info.classes)

    @property
    def inputs(self) -> InputSpec | None:
        return self.info.inputs

    @property
    def train_config(self) -> TrainConfig | None:
        return self.info.train_config

    @property
    def checkpoint(self) -> Path | None:
        return self.info.checkpoint

    @property
    def choice(self) -> Mapping[str, Any] | None:
        return self.info.choice

    # ------------------------------------------------------------------ structure
    def temporal_parameter_names(self) -> list[str]:
        """Names of the parameters the temporal skips add (empty for identity skips)."""
        return [n for n, _ in self.named_parameters() if is_temporal(n)]

    def _levels(self) -> list[tuple[str, nn.Module]]:
        """The stem, then every residual block, in depth order."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        levels: list[tuple[str, nn.Module]] = [("stem", stem)]
        for s in STAGES:
            layer = getattr(self, f"layer{s}")
            levels += [(f"layer{s}.{i}", blk) for i, blk in enumerate(layer)]
        return levels

    def init_state(self) -> State:
        """The zero state before a video's first frame (one entry per skip block)."""
        return [None] * len(self.skip_blocks)

    # ------------------------------------------------------------------ forward passes
    def _run(
        self, x: Tensor, state: State | None, greedy: bool, taps: Sequence[str] = ()
    ) -> tuple[Tensor, State, dict[str, Tensor]]:
        """Run frames ``x`` (B, n, 3, H, W) through the backbone, level by level.

        Each level processes all its active frames in one batch of B*n. At a skip block the
        input of frame i-1 is added to frame i (``state`` holds the input of the frame before
        x[:, 0]; None = zero). With ``greedy`` the oldest active frame is dropped after each
        skip block as soon as no deeper skip needs it, so the last frame gets exactly its
        receptive field. Returns the final feature map of the frames still active
        (B, n', C, h, w), the new state (inputs of the last frame at every skip block) and the
        feature maps at ``taps`` (level names, e.g. "layer2.3").
        """
        B, n = x.shape[:2]
        K = len(self.skip_blocks)
        if greedy and n > K + 1:
            x = x[:, n - (K + 1) :]  # earlier frames lie outside the receptive field
            n = K + 1
        h = x.flatten(0, 1)  # (B, n, 3, H, W) -> (B*n, 3, H, W)
        new_state: State = list(state) if state is not None else self.init_state()
        tapped: dict[str, Tensor] = {}
        for name, module in self._levels():
            j = self._skip_index.get(name)
            if j is None:
                h = module(h)
            else:
                h = h.unflatten(0, (B, n))  # (B*n, C, h, w) -> (B, n, C, h, w)
                prev_in = state[j] if state is not None else None
                new_state[j] = h[:, -1]
                # Greedy: after this block only one frame per deeper skip, plus the last, matters.
                keep = min(n, K - j) if greedy else n
                h = self._skip_level(module, h, prev_in, keep)
                n = keep
            if name in taps:
                tapped[name] = h.unflatten(0, (B, n))
        return h.unflatten(0, (B, n)), new_state, tapped

    @staticmethod
    def _skip_level(block: TemporalBlock, h: Tensor, prev_in: Tensor | None, keep: int) -> Tensor:
        """One skip block on the last ``keep`` of the frames ``h`` (B, n, C, H, W).

        Frame i receives ``S(input of frame i-1)``; the frame before h[:, 0] is ``prev_in``.
        Where there is no previous frame (``prev_in`` None, start of a chunk or video) the
        temporal term is absent, i.e. zero. Returns (B*keep, C', H', W').
        """
        B, n = h.shape[:2]
        cur = h[:, n - keep :].flatten(0, 1)  # (B, keep, C, H, W) -> (B*keep, C, H, W)
        out = block.residual_sum(cur).unflatten(0, (B, keep))  # -> (B, keep, C', H', W')
        if keep < n:  # every kept frame has its predecessor among the active frames
            prev, first_is_zero = h[:, n - keep - 1 : n - 1], False
        elif prev_in is not None:
            prev, first_is_zero = torch.cat([prev_in[:, None], h[:, : n - 1]], dim=1), False
        else:
            prev, first_is_zero = h[:, : n - 1], True
        if prev.shape[1] > 0:
            term = block.temporal_term(prev.flatten(0, 1)).unflatten(0, (B, prev.shape[1]))
            if first_is_zero:
                out = torch.cat([out[:, :1], out[:, 1:] + term], dim=1)
            else:
                out = out + term
        return block.relu(out.flatten(0, 1))  # (B, keep, ...) -> (B*keep, ...)

    def forward(self, clip: Tensor, greedy: bool = True) -> Tensor:
        """Logits at the last frame of each clip.

        Args:
            clip: Float frames (B, T, 3, H, W). T may be shorter than the receptive field
                (the missing past is the zero state) or longer (earlier frames are ignored).
            greedy: Compute only what the last frame needs. ``False`` runs every frame
                through the whole network (same result in eval mode; for benchmarks).

        Returns:
            Logits (B, K).
        """
        return self.forward_head(self.forward_features(clip, greedy=greedy))

    def forward_features(self, clip: Tensor, greedy: bool = True) -> Tensor:
        """Final feature map of the last frame: (B, T, 3, H, W) -> (B, C, h, w)."""
        if clip.dim() != 5:
            raise ValueError(f"expected a clip (B, T, 3, H, W), got shape {tuple(clip.shape)}")
        feats, _, _ = self._run(clip, None, greedy)
        return feats[:, -1]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pool + classifier: (B, C, h, w) -> (B, K) (or (B, C) pooled)."""
        x = torch.flatten(self.avgpool(x), 1)  # (B, C, 1, 1) -> (B, C)
        return x if pre_logits else self.fc(x)

    def forward_video(self, frames: Tensor, segment: int = 64) -> Tensor:
        """Per-frame logits of a whole video, every frame processed once.

        Row t equals ``self(frames[max(0, t - T + 1): t + 1][None])`` in eval mode.

        Args:
            frames: (N, 3, H, W) or (B, N, 3, H, W).
            segment: Frames processed per batch; the skip states carry across segments,
                so memory stays bounded for long videos.

        Returns:
            Logits (N, K) or (B, N, K).
        """
        logits = []
        for feats, _ in self._stream(frames, segment, ()):
            logits.append(self.fc(feats))
        return self._unbatch(frames, torch.cat(logits, dim=1))

    def forward_pieces(self, pieces: Iterable[Tensor]) -> Iterator[Tensor]:
        """:meth:`forward_video` over a video that arrives in pieces (e.g. while it is decoded):
        yields each piece's per-frame logits, the skip states carried from piece to piece, so
        memory depends on the piece, not on the video's length. Pieces of ``segment`` frames
        give :meth:`forward_video`'s rows exactly.

        Args:
            pieces: (n, 3, H, W) each, consecutive frames of one video.

        Yields:
            Logits (n, K) per piece.
        """
        state = None
        for piece in pieces:
            feats, state, _ = self._run(piece[None], state, False, ())  # (1, n, C, h, w)
            yield self.fc(feats.mean(dim=(-2, -1)))[0]  # (1, n, C, h, w) -> (n, K)

    def video_features(
        self, frames: Tensor, stages: Sequence[int] = (2, 3, 4), segment: int = 64
    ) -> dict[int, Tensor]:
        """Globally average-pooled features at the end of ``stages``, for every frame.

        Args:
            frames: (N, 3, H, W) or (B, N, 3, H, W).
            stages: Stage numbers (1-4); the feature is the output of the stage's last block.
            segment: As in :meth:`forward_video`.

        Returns:
            {stage: (N, C_stage)} (or (B, N, C_stage)).
        """
        taps = self._stage_taps(stages)
        out: dict[int, list[Tensor]] = {s: [] for s in stages}
        for _, tapped in self._stream(frames, segment, tuple(taps)):
            for name, s in taps.items():
                # (B, n, C, h, w) -> (B, n, C)
                out[s].append(tapped[name].mean(dim=(-2, -1)))
        return {s: self._unbatch(frames, torch.cat(v, dim=1)) for s, v in out.items()}

    def feature_pieces(
        self, pieces: Iterable[Tensor], stages: Sequence[int] = (2, 3, 4)
    ) -> Iterator[dict[int, Tensor]]:
        """:meth:`video_features` over a video that arrives in pieces: yields each piece's
        pooled features, the skip states carried from piece to piece (as
        :meth:`forward_pieces` does for logits), so memory depends on the piece, not on the
        video's length. Pieces of ``segment`` frames give :meth:`video_features`' rows exactly.

        Args:
            pieces: (n, 3, H, W) each, consecutive frames of one video.
            stages: As in :meth:`video_features`.

        Yields:
            {stage: (n, C_stage)} per piece.
        """
        taps = self._stage_taps(stages)
        state = None
        for piece in pieces:
            _, state, tapped = self._run(piece[None], state, False, tuple(taps))
            yield {s: tapped[name].mean(dim=(-2, -1))[0] for name, s in taps.items()}

    def _stage_taps(self, stages: Sequence[int]) -> dict[str, int]:
        """The name of each stage's last block -> the stage; stages checked."""
        bad = [s for s in stages if s not in STAGES]
        if bad:
            raise ValueError(f"stages must be among {STAGES}, got {bad}")
        return {f"layer{s}.{len(getattr(self, f'layer{s}')) - 1}": s for s in stages}

    def step(self, frame: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One frame of a live video: ``logits, state = model.step(frame, state)``.

        Args:
            frame: (B, 3, H, W) or (3, H, W).
            state: From :meth:`init_state` or the previous call (None = start of video).

        Returns:
            Logits (B, K) (or (K,)) and the new state.
        """
        single = frame.dim() == 3
        x = frame[None, None] if single else frame[:, None]  # -> (B, 1, 3, H, W)
        feats, new_state, _ = self._run(x, state, greedy=False)
        logits = self.forward_head(feats[:, -1])
        return (logits[0] if single else logits), new_state

    def step_terms(self, frame: Tensor, terms: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """:meth:`step` with the state as plain tensors, the form an exported graph needs.

        The state of skip block j is the temporal term ``S(x_{t-1})`` it will add (shaped like
        the block's output), not the block input :meth:`step` keeps: at block j the output is
        ``relu(F(x_t) + shortcut(x_t) + terms[j])`` and the new ``terms[j]`` is
        ``S(x_t)``. All-zero terms are then exactly "no previous frame" (``step(frame,
        None)``), for every skip type; a zero block *input* would not be, since a projection
        shortcut's BatchNorm maps zero to its bias. The cost per frame is :meth:`step`'s:
        each term is computed once, one frame earlier.

        Args:
            frame: (B, 3, H, W).
            terms: One tensor per skip block, shaped as :meth:`term_shapes` says (batch B).

        Returns:
            Logits (B, K) and the terms for the next frame.
        """
        if len(terms) != len(self.skip_blocks):
            raise ValueError(
                f"expected {len(self.skip_blocks)} state tensors (one per skip "
                f"block {', '.join(self.skip_blocks)}), got {len(terms)}"
            )
        h, new_terms = frame, []
        for name, module in self._levels():
            j = self._skip_index.get(name)
            if j is None:
                h = module(h)
            else:
                new_terms.append(module.temporal_term(h))
                h = module.relu(module.residual_sum(h) + terms[j])
        return self.forward_head(h), new_terms

    def term_shapes(self, frame_size: int) -> list[tuple[int, ...]]:
        """Shape (1, C, h, w) of each skip block's state in :meth:`step_terms` at ``frame_size``."""
        param = next(self.parameters())
        x = torch.zeros(1, 3, frame_size, frame_size, device=param.device, dtype=param.dtype)
        shapes = []
        with torch.no_grad():
            for name, module in self._levels():
                x = module(x)  # a skip block without its term: the shapes are the same
                if name in self._skip_index:
                    shapes.append(tuple(x.shape))
        return shapes

    def _stream(self, frames: Tensor, segment: int, taps: tuple[str, ...]):
        """Yield (pooled features (B, n, C), taps) for consecutive segments of a video."""
        x = frames[None] if frames.dim() == 4 else frames  # (N, 3, H, W) -> (1, N, 3, H, W)
        if x.dim() != 5:
            raise ValueError(
                f"expected frames (N, 3, H, W) or (B, N, 3, H, W), got {tuple(frames.shape)}"
            )
        state = None
        segment = max(1, segment)  # the slice below must hold at least one frame
        for s in range(0, x.shape[1], segment):
            feats, state, tapped = self._run(x[:, s : s + segment], state, False, taps)
            pooled = feats.mean(dim=(-2, -1))  # (B, n, C, h, w) -> (B, n, C)
            yield pooled, tapped

    @staticmethod
    def _unbatch(frames: Tensor, out: Tensor) -> Tensor:
        return out[0] if frames.dim() == 4 else out

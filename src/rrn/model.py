"""The Recurrent Residual Network: a torchvision ResNet with temporal skip connections.

At each chosen residual block the previous frame's *block input* is added to the current
frame's residual sum, before the block's final ReLU (paper Sec. 3, eq. 2-4)::

    y_t = relu(F(x_t) + shortcut(x_t) + S(x_{t-1}))

with ``S`` the identity (eq. 2), a 1x1 convolution (eq. 3, ``"linear"``) or the ReLU of a 1x1
convolution (eq. 4, ``"nonlinear"``). Before a chunk's first frame the state is zero.

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

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from rrn.choices import Arch, names

if TYPE_CHECKING:
    from rrn.config import ModelConfig

ARCHS = names(Arch)  # declared once, in rrn.choices
WEIGHT_KEYWORDS = ("imagenet", "none")  # --weights / --source values that are not a file
SKIP_TYPES = ("identity", "linear", "nonlinear")
TEMPORAL_INITS = ("kaiming", "zero")
ALIASES = ("block1", "block2", "midblock4", "block4")
STAGES = (1, 2, 3, 4)

_ARCH_SPECS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3]),
    "resnet101": (tv_resnet.Bottleneck, [3, 4, 23, 3]),
    "resnet152": (tv_resnet.Bottleneck, [3, 8, 36, 3]),
}


def _check_arch(arch: str) -> None:
    if arch not in _ARCH_SPECS:
        hint = difflib.get_close_matches(arch, ARCHS, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}.{extra}")


def block_paths(arch: str) -> tuple[str, ...]:
    """All residual blocks of ``arch`` as torchvision module paths, in depth order."""
    _check_arch(arch)
    _, layers = _ARCH_SPECS[arch]
    return tuple(f"layer{s}.{i}" for s, n in zip(STAGES, layers) for i in range(n))


def _alias_targets(arch: str) -> dict[str, str]:
    _, layers = _ARCH_SPECS[arch]
    return {
        "block1": "layer1.0",  # first block of stage 1
        "block2": f"layer2.{layers[1] - 1}",  # last block of stage 2
        "midblock4": "layer4.0",  # the projection-shortcut block of stage 4
        "block4": f"layer4.{layers[3] - 1}",  # last block of stage 4 (paper's best)
    }


def resolve_skip_blocks(arch: str, names: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve block names (paths like ``"layer4.2"`` or the paper's aliases) to module paths.

    Args:
        arch: One of :data:`ARCHS`.
        names: Block names; a single comma-separated string is accepted too.

    Returns:
        The module paths in depth order.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones) or a block named twice.
    """
    _check_arch(arch)
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    paths = block_paths(arch)
    aliases = _alias_targets(arch)
    resolved: list[str] = []
    given: dict[str, str] = {}  # module path -> the name that asked for it
    for name in (n.strip() for n in names):
        key = name.lower().replace("_", "").replace("-", "") if name not in paths else name
        path = aliases.get(key, name if name in paths else None)
        if path is None:
            valid = list(ALIASES) + list(paths)
            hint = difflib.get_close_matches(name, valid, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"unknown skip block {name!r} for {arch}.{extra} Valid names: aliases "
                f"{', '.join(ALIASES)} or module paths {', '.join(paths)}."
            )
        if path in resolved:
            raise ValueError(
                f"skip blocks {given[path]!r} and {name!r} both resolve to {path}; each block "
                "can carry one temporal skip (T-1 skips must sit at different blocks)."
            )
        resolved.append(path)
        given[path] = name
    return tuple(sorted(resolved, key=paths.index))


def skips_for_context(arch: str, context: int) -> tuple[str, ...]:
    """The last ``context - 1`` blocks of ``arch``: the skips of a receptive field of ``context``.

    ``context=2`` gives the paper's best position (``block4``, the last block of stage 4).
    """
    paths = block_paths(arch)
    if not 1 <= context <= len(paths) + 1:
        raise ValueError(
            f"context must be between 1 and {len(paths) + 1} for {arch}, got {context}"
        )
    return paths[len(paths) - (context - 1) :]


class TemporalBlockMixin:
    """Adds ``S(x_{t-1})`` to a torchvision block's residual sum, before its final ReLU.

    Mixed into a copy of torchvision's ``BasicBlock`` / ``Bottleneck`` class, so every
    inherited parameter keeps its torchvision name; the only new module is ``temporal``
    (the 1x1 convolution of eq. 3/4), absent for the identity skip.
    """

    skip_type: str

    def init_temporal(self, skip_type: str, temporal_init: str) -> None:
        """Set up the temporal path of this block (called once, right after the class swap).

        ``identity`` adds no parameter: where the block changes shape (stride or channels),
        ``x_{t-1}`` goes through the block's own projection shortcut (``downsample``).
        ``linear``/``nonlinear`` use a 1x1 conv with the block's stride. Its weights are
        initialised as torchvision initialises convs (``kaiming``: He normal, fan-out) or to
        zero (``zero``: a pretrained net then starts out as the per-frame ResNet; only for
        ``linear``, since ``relu(0 * x)`` has no gradient).
        """
        if skip_type not in SKIP_TYPES:
            raise ValueError(f"skip_type must be one of {', '.join(SKIP_TYPES)}, got {skip_type!r}")
        if temporal_init not in TEMPORAL_INITS:
            raise ValueError(
                f"temporal_init must be one of {', '.join(TEMPORAL_INITS)}, got {temporal_init!r}"
            )
        if skip_type == "nonlinear" and temporal_init == "zero":
            raise ValueError(
                "temporal_init='zero' cannot train a 'nonlinear' skip: relu(W x) with W = 0 has "
                "zero gradient. Use temporal_init='kaiming', or skip_type='linear'."
            )
        self.skip_type = skip_type
        if skip_type == "identity":
            return
        conv1: nn.Conv2d = self.conv1  # type: ignore[attr-defined]
        in_ch, out_ch = conv1.in_channels, self._out_channels()
        # type: ignore[attr-defined]
        conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=self.stride, bias=False)
        conv.to(device=conv1.weight.device, dtype=conv1.weight.dtype)
        if temporal_init == "zero":
            nn.init.zeros_(conv.weight)
        else:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        self.temporal = conv  # type: ignore[assignment]

    def temporal_term(self, x_prev: Tensor) -> Tensor:
        """``S(x_{t-1})``, shaped like the block's output."""
        if self.skip_type == "identity":
            downsample = self.downsample  # type: ignore[attr-defined]
            return x_prev if downsample is None else downsample(x_prev)
        out = self.temporal(x_prev)
        return F.relu(out) if self.skip_type == "nonlinear" else out


class TemporalBasicBlock(TemporalBlockMixin, tv_resnet.BasicBlock):
    def _out_channels(self) -> int:
        return self.conv2.out_channels

    def residual_sum(self, x: Tensor) -> Tensor:
        """``F(x) + shortcut(x)`` of torchvision's BasicBlock, before the final ReLU."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class TemporalBottleneck(TemporalBlockMixin, tv_resnet.Bottleneck):
    def _out_channels(self) -> int:
        return self.conv3.out_channels

    def residual_sum(self, x: Tensor) -> Tensor:
        """``F(x) + shortcut(x)`` of torchvision's Bottleneck, before the final ReLU."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


_TEMPORAL_CLASS = {
    tv_resnet.BasicBlock: TemporalBasicBlock,
    tv_resnet.Bottleneck: TemporalBottleneck,
}

# The skip states: the last block input seen at each skip block (None = zero state).
State = list


class RecurrentResNet(tv_resnet.ResNet):
    """A torchvision ResNet whose ``skip_blocks`` carry temporal skip connections.

    Build it with :func:`build_model`. Inputs are clips ``(B, T, 3, H, W)``; the model sees
    frames through :meth:`_levels`, a flat list of the network's pieces in depth order.
    """

    # Set by rrn.load_model on a trained model: class names, input settings (InputSpec), the
    # TrainConfig it was trained with, and the checkpoint's path. None on a fresh model.
    classes: list[str] | None = None
    inputs: object = None
    train_config: object = None
    checkpoint: object = None

    def __init__(
        self,
        arch: str,
        num_classes: int,
        skip_blocks: Sequence[str],
        skip_type: str,
        temporal_init: str = "kaiming",
    ) -> None:
        _check_arch(arch)
        block, layers = _ARCH_SPECS[arch]
        super().__init__(block, layers, num_classes=num_classes)
        self.arch = arch
        self.skip_type = skip_type
        self.skip_blocks = resolve_skip_blocks(arch, skip_blocks)
        if skip_type not in SKIP_TYPES:
            raise ValueError(f"skip_type must be one of {', '.join(SKIP_TYPES)}, got {skip_type!r}")
        for path in self.skip_blocks:
            blk = self.get_submodule(path)
            # Swap the class in place: the block keeps its torchvision modules and names and
            # gains residual_sum/temporal_term (and a `temporal` conv for linear/nonlinear skips).
            blk.__class__ = _TEMPORAL_CLASS[type(blk)]
            blk.init_temporal(skip_type, temporal_init)
        self._skip_index = {p: i for i, p in enumerate(self.skip_blocks)}
        self.config = {
            "arch": arch,
            "num_classes": num_classes,
            "skip_blocks": list(self.skip_blocks),
            "skip_type": skip_type,
        }

    # ------------------------------------------------------------------ structure
    @property
    def temporal_context(self) -> int:
        """Receptive field in frames: number of skip blocks + 1."""
        return len(self.skip_blocks) + 1

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def temporal_parameter_names(self) -> list[str]:
        """Names of the parameters the temporal skips add (empty for identity skips)."""
        return [n for n, _ in self.named_parameters() if ".temporal." in n]

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
    def _skip_level(
        block: TemporalBlockMixin, h: Tensor, prev_in: Tensor | None, keep: int
    ) -> Tensor:
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
        bad = [s for s in stages if s not in STAGES]
        if bad:
            raise ValueError(f"stages must be among {STAGES}, got {bad}")
        taps = {f"layer{s}.{len(getattr(self, f'layer{s}')) - 1}": s for s in stages}
        out: dict[int, list[Tensor]] = {s: [] for s in stages}
        for _, tapped in self._stream(frames, segment, tuple(taps)):
            for name, s in taps.items():
                # (B, n, C, h, w) -> (B, n, C)
                out[s].append(tapped[name].mean(dim=(-2, -1)))
        return {s: self._unbatch(frames, torch.cat(v, dim=1)) for s, v in out.items()}

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


def _load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A torchvision-format state dict from ``path`` (also accepts an rrn checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; pass weights=None, 'imagenet' or the path of a "
            "torchvision ResNet state dict (.pth)"
        )
    from rrn.files import load_torch_file

    try:
        obj = load_torch_file(path)
    except ValueError as reason:
        raise ValueError(
            f"weights file {path} is not a file torch can load safely ({reason}); pass none, "
            "imagenet, a torchvision ResNet state dict (.pth) or an rrn checkpoint (RUN/last.pt)"
        ) from None
    for key in ("model", "state_dict"):  # rrn checkpoints and common training scripts
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} does not hold a state dict (a mapping of names to tensors); pass "
            "a torchvision ResNet state dict (.pth) or an rrn checkpoint "
            "(RUN/last.pt)"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


class WeightsUnavailableError(OSError):
    """torchvision's ImageNet weights are neither in its cache nor downloadable here."""


def _imagenet_state_dict(arch: str) -> dict[str, Tensor]:
    """torchvision's ImageNet weights of ``arch``: from its cache (``$TORCH_HOME``), else
    downloaded.

    Raises:
        WeightsUnavailableError: offline and not cached; the message names the ways out.
    """
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    try:
        return weights.get_state_dict(progress=True)
    except OSError as err:  # urllib's URLError and socket errors are OSErrors
        reason = getattr(err, "reason", None) or err.strerror or err
        file = Path(weights.url).name
        raise WeightsUnavailableError(
            f"cannot download torchvision's ImageNet weights for {arch} ({reason}); train from "
            f"scratch with --weights none, or download {weights.url} elsewhere and pass "
            f"--weights /path/to/{file} (a torchvision state dict; or put it in "
            f"$TORCH_HOME/hub/checkpoints/ where torchvision looks first)"
        ) from None


def load_backbone_weights(
    model: RecurrentResNet, state_dict: dict[str, Tensor]
) -> dict[str, list[str]]:
    """Load a torchvision ResNet state dict into ``model``.

    The classifier is kept from ``state_dict`` only when its shape matches ``num_classes``;
    otherwise it stays freshly initialised. The only keys allowed to be missing are the
    temporal parameters; an unexpected key is an error.

    Returns:
        ``{"missing": [...], "unexpected": [], "skipped": [...]}`` (skipped = classifier keys
        left out for a different number of classes).
    """
    own = model.state_dict()
    skipped = [
        k
        for k in ("fc.weight", "fc.bias")
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    state_dict = {k: v for k, v in state_dict.items() if k not in skipped}
    # load_state_dict raises a RuntimeError listing every mismatch (e.g. resnet50 weights into
    # resnet18); say in one line which model the weights do not fit.
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise ValueError(
            f"weights do not fit {model.arch}: shapes differ for {', '.join(wrong[:3])}{more}. "
            f"Pass a state dict of torchvision's {model.arch}."
        )
    result = model.load_state_dict(state_dict, strict=False)
    missing = [
        k for k in result.missing_keys if k not in skipped and k not in ("fc.weight", "fc.bias")
    ]
    not_temporal = [k for k in missing if ".temporal." not in k]
    if not_temporal or result.unexpected_keys:

        def few(keys: list[str]) -> str:  # a handful of names, not a hundred
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            return (", ".join(keys[:3]) + more) or "none"

        raise ValueError(
            f"weights do not fit {model.arch}: {len(not_temporal)} tensors missing "
            f"({few(not_temporal)}), "
            f"{len(result.unexpected_keys)} unexpected ({few(list(result.unexpected_keys))}). Pass "
            f"a state dict of torchvision's {model.arch}."
        )
    return {"missing": list(missing), "unexpected": [], "skipped": skipped}


def build_model(
    arch: str = "resnet50",
    num_classes: int = 101,
    skip_blocks: str | Sequence[str] = ("block4",),
    skip_type: str = "identity",
    weights: str | os.PathLike | None = None,
    temporal_init: str = "kaiming",
) -> RecurrentResNet:
    """Build a Recurrent Residual Network.

    Args:
        arch: torchvision ResNet: resnet18, resnet34, resnet50 (the paper's), resnet101, resnet152.
        num_classes: Number of action classes K (the classifier ``fc`` is sized to it).
        skip_blocks: Blocks with a temporal skip: module paths (``"layer4.2"``) or the paper's
            aliases ``block1`` (``layer1.0``), ``block2`` (last block of stage 2),
            ``midblock4`` (``layer4.0``), ``block4`` (last block of stage 4). Empty = a plain
            per-frame ResNet. The receptive field is ``len(skip_blocks) + 1`` frames.
        skip_type: ``identity`` (eq. 2), ``linear`` (1x1 conv, eq. 3) or ``nonlinear``
            (relu of a 1x1 conv, eq. 4).
        weights: None (random init), ``"imagenet"`` (torchvision's ImageNet weights for
            ``arch``, downloaded by torchvision) or the path of a torchvision state dict.
            The classifier is re-initialised when its size differs from ``num_classes``.
        temporal_init: ``kaiming`` or ``zero`` (linear skips only: a pretrained network then
            starts out exactly as the per-frame ResNet).

    Returns:
        The model; ``model.config`` rebuilds it via ``build_model(**model.config)`` and
        ``model.weights_report`` tells what loading the weights did.
    """
    if isinstance(skip_blocks, str):
        skip_blocks = [s.strip() for s in skip_blocks.split(",") if s.strip()]
    model = RecurrentResNet(arch, num_classes, skip_blocks, skip_type, temporal_init)
    model.weights_report = None
    keyword = weights_keyword(weights)
    if keyword != "none":
        if keyword == "imagenet":
            state_dict = _imagenet_state_dict(arch)
        else:
            state_dict = _load_state_dict_file(weights)
        model.weights_report = load_backbone_weights(model, state_dict)
    return model


def weights_keyword(value) -> str | None:
    """``"imagenet"`` or ``"none"`` when ``value`` (``--weights``, a feature ``--source``) is one
    of those keywords, in any case (None and ``""`` mean ``"none"``); None when it names a file.
    The one place those words are recognised."""
    word = "none" if value is None else str(value).strip().lower() or "none"
    return word if word in WEIGHT_KEYWORDS else None


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total and temporal (new) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    temporal = sum(p.numel() for n, p in model.named_parameters() if ".temporal." in n)
    return {"total": total, "temporal": temporal}


def chunk_gflops(model: RecurrentResNet, context: int, size: int, greedy: bool = True) -> float:
    """Forward GFLOPs (multiply-add = 2 FLOPs) of one chunk of ``context`` frames at ``size``."""
    from torch.utils.flop_counter import FlopCounterMode

    clip = torch.zeros(1, context, 3, size, size)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip, greedy=greedy)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def resolve_skips(model_cfg: ModelConfig) -> tuple[str, ...]:
    """The module paths of the temporal skips from ``--skip`` / ``--context`` (see ModelConfig)."""
    from rrn.config import ConfigError

    m = model_cfg
    if m.skip is None:
        if m.context:
            return skips_for_context(m.arch, m.context)
        return resolve_skip_blocks(m.arch, ["block4"])
    skips = resolve_skip_blocks(m.arch, list(m.skip))
    if m.context is not None and len(skips) + 1 != m.context:
        raise ConfigError(
            f"--context {m.context} needs {m.context - 1} temporal skip(s) but --skip "
            f"{','.join(m.skip)} resolves to {len(skips)} ({', '.join(skips) or 'none'})"
        )
    return skips

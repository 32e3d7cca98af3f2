"""Training configuration: one dataclass per concern, the ``rrn train`` flags generated from them.

Precedence, lowest first: the dataclass defaults (or, with ``--resume``, the config stored in
the run's checkpoint), then a YAML file (``--config``), then command-line flags. Every field is
documented by the string under it; that string is also the flag's ``--help``. Each dataclass
validates itself in ``__post_init__`` so a bad value fails before any data is read.

A YAML file may be nested by section (``optim: {lr: 1e-4}``) or flat (``lr: 1e-4``); an unknown
key or flag is an error that names it and suggests the closest valid one.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import functools
import inspect
import math
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

# Same as rrn.model.ARCHS; repeated so that parsing a config never has to import the model.
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
SCHEDULES = ("constant", "step", "cosine")


class ConfigError(ValueError):
    """A config value, key or flag is wrong; the message says which and what to do."""


def _hidden(**meta: Any) -> dict[str, Any]:
    return {"hidden": True, **meta}


# --------------------------------------------------------------------------------------------
# The dataclasses
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    dataset: Literal["ucf101", "hmdb51", "list"] = "ucf101"
    """Split-file format: ucf101 or hmdb51 official splits, or list (--train-list/--test-list, or
    without them one folder per class under --data-root, split by group into 3 folds)."""
    data_root: str | None = None
    """Folder with the videos (UCF-101: <root>/<Class>/<video>.avi)."""
    split_dir: str | None = None
    """Folder with the official split files (default: --data-root)."""
    split: int = 1
    """Which official train/test split (1, 2 or 3)."""
    train_list: str | None = None
    """With --dataset list: text file of training videos, one 'path label' a line."""
    test_list: str | None = None
    """With --dataset list: text file of test videos, one 'path label' a line."""
    sample_every: int = 10
    """Keep every n-th frame of a video; consecutive kept frames form a chunk."""
    fps: float | None = None
    """Sample frames evenly in time at this rate instead of every --sample-every-th frame
    (which is then ignored; default: use --sample-every)."""
    frame_size: int = 224
    """Side of the square crop fed to the network, in pixels."""
    short_side: int | None = None
    """Resize each frame's short side to this before cropping (default: the data layer's)."""
    chunks_per_video: int = 1
    """Training chunks drawn from each video per epoch."""
    eval_stride: int | None = None
    """Stride, in sampled frames, between the chunks of a test video (default: data layer's)."""
    cache_dir: str | None = None
    """Frame cache folder, read and filled (default: <data-root>/.rrn-cache when rrn cache has
    built it, else no cache)."""
    decoder: str = "auto"
    """Video decoding backend passed to the data layer."""
    hflip: bool = True
    """Random horizontal flips in training (turn off when left/right is the class, e.g. for
    rrn synth data)."""
    missing: Literal["error", "skip"] = "error"
    """A video listed in the split files but missing on disk: error, or skip it with a
    warning."""

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, ("ucf101", "hmdb51", "list"))
        _check_choice("missing", self.missing, ("error", "skip"))
        if self.split not in (1, 2, 3):
            raise ConfigError(f"--split must be 1, 2 or 3, got {self.split}")
        _check_positive("sample_every", self.sample_every)
        _check_positive("frame_size", self.frame_size)
        _check_positive("chunks_per_video", self.chunks_per_video)
        for name in ("fps", "short_side", "eval_stride"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))


@dataclass
class ModelConfig:
    arch: Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"] = "resnet50"
    """ResNet depth the recurrent residual network is built on."""
    skip: tuple[str, ...] | None = None
    """Blocks with a temporal skip, comma-separated aliases (block1, block2, midblock4, block4)
    or module paths (layer4.2); 'none' for a per-frame ResNet. Default: from --context, else
    block4."""
    skip_type: Literal["identity", "linear", "nonlinear"] = "identity"
    """How the previous frame's features enter a temporal skip: identity (eq. 2), linear 1x1
    conv (eq. 3) or nonlinear relu(1x1 conv) (eq. 4)."""
    context: int | None = None
    """Temporal context T = frames per training chunk = number of skips + 1. Alone it picks the
    last T-1 blocks; with --skip it must agree."""
    weights: str = "imagenet"
    """Initial weights: none, imagenet, a torchvision state dict, or an rrn checkpoint (its
    classifier is dropped when the class count differs)."""
    temporal_init: Literal["kaiming", "zero"] = "kaiming"
    """Initialisation of the temporal skip parameters."""
    freeze: tuple[str, ...] = ()
    """Stages kept frozen (weights and BatchNorm statistics), comma-separated from: stem,
    layer1, layer2, layer3, layer4."""
    sync_bn: bool = False
    """Under DDP, synchronise BatchNorm statistics across processes."""

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("temporal_init", self.temporal_init, ("kaiming", "zero"))
        _check_choice("skip_type", self.skip_type, ("identity", "linear", "nonlinear"))
        if self.context is not None:
            _check_positive("context", self.context)
        if self.skip is not None and self.context is not None:
            if len(self.skip) + 1 != self.context:
                raise ConfigError(
                    f"--context {self.context} needs {self.context - 1} temporal skip(s) but "
                    f"--skip names {len(self.skip)} ({','.join(self.skip) or 'none'}); "
                    "give only one of the two, or make them agree"
                )
        for stage in self.freeze:
            _check_choice("freeze", stage, STAGES)
        if not self.weights:
            raise ConfigError("--weights must be none, imagenet or a file path")


@dataclass
class OptimConfig:
    epochs: int = 10
    """Passes over the training data."""
    batch_size: int = 8
    """Chunks per forward/backward (micro-batch); bounds memory, not the optimiser step."""
    lr: float = 1e-4
    """Adam learning rate at the start of the schedule."""
    weight_decay: float = 0.0
    """L2 weight decay added by Adam."""
    update_every: float = 0.01
    """Chunks per optimiser step: a fraction in (0, 1] of the training chunks (0.01 = 1%, the
    paper's setting) or an integer >= 1 (a number of chunks). Gradients are accumulated."""
    schedule: Literal["constant", "step", "cosine"] = "constant"
    """Learning-rate schedule over the optimiser steps."""
    lr_milestones: tuple[int, ...] = ()
    """With --schedule step: epochs after which the learning rate is multiplied by --lr-gamma."""
    lr_gamma: float = 0.1
    """With --schedule step: factor applied at each milestone."""
    warmup_steps: int = 0
    """Linear warm-up from 0 over this many optimiser steps."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value (default: no clipping)."""

    def __post_init__(self) -> None:
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        ue = self.update_every
        if isinstance(ue, bool) or not isinstance(ue, int | float):
            raise ConfigError(f"--update-every must be a number, got {ue!r}")
        if isinstance(ue, int) and ue < 1:
            raise ConfigError(f"--update-every {ue}: an integer means chunks and must be >= 1")
        if isinstance(ue, float) and not (0.0 < ue <= 1.0):
            raise ConfigError(
                f"--update-every {ue}: a fraction of the training data must be in (0, 1]; "
                "write an integer (e.g. 64) for a number of chunks"
            )
        _check_choice("schedule", self.schedule, SCHEDULES)
        if self.schedule == "step" and not self.lr_milestones:
            raise ConfigError("--schedule step needs --lr-milestones, e.g. --lr-milestones 4,8")
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ConfigError(f"--lr-milestones must be increasing, got {self.lr_milestones}")
        if not (0 < self.lr_gamma <= 1):
            raise ConfigError(f"--lr-gamma must be in (0, 1], got {self.lr_gamma}")
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.grad_clip is not None:
            _check_positive("grad_clip", self.grad_clip)


@dataclass
class RunConfig:
    out: str = "runs/rrn"
    """Run directory: config.yaml, last.pt, best.pt, log.jsonl, curves.png, eval results."""
    seed: int = 0
    """Seeds initialisation, data order and augmentation; equal seeds give equal runs."""
    device: str = "auto"
    """cuda, cuda:N, cpu, or auto (cuda when available). Under torchrun each process takes
    cuda:LOCAL_RANK."""
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA (auto = bf16 where supported); ignored on CPU."""
    channels_last: bool = True
    """Use the channels_last memory format on CUDA (ignored on CPU)."""
    workers: int = 4
    """DataLoader worker processes per training process (0 = load in the main process)."""
    pin_memory: bool = True
    """Pin host memory for faster copies to the GPU (ignored on CPU)."""
    checkpoint_every: int = 50
    """Also write RUN/last.pt every this many optimiser steps within an epoch (0 = only at the
    end of each epoch)."""
    val_every: int = 1
    """Evaluate on the test split every this many epochs (0 = never); best.pt follows its video
    accuracy, else the training loss."""
    log_every: int = 1
    """Write a line to RUN/log.jsonl every this many optimiser steps."""
    progress: bool = True
    """Show progress bars."""
    resume: bool = False
    """Continue the run in --out from its last.pt (same data order and weights as a run that
    was never interrupted)."""
    overwrite: bool = False
    """Start afresh in an --out that already holds a run (its checkpoints and log are
    replaced)."""
    fault: str | None = field(default=None, metadata=_hidden())
    """Testing only: 'crash@N' raises after optimiser step N, 'nan@N' makes step N's loss NaN."""

    def __post_init__(self) -> None:
        _check_choice("amp", self.amp, ("auto", "none", "bf16", "fp16"))
        if not self.out:
            raise ConfigError("--out must name a run directory")
        for name in ("workers", "checkpoint_every", "val_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)}")
        _check_positive("log_every", self.log_every)
        if self.device != "auto" and not (
            self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")
        ):
            raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.fault is not None:
            parse_fault(self.fault)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


@dataclass
class TrainConfig:
    """Everything ``rrn train`` needs; saved as RUN/config.yaml and in every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        lists = (self.data.train_list, self.data.test_list)
        if self.data.dataset == "list" and any(lists) and not all(lists):
            raise ConfigError(
                "--dataset list takes both --train-list and --test-list, or neither (then one "
                "folder per class under --data-root, split by --split, see rrn.data.splits)"
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, nested dict (lists for tuples): safe for YAML, JSON and ``weights_only``."""
        return {
            name: {k: _plain(v) for k, v in dataclasses.asdict(getattr(self, name)).items()}
            for name in SECTIONS
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a nested or flat dict; unknown keys raise :class:`ConfigError`."""
        return resolve_config([(source, values)])


def parse_fault(spec: str) -> tuple[str, int]:
    """``'crash@3'`` -> ``('crash', 3)``: the testing hook of ``--fault``."""
    kind, _, step = spec.partition("@")
    if kind not in ("crash", "nan") or not step.isdigit():
        raise ConfigError(f"--fault expects crash@N or nan@N, got {spec!r}")
    return kind, int(step)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _check_positive(name: str, value: float) -> None:
    if value is None or value <= 0:
        raise ConfigError(f"--{_flag(name)} must be > 0, got {value}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"--{_flag(name)}: {value!r} is not one of {', '.join(choices)}{did}"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Field introspection: types and the doc strings under each field
# --------------------------------------------------------------------------------------------


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass, whitespace collapsed."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (frozen app): no help text, still works
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if typing.get_origin(tp) is tuple:
        return "a comma-separated list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
        tp, str(tp)
    )


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert a YAML or command-line value to a field's type, with an error naming ``name``."""
    base, optional = _strip_optional(tp)
    # For a list, 'none' means the empty list (--skip none: no temporal skip), not "unset".
    is_list = typing.get_origin(base) is tuple
    if value is None or (
        optional and not is_list and isinstance(value, str) and value.lower() in ("none", "null")
    ):
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required ({_describe(base)})")
    origin = typing.get_origin(base)
    try:
        if origin is tuple:
            item_tp = typing.get_args(base)[0]
            if isinstance(value, str):
                parts = [p.strip() for p in value.split(",") if p.strip()]
                if parts == ["none"]:
                    parts = []
            elif isinstance(value, list | tuple):
                parts = list(value)
            else:
                parts = [value]
            return tuple(coerce(p, item_tp, name) for p in parts)
        if origin is Literal:
            return str(value)  # checked against the choices in __post_init__
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base is float:
            # An integer-looking update_every means chunks, so keep ints as ints here.
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            text = str(value).strip()
            return int(text) if text.lstrip("+-").isdigit() else float(text)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {_describe(base)}, got {value!r}") from None
    return value


def all_keys() -> dict[str, tuple[str, str]]:
    """Every accepted key, flat (``lr``) and dotted (``optim.lr``) -> (section, field)."""
    keys: dict[str, tuple[str, str]] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            keys[f.name] = (section, f.name)
            keys[f"{section}.{f.name}"] = (section, f.name)
    return keys


def _unknown(key: str, valid: typing.Iterable[str], where: str, prefix: str = "") -> ConfigError:
    hint = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    did = f"; did you mean {prefix}{hint[0]!r}?" if hint else ""
    return ConfigError(f"{where}: unknown key {key!r}{did}")


def flatten(values: dict[str, Any], where: str) -> dict[tuple[str, str], Any]:
    """Nested-or-flat dict -> {(section, field): value}; unknown keys raise."""
    keys = all_keys()
    out: dict[tuple[str, str], Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            names = {f.name for f in dataclasses.fields(SECTIONS[key])}
            for sub, sub_value in value.items():
                if sub not in names:
                    raise _unknown(f"{key}.{sub}", [f"{key}.{n}" for n in names] + list(keys), where)
                out[(key, sub)] = sub_value
        elif key in keys:
            out[keys[key]] = value
        else:
            raise _unknown(key, keys, where)
    return out


def resolve_config(layers: list[tuple[str, dict[str, Any]]]) -> TrainConfig:
    """Apply ``layers`` (name, values) in order over the defaults and validate the result.

    Args:
        layers: e.g. ``[("checkpoint", saved), ("exp.yaml", yaml_values), ("flags", flags)]``.

    Returns:
        The validated :class:`TrainConfig`.
    """
    merged: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for where, values in layers:
        for (section, name), value in flatten(values, where).items():
            tp = _hints(SECTIONS[section])[name]
            label = f"--{_flag(name)}" if where == "flags" else f"{where}: {section}.{name}"
            merged[section][name] = coerce(value, tp, label)
    return TrainConfig(**{name: cls(**merged[name]) for name, cls in SECTIONS.items()})


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return values


# --------------------------------------------------------------------------------------------
# Command line generated from the dataclasses
# --------------------------------------------------------------------------------------------


class SuggestingArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unknown-flag error suggests the closest valid flag."""

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [a for a in extras if a.startswith("-")]
        if unknown:
            flag = unknown[0].split("=", 1)[0]
            valid = [s for a in self._actions for s in a.option_strings]
            hint = difflib.get_close_matches(flag, valid, n=1, cutoff=0.5)
            did = f"; did you mean {hint[0]}?" if hint else ""
            self.error(f"unrecognized argument {flag}{did}")
        elif extras:
            self.error(f"unexpected argument {extras[0]!r}")
        return namespace, extras


def make_suggesting(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a parser made by ``add_subparsers().add_parser`` the suggesting error."""
    parser.__class__ = SuggestingArgumentParser
    return parser


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per config field, grouped by section; absent flags stay absent."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options")
        docs = field_docs(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            tp, _ = _strip_optional(_hints(cls)[f.name])
            default = getattr(defaults, f.name)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            text = docs.get(f.name, "")
            helptext = argparse.SUPPRESS if f.metadata.get("hidden") else f"{text} [{shown}]"
            kwargs: dict[str, Any] = {
                "dest": f"{section}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": helptext.replace("%", "%%"),
            }
            if tp is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["metavar"] = _metavar(f.name, tp)
            group.add_argument(f"--{_flag(f.name)}", **kwargs)


def _metavar(name: str, tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "{" + ",".join(map(str, typing.get_args(tp))) + "}"
    return name.upper()


def flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config flags actually given on the command line, nested by section."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in vars(args).items():
        section, dot, name = key.partition(".")
        if dot and section in SECTIONS:
            out.setdefault(section, {})[name] = value
    return out


def describe_changes(old: TrainConfig, new: TrainConfig) -> list[str]:
    """``['optim.epochs: 2 -> 3', ...]`` for the fields that differ."""
    a, b = old.to_dict(), new.to_dict()
    return [
        f"{s}.{k}: {a[s][k]!r} -> {b[s][k]!r}" for s in a for k in a[s] if a[s][k] != b[s][k]
    ]


if __name__ == "__main__":  # print the defaults as a YAML template
    sys.stdout.write(TrainConfig().to_yaml())

"""A model package folder: its files, written (:func:`write_package`) and read
(:func:`read_package`).

* ``model.safetensors``: the state dict, nothing executable (safetensors holds tensors and a
  header of strings, so loading a package runs no code, as a ``weights_only`` checkpoint);
* ``config.json`` (:func:`package_config`)::

    {"format": "rrn-package", "rrn_version": "0.1.0",
     "checkpoint_format": "rrn-checkpoint", "checkpoint_version": 1,
     "model": {"arch", "num_classes", "skip_blocks", "skip_type"},  # build_model(**model)
     "classes": [...], "background_class": "Background" | null,
     "inputs": {"frame_size", "sample_every", "fps", "short_side", "mean", "std", ...},
     "checkpoint": {"file": "best.pt", "chosen_by", "description", "epoch", "global_step"},
     "train_config": {...},  # the TrainConfig, less the paths of the machine that trained it
     "torch_version": "2.14.1"}

* ``README.md``: the model card (:mod:`rrn.package.card`).

Reading a package gives what a checkpoint holds (``model``, ``model_config``, ``classes``,
``config``, ``selection``, ``progress``), so that :func:`rrn.checkpoint.load_model` and
evaluation rebuild it as they rebuild a checkpoint's, by the same strict rule: every tensor of
the model, by name and shape, and one class name per output. What the package says of itself
is checked first: its marker, the classes (names, none twice, the background class first) and
that its network and input spec are those its training settings imply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rrn.errors import UserError
from rrn.files import atomic_write, atomic_write_json, atomic_write_text

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
#: Every file of a package, in the order they are written: config.json last, so that a folder
#: is a package (:func:`is_package`) only once its weights are there.
FILES = (WEIGHTS, CARD, CONFIG)
#: config.json's ``format``.
MARKER = "rrn-package"
#: Settings that name files of the machine that trained the model; a package leaves them out
#: (they mean nothing elsewhere and may say more than the model's owner wants to publish).
LOCAL_PATHS = {
    "data": ("data_root", "split_dir", "train_list", "test_list", "cache_dir"),
    "run": ("out",),
}
#: What config.json states of the network and its inputs, each as the training settings imply it.
MODEL_KEYS = ("arch", "skip_blocks", "skip_type")
INPUT_KEYS = ("frame_size", "sample_every", "fps", "short_side")


class PackageError(UserError, ValueError):
    """A model package is incomplete, damaged or not rrn's; the message names the file."""


def is_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a package folder (a folder with a ``config.json``; a run folder has a
    ``config.yaml``)."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file()


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A training config (``TrainConfig.to_dict()``) without the settings of
    :data:`LOCAL_PATHS`; initial weights from a file are named by the file's name."""
    out = {section: dict(values) for section, values in config.items()}
    for section, keys in LOCAL_PATHS.items():
        for key in keys:
            out.get(section, {}).pop(key, None)  # read back as the default: no path
    weights = out.get("model", {}).get("weights")
    if isinstance(weights, str) and weights.lower() not in ("none", "imagenet"):
        out["model"]["weights"] = Path(weights).name
    return out


def package_config(
    *,
    model: Mapping[str, Any],
    classes: list[str],
    inputs: Mapping[str, Any],
    train_config: Mapping[str, Any],
    choice: Mapping[str, Any],
    checkpoint_version: int,
    rrn_version: str,
    torch_version: str | None = None,
) -> dict[str, Any]:
    """config.json's content (see the module docstring).

    Args:
        model: What rebuilds the network (``model.config``: ``build_model(**model)``).
        classes: Class names in label order.
        inputs: The input spec (:meth:`rrn.data.transforms.InputSpec.to_dict`).
        train_config: The training settings (``TrainConfig.to_dict()``); paths are left out
            (:func:`public_config`).
        choice: Which checkpoint, and how it was chosen (:func:`rrn.checkpoint.checkpoint_choice`;
            the file is named by its name alone).
        checkpoint_version: The checkpoint format's version whose fields the package follows.
        rrn_version: The rrn that wrote the package.
        torch_version: The torch that trained it.
    """
    from rrn.detection.classes import BACKGROUND, background_index
    from rrn.model.weights import CHECKPOINT_FORMAT

    return {
        "format": MARKER,
        "rrn_version": rrn_version,
        "checkpoint_format": CHECKPOINT_FORMAT,
        "checkpoint_version": checkpoint_version,
        "model": dict(model),
        "classes": list(classes),
        "background_class": None if background_index(classes) is None else BACKGROUND,
        "inputs": dict(inputs),
        "checkpoint": {**choice, "file": Path(choice["file"]).name},
        "train_config": public_config(train_config),
        "torch_version": torch_version,
    }


def write_package(
    out: str | os.PathLike, state: Mapping[str, Any], config: Mapping[str, Any], card: str
) -> list[Path]:
    """Write a package into ``out`` (created; a folder holding other files is refused).

    Args:
        out: The package folder.
        state: The model's state dict (tensors; copied to the CPU).
        config: config.json's content (:func:`package_config`).
        card: README.md's text.

    Returns:
        The files written, in :data:`FILES` order.

    Raises:
        PackageError: ``out`` holds files that are not a package's.
    """
    from safetensors.torch import save

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PackageError(f"{out} is a file; name a folder for the package")
    others = sorted(p.name for p in out.iterdir() if p.name not in FILES) if out.is_dir() else []
    if others:
        raise PackageError(
            f"{out} holds other files ({', '.join(others[:3])}); a package is written into an "
            "empty folder (or over an earlier package)"
        )
    # one metadata entry, as transformers writes: safetensors orders several at random, and the
    # same package should be the same bytes (rrn's version is in config.json)
    blob = save(_separate(state), metadata={"format": "pt"})
    written = [atomic_write(out / WEIGHTS, lambda fh: fh.write(blob))]
    written.append(atomic_write_text(out / CARD, card))
    written.append(atomic_write_json(out / CONFIG, dict(config)))
    return written


def _separate(state: Mapping[str, Any]) -> dict[str, Any]:
    """Contiguous CPU tensors, none sharing memory with another (safetensors refuses shared
    storage: a module used at two places of a network appears under two names)."""
    seen, out = set(), {}
    for key, value in state.items():
        tensor = value.detach().cpu().contiguous()
        ptr = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        out[key] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.add(ptr)
    return out


def read_config(folder: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """config.json of the package in ``folder``, checked to be an rrn package's (``name``: how
    messages name the package, default the folder).

    Raises:
        PackageError: no config.json, not JSON, or not an rrn package's.
    """
    path = Path(folder) / CONFIG
    name = name or str(folder)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{name} has no {CONFIG}; pass a folder written by rrn pack") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise PackageError(f"{name}: cannot read {CONFIG} ({err})") from None
    if not isinstance(config, dict) or config.get("format") != MARKER:
        raise PackageError(
            f"{name}: {CONFIG} is not an rrn package's (no 'format': '{MARKER}' entry); pass a "
            "folder written by rrn pack"
        )
    missing = [k for k in ("model", "classes", "inputs", "train_config") if k not in config]
    if missing:
        raise PackageError(f"{name}: {CONFIG} lacks {', '.join(missing)}")
    return config


def read_package(folder: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """The checkpoint a package holds (the dict :func:`rrn.checkpoint.load_checkpoint` gives:
    ``format``, ``version``, ``model``, ``model_config``, ``classes``, ``config``,
    ``selection``, ``progress``), plus ``package``: its config.json.

    Args:
        folder: The package folder.
        name: How messages name it (``hf://org/name``; default the folder).

    Raises:
        PackageError: a file is missing or damaged, or config.json contradicts itself (classes,
            background class, inputs); the weights against the model are checked where the
            model is built (:func:`rrn.checkpoint.build_from_checkpoint`).
    """
    folder, name = Path(folder), name or str(folder)
    config = read_config(folder, name)
    _check_classes(config, name)
    _check_settings(config, name)
    choice = config.get("checkpoint") or {}
    return {
        "format": config.get("checkpoint_format"),
        "version": config.get("checkpoint_version", 0),
        "model": _read_weights(folder / WEIGHTS, name),
        "model_config": config["model"],
        "classes": config["classes"],
        "config": config["train_config"],
        "selection": choice.get("chosen_by", "last"),
        "progress": {k: choice.get(k) for k in ("epoch", "global_step")},
        "package": config,
    }


def _read_weights(path: Path, name: str) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise PackageError(f"{name} has no {WEIGHTS}; the package is incomplete")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise PackageError(f"{name}: cannot read {WEIGHTS} ({err}); the file is damaged") from None


def _check_classes(config: Mapping[str, Any], name: str) -> None:
    classes, model = config["classes"], config["model"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise PackageError(f"{name}: {CONFIG}'s classes must be a list of names")
    if len(set(classes)) != len(classes):
        twice = sorted({c for c in classes if classes.count(c) > 1})
        raise PackageError(f"{name}: {CONFIG} names classes twice ({', '.join(twice[:3])})")
    outputs = model.get("num_classes") if isinstance(model, Mapping) else None
    if outputs != len(classes):
        raise PackageError(
            f"{name}: {CONFIG} describes a model of {outputs} outputs and {len(classes)} classes"
        )
    background = config.get("background_class")
    if background is not None and classes[0] != background:
        raise PackageError(
            f"{name}: {CONFIG}'s background class {background!r} is not class 0 ({classes[0]!r})"
        )


def _check_settings(config: Mapping[str, Any], name: str) -> None:
    """The network and the input spec config.json states are those its training settings
    imply: the ones the model is loaded with (a skip type without weights, ``identity``, would
    load into a network with its skips elsewhere)."""
    from rrn.config import resolve_config
    from rrn.model import resolve_skips

    try:
        cfg = resolve_config([(name, config["train_config"])], quiet=[name])
        skips = list(resolve_skips(cfg.model))
    except (TypeError, ValueError) as err:
        raise PackageError(f"{name}: {CONFIG}'s train_config is not usable ({err})") from None
    sampling = cfg.data.sampling()
    implied = {
        "arch": cfg.model.arch,
        "skip_blocks": skips,
        "skip_type": cfg.model.skip_type,
        "frame_size": cfg.data.frame_size,
        "sample_every": sampling.sample_every,
        "fps": sampling.fps,
        "short_side": sampling.short_side,
    }
    model = config["model"] if isinstance(config["model"], Mapping) else {}
    inputs = config["inputs"] if isinstance(config["inputs"], Mapping) else {}
    stated = {**{k: model.get(k) for k in MODEL_KEYS}, **{k: inputs.get(k) for k in INPUT_KEYS}}
    wrong = [f"{k} {stated[k]!r} vs {v!r}" for k, v in implied.items() if stated[k] != v]
    if wrong:
        raise PackageError(
            f"{name}: {CONFIG}'s model or inputs differ from its train_config ({'; '.join(wrong)})"
        )

"""Checkpoints: atomic writes, a format that loads with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and Python primitives (no pickled classes), so it can be
loaded from an untrusted source with ``weights_only=True``::

    {"format": "rrn-checkpoint", "version": 1,
     "model": state_dict, "model_config": {...}  # build_model(**model_config) rebuilds it
     "config": TrainConfig.to_dict(), "classes": [...],
     "optimizer": ..., "scaler": ..., "progress": {"epoch", "step_in_epoch", "global_step", ...},
     "metrics": {...}, "selection": "last" | "validation"}  # how it was chosen (CHOICES)

A run directory keeps ``last.pt`` (written every ``--checkpoint-every`` steps and at each epoch
end) and, when a validation split is carved from the training videos, ``best.pt`` (the best
validation accuracy). No checkpoint is ever chosen on the test split (:func:`find_checkpoint`,
:data:`CHOICES`). Every write goes to a temporary file in the same directory that is then
renamed over the target, so a crash mid-write never leaves a truncated checkpoint.

Loading a trained model back is here too (:func:`load_model`, :func:`build_from_checkpoint`): the
model is rebuilt from ``model_config`` and every tensor must match (:func:`load_state_checked`);
a checkpoint used as *initial* weights is :mod:`rrn.model.weights`' concern.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from rrn.config import TrainConfig, plain, resolve_config
from rrn.errors import UserError
from rrn.files import atomic_save, load_torch_file
from rrn.model.weights import CHECKPOINT_FORMAT

# the format marker is declared in the model layer, which reads checkpoints as initial weights
FORMAT = CHECKPOINT_FORMAT
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(UserError, ValueError):
    """A checkpoint file is missing, unreadable or not an rrn checkpoint.

    A user error (name another file, or retrain); a ``ValueError`` as before for callers.
    """


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def make_checkpoint(
    model: nn.Module,
    *,
    config: Mapping[str, Any],
    classes: list[str],
    optimizer: torch.optim.Optimizer | None = None,
    scaler: Any = None,
    progress: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    selection: str = "last",
) -> dict[str, Any]:
    """Assemble the checkpoint dict (see the module docstring) from live objects.

    ``selection`` records how the checkpoint was chosen (a key of :data:`CHOICES`).
    """
    net = unwrap(model)
    model_config = dict(getattr(net, "config", {}) or {})
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "model_config": plain(model_config),
        "config": plain(config),
        "classes": list(classes),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "progress": plain(progress or {}),
        "metrics": plain(metrics or {}),
        "selection": selection,
        "torch_version": str(torch.__version__),
    }


def save_checkpoint(path: str | os.PathLike, checkpoint: Mapping[str, Any]) -> Path:
    """Atomically write a checkpoint made by :func:`make_checkpoint`."""
    return atomic_save(dict(checkpoint), path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load an rrn checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, unreadable, or not written by rrn.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = load_torch_file(path, map_location)
    except ValueError as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({err}); it is damaged, not a "
            "torch file, or holds more than tensors and plain values"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an rrn checkpoint (no 'format': '{FORMAT}' entry); "
            "pass a file written by rrn train"
        )
    return _check_version(ckpt, str(path))


def _check_version(ckpt: dict, name: str) -> dict:
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{name} has checkpoint version {ckpt['version']}, newer than this rrn "
            f"understands ({VERSION}); upgrade rrn"
        )
    return ckpt


def open_checkpoint(
    run_or_ckpt: str | os.PathLike, which: str = "auto"
) -> tuple[Path, dict[str, Any]]:
    """What a RUN_OR_CKPT argument names, loaded: ``(path, checkpoint)``.

    Args:
        run_or_ckpt: a run directory (``which`` picks its file, see :func:`find_checkpoint`), a
            checkpoint file, a model package folder (:mod:`rrn.package`) or
            ``hf://org/name[@revision]`` (a package on the Hugging Face Hub, downloaded into its
            cache; ``path`` is then the cached folder).
        which: for a run directory: ``"auto"``, ``"best"`` or ``"last"``.

    Returns:
        The checkpoint file or package folder, and the checkpoint's dict (a package's as a
        checkpoint's, see :func:`rrn.package.folder.read_package`).

    Raises:
        CheckpointError: no such run or checkpoint, or not an rrn checkpoint.
        PackageError, HubError: a package that is incomplete or damaged, or not to be had.
    """
    from rrn.package.folder import is_package, read_package
    from rrn.package.hub import download, is_hub_uri

    if is_hub_uri(run_or_ckpt):
        folder = download(str(run_or_ckpt))
        return folder, _check_version(read_package(folder, str(run_or_ckpt)), str(run_or_ckpt))
    if is_package(run_or_ckpt):
        folder = Path(run_or_ckpt)
        return folder, _check_version(read_package(folder), str(folder))
    path = find_checkpoint(run_or_ckpt, which)
    return path, load_checkpoint(path)


def validated_run(run_dir: str | os.PathLike) -> bool:
    """Whether the run in ``run_dir`` chose its ``best.pt`` on a validation split carved from
    its training videos (its ``config.yaml`` has ``val_fraction > 0``)."""
    try:
        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return bool((cfg.get("data") or {}).get("val_fraction"))


def find_checkpoint(run_or_ckpt: str | os.PathLike, which: str = "auto") -> Path:
    """A checkpoint file, or the checkpoint of a run directory that ``which`` names.

    Args:
        run_or_ckpt: a ``.pt`` file or a run directory.
        which: for a directory: ``"auto"`` (``best.pt`` when a validation split chose it, else
            ``last.pt``: never a checkpoint chosen on the test split), ``"best"`` (falling back
            to ``last.pt``) or ``"last"``.
    """
    path = Path(run_or_ckpt)
    if path.is_file():
        return path
    if path.is_dir():
        best_first = which == "best" or (which == "auto" and validated_run(path))
        order = [BEST, LAST] if best_first else [LAST]
        for name in order:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(
            f"{path} is a directory without {' or '.join(order)}; pass a run directory "
            f"written by rrn train, or a checkpoint file{_half_a_folder(path)}"
        )
    raise CheckpointError(f"{path}: no such checkpoint file or run directory")


def _half_a_folder(path: Path) -> str:
    """What a folder lacks to be a package or a score folder, when it holds the rest of one."""
    from rrn.detection.scores import SCORES_META
    from rrn.package.folder import CONFIG, WEIGHTS

    if (path / WEIGHTS).is_file():
        return f"; as a package folder it lacks {CONFIG} (rrn pack writes both)"
    if any(path.glob("*.npz")):
        return f"; as a score folder it lacks {SCORES_META} (docs/detection.md, 'Score files')"
    return ""


#: How a checkpoint came to be the one a number is reported for.
CHOICES = {
    "last": "the last checkpoint of the run: nothing was selected",
    "validation": "the best video accuracy on the validation split (--val-fraction: groups held "
    "out of the training videos); the test split played no part",
    "test": "the best video accuracy ON THE TEST SPLIT, the data it is evaluated on: the number "
    "is optimistic (rrn no longer selects this way; evaluate last.pt to report)",
    "train_loss": "the lowest training loss",
}


def checkpoint_choice(path: str | os.PathLike, ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """``{"file", "chosen_by", "description", "epoch", "global_step"}``: how a checkpoint was
    chosen (older checkpoints, which do not record it, by what their config implies)."""
    path = Path(path)
    chosen = ckpt.get("selection")
    if chosen is None:
        run = (ckpt.get("config") or {}).get("run") or {}
        chosen = ("test" if run.get("val_every") else "train_loss") if path.name == BEST else "last"
    progress = ckpt.get("progress") or {}
    return {
        "file": str(path),
        "chosen_by": chosen,
        "description": CHOICES[chosen],
        "epoch": progress.get("epoch"),
        "global_step": progress.get("global_step"),
    }


def build_from_checkpoint(
    ckpt: Mapping[str, Any], device: str | torch.device = "cpu", name: str = "the checkpoint"
) -> nn.Module:
    """Rebuild the model stored in ``ckpt`` (no download: its weights come from the file); its
    ``info`` names ``name`` as the source of its weights and holds the checkpoint's classes.

    Raises:
        CheckpointError: the checkpoint's description of its model and its weights disagree (a
            damaged or hand-made file), naming the first difference.
    """
    from rrn.model import WeightsReport, build_model

    cfg, state, classes = ckpt.get("model_config"), ckpt.get("model"), ckpt.get("classes")
    if not (isinstance(cfg, Mapping) and isinstance(state, Mapping) and isinstance(classes, list)):
        raise CheckpointError(f"{name} lacks its model description, weights or class names")
    cfg = {**cfg, "weights": None}
    if "skip_blocks" in cfg:
        cfg["skip_blocks"] = tuple(cfg["skip_blocks"])
    try:
        model = build_model(**cfg)
        if model.num_classes != len(classes):
            raise ValueError(f"{model.num_classes} outputs for {len(classes)} class names")
    except (TypeError, ValueError, RuntimeError) as err:
        raise _mismatch(name, err) from None
    load_state_checked(model, state, name)
    model.info = dataclasses.replace(
        model.info, weights=WeightsReport(source=name), classes=tuple(classes)
    )
    return model.to(device).eval()


def load_state_checked(
    model: nn.Module, state: Mapping[str, Any], name: str = "the checkpoint"
) -> None:
    """``model.load_state_dict(state)``, failing with one line that names the file.

    Raises:
        CheckpointError: the weights do not fit the model (the first difference named).
    """
    try:
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as err:
        raise _mismatch(name, err) from None


def _mismatch(name: str, err: Exception) -> CheckpointError:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [""]
    first = lines[1] if lines[0].startswith("Error(s) in loading") and len(lines) > 1 else lines[0]
    first = first if len(first) <= 300 else first[:300] + "..."
    return CheckpointError(
        f"{name}: its weights do not match the model it describes ({first}); "
        "the file is damaged or was not written by rrn"
    )


def saved_config(ckpt: Mapping[str, Any], name: str = "checkpoint") -> TrainConfig:
    """The training configuration stored in a checkpoint (defaults where it stores none).

    Keys renamed since the checkpoint was written are translated silently.
    """
    saved = ckpt.get("config") or {}
    return resolve_config([(name, saved)], quiet=[name])


def load_model(
    run_or_checkpoint: str | os.PathLike, which: str = "auto", device: str | torch.device = "cpu"
) -> nn.Module:
    """A trained model in eval mode, with what it needs to see frames as in training.

    Args:
        run_or_checkpoint: a run directory, a checkpoint file, a model package folder (written
            by ``rrn pack``) or ``hf://org/name[@revision]`` (a package on the Hugging Face
            Hub; needs the ``hub`` extra): see :func:`open_checkpoint`.
        which: checkpoint of a run directory: ``"auto"`` (``best.pt`` when a validation split
            chose it, else ``last.pt``), ``"best"`` or ``"last"``; a package holds one.
        device: where to put the model.

    Returns:
        The :class:`~rrn.model.RecurrentResNet`, described by its ``info``
        (:class:`~rrn.model.info.ModelInfo`): ``classes`` (class names in label order),
        ``inputs`` (:class:`~rrn.data.transforms.InputSpec`: frame size, sampling,
        normalisation, and ``inputs.transform()`` for uint8 frames), ``train_config`` (the
        :class:`~rrn.config.TrainConfig` it was trained with; a package's has no paths),
        ``checkpoint`` (the file, or the package's folder) and
        ``choice`` (how that checkpoint was chosen: :func:`checkpoint_choice`), each also a
        read-only property of the model.

    Raises:
        CheckpointError: no such run or checkpoint, not an rrn checkpoint, or weights that do
            not fit the model it describes.
        PackageError, HubError: a package that is incomplete or damaged, or not to be had
            (no ``hub`` extra; offline and not in the cache).
    """
    from rrn.data.transforms import InputSpec
    from rrn.package.hub import is_hub_uri

    path, ckpt = open_checkpoint(run_or_checkpoint, which)
    name = str(run_or_checkpoint) if is_hub_uri(run_or_checkpoint) else str(path)
    model = build_from_checkpoint(ckpt, device, name=name)
    cfg = saved_config(ckpt, name)
    model.info = dataclasses.replace(
        model.info,
        inputs=InputSpec(frame_size=cfg.data.frame_size, sampling=cfg.data.sampling()),
        train_config=cfg,
        checkpoint=path,
        choice={**checkpoint_choice(path, ckpt), "file": name},
    )
    return model

"""``rrn pack`` and ``rrn push``: a run's checkpoint and its evaluations -> a model package
(:mod:`rrn.package.folder`), and that package onto the Hugging Face Hub in one commit.

The checkpoint is the one ``rrn eval`` would evaluate (``--which``: ``auto`` is ``best.pt`` when
a validation split chose it, else ``last.pt``; never one chosen on the test split). Its model is
rebuilt from the file first, so that a package is only written from weights that fit the model
they describe. The evaluations reported in the card are the run's ``eval_split{k}.json`` (and any
``results`` given) that measured this very checkpoint (same file, same step), on the test side of
the split it was trained on, and whose checkpoint was not chosen on those test videos; the card
says why any other was left out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrn import __version__
from rrn.checkpoint import (
    VERSION,
    build_from_checkpoint,
    checkpoint_choice,
    find_checkpoint,
    load_checkpoint,
    saved_config,
)
from rrn.config import ConfigError
from rrn.package.card import DatasetFacts, model_card
from rrn.package.folder import package_config, write_package
from rrn.package.hub import check_repo_id, require_token, upload

logger = logging.getLogger(__name__)

#: The public datasets rrn reads: (name, the Hub's name of the side tested on, ``datasets`` id).
PUBLIC_DATASETS = {
    "ucf101": ("UCF-101", "test", "ucf101"),
    "hmdb51": ("HMDB-51", "test", "hmdb51"),
    "kinetics": ("Kinetics", "validation", "kinetics"),
    "ssv2": ("Something-Something v2", "validation", "something-something-v2"),
    "thumos14": ("THUMOS'14", "test", "thumos14"),
    "activitynet": ("ActivityNet", "validation", "activitynet"),
}


@dataclass
class PackConfig:
    """What ``rrn pack`` and ``rrn push`` add to the checkpoint they package (the checkpoint of a
    run: ``--which``)."""

    license: str = "unknown"
    """The weights' license in the model card, as the Hub names licenses (mit, apache-2.0,
    cc-by-nc-4.0, other, ...); the data's terms may bind the weights."""
    results: tuple[str, ...] = ()
    """More rrn eval result files (eval_split{k}.json, comma-separated) for the card, besides
    those in the checkpoint's folder; only those of the packed checkpoint are reported."""
    name: str | None = None
    """The model's name in its card [the Hub repository's name, else OUT's]."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", self.license):
            raise ConfigError(
                f"--license {self.license!r}: expected a license identifier as the Hub names "
                "them (mit, apache-2.0, cc-by-4.0, other, unknown)"
            )


@dataclass
class Packed:
    """What :func:`pack_run` wrote and from what."""

    folder: Path
    files: list[Path]
    checkpoint: Path
    """The checkpoint file packed."""
    config: dict[str, Any]
    """config.json's content."""
    reported: list[Path] = field(default_factory=list)
    """The evaluation files whose numbers the card reports."""
    left_out: list[str] = field(default_factory=list)
    """Why the other evaluation files found are not reported."""


def pack_run(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    which: str = "auto",
    name: str | None = None,
    repo_id: str | None = None,
    license: str = "unknown",
    results: Sequence[str | os.PathLike] = (),
) -> Packed:
    """Write the package of a run's checkpoint into ``out``.

    Args:
        run: A run directory or a checkpoint file.
        out: The package folder (created; one holding other files is refused).
        which: The checkpoint of a run directory: ``auto``, ``best`` or ``last``.
        name: The model's name in its card (default: ``repo_id``'s name, else ``out``'s).
        repo_id: ``org/name`` on the Hub, for the card's usage lines.
        license: The Hub's license identifier for the weights.
        results: More ``rrn eval`` result files to consider besides the run's
            ``eval_split{k}.json``.

    Raises:
        CheckpointError: no such run or checkpoint, or one whose weights do not fit its model.
        PackageError: ``out`` holds other files.
    """
    from rrn.data.transforms import InputSpec

    path = find_checkpoint(run, which)
    ckpt = load_checkpoint(path)
    model = build_from_checkpoint(ckpt, name=str(path))  # the weights fit the model described
    choice = checkpoint_choice(path, ckpt)
    if choice["chosen_by"] == "test":
        logger.warning(
            "rrn pack: warning: %s was chosen by %s; the card reports no number of it",
            path,
            choice["description"],
        )
    cfg = saved_config(ckpt, str(path))
    config = package_config(
        model=model.config,
        classes=list(ckpt["classes"]),
        inputs=InputSpec(cfg.data.frame_size, cfg.data.sampling()).to_dict(),
        train_config=cfg.to_dict(),
        choice=choice,
        checkpoint_version=VERSION,
        rrn_version=__version__,
        torch_version=ckpt.get("torch_version"),
    )
    files = [*sorted(path.parent.glob("eval_split*.json")), *map(Path, results)]
    reported, evaluations, left_out = _evaluations(files, path, choice, cfg.data.split)
    name = name or (repo_id.split("/")[-1] if repo_id else Path(out).resolve().name)
    card = model_card(
        config,
        name=name,
        dataset=dataset_facts(cfg.data),
        evaluations=evaluations,
        left_out=left_out,
        license=license,
        repo_id=repo_id,
    )
    written = write_package(out, model.state_dict(), config, card)
    return Packed(Path(out), written, path, config, reported, left_out)


def dataset_facts(data) -> DatasetFacts:
    """What the card says of the data of the settings ``data`` (a
    :class:`~rrn.config.DataConfig`); no local path."""
    from rrn.data.formats import dataset_format
    from rrn.data.synth_layouts import SYNTH_INFO

    folders = [Path(f) for f in (data.split_dir, data.data_root) if f]
    synthetic = any((f / SYNTH_INFO).is_file() for f in folders)
    flip = (
        "its classes are directions of motion"
        if synthetic
        else "its classes depend on direction"
        if dataset_format(data.dataset).direction_dependent
        else None
    )
    if synthetic:
        return DatasetFacts(
            data.dataset, "rrn synth's synthetic videos", synthetic=True, flip_note=flip
        )
    if data.dataset in PUBLIC_DATASETS:
        label, side, hub_id = PUBLIC_DATASETS[data.dataset]
        return DatasetFacts(data.dataset, label, side, hub_id, flip_note=flip)
    label = f"{folders[-1].name} (`--dataset {data.dataset}`)" if folders else data.dataset
    return DatasetFacts(data.dataset, label, flip_note=flip)


def _evaluations(
    files: Sequence[Path], path: Path, choice: Mapping[str, Any], trained_split: int
) -> tuple[list[Path], list[dict], list[str]]:
    """``(files reported, their results, why each other file is not reported)``."""
    reported, evaluations, left_out = [], [], []
    for file in files:
        try:
            ev = json.loads(Path(file).read_text())
        except (OSError, ValueError) as err:
            left_out.append(f"`{Path(file).name}`: unreadable ({err})")
            continue
        why = not_reportable(ev, path, choice, trained_split)
        if why:
            left_out.append(f"`{Path(file).name}`: {why}.")
            logger.info("rrn pack: %s is not reported: %s", file, why)
        else:
            reported.append(Path(file))
            evaluations.append(ev)
    return reported, evaluations, left_out


def not_reportable(
    ev: Any, path: Path, choice: Mapping[str, Any], trained_split: int
) -> str | None:
    """Why the evaluation ``ev`` (an ``eval_split{k}.json``'s content) cannot stand in the card
    of the checkpoint ``path`` chosen as ``choice``; None when it can."""
    if not isinstance(ev, Mapping) or not isinstance(ev.get("video_top1"), int | float):
        return "not an rrn eval result"
    measured = ev.get("checkpoint_choice") or {}
    file = Path(str(ev.get("checkpoint") or measured.get("file") or "?")).name
    if file != path.name or measured.get("global_step") != choice["global_step"]:
        return (
            f"it evaluated {file} at step {measured.get('global_step')}, not the packed "
            f"{path.name} at step {choice['global_step']}"
        )
    if measured.get("chosen_by") == "test" or choice["chosen_by"] == "test":
        return (
            "its checkpoint was chosen on the test split it reports (an optimistic number; "
            "evaluate last.pt, or train with --val-fraction)"
        )
    if ev.get("split") != trained_split:
        return (
            f"it tested split {ev.get('split')} with a model trained on split {trained_split}, "
            "whose test videos may be among that model's training videos"
        )
    return None


def push_run(
    run: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    which: str = "auto",
    license: str = "unknown",
    results: Sequence[str | os.PathLike] = (),
) -> tuple[Packed, Any]:
    """Pack a run (:func:`pack_run`) and upload the package to ``repo_id`` in one commit.

    Returns:
        What was packed (its folder, temporary, is gone), and huggingface_hub's ``CommitInfo``.

    Raises:
        HubError: no huggingface_hub, no token, a malformed id, or the Hub refused.
    """
    check_repo_id(repo_id)
    require_token("rrn push")  # before the work of packing
    with tempfile.TemporaryDirectory(prefix="rrn-push-") as tmp:
        packed = pack_run(
            run,
            Path(tmp) / "package",
            which=which,
            repo_id=repo_id,
            license=license,
            results=results,
        )
        info = upload(packed.folder, repo_id, private=private, message=commit_message(packed))
    return packed, info


def commit_message(packed: Packed) -> str:
    """``rrn push: resnet18 (identity skips at layer4.1), best.pt of ucf_split1 (validation,
    step 400)``."""
    model, ckpt = packed.config["model"], packed.config["checkpoint"]
    skips = ", ".join(model["skip_blocks"]) or "none"
    return (
        f"rrn push: {model['arch']} ({model['skip_type']} skips at {skips}), {ckpt['file']} of "
        f"{packed.checkpoint.parent.name} ({ckpt['chosen_by']}, step {ckpt['global_step']})"
    )

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
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrn.checkpoint import (
    VERSION,
    build_from_checkpoint,
    checkpoint_choice,
    find_checkpoint,
    load_checkpoint,
    open_checkpoint,
    saved_config,
)
from rrn.package.card import DatasetFacts, metric_values, model_card
from rrn.package.folder import FILES, PackageError, is_package, package_config, write_package
from rrn.package.hub import check_repo_id, require_token, upload
from rrn.version import __version__

logger = logging.getLogger(__name__)


@dataclass
class Packed:
    """What :func:`pack_run` wrote and from what."""

    folder: Path
    files: list[Path]
    checkpoint: Path
    """The checkpoint file packed (a package folder pushed as it is: the folder)."""
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
        PackageError: ``out`` holds other files; a ``results`` file is missing or not JSON.
    """
    from rrn.data.transforms import InputSpec

    check_results(results)
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
    :class:`~rrn.config.DataConfig`), as its format's record has it; no local path."""
    from rrn.data.formats import dataset_format
    from rrn.data.synth_layouts import SYNTH_INFO

    form = dataset_format(data.dataset)
    folders = [Path(f) for f in (data.split_dir, data.data_root) if f]
    synthetic = any((f / SYNTH_INFO).is_file() for f in folders)
    flip = (
        "its classes are directions of motion"
        if synthetic
        else "its classes depend on direction"
        if form.direction_dependent
        else None
    )
    if synthetic:
        title = "rrn synth's synthetic videos"
    elif form.title:
        title = form.title
    else:  # one's own data: named by its folder
        title = f"{folders[-1].name} (`--dataset {form.name}`)" if folders else form.name
    hub_id = form.name if form.title and not synthetic else None
    return DatasetFacts(form.name, title, form.test_side, hub_id, synthetic, flip)


def check_results(results: Sequence[str | os.PathLike]) -> None:
    """Refuse a result file named by ``--results`` that is missing or not JSON: a path with a
    typo would otherwise only be listed as unreadable in the card.

    Raises:
        PackageError: naming the file.
    """
    for file in map(Path, results):
        try:
            json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            raise PackageError(
                f"--results {file}: cannot read it ({err}); pass the eval_split{{k}}.json files "
                "rrn eval wrote, comma-separated, or leave the flag out"
            ) from None


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
    if not isinstance(ev, Mapping) or not metric_values(ev):
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
    """Pack a run (:func:`pack_run`) and upload the package to ``repo_id`` in one commit; a
    package folder (``run``, e.g. one whose card was edited after ``rrn pack``) is uploaded as
    it is, once it loads (:func:`checked_package`).

    Returns:
        What was uploaded (a packed folder, temporary, is gone), and huggingface_hub's
        ``CommitInfo``.

    Raises:
        HubError: no huggingface_hub, no token, a malformed id, or the Hub refused.
        PackageError, CheckpointError: a package folder that does not load.
    """
    check_repo_id(repo_id)
    if not is_package(run):  # the local inputs first: no token needed to find a typo
        find_checkpoint(run, which)
        check_results(results)
    require_token("rrn push")  # before the work of packing
    if is_package(run):
        packed = checked_package(run)
        return packed, upload(run, repo_id, private=private, message=commit_message(packed))
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


def checked_package(folder: str | os.PathLike) -> Packed:
    """A package folder, loaded as :func:`rrn.load_model` loads it (every check of
    :func:`~rrn.package.folder.read_package` and every tensor), described as :func:`pack_run`
    describes what it writes.

    Raises:
        PackageError, CheckpointError: it does not load.
    """
    folder = Path(folder)
    _, ckpt = open_checkpoint(folder)
    build_from_checkpoint(ckpt, name=str(folder))
    files = [folder / name for name in FILES]
    if missing := [f.name for f in files if not f.is_file()]:
        raise PackageError(f"{folder} has no {', '.join(missing)}; the package is incomplete")
    return Packed(folder, files, folder, ckpt["package"])


def commit_message(packed: Packed) -> str:
    """``rrn push: resnet18 (identity skips at layer4.1), best.pt of ucf_split1 (validation,
    step 400)``."""
    model, ckpt = packed.config["model"], packed.config["checkpoint"]
    skips = ", ".join(model["skip_blocks"]) or "none"
    source = packed.checkpoint if packed.checkpoint.is_dir() else packed.checkpoint.parent
    return (
        f"rrn push: {model['arch']} ({model['skip_type']} skips at {skips}), {ckpt['file']} of "
        f"{source.name} ({ckpt['chosen_by']}, step {ckpt['global_step']})"
    )

"""Experiment grids: the paper's tables as one command each (``rrn experiment GRID.yaml``).

A grid file names a ``base`` training configuration (any ``rrn train`` key, flat or nested)
and a list of ``cells``. A cell is either

* ``kind: train`` (default): ``set`` overrides the base; the cell is trained
  (:func:`rrn.train.fit`) and its *last* checkpoint evaluated
  (:func:`rrn.evaluation.evaluate_checkpoint` with ``which="last"``: every cell is reported
  for the network its training ended with, whether or not it held out a validation split
  that chose a ``best.pt``), or
* ``kind: baseline``: frozen per-frame features (:func:`rrn.baselines.extract_dataset_features`,
  shared by every baseline cell of a split) and a classifier on them
  (:func:`rrn.baselines.run_baseline`: ``model``, ``stage``, ``znorm``).

Each cell runs once per requested split into ``OUT/<cell>/split<k>``; a cell whose result
file exists is read, not redone, and an interrupted training cell resumes from its
``last.pt``. ``OUT/results.csv``, ``OUT/results.md`` (with the paper's published error beside
ours, where the paper gives one) and ``OUT/results.png`` are rewritten after every cell.

On a temporal dataset (``thumos14``, ``activitynet``) the grid is a detection grid: training
cells are scored online per frame and per segment (:mod:`rrn.evaluation.detection`), a ``gru``
baseline cell is the GRU detector (:mod:`rrn.baselines.detection`), and the report lists
per-frame mAP, segment mAP@0.5 and the median delay side by side
(:mod:`rrn.experiment_detection`). ``features: {source: cell:NAME}`` extracts the baselines'
features from training cell NAME's last checkpoint (e.g. the per-frame ResNet the grid
fine-tuned). Detection grids ship in ``configs/detection/``.

``--set key=value`` overrides the base of every cell (and ``features.key=value`` the feature
settings), e.g. ``--set arch=resnet18 --set frame_size=64 --set epochs=1`` to run a grid
scaled down on a CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rrn import distributed as rdist
from rrn.config import (
    BaselineConfig,
    ConfigError,
    EvalConfig,
    FeaturesConfig,
    TrainConfig,
    build_dataclass,
    load_yaml,
    resolve_config,
)
from rrn.detection.metrics import is_detection_result
from rrn.experiment_detection import (
    detection_values,
    is_detection,
    write_detection_tables,
    write_results_md,
)
from rrn.files import atomic_write_text

logger = logging.getLogger(__name__)

GRID_KEYS = ("name", "title", "description", "base", "features", "splits", "cells", "paper_note")
CELL_KEYS = ("name", "kind", "set", "model", "stage", "znorm", "paper_error", "note")
#: The classifier settings of the baseline cells (BaselineConfig's), given under ``features``.
CLASSIFIER_KEYS = ("epochs", "lr", "hidden", "batch_size", "window", "window_stride", "loss_steps")
FEATURE_KEYS = ("source", "arch", "stages", "float16", *CLASSIFIER_KEYS)
FEATURE_SETTINGS = ("source", "stages", "float16")  # of FeaturesConfig; arch is the model's
CELL_SOURCE = "cell:"
"""``features: {source: cell:NAME}``: the features of training cell NAME's last checkpoint (on
the same split), e.g. the per-frame ResNet the grid fine-tuned."""


@dataclass
class Cell:
    """One configuration of a grid."""

    name: str
    kind: str = "train"
    set: dict[str, Any] = field(default_factory=dict)
    model: str = "avgpool"
    stage: int = 4
    znorm: bool = False
    paper_error: float | None = None
    note: str = ""


@dataclass
class Grid:
    """A parsed grid file."""

    name: str
    title: str
    base: dict[str, Any]
    cells: list[Cell]
    splits: list[int]
    features: dict[str, Any]
    description: str = ""
    paper_note: str = ""
    path: str = ""


def _check_keys(values: dict, valid: Sequence[str], where: str) -> None:
    import difflib

    for key in values:
        if key not in valid:
            hint = difflib.get_close_matches(str(key), valid, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{where}: unknown key {key!r}{extra} (valid: {', '.join(valid)})")


def parse_value(text: str) -> Any:
    """``--set`` values as YAML scalars (``1`` -> int, ``true`` -> bool, ``1.0e-3`` -> float).

    Anything else stays a string (YAML 1.1 reads ``1e-3`` as one); the config's type coercion
    converts it to the field's type when the cell configuration is resolved.
    """
    value = yaml.safe_load(text)
    return text if value is None else value


def parse_sets(sets: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``["arch=resnet18", "features.source=none"]`` -> (train overrides, feature overrides)."""
    train: dict[str, Any] = {}
    feats: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key = key.strip().replace("-", "_")
        if key.startswith("features."):
            feats[key.removeprefix("features.")] = parse_value(value)
        else:
            train[key] = parse_value(value)
    _check_keys(feats, FEATURE_KEYS, "--set features.*")
    return train, feats


PAPER_GRIDS = Path(__file__).parent / "configs" / "paper"
DETECTION_GRIDS = Path(__file__).parent / "configs" / "detection"
"""Online action detection grids (``synth_thumos14``: a CPU run in minutes; ``thumos14``)."""


def find_grid(path: str | os.PathLike) -> Path:
    """A grid file, or the name of a shipped one (``table2_positions``, ``synth_thumos14``;
    see :data:`PAPER_GRIDS` and :data:`DETECTION_GRIDS`)."""
    p = Path(path)
    if p.is_file():
        return p
    for folder in (PAPER_GRIDS, DETECTION_GRIDS):
        if (folder / f"{p.stem}.yaml").is_file():
            return folder / f"{p.stem}.yaml"
    names = [sorted(f.stem for f in d.glob("*.yaml")) for d in (PAPER_GRIDS, DETECTION_GRIDS)]
    raise ConfigError(f"grid file {p} not found; shipped grids: {', '.join(sum(names, []))}")


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and validate a grid file (every cell's configuration is checked up front)."""
    path = find_grid(path)
    raw = load_yaml(path)
    _check_keys(raw, GRID_KEYS, str(path))
    cells = []
    for i, c in enumerate(raw.get("cells") or []):
        if not isinstance(c, dict) or "name" not in c:
            raise ConfigError(f"{path}: cell {i + 1} needs a mapping with a 'name'")
        _check_keys(c, CELL_KEYS, f"{path}: cell {c['name']!r}")
        cell = Cell(**c)
        if cell.kind not in ("train", "baseline"):
            raise ConfigError(f"{path}: cell {cell.name!r}: kind must be train or baseline")
        if cell.kind == "baseline" and cell.model not in ("avgpool", "gru"):
            raise ConfigError(f"{path}: cell {cell.name!r}: model must be avgpool or gru")
        cells.append(cell)
    if not cells:
        raise ConfigError(f"{path}: no cells")
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: cell names must be unique, got {names}")
    features = dict(raw.get("features") or {})
    _check_keys(features, FEATURE_KEYS, f"{path}: features")
    _check_cell_source(str(features.get("source", "")), cells, path)
    return Grid(
        name=raw.get("name") or Path(path).stem,
        title=raw.get("title") or Path(path).stem,
        base=dict(raw.get("base") or {}),
        cells=cells,
        splits=[int(s) for s in raw.get("splits") or [1]],
        features=features,
        description=raw.get("description") or "",
        paper_note=raw.get("paper_note") or "",
        path=str(path),
    )


def _check_cell_source(source: str, cells: list[Cell], path) -> None:
    """A ``cell:NAME`` feature source must name a training cell that runs before the baselines."""
    if not source.startswith(CELL_SOURCE):
        return
    name = source.removeprefix(CELL_SOURCE)
    order = [c.name for c in cells]
    first = min((i for i, c in enumerate(cells) if c.kind == "baseline"), default=len(cells))
    if name not in order or cells[order.index(name)].kind != "train" or order.index(name) > first:
        raise ConfigError(
            f"{path}: features source {source!r} must name a training cell listed before the "
            f"baseline cells (cells: {', '.join(order)})"
        )


def cell_config(
    grid: Grid, cell: Cell, split: int, overrides: dict[str, Any], out: Path
) -> TrainConfig:
    """The resolved training configuration of ``cell`` on ``split`` (validated)."""
    return resolve_config(
        [
            (f"{grid.path}: base", grid.base),
            (f"{grid.path}: cell {cell.name}", cell.set),
            ("--set", overrides),
            ("experiment", {"split": split, "out": str(out)}),
        ]
    )


def _result_path(cell: Cell, run_dir: Path, split: int) -> Path:
    if cell.kind == "train":
        return run_dir / f"eval_split{split}.json"
    return run_dir / f"baseline_{cell.model}_stage{cell.stage}{'_znorm' if cell.znorm else ''}.json"


def _run_train_cell(cfg: TrainConfig, run_dir: Path, progress: bool) -> None:
    from rrn.evaluation import evaluate_checkpoint
    from rrn.train import fit

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "cell.yaml", cfg.to_yaml())  # what the cell ran, for the record
    resume = (run_dir / "last.pt").exists()  # an interrupted cell goes on where it stopped
    fit(cfg.replace(run={"resume": resume, "progress": progress}))
    # the last checkpoint, with or without a validation split's best.pt: one rule for every cell
    run = {k: getattr(cfg.run, k) for k in ("device", "workers", "amp")}
    evaluate_checkpoint(
        run_dir,
        settings=EvalConfig(which="last"),
        overrides={"run": {**run, "progress": progress}},
        info=rdist.dist_info_from_env(),
        device=_device(cfg),
    )


def _device(cfg: TrainConfig):
    return rdist.resolve_device(cfg.run.device, rdist.dist_info_from_env())


def features_dir(root: Path, cfg: TrainConfig, feats: FeaturesConfig, split: int) -> Path:
    """The shared extraction of a split: everything that changes the stored features is in the
    folder name, so a changed setting never reuses an old extraction."""
    d = cfg.data
    settings = [
        feats.source,
        cfg.model.arch,
        d.dataset,
        str(d.data_root),
        str(d.split_dir),
        str(d.train_list),
        str(d.test_list),
        d.frame_size,
        d.sample_every,
        d.fps,
        ",".join(map(str, feats.stages)),
        feats.float16,
    ]
    if d.short_side is not None:  # appended only when set: default-sized folders keep their names
        settings.append(d.short_side)
    digest = hashlib.sha1(repr(settings).encode()).hexdigest()[:8]
    name = Path(feats.source).name if os.sep in feats.source else feats.source
    return root / "_features" / f"{name}_{cfg.model.arch}_{d.frame_size}px_{digest}_split{split}"


def _run_baseline_cell(
    cell: Cell,
    cfg: TrainConfig,
    feats: dict[str, Any],
    run_dir: Path,
    *,
    root: Path,
    split: int,
    progress: bool,
) -> None:
    from rrn.baselines import extract_dataset_features, run_baseline

    settings = {k: v for k, v in feats.items() if k in FEATURE_SETTINGS}
    source = str(settings.get("source", ""))
    if source.startswith(CELL_SOURCE):  # that cell's run on this split (its last.pt)
        settings["source"] = str(root / source.removeprefix(CELL_SOURCE) / f"split{split}")
    extraction = build_dataclass(FeaturesConfig, [("grid features", settings)])
    cfg = cfg.replace(
        model={"arch": str(feats.get("arch", cfg.model.arch))}, run={"progress": progress}
    )
    folder = features_dir(root, cfg, extraction, split)
    extraction = dataclasses.replace(extraction, out=str(folder))
    report = extract_dataset_features(cfg, extraction)  # resumable: videos already done are reused
    if not rdist.dist_info_from_env().is_main:
        return
    logger.info(report.summary(folder))
    classifier = {k: v for k, v in feats.items() if k in CLASSIFIER_KEYS}
    run_baseline(
        BaselineConfig(
            features=str(folder),
            model=cell.model,
            stage=cell.stage,
            znorm=cell.znorm,
            out=str(run_dir),
            seed=cfg.run.seed,
            **classifier,
        )
    )


def run_grid(
    grid: Grid,
    out: str | os.PathLike,
    *,
    splits: Sequence[int] | None = None,
    sets: Sequence[str] = (),
    only: Sequence[str] = (),
    progress: bool = True,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Run (or resume) every cell of ``grid`` on every split; write the results tables.

    Returns:
        One row per (cell, split): name, kind, split, status, video_error, paper_error, ...
    """

    root = Path(out)
    overrides, feats_over = parse_sets(sets)
    if sets:  # the description is the grid's as shipped; results.md says what this run changed
        changed = ", ".join(f"`--set {s}`" for s in sets)
        grid = dataclasses.replace(
            grid, description=f"{grid.description.strip()}\n\nRun with {changed}.".strip()
        )
    feats = {**grid.features, **feats_over}
    splits = list(splits or grid.splits)
    cells = [c for c in grid.cells if not only or c.name in only]
    if only and len(cells) != len(set(only)):
        unknown = sorted(set(only) - {c.name for c in grid.cells})
        raise ConfigError(
            f"--only names unknown cells {unknown}; cells: {[c.name for c in grid.cells]}"
        )
    plan = [
        (c, k, cell_config(grid, c, k, overrides, root / c.name / f"split{k}"))
        for c in cells
        for k in splits
    ]  # every configuration is validated before any work
    main_rank = rdist.dist_info_from_env().is_main
    if dry_run:
        rows = []
        for c, k, _ in plan:
            result_file = _result_path(c, root / c.name / f"split{k}", k)
            rows.append(_row(c, k, result_file, "reused" if result_file.exists() else "planned"))
        return rows
    # Under torchrun, one process group serves every cell (train, eval and features join it
    # and leave it in place) instead of being created and torn down per command.
    owner = not rdist.is_initialized()
    if rdist.dist_info_from_env().enabled:
        rdist.init_distributed(plan[0][2].run.device)
    try:
        return _run_plan(grid, plan, root, feats, progress, main_rank)
    finally:
        if owner:
            rdist.cleanup()


def _row(cell: Cell, split: int, result_file: Path, status: str) -> dict[str, Any]:
    import json

    row: dict[str, Any] = {
        "cell": cell.name,
        "kind": cell.kind,
        "split": split,
        "status": status,
        "paper_error": cell.paper_error,
        "note": cell.note,
    }
    if result_file.exists():
        result = json.loads(result_file.read_text())
        if is_detection_result(result):
            row["task"] = result["task"]
            row.update(detection_values(result))
        for key in (*_EVALUATED, "protocol"):
            row[key] = result.get(key)
    return row


def _run_plan(
    grid: Grid, plan, root: Path, feats: dict[str, Any], progress: bool, main_rank: bool
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cell, split, cfg in plan:
        run_dir = root / cell.name / f"split{split}"
        result_file = _result_path(cell, run_dir, split)
        status = "reused" if result_file.exists() else "ran"
        if status == "ran":
            if main_rank:
                logger.info(f"== {grid.name}: cell {cell.name}, split {split} -> {run_dir}")
            if cell.kind == "train":
                _run_train_cell(cfg, run_dir, progress)
            else:
                _run_baseline_cell(
                    cell, cfg, feats, run_dir, root=root, split=split, progress=progress
                )
        rows.append(_row(cell, split, result_file, status))
        if main_rank:
            write_results(grid, rows, root)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per cell: its errors per split and their mean."""
    cells: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = cells.setdefault(
            r["cell"],
            {
                "cell": r["cell"],
                "kind": r["kind"],
                "errors": {},
                "paper_error": r["paper_error"],
                "note": r.get("note", ""),
            },
        )
        if r.get("video_error") is not None:
            c["errors"][r["split"]] = r["video_error"]
    for c in cells.values():
        errs = list(c["errors"].values())
        c["mean_error"] = sum(errs) / len(errs) if errs else None
    return list(cells.values())


def protocol_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``Protocol: <how measured> (cells ...)``, one line per protocol found in the results."""
    cells: dict[str, list[str]] = {}
    for r in rows:
        names = cells.setdefault(r.get("protocol") or "not recorded (an older result file)", [])
        if r["cell"] not in names:
            names.append(r["cell"])
    if len(cells) == 1:
        return [f"Protocol: {next(iter(cells))}."]
    return [f"Protocol: {p} ({', '.join(names)})." for p, names in cells.items()]


#: The numbers a recognition cell's evaluation JSON gives its row.
_EVALUATED = (
    "video_error",
    "video_top1",
    "video_top5",
    "clip_top1",
    "mean_class_accuracy",
    "num_videos",
)
#: The columns of ``results.csv``.
RESULT_COLUMNS = ("cell", "kind", "split", "status", *_EVALUATED, "paper_error", "protocol")


def write_results(grid: Grid, rows: Sequence[dict[str, Any]], out: Path) -> dict[str, Path]:
    """``results.csv`` (one row per cell and split), ``results.md`` and ``results.png``; for
    a detection grid, its numbers (:func:`rrn.experiment_detection.write_detection_tables`)."""
    if is_detection(rows):
        return write_detection_tables(grid, rows, out, protocol_lines(rows))
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())

    summary = summarise(rows)
    splits = sorted({r["split"] for r in rows})

    def fmt(v: float | None) -> str:
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    lines = [f"# {grid.title}", ""]
    if grid.description:
        lines += [grid.description.strip(), ""]
    head = ["cell"] + [f"split {k}" for k in splits] + ["mean error", "paper error", "ours - paper"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in summary:
        diff = (
            c["mean_error"] - c["paper_error"]
            if c["mean_error"] is not None and c["paper_error"] is not None
            else None
        )
        cells = (
            [c["cell"]]
            + [fmt(c["errors"].get(k)) for k in splits]
            + [fmt(c["mean_error"]), fmt(c["paper_error"]), "—" if diff is None else f"{diff:+.3f}"]
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Error = video-level error rate on the test split (mean of chunk probabilities "
        'per video; training cells use their last checkpoint). "paper error" is the '
        "number published by Iqbal et al. (GCPR 2017) where the paper reports this exact "
        "configuration; — where it does not.",
    ]
    lines += ["", *protocol_lines(rows)]
    if grid.paper_note:
        lines += ["", grid.paper_note.strip()]
    notes = [f"- **{c['cell']}**: {c['note']}" for c in summary if c["note"]]
    return write_results_md(out, lines, notes, lambda png: plot_results(grid, summary, png))


def plot_results(grid: Grid, summary: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Bar chart: our mean error per cell beside the paper's."""
    if not any(c["mean_error"] is not None for c in summary):
        return None
    from rrn.plots import plt, save_figure  # pyplot on the Agg backend rrn.plots selects

    names = [c["cell"] for c in summary]
    ours = [c["mean_error"] if c["mean_error"] is not None else 0.0 for c in summary]
    paper = [c["paper_error"] if c["paper_error"] is not None else 0.0 for c in summary]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 3.6))
    ax.bar([i - 0.2 for i in x], ours, width=0.4, label="rrn (this run)", color="#3b75af")
    ax.bar([i + 0.2 for i in x], paper, width=0.4, label="paper", color="#c8c8c8")
    for i, c in enumerate(summary):
        if c["paper_error"] is None:
            ax.text(i + 0.2, 0.005, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(list(x), names, rotation=20, ha="right")
    ax.set_ylabel("video error")
    ax.set_title(grid.title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path

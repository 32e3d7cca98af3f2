"""A detection grid (`rrn experiment` on untrimmed videos): a per-frame ResNet, an RRN and the GRU
on the per-frame ResNet's frozen features, each scored online; the report's columns are the
cells' per-frame mAP, segment mAP@0.5 and median delay; the shipped detection grids resolve."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from rrn.cli import main
from rrn.config import ConfigError
from rrn.data import make_synthetic_dataset
from rrn.experiment import DETECTION_GRIDS, cell_config, find_grid, load_grid
from rrn.experiment_detection import COLUMNS, CSV_COLUMNS
from rrn.model import resolve_skips

ROOT = Path(__file__).resolve().parents[1]


def grid_file(path: Path, data: Path, **features) -> Path:
    base = {
        "dataset": "thumos14",
        "data_root": str(data),
        "split_dir": str(data / "annotations"),
        "arch": "resnet18",
        "weights": "none",
        "frame_size": 32,
        "sample_every": 2,
        "hflip": False,
        "epochs": 1,
        "batch_size": 4,
        "update_chunks": 4,
        "seconds_per_chunk": 0.5,
        "val_every": 0,
        "workers": 0,
        "device": "cpu",
    }
    cells = [
        {"name": "frame_T1", "set": {"skip": "none"}, "note": "per-frame"},
        {"name": "rrn_block1", "set": {"skip": "block1"}},
        {"name": "gru", "kind": "baseline", "model": "gru", "stage": 4, "znorm": True},
    ]
    feats = {"source": "cell:frame_T1", "stages": [4], "epochs": 1, "window": 8, **features}
    spec = {"name": "det", "title": "Tiny detection grid", "base": base, "cells": cells}
    path.write_text(yaml.safe_dump({**spec, "features": feats}))
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("detgrid")
    data = make_synthetic_dataset(
        tmp / "data", classes=2, videos_per_class=4, frames=6, size=32, layout="thumos14"
    )
    grid = grid_file(tmp / "det.yaml", data)
    assert main(["experiment", str(grid), "--out", str(tmp / "out"), "--no-progress"]) == 0
    return tmp / "out"


def test_the_report_lists_each_cells_detection_numbers_side_by_side(ran):
    with open(ran / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert [(r["cell"], r["kind"], r["status"]) for r in rows] == [
        ("frame_T1", "train", "ran"),
        ("rrn_block1", "train", "ran"),
        ("gru", "baseline", "ran"),
    ]
    results = {
        "frame_T1": ran / "frame_T1" / "split1" / "eval_split1.json",
        "rrn_block1": ran / "rrn_block1" / "split1" / "eval_split1.json",
        "gru": ran / "gru" / "split1" / "baseline_gru_stage4_znorm.json",
    }
    md = {}
    for line in (ran / "results.md").read_text().splitlines():
        if line.startswith("| "):
            cols = [c.strip() for c in line.strip("|").split("|")]
            md[cols[0]] = cols[2:]
    assert md["cell"] == list(COLUMNS.values())
    assert md["cell"][:3] == ["per-frame mAP", "mcAP", "segment mAP@0.5"]
    for r in rows:
        result = json.loads(results[r["cell"]].read_text())
        assert result["task"] == "detection"
        assert float(r["frame_map"]) == pytest.approx(result["frame_map"])
        assert md[r["cell"]][0] == f"{result['frame_map']:.3f}"
        seg = result["segment_map"]["0.5"]
        assert md[r["cell"]][2] == ("—" if seg is None else f"{seg:.3f}")
        delay = result["delay_s_median"]
        assert md[r["cell"]][3] == ("—" if delay is None else f"{delay:.2f}")
    assert "**frame_T1**: per-frame" in (ran / "results.md").read_text()
    assert (ran / "results.png").stat().st_size > 1000


def test_the_gru_runs_on_the_features_of_the_per_frame_cell(ran):
    (folder,) = (ran / "_features").iterdir()
    extraction = json.loads((folder / "extraction.json").read_text())
    assert extraction["source"] == str((ran / "frame_T1" / "split1" / "last.pt").resolve())
    assert extraction["stages"] == [4]


def test_a_cell_feature_source_must_name_an_earlier_training_cell(tmp_path):
    with pytest.raises(ConfigError, match="must name a training cell listed before"):
        load_grid(grid_file(tmp_path / "a.yaml", tmp_path, source="cell:nothing"))
    with pytest.raises(ConfigError, match="must name a training cell listed before"):
        load_grid(grid_file(tmp_path / "b.yaml", tmp_path, source="cell:gru"))


@pytest.mark.parametrize("path", sorted(DETECTION_GRIDS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_detection_grids_resolve(path):
    grid = load_grid(path)
    assert find_grid(path.stem) == path
    assert (ROOT / "configs" / "detection" / path.name).is_file()
    names = [c.name for c in grid.cells]
    assert names[0] == "frame_T1" and any(c.kind == "baseline" for c in grid.cells)
    skips = {}
    for cell in grid.cells:
        cfg = cell_config(grid, cell, 1, {}, Path("runs") / cell.name)
        assert cfg.data.dataset == "thumos14" and cfg.run.val_every == 0
        if cell.kind == "train":
            skips[cell.name] = resolve_skips(cfg.model)
    assert skips["frame_T1"] == () and skips["rrn_block1"] == ("layer1.0",)
    assert {"rrn_block1", "rrn_block2", "rrn_block4"} <= set(skips)

"""Experiment grids: a tiny 2-cell grid runs, resumes and writes its tables; baseline cells;
validation (unknown keys with suggestions, --dry-run); every shipped paper grid resolves."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from rrn import evaluation
from rrn.cli import main
from rrn.config import ConfigError
from rrn.experiment import cell_config, load_grid, parse_sets, parse_value, run_grid
from rrn.model import resolve_skips

ROOT = Path(__file__).resolve().parents[1]
PAPER_GRIDS = sorted((ROOT / "configs" / "paper").glob("*.yaml"))
PAPER = 0.5  # the "published" error of the early cell


def base(data):
    return {
        "dataset": "ucf101",
        "data_root": str(data),
        "weights": "none",
        "arch": "resnet18",
        "frame_size": 32,
        "epochs": 1,
        "batch_size": 4,
        "sample_every": 1,
        "hflip": False,
        "workers": 0,
        "device": "cpu",
        "update_chunks": 4,
        "val_every": 0,
    }


def write_grid(path, data, cells, **extra):
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "title": "Tiny grid",
                "splits": [1],
                "base": base(data),
                "cells": cells,
                **extra,
            }
        )
    )
    return path


TRAIN_CELLS = [
    {"name": "per_frame", "set": {"skip": "none"}},
    {
        "name": "early",
        "set": {"skip": "block1"},
        "paper_error": PAPER,
        "note": "identity skip at block1",
    },
]


def read_csv(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def md_rows(out):
    """results.md table rows as {cell: [columns...]}."""
    rows = {}
    for line in (out / "results.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| cell "):
            cols = [c.strip() for c in line.strip("|").split("|")]
            rows[cols[0]] = cols[1:]
    return rows


@pytest.fixture(scope="module")
def grid(synth, tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    path = write_grid(root / "tiny.yaml", synth, TRAIN_CELLS)
    out = root / "out"
    workers = []
    real = evaluation.run.create_eval_loader
    with pytest.MonkeyPatch.context() as mp:  # see which DataLoader the evaluation asks for
        mp.setattr(
            evaluation.run,
            "create_eval_loader",
            lambda ds, **kw: workers.append(kw["workers"]) or real(ds, **kw),
        )
        assert main(["experiment", str(path), "--out", str(out), "--no-progress"]) == 0
    assert workers == [0, 0]  # the grid's `workers: 0` holds for the evaluation too
    return path, out


def test_grid_trains_each_cell_and_writes_the_tables(grid):
    _, out = grid
    rows = read_csv(out)
    assert [(r["cell"], r["kind"], r["split"], r["status"]) for r in rows] == [
        ("per_frame", "train", "1", "ran"),
        ("early", "train", "1", "ran"),
    ]
    for r in rows:
        run = out / r["cell"] / "split1"
        result = json.loads((run / "eval_split1.json").read_text())
        assert 0 <= float(r["video_error"]) <= 1
        assert float(r["video_error"]) == pytest.approx(result["video_error"])
        assert int(r["num_videos"]) == result["num_videos"] == 4
        assert result["checkpoint"] == str(run / "last.pt")  # the last checkpoint, never "best"
        assert result["checkpoint_progress"]["epoch"] == 1
    # each cell's `set` reached its training run
    skips = {
        c: torch.load(out / c / "split1" / "last.pt", weights_only=True)["config"]["model"]["skip"]
        for c in ("per_frame", "early")
    }
    assert skips == {"per_frame": [], "early": ["layer1.0"]}
    assert rows[0]["paper_error"] == "" and float(rows[1]["paper_error"]) == PAPER

    md = md_rows(out)  # cell | split 1 | mean error | paper error | ours - paper
    err = {r["cell"]: float(r["video_error"]) for r in rows}
    assert md["per_frame"] == [f"{err['per_frame']:.3f}", f"{err['per_frame']:.3f}", "—", "—"]
    assert md["early"] == [
        f"{err['early']:.3f}",
        f"{err['early']:.3f}",
        "0.500",
        f"{err['early'] - PAPER:+.3f}",
    ]
    text = (out / "results.md").read_text()
    assert text.startswith("# Tiny grid") and "- **early**: identity skip at block1" in text
    # per_frame is T=1, early T=2: one protocol line each, naming its cells
    assert "Protocol: video-level, all N//T chunks (T=1), 1 centre crop (per_frame)." in text
    assert "Protocol: video-level, all N//T chunks (T=2), 1 centre crop (early)." in text
    assert [r["protocol"] for r in rows] == [
        "video-level, all N//T chunks (T=1), 1 centre crop",
        "video-level, all N//T chunks (T=2), 1 centre crop",
    ]
    assert "![results](results.png)" in text
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_reuses_finished_cells_and_a_lost_result_is_re_evaluated(grid, capsys):
    path, out = grid
    last = {c: out / c / "split1" / "last.pt" for c in ("per_frame", "early")}
    stamps = {c: p.stat().st_mtime_ns for c, p in last.items()}
    before = {r["cell"]: r["video_error"] for r in read_csv(out)}

    results = {c: out / c / "split1" / "eval_split1.json" for c in ("per_frame", "early")}
    result_stamps = {c: p.stat().st_mtime_ns for c, p in results.items()}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished cell was trained or evaluated again")

    with pytest.MonkeyPatch.context() as mp:  # nothing trained, nothing evaluated
        mp.setattr("rrn.train.fit", refuse)
        mp.setattr("rrn.evaluation.evaluate_checkpoint", refuse)
        assert main(["experiment", str(path), "--out", str(out), "--no-progress"]) == 0
    assert [r["status"] for r in read_csv(out)] == ["reused", "reused"]
    assert "== tiny: cell" not in capsys.readouterr().out
    assert {c: p.stat().st_mtime_ns for c, p in results.items()} == result_stamps
    assert {c: p.stat().st_mtime_ns for c, p in last.items()} == stamps

    (out / "early" / "split1" / "eval_split1.json").unlink()  # last.pt stays
    assert main(["experiment", str(path), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "already finished 1 epoch(s)" in text  # resumed from last.pt, nothing left to train
    rows = read_csv(out)
    assert [r["status"] for r in rows] == ["reused", "ran"]
    assert {c: p.stat().st_mtime_ns for c, p in last.items()} == stamps
    assert {r["cell"]: r["video_error"] for r in rows} == before  # same weights, same numbers
    assert (out / "early" / "split1" / "eval_split1.json").is_file()


def test_results_md_names_the_set_overrides_beside_the_grids_description(grid, tmp_path):
    # A grid scaled down with --set must not pass for the grid as described (its epochs, its
    # frame size): results.md says what the run changed.
    path, out = grid
    spec = yaml.safe_load(path.read_text())
    described = write_grid(
        tmp_path / "described.yaml",
        spec["base"]["data_root"],
        TRAIN_CELLS,
        description="Trained for 30 epochs.",
    )
    argv = ["experiment", str(described), "--out", str(out), "--no-progress"]
    assert main([*argv, "--set", "epochs=1", "--set", "frame_size=32"]) == 0  # cells reused
    text = (out / "results.md").read_text()
    assert "Trained for 30 epochs.\n\nRun with `--set epochs=1`, `--set frame_size=32`.\n" in text
    assert main(argv) == 0
    text = (out / "results.md").read_text()
    assert "Trained for 30 epochs.\n" in text and "Run with" not in text


def test_dry_run_validates_and_runs_nothing(grid, tmp_path, capsys):
    path, _ = grid
    out = tmp_path / "dry"
    assert main(["experiment", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["per_frame", "split", "1", "planned"],
        ["early", "split", "1", "planned"],
    ]
    assert not out.exists()


def test_unknown_keys_fail_up_front_with_a_suggestion(synth, tmp_path, capsys):
    bad = write_grid(tmp_path / "bad.yaml", synth, [{"name": "a", "paper_eror": 0.2}])
    with pytest.raises(
        ConfigError, match="cell 'a': unknown key 'paper_eror'; did you mean 'paper_error'"
    ):
        load_grid(bad)
    bad = write_grid(
        tmp_path / "bad.yaml", synth, [{"name": "a"}, {"name": "b", "set": {"skp": "none"}}]
    )
    grid = load_grid(bad)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="cell b: unknown key 'skp'; did you mean 'skip'"):
        run_grid(grid, out)
    assert not out.exists()  # cell a was not trained first
    with pytest.raises(ConfigError, match="--set: unknown key 'lrr'; did you mean 'lr'"):
        run_grid(
            load_grid(write_grid(tmp_path / "ok.yaml", synth, [{"name": "a"}])),
            out,
            sets=["lrr=0.1"],
        )
    with pytest.raises(ConfigError, match="unknown key 'sorce'; did you mean 'source'"):
        parse_sets(["features.sorce=none"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["epochs"])
    # through the CLI: exit 2 and the message, no traceback
    assert (
        main(["experiment", str(tmp_path / "ok.yaml"), "--out", str(out), "--set", "epoch=1"]) == 2
    )
    assert "did you mean 'epochs'" in capsys.readouterr().err
    assert not out.exists()


def test_set_values_reach_every_cell(synth, tmp_path):
    grid = load_grid(write_grid(tmp_path / "g.yaml", synth, TRAIN_CELLS))
    train, feats = parse_sets(
        [
            "lr=1e-3",
            "epochs=2",
            "features.float16=true",
            "weights=none",
            "frame-size=64",
            "skip=block4",
        ]
    )
    assert feats == {"float16": True} and train["epochs"] == 2 and train["frame_size"] == 64
    cfgs = [cell_config(grid, c, 1, train, tmp_path / c.name) for c in grid.cells]
    for cell, cfg in zip(grid.cells, cfgs):
        assert (cfg.optim.lr, cfg.optim.epochs, cfg.data.frame_size) == (1e-3, 2, 64)
        assert cfg.model.weights == "none" and cfg.run.out == str(tmp_path / cell.name)
    assert [c.model.skip for c in cfgs] == [("block4",), ("block4",)]  # --set beats a cell's set
    assert parse_value("null") == "null" and parse_value("3") == 3


def test_baseline_cells_share_one_feature_extraction(synth, tmp_path, capsys):
    cells = [
        {"name": "avg", "kind": "baseline", "model": "avgpool", "stage": 4},
        {"name": "gru", "kind": "baseline", "model": "gru", "stage": 3, "znorm": True},
    ]
    path = write_grid(tmp_path / "b.yaml", synth, cells, features={"source": "none", "epochs": 3})
    out = tmp_path / "out"
    assert main(["experiment", str(path), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    # the second cell reuses the first one's features
    assert "8 videos written" in text and "0 videos written, 8 already there" in text
    (feats,) = (out / "_features").iterdir()  # one extraction, named by all its settings
    assert feats.name.startswith("none_resnet18_32px_") and feats.name.endswith("_split1")
    meta = json.loads((feats / "features.json").read_text())
    assert meta["source"] == "none" and meta["stages"] == [2, 3, 4] and len(meta["videos"]) == 8
    rows = read_csv(out)
    assert [(r["cell"], r["kind"], r["status"]) for r in rows] == [
        ("avg", "baseline", "ran"),
        ("gru", "baseline", "ran"),
    ]
    for r, stem in zip(rows, ("baseline_avgpool_stage4", "baseline_gru_stage3_znorm")):
        result = json.loads((out / r["cell"] / "split1" / f"{stem}.json").read_text())
        assert float(r["video_error"]) == pytest.approx(result["video_error"])
        assert 0 <= result["video_error"] <= 1 and result["num_videos"] == 4
        assert result["epochs"] == 3 and result["features"] == str(feats)
    assert (
        json.loads((out / "gru" / "split1" / "baseline_gru_stage3_znorm.json").read_text())[
            "protocol"
        ]
        == "video-level, GRU over all sampled frames, 1 centre crop"
    )
    assert (
        "Protocol: video-level, mean of the features of all sampled frames, 1 centre crop (avg)."
        in (out / "results.md").read_text()
    )
    assert md_rows(out)["gru"][-2:] == ["—", "—"]  # no paper number
    assert main(["experiment", str(path), "--out", str(out), "--no-progress"]) == 0
    assert [r["status"] for r in read_csv(out)] == ["reused", "reused"]
    # a setting that changes the features gets its own extraction, never the old one
    assert (
        main(
            [
                "experiment",
                str(path),
                "--out",
                str(out),
                "--no-progress",
                "--only",
                "avg",
                "--set",
                "features.float16=true",
            ]
        )
        == 0
    )
    assert len(list((out / "_features").iterdir())) == 1  # results reused: nothing extracted
    (out / "avg" / "split1" / "baseline_avgpool_stage4.json").unlink()
    assert (
        main(
            [
                "experiment",
                str(path),
                "--out",
                str(out),
                "--no-progress",
                "--only",
                "avg",
                "--set",
                "features.float16=true",
            ]
        )
        == 0
    )
    assert len(list((out / "_features").iterdir())) == 2


@pytest.mark.parametrize("path", PAPER_GRIDS, ids=lambda p: p.stem)
def test_shipped_paper_grids_resolve(path):
    grid = load_grid(path)
    assert grid.name == path.stem and grid.cells
    for cell in grid.cells:
        for split in grid.splits:
            cfg = cell_config(grid, cell, split, {}, Path("runs") / cell.name / f"split{split}")
            assert cfg.data.split == split and cfg.model.arch == "resnet50"
            if cell.kind == "train":
                skips = resolve_skips(cfg.model)
                assert all(s.startswith("layer") for s in skips)
            else:
                assert cell.model in ("avgpool", "gru") and cell.stage in (2, 3, 4)
    assert len(PAPER_GRIDS) == 4


def test_shipped_grids_carry_the_papers_numbers():
    def paper(name):
        return {
            c.name: c.paper_error
            for c in load_grid(ROOT / "configs" / "paper" / f"{name}.yaml").cells
        }

    assert paper("table3_skip_types") == {"identity": 0.197, "linear": 0.219, "nonlinear": 0.210}
    assert paper("table4_context") == {"T1": None, "T2": 0.197, "T3": 0.194, "T5": 0.209}
    grid = load_grid(ROOT / "configs" / "paper" / "table4_context.yaml")
    contexts = [
        len(resolve_skips(cell_config(grid, c, 1, {}, Path("x")).model)) + 1 for c in grid.cells
    ]
    assert contexts == [1, 2, 3, 5]


def test_paper_grid_dry_run_scaled_down(tmp_path, capsys):
    grid = ROOT / "configs" / "paper" / "table2_positions.yaml"
    assert (
        main(
            [
                "experiment",
                str(grid),
                "--out",
                str(tmp_path / "t2"),
                "--dry-run",
                "--set",
                "arch=resnet18",
                "--set",
                "frame_size=64",
                "--set",
                "weights=none",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [
        "block1",
        "block2",
        "midblock4",
        "block4",
    ]
    assert "(paper 0.197)" in out


def test_shipped_grids_are_found_by_name_and_packaged():
    from rrn.experiment import PAPER_GRIDS as packaged
    from rrn.experiment import find_grid

    assert find_grid("table2_positions") == packaged / "table2_positions.yaml"
    assert sorted(p.name for p in packaged.glob("*.yaml")) == [p.name for p in PAPER_GRIDS]
    with pytest.raises(ConfigError, match="shipped grids: table1_baselines"):
        find_grid("table9_nothing")

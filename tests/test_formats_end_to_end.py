"""Every dataset format with a synth layout (rrn.data.formats.synth_layouts) read end to end
through the CLI on its `rrn synth --layout` miniature: check-data, cache, train one epoch,
evaluate, predict."""

import json
from pathlib import Path

import pytest
import yaml

from rrn.cli import build_parser, main
from rrn.commands.flags import flag_overrides
from rrn.config import resolve_config
from rrn.data.formats import FORMATS, synth_layouts
from rrn.data.synth import make_synthetic_dataset
from runs import tiny_train_flags

TINY = [*tiny_train_flags(), "--epochs", "1", "--val-every", "0"]


@pytest.fixture(scope="module", params=synth_layouts())
def miniature(request, tmp_path_factory):
    out = make_synthetic_dataset(
        tmp_path_factory.mktemp(request.param),
        classes=2,
        videos_per_class=4,
        frames=6,
        size=32,
        layout=request.param,
    )
    info = json.loads((out / "rrn_synth.json").read_text())
    return request.param, out, info["flags"].replace("--no-hflip", "").split()


def test_check_cache_train_eval_predict(miniature, tmp_path, capsys):
    layout, out, flags = miniature
    temporal = FORMATS[layout].temporal
    videos = 4 if temporal else 8  # an untrimmed video holds an action of every class
    assert main(["check-data", *flags, "--no-progress"]) == 0
    assert f"OK: {videos} videos, no problems" in capsys.readouterr().out
    assert (
        main(
            [
                "cache",
                *flags,
                "--frame-size",
                "32",
                "--sample-every",
                "1",
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"estimate: {videos} videos x " in text and f"cached {videos} videos" in text
    assert temporal or "estimate: 8 videos x 6.0 frames" in text
    data = resolve_config([("flags", flag_overrides(build_parser().parse_args(["train", *flags])))])
    root = Path(data.data.data_root)
    entries = sorted(p.name for p in (root / ".rrn-cache").rglob("*.jpgs"))
    assert len(entries) == videos
    run = tmp_path / "run"
    assert main(["train", *flags, *TINY, "--out", str(run)]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["dataset"] == layout
    assert (
        sorted(p.name for p in (root / ".rrn-cache").rglob("*.*")) == entries
    )  # read, not refilled
    if temporal:  # scoring untrimmed test videos per frame is rrn eval's detection protocol
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        start = next(r for r in log if r["kind"] == "start")
        assert start["train_chunks"] > videos // 2 and start["test_videos"] == videos // 2
        return
    assert main(["eval", str(run), "--which", "last", "--workers", "0", "--no-progress"]) == 0
    result = json.loads((run / "eval_split1.json").read_text())
    assert result["dataset"] == layout and result["num_videos"] == 4
    assert result["num_chunks"] == 4 * 3  # 6 frames, T = 2
    assert result["protocol"] == "video-level, all N//T chunks (T=2), 1 centre crop"
    capsys.readouterr()
    video = data.data.load_split().test[0].path  # a video file, or a frame folder
    assert main(["predict", str(run), str(video), "--which", "last", "--json"]) == 0
    pred = json.loads(capsys.readouterr().out)["videos"][0]
    classes = result["per_class"]
    assert pred["num_frames"] == 6 and {t["class"] for t in pred["top"]} == {
        c["class"] for c in classes
    }


def test_kinetics_missing_videos_are_skipped_and_counted_in_the_log(tmp_path, capsys):
    out = make_synthetic_dataset(
        tmp_path / "k", classes=2, videos_per_class=4, frames=4, size=32, layout="kinetics"
    )
    with open(out / "train.csv", "a") as fh:  # removed from YouTube: normal for Kinetics
        fh.write("move left,goneGONE123,0,10,train\n")
    run = tmp_path / "run"
    assert (
        main(["train", "--dataset", "kinetics", "--data-root", str(out), *TINY, "--out", str(run)])
        == 2
    )
    assert (
        "train.csv:6: video 'train/move left/goneGONE123_000000_000010' not found"
        in capsys.readouterr().err
    )
    assert (
        main(
            [
                "train",
                "--dataset",
                "kinetics",
                "--data-root",
                str(out),
                *TINY,
                "--missing",
                "skip",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    shown, err = capsys.readouterr()
    assert "1 listed videos are missing and skipped (1 train, 0 test)" in shown
    assert "rrn: warning: 1 of 9 listed videos are missing" in err
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start = next(r for r in log if r["kind"] == "start")
    assert start["missing_videos"] == {"train": 1, "test": 0}
    listed = next(r for r in log if r["kind"] == "missing_videos")
    assert listed["videos"] == [f"{out / 'train.csv'}:6 train/move left/goneGONE123_000000_000010"]

"""``rrn demo --quick`` end to end (files, numbers, report, a rerun) and the verdict's wording."""

import json
import re

import pytest
import torch

from rrn.cli import main
from rrn.demo import MODELS, DemoSettings, format_table, verdict

KEYS = [key for key, _, _ in MODELS]
LABELS = [label for _, label, _ in MODELS]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def test_quick_demo_trains_evaluates_and_reports_three_models(demo):
    results = json.loads((demo / "results.json").read_text())
    rows = results["rows"]
    assert [r["key"] for r in rows] == KEYS and [r["model"] for r in rows] == LABELS
    assert results["settings"] == DemoSettings.quick().__dict__
    quick = DemoSettings.quick()
    test_videos = quick.classes * 2  # one test group of 2 clips per class
    for row, skips in zip(rows, ([], ["layer1.0"], ["layer4.1"])):
        run = demo / row["key"]
        for name in ("last.pt", "eval_split1.json", "curves.png", "eval_split1_confusion.png"):
            assert (run / name).is_file(), (row["key"], name)
        result = json.loads((run / "eval_split1.json").read_text())
        assert 0 <= row["video_error"] <= 1 and row["video_error"] == result["video_error"]
        assert row["clip_error"] == pytest.approx(1 - result["clip_top1"])
        assert row["num_videos"] == result["num_videos"] == test_videos
        assert result["checkpoint"] == str(run / "last.pt")
        ckpt = torch.load(run / "last.pt", weights_only=True)
        assert (
            ckpt["config"]["model"]["skip"] == skips and ckpt["progress"]["epoch"] == quick.epochs
        )
    # T=1: one chunk per frame; T=2: non-overlapping pairs
    assert [r["num_chunks"] for r in rows] == [test_videos * quick.frames] + 2 * [
        test_videos * quick.frames // 2
    ]
    assert (demo / "timeline.png").read_bytes()[:4] == b"\x89PNG"

    report = (demo / "report.md").read_text()
    assert (
        "last checkpoint (nothing selected): video-level, all N//T chunks (T=1), 1 centre crop; "
        "video-level, all N//T chunks (T=2), 1 centre crop;"
    ) in report
    assert all(label in report for label in LABELS)
    assert format_table(rows) in report
    for paragraph in verdict(rows, quick.classes, quick.frame_size):
        assert paragraph in report
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert len(links) == 7 and all((demo / link).is_file() for link in links)  # 3 + 3 + timeline
    assert "rrn demo --quick --seed 0" in report


def test_rerun_into_the_same_folder_repeats_the_numbers(demo, capsys):
    first = json.loads((demo / "results.json").read_text())["rows"]
    cached = sorted(p.name for p in (demo / "cache").rglob("*") if p.is_file())
    video = next((demo / "data").rglob("*.avi"))
    mtime = video.stat().st_mtime_ns
    assert main(["demo", "--quick", "--out", str(demo), "--no-progress"]) == 0
    # the same seed's videos are reused, so the frame cache is reused instead of growing
    captured = capsys.readouterr()
    assert video.stat().st_mtime_ns == mtime and "reusing the synthetic videos" in captured.out
    assert sorted(p.name for p in (demo / "cache").rglob("*") if p.is_file()) == cached
    again = json.loads((demo / "results.json").read_text())["rows"]
    # a fresh training of each model (not the old checkpoint), with the same seed: same numbers
    for a, b in zip(first, again):
        assert (a["video_error"], a["clip_error"]) == (b["video_error"], b["clip_error"])
    assert "already holds a run" not in captured.err
    for key in KEYS:
        log = [json.loads(x) for x in (demo / key / "log.jsonl").read_text().splitlines()]
        assert [r["kind"] for r in log].count("start") == 1  # one training in the log, not two


def rows(frame, early, late):
    return [
        {"key": key, "model": label, "video_error": err}
        for (key, label, _), err in zip(MODELS, (frame, early, late))
    ]


def test_verdict_early_skip_wins_and_says_why():
    text = verdict(rows(0.75, 0.10, 0.40), classes=4)
    assert text[0].startswith("Chance is a video error of 0.750 (4 classes)")
    assert "per-frame model ends at 0.750" in text[0]
    assert text[1] == (
        "**RRN T=2, skip at block1 won** with a video error of 0.100, against "
        "0.400 for RRN T=2, skip at block4."
    )
    assert text[2].startswith("Why:") and "1/4 of the frame's resolution" in text[2]
    assert len(text) == 3


def test_verdict_late_skip_wins():
    text = verdict(rows(0.5, 0.45, 0.2), classes=2)
    assert "Chance is a video error of 0.500 (2 classes)" in text[0]
    assert text[1].startswith("**RRN T=2, skip at block4 won** with a video error of 0.200")
    assert text[2].startswith("Why: block4 combines") and "1/4" not in text[2]


def test_verdict_tie_names_no_winner():
    text = verdict(rows(0.75, 0.25, 0.25), classes=4)
    assert text[1:] == ["Both skip positions tie at a video error of 0.250."]
    assert not any("won" in t or "Why" in t for t in text)

"""rrn check-data: every problem reported, none fatal; rrn synth / cache from the command line."""

import numpy as np
import pytest

from cut_videos import cut_avi_before_frame
from rrn.cli import main
from rrn.config import DataConfig
from rrn.data.check import check_dataset
from rrn.data.source import FrameSource
from rrn.data.splits import DatasetSplit, MissingVideo, SplitError, VideoRecord, load_split
from rrn.data.synth import make_synthetic_dataset, write_video


def test_check_dataset_lists_every_problem(tmp_path):
    good = write_video(tmp_path / "good.avi", np.zeros((3, 16, 16, 3), np.uint8), codec="ffv1")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video" * 100)
    split = DatasetSplit(
        classes=["a", "b", "c"],
        train=[
            VideoRecord(good, 0, "a/good"),
            VideoRecord(empty, 0, "a/empty"),
            VideoRecord(junk, 1, "b/junk"),
        ],
        test=[VideoRecord(good, 0, "a/good")],
        missing=[MissingVideo("b/gone", tmp_path / "trainlist01.txt", 7)],
    )
    problems = check_dataset(split)
    got = {(p.video, p.what.split(" (")[0]) for p in problems}
    assert (
        "b/gone",
        f"listed at {tmp_path / 'trainlist01.txt'}:7 but not found under the data root",
    ) in got
    assert ("a/good", "listed on both the train and the test side") in got
    assert ("c", "class has no training video") in got
    assert any(p.video == "a/empty" and "empty" in p.what for p in problems)
    assert any(p.video == "b/junk" and "not a readable video" in p.what for p in problems)
    assert len(problems) == 5
    assert len(check_dataset(split, decode=False)) == 5


def test_cli_synth_check_cache(tmp_path, capsys, logs_warning):
    out = tmp_path / "synth"
    assert (
        main(
            [
                "synth",
                str(out),
                "--classes",
                "2",
                "--videos-per-class",
                "4",
                "--frames",
                "6",
                "--size",
                "16",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert "wrote 8 videos of 2 classes" in capsys.readouterr().out
    before = (out / "trainlist01.txt").read_text()
    assert main(["synth", str(out), "--classes", "3"]) == 2  # never over a dataset that is there
    assert (
        "is not empty" in capsys.readouterr().err
        and (out / "trainlist01.txt").read_text() == before
    )
    assert main(["check-data", "--data-root", str(out), "--no-progress"]) == 0
    assert "OK: 8 videos, no problems" in capsys.readouterr().out

    (out / "MoveLeft" / "v_MoveLeft_g02_c01.avi").write_bytes(b"broken")
    (out / "MoveRight" / "v_MoveRight_g01_c01.avi").unlink()
    assert main(["check-data", "--data-root", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "MoveLeft/v_MoveLeft_g02_c01: not a readable video" in text
    assert (
        "MoveRight/v_MoveRight_g01_c01: listed at" in text
        and "2 problem(s) in 8 listed videos" in text
    )
    # --missing skip, as rrn train takes it: the missing video is counted as skipped, not a problem
    assert main(["check-data", "--data-root", str(out), "--no-progress", "--missing", "skip"]) == 1
    text = capsys.readouterr().out
    assert "1 missing (skipped, as --missing skip trains without them)" in text
    assert (
        "1 problem(s) in 8 listed videos" in text
        and "MoveRight/v_MoveRight_g01_c01: listed" not in text
    )
    (out / "MoveLeft" / "v_MoveLeft_g02_c01.avi").unlink()  # only missing videos left: clean
    assert main(["check-data", "--data-root", str(out), "--no-progress", "--missing", "skip"]) == 0
    assert "2 missing (skipped" in capsys.readouterr().out
    (out / "MoveLeft" / "v_MoveLeft_g02_c01.avi").write_bytes(b"broken")  # as before

    # an unwritable --cache-dir: one line before any video, not one failure per video
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert (
        main(
            [
                "cache",
                "--data-root",
                str(out),
                "--missing",
                "skip",
                "--no-progress",
                "--cache-dir",
                str(blocked / "c"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"cannot write to the output directory {blocked / 'c'}" in err and "--cache-dir" in err

    # cache: the missing video stops it before any work (config error), then --missing skip works.
    assert main(["cache", "--data-root", str(out), "--no-progress", "--workers", "1"]) == 2
    assert "testlist01.txt:1" in capsys.readouterr().err
    rc = main(
        [
            "cache",
            "--data-root",
            str(out),
            "--missing",
            "skip",
            "--no-progress",
            "--workers",
            "2",
            "--sample-every",
            "2",
            "--frame-size",
            "14",
        ]
    )
    text, err = capsys.readouterr()
    assert "rrn: warning: 1 of 8 listed videos are missing" in err
    assert rc == 1 and "cached 6 videos" in text and "FAILED MoveLeft/v_MoveLeft_g02_c01" in text
    assert (
        f"cache {out / '.rrn-cache'} (every 2nd frame, short side 16; writes jpeg, quality 90)"
        in text
    )  # 8/7 x 14
    # the estimate comes before the work: 7 videos present, 3 sampled frames each, the
    # bytes per frame measured on the first 3 entries
    assert "estimate: 7 videos x 3.0 frames (mean of 6 containers) x " in text  # one is broken
    assert "(jpeg, measured on 3 videos, now cached)" in text and text.index(
        "estimate:"
    ) < text.index("cached 6")
    assert len(list((out / ".rrn-cache").rglob("*.jpgs"))) == 6
    # what training with the same flags reads: every readable video comes from that cache
    with logs_warning("missing"):
        split = load_split("ucf101", out, out, 1, missing="skip")
    source = FrameSource.from_config(DataConfig(data_root=str(out), sample_every=2, frame_size=14))
    readable = [r for r in split.train + split.test if r.video_id != "MoveLeft/v_MoveLeft_g02_c01"]
    assert len(readable) == 6 and all(source.ensure_cached(r.path)[1] for r in readable)


def test_cli_reports_every_bad_line_of_every_split_file(tmp_path, capsys):
    out = make_synthetic_dataset(tmp_path / "s", classes=2, videos_per_class=2, frames=3, size=16)
    (out / "trainlist01.txt").write_text(
        "MoveRight/v_MoveRight_g02_c01.avi 5\n"  # label not in classInd.txt
        "../etc/v_MoveRight_g02_c01.avi 1\n"  # leaves the data root
        "MoveLeft/v_MoveLeft_g02_c01.avi 2\n"  # fine
        "MoveLeft/v_MoveLeft_g02_c01.avi 2\n"  # listed twice
        "MoveRight/v_MoveRight_g02_c01.avi\n"
    )  # no label
    (out / "testlist01.txt").write_text(
        "Jumping/v_Jumping_g01_c01.avi\nMoveRight/v_MoveRight_g01_c01.avi\n"
    )
    assert main(["check-data", "--data-root", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    for expected in (
        "trainlist01.txt:1: label 5 is not in classInd.txt (1..2)",
        "trainlist01.txt:2: path '../etc/v_MoveRight_g02_c01.avi' leaves the data root",
        "trainlist01.txt:4: MoveLeft/v_MoveLeft_g02_c01 is listed again (first at",
        "trainlist01.txt:5: expected '<Class>/<video>.avi <label 1..2>'",
        "testlist01.txt:1: class folder 'Jumping' is not in",
        "MoveRight: class has no training video",
    ):
        assert expected in text
    assert text.count("problem: ") == 6 and "6 problem(s) in 2 listed videos" in text


def test_training_still_stops_at_the_first_bad_line(tmp_path, capsys):
    out = make_synthetic_dataset(tmp_path / "s", classes=2, videos_per_class=2, frames=3, size=16)
    (out / "trainlist01.txt").write_text("MoveRight/v_MoveRight_g02_c01.avi 5\n../x.avi 1\n")
    with pytest.raises(
        SplitError, match=r"trainlist01.txt:1: label 5 is not in classInd.txt \(1..2\)"
    ):
        load_split("ucf101", out, out, 1)
    assert (
        main(["check-data", "--data-root", str(out), "--no-progress"]) == 1
    )  # reports, no traceback


def test_cli_reports_links_out_unknown_folders_and_label_gaps(tmp_path, capsys):
    out = make_synthetic_dataset(tmp_path / "s", classes=2, videos_per_class=2, frames=3, size=16)
    outside = (out / "MoveLeft" / "v_MoveLeft_g02_c01.avi").rename(tmp_path / "outside.avi")
    (out / "MoveLeft" / "v_MoveLeft_g02_c01.avi").symlink_to(outside)
    (out / "Jumping").mkdir()
    (out / "Jumping" / "v_Jumping_g02_c01.avi").symlink_to(
        out / "MoveRight" / "v_MoveRight_g02_c01.avi"
    )
    with open(out / "trainlist01.txt", "a") as f:
        f.write("Jumping/v_Jumping_g02_c01.avi 1\n")  # trained as MoveRight until now
    assert main(["check-data", "--data-root", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert (
        "trainlist01.txt:2: MoveLeft/v_MoveLeft_g02_c01.avi is a symbolic link (or in a linked "
        f"folder) to {outside}, outside the data root" in text
    )
    assert (
        "trainlist01.txt:3: Jumping/v_Jumping_g02_c01.avi: class folder 'Jumping' is not in" in text
    )
    assert "MoveLeft: class has no training video" in text and "3 problem(s)" in text

    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("MoveRight/v_MoveRight_g02_c01.avi 0\nMoveRight/v_MoveLeft_g02_c01.avi 999\n")
    test.write_text("MoveRight/v_MoveRight_g01_c01.avi 0\n")
    assert (
        main(
            [
                "check-data",
                "--dataset",
                "list",
                "--data-root",
                str(out),
                "--split-dir",
                str(tmp_path),
                "--train-list",
                str(train),
                "--test-list",
                str(test),
                "--no-progress",
            ]
        )
        == 1
    )  # no classInd.txt
    text = capsys.readouterr().out
    assert (
        f"problem: {train}:2: label 999, but no line has label 1: without a class index the classes "
        "are 0..999 (the largest label), 998 of them without any video." in text
    )
    assert "1 classes, 1 train + 1 test videos" in text and "1 problem(s)" in text


@pytest.mark.parametrize(
    "frames,size", [(2, 16), (7, 32), (24, 64)]
)  # 24 x 64 px: rrn synth's default
def test_synth_videos_are_never_taken_for_truncated(tmp_path, frames, size):
    out = make_synthetic_dataset(tmp_path, classes=4, videos_per_class=2, frames=frames, size=size)
    split = load_split("ucf101", out, out, 1)
    assert len(split.train) + len(split.test) == 8
    assert check_dataset(split) == [] and check_dataset(split, decode=False) == []


def test_truncated_video_reported_by_check_data_and_skipped_by_cache(tmp_path, capsys):
    out = make_synthetic_dataset(tmp_path / "s", classes=2, videos_per_class=2, frames=16, size=32)
    video = out / "MoveLeft" / "v_MoveLeft_g02_c01.avi"
    cut_avi_before_frame(video, tmp_path / "cut.avi", 6).replace(video)  # 6 of 16 frames left
    for flags, count in (([], "6"), (["--quick"], "about 6")):
        assert main(["check-data", "--data-root", str(out), "--no-progress", *flags]) == 1
        text = capsys.readouterr().out
        assert (
            f"problem: MoveLeft/v_MoveLeft_g02_c01: truncated: {count} of 16 frames; the video "
            "stream ends at 0.24 s of the 0.64 s its header promises -> re-download" in text
        )
        assert "1 problem(s) in 4 listed videos" in text
    assert main(["cache", "--data-root", str(out), "--no-progress", "--workers", "1"]) == 1
    text = capsys.readouterr().out
    assert (
        "cached 3 videos" in text
        and "FAILED MoveLeft/v_MoveLeft_g02_c01: truncated: 6 of 16" in text
    )

"""`rrn check-data` on untrimmed videos: intervals outside their video or ending before they
start, classes without a training interval, and how the frames are labelled (Background's
share, ambiguous frames), each named by annotation file and line."""

import numpy as np

from rrn.cli import main
from rrn.data.check import annotation_problems, frame_summary, video_durations
from rrn.data.splits import load_split
from rrn.data.synth import write_video


def four_seconds(path):
    """100 frames at 25 frames/s: 16 frames sampled at 4/s."""
    frames = np.stack([np.full((16, 16, 3), (2 * i) % 256, np.uint8) for i in range(100)])
    return write_video(path, frames, fps=25, codec="ffv1")


def dataset(root, *, bad=False):
    ann = root / "ann"
    ann.mkdir(parents=True)
    # train: Diving [1, 2) s = 4 frames, Ambiguous [3, 3.5) s = 2 frames, 10 Background
    (ann / "Diving_val.txt").write_text(
        "video_validation_1 1.0 2.0\n"
        + ("video_validation_1 3.0 3.0\nvideo_validation_1 3.5 4.5\n" if bad else "")
    )
    (ann / "Ambiguous_val.txt").write_text("video_validation_1 3.0 3.5\n")
    # test: Diving [0, 2) s with CliffDiving [0.5, 1) inside: 8 action frames, 8 Background
    (ann / "Diving_test.txt").write_text("video_test_1 0.0 2.0\n")
    (ann / "CliffDiving_test.txt").write_text("video_test_1 0.5 1.0\n")
    four_seconds(root / "videos" / "validation" / "video_validation_1.mp4")
    four_seconds(root / "videos" / "test" / "video_test_1.mp4")
    return ["--dataset", "thumos14", "--data-root", str(root / "videos"), "--split-dir", str(ann)]


def test_check_data_says_how_the_frames_are_labelled_side_by_side(tmp_path, capsys):
    flags = dataset(tmp_path)
    assert main(["check-data", *flags, "--no-progress"]) == 1  # CliffDiving is never trained
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3 classes, 1 train + 1 test videos present, 0 missing"
    assert out[1] == (
        "train frames (sampled at 4/s): 16 in 1 videos, Background 71.4% of those scored, "
        "2 ambiguous; a class has 0 (CliffDiving) to 4 (Diving)"
    )  # 10 of the 14 frames scored
    assert out[2] == (
        "test frames (sampled at 4/s): 16 in 1 videos, Background 50.0% of those scored, "
        "0 ambiguous; a class has 2 (CliffDiving) to 8 (Diving)"
    )
    assert out[3:] == [
        "problem: CliffDiving: class without any training interval: the model never sees it -> "
        "annotate it on training videos, or remove its test intervals",
        "1 problem(s) in 2 listed videos",
    ]


def test_check_data_names_intervals_outside_the_video_or_ending_before_they_start(tmp_path, capsys):
    flags = dataset(tmp_path, bad=True)
    assert main(["check-data", *flags, "--no-progress", "--quick"]) == 1
    out = capsys.readouterr().out
    diving = tmp_path / "ann" / "Diving_val.txt"
    assert (
        f"problem: video_validation_1: interval 3-3 s at {diving}:2 does not end after it starts"
        in out
    )
    assert (
        f"problem: video_validation_1: interval 3.5-4.5 s at {diving}:3 ends after the video (4 s)"
        in out
    )
    assert "3 problem(s) in 2 listed videos" in out
    split = load_split("thumos14", tmp_path / "videos", tmp_path / "ann")
    assert video_durations(split) == {"video_validation_1": 4.0, "video_test_1": 4.0}
    assert [p.video for p in annotation_problems(split)] == [
        "video_validation_1",
        "video_validation_1",
        "CliffDiving",
    ]
    # without durations (no video readable) nothing is said about the ends
    assert len(annotation_problems(split, durations={})) == 2
    assert "without a known duration left out" in frame_summary(split, durations={})[0]

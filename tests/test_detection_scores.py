"""Score folders and their scoring: the files round-trip and refuse what is malformed, scores
become the segments rrn stream would announce (smoothing, threshold, minimum segment, never
Background), and score_folder computes exactly evaluate_detection on the pooled frames."""

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from rrn.detection.annotations import Interval, TemporalAnnotations, VideoAnnotations
from rrn.detection.labels import frame_labels
from rrn.detection.metrics import evaluate_detection
from rrn.detection.scores import (
    ScoreFileError,
    VideoScores,
    end_of_video,
    read_scores_meta,
    read_video_scores,
    write_scores_meta,
    write_video_scores,
)
from rrn.detection.segments import Segment
from rrn.evaluation.detection_scoring import (
    SegmentSettings,
    per_class_columns,
    score_folder,
    smoothed,
    tracker_segments,
    write_detection_results,
)

CLASSES = ("Background", "Jump", "Run")
RATE = 4.0  # frames/s


def video(name, intervals, ambiguous=(), subset="test"):
    return VideoAnnotations(
        name,
        subset,
        tuple(Interval(s, e, k, f"{name}:{i}") for i, (s, e, k) in enumerate(intervals)),
        tuple(Interval(s, e, -1, f"{name}:amb") for s, e in ambiguous),
    )


def annotations(*videos):
    return TemporalAnnotations(CLASSES, tuple(videos), Path("annotations"))


def perfect(v: VideoAnnotations, frames: int, *, noise: int = 0) -> VideoScores:
    """Scores that put 0.9 on each of a frame's classes, 0.05 on the others."""
    times = np.arange(frames) / RATE
    labels = frame_labels(v, times, len(CLASSES)).targets
    scores = np.where(labels, 0.9, 0.05).astype(np.float32)
    rng = np.random.default_rng(noise)
    if noise:
        scores = scores + rng.uniform(0, 0.01, scores.shape).astype(np.float32)
    return VideoScores(v.video, scores, times)


def write_folder(folder, scores, **meta):
    for s in scores:
        write_video_scores(folder, s.video, s.scores, s.times)
    write_scores_meta(
        folder,
        classes=CLASSES,
        sampling="4 frames/s",
        source="test",
        interval_s=1 / RATE,
        **meta,
    )


# ---------------------------------------------------------------------------- files
def test_a_score_file_round_trips_and_the_meta_fills_its_defaults(tmp_path):
    scores = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    write_video_scores(tmp_path, "video_test_1", scores, np.arange(5) / 4)
    back = read_video_scores(tmp_path, "video_test_1", 3)
    assert back.video == "video_test_1"
    np.testing.assert_array_equal(back.scores, scores)
    np.testing.assert_array_equal(back.times, [0, 0.25, 0.5, 0.75, 1.0])
    (tmp_path / "scores.json").write_text('{"classes": ["Background", "A", "B"], "sampling": "x"}')
    meta = read_scores_meta(tmp_path)
    assert (meta["interval_s"], meta["context"], meta["skipped"], meta["data"]) == (
        None,
        1,
        {},
        None,
    )


@pytest.mark.parametrize(
    "scores, times, message",
    [
        (np.zeros((3, 2)), np.arange(3.0), r"\(N, 3\)"),
        (np.zeros((3, 3)), np.arange(4.0), "times of shape"),
        (np.zeros((3, 3)), np.array([0, 1, 1.0]), "increase strictly"),
        (np.full((3, 3), np.nan), np.arange(3.0), "finite"),
        (np.zeros((0, 3)), np.zeros(0), "N >= 1"),
        (np.full((3, 3), "0.5"), np.arange(3.0), "real numbers, got <U3"),
        (np.zeros((3, 3), complex), np.arange(3.0), "real numbers, got complex128"),
        (np.zeros((3, 3)), np.arange(3.0) - 1, "from the video's start, got -1"),
    ],
)
def test_malformed_scores_are_refused_naming_what_is_wrong(tmp_path, scores, times, message):
    np.savez(tmp_path / "v.npz", scores=scores, times=times)
    with pytest.raises(ScoreFileError, match=message):
        read_video_scores(tmp_path, "v", 3)


def write_npy(path):
    with path.open("wb") as fh:
        np.save(fh, np.zeros((3, 3)))


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda path: path.write_bytes(b""), "No data left in file"),
        (lambda path: path.write_bytes(b"PK\x03\x04 a truncated zip"), "not a zip file"),
        (write_npy, "an .npy array"),
    ],
)
def test_a_file_that_is_no_npz_is_refused_as_a_user_error(tmp_path, write, message):
    write(tmp_path / "v.npz")
    with pytest.raises(ScoreFileError, match=f"v.npz: not a score file .*{message}"):
        read_video_scores(tmp_path, "v", 3)


@pytest.mark.parametrize(
    "meta, message",
    [
        ('"context": "two"', "\"context\" must be .* got 'two'"),
        ('"context": 0', '"context" must be .* got 0'),
        ('"context": 2.5', '"context" must be .* got 2.5'),
        ('"interval_s": "0.25"', "\"interval_s\" must be .* got '0.25'"),
        ('"interval_s": -1', '"interval_s" must be .* got -1'),
        ('"interval_s": NaN', '"interval_s" must be .* got nan'),
        ('"skipped": ["v"]', '"skipped" must be an object'),
        ('"data": "thumos14"', '"data" must be an object'),
    ],
)
def test_a_description_with_a_value_of_the_wrong_kind_is_refused(tmp_path, meta, message):
    text = '{"classes": ["Background", "A", "B"], "sampling": "x", ' + meta + "}"
    (tmp_path / "scores.json").write_text(text)
    with pytest.raises(ScoreFileError, match=message):
        read_scores_meta(tmp_path)


def test_a_description_nested_too_deep_for_python_is_invalid_json(tmp_path):
    (tmp_path / "scores.json").write_text("[" * 100_000)
    with pytest.raises(ScoreFileError, match="not valid JSON"):
        read_scores_meta(tmp_path)


def test_a_folder_without_its_description_or_a_file_says_so(tmp_path):
    with pytest.raises(ScoreFileError, match="scores.json not found"):
        read_scores_meta(tmp_path)
    (tmp_path / "scores.json").write_text('{"sampling": "x"}')
    with pytest.raises(ScoreFileError, match="classes"):
        read_scores_meta(tmp_path)
    with pytest.raises(ScoreFileError, match="no scores for test video v"):
        read_video_scores(tmp_path, "v", 3)
    with pytest.raises(ScoreFileError, match="not a video id"):
        write_video_scores(tmp_path, "../v", np.zeros((1, 3)), [0.0])


def test_the_last_frame_stretch_ends_one_interval_after_it():
    assert end_of_video(np.array([0, 0.25, 0.5]), 0.25) == 0.75
    assert end_of_video(np.array([0, 0.5, 1.0, 2.0]), None) == 2.5  # the median gap
    assert end_of_video(np.array([3.0]), None) == 3.0


# ---------------------------------------------------------------------------- segments
def test_smoothing_is_rrn_streams_mean_of_the_last_frames():
    probs = np.random.default_rng(1).random((9, 4))
    for window in (1, 2, 3, 20):
        recent = deque(maxlen=window)
        expected = []
        for row in probs:
            recent.append(row)
            expected.append(np.mean(recent, axis=0))
        np.testing.assert_allclose(smoothed(probs, window), expected, rtol=1e-12)


def test_segments_open_for_actions_only_and_are_scored_by_their_mean_probability():
    # frames at 0, 1, ..., 7 s: Background, Jump x3 (0.6, 0.8, 1.0), Background, Run, Jump, Jump
    top = [0, 1, 1, 1, 0, 2, 1, 1]
    prob = [0.9, 0.6, 0.8, 1.0, 0.7, 0.5, 0.7, 0.7]
    scores = np.zeros((8, 3))
    for t, (k, p) in enumerate(zip(top, prob)):
        scores[t] = (1 - p) / 2
        scores[t, k] = p
    v = VideoScores("v", scores, np.arange(8.0))
    segments = tracker_segments(v, CLASSES, SegmentSettings(smooth=1), end=8.0)
    assert segments == [
        Segment("v", 1, 1.0, 4.0, 0.8),
        Segment("v", 2, 5.0, 6.0, 0.5),
        Segment("v", 1, 6.0, 8.0, 0.7),
    ]
    # a threshold keeps the Run frame out; a minimum duration drops runs shorter than it
    kept = tracker_segments(v, CLASSES, SegmentSettings(1, 0.55, 1.5), end=8.0)
    assert kept == [Segment("v", 1, 1.0, 4.0, 0.8)]


def test_no_segment_ever_opens_for_background():
    scores = np.tile([0.9, 0.05, 0.05], (20, 1))
    v = VideoScores("v", scores, np.arange(20) / 4)
    assert tracker_segments(v, CLASSES, SegmentSettings(smooth=3), end=5.0) == []


# ---------------------------------------------------------------------------- scoring
@pytest.fixture
def dataset():
    a = video("video_test_a", [(2, 4, 1), (6, 8, 2)], ambiguous=[(9, 10)])
    b = video("video_test_b", [(1, 3.5, 2), (3, 5, 1)])
    train = video("video_validation_x", [(0, 1, 1)], subset="train")
    return annotations(train, a, b)


def test_perfect_scores_score_one_and_detect_every_action_at_once(tmp_path, dataset):
    a, b = dataset.subset("test")
    write_folder(tmp_path, [perfect(a, 44), perfect(b, 30)])
    result = score_folder(tmp_path, dataset, SegmentSettings(smooth=1)).result
    assert result["task"] == "detection"
    assert result["frame_map"] == 1.0 and result["segment_map"]["0.5"] == 1.0
    assert result["delay_s_median"] == 0.0 and result["missed"] == 0.0
    assert result["num_videos"] == 2 and result["num_frames"] == 74
    assert result["num_scored_frames"] == 74 - 4  # 9 <= t < 10: 4 frames ignored
    assert "4 frames/s" in result["protocol"] and "each frame's probabilities" in result["protocol"]


def test_the_folder_is_scored_exactly_as_evaluate_detection_scores_its_frames(tmp_path, dataset):
    a, b = dataset.subset("test")
    videos = [perfect(a, 44, noise=1), perfect(b, 30, noise=2)]
    rng = np.random.default_rng(3)
    videos = [v._replace(scores=rng.random(v.scores.shape).astype(np.float32)) for v in videos]
    write_folder(tmp_path, videos, context=2)
    scored = score_folder(tmp_path, dataset)  # smooth: the folder's context, 2
    labels = [frame_labels(v, s.times, 3) for v, s in zip((a, b), videos)]
    segments = [
        seg
        for s in videos
        for seg in tracker_segments(s, CLASSES, SegmentSettings(smooth=2), s.times[-1] + 0.25)
    ]
    expected = evaluate_detection(
        np.concatenate([s.scores for s in videos]),
        np.concatenate([x.targets for x in labels]),
        np.concatenate([x.ignore for x in labels]),
        classes=CLASSES,
        truth=a.segments() + b.segments(),
        predictions=segments,
        ambiguous=a.ambiguous_segments(),
        sampling="4 frames/s",
    )
    assert scored.segments == segments
    for key in ("frame_map", "frame_mcap", "segment_map", "delay_s_median", "missed"):
        assert scored.result[key] == expected[key], key
    assert scored.result["per_class_ap"] == expected["per_class_ap"]
    assert scored.result["segments_settings"]["smooth"] == 2


def test_a_missing_video_other_classes_or_all_skipped_are_refused(tmp_path, dataset):
    a, b = dataset.subset("test")
    write_folder(tmp_path, [perfect(a, 44)])
    with pytest.raises(ScoreFileError, match="no scores for 1 of the 2 test videos"):
        score_folder(tmp_path, dataset)
    write_folder(tmp_path, [perfect(a, 44)], skipped={"video_test_b": "unreadable"})
    result = score_folder(tmp_path, dataset).result  # a skipped video is left out and listed
    assert result["num_videos"] == 1 and result["skipped"] == {"video_test_b": "unreadable"}
    other = TemporalAnnotations(("Background", "Jump", "Walk"), dataset.videos, Path("x"))
    with pytest.raises(ScoreFileError, match="class 2 is 'Run' in the scores, 'Walk'"):
        score_folder(tmp_path, other)


def test_the_results_are_written_as_json_csv_segments_and_timelines(tmp_path, dataset):
    import csv
    import json

    a, b = dataset.subset("test")
    write_folder(tmp_path / "scores", [perfect(a, 44), perfect(b, 30)])
    scored = score_folder(tmp_path / "scores", dataset)
    result = write_detection_results(scored, tmp_path, "eval_x", extra={"split": 1}, plot=1)
    written = json.loads((tmp_path / "eval_x.json").read_text())
    assert written["split"] == 1 and written["frame_map"] == 1.0
    assert len(result["files"]["timelines"]) == 1
    assert Path(result["files"]["timelines"][0]).stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "eval_x_per_class.csv").open()))
    assert list(rows[0]) == per_class_columns()
    assert [r["class"] for r in rows] == ["Jump", "Run"] and rows[0]["actions"] == "2"
    segments = json.loads((tmp_path / "eval_x" / "segments.json").read_text())
    assert {s["label"] for s in segments} == {1, 2}

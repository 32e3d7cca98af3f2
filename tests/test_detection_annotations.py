"""Temporal annotations (THUMOS'14 text files, ActivityNet JSON), frame labels at interval edges,
overlaps and ambiguous stretches, and the checks ``rrn check-data`` will report."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rrn.data import make_synthetic_dataset
from rrn.data.formats.text import LineErrors, SplitError
from rrn.detection.annotations import (
    AMBIGUOUS_LABEL,
    Interval,
    VideoAnnotations,
    read_activitynet,
    read_thumos14,
)
from rrn.detection.labels import (
    check_annotations,
    frame_labels,
    frame_statistics,
    sample_times,
)
from rrn.detection.segments import Segment


def write(path, text, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# ---------------------------------------------------------------------------- THUMOS'14
@pytest.fixture
def thumos(tmp_path):
    """The two official annotation folders unpacked side by side, CRLF as distributed."""
    root = tmp_path / "annotations"
    val = root / "TH14_Temporal_annotations_validation" / "annotation"
    test = root / "TH14_Temporal_Annotations_Test" / "annotations" / "annotation"
    write(val / "Diving_val.txt", "video_validation_0000002 10.0 20.0\n", "\r\n")
    write(val / "CliffDiving_val.txt", "video_validation_0000002  12.5 14.5 \n", "\r\n")
    write(
        val / "BaseballPitch_val.txt",
        "video_validation_0000001 3.2 5.0\nvideo_validation_0000001 1.0 2.0\n\n",
        "\r\n",
    )
    write(val / "Ambiguous_val.txt", "video_validation_0000001 6 7\n", "\r\n")
    write(test / "Diving_test.txt", "video_test_0000004 0.5 3.3\n", "\r\n")
    write(test / "BaseballPitch_test.txt", "video_test_0000004 4 5\n", "\r\n")
    write(test / "Ambiguous_test.txt", "video_test_0000009 1 2\n", "\r\n")
    write(root / "readme.txt", "not an annotation file\n")
    return root


def test_thumos14_classes_are_sorted_after_background(thumos):
    ann = read_thumos14(thumos)
    assert ann.classes == ("Background", "BaseballPitch", "CliffDiving", "Diving")
    assert ann.source == thumos


def test_thumos14_val_trains_test_tests_found_in_nested_folders(thumos):
    ann = read_thumos14(thumos)
    assert [(v.subset, v.video) for v in ann.videos] == [
        ("train", "video_validation_0000001"),
        ("train", "video_validation_0000002"),
        ("test", "video_test_0000004"),
        ("test", "video_test_0000009"),
    ]
    assert [v.video for v in ann.subset("test")] == ["video_test_0000004", "video_test_0000009"]


def test_thumos14_intervals_sorted_ambiguous_apart_with_file_and_line(thumos):
    ann = read_thumos14(thumos)
    first, second = ann.subset("train")
    base = thumos / "TH14_Temporal_annotations_validation" / "annotation"
    assert first.intervals == (
        Interval(1.0, 2.0, 1, f"{base / 'BaseballPitch_val.txt'}:2"),
        Interval(3.2, 5.0, 1, f"{base / 'BaseballPitch_val.txt'}:1"),
    )
    assert first.ambiguous == (
        Interval(6.0, 7.0, AMBIGUOUS_LABEL, f"{base / 'Ambiguous_val.txt'}:1"),
    )
    assert [(i.start, i.end, i.label) for i in second.intervals] == [
        (10.0, 20.0, 3),
        (12.5, 14.5, 2),
    ]
    assert first.duration is None
    # a video annotated only as ambiguous is still a video (nothing of it is scored)
    only_ambiguous = ann.subset("test")[1]
    assert only_ambiguous.intervals == () and len(only_ambiguous.ambiguous) == 1


def test_thumos14_segments_for_the_metrics(thumos):
    video = read_thumos14(thumos).subset("test")[0]
    assert video.segments() == [
        Segment("video_test_0000004", 3, 0.5, 3.3),
        Segment("video_test_0000004", 1, 4.0, 5.0),
    ]


def test_thumos14_skips_hidden_files_and_macosx_copies(thumos):
    write(thumos / "__MACOSX" / "annotation" / "Diving_val.txt", "garbage\n")
    write(thumos / "x" / "._Diving_val.txt", "garbage\n")
    write(thumos / ".hidden" / "Golf_val.txt", "garbage\n")
    assert read_thumos14(thumos).classes == ("Background", "BaseballPitch", "CliffDiving", "Diving")


def test_thumos14_collects_every_malformed_line_then_raises_one_error(thumos):
    bad = write(
        thumos / "more" / "Shotput_val.txt",
        "video_validation_0000003 1 2\n"
        "video_validation_0000003 1\n"
        "video_validation_0000003 one 2\n"
        "video_validation_0000003 -1 2\n"
        "video_validation_0000003 nan 2\n"
        "../video 1 2\n",
        "\r\n",
    )
    with pytest.raises(SplitError) as err:
        read_thumos14(thumos)
    message = str(err.value)
    assert message.startswith(f"5 malformed annotations in {thumos}")
    assert (
        f"{bad}:2: expected '<video> <start> <end>' (seconds), got 'video_validation_0000003 1'"
        in message
    )
    assert (
        f"{bad}:3: start and end must be seconds (non-negative numbers), got 'one' and '2'"
        in message
    )
    assert f"{bad}:4: start and end must be seconds" in message
    assert f"{bad}:5: start and end must be seconds" in message
    assert f"{bad}:6: '../video' is not a video id" in message


def test_thumos14_collecting_errors_keeps_the_good_lines(thumos):
    write(thumos / "Shotput_val.txt", "video_validation_0000003 1 2\nbroken\n")
    errors = LineErrors(collect=True)
    ann = read_thumos14(thumos, errors)
    assert errors.messages == [
        f"{thumos / 'Shotput_val.txt'}:2: expected '<video> <start> <end>' (seconds), got 'broken'"
    ]
    assert "Shotput" in ann.classes
    assert [v.video for v in ann.subset("train")][-1] == "video_validation_0000003"


def test_thumos14_a_raising_collector_stops_at_the_first_bad_line(thumos):
    write(thumos / "Shotput_val.txt", "broken\nvideo_validation_0000003 1\n")
    with pytest.raises(SplitError, match=r"Shotput_val.txt:1: expected"):
        read_thumos14(thumos, LineErrors())


def test_thumos14_a_second_copy_of_a_file_and_a_background_class_are_reported(thumos):
    write(thumos / "copy" / "Diving_val.txt", "video_validation_0000002 10 20\n")
    write(thumos / "Background_test.txt", "video_test_0000004 0 1\n")
    with pytest.raises(SplitError) as err:
        read_thumos14(thumos)
    assert "Background_test.txt: the class name 'Background' is reserved" in str(err.value)
    assert "Diving_val.txt: a second Diving_val.txt (the first is" in str(err.value)


def test_thumos14_a_folder_named_as_an_annotation_file_is_reported_unless_the_file_is_found(
    thumos,
):
    (thumos / "Run_val.txt").mkdir()  # no Run_val.txt file anywhere
    write(thumos / "Golf_test.txt" / "Golf_test.txt", "video_test_0000004 0.5 3.3\n")
    with pytest.raises(SplitError) as err:
        read_thumos14(thumos)
    assert str(err.value).startswith("1 malformed annotation in")
    assert f"{thumos / 'Run_val.txt'}: a folder, not the annotation file" in str(err.value)


def test_thumos14_without_annotation_files_or_folder(tmp_path):
    write(tmp_path / "readme.txt", "x\n")
    with pytest.raises(SplitError, match="no THUMOS'14 annotation file"):
        read_thumos14(tmp_path)
    with pytest.raises(SplitError, match="is not a folder"):
        read_thumos14(tmp_path / "absent")


# ---------------------------------------------------------------------------- ActivityNet
def activitynet(database):
    return json.dumps({"version": "1.3", "taxonomy": [], "database": database})


DATABASE = {
    "v_b": {
        "subset": "validation",
        "duration": 30.0,
        "annotations": [{"segment": [5, 9.5], "label": "Long jump"}],
    },
    "v_a": {
        "subset": "training",
        "duration": 60,
        "url": "https://example.invalid/ignored",
        "annotations": [
            {"segment": [20.0, 30.0], "label": "Zumba"},
            {"segment": [1.5, 10.0], "label": "Long jump"},
            {"segment": [40, 41], "label": "Ambiguous"},
        ],
    },
    "v_c": {"subset": "testing", "duration": 10, "annotations": []},
}


def test_activitynet_file_subsets_classes_and_durations(tmp_path):
    path = write(tmp_path / "anet.json", activitynet(DATABASE))
    ann = read_activitynet(path)
    assert ann.classes == ("Background", "Long jump", "Zumba")
    assert [(v.subset, v.video, v.duration) for v in ann.videos] == [
        ("train", "v_a", 60.0),
        ("test", "v_b", 30.0),
    ]
    train = ann.subset("train")[0]
    assert [(i.start, i.end, i.label) for i in train.intervals] == [(1.5, 10.0, 1), (20.0, 30.0, 2)]
    assert train.intervals[0].where == f'{path}: database["v_a"].annotations[1]'
    assert [(i.start, i.end, i.label) for i in train.ambiguous] == [(40.0, 41.0, AMBIGUOUS_LABEL)]


def test_activitynet_folder_holding_one_json(tmp_path):
    write(tmp_path / "anet" / "mine.json", activitynet(DATABASE))
    write(tmp_path / "anet" / "notes.txt", "x")
    assert read_activitynet(tmp_path / "anet").source == tmp_path / "anet" / "mine.json"
    write(tmp_path / "anet" / "other.json", activitynet({}))
    with pytest.raises(SplitError, match=r"several .json files in .* \(mine.json, other.json\)"):
        read_activitynet(tmp_path / "anet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SplitError, match="no .json files in"):
        read_activitynet(tmp_path / "empty")
    with pytest.raises(SplitError, match="not found"):
        read_activitynet(tmp_path / "absent.json")


def test_activitynet_folder_of_rrn_synth_is_read_past_its_rrn_synth_json(tmp_path):
    # rrn synth --layout activitynet writes rrn_synth.json beside the annotation: the folder
    # must still name one annotation file, as --split-dir FOLDER promises.
    data = make_synthetic_dataset(
        tmp_path / "an", classes=2, videos_per_class=4, frames=6, size=32, layout="activitynet"
    )
    assert (data / "rrn_synth.json").is_file()
    ann = read_activitynet(data)
    assert ann.source == data / "activity_net.json"
    assert ann.classes == read_activitynet(data / "activity_net.json").classes


def test_activitynet_malformed_entries_name_file_and_json_path(tmp_path):
    database = {
        "ok": {"subset": "training", "annotations": [{"segment": [0, 1], "label": "Run"}]},
        "v1": {"subset": "train", "annotations": []},
        "v2": {"subset": "validation", "duration": -3, "annotations": []},
        "v3": {"subset": "validation", "annotations": {"segment": [0, 1]}},
        "v4": {
            "subset": "training",
            "annotations": [
                {"segment": [0, 1], "label": "Run"},
                {"segment": [2], "label": "Run"},
                {"segment": [2, "x"], "label": "Run"},
                {"segment": [2, 3]},
                {"segment": [2, 3], "label": "Background"},
                "Run",
            ],
        },
        "v5": ["not", "an", "object"],
    }
    path = write(tmp_path / "a.json", activitynet(database))
    with pytest.raises(SplitError) as err:
        read_activitynet(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"9 malformed annotations in {path} (fix each, or remove it):"
    assert lines[1:] == [
        f'{path}: database["v1"].subset: expected "training", "validation" or "testing", got \'train\'',
        f'{path}: database["v2"].duration: expected the video\'s length in seconds, got -3',
        f'{path}: database["v3"].annotations: expected a list of {{"segment": [<start>, <end>], "label": <class>}}, got {{\'segment\': [0, 1]}}',
        f'{path}: database["v4"].annotations[1].segment: expected [<start>, <end>] in seconds (two non-negative numbers), got [2]',
        f"{path}: database[\"v4\"].annotations[2].segment: expected [<start>, <end>] in seconds (two non-negative numbers), got [2, 'x']",
        f'{path}: database["v4"].annotations[3].label: expected a class name, got None',
        f"{path}: database[\"v4\"].annotations[4].label: 'Background' is reserved for frames in no interval",
        f'{path}: database["v4"].annotations[5]: expected {{"segment": [<start>, <end>], "label": <class>}}',
        f'{path}: database["v5"]: expected an object with "subset" and "annotations"',
    ]
    errors = LineErrors(collect=True)
    ann = read_activitynet(path, errors)
    assert len(errors.messages) == 9
    assert [(v.video, len(v.intervals)) for v in ann.videos] == [("ok", 1), ("v4", 1)]


def test_activitynet_not_json_or_no_database(tmp_path):
    path = write(tmp_path / "a.json", '{"database": {\n  "v": [1, }\n}')
    with pytest.raises(SplitError, match=r"a.json:2:\d+: not valid JSON"):
        read_activitynet(path)
    write(
        path,
        '{"database": {"v": {"subset": "training", "annotations": [{"segment": [NaN, 1], "label": "x"}]}}}',
    )
    with pytest.raises(SplitError, match="NaN is not a JSON number"):
        read_activitynet(path)
    write(path, json.dumps({"results": {}}))
    with pytest.raises(SplitError, match='no "database" object at the top'):
        read_activitynet(path)


def test_activitynet_video_given_twice_is_refused_not_half_read(tmp_path):
    entry = '{"subset": "training", "duration": 9, "annotations": []}'
    path = write(tmp_path / "a.json", f'{{"database": {{"v1": {entry}, "v1": {entry}}}}}')
    with pytest.raises(SplitError, match=r'a.json: "v1" appears twice in one object') as err:
        read_activitynet(path)
    assert "\n" not in str(err.value)


def test_activitynet_nested_past_the_stack_or_not_utf8_is_one_plain_split_error(tmp_path):
    path = write(tmp_path / "a.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(SplitError, match="a.json: not valid JSON .*recursion"):
        read_activitynet(path)
    path.write_bytes(b'{"database": {"\xff": {}}}')
    with pytest.raises(SplitError) as err:
        read_activitynet(path)
    assert str(err.value).startswith(f"{path}: not a UTF-8 text file")
    assert "not valid JSON" not in str(err.value)


# ---------------------------------------------------------------------------- frame labels
def video(intervals, ambiguous=(), duration=None, subset="train", name="v"):
    return VideoAnnotations(
        name,
        subset,
        tuple(Interval(s, e, c, "f:1") for s, e, c in intervals),
        tuple(Interval(s, e, AMBIGUOUS_LABEL, "f:2") for s, e in ambiguous),
        duration,
    )


def test_a_frame_at_the_start_belongs_to_the_action_one_at_the_end_does_not():
    labels = frame_labels(video([(1.0, 2.0, 1)]), [0.75, 1.0, 1.5, 1.75, 2.0, 2.25], 2)
    assert labels.targets[:, 1].tolist() == [False, True, True, True, False, False]
    assert labels.targets[:, 0].tolist() == [True, False, False, False, True, True]
    assert not labels.ignore.any()


def test_meeting_intervals_share_no_frame():
    labels = frame_labels(video([(0.0, 1.0, 1), (1.0, 2.0, 2)]), [0.5, 1.0, 1.5], 3)
    assert labels.targets.astype(int).tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1]]


def test_a_frame_inside_two_classes_has_both_labels():
    # CliffDiving (1) inside Diving (2), as THUMOS'14 annotates it
    labels = frame_labels(video([(10.0, 20.0, 2), (12.5, 14.5, 1)]), [9.0, 11.0, 13.0, 15.0], 3)
    assert labels.targets.astype(int).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 1]]


def test_ambiguous_frames_keep_their_labels_but_are_ignored():
    labels = frame_labels(video([(0.0, 4.0, 1)], ambiguous=[(3.0, 5.0)]), [2.5, 3.0, 4.5, 5.0], 2)
    assert labels.ignore.tolist() == [False, True, True, False]
    assert labels.targets[:, 1].tolist() == [True, True, False, False]


def test_an_interval_that_does_not_end_after_it_starts_labels_no_frame():
    labels = frame_labels(video([(2.0, 2.0, 1), (3.0, 2.0, 1)]), [1.9, 2.0, 2.5, 3.0], 2)
    assert not labels.targets[:, 1].any() and labels.targets[:, 0].all()


def test_frame_times_as_index_over_rate_meet_decimal_edges_exactly():
    times = sample_times(1.0, 10)
    assert times.tolist() == [i / 10 for i in range(10)]
    labels = frame_labels(video([(0.3, 0.7, 1)]), times, 2)
    # 0.3 is a frame (3 / 10 == 0.3 as floats), 0.7 is not: frames 3, 4, 5, 6
    assert np.flatnonzero(labels.targets[:, 1]).tolist() == [3, 4, 5, 6]
    # adding 0.1 repeatedly would miss the edge: 0.1 + 0.1 + 0.1 > 0.3
    assert 0.1 + 0.1 + 0.1 != 0.3


def test_sample_times_stop_before_the_end():
    assert sample_times(2.0, 4).tolist() == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert sample_times(2.1, 4)[-1] == 2.0
    assert len(sample_times(0.0, 4)) == 0
    with pytest.raises(ValueError):
        sample_times(1.0, 0)


def test_a_label_outside_the_classes_is_refused():
    with pytest.raises(ValueError, match="f:1: class 3 is not in 1..2"):
        frame_labels(video([(0.0, 1.0, 3)]), [0.5], 3)


# ---------------------------------------------------------------------------- checks
def test_checks_list_bad_intervals_both_sides_and_untrained_classes(tmp_path):
    from rrn.detection.annotations import TemporalAnnotations

    ann = TemporalAnnotations(
        ("Background", "Run", "Jump", "Swim"),
        (
            video([(1.0, 2.0, 1), (5.0, 4.0, 2)], duration=10.0, name="a"),
            video([(8.0, 12.0, 1)], ambiguous=[(9.5, 11.0)], name="b"),
            video([(1.0, 2.0, 3)], subset="test", name="b"),
            video([(1.0, 2.0, 3)], subset="test", name="c"),
        ),
        tmp_path,
    )
    problems = [str(p) for p in check_annotations(ann, {"b": 10.0})]
    assert problems == [
        "a: interval 5-4 s at f:1 does not end after it starts: it labels no frame -> fix its times or remove it",
        "b: interval 8-12 s at f:1 ends after the video (10 s) -> check the times against the video (a frame past the end is never sampled)",
        "b: interval 9.5-11 s at f:2 ends after the video (10 s) -> check the times against the video (a frame past the end is never sampled)",
        "b: annotated on both the train and the test side -> a video must be in one subset only: remove it from one",
        # Jump's only training interval is empty; Swim is annotated on test videos only
        "Jump: class without any training interval: the model never sees it -> annotate it on training videos, or remove its test intervals",
        "Swim: class without any training interval: the model never sees it -> annotate it on training videos, or remove its test intervals",
    ]
    # without the probed duration, b is not checked against its end
    assert not any("ends after" in str(p) and p.video == "b" for p in check_annotations(ann))


def test_frame_statistics_count_background_and_ignored_frames():
    videos = [
        # 4 frames/s over 3 s: 12 frames; Run covers [1, 2): 4 frames; ambiguous [2.5, 3): 2
        video([(1.0, 2.0, 1)], ambiguous=[(2.5, 3.0)], duration=3.0, name="a"),
        # 2 s: 8 frames, all Jump
        video([(0.0, 2.0, 2)], name="b"),
        video([(0.0, 1.0, 1)], name="unknown"),
    ]
    stats = frame_statistics(videos, 3, rate=4, durations={"b": 2.0})
    assert (stats.frames, stats.ignored) == (20, 2)
    # background: 12 - 4 run - 2 ignored = 6 frames of 18 scored
    assert stats.per_class.tolist() == [6, 4, 8]
    assert stats.background_share == pytest.approx(6 / 18)
    assert stats.without_duration == ("unknown",)
    assert frame_statistics([], 3, rate=4).background_share is None


def test_importing_the_annotations_first_loads_without_a_cycle():
    # rrn.data.formats' package __init__ imports every format: a format that imports
    # rrn.detection.annotations must not make this import order fail.
    code = "import rrn.detection.annotations, rrn.detection.labels, rrn.detection.metrics"
    subprocess.run([sys.executable, "-c", code], check=True)

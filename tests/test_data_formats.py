"""Kinetics, Something-Something v2 and mmaction2 rawframes: parsers, layouts, bad lines, frames."""

import json
import shlex
import shutil

import numpy as np
import pytest

from rrn.cli import build_parser, main
from rrn.data.decode import VideoDecodeError, decode_video
from rrn.data.formats import FORMATS, synth_layouts
from rrn.data.frame_folder import read_frame_folder, write_frame_folder
from rrn.data.sampling import Sampling
from rrn.data.splits import SplitError, load_split, split_problems
from rrn.data.synth import make_synthetic_dataset, write_video

HEADER = "label,youtube_id,time_start,time_end,split\n"


def tiny_video(path, n=4):
    return write_video(
        path, np.stack([np.full((16, 16, 3), 20 * i, np.uint8) for i in range(n)]), codec="ffv1"
    )


# ------------------------------------------------------------------------------------ Kinetics
@pytest.fixture
def kinetics(tmp_path):
    """Two classes; train in class folders (one with underscores), validate flat under val/."""
    root = tmp_path / "k"
    tiny_video(root / "train" / "air drumming" / "aaa_000001_000011.mp4")
    tiny_video(root / "train" / "abseiling" / "bbb_000000_000010.mkv")  # any extension, by stem
    tiny_video(root / "train" / "abseiling" / "ccc_000005_000015.mp4")
    tiny_video(root / "train" / "zumba_dance" / "zzz_000002_000012.mp4")  # spaces as underscores
    tiny_video(root / "val" / "ddd_000003_000013.mp4")
    tiny_video(root / "val" / "eee_000004_000014.mp4")
    (root / "train.csv").write_text(
        HEADER + "air drumming,aaa,1,11,train\nabseiling,bbb,0,10,train\n"
        "abseiling,ccc,5,15,train\nzumba dance,zzz,2,12,train\n"
        "abseiling,gone,7,17,train\n"
    )  # removed from YouTube
    (root / "validate.csv").write_text(
        HEADER + "air drumming,ddd,3,13,val\nzumba dance,eee,4,14,val\n"
    )
    return root


def test_kinetics_both_layouts_classes_and_ids(kinetics, logs_warning):
    with logs_warning("1 of 7 listed videos are missing"):
        split = load_split("kinetics", kinetics, missing="skip")
    assert split.classes == [
        "abseiling",
        "air drumming",
        "zumba dance",
    ]  # sorted, as the label maps
    got = {r.path.relative_to(kinetics).as_posix(): r.label for r in split.train}
    assert got == {
        "train/air drumming/aaa_000001_000011.mp4": 1,
        "train/abseiling/bbb_000000_000010.mkv": 0,
        "train/abseiling/ccc_000005_000015.mp4": 0,
        "train/zumba_dance/zzz_000002_000012.mp4": 2,
    }
    assert [(r.path.relative_to(kinetics).as_posix(), r.label) for r in split.test] == [
        ("val/ddd_000003_000013.mp4", 1),
        ("val/eee_000004_000014.mp4", 2),
    ]  # evaluation reads validate
    [gone] = split.missing
    assert (gone.video_id, gone.line, gone.side) == (
        "train/abseiling/gone_000007_000017",
        6,
        "train",
    )
    assert gone.listed_in == kinetics / "train.csv"
    with pytest.raises(
        SplitError, match=r"train.csv:6: video 'train/abseiling/gone_000007_000017' not found"
    ):
        load_split("kinetics", kinetics)  # --missing error (the default) names file and line


def test_kinetics_malformed_rows_are_reported_by_file_and_line(kinetics, logs_warning):
    with open(kinetics / "train.csv", "a") as fh:
        fh.write(
            "abseiling,hhh,x,10,train\nabseiling,iii,9,4,train\nabseiling,jjj,1\n"
            "abseiling,../up,1,11,train\n"
        )
    with open(kinetics / "validate.csv", "a") as fh:
        fh.write("knitting,kkk,1,11,val\n")
    with logs_warning("1 of 7 listed videos are missing"):
        split, problems = split_problems("kinetics", kinetics)
    assert split is not None and len(split.train) == 4
    t, v = kinetics / "train.csv", kinetics / "validate.csv"
    assert problems == [
        f"{t}:9: expected 5 fields (label,youtube_id,time_start,time_end,split), got 3: 'abseiling,jjj,1'",
        f"{t}:7: time_start 'x' and time_end '10' must be whole seconds with time_start < time_end",
        f"{t}:8: time_start '9' and time_end '4' must be whole seconds with time_start < time_end",
        f"{t}:10: youtube_id '../up' is not a video id",
        f"{v}:4: label 'knitting' is not a class of {t}",
    ]


def test_kinetics_whole_file_problems_stop_at_once(kinetics):
    (kinetics / "validate.csv").write_text("label,youtube_id,start,end\n")
    with pytest.raises(
        SplitError, match=r"validate.csv:1: the header must name .* time_start,time_end missing"
    ):
        load_split("kinetics", kinetics, missing="skip")
    with pytest.raises(SplitError, match="kinetics has one official split"):
        load_split("kinetics", kinetics, split=2)
    (kinetics / "val").rename(kinetics / "elsewhere")
    with pytest.raises(SplitError, match=r"has no validate/ or val/ folder"):
        load_split("kinetics", kinetics)


# ---------------------------------------------------------------------- Something-Something v2
@pytest.fixture(scope="module")
def ssv2(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("ssv2"),
        classes=2,
        videos_per_class=4,
        frames=6,
        size=32,
        layout="ssv2",
    )


def test_ssv2_miniature_is_vp9_webm_and_parses(ssv2):
    import av

    split = load_split("ssv2", ssv2)
    assert split.classes == [
        "Pushing something from left to right",
        "Pushing something from right to left",
    ]
    assert len(split.train) == 4 and len(split.test) == 4
    assert all(r.path.parent == ssv2 and r.path.suffix == ".webm" for r in split.train + split.test)
    with av.open(str(split.train[0].path)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    frames = decode_video(split.train[0].path, Sampling(sample_every=1))
    assert frames.shape == (6, 32, 32, 3)
    train = json.loads((ssv2 / "something-something-v2-train.json").read_text())
    assert [r.video_id for r in split.train] == [e["id"] for e in train]
    assert [r.label for r in split.train] == [0, 0, 1, 1]


def test_ssv2_bad_entries_are_reported_with_the_line_they_start_on(ssv2, tmp_path):
    d = tmp_path / "ssv2"
    shutil.copytree(ssv2, d)  # (links out of the data root would be refused)
    (d / "something-something-v2-validation.json").write_text(
        '[\n  {"id": "104", "template": "Pushing [something] from left to right"},\n'
        '  {"id": "105",\n   "template": "Spinning [something]"},\n'
        '  {"template": "Pushing [something] from left to right"},\n'
        '  {"id": "../x", "template": "Pushing [something] from left to right"}\n]\n'
    )
    split, problems = split_problems("ssv2", d)
    v = d / "something-something-v2-validation.json"
    assert [r.video_id for r in split.test] == ["104"]
    assert problems == [
        f"{v}:3: template 'Spinning [something]' (class 'Spinning something') is not in "
        "something-something-v2-labels.json",
        f'{v}:5: expected an object with "id" and "template", got '
        "\"{'template': 'Pushing [something] from left to right'}\"",
        f"{v}:6: id '../x' is not a video id",
    ]
    v.write_text('[{"id": "104", "template": "x"} {"id": "105"}]')
    with pytest.raises(SplitError, match=r"validation.json:1: expected ',' or '\]' after an entry"):
        load_split("ssv2", d)
    (d / "something-something-v2-labels.json").write_text('{"a": "0", "b": "2"}')
    with pytest.raises(SplitError, match=r"class indices must be 0..1, each once"):
        load_split("ssv2", d)


# ----------------------------------------------------------------------------------- rawframes
def test_frame_folder_gives_the_frames_decode_video_gives(tmp_path):
    # smooth content, so that JPEG (quality 95) costs ~1 grey level
    yy, xx = np.mgrid[0:48, 0:64]
    frames = (
        np.stack(
            [
                np.stack([xx * 3 + 4 * t, yy * 4, np.full_like(xx, 100 + 5 * t)], -1)
                for t in range(23)
            ]
        )
        .clip(0, 255)
        .astype(np.uint8)
    )
    video = write_video(tmp_path / "v.avi", frames, codec="ffv1")
    folder = write_frame_folder(tmp_path / "v", frames, quality=95)
    for sample_every, short_side in ((5, 24), (1, None), (10, 40)):
        a = decode_video(video, Sampling(sample_every=sample_every, short_side=short_side))
        b = read_frame_folder(folder, Sampling(sample_every=sample_every, short_side=short_side))
        assert a.shape == b.shape and b.dtype == np.uint8  # same frames (0, k, 2k, ...), same size
        assert np.abs(a.astype(int) - b).mean() < 2  # same values up to JPEG's loss
    assert np.abs(b[:, 0, 0, 2] - (100 + 5 * np.array([0, 10, 20]))).max() <= 4  # frames 0, 10, 20


def test_frame_folder_refuses_fps_and_reports_gaps(tmp_path):
    folder = write_frame_folder(tmp_path / "v", np.zeros((5, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="no timestamps"):
        read_frame_folder(folder, Sampling(fps=5))
    (folder / "img_00003.jpg").unlink()
    with pytest.raises(
        VideoDecodeError, match=r"frame img_00003.jpg is missing .* 4 frames up to img_00005.jpg"
    ):
        read_frame_folder(folder, Sampling())
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no frames"):
        read_frame_folder(tmp_path / "empty", Sampling())


def test_rawframes_lists(tmp_path, logs_warning):
    root = tmp_path / "frames"
    for rel, n in (("a/v1", 4), ("a/v2", 3), ("b/v3", 5)):
        write_frame_folder(root / rel, np.zeros((n, 8, 8, 3), np.uint8))
    (tmp_path / "train.txt").write_text("a/v1 4 0\nb/v3 5 1\na/missing 2 0\n")
    (tmp_path / "test.txt").write_text("a/v2 3 0\nb/v3 five 1\nb/v3 5\n../x 3 1\n")
    kw = {"train_list": tmp_path / "train.txt", "test_list": tmp_path / "test.txt"}
    with logs_warning("1 of 4 listed videos are missing"):
        split, problems = split_problems("rawframes", root, **kw)
    assert split.classes == ["0", "1"]
    assert [(r.video_id, r.label, r.num_frames) for r in split.train] == [
        ("a/v1", 0, 4),
        ("b/v3", 1, 5),
    ]
    assert [r.path for r in split.test] == [root / "a/v2"] and split.test[0].path.is_dir()
    assert [(m.video_id, m.line) for m in split.missing] == [("a/missing", 3)]
    t = tmp_path / "test.txt"
    assert problems == [
        f"{t}:2: expected '<frame_dir> <total_frames> <0-based label>', got 'b/v3 five 1'",
        f"{t}:3: expected '<frame_dir> <total_frames> <0-based label>', got 'b/v3 5'",
        f"{t}:4: path '../x' leaves the data root; list paths must be relative to --data-root without '..'",
    ]
    (tmp_path / "train.txt").write_text("a/v1 4 0\nb/v3 5 7\n")  # label 7, no 1..6: not 8 classes
    split, problems = split_problems("rawframes", root, **kw)
    assert split.classes == ["0"] and len(problems) == 4
    assert problems[-1].startswith(f"{tmp_path / 'train.txt'}:2: label 7, but no line has label 1")
    (tmp_path / "classInd.txt").write_text("1 Apply\n2 Brush\n")
    (tmp_path / "train.txt").write_text("a/v1 4 0\nb/v3 5 1\n")
    split, _ = split_problems("rawframes", root, tmp_path, **kw)
    assert split.classes == ["Apply", "Brush"]
    with pytest.raises(SplitError, match="needs both --train-list and --test-list"):
        load_split("rawframes", root, train_list=tmp_path / "train.txt")


def test_check_data_compares_a_folder_with_its_listed_frame_count(tmp_path, capsys):
    out = make_synthetic_dataset(
        tmp_path / "rf", classes=2, videos_per_class=2, frames=4, size=16, layout="rawframes"
    )
    flags = json.loads((out / "rrn_synth.json").read_text())["flags"].split()
    assert main(["check-data", *flags, "--no-progress"]) == 0
    lines = (out / "train_list.txt").read_text().splitlines()
    lines[0] = lines[0].replace(" 4 ", " 9 ")
    (out / "train_list.txt").write_text("\n".join(lines) + "\n")
    test_folder = (out / "test_list.txt").read_text().split()[0]
    (out / "rawframes" / test_folder / "img_00002.jpg").write_bytes(b"not a jpeg")
    assert main(["check-data", *flags, "--no-progress"]) == 1
    text = capsys.readouterr().out
    first = lines[0].split()[0]
    assert f"{first}: the list says 9 frames, {out / 'rawframes' / first} has 4" in text
    assert (
        f"{test_folder}: not a readable JPEG" in text and "2 problem(s) in 4 listed videos" in text
    )


def test_rawframes_refuses_fps_in_the_config():
    from rrn.config import ConfigError, DataConfig

    with pytest.raises(ConfigError, match="rawframes: its frames have no timestamps; use --sample"):
        DataConfig(dataset="rawframes", fps=5)


# ------------------------------------------------------------------------------- every format
@pytest.mark.parametrize("layout", [n for n in synth_layouts() if not FORMATS[n].temporal])
def test_synth_layouts_hold_the_same_split_as_ucf101(layout, tmp_path, capsys):
    """The layouts of trimmed clips hold the same clips (the temporal ones render untrimmed
    videos: tests/test_data_synth.py)."""
    ucf = make_synthetic_dataset(tmp_path / "ucf", classes=2, videos_per_class=4, frames=4, size=16)
    out = tmp_path / f"my {layout}"  # a space: the printed flags must still paste into a shell
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
                "4",
                "--size",
                "16",
                "--layout",
                layout,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"wrote 8 videos of 2 classes to {out} in the {layout} layout" in text
    info = json.loads((out / "rrn_synth.json").read_text())
    assert f"read it with: {info['flags']}" in text
    args = build_parser().parse_args(["train", *shlex.split(info["flags"])])  # every data flag
    from rrn.commands.flags import flag_overrides
    from rrn.config import resolve_config

    split = resolve_config([("flags", flag_overrides(args))]).data.load_split()
    ref = load_split("ucf101", ucf)
    assert len(split.train) == len(ref.train) == 4 and len(split.test) == len(ref.test) == 4
    # the same videos: each test video is one of the UCF-101 copy's, up to the codec's loss
    read = [np.asarray(read_any(r.path)).astype(float) for r in split.test]
    want = [decode_video(r.path, Sampling(sample_every=1)).astype(float) for r in ref.test]
    dist = np.array([[np.abs(a - b).mean() for b in want] for a in read])  # (4, 4)
    assert sorted(dist.argmin(axis=1).tolist()) == [0, 1, 2, 3]
    assert (
        dist.min(axis=1).max() < 10 < np.sort(dist, axis=1)[:, 1].min()
    )  # grey levels: VP9 at 16 px is lossy


def read_any(path):
    from rrn.data.sampling import Sampling
    from rrn.data.source import read_frames

    return read_frames(path, Sampling(sample_every=1))


# ------------------------------------------------------------------- THUMOS'14 and ActivityNet
def untrimmed_video(path, n):
    """``n`` frames at 25 frames/s, each grey level its index (mod 256)."""
    frames = np.stack([np.full((16, 16, 3), (3 * i) % 256, np.uint8) for i in range(n)])
    return write_video(path, frames, codec="ffv1")


def thumos(root):
    """Annotations in the two official folders; videos flat and under validation/ and test/."""
    val = root / "ann" / "TH14_Temporal_annotations_validation" / "annotation"
    test = root / "ann" / "TH14_Temporal_Annotations_Test" / "annotations" / "annotation"
    val.mkdir(parents=True)
    test.mkdir(parents=True)
    (val / "Diving_val.txt").write_text("video_validation_0000051 1.0 2.5\n")
    (val / "CliffDiving_val.txt").write_text("video_validation_0000051 1.5 2.0\n")
    (val / "Ambiguous_val.txt").write_text("video_validation_0000052 0.5 1.0\n")
    (test / "Diving_test.txt").write_bytes(b"video_test_0000004 0.2 1.1\r\n")  # CRLF
    (test / "CliffDiving_test.txt").write_text("video_test_0000004 0.5 0.8\n")
    untrimmed_video(root / "videos" / "video_validation_0000051.mp4", n=75)
    untrimmed_video(root / "videos" / "validation" / "video_validation_0000052.mkv", n=50)
    untrimmed_video(root / "videos" / "test" / "video_test_0000004.mp4", n=30)
    return root / "videos", root / "ann"


def test_thumos14_reads_videos_flat_or_in_their_side_folder_with_their_intervals(tmp_path):
    videos, ann = thumos(tmp_path)
    split = load_split("thumos14", videos, ann)
    assert split.classes == ["Background", "CliffDiving", "Diving"]
    found = {r.video_id: r.path.relative_to(videos).as_posix() for r in split.train + split.test}
    assert found == {
        "video_validation_0000051": "video_validation_0000051.mp4",
        "video_validation_0000052": "validation/video_validation_0000052.mkv",  # by its stem
        "video_test_0000004": "test/video_test_0000004.mp4",
    }
    first = split.train[0].annotation
    assert [(i.start, i.end, i.label) for i in first.intervals] == [(1.0, 2.5, 2), (1.5, 2.0, 1)]
    assert split.train[1].annotation.ambiguous[0][:2] == (0.5, 1.0)
    assert [r.video_id for r in split.test] == ["video_test_0000004"]
    assert split.annotations.classes == tuple(split.classes)


def test_thumos14_malformed_lines_and_missing_videos_name_the_file_and_line(tmp_path, logs_warning):
    videos, ann = thumos(tmp_path)
    bad = ann / "TH14_Temporal_annotations_validation" / "annotation" / "Diving_val.txt"
    bad.write_text(
        "video_validation_0000051 1.0 2.5\nvideo_validation_0000051 1.0\n"
        "video_validation_0000051 a b\nvideo_validation_0000999 3.0 4.0\n"
    )
    with pytest.raises(SplitError, match=rf"{bad}:2: expected '<video> <start> <end>'"):
        load_split("thumos14", videos, ann)  # the first, at once (rrn train)
    with logs_warning("1 of 4 listed videos are missing"):
        split, problems = split_problems("thumos14", videos, ann)  # every one (check-data)
    assert [p.split(": ")[0] for p in problems[:2]] == [f"{bad}:2", f"{bad}:3"]
    assert "start and end must be seconds" in problems[1]
    assert [m.video_id for m in split.missing] == ["video_validation_0000999"]
    assert (split.missing[0].listed_in, split.missing[0].line) == (bad, 4)
    bad.write_text("video_validation_0000051 1.0 2.5\nvideo_validation_0000999 3.0 4.0\n")
    with pytest.raises(SplitError, match=rf"{bad}:2: video 'video_validation_0000999' not found"):
        load_split("thumos14", videos, ann)
    with pytest.raises(SplitError, match="is not a folder; pass the folder of <Class>_val"):
        load_split("thumos14", videos, bad)  # a file is no --split-dir for THUMOS'14


def activitynet(root, name="anet.json"):
    database = {
        "a1": {
            "subset": "training",
            "duration": 3.0,
            "annotations": [{"segment": [0.5, 1.5], "label": "Fall"}],
        },
        "b2": {
            "subset": "validation",
            "duration": 2.0,
            "annotations": [
                {"segment": [0.2, 0.9], "label": "Wave"},
                {"segment": [1.0, 1.2], "label": "Ambiguous"},
            ],
        },
        "c3": {"subset": "testing", "duration": 2.0, "annotations": []},
        "d4": {"subset": "training", "annotations": []},  # all Background, no duration
    }
    (root / name).write_text(json.dumps({"database": database}, indent=1))
    untrimmed_video(root / "a1.mp4", n=75)
    untrimmed_video(root / "v_b2.mp4", n=50)  # ActivityNet's downloads: v_<id>
    untrimmed_video(root / "d4.mkv", n=10)
    return root / name


def test_activitynet_takes_the_file_or_its_folder_and_finds_v_prefixed_videos(tmp_path):
    file = activitynet(tmp_path)
    for split_dir in (file, tmp_path):
        split = load_split("activitynet", tmp_path, split_dir)
        assert split.classes == ["Background", "Fall", "Wave"]
        assert [(r.video_id, r.path.name) for r in split.train] == [
            ("a1", "a1.mp4"),
            ("d4", "d4.mkv"),
        ]
        assert [(r.video_id, r.path.name) for r in split.test] == [("b2", "v_b2.mp4")]
    b2 = split.test[0].annotation
    assert (b2.duration, [i.label for i in b2.intervals], len(b2.ambiguous)) == (2.0, [2], 1)


def test_activitynet_bad_entries_name_the_json_path_and_missing_videos_its_line(
    tmp_path, logs_warning
):
    file = activitynet(tmp_path)
    data = json.loads(file.read_text())
    data["database"]["a1"]["annotations"].append({"segment": [4.0], "label": "Fall"})
    data["database"]["e5"] = {"subset": "training", "annotations": []}  # no video
    file.write_text(json.dumps(data, indent=1))
    with pytest.raises(SplitError, match=r'anet.json: database\["a1"\].annotations\[1\].segment'):
        load_split("activitynet", tmp_path, file)
    with logs_warning("1 of 4 listed videos are missing"):
        split, problems = split_problems("activitynet", tmp_path, file)
    assert len(problems) == 1 and "expected [<start>, <end>] in seconds" in problems[0]
    line = next(i for i, t in enumerate(file.read_text().splitlines(), 1) if '"e5"' in t)
    assert [(m.video_id, m.listed_in, m.line) for m in split.missing] == [("e5", file, line)]


def test_ssv2_labels_nested_past_the_stack_are_one_split_error(tmp_path):
    from rrn.data.formats.ssv2 import read_labels
    from rrn.data.formats.text import SplitError

    path = tmp_path / "labels.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SplitError, match="labels.json: not valid JSON \\(nested too deeply\\)"):
        read_labels(path)

"""A detection run end to end on synthetic untrimmed videos (`rrn synth --layout thumos14`):
train -> rrn eval (the model online over each test video, score files, every metric) -> the
score folder read back and scored again -> rrn stream on a test video, which never announces a
Background segment and announces the segments the evaluation scored."""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from processes import torchrun_two
from rrn.checkpoint import load_model
from rrn.cli import main
from rrn.data import FrameSource, make_synthetic_dataset
from rrn.data.transforms import ClipTransform
from rrn.detection.scores import read_scores_meta, read_video_scores

TINY = [
    "--arch",
    "resnet18",
    "--skip",
    "block1",
    "--frame-size",
    "32",
    "--sample-every",
    "2",
    "--no-hflip",
    "--weights",
    "none",
    "--batch-size",
    "4",
    "--update-chunks",
    "4",
    "--seconds-per-chunk",
    "0.5",
    "--workers",
    "0",
    "--no-progress",
    "--lr",
    "1e-3",
    "--epochs",
    "1",
    "--val-every",
    "0",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A block1 RRN trained for one epoch on 2 train videos; evaluated on the 2 test videos."""
    tmp = tmp_path_factory.mktemp("deteval")
    data = make_synthetic_dataset(
        tmp / "data", classes=2, videos_per_class=4, frames=6, size=32, layout="thumos14"
    )
    flags = shlex.split(json.loads((data / "rrn_synth.json").read_text())["flags"])
    assert main(["train", *flags, *TINY, "--out", str(tmp / "run")]) == 0
    assert main(["eval", str(tmp / "run"), "--no-progress"]) == 0
    return tmp / "run", data, flags


def result_of(run_dir):
    return json.loads((run_dir / "eval_split1.json").read_text())


def test_the_evaluation_json_has_every_metric_and_its_protocol(run):
    run_dir, _, _ = run
    r = result_of(run_dir)
    assert r["task"] == "detection"
    for key in ("frame_map", "frame_mcap", "delay_s_median", "missed", "per_class_ap"):
        assert key in r, key
    assert list(r["segment_map"]) == ["0.3", "0.4", "0.5", "0.6", "0.7"]
    assert list(r["per_class_ap"]) == ["MoveLeft", "MoveRight"]
    assert r["num_videos"] == 2 and r["skipped"] == {}
    assert r["checkpoint_choice"]["chosen_by"] == "last"
    assert "every 2nd frame (12.5 frames/s)" in r["protocol"]
    assert "Checkpoint: last.pt" in r["protocol"] and "Ambiguous" in r["protocol"]
    assert r["timing"]["frames"] == r["num_frames"] > 0
    assert (run_dir / "eval_split1_per_class.csv").read_text().startswith("class,frame_ap")
    assert len(r["files"]["timelines"]) == 2


def test_the_scores_are_the_model_stepped_online_frame_by_frame(run):
    run_dir, data, _ = run
    folder = run_dir / "eval_split1" / "scores"
    meta = read_scores_meta(folder)
    assert meta["classes"] == ["Background", "MoveLeft", "MoveRight"] and meta["context"] == 2
    assert meta["interval_s"] == 2 / 25
    model = load_model(run_dir)
    source = FrameSource(model.train_config.data.sampling())
    transform = ClipTransform(32, train=False)
    video = sorted((data / "test").glob("*.mp4"))[0]
    scores = read_video_scores(folder, video.stem, 3)
    frames = transform(np.asarray(source(video)))  # (N, 3, 32, 32)
    assert len(frames) == len(scores.scores) > 10
    np.testing.assert_array_equal(scores.times, np.arange(len(frames)) * 2 / 25)
    state, stepped = None, []
    with torch.no_grad():
        for frame in frames:
            logits, state = model.step(frame[None], state)
            stepped.append(logits.softmax(dim=-1)[0])
    np.testing.assert_allclose(scores.scores, torch.stack(stepped).numpy(), atol=1e-5)


def test_the_score_folder_scored_again_gives_the_same_numbers(run, tmp_path):
    run_dir, _, _ = run
    folder = run_dir / "eval_split1" / "scores"
    assert main(["eval", str(folder), "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "eval_scores.json").read_text())
    first = result_of(run_dir)
    for key in ("frame_map", "frame_mcap", "segment_map", "delay_s_median", "missed"):
        assert again[key] == first[key], key
    assert again["per_class_ap"] == first["per_class_ap"]
    # other segment settings change the segments, never the frame metrics
    assert main(["eval", str(folder), "--out", str(tmp_path), "--min-segment", "60"]) == 0
    strict = json.loads((tmp_path / "eval_scores.json").read_text())
    assert strict["frame_map"] == first["frame_map"]
    assert strict["num_predicted_segments"] == 0 and strict["missed"] == 1.0


def test_a_moved_score_folder_names_the_data_scores_json_stored_and_the_flags(
    run, tmp_path, capsys, monkeypatch
):
    run_dir, data, _ = run
    folder = tmp_path / "scores"
    shutil.copytree(run_dir / "eval_split1" / "scores", folder)
    meta = json.loads((folder / "scores.json").read_text())
    meta["data"] = {"dataset": "thumos14", "data_root": "data", "split_dir": "data/annotations"}
    (folder / "scores.json").write_text(json.dumps(meta))
    monkeypatch.chdir(tmp_path)  # no ./data here
    assert main(["eval", str(folder), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrn eval: error: data root data is not a folder")
    assert f"as {folder / 'scores.json'} names them" in err and "'data_root': 'data'" in err
    assert err.endswith("pass --data-root and --split-dir where they are now")
    assert len(err.splitlines()) == 1
    flags = ["--data-root", str(data), "--split-dir", str(data / "annotations")]
    assert main(["eval", str(folder), "--out", str(tmp_path), *flags]) == 0


def test_rrn_stream_never_announces_background_and_announces_what_eval_scored(run, tmp_path):
    run_dir, data, _ = run
    video = sorted((data / "test").glob("*.mp4"))[0]
    events_file = tmp_path / "events.jsonl"
    assert main(["stream", str(run_dir), str(video), "--json", str(events_file)]) == 0
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert events[0]["background"] == "Background"
    tops = [e["smoothed"][0]["class"] for e in events if e["type"] == "frame"]
    assert "Background" in tops and set(tops) - {"Background"}, "the test needs both kinds"
    ends = [e for e in events if e["type"] == "segment" and e["phase"] == "end"]
    assert ends and all(e["class"] != "Background" for e in ends)
    scored = json.loads((run_dir / "eval_split1" / "segments.json").read_text())
    classes = ["Background", "MoveLeft", "MoveRight"]
    ours = [(classes[s["label"]], s["start"]) for s in scored if s["video"] == video.stem]
    assert [(e["class"], e["start"]) for e in ends] == ours


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_exported_detection_model_gives_the_scores_rrn_eval_scored(run, tmp_path, fmt):
    """The exported step, run over each test video from a zero state, gives the evaluation's
    score files (1e-4); its own score folder is scored to the same numbers."""
    from rrn.detection.scores import write_scores_meta, write_video_scores
    from rrn.export import ExportedModel

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    run_dir, data, _ = run
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(tmp_path / "x")]) == 0
    exported = ExportedModel(tmp_path / "x")
    assert exported.description["background"] == "Background"
    assert exported.description["classes"][0] == "Background"
    source = FrameSource(load_model(run_dir).train_config.data.sampling())
    transform = ClipTransform(32, train=False)
    folder = run_dir / "eval_split1" / "scores"
    meta = read_scores_meta(folder)
    for video in sorted((data / "test").glob("*.mp4")):
        frames = transform(np.asarray(source(video))).numpy()  # (N, 3, 32, 32)
        probs = torch.from_numpy(exported.run_video(frames)).softmax(dim=-1).numpy()
        ours = read_video_scores(folder, video.stem, 3)
        np.testing.assert_allclose(probs, ours.scores, atol=1e-4)
        write_video_scores(tmp_path / "scores", video.stem, probs, ours.times)
    write_scores_meta(
        tmp_path / "scores",
        **{k: meta[k] for k in ("classes", "sampling", "interval_s", "context", "data")},
        source=f"{fmt} export",
    )
    assert main(["eval", str(tmp_path / "scores"), "--out", str(tmp_path)]) == 0
    theirs = json.loads((tmp_path / "eval_scores.json").read_text())
    first = result_of(run_dir)
    assert theirs["frame_map"] == pytest.approx(first["frame_map"], abs=1e-3)
    assert theirs["num_frames"] == first["num_frames"]


def test_a_detection_model_exports_for_triton_with_background_among_its_labels(run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run_dir, _, _ = run
    argv = ["export", str(run_dir), "--format", "triton", "--out", str(tmp_path), "--name", "det"]
    assert main(argv) == 0
    labels = (tmp_path / "det" / "labels.txt").read_text().split()
    assert labels == ["Background", "MoveLeft", "MoveRight"]
    config = (tmp_path / "det" / "config.pbtxt").read_text()
    assert "dims: [ 3 ]" in config


def test_two_ddp_processes_score_the_videos_of_one_evaluation(run, tmp_path):
    """torchrun with 2 CPU processes (gloo): each scores a share of the test videos, rank 0
    gathers them and writes the same score files and numbers as one process."""

    run_dir, _, _ = run
    torchrun_two(
        "-m",
        "rrn",
        "eval",
        str(run_dir),
        "--out",
        str(tmp_path),
        "--no-progress",
        "--device",
        "cpu",
    )
    two = json.loads((tmp_path / "eval_split1.json").read_text())
    one = result_of(run_dir)
    assert two["timing"]["world_size"] == 2 and two["num_videos"] == one["num_videos"] == 2
    assert two["num_frames"] == one["num_frames"]
    assert two["frame_map"] == pytest.approx(one["frame_map"], abs=1e-6)
    for video in ("video_test_0000001", "video_test_0000002"):
        a = read_video_scores(tmp_path / "eval_split1" / "scores", video, 3)
        b = read_video_scores(run_dir / "eval_split1" / "scores", video, 3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_views_and_flips_have_no_meaning_online_and_are_refused(run, capsys):
    run_dir, _, _ = run
    assert main(["eval", str(run_dir), "--views", "3crop"]) == 2
    assert "one centre crop per frame" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--flip"]) == 2


def test_an_unreadable_test_video_is_skipped_listed_and_left_out(run, tmp_path, capsys):
    import shutil

    run_dir, data, _ = run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "test" / "video_test_0000002.mp4").write_bytes(b"not a video" * 100)
    flags = ["--data-root", str(copy), "--split-dir", str(copy / "annotations")]
    assert main(["eval", str(run_dir), *flags, "--out", str(tmp_path / "out")]) == 0
    assert "skipping video video_test_0000002" in capsys.readouterr().err
    result = json.loads((tmp_path / "out" / "eval_split1.json").read_text())
    assert list(result["skipped"]) == ["video_test_0000002"]
    assert result["num_videos"] == 1 and result["num_test_videos"] == 2
    scores = read_scores_meta(tmp_path / "out" / "eval_split1" / "scores")
    assert list(scores["skipped"]) == ["video_test_0000002"]


def test_a_packed_detection_run_s_card_reports_its_detection_numbers(run, tmp_path):
    """rrn pack takes a detection run's eval_split1.json into the card's model-index (it used
    to be passed over as "not an rrn eval result": no numbers on a detector's card)."""
    import yaml

    from rrn.package.pack import pack_run

    run_dir, _, _ = run
    r = result_of(run_dir)
    card = (pack_run(run_dir, tmp_path / "package").folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    (result,) = meta["model-index"][0]["results"]
    assert result["task"]["type"] == "online-action-detection"
    got = {m["type"]: m["value"] for m in result["metrics"]}
    want = {
        "frame_map": r["frame_map"],
        "frame_mcap": r["frame_mcap"],
        "segment_map_tiou_0.5": r["segment_map"]["0.5"],
        "segment_map_avg": r["segment_map_avg"],
        "detection_delay_s": r["delay_s_median"],
    }
    want = {k: round(v, 6) for k, v in want.items() if v is not None}
    assert got == want and "frame_map" in got
    assert meta["metrics"] == list(want)
    args = result["metrics"][0]["args"]
    assert args["protocol"] == r["protocol"] and args["chosen_by"] == "last"
    assert "Not reported" not in card and "per-frame mAP" in card
    assert "never a later one" in card  # the limits speak of a detector, not of chunk means


def test_a_score_folder_names_its_data_by_absolute_paths(run, tmp_path, monkeypatch):
    """Evaluated with relative --data-root/--split-dir, the score folder still finds its
    annotations from another working folder (rrn eval SCORES_DIR reads them from scores.json)."""
    run_dir, data, flags = run
    split_dir = Path(flags[flags.index("--split-dir") + 1])
    monkeypatch.chdir(data.parent)
    relative = ["--data-root", data.name, "--split-dir", str(split_dir.relative_to(data.parent))]
    assert (
        main(["eval", str(run_dir), *relative, "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    )
    scores = tmp_path / "a" / "eval_split1" / "scores"
    stored = read_scores_meta(scores)["data"]
    assert stored["data_root"] == str(data.resolve())
    assert stored["split_dir"] == str(split_dir.resolve())
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(scores), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "eval_scores.json").read_text())
    assert again["frame_map"] == pytest.approx(result_of(run_dir)["frame_map"], abs=1e-9)

"""Predict: streaming per-frame probabilities equal the chunk model's, top-k, timeline, errors."""

import json

import pytest
import torch

from cut_videos import cut_avi_before_frame
from rrn.checkpoint import make_checkpoint, save_checkpoint
from rrn.cli import main
from rrn.commands.predict import timeline_path
from rrn.config import resolve_config
from rrn.data import make_synthetic_dataset
from rrn.model import build_model
from rrn.predict import FailedVideo, Predictor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    data = make_synthetic_dataset(tmp / "data", classes=3, videos_per_class=2, frames=10, size=32)
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=3, skip_blocks=("block2", "block4"))  # T = 3
    model.eval()
    cfg = resolve_config(
        [
            (
                "flags",
                {
                    "data": {"data_root": str(data), "frame_size": 32, "sample_every": 2},
                    "model": {"arch": "resnet18", "skip": "block2,block4"},
                },
            )
        ]
    )
    run = tmp / "run"
    ckpt = make_checkpoint(model, config=cfg.to_dict(), classes=["A", "B", "C"])
    save_checkpoint(run / "last.pt", ckpt)
    video = sorted(data.glob("*/*.avi"))[0]
    return run, video


def test_video_probs_are_the_mean_over_all_full_chunks(setup):
    run, video = setup
    pred_ = Predictor(run)
    assert pred_.path.name == "last.pt" and pred_.context == 3
    pred = pred_.predict(video, top=5)
    frames = pred_.load(video)  # (N, 3, S, S)
    assert frames.shape == (5, 3, 32, 32)  # 10 frames, every 2nd
    with torch.no_grad():
        chunk_probs = torch.stack(
            [
                pred_.model(frames[n - 2 : n + 1][None]).softmax(-1)[0]  # chunk ending at frame n
                for n in range(2, 5)
            ]
        )
    torch.testing.assert_close(pred.frame_probs[2:], chunk_probs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pred.video_probs, chunk_probs.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pred.frame_probs.sum(-1), torch.ones(5))
    assert len(pred.top) == 3  # top-5 clipped to K
    probs = [p for _, p in pred.top]
    assert probs == sorted(probs, reverse=True)
    assert pred.top[0][0] == ["A", "B", "C"][int(pred.video_probs.argmax())]
    assert pred.times == pytest.approx([0, 0.08, 0.16, 0.24, 0.32])  # 25 fps, every 2nd frame
    assert pred.to_json()["chunks"] == 3


def test_timeline_png(setup, tmp_path):
    run, video = setup
    predictor = Predictor(run / "last.pt")
    predictor.plot_timeline(predictor.predict(video), tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_timeline_names_for_several_videos():
    assert str(timeline_path("out.png", "a/v1.avi", many=False)) == "out.png"
    assert str(timeline_path("plots/out.png", "a/v1.avi", many=True)) == "plots/out-v1.png"
    taken = set()  # two videos with one stem (two folders, a video and its frame folder)
    assert [
        str(timeline_path("t.png", v, True, taken)) for v in ("a/v1.avi", "b/v1.avi", "c/v1")
    ] == ["t-v1.png", "t-v1-2.png", "t-v1-3.png"]


def test_cli_json_and_errors(setup, tmp_path, capsys):
    run, video = setup
    assert main(["predict", str(run), str(video), "--json", "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoint"].endswith("last.pt") and len(out["videos"][0]["top"]) == 2
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    assert main(["predict", str(run), str(bad)]) == 1
    assert "cannot decode" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.pt"), str(video)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_one_bad_video_does_not_stop_the_others(setup, tmp_path, capsys):
    run, video = setup
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    cut = cut_avi_before_frame(video, tmp_path / "cut.avi", 4)  # 4 of 10 frames left
    videos = [str(video), str(bad), str(cut), str(tmp_path / "gone.avi"), str(video)]
    assert main(["predict", str(run), *videos, "--top", "2"]) == 1
    out, err = capsys.readouterr()
    assert out.count(f"{video}  (5 frames, 3 chunks of 3)") == 2 and out.count("  1. ") == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"rrn predict: error: cannot decode {bad}: not a readable video")
    assert (
        lines[1]
        == f"rrn predict: error: cannot decode {cut}: truncated: 4 of 10 frames; the video "
        "stream ends at 0.16 s of the 0.40 s its header promises"
    )
    assert lines[2].startswith(
        f"rrn predict: error: cannot decode {tmp_path / 'gone.avi'}: file not readable"
    )
    assert lines[3] == "rrn predict: 3 of 5 videos could not be classified" and len(lines) == 4

    assert main(["predict", str(run), *videos, "--json"]) == 1
    records = json.loads(capsys.readouterr().out)["videos"]
    assert [r["video"] for r in records] == videos
    assert [sorted(r) for r in records[1:4]] == [["error", "video"]] * 3
    assert records[2]["error"].startswith("truncated: 4 of 10 frames")
    assert records[0] == records[4] and len(records[0]["top"]) == 3 and "error" not in records[0]


def test_predict_all_yields_failures_in_order(setup, tmp_path):
    run, video = setup
    results = list(Predictor(run).predict_all([video, tmp_path / "gone.avi", video], top=1))
    assert [type(r).__name__ for r in results] == [
        "VideoPrediction",
        "FailedVideo",
        "VideoPrediction",
    ]
    assert results[1] == FailedVideo(str(tmp_path / "gone.avi"), results[1].error)
    assert "No such file" in results[1].error
    torch.testing.assert_close(results[0].video_probs, results[2].video_probs)


def _long_video(path, frames: int, fps: int = 25):
    """An MP4 of ``frames`` random 32 x 32 frames (the decoder does the work, not the disk)."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_a_video_decoded_piece_by_piece_predicts_what_the_whole_array_does(setup, tmp_path):
    import rrn.predict

    run, _ = setup
    video = _long_video(tmp_path / "long.mp4", 150)  # 75 sampled frames: two pieces of 64
    pred_ = Predictor(run, cache=False)
    streamed = pred_.predict(video)
    with torch.no_grad():
        whole = pred_.model.forward_video(pred_.load(video)).softmax(-1)
    assert streamed.frame_probs.shape == (75, 3)
    torch.testing.assert_close(streamed.frame_probs, whole, rtol=0, atol=1e-5)
    calls = []
    real = Predictor._piece
    rrn.predict.Predictor._piece = lambda self, frames, cancel: (
        calls.append(len(frames)) or real(self, frames, cancel)
    )
    try:
        pred_.predict(video)
    finally:
        rrn.predict.Predictor._piece = real
    assert calls == [64, 11]  # never the whole video at once


def test_a_video_over_the_limits_is_refused_by_its_header_or_its_frames(setup, tmp_path):
    import threading

    from rrn.data.decode import DecodeLimits, VideoTooLongError
    from rrn.predict import PredictionCancelled

    run, _ = setup
    video = _long_video(tmp_path / "long.mp4", 150)  # 6 s at 25 fps
    pred_ = Predictor(run, cache=False)
    with pytest.raises(VideoTooLongError, match="lasts 6.0 s, over the limit of 5 s"):
        pred_.predict(video, limits=DecodeLimits(max_seconds=5))
    with pytest.raises(VideoTooLongError, match="over the limit of 100|over 100 frames"):
        pred_.predict(video, limits=DecodeLimits(max_frames=100))
    assert pred_.predict(video, limits=DecodeLimits(max_frames=150, max_seconds=6.5))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PredictionCancelled):
        pred_.predict(video, cancel=cancel)


def test_frames_past_the_limit_are_refused_when_the_header_says_less(setup, tmp_path, monkeypatch):
    """A header can say less than the file holds (or nothing): the frames themselves count."""
    import rrn.data.decode
    from rrn.data.decode import DecodeLimits, VideoTooLongError

    run, _ = setup
    video = _long_video(tmp_path / "long.mp4", 150)  # 6 s at 25 fps
    monkeypatch.setattr(rrn.data.decode, "_check_header_length", lambda *a: None)
    pred_ = Predictor(run, cache=False)
    with pytest.raises(VideoTooLongError, match="has over 100 frames, the limit"):
        pred_.predict(video, limits=DecodeLimits(max_frames=100))
    with pytest.raises(VideoTooLongError, match="goes on past 3 s, the limit"):
        pred_.predict(video, limits=DecodeLimits(max_seconds=3))


def test_the_timeline_of_a_detection_model_shows_the_background_and_the_peaking_actions(
    tmp_path, monkeypatch
):
    """In untrimmed video a short action never ranks by its mean: a detection model's timeline
    shows the background (grey, dashed) and the actions with the highest peaks."""
    import rrn.plots

    drawn = []
    real = rrn.plots.plt.Axes.plot

    def spy(ax, xs, ys, **kw):
        drawn.append((kw["label"], kw.get("linestyle")))
        return real(ax, xs, ys, **kw)

    monkeypatch.setattr(rrn.plots.plt.Axes, "plot", spy)
    probs = torch.full((100, 4), 0.02)
    probs[:, 0] = 0.9  # background most of the time
    probs[40:45, 3] = 0.8  # a short action: a low mean, a high peak
    probs[:, 1] = 0.05  # a class that is always a little probable: higher mean, low peak
    classes = ["Background", "A", "B", "C"]
    rrn.plots.plot_timeline(probs, classes, tmp_path / "t.png", top=1)
    assert drawn == [("Background", "--"), ("C", None)]
    assert (tmp_path / "t.png").stat().st_size > 0

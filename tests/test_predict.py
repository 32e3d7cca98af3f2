"""Predict: streaming per-frame probabilities equal the chunk model's, top-k, timeline, errors."""

import json

import pytest
import torch

from rrn.checkpoint import make_checkpoint, save_checkpoint
from rrn.cli import main
from rrn.commands.predict import timeline_path
from rrn.config import resolve_config
from rrn.data import make_synthetic_dataset
from rrn.model import build_model
from rrn.predict import Predictor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predict")
    data = make_synthetic_dataset(tmp / "data", classes=3, videos_per_class=2, frames=10, size=32)
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=3, skip_blocks=("block2", "block4"))  # T = 3
    model.eval()
    cfg = resolve_config([("flags", {"data": {"data_root": str(data), "frame_size": 32,
                                              "sample_every": 2},
                                     "model": {"arch": "resnet18", "skip": "block2,block4"}})])
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
        chunk_probs = torch.stack([
            pred_.model(frames[n - 2 : n + 1][None]).softmax(-1)[0]  # chunk ending at frame n
            for n in range(2, 5)
        ])
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


def test_cli_json_and_errors(setup, tmp_path, capsys):
    run, video = setup
    assert main(["predict", str(run), str(video), "--json", "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoint"].endswith("last.pt") and len(out["videos"][0]["top"]) == 2
    bad = tmp_path / "broken.avi"
    bad.write_bytes(b"not a video at all")
    assert main(["predict", str(run), str(bad)]) == 2
    assert "cannot decode" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.pt"), str(video)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err

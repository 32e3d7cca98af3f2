"""The GRU baseline for online detection: stepped online one frame at a time it equals the GRU
run over the whole video (1e-5); MiniROAD's training windows and last-step loss; a padded batch
equals each window alone; it learns what needs memory; and `rrn features` -> `rrn baseline`
on untrimmed videos writes a score folder that is scored like `rrn eval`'s."""

import json
import shlex
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rrn.cli import main
from rrn.config import BaselineConfig, ConfigError
from rrn.data import make_synthetic_dataset
from rrn.detection.baseline import (
    DetectionGRU,
    Window,
    train_detection_gru,
    training_windows,
    video_probs,
    window_batch,
    window_loss,
)
from rrn.detection.metrics import frame_map
from rrn.detection.scores import read_scores_meta, read_video_scores


def gru(dim=6, classes=3, seed=0):
    torch.manual_seed(seed)
    mean, std = torch.randn(dim), torch.rand(dim) + 0.5
    return DetectionGRU(dim, classes, hidden=16, mean=mean, std=std).eval()


def test_the_gru_stepped_online_equals_it_run_over_the_whole_video():
    model = gru()
    video = torch.randn(200, 6, generator=torch.Generator().manual_seed(1))  # (N, C)
    whole = model(video[None])[0]  # (N, K)
    h, stepped = None, []
    with torch.no_grad():
        for frame in video:
            logits, h = model.step(frame[None], h)
            stepped.append(logits[0])
    torch.testing.assert_close(torch.stack(stepped), whole.detach(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        video_probs(model, video), whole.softmax(-1).detach().numpy(), atol=1e-6
    )


def test_windows_end_every_stride_frames_and_start_at_the_video_start_at_the_latest():
    windows = training_windows([5, 2], window=3, stride=2, offset=1)
    assert windows == [Window(0, 0, 2), Window(0, 1, 4), Window(1, 0, 2)]
    assert training_windows([4], window=10, stride=1, offset=0) == [
        Window(0, 0, 1),
        Window(0, 0, 2),
        Window(0, 0, 3),
        Window(0, 0, 4),
    ]
    with pytest.raises(ValueError):
        training_windows([4], window=3, stride=2, offset=2)


def test_the_loss_is_on_the_last_steps_of_each_window_never_on_ambiguous_frames():
    seqs = [torch.arange(12.0).reshape(6, 2)]
    targets = [np.eye(3, dtype=bool)[[0, 1, 1, 2, 2, 0]]]
    targets[0][3, 1] = True  # frame 3: classes 1 and 2
    ignore = [np.array([0, 0, 0, 0, 1, 0], bool)]
    batch = window_batch([Window(0, 0, 5), Window(0, 3, 6)], seqs, targets, ignore, 2)
    assert batch.lengths.tolist() == [5, 3]
    # the last 2 frames of each: frames 3, 4 and 4, 5; frame 4 is ambiguous
    assert batch.mask.int().tolist() == [[0, 0, 0, 1, 0], [0, 0, 1, 0, 0]]
    torch.testing.assert_close(batch.soft[0, 3], torch.tensor([0, 0.5, 0.5]))
    torch.testing.assert_close(batch.x[1, :3], seqs[0][3:6])
    assert batch.x[1, 3:].abs().sum() == 0  # right-padded
    logits = torch.zeros(2, 5, 3)
    assert window_loss(logits, batch) == pytest.approx(np.log(3))


def test_a_padded_batch_gives_each_window_what_it_gives_alone():
    model = gru()
    seqs = [torch.randn(30, 6, generator=torch.Generator().manual_seed(2))]
    windows = [Window(0, 0, 7), Window(0, 10, 30), Window(0, 28, 30)]
    batch = window_batch(windows, seqs, [np.ones((30, 3), bool)], [np.zeros(30, bool)], 1)
    together = model(batch.x, batch.lengths)  # (3, 20, K)
    for i, w in enumerate(windows):
        alone = model(seqs[0][w.start : w.end][None])[0]
        torch.testing.assert_close(together[i, : w.end - w.start], alone, atol=1e-6, rtol=0)


def test_it_learns_a_class_that_only_the_previous_frame_tells():
    # features: a one-hot "cue" at random frames; the class of frame t is the cue of frame t-1
    rng = np.random.default_rng(0)
    seqs, targets = [], []
    for _ in range(4):
        cue = rng.integers(0, 3, 120)
        seqs.append(torch.from_numpy(np.eye(3, dtype=np.float32)[cue]))
        targets.append(np.eye(3, dtype=bool)[np.r_[0, cue[:-1]]])
    cfg = SimpleNamespace(
        epochs=15, lr=1e-2, weight_decay=0.0, batch_size=16, window=16, window_stride=2,
        loss_steps=4, seed=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = DetectionGRU(3, 3, hidden=16)
    history = train_detection_gru(model, seqs, targets, [np.zeros(120, bool)] * 4, cfg)
    assert history[-1] < 0.25 * history[0]
    scores = np.concatenate([video_probs(model, s) for s in seqs])
    assert frame_map(scores, np.concatenate(targets)).mean > 0.95


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def features(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gru")
    data = make_synthetic_dataset(
        tmp / "data", classes=2, videos_per_class=4, frames=6, size=32, layout="thumos14"
    )
    flags = shlex.split(json.loads((data / "rrn_synth.json").read_text())["flags"])
    sampling = ["--sample-every", "2", "--frame-size", "32", "--arch", "resnet18"]
    common = ["--source", "none", "--stages", "2,4", "--no-progress"]
    assert main(["features", *flags, *sampling, *common, "--out", str(tmp / "f")]) == 0
    return tmp / "f", data


def test_features_of_untrimmed_videos_carry_their_times_and_intervals(features):
    folder, _ = features
    meta = json.loads((folder / "features.json").read_text())
    video = next(v for v in meta["videos"] if v["subset"] == "test")
    assert video["annotation"]["intervals"] and video["label"] == -1
    with np.load(folder / "videos" / f"{video['video_id']}.npz") as z:
        np.testing.assert_array_equal(z["times"], np.arange(len(z["stage4"])) * 2 / 25)


def test_rrn_baseline_gru_scores_untrimmed_videos_like_rrn_eval(features, tmp_path, capsys):
    folder, _ = features
    argv = ["baseline", "--features", str(folder), "--model", "gru", "--stage", "2"]
    argv += ["--epochs", "2", "--window", "8", "--batch-size", "8", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "per-frame mAP" in capsys.readouterr().out
    result = json.loads((tmp_path / "baseline_gru_stage2.json").read_text())
    assert result["task"] == "detection" and list(result["segment_map"])[2] == "0.5"
    assert "MiniROAD" in result["protocol"] and result["classifier"]["window"] == 8
    scores = tmp_path / "baseline_gru_stage2" / "scores"
    meta = read_scores_meta(scores)
    assert meta["classes"] == ["Background", "MoveLeft", "MoveRight"]
    assert "every 2nd frame (12.5 frames/s)" in meta["sampling"]
    saved = torch.load(tmp_path / "baseline_gru_stage2" / "model.pt", weights_only=True)
    with np.load(folder / "videos" / "video_test_0000001.npz") as z:
        feats = torch.from_numpy(z["stage2"])
    model = DetectionGRU(feats.shape[1], 3)
    model.load_state_dict(saved["state_dict"])
    written = read_video_scores(scores, "video_test_0000001", 3)
    np.testing.assert_allclose(written.scores, video_probs(model.eval(), feats), atol=1e-6)


def test_run_baseline_on_untrimmed_features_is_the_detector_and_avgpool_is_refused(
    features, tmp_path
):
    from rrn.baselines import load_features, run_baseline

    folder, _ = features
    cfg = BaselineConfig(features=str(folder), model="gru", epochs=1, window=4, out=str(tmp_path))
    assert run_baseline(cfg, plot=False)["task"] == "detection"
    with pytest.raises(ConfigError, match="--model gru"):
        run_baseline(BaselineConfig(features=str(folder), model="avgpool"))
    with pytest.raises(ConfigError, match="untrimmed videos"):
        load_features(folder, 4)

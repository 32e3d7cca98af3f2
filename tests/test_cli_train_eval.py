"""End to end on `rrn synth` data with a tiny model: train, checkpoints, eval, predict, recovery."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from faults import CrashAfter, NanAt, SimulatedCrash
from rrn.cli import main
from rrn.data import load_split, make_synthetic_dataset
from rrn.train import fit
from runs import tiny_train_argv as tiny
from runs import train_config as config_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    # 2 classes x 6 videos of 8 frames at 32 px (8 train and 4 test videos at the time of writing)
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synth"), classes=2, videos_per_class=6, frames=8, size=32, seed=0
    )


@pytest.fixture(scope="module")
def counts(synth):
    split = load_split("ucf101", synth, synth, 1)
    n_train, n_test = len(split.train), len(split.test)
    steps = -(-n_train // 2)  # --update-chunks 2
    assert steps >= 3, "the resume test needs 3+ optimiser steps per epoch"
    return n_train, n_test, steps


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ucf_split1"
    assert main(tiny(synth, run, "--epochs", "2", "--watch-test")) == 0
    return run


def test_train_writes_the_run_directory(trained, counts):
    n_train, n_test, per_epoch = counts
    for name in ("config.yaml", "last.pt", "log.jsonl", "curves.png"):
        assert (trained / name).is_file(), name
    assert not (trained / "best.pt").exists()  # no validation split: nothing is selected
    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    assert cfg["model"]["skip"] == ["layer4.1"] and cfg["model"]["context"] == 2  # resolved
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["kind"] == "step"]
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert len(steps) == 2 * per_epoch and len(epochs) == 2  # 2 chunks per step
    assert [s["global_step"] for s in steps] == list(range(1, 2 * per_epoch + 1))
    assert sum(s["chunks"] for s in steps[:per_epoch]) == n_train == epochs[0]["train_chunks"]
    assert all(s["chunks"] <= 2 and 0 <= s["acc"] <= 1 for s in steps)
    assert epochs[-1]["test_videos"] == n_test and epochs[-1]["skipped"] == []
    assert not any(k.startswith("val_") for k in epochs[-1])  # the test split is only watched
    assert not any(e["best"] for e in epochs)
    assert "no --val-fraction" in log[0]["selection"] and log[0]["watch_test"] is True
    assert log[0]["precision"] == "fp32"  # --amp auto: full precision on the CPU
    ckpt = torch.load(trained / "last.pt", weights_only=True)  # the contract
    assert ckpt["progress"]["epoch"] == 2 and ckpt["progress"]["global_step"] == 2 * per_epoch
    assert ckpt["config"]["model"]["skip"] == ["layer4.1"]
    assert ckpt["classes"] == ["MoveRight", "MoveLeft"]
    assert ckpt["optimizer"]["state"][0]["step"] == 2 * per_epoch  # one Adam step per step


def test_eval_writes_json_csv_png(trained, counts, capsys):
    n_test = counts[1]
    assert main(["eval", str(trained), "--workers", "0", "--no-progress"]) == 0  # last.pt: auto
    result = json.loads((trained / "eval_split1.json").read_text())
    for key in (
        "video_error",
        "video_top1",
        "video_top5",
        "clip_top1",
        "mean_class_accuracy",
        "num_videos",
        "num_chunks",
        "split",
        "checkpoint",
        "config",
        "timing",
    ):
        assert key in result, key
    assert result["num_videos"] == n_test and result["split"] == 1
    assert result["num_chunks"] == n_test * 4  # 8 frames, T = 2: four non-overlapping chunks
    assert result["video_error"] == pytest.approx(1 - result["video_top1"])
    assert result["video_top5"] == 1.0  # 2 classes
    # the same numbers as the validation at the end of training (same weights, same code)
    last_epoch = [json.loads(x) for x in (trained / "log.jsonl").read_text().splitlines()][-1]
    assert result["video_top1"] == pytest.approx(last_epoch["test_video_top1"])
    assert result["clip_top1"] == pytest.approx(last_epoch["test_clip_top1"])
    assert result["checkpoint"] == str(trained / "last.pt")
    assert result["checkpoint_choice"]["chosen_by"] == "last"
    assert (trained / "eval_split1_per_class.csv").read_text().startswith("class_index,class,")
    assert (trained / "eval_split1_confusion.png").read_bytes()[:4] == b"\x89PNG"
    protocol = "video-level, all N//T chunks (T=2), 1 centre crop"  # never a number without it
    assert result["protocol"] == protocol and result["views"] == {
        "crops": 1,
        "flip": False,
        "per_chunk": 1,
    }
    assert result["precision"] == "fp32"
    assert "split 1: video accuracy" in (out := capsys.readouterr().out) and f"[{protocol}]" in out


def test_eval_with_three_crops_and_flips_says_so(trained, counts, tmp_path, capsys):
    n_test = counts[1]
    assert (
        main(
            [
                "eval",
                str(trained),
                "--which",
                "last",
                "--workers",
                "0",
                "--no-progress",
                "--views",
                "3crop",
                "--flip",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval_split1.json").read_text())
    assert result["protocol"] == "video-level, all N//T chunks (T=2), 3 crops x 2 flips"
    assert result["views"] == {"crops": 3, "flip": True, "per_chunk": 6}
    assert result["num_chunks"] == n_test * 4  # chunks, each the mean of its 6 views
    assert "3 crops x 2 flips" in capsys.readouterr().out
    assert (
        main(
            [
                "eval",
                str(trained),
                "--which",
                "last",
                "--workers",
                "0",
                "--no-progress",
                "--eval-stride",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "eval_split1.json").read_text())
    assert result["protocol"] == "video-level, chunks at stride 1 (T=2), 1 centre crop"
    assert result["num_chunks"] == n_test * 7  # 8 frames, T = 2, stride 1


def test_eval_splits_placeholder_writes_the_mean(trained, synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    for side in ("train", "test"):  # a second split: the first one's files again
        shutil.copy(data / f"{side}list01.txt", data / f"{side}list02.txt")
    runs = tmp_path / "runs"
    for k in (1, 2):
        shutil.copytree(trained, runs / f"ucf_split{k}")
    pattern = str(runs / "ucf_split{split}")
    assert (
        main(
            [
                "eval",
                pattern,
                "--split",
                "1",
                "2",
                "--data-root",
                str(data),
                "--workers",
                "0",
                "--no-progress",
                "--which",
                "last",
            ]
        )
        == 0
    )
    one = json.loads((runs / "ucf_split1" / "eval_split1.json").read_text())
    two = json.loads((runs / "ucf_split2" / "eval_split2.json").read_text())
    mean = json.loads((runs / "eval_mean.json").read_text())
    assert mean["splits"] == [1, 2]
    assert mean["mean_over_splits"]["video_top1"] == pytest.approx(
        (one["video_top1"] + two["video_top1"]) / 2
    )
    assert "mean over splits [1, 2]" in capsys.readouterr().out
    # {split} in --out too: one folder per split, the mean in the folder they share
    assert (
        main(
            [
                "eval",
                pattern,
                "--split",
                "1",
                "2",
                "--data-root",
                str(data),
                "--workers",
                "0",
                "--no-progress",
                "--which",
                "last",
                "--out",
                str(tmp_path / "ev" / "split{split}"),
            ]
        )
        == 0
    )
    assert (tmp_path / "ev" / "split1" / "eval_split1.json").exists()
    assert (tmp_path / "ev" / "split2" / "eval_split2.json").exists()
    assert json.loads((tmp_path / "ev" / "eval_mean.json").read_text())["splits"] == [1, 2]
    # one checkpoint for several splits would test on its own training videos
    assert main(["eval", str(trained), "--splits", "1", "2"]) == 2
    assert "put {split} in the path" in capsys.readouterr().err


def test_predict_top5_json_and_timeline(trained, synth, tmp_path, capsys):
    videos = sorted(str(p) for p in synth.glob("*/*.avi"))[:2]
    png = tmp_path / "timeline.png"
    assert (
        main(["predict", str(trained / "last.pt"), videos[0], "--json", "--timeline", str(png)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    (record,) = out["videos"]
    probs = [t["prob"] for t in record["top"]]
    assert [t["class"] for t in record["top"]] in (
        ["MoveRight", "MoveLeft"],
        ["MoveLeft", "MoveRight"],
    )
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
    assert record["num_frames"] == 8 and record["chunks"] == 7  # frames with full context (T=2)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["predict", str(trained), *videos]) == 0
    text = capsys.readouterr().out
    assert text.count("1. Move") == 2
    assert main(["predict", str(trained), str(tmp_path / "nope.avi")]) == 1  # reported per video
    assert "nope.avi: file not readable (No such file or directory)" in capsys.readouterr().err


def test_resume_after_a_kill_ends_with_identical_weights(synth, counts, tmp_path):
    per_epoch = counts[2]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise-reproducible CPU kernels
    try:
        # a mid-epoch checkpoint at step 2 of epoch 2; killed one step later, losing that step
        common = ["--epochs", "2", "--val-every", "0", "--checkpoint-every", str(per_epoch + 2)]
        assert main(tiny(synth, tmp_path / "a", *common)) == 0
        with pytest.raises(SimulatedCrash):
            fit(config_of(tiny(synth, tmp_path / "b", *common)), hooks=[CrashAfter(per_epoch + 3)])
        killed = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["progress"]
        assert (killed["epoch"], killed["step_in_epoch"], killed["global_step"]) == (
            1,
            2,
            per_epoch + 2,
        )
        assert main(["train", "--out", str(tmp_path / "b"), "--resume", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["progress"]["global_step"] == b["progress"]["global_step"] == 2 * per_epoch
    # the resumed epoch's statistics continue the interrupted ones
    assert a["progress"]["history"][-1]["train_loss"] == b["progress"]["history"][-1]["train_loss"]
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert kinds.count("resume") == 1


def test_cpu_bf16_training_resumes_exactly_and_names_its_precision(synth, counts, tmp_path):
    """--amp bf16 on CPU: bf16 autocast over fp32 weights, saved, resumed bit-identically."""
    per_epoch = counts[2]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        common = ["--epochs", "1", "--val-every", "0", "--checkpoint-every", "1", "--amp", "bf16"]
        assert main(tiny(synth, tmp_path / "a", *common)) == 0
        with pytest.raises(SimulatedCrash):
            fit(config_of(tiny(synth, tmp_path / "b", *common)), hooks=[CrashAfter(per_epoch - 1)])
        assert main(["train", "--out", str(tmp_path / "b"), "--resume", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    for key, value in a.items():
        assert value.dtype == b[key].dtype and torch.equal(value, b[key]), key
    assert a["fc.weight"].dtype == torch.float32 and torch.isfinite(a["fc.weight"]).all()
    start = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[0])
    assert start["precision"] == "bf16"
    assert (
        main(["eval", str(tmp_path / "a"), "--amp", "bf16", "--no-progress", "--workers", "0"]) == 0
    )
    assert json.loads((tmp_path / "a" / "eval_split1.json").read_text())["precision"] == "bf16"


def test_cpu_bf16_without_native_support_is_warned_about(synth, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("rrn.train.loop.cpu_has_native_bf16", lambda: False)
    assert (
        main(tiny(synth, tmp_path / "r", "--epochs", "1", "--val-every", "0", "--amp", "bf16")) == 0
    )
    out = capsys.readouterr()
    assert "no native bf16" in out.out + out.err and "--amp none" in out.out + out.err


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    synth, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "nan"
    monkeypatch.setattr("rrn.train.fit", lambda cfg: fit(cfg, hooks=[NanAt(3)]))
    assert main(tiny(synth, out, "--epochs", "1", "--checkpoint-every", "1")) == 1
    err = capsys.readouterr().err
    assert "loss is nan" in err and f"last good checkpoint is {out / 'last.pt'}" in err
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["progress"]["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--skip", "block4", "--context", "3"], "--context 3 needs 2"),
        (["--skip", "block9"], "block9"),
        pytest.param(
            ["--update-every", "2.5"],
            "--update-every 2.5",  # the old spelling, checked
            marks=pytest.mark.filterwarnings("ignore::FutureWarning"),
        ),
        (
            ["--update-fraction", "2"],
            "--update-fraction: must be in (0, 1] (a fraction of the training data",
        ),
        (["--update-chunks", "0"], "--update-chunks: must be >= 1"),
    ],
)
def test_config_errors_exit_2(synth, tmp_path, capsys, argv, message):
    try:  # a value out of range stops the parser itself (SystemExit 2), others return 2
        code = main(tiny(synth, tmp_path / "r", "--epochs", "1", *argv))
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_flag_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--batchsize", "4"])
    assert exc.value.code == 2
    assert "did you mean --batch-size" in capsys.readouterr().err


def test_unknown_yaml_key_names_file_and_suggestion(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("optim:\n  learning_rate: 0.1\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "unknown key 'optim.learning_rate'" in capsys.readouterr().err


def test_unwritable_output_fails_before_training(synth, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(tiny(synth, blocker / "run", "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert "cannot write to the output directory" in err and "--out" in err


def test_resume_without_a_run_is_a_user_error(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_fine_tune_from_a_checkpoint_with_frozen_stages(trained, synth, tmp_path):
    out = tmp_path / "ft"
    assert (
        main(
            tiny(
                synth,
                out,
                "--epochs",
                "1",
                "--weights",
                str(trained / "last.pt"),
                "--freeze",
                "stem,layer1,layer2",
                "--val-every",
                "0",
            )
        )
        == 0
    )
    src = torch.load(trained / "last.pt", weights_only=True)["model"]
    dst = torch.load(out / "last.pt", weights_only=True)["model"]
    assert torch.equal(src["layer1.0.conv1.weight"], dst["layer1.0.conv1.weight"])  # frozen
    assert torch.equal(src["bn1.running_mean"], dst["bn1.running_mean"])  # frozen statistics
    assert not torch.equal(src["layer4.1.conv1.weight"], dst["layer4.1.conv1.weight"])  # trained


def test_gpu_benchmark_runs_small_on_cpu():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "frames/s" in out and "torchvision resnet18 (per frame)" in out and "RRN resnet18" in out
    assert "PASS" in out and out.count("| RRN") == 1


def test_existing_run_needs_resume_or_overwrite(trained, synth, capsys):
    before = (trained / "last.pt").read_bytes()
    assert main(tiny(synth, trained, "--epochs", "2")) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (trained / "last.pt").read_bytes() == before
    # resuming a finished run trains nothing and says how to continue
    assert main(["train", "--out", str(trained), "--resume", "--no-progress"]) == 0
    assert "raise --epochs" in capsys.readouterr().out
    assert (trained / "last.pt").read_bytes() == before


def test_unreadable_training_video_is_skipped_and_reported(synth, counts, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    victim = load_split("ucf101", data, data, 1).train[0]
    victim.path.write_bytes(b"this is not a video")
    out = tmp_path / "run"
    # 64 px: the micro-batch left with one chunk still has 2x2 values per BatchNorm channel
    assert main(tiny(data, out, "--epochs", "1", "--val-every", "0", "--frame-size", "64")) == 0
    epoch = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()][-1]
    assert epoch["kind"] == "epoch" and epoch["skipped"] == [victim.video_id]
    assert epoch["train_chunks"] == counts[0] - 1
    shown, err = capsys.readouterr()
    assert f"skipped 1 unreadable video(s): {victim.video_id}" in shown
    assert f"rrn: warning: skipping video {victim.video_id}: cannot decode video" in err


def test_train_and_eval_on_one_folder_per_class(synth, tmp_path):
    """--dataset list without list files: class folders, split by the _gNN_ group into 3 folds."""
    split = load_split("list", synth, split=1)
    assert split.classes == ["MoveLeft", "MoveRight"]  # folder names, sorted
    groups = lambda recs: {int(r.video_id.split("_g")[1][:2]) for r in recs}  # noqa: E731
    assert all((g - 1) % 3 == 0 for g in groups(split.test))
    assert all((g - 1) % 3 != 0 for g in groups(split.train))
    run = tmp_path / "folders"
    assert main(tiny(synth, run, "--dataset", "list", "--epochs", "1")) == 0
    assert main(["eval", str(run), "--which", "last", "--no-progress", "--workers", "0"]) == 0
    result = json.loads((run / "eval_split1.json").read_text())
    assert result["num_videos"] == len(split.test) and result["dataset"] == "list"


def test_eval_split_means_what_it_means_for_train(trained, capsys):
    # `--split K` chooses the split, as for rrn train (`--splits` is the same flag)
    assert (
        main(
            [
                "eval",
                str(trained),
                "--split",
                "1",
                "--which",
                "last",
                "--workers",
                "0",
                "--no-progress",
                "--out",
                str(trained / "by_split"),
            ]
        )
        == 0
    )
    assert json.loads((trained / "by_split" / "eval_split1.json").read_text())["split"] == 1
    assert main(["eval", str(trained), "--split", "4"]) == 2
    assert "--split must be among 1 2 3" in capsys.readouterr().err


def test_update_every_keeps_working_with_a_deprecation_warning(synth, tmp_path):
    argv = tiny(synth, tmp_path / "old", "--epochs", "1")
    argv[argv.index("--update-chunks")] = (
        "--update-every"  # the old spelling of '--update-chunks 2'
    )
    with pytest.warns(FutureWarning, match="--update-every is deprecated.*--update-chunks"):
        cfg = config_of(argv)
    assert (cfg.optim.update_chunks, cfg.optim.update_fraction) == (2, 0.01)
    with pytest.warns(FutureWarning):
        assert config_of([*argv, "--update-every", "0.5"]).optim.update_fraction == 0.5


def test_imagenet_weights_offline_is_one_line_with_the_ways_out(
    synth, tmp_path, capsys, monkeypatch
):
    import socket
    import urllib.error

    from torchvision.models._api import WeightsEnum

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    argv = tiny(synth, tmp_path / "r", "--epochs", "1")
    argv[argv.index("--weights") + 1] = "imagenet"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "urlopen" not in err and "Traceback" not in err
    assert "ImageNet weights for resnet18" in err and "Name or service not known" in err
    assert "--weights none" in err and "state dict" in err

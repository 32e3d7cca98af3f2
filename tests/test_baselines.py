"""Baselines (Table 1): frozen per-frame features (values, dtype, resume, shards, bad videos)
and the avgpool / GRU classifiers on them (pooling, padding, z-norm statistics, wiring)."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from rrn import baselines
from rrn.baselines import (
    AvgPoolClassifier,
    GRUClassifier,
    extract_features,
    feature_file,
    load_feature_model,
    load_features,
    run_baseline,
    weights_digest,
    write_features_meta,
    znorm_stats,
)
from rrn.cli import main
from rrn.config import BaselineConfig
from rrn.data import (
    ClipTransform,
    FrameCache,
    FrameSource,
    Sampling,
    decode_video,
    default_short_side,
    load_split,
)
from rrn.model import WeightsError

WIDTHS = {2: 128, 3: 256, 4: 512}  # resnet18's channels at the end of stages 2, 3, 4
EVERY = 2  # 6 frames sampled every 2nd -> 3 feature rows per video
RESULT_KEYS = (
    "video_error",
    "video_top1",
    "video_top5",
    "clip_top1",
    "mean_class_accuracy",
    "num_videos",
)


@pytest.fixture(scope="module")
def split(synth):
    s = load_split("ucf101", synth, synth, 1)
    return s, s.train + s.test, ["train"] * len(s.train) + ["test"] * len(s.test)


@pytest.fixture(scope="module")
def net():
    return load_feature_model("none", "resnet18")


def features_argv(data, out, *extra):
    return [
        "features",
        "--data-root",
        str(data),
        "--source",
        "none",
        "--arch",
        "resnet18",
        "--frame-size",
        "32",
        "--sample-every",
        str(EVERY),
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def feats(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("feats")
    assert main(features_argv(synth, out)) == 0
    return out


def stored(out):
    """The video ids with a feature file (ids hold the class folder: ``Class/v_...``)."""
    return sorted(
        str(p.relative_to(out / "videos").with_suffix("")) for p in (out / "videos").rglob("*.npz")
    )


SAMPLING = Sampling(
    sample_every=EVERY, short_side=default_short_side(32)
)  # what --frame-size 32 decodes


def extract(split, out, net, cache_dir=None, cache_format="jpeg", **kw):
    _, records, _ = split
    source = FrameSource(SAMPLING, cache_dir=cache_dir, cache_format=cache_format)
    return extract_features(
        records, out, model=net, source=source, frame_size=32, progress=False, **kw
    )


def write_meta(split, out, world_size=1):
    """features.json as `rrn features` writes it once every shard is done."""
    s, records, subsets = split
    return write_features_meta(
        out,
        records,
        subsets,
        s.classes,
        (2, 3, 4),
        world_size,
        source="none",
        weights=weights_digest(load_feature_model("none", "resnet18")),
        arch="resnet18",
        sample_every=EVERY,
        fps=None,
        frame_size=32,
        short_side=default_short_side(32),
        float16=False,
    )


def test_features_are_the_models_pooled_stage_outputs(feats, split, net):
    s, records, subsets = split
    assert len(records) == 8
    assert stored(feats) == sorted(r.video_id for r in records)  # one file per video
    transform = ClipTransform(32, train=False)
    for rec in records:
        frames = decode_video(
            rec.path, Sampling(sample_every=EVERY, short_side=default_short_side(32))
        )
        with torch.no_grad():
            want = net.video_features(transform(frames), stages=(2, 3, 4))
        with np.load(feature_file(feats, rec.video_id)) as z:
            assert int(z["label"]) == rec.label
            for stage, width in WIDTHS.items():
                got = z[f"stage{stage}"]
                assert got.shape == (3, width) and got.dtype == np.float32
                np.testing.assert_allclose(got, want[stage].numpy(), rtol=1e-5, atol=1e-6)
    meta = json.loads((feats / "features.json").read_text())
    assert meta["classes"] == s.classes and meta["stages"] == [2, 3, 4]
    assert meta["sample_every"] == EVERY and meta["frame_size"] == 32 and meta["failures"] == []
    assert [(v["video_id"], v["label"], v["subset"]) for v in meta["videos"]] == [
        (r.video_id, r.label, sub) for r, sub in zip(records, subsets)
    ]


def test_a_video_goes_through_the_network_a_piece_at_a_time(split, net, tmp_path, monkeypatch):
    """Only FEATURE_PIECE frames are resized and run at once (an untrimmed video at 224 px
    would otherwise be 0.6 MB a frame, all in memory), with the features of the whole video."""
    import rrn.baselines.features as features

    sizes = []
    call = ClipTransform.__call__

    def recording(self, frames):
        sizes.append(len(frames))
        return call(self, frames)

    monkeypatch.setattr(features, "FEATURE_PIECE", 2)
    monkeypatch.setattr(ClipTransform, "__call__", recording)
    _, records, _ = split
    extract(split, tmp_path, net)
    assert sizes and max(sizes) == 2 and sum(sizes) == 3 * len(records)  # 3 frames a video
    monkeypatch.setattr(ClipTransform, "__call__", call)
    for rec in records:
        frames = decode_video(rec.path, SAMPLING)
        with torch.no_grad():
            want = net.video_features(ClipTransform(32, train=False)(frames), stages=(2, 3, 4))
        with np.load(feature_file(tmp_path, rec.video_id)) as z:
            for stage in (2, 3, 4):
                np.testing.assert_allclose(z[f"stage{stage}"], want[stage], atol=1e-5)


def test_random_source_is_the_same_network_every_time(net):
    # resumed or sharded extractions with --source none must all use one network
    again = load_feature_model("none", "resnet18")
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_float16_halves_the_storage(synth, feats, split, tmp_path, capsys):
    _, records, _ = split
    assert main(features_argv(synth, tmp_path, "--float16", "--stages", "4")) == 0
    assert "8 videos written, 0 already there, 24 frames" in capsys.readouterr().out
    for rec in records:
        with (
            np.load(feature_file(tmp_path, rec.video_id)) as half,
            np.load(feature_file(feats, rec.video_id)) as full,
        ):
            assert half["stage4"].dtype == np.float16 and "stage2" not in half
            assert half["stage4"].nbytes * 2 == full["stage4"].nbytes
            np.testing.assert_allclose(half["stage4"], full["stage4"], rtol=2e-3, atol=1e-3)
    meta = json.loads((tmp_path / "features.json").read_text())
    assert meta["float16"] is True and meta["stages"] == [4]


def test_a_folder_of_other_settings_is_not_resumed(synth, feats, tmp_path, capsys):
    out = tmp_path / "f"
    shutil.copytree(feats, out)
    (out / "extraction.json").unlink()  # a folder from before extraction.json: features.json tells
    assert main(features_argv(synth, out, "--frame-size", "48")) == 2
    err = capsys.readouterr().err
    assert (
        "other settings (frame_size 32 -> 48; short_side 37 -> 55)" in err
        and "another --out" in err
    )
    assert main(features_argv(synth, out)) == 0  # the same settings resume: nothing extracted again
    assert "0 videos written, 8 already there" in capsys.readouterr().out
    assert main(features_argv(synth, out, "--float16")) == 2
    assert "float16 False -> True" in capsys.readouterr().err


def test_a_checkpoint_source_records_its_own_architecture(synth, tmp_path, capsys):
    from runs import save_run

    run = save_run(tmp_path / "r34", arch="resnet34", sample_every=EVERY)
    assert main(features_argv(synth, tmp_path / "f", "--source", str(run), "--stages", "4")) == 0
    meta = json.loads((tmp_path / "f" / "features.json").read_text())
    assert meta["arch"] == "resnet34" and meta["source"] == str(
        (run / "last.pt").resolve()
    )  # not --arch
    assert json.loads((tmp_path / "f" / "extraction.json").read_text())["arch"] == "resnet34"
    # a folder from before extraction.json: the source as typed, --arch recorded; it still resumes
    (tmp_path / "f" / "extraction.json").unlink()
    meta.update(source=os.path.relpath(run), arch="resnet18")
    (tmp_path / "f" / "features.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(features_argv(synth, tmp_path / "f", "--source", str(run), "--stages", "4")) == 0
    assert "0 videos written, 8 already there" in capsys.readouterr().out


def test_the_same_extraction_resumes_however_it_is_spelled(synth, tmp_path, capsys):
    from runs import save_run

    run = save_run(tmp_path / "run", sample_every=EVERY)
    out = tmp_path / "f"
    assert main(features_argv(synth, out, "--source", str(run), "--stages", "2,4")) == 0
    # the run's file instead of its folder, stages in another order: one extraction, resumed
    assert main(features_argv(synth, out, "--source", str(run / "last.pt"), "--stages", "4,2")) == 0
    assert "0 videos written, 8 already there" in capsys.readouterr().out
    save_run(
        tmp_path / "run", sample_every=EVERY, seed=1
    )  # trained further in place: other weights
    assert main(features_argv(synth, out, "--source", str(run), "--stages", "2,4")) == 2
    assert "other settings (weights " in capsys.readouterr().err
    keyword = tmp_path / "k"
    assert main(features_argv(synth, keyword, "--stages", "4")) == 0
    assert (
        main(features_argv(synth, keyword, "--stages", "4", "--source", "None")) == 0
    )  # a keyword
    assert "0 videos written, 8 already there" in capsys.readouterr().out


@pytest.mark.parametrize("stages", ["2,5", "x"])
def test_bad_stages_are_a_user_error(synth, tmp_path, capsys, stages):
    assert main(features_argv(synth, tmp_path / "f", "--stages", stages)) == 2
    assert "--stages" in capsys.readouterr().err and not (tmp_path / "f").exists()


def test_features_without_out_is_a_user_error(synth, capsys):
    argv = [a for a in features_argv(synth, "unused") if a not in ("--out", "unused")]
    assert main(argv) == 2
    assert "--out is required" in capsys.readouterr().err


def test_rerun_reuses_every_video(feats, split, net):
    mtimes = {p: p.stat().st_mtime_ns for p in (feats / "videos").rglob("*.npz")}
    report = extract(split, feats, net)
    assert (report.written, report.reused, report.frames) == (0, 8, 0)
    assert {p: p.stat().st_mtime_ns for p in (feats / "videos").rglob("*.npz")} == mtimes


def test_two_ranks_partition_the_videos_and_equal_one_run(feats, split, net, tmp_path):
    _, records, _ = split
    ids = [r.video_id for r in records]
    one = extract(split, tmp_path, net, rank=1, world_size=2)
    assert (
        one.written == 4 and not (tmp_path / "features.json").exists()
    )  # written once all are done
    assert stored(tmp_path) == sorted(ids[1::2])
    zero = extract(split, tmp_path, net, rank=0, world_size=2)
    assert zero.written == 4 and zero.reused == 0  # nothing of rank 1's share
    assert stored(tmp_path) == sorted(ids) and not (tmp_path / "features.json").exists()
    assert write_meta(split, tmp_path, world_size=2) == tmp_path / "features.json"
    for vid in ids:
        with np.load(feature_file(tmp_path, vid)) as a, np.load(feature_file(feats, vid)) as b:
            for stage in (2, 3, 4):
                np.testing.assert_allclose(
                    a[f"stage{stage}"], b[f"stage{stage}"], rtol=1e-5, atol=1e-6
                )
    sharded = json.loads((tmp_path / "features.json").read_text())
    single = json.loads((feats / "features.json").read_text())
    assert sharded["videos"] == single["videos"] and sharded["failures"] == []
    assert sharded == single  # the same settings, classes, stages and videos as `rrn features`


def test_meta_gathers_the_failures_of_every_shard(split, tmp_path):
    (tmp_path / "failures.rank0.json").write_text(json.dumps([["a", "file is empty (0 bytes)"]]))
    (tmp_path / "failures.rank2.json").write_text(json.dumps([["c", "cannot decode"]]))
    write_meta(split, tmp_path, world_size=3)  # rank 1 wrote no file: nothing of its own failed
    meta = json.loads((tmp_path / "features.json").read_text())
    assert meta["failures"] == [["a", "file is empty (0 bytes)"], ["c", "cannot decode"]]
    assert meta["source"] == "none" and meta["sample_every"] == EVERY and meta["frame_size"] == 32
    assert meta["float16"] is False and meta["classes"] == split[0].classes


def test_corrupt_video_is_reported_not_fatal_and_left_out(synth, split, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth, data)
    victim = split[0].train[0]
    (data / victim.path.relative_to(synth)).write_bytes(b"\x00garbage, not an avi" * 50)
    out = tmp_path / "feats"
    assert main(features_argv(data, out)) == 0
    text, err = capsys.readouterr()
    assert f"rrn: warning: skipping video {victim.video_id}: " in err
    assert "7 videos written" in text and f"skipped {victim.video_id}" in text
    assert not feature_file(out, victim.video_id).exists()
    meta = json.loads((out / "features.json").read_text())
    assert [vid for vid, _ in meta["failures"]] == [victim.video_id]
    seqs, labels, ids, classes = load_features(out, stage=3)
    assert victim.video_id not in ids["train"]
    assert len(ids["train"]) == len(split[0].train) - 1 and len(ids["test"]) == len(split[0].test)
    assert all(s.shape == (3, 256) for s in seqs["train"] + seqs["test"])
    assert labels["train"].tolist() == [r.label for r in split[0].train[1:]]


# ------------------------------------------------------------------------------ classifiers
def test_znorm_stats_values():
    train = [np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[4.0, 1.0]])]
    mean, std = znorm_stats(train, pooled=True)  # of the video means [1, 1] and [4, 1]
    assert mean.tolist() == [2.5, 1.0]
    assert std[0].item() == pytest.approx(1.5) and std[1].item() == pytest.approx(1e-6)  # clamped
    mean, std = znorm_stats(train, pooled=False)  # of the frames 0, 2, 4
    assert mean.tolist() == [2.0, 1.0]
    assert std[0].item() == pytest.approx((8 / 3) ** 0.5)


def test_avgpool_pools_only_over_the_real_frames():
    clf = AvgPoolClassifier(2, 2, mean=torch.tensor([1.0, 0.0]), std=torch.tensor([2.0, 4.0]))
    with torch.no_grad():
        clf.fc.weight.copy_(torch.eye(2))
        clf.fc.bias.zero_()
    x = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 6.0], [0.0, 0.0]],  # 2 frames + padding
            [[5.0, 8.0], [7.0, 4.0], [9.0, 0.0]],
        ]
    )  # 3 frames
    logits = clf(x, torch.tensor([2, 3]))
    # means [2, 4] and [7, 4], then (mean - [1, 0]) / [2, 4]
    assert torch.allclose(logits, torch.tensor([[0.5, 1.0], [3.0, 1.0]]))


def test_gru_ignores_padding():
    torch.manual_seed(0)
    clf = GRUClassifier(3, 4, hidden=8, mean=torch.randn(3), std=torch.rand(3) + 0.5).eval()
    a, b = torch.randn(2, 3), torch.randn(5, 3)
    x = torch.full((2, 5, 3), 7.0)  # padding that would change the state if it were read
    x[0, :2], x[1] = a, b
    with torch.no_grad():
        batched = clf(x, torch.tensor([2, 5]))
        alone = clf(a[None], torch.tensor([2]))
        assert torch.allclose(batched[0], alone[0], atol=1e-6)
        assert torch.allclose(batched[1], clf(b[None], torch.tensor([5]))[0], atol=1e-6)
        assert not torch.allclose(alone, clf(x[:1], torch.tensor([5])), atol=1e-3)


def write_features(root, seqs, labels, subsets, classes, stage=4):
    """A features folder as `rrn features` writes it, from given (N_i, C) arrays."""
    videos = []
    for i, (s, y, sub) in enumerate(zip(seqs, labels, subsets)):
        vid = f"v{i:03d}"
        path = feature_file(root, vid)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f"stage{stage}": s.astype(np.float32), "label": np.array(y)})
        videos.append({"video_id": vid, "label": y, "subset": sub})
    (root / "features.json").write_text(
        json.dumps({"classes": classes, "stages": [stage], "videos": videos, "failures": []})
    )
    return root


def separable(root, classes=3, train=5, test=3, dim=6, test_shift=0.0):
    """Class k: feature k is large in every frame; videos of 3-9 frames."""
    rng = np.random.default_rng(0)
    seqs, labels, subsets = [], [], []
    for sub, n in (("train", train), ("test", test)):
        for k in range(classes):
            for _ in range(n):
                s = rng.normal(0, 0.3, size=(int(rng.integers(3, 10)), dim))
                s[:, k] += 3.0
                seqs.append(s + (test_shift if sub == "test" else 0.0))
                labels.append(k)
                subsets.append(sub)
    names = [f"class{k}" for k in range(classes)]
    return write_features(root, seqs, labels, subsets, names), seqs, subsets


@pytest.mark.parametrize("model, znorm", [("avgpool", False), ("avgpool", True), ("gru", True)])
def test_separable_features_are_classified_perfectly(tmp_path, model, znorm):
    root, _, _ = separable(tmp_path / "f")
    result = run_baseline(
        BaselineConfig(
            features=str(root),
            model=model,
            znorm=znorm,
            epochs=40,
            lr=0.03,
            batch_size=8,
            hidden=16,
            out=str(tmp_path / "out"),
        )
    )
    assert result["video_error"] == 0.0 and result["video_top1"] == 1.0
    assert result["num_videos"] == 9 and result["train_videos"] == 15
    assert result["misclassified"] == [] and result["mean_class_accuracy"] == 1.0
    stem = f"baseline_{model}_stage4{'_znorm' if znorm else ''}"
    saved = json.loads((tmp_path / "out" / f"{stem}.json").read_text())
    assert saved["video_error"] == 0.0 and saved["model"] == model and saved["znorm"] is znorm


def test_znorm_statistics_come_from_the_training_split_only(tmp_path, monkeypatch):
    root, seqs, subsets = separable(tmp_path, test_shift=100.0)
    seen = []
    real = baselines.znorm_stats
    monkeypatch.setattr(  # where run_baseline finds it
        baselines.training,
        "znorm_stats",
        lambda s, pooled: seen.append((s, pooled)) or real(s, pooled),
    )
    for model in ("avgpool", "gru"):
        cfg = BaselineConfig(
            features=str(root), model=model, znorm=True, epochs=1, out=str(tmp_path / "o")
        )
        run_baseline(cfg, plot=False)
    train = [s for s, sub in zip(seqs, subsets) if sub == "train"]
    assert [pooled for _, pooled in seen] == [True, False]  # video means / frames
    for used, _ in seen:
        assert len(used) == len(train) == 15
        for u, t in zip(used, train):
            np.testing.assert_allclose(u, t, rtol=1e-6)  # no test video (shifted by 100) in them


@pytest.mark.parametrize("model, znorm", [("avgpool", False), ("avgpool", True), ("gru", False)])
def test_cli_baselines_on_extracted_features(feats, tmp_path, capsys, model, znorm):
    out = tmp_path / "out"
    argv = [
        "baseline",
        "--features",
        str(feats),
        "--model",
        model,
        "--stage",
        "4",
        "--epochs",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv + (["--znorm"] if znorm else [])) == 0
    printed = json.loads(capsys.readouterr().out)
    stem = f"baseline_{model}_stage4{'_znorm' if znorm else ''}"
    result = json.loads((out / f"{stem}.json").read_text())
    for key in RESULT_KEYS:
        assert key in result, key
    assert result["num_videos"] == 4 and result["train_videos"] == 4
    assert 0 <= result["video_error"] <= 1
    assert result["video_error"] == pytest.approx(1 - result["video_top1"])
    assert result["video_top5"] == 1.0  # 2 classes
    assert result["clip_top1"] is None  # no chunks: one prediction per video
    assert printed["video_error"] == result["video_error"] and "per_class" not in printed
    assert result["files"]["json"] == str(out / f"{stem}.json")
    assert (out / f"{stem}_per_class.csv").read_text().startswith("class_index,class,")
    assert (out / f"{stem}_confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(feats.glob("baseline_*"))  # --out, not the features folder


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # a write cut short
        lambda text: "[" * 100_000 + "]" * 100_000,  # nested past Python's stack
        lambda text: json.dumps({"videos": "all of them", "stages": [4]}),
    ],
)
def test_a_damaged_features_json_is_one_line_saying_to_extract_again(
    feats, tmp_path, capsys, damage
):
    import shutil

    folder = shutil.copytree(feats, tmp_path / "feats")
    meta = folder / "features.json"
    meta.write_text(damage(meta.read_text()))
    assert main(["baseline", "--features", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rrn baseline: error: {meta} is not") and "\n" not in err
    assert "run `rrn features` again into a new --out" in err


def test_missing_features_json_says_run_rrn_features(tmp_path, capsys):
    folder = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError, match="rrn features") as err:
        run_baseline(BaselineConfig(features=str(folder)))
    assert str(folder) in str(err.value)
    assert main(["baseline", "--features", str(folder)]) == 2
    assert "rrn features" in capsys.readouterr().err
    assert main(["baseline"]) == 2  # no folder at all
    assert "--features is required" in capsys.readouterr().err


def test_unfinished_extraction_and_wrong_stage_are_explained(tmp_path):
    root, _, _ = separable(tmp_path)
    with pytest.raises(ValueError, match="not stage 2"):
        load_features(root, stage=2)
    feature_file(root, "v004").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 videos .*\(e\.g\. v004\); rerun `rrn features`"
    ):
        load_features(root, stage=4)


def test_features_read_the_frame_cache_when_built(split, net, tmp_path):
    s, records, subsets = split
    cache = FrameCache(
        tmp_path / "cache", format="npy"
    )  # lossless: an uncached video reads as decoded
    short = default_short_side(32)
    # poison the cache for one video: what it holds must be what the features are computed from
    frames = decode_video(records[0].path, Sampling(sample_every=EVERY, short_side=short))
    assert SAMPLING == Sampling(EVERY, None, short)
    cache.put(records[0].path, np.zeros_like(frames), SAMPLING)
    extract(split, tmp_path / "with", net, cache_dir=tmp_path / "cache", cache_format="npy")
    extract(split, tmp_path / "without", net)
    with torch.no_grad():
        zero = net.video_features(
            ClipTransform(32, train=False)(np.zeros_like(frames)), stages=(4,)
        )[4]
    with np.load(feature_file(tmp_path / "with", records[0].video_id)) as z:
        np.testing.assert_allclose(z["stage4"], zero.numpy(), rtol=1e-5, atol=1e-6)
    for rec in records[1:]:  # not cached: decoded, the same as without a cache
        with (
            np.load(feature_file(tmp_path / "with", rec.video_id)) as a,
            np.load(feature_file(tmp_path / "without", rec.video_id)) as b,
        ):
            np.testing.assert_array_equal(a["stage4"], b["stage4"])


def test_checkpoint_source_is_the_runs_last_checkpoint(tmp_path):
    """A run directory as --source gives its last.pt (trained to the end), not best.pt (picked
    on the test split); a checkpoint file gives that file."""
    from rrn.checkpoint import make_checkpoint, save_checkpoint
    from rrn.config import TrainConfig
    from rrn.model import build_model

    cfg = TrainConfig().replace(model={"arch": "resnet18", "skip": (), "weights": "none"})
    run = tmp_path / "run"
    weights = {}
    for seed, name in ((1, "best.pt"), (2, "last.pt")):
        torch.manual_seed(seed)
        model = build_model("resnet18", num_classes=2, skip_blocks=())
        save_checkpoint(
            run / name, make_checkpoint(model, config=cfg.to_dict(), classes=["a", "b"])
        )
        weights[name] = model.state_dict()
    for source, name in (
        (run, "last.pt"),
        (run / "best.pt", "best.pt"),
        (run / "last.pt", "last.pt"),
    ):
        got = load_feature_model(str(source), "resnet50")  # the checkpoint's arch, not this one
        assert not got.training
        state = got.state_dict()
        assert state.keys() == weights[name].keys()
        assert all(torch.equal(state[k], v) for k, v in weights[name].items()), (source, name)
    with pytest.raises(WeightsError, match="no_such_run does not exist; pass none, imagenet"):
        load_feature_model(str(tmp_path / "no_such_run"))

"""The model package: rrn pack writes weights, config and model card; every command and
rrn.load_model take the package as they take the run, with the same numbers; loading is strict."""

import json
import shutil

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import rrn
from package_runs import RUN_SETTINGS, write_run
from rrn.checkpoint import VERSION, CheckpointError
from rrn.cli import main
from rrn.config import resolve_config
from rrn.data.transforms import InputSpec
from rrn.evaluation import evaluate_checkpoint
from rrn.package.folder import FILES, PackageError, is_package, read_package
from rrn.package.pack import dataset_facts, not_reportable, pack_run


@pytest.fixture(scope="module")
def run(synth, tmp_path_factory):
    """A run with its evaluation (eval_split1.json) of last.pt."""
    folder = write_run(tmp_path_factory.mktemp("pack") / "ucf_split1", synth)
    evaluate_checkpoint(folder, overrides=RUN_SETTINGS)
    return folder


@pytest.fixture(scope="module")
def package(run):
    packed = pack_run(run, run.parent / "package", license="mit")
    assert packed.reported == [run / "eval_split1.json"] and packed.left_out == []
    return packed.folder


def tampered(package, tmp_path, edit=None, weights=None):
    """A copy of ``package`` with config.json edited by ``edit(config)`` and/or other weights
    (the original weights are linked, not copied: 45 MB)."""
    out = tmp_path / "tampered"
    out.mkdir(parents=True)
    config = json.loads((package / "config.json").read_text())
    if edit:
        edit(config)
    (out / "config.json").write_text(json.dumps(config))
    shutil.copy(package / "README.md", out / "README.md")
    if weights is None:
        (out / "model.safetensors").symlink_to(package / "model.safetensors")
    else:
        save_file(weights, out / "model.safetensors")
    return out


def card_of(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    meta, _, prose = text[4:].partition("\n---\n")
    return yaml.safe_load(meta), prose


# ---------------------------------------------------------------------------- what pack writes
def test_pack_writes_the_weights_alone_the_config_and_the_card(run, package):
    assert sorted(p.name for p in package.iterdir()) == sorted(FILES)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    weights = load_file(package / "model.safetensors")
    assert weights.keys() == ckpt["model"].keys()
    assert all(torch.equal(weights[k], v) for k, v in ckpt["model"].items())
    with safe_open(package / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}

    config = json.loads((package / "config.json").read_text())
    assert config["format"] == "rrn-package" and config["rrn_version"] == rrn.__version__
    assert config["checkpoint_format"] == "rrn-checkpoint"
    assert config["checkpoint_version"] == VERSION
    assert config["model"] == ckpt["model_config"]
    assert config["classes"] == ckpt["classes"] and config["background_class"] is None
    model = rrn.load_model(run)
    assert config["inputs"] == model.inputs.to_dict()
    assert config["inputs"]["frame_size"] == 32 and config["inputs"]["short_side"] == 37
    assert config["checkpoint"] == {
        "file": "last.pt",
        "chosen_by": "last",
        "description": model.choice["description"],
        "epoch": 2,
        "global_step": 6,
    }
    assert config["torch_version"] == ckpt["torch_version"]


def test_the_package_leaves_out_the_paths_of_the_training_machine(run, package, synth):
    config = json.loads((package / "config.json").read_text())
    data, saved = config["train_config"]["data"], torch.load(run / "last.pt")["config"]
    for key in ("data_root", "split_dir", "train_list", "test_list", "cache_dir"):
        assert key not in data
    assert "out" not in config["train_config"]["run"]
    assert str(synth) not in (package / "config.json").read_text()
    assert str(synth) not in (package / "README.md").read_text()
    assert data["frame_size"] == saved["data"]["frame_size"] and data["hflip"] is True
    assert config["train_config"]["optim"] == saved["optim"]


# ---------------------------------------------------------------------------- loading it
def test_the_package_loads_as_the_run_it_came_from(run, package):
    a, b = rrn.load_model(run), rrn.load_model(package)
    assert isinstance(b, rrn.RecurrentResNet) and not b.training
    assert b.classes == a.classes and b.config == a.config and b.inputs == a.inputs
    assert all(torch.equal(v, a.state_dict()[k]) for k, v in b.state_dict().items())
    assert b.checkpoint == package and b.info.weights.source == str(package)
    assert b.choice["chosen_by"] == "last" and b.choice["global_step"] == 6
    assert b.train_config.data.data_root is None  # the package's has no path
    assert b.train_config.model == a.train_config.model
    assert b.train_config.optim == a.train_config.optim
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a.forward_video(x), b.forward_video(x))


def test_rrn_predict_gives_the_run_s_numbers_for_its_package(run, package, synth, capsys):
    video = sorted(synth.glob("*/*.avi"))[0]
    answers = []
    for source in (run, package):
        assert main(["predict", str(source), str(video), "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    (a,), (b,) = answers[0]["videos"], answers[1]["videos"]
    assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
    assert [t["prob"] for t in b["top"]] == pytest.approx([t["prob"] for t in a["top"]], abs=1e-5)
    assert a["top"][0]["prob"] < 0.999 and a["num_frames"] == b["num_frames"] == 6
    assert answers[1]["checkpoint"] == str(package)


def test_rrn_eval_of_the_package_repeats_the_run_s_evaluation(run, package, synth, tmp_path):
    code = main(
        ["eval", str(package), "--data-root", str(synth), "--out", str(tmp_path), "--workers", "0"]
    )
    assert code == 0
    mine = json.loads((tmp_path / "eval_split1.json").read_text())
    theirs = json.loads((run / "eval_split1.json").read_text())
    for key in ("video_top1", "video_top5", "clip_top1", "mean_class_accuracy", "num_videos"):
        assert mine[key] == pytest.approx(theirs[key]), key
    assert mine["per_class"] == theirs["per_class"]
    assert mine["checkpoint_choice"]["chosen_by"] == "last"
    assert mine["checkpoint_choice"]["global_step"] == 6


def test_rrn_eval_of_a_package_needs_the_data_it_does_not_carry(package, capsys):
    assert main(["eval", str(package), "--workers", "0"]) == 2
    assert "--data-root is required" in capsys.readouterr().err


def test_model_info_describes_the_trained_model_of_a_package(package, capsys):
    assert main(["model-info", str(package), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "resnet18" and info["skip_blocks"] == ["layer4.1"]
    assert info["classes"] == json.loads((package / "config.json").read_text())["classes"]
    assert info["frame_size"] == 32 and info["checkpoint"]["chosen_by"] == "last"
    assert main(["model-info", str(package), "--arch", "resnet50"]) == 2
    assert "described as it is" in capsys.readouterr().err


def test_features_source_takes_a_package_as_the_trained_network(run, package):
    from rrn.baselines import load_feature_model

    a, b = load_feature_model(str(run)), load_feature_model(str(package))
    assert b.skip_blocks == a.skip_blocks == ("layer4.1",)
    assert all(torch.equal(v, a.state_dict()[k]) for k, v in b.state_dict().items())


# ---------------------------------------------------------------------------- strict loading
def _set(key, value):
    return lambda c: c.__setitem__(key, value)


@pytest.mark.parametrize(
    "edit, error, match",
    [
        (_set("format", "something"), PackageError, "not an rrn package"),
        (lambda c: c.pop("classes"), PackageError, "lacks classes"),
        (lambda c: c["classes"].append("Extra"), PackageError, "2 outputs and 3 classes"),
        (lambda c: c["classes"].__setitem__(1, c["classes"][0]), PackageError, "twice"),
        (_set("background_class", "Background"), PackageError, "is not class 0"),
        (lambda c: c["inputs"].__setitem__("frame_size", 64), PackageError, "frame_size 64 vs 32"),
        (lambda c: c["model"].__setitem__("skip_blocks", ["layer3.1"]), PackageError, "layer3"),
        (
            lambda c: c["train_config"]["model"].__setitem__("arch", "resnet34"),
            PackageError,
            "arch",
        ),
        (_set("checkpoint_version", VERSION + 1), CheckpointError, "upgrade rrn"),
    ],
    ids=[
        "marker",
        "no-classes",
        "class-count",
        "twice",
        "background",
        "inputs",
        "skips",
        "arch",
        "version",
    ],
)
def test_a_package_that_contradicts_itself_is_refused_naming_it(
    package, tmp_path, edit, error, match
):
    bad = tampered(package, tmp_path, edit=edit)
    with pytest.raises(error, match=match) as caught:
        rrn.load_model(bad)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


def test_weights_of_another_shape_or_missing_ones_are_refused(package, tmp_path):
    weights = load_file(package / "model.safetensors")
    wrong = {**weights, "fc.weight": torch.zeros(5, 512)}
    with pytest.raises(CheckpointError, match=r"fc\.weight"):
        rrn.load_model(tampered(package, tmp_path / "a", weights=wrong))
    fewer = {k: v for k, v in weights.items() if k != "layer1.0.conv1.weight"}
    with pytest.raises(CheckpointError, match=r"layer1\.0\.conv1\.weight"):
        rrn.load_model(tampered(package, tmp_path / "b", weights=fewer))


def test_a_missing_or_damaged_weights_file_is_one_line(package, tmp_path):
    bad = tampered(package, tmp_path)
    (bad / "model.safetensors").unlink()
    with pytest.raises(PackageError, match="has no model.safetensors"):
        rrn.load_model(bad)
    (bad / "model.safetensors").write_bytes(
        (package / "model.safetensors").read_bytes()[:1000]
    )  # truncated
    with pytest.raises(PackageError, match="cannot read model.safetensors"):
        rrn.load_model(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(PackageError, match="cannot read config.json"):
        read_package(bad)
    (bad / "config.json").write_text("[" * 100_000)  # past Python's recursion limit
    with pytest.raises(PackageError, match="cannot read config.json .*recursion"):
        read_package(bad)


def test_a_folder_is_a_package_by_its_config_json(run, package, tmp_path):
    assert is_package(package) and not is_package(run) and not is_package(run / "last.pt")
    with pytest.raises(CheckpointError, match="without last.pt"):
        rrn.load_model(tmp_path)  # an empty folder is neither


# ---------------------------------------------------------------------------- the model card
def test_the_card_s_metadata_is_a_hub_model_card_with_the_evaluation(run, package):
    from huggingface_hub import ModelCard

    card = ModelCard.load(package / "README.md", ignore_metadata_errors=False)
    data = card.data
    assert data.library_name == "rrn" and data.pipeline_tag == "video-classification"
    assert data.license == "mit" and {"rrn", "video-classification", "resnet18"} <= set(data.tags)
    assert data.model_name == "package"
    ev = json.loads((run / "eval_split1.json").read_text())
    got = {r.metric_type: r for r in data.eval_results}
    assert set(got) == {"accuracy", "top_5_accuracy", "clip_accuracy", "mean_class_accuracy"}
    assert got["accuracy"].metric_value == pytest.approx(ev["video_top1"], abs=1e-6)
    assert got["top_5_accuracy"].metric_value == pytest.approx(ev["video_top5"], abs=1e-6)
    assert got["clip_accuracy"].metric_value == pytest.approx(ev["clip_top1"], abs=1e-6)
    for r in data.eval_results:
        assert r.task_type == "video-classification" and r.dataset_type == "ucf101"
        assert r.dataset_config == "split1" and r.dataset_split == "test"
        assert r.metric_args["protocol"] == ev["protocol"]
        assert r.metric_args["checkpoint"] == "last.pt" and r.metric_args["chosen_by"] == "last"
        assert r.metric_args["global_step"] == 6 and r.metric_args["crops"] == 1
        assert r.metric_args["flip"] is False and r.metric_args["frame_size"] == 32
        assert r.metric_args["videos"] == ev["num_videos"]
    assert "&id" not in (package / "README.md").read_text()  # no YAML aliases: plain to read


def test_the_card_s_prose_says_what_how_and_its_limits(package):
    _, prose = card_of(package)
    for heading in (
        "What it recognises",
        "How it was trained",
        "Evaluation",
        "How to use it",
        "Limits",
    ):
        assert f"## {heading}" in prose, heading
    assert "`MoveRight`" in prose or "`MoveLeft`" in prose
    assert "synthetic" in prose and "no class for 'no action'" in prose
    assert "rrn predict PACKAGE video.mp4" in prose
    assert "the last checkpoint of the run: nothing was selected" in prose


def test_only_this_checkpoint_s_numbers_measured_apart_from_its_choice_are_reported(run, tmp_path):
    ev = json.loads((run / "eval_split1.json").read_text())
    path, choice = run / "last.pt", rrn.load_model(run).choice
    assert not_reportable(ev, path, choice, 1) is None
    later = {**ev, "checkpoint_choice": {**ev["checkpoint_choice"], "global_step": 9}}
    assert "at step 9, not the packed last.pt at step 6" in not_reportable(later, path, choice, 1)
    best = {**ev, "checkpoint": str(run / "best.pt")}
    assert "evaluated best.pt" in not_reportable(best, path, choice, 1)
    on_test = {**ev, "checkpoint_choice": {**ev["checkpoint_choice"], "chosen_by": "test"}}
    assert "chosen on the test split" in not_reportable(on_test, path, choice, 1)
    other_split = {**ev, "split": 2}
    assert "trained on split 1" in not_reportable(other_split, path, choice, 1)
    assert not_reportable({"nothing": 1}, path, choice, 1) == "not an rrn eval result"

    stale = tmp_path / "old" / "eval_split1.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps(later))
    packed = pack_run(run, tmp_path / "pkg", results=[stale])
    assert packed.reported == [run / "eval_split1.json"] and len(packed.left_out) == 1
    meta, prose = card_of(packed.folder)
    assert len(meta["model-index"][0]["results"]) == 1
    assert "Not reported: `eval_split1.json`: it evaluated last.pt at step 9" in prose


def test_a_checkpoint_chosen_on_the_test_split_is_packed_without_numbers(
    synth, tmp_path, logs_warning
):
    folder = write_run(tmp_path / "old_run", synth, name="best.pt", selection="test")
    evaluate_checkpoint(folder / "best.pt", overrides=RUN_SETTINGS)
    with logs_warning("chosen by the best video accuracy ON THE TEST SPLIT"):
        packed = pack_run(folder, tmp_path / "pkg", which="best")
    meta, prose = card_of(packed.folder)
    assert "model-index" not in meta and "metrics" not in meta
    assert packed.reported == [] and "chosen on the test split" in packed.left_out[0]
    assert "No evaluation of this checkpoint is reported" in prose


def test_a_background_class_first_is_the_package_s_background_class(synth, tmp_path):
    classes = ["Background", "MoveRight", "MoveLeft"]
    folder = write_run(tmp_path / "det", synth, classes=classes)
    packed = pack_run(folder, tmp_path / "pkg")
    config = json.loads((packed.folder / "config.json").read_text())
    assert config["background_class"] == "Background" and config["classes"] == classes
    meta, prose = card_of(packed.folder)
    assert "online-action-detection" in meta["tags"] and "Class 0, `Background`" in prose
    assert rrn.load_model(packed.folder).classes == classes


# ---------------------------------------------------------------------------- the command
def test_rrn_pack_names_what_it_wrote_and_refuses_a_folder_of_other_files(run, tmp_path, capsys):
    out = tmp_path / "pkg"
    assert main(["pack", str(run), str(out), "--license", "apache-2.0"]) == 0
    said = capsys.readouterr().out
    assert f"packed {run / 'last.pt'} (resnet18, skips layer4.1, 2 classes" in said
    assert "evaluations reported: eval_split1.json" in said and str(out / "config.json") in said
    assert card_of(out)[0]["license"] == "apache-2.0"
    assert main(["pack", str(run), str(out)]) == 0  # over an earlier package
    assert card_of(out)[0]["license"] == "unknown"
    (out / "notes.txt").write_text("mine")
    assert main(["pack", str(run), str(out)]) == 2
    assert "holds other files (notes.txt)" in capsys.readouterr().err
    assert main(["pack", str(run), str(tmp_path / "x"), "--license", "MIT License"]) == 2
    assert "--license 'MIT License'" in capsys.readouterr().err


def test_a_results_file_that_cannot_be_read_is_refused_before_packing(run, tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{")
    for results, why in [
        (tmp_path / "typo.json", "No such file"),
        (tmp_path / "broken.json", "Expecting property name"),
        (tmp_path, "Is a directory"),
    ]:
        out = tmp_path / "pkg"
        assert main(["pack", str(run), str(out), "--results", str(results)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"rrn pack: error: --results {results}: cannot read it (")
        assert why in err and "leave the flag out" in err and len(err.splitlines()) == 1
        assert not out.exists()


def test_every_command_taking_a_run_says_it_takes_a_package(capsys):
    for command in ("eval", "predict", "stream", "serve", "export", "model-info"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "hf://org/name[@revision]" in capsys.readouterr().out, command


def test_a_package_reads_back_as_the_checkpoint_it_holds(run, package):
    ckpt, held = torch.load(run / "last.pt", weights_only=True), read_package(package)
    assert held["model_config"] == ckpt["model_config"] and held["classes"] == ckpt["classes"]
    assert held["selection"] == "last" and held["progress"] == {"epoch": 2, "global_step": 6}
    assert held["config"]["model"] == ckpt["config"]["model"]
    spec = InputSpec(32, rrn.load_model(run).inputs.sampling)
    assert held["package"]["inputs"] == spec.to_dict()


def test_the_card_names_a_dataset_as_its_format_s_record_does(synth, tmp_path):
    def facts(**data):
        return dataset_facts(resolve_config([("flags", {"data": data})]).data)

    ucf = facts(dataset="ucf101", data_root=str(tmp_path / "UCF-101"))
    assert (ucf.name, ucf.test_split, ucf.hub_id, ucf.synthetic) == (
        "UCF-101",
        "test",
        "ucf101",
        False,
    )
    k400 = facts(dataset="kinetics", data_root=str(tmp_path / "k400"))
    assert (k400.name, k400.test_split) == ("Kinetics", "validation")
    assert facts(dataset="ssv2").flip_note == "its classes depend on direction"
    own = facts(dataset="list", data_root=str(tmp_path / "my_videos"))
    assert own.name == "my_videos (`--dataset list`)" and own.hub_id is None
    mine = facts(dataset="ucf101", data_root=str(synth))
    assert mine.synthetic and mine.hub_id is None and "directions of motion" in mine.flip_note

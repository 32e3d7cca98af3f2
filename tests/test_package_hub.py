"""Model packages on the Hugging Face Hub, offline: hf://org/name[@revision] read from a hand-made
Hub cache (HF_HUB_OFFLINE is set by conftest before huggingface_hub is imported, and in the
subprocesses' environment), rrn push checked against a recorded fake of the Hub's API."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants

import rrn
from package_runs import write_run
from rrn.cli import main
from rrn.package.folder import FILES
from rrn.package.hub import HubError, parse_hub_uri
from rrn.package.pack import pack_run

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLDER = "89abcdef0123456789abcdef0123456789abcdef"


def hub_cache(cache: Path, repo_id: str, snapshots: dict[str, Path], refs: dict[str, str]) -> Path:
    """The Hugging Face cache's layout: ``models--org--name/`` with ``blobs/<sha256>``,
    ``snapshots/<commit>/<file>`` linking to them and ``refs/<branch or tag>`` holding a commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for commit, package in snapshots.items():
        (repo / "snapshots" / commit).mkdir(parents=True)
        for name in FILES:
            data = (package / name).read_bytes()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            (repo / "snapshots" / commit / name).symlink_to(
                os.path.relpath(blob, blob.parents[1] / "snapshots" / commit)
            )
    for ref, commit in refs.items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return cache


@pytest.fixture(scope="module")
def packages(synth, tmp_path_factory):
    """Two runs (different weights) packed, and a Hub cache of org/name: main = the first,
    tag v1 = the second (an older commit)."""
    tmp = tmp_path_factory.mktemp("hub")
    runs = [write_run(tmp / f"run{seed}", synth, seed=seed) for seed in (0, 1)]
    folders = [pack_run(run, tmp / f"package{i}").folder for i, run in enumerate(runs)]
    cache = hub_cache(
        tmp / "cache",
        "org/name",
        {COMMIT: folders[0], OLDER: folders[1]},
        {"main": COMMIT, "v1": OLDER},
    )
    return runs, folders, cache


@pytest.fixture
def offline_cache(packages, monkeypatch):
    """huggingface_hub (already imported, offline) looking in the hand-made cache."""
    assert constants.HF_HUB_OFFLINE  # conftest set HF_HUB_OFFLINE=1 first
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(packages[2]))
    return packages


def same_weights(a, b) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


# ---------------------------------------------------------------------------- hf:// names
def test_hub_names_are_org_name_and_an_optional_revision():
    assert parse_hub_uri("hf://org/name") == ("org/name", None)
    assert parse_hub_uri("hf://my-lab/rrn.ucf_101@v1.0") == ("my-lab/rrn.ucf_101", "v1.0")
    assert parse_hub_uri("hf://org/name@refs/pr/3") == ("org/name", "refs/pr/3")
    for bad in (
        "hf://name",
        "hf://org/name/extra",
        "hf://org/na me",
        "hf://org/name@",
        "hf://-x/y",
    ):
        with pytest.raises(HubError, match="hf://org/name or hf://org/name@revision"):
            parse_hub_uri(bad)


def test_load_model_reads_hf_names_from_the_hub_cache_offline(offline_cache):
    runs, folders, cache = offline_cache
    first, second = rrn.load_model(runs[0]), rrn.load_model(runs[1])
    assert not same_weights(first, second)
    main_ = rrn.load_model("hf://org/name")  # refs/main
    assert main_.checkpoint == cache / "models--org--name" / "snapshots" / COMMIT
    assert same_weights(main_, first) and main_.classes == first.classes
    assert main_.info.weights.source == "hf://org/name" and main_.choice["file"] == "hf://org/name"
    assert same_weights(rrn.load_model("hf://org/name@v1"), second)  # a tag
    assert same_weights(rrn.load_model(f"hf://org/name@{OLDER}"), second)  # a commit


def test_offline_without_the_package_in_the_cache_is_one_line(offline_cache):
    for name, missing in (("hf://org/other", "hf://org/other"), ("hf://org/name@v2", "@v2")):
        with pytest.raises(HubError, match="is not in the Hugging Face cache") as caught:
            rrn.load_model(name)
        message = str(caught.value)
        assert missing in message and "HF_HUB_OFFLINE is set" in message and "\n" not in message


def test_rrn_predict_of_hf_name_gives_the_run_s_numbers(packages, synth, tmp_path):
    """In a fresh process whose environment sets HF_HUB_OFFLINE and HF_HUB_CACHE before
    huggingface_hub is imported, as a user's shell would."""
    runs, _, cache = packages
    video = str(sorted(synth.glob("*/*.avi"))[0])
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(tmp_path),
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    answers = []
    for source in (str(runs[1]), "hf://org/name@v1"):
        done = subprocess.run(
            [sys.executable, "-m", "rrn", "predict", source, video, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout)["videos"][0])
    a, b = answers
    assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
    assert [t["prob"] for t in b["top"]] == pytest.approx([t["prob"] for t in a["top"]], abs=1e-5)


def test_without_huggingface_hub_an_hf_name_says_which_extra(packages, synth):
    code = (
        "import sys; sys.modules['huggingface_hub'] = None\n"  # as if not installed
        "from rrn.cli import main\n"
        f"sys.exit(main(['predict', 'hf://org/name', {str(next(synth.glob('*/*.avi')))!r}]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "rrn predict: error: hf://org/name needs huggingface_hub, which is not installed: "
        "pip install 'rrn[hub]'"
    )


def test_rrn_eval_of_an_hf_name_wants_a_place_for_its_results(offline_cache, capsys):
    assert main(["eval", "hf://org/name", "--workers", "0"]) == 2
    assert "--out DIR" in capsys.readouterr().err


# ---------------------------------------------------------------------------- rrn push
class RecordedHub:
    """A fake of the Hub's API that records what it is asked (and the files' bytes)."""

    def __init__(self, refuse: Exception | None = None):
        self.calls, self.refuse = [], refuse

    def install(self, monkeypatch):
        hub = self

        def create_repo(api, repo_id, **kwargs):
            hub.calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def create_commit(api, repo_id, operations, *, commit_message, **kwargs):
            if hub.refuse:
                raise hub.refuse
            files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
            hub.calls.append(("create_commit", repo_id, files, commit_message, kwargs))
            return mock.Mock(
                commit_url=f"https://huggingface.co/{repo_id}/commit/abc123", oid="abc123"
            )

        def elsewhere(*args, **kwargs):
            raise AssertionError("rrn push uploads in one create_commit, nothing else")

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
        for name in ("upload_file", "upload_folder", "update_repo_settings"):
            monkeypatch.setattr(huggingface_hub.HfApi, name, elsewhere)
        return self


def test_rrn_push_packs_and_uploads_in_one_commit(packages, monkeypatch, tmp_path, capsys):
    runs = packages[0]
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_from_the_environment")
    hub = RecordedHub().install(monkeypatch)
    assert main(["push", str(runs[0]), "org/name", "--private", "--license", "mit"]) == 0
    (repo,), (commit,) = (
        [c for c in hub.calls if c[0] == "create_repo"],
        [c for c in hub.calls if c[0] == "create_commit"],
    )
    assert hub.calls[0] is repo and len(hub.calls) == 2  # the repository first, then one commit
    assert repo[1] == "org/name" and repo[2] == {
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    _, repo_id, files, message, kwargs = commit
    assert repo_id == "org/name" and kwargs == {"repo_type": "model"}
    assert sorted(files) == sorted(FILES)
    assert (
        message == "rrn push: resnet18 (identity skips at layer4.1), last.pt of run0 (last, step 6)"
    )

    packed = pack_run(runs[0], tmp_path / "same", repo_id="org/name", license="mit")
    for name in FILES:  # what was uploaded is what rrn pack writes for that repository
        assert files[name] == (packed.folder / name).read_bytes(), name
    card = files["README.md"].decode()
    assert "rrn predict hf://org/name video.mp4" in card and "\n# name\n" in card
    said = capsys.readouterr().out
    assert "https://huggingface.co/org/name/commit/abc123" in said
    assert "load it with: rrn predict hf://org/name VIDEO" in said


def test_rrn_push_without_a_token_stops_before_packing(packages, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    hub = RecordedHub().install(monkeypatch)
    assert main(["push", str(packages[0][0]), "org/name"]) == 2
    err = capsys.readouterr().err
    assert "needs a Hugging Face token" in err and "HF_TOKEN" in err and "hf auth login" in err
    assert hub.calls == []


def test_rrn_push_names_a_missing_run_or_results_file_before_asking_for_a_token(
    packages, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    hub = RecordedHub().install(monkeypatch)
    assert main(["push", str(tmp_path / "nope"), "org/name"]) == 2
    assert "nope: no such checkpoint file or run directory" in capsys.readouterr().err
    typo = tmp_path / "eval_typo.json"
    assert main(["push", str(packages[0][0]), "org/name", "--results", str(typo)]) == 2
    assert f"--results {typo}: cannot read it" in capsys.readouterr().err
    assert hub.calls == []


def test_rrn_push_says_in_one_line_when_the_hub_refuses(packages, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_from_the_environment")
    refused = huggingface_hub.errors.HfHubHTTPError(
        "403 Forbidden: you have no write access to org/name", response=mock.Mock(headers={})
    )
    RecordedHub(refuse=refused).install(monkeypatch)
    assert main(["push", str(packages[0][0]), "org/name"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rrn push: error: uploading to org/name: 403 Forbidden: you have no write access to org/name"
    )


def test_rrn_push_takes_no_token_on_the_command_line(packages, capsys):
    with pytest.raises(SystemExit):
        main(["push", "--help"])
    assert "--token" not in capsys.readouterr().out
    assert main(["push", str(packages[0][0]), "not a repo"]) == 2
    assert "'not a repo' is not a Hub id; expected org/name" in capsys.readouterr().err


def test_rrn_push_uploads_a_package_folder_as_it_is_once_it_loads(
    packages, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_from_the_environment")
    folder = tmp_path / "edited"
    shutil.copytree(packages[1][0], folder)
    card = (folder / "README.md").read_text().replace("## Limits", "## Limits\n\nOur own words.")
    (folder / "README.md").write_text(card)
    hub = RecordedHub().install(monkeypatch)
    assert main(["push", str(folder), "org/name"]) == 0
    (_, _, files, message, _) = hub.calls[-1]
    assert files == {name: (folder / name).read_bytes() for name in FILES}
    assert "Our own words." in files["README.md"].decode()
    assert (
        message
        == "rrn push: resnet18 (identity skips at layer4.1), last.pt of edited (last, step 6)"
    )
    assert f"pushed {folder} (resnet18" in capsys.readouterr().out

    config = json.loads((folder / "config.json").read_text())
    config["classes"].append("Extra")
    (folder / "config.json").write_text(json.dumps(config))
    hub.calls.clear()
    assert main(["push", str(folder), "org/name"]) == 2  # refused before anything is sent
    assert "2 outputs and 3 classes" in capsys.readouterr().err and hub.calls == []


# ------------------------------------------------------------------- fine-tuning from one
def test_rrn_train_starts_from_a_package_folder_or_hf_name(offline_cache, synth, tmp_path):
    """--weights takes what every RUN_OR_CKPT command takes: the package's weights, its
    classifier kept for the same classes and re-initialised for others."""
    from rrn.train.builders import create_model, with_resolved_skips
    from runs import tiny_train_argv
    from runs import train_config as config_of

    runs, folders, _ = offline_cache
    saved = rrn.load_model(runs[0]).state_dict()
    classes = rrn.load_model(runs[0]).classes
    for given in (str(folders[0]), "hf://org/name"):
        cfg = with_resolved_skips(config_of(tiny_train_argv(synth, tmp_path, "--weights", given)))
        same, note = create_model(cfg, len(classes), classes=classes)
        assert all(torch.equal(v, saved[k]) for k, v in same.state_dict().items()), given
        assert note == f"weights of {given}"
        other, note = create_model(cfg, len(classes), classes=[f"x{c}" for c in classes])
        assert torch.equal(other.state_dict()["conv1.weight"], saved["conv1.weight"])
        assert not torch.equal(other.state_dict()["fc.weight"], saved["fc.weight"])
        assert note == (
            f"weights of {given} (classifier re-initialised: the weights were trained on other "
            "classes)"
        )


def test_rrn_train_from_a_package_of_another_architecture_is_one_line(
    offline_cache, synth, tmp_path, capsys
):
    from runs import tiny_train_argv

    argv = tiny_train_argv(synth, tmp_path / "run", "--weights", "hf://org/name", "--epochs", "1")
    argv[argv.index("resnet18")] = "resnet34"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "rrn train: error: --weights hf://org/name holds a resnet18, this run builds a resnet34: "
        "train with --arch resnet18, or give weights of a resnet34"
    )

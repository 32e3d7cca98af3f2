"""Every registered dataset format, iterated as torchvision's tests iterate its models: parsed from
its `rrn synth --layout` miniature (or a small hand-written fixture when it has no synth layout),
accepted by `rrn check-data`, and each trait of its record obeyed by the code that asks it. A new
format in rrn.data.formats.FORMATS is covered here without editing this file."""

import ast
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from rrn.choices import DatasetName, names
from rrn.cli import build_parser, main
from rrn.commands.flags import flag_overrides
from rrn.config import ConfigError, DataConfig, resolve_config
from rrn.data.formats import FORMATS, dataset_format, flip_changes_class, synth_layouts
from rrn.data.formats.base import DatasetFormat
from rrn.data.splits import SplitError, load_split, split_problems
from rrn.data.synth import write_video

SRC = Path(__file__).resolve().parents[1] / "src" / "rrn"
DOCS = Path(__file__).resolve().parents[1] / "docs"
TINY = ["--classes", "2", "--videos-per-class", "2", "--frames", "4", "--size", "16"]


def _video(path: Path, shade: int) -> None:
    frames = np.stack([np.full((16, 16, 3), (shade + 30 * i) % 256, np.uint8) for i in range(4)])
    write_video(path, frames, codec="ffv1")


def _hmdb51(out: Path) -> list[str]:
    """Two classes, one train (1) and one test (2) video each, and an unused one (0)."""
    for k, name in enumerate(("clap", "wave")):
        _video(out / "videos" / name / f"{name}_a.avi", 40 * k)
        _video(out / "videos" / name / f"{name}_b.avi", 40 * k + 20)
        (out / f"{name}_test_split1.txt").write_text(
            f"{name}_a.avi 1\n{name}_b.avi 2\n{name}_gone.avi 0\n"
        )
    return ["--dataset", "hmdb51", "--data-root", str(out / "videos"), "--split-dir", str(out)]


def _list(out: Path) -> list[str]:
    """Two classes named by a classInd.txt, list files of 'relative/path label' lines."""
    for k in range(2):
        _video(out / "clips" / f"c{k}" / "one.mp4", 40 * k)
        _video(out / "clips" / f"c{k}" / "two.mkv", 40 * k + 20)
    (out / "train.txt").write_text("c0/one.mp4 0\nc1/one.mp4 1\n")
    (out / "test.txt").write_text("c0/two.mkv 0\nc1/two.mkv 1\n")
    (out / "classInd.txt").write_text("1 cat\n2 dog\n")
    lists = ["--train-list", str(out / "train.txt"), "--test-list", str(out / "test.txt")]
    return ["--dataset", "list", "--data-root", str(out / "clips"), "--split-dir", str(out), *lists]


#: Formats without a synth layout: a writer of 2 classes x (1 train + 1 test) videos -> flags.
FIXTURES = {"hmdb51": _hmdb51, "list": _list}


def _miniature(name: str, out: Path, capsys) -> list[str]:
    """The flags that read a 2-class, 4-video miniature of format ``name`` written in ``out``."""
    if FORMATS[name].synth is not None:
        assert main(["synth", str(out), *TINY, "--layout", name]) == 0
        said = capsys.readouterr().out
        flags = json.loads((out / "rrn_synth.json").read_text())["flags"]
        assert f"in the {name} layout" in said and f"read it with: {flags}" in said
        return shlex.split(flags)
    if name not in FIXTURES:
        pytest.fail(f"format {name!r} has no synth layout: give it one, or a fixture in FIXTURES")
    out.mkdir()
    return FIXTURES[name](out)


# ------------------------------------------------------------------ one registry, one list of names
def test_dataset_name_and_the_cli_choices_are_the_registry():
    assert names(DatasetName) == tuple(FORMATS)
    assert all(isinstance(f, DatasetFormat) and f.name == n for n, f in FORMATS.items())
    commands = build_parser()._subparsers._group_actions[0].choices

    def flag(command, name):
        return next(a for a in commands[command]._actions if name in a.option_strings)

    for command in ("train", "check-data", "cache"):  # the Literal's names, checked by config
        assert flag(command, "--dataset").metavar == "{" + ",".join(FORMATS) + "}"
    with pytest.raises(
        ConfigError, match=f"--dataset: 'ucf100' is not one of {', '.join(FORMATS)}"
    ):
        resolve_config([("flags", {"data": {"dataset": "ucf100"}})])
    layouts = [n for n, f in FORMATS.items() if f.synth is not None]
    assert list(flag("synth", "--layout").choices) == layouts == list(synth_layouts())
    assert all(name in flag("train", "--dataset").help for name in FORMATS), "help names each"
    assert "ucf101" in layouts  # the default layout of rrn synth


def test_an_unknown_format_is_refused_with_the_list():
    with pytest.raises(SplitError, match="unknown dataset 'ucf100'; choose ucf101, hmdb51"):
        dataset_format("ucf100")
    with pytest.raises(ValueError, match="--layout must be one of ucf101,"):
        from rrn.data.synth import make_synthetic_dataset

        make_synthetic_dataset("/nonexistent", layout="ucf100")


# ------------------------------------------------------------------ every format, end to end
@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_parses_its_miniature_and_check_data_passes_it(name, tmp_path, capsys):
    fmt = FORMATS[name]
    flags = _miniature(name, tmp_path / "data", capsys)
    assert main(["check-data", *flags, "--no-progress"]) == 0
    out = capsys.readouterr().out
    # a temporal format's untrimmed video holds an action of every class (and Background)
    classes, per_side = (3, 1) if fmt.temporal else (2, 2)
    assert f"{classes} classes, {per_side} train + {per_side} test videos present, 0 missing" in out
    assert f"OK: {2 * per_side} videos, no problems" in out
    cfg = resolve_config([("flags", flag_overrides(build_parser().parse_args(["train", *flags])))])
    assert cfg.data.dataset == name
    split = cfg.data.load_split()
    assert len(split.classes) == classes and len(set(split.classes)) == classes
    assert (split.classes[0] == "Background") == fmt.background
    assert (split.annotations is not None) == fmt.temporal
    for side in (split.train, split.test):  # one video of each class on each side
        if fmt.temporal:  # labels per frame: every class annotated on each side
            assert [r.label for r in side] == [-1] * per_side
            assert sorted({i.label for r in side for i in r.annotation.intervals}) == [1, 2]
        else:
            assert sorted(r.label for r in side) == [0, 1]
            assert all(r.annotation is None for r in side)
        assert all(r.path.is_dir() == fmt.frame_folders for r in side)
        assert all(fmt.frame_folders or r.path.suffix in fmt.extensions for r in side)
    assert not {r.path for r in split.train} & {r.path for r in split.test}
    if fmt.temporal:  # rrn check-data says how the frames are labelled, side by side
        assert "train frames (sampled at 4/s): " in out and "test frames (sampled at 4/s)" in out


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.synth is None])
def test_rrn_synth_refuses_a_format_without_a_layout(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", str(tmp_path / "out"), "--layout", name])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ each trait, as the code asks it
@pytest.mark.parametrize("name", list(FORMATS))
def test_fps_is_refused_exactly_for_formats_without_timestamps(name):
    if FORMATS[name].timestamps:
        assert DataConfig(dataset=name, fps=5).fps == 5
    else:
        with pytest.raises(ConfigError, match=f"--fps 5 with --dataset {name}: .*no timestamps"):
            DataConfig(dataset=name, fps=5)


@pytest.mark.parametrize("name", list(FORMATS))
def test_flips_are_warned_against_for_direction_dependent_classes(name, tmp_path):
    data = DataConfig(dataset=name, data_root=str(tmp_path))
    why = flip_changes_class(data)
    assert bool(why) == FORMATS[name].direction_dependent
    (tmp_path / "rrn_synth.json").write_text("{}")  # rrn synth's data: classes are directions
    synth = flip_changes_class(data)
    assert synth and ("rrn synth's data" in synth) != FORMATS[name].direction_dependent


@pytest.mark.parametrize("name", list(FORMATS))
def test_list_files_are_asked_for_as_the_format_uses_them(name, tmp_path):
    uses = FORMATS[name].list_files
    one = ["--dataset", name, "--train-list", str(tmp_path / "train.txt")]
    args = flag_overrides(build_parser().parse_args(["train", *one]))
    if uses == "unused":
        assert resolve_config([("flags", args)]).data.train_list.endswith("train.txt")
        return
    with pytest.raises(ConfigError, match=f"--dataset {name} needs both --train-list and"):
        resolve_config([("flags", args)])
    neither = flag_overrides(build_parser().parse_args(["train", "--dataset", name]))
    if uses == "optional":
        assert resolve_config([("flags", neither)]).data.test_list is None
    else:
        with pytest.raises(ConfigError, match="needs both"):
            resolve_config([("flags", neither)])


@pytest.mark.parametrize("name", list(FORMATS))
def test_split_numbers_past_the_official_splits_are_refused(name, tmp_path):
    fmt = FORMATS[name]
    with pytest.raises(SplitError, match=f"--split {fmt.splits + 1} must be 1|--split must be 1"):
        load_split(name, tmp_path, split=fmt.splits + 1)


def test_a_record_with_contradicting_traits_is_refused():
    parse = FORMATS["list"].parse
    with pytest.raises(ValueError, match="one lower-case word"):
        DatasetFormat(name="My Set", parse=parse, annotations="a", videos="b")
    with pytest.raises(ValueError, match="frame folders have no video extensions"):
        DatasetFormat(name="x", parse=parse, annotations="a", videos="b", frame_folders=True)


def test_training_warns_against_flips_exactly_where_the_trait_says(tmp_path):
    """rrn train's note on flips comes from the format's record, or rrn synth's marker file."""
    from rrn.train.loop import _note_data

    said = []

    class Run:  # the methods of RunDir that _note_data uses
        path = tmp_path

        def say(self, text):
            said.append(text)

        def warn(self, text):  # the flip note is a warning
            said.append(text)

        def log(self, record):
            pass

    lists = {"train_list": "train.txt", "test_list": "test.txt"}  # ignored where unused
    for name, fmt in FORMATS.items():
        data = {"dataset": name, "data_root": str(tmp_path), **lists}
        cfg = resolve_config([("flags", {"data": data})])
        said.clear()
        _note_data(Run(), cfg, [])
        _note_data(Run(), cfg.replace(data={"hflip": False}), [])  # never without flips
        want = [f"horizontal flips on --dataset {name}, whose classes depend on direction"]
        assert [s[s.index("horizontal") : s.index(" turn")] for s in said] == (
            want if fmt.direction_dependent else []
        )
    (tmp_path / "rrn_synth.json").write_text("{}")
    said.clear()
    _note_data(Run(), resolve_config([("flags", {"data": {"data_root": str(tmp_path)}})]), [])
    assert len(said) == 1 and f"rrn synth's data ({tmp_path})" in said[0]


# ------------------------------------------------------------------ nothing else branches on a name
def name_branches(root: Path, format_names) -> list[str]:
    """``file:line`` of every comparison with a format's name (``x == "ssv2"``, ``x in ("a",
    "b")``) and every dict keyed by format names, outside ``data/formats/``: a trait belongs in
    the format's record."""
    out = []
    for path in sorted(root.rglob("*.py")):
        if "formats" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = [node.left, *node.comparators]
                consts += [
                    e
                    for c in node.comparators
                    if isinstance(c, ast.Tuple | ast.Set | ast.List)
                    for e in c.elts
                ]
            elif isinstance(node, ast.Dict):
                consts = [k for k in node.keys if k is not None]
            else:
                continue
            if any(isinstance(c, ast.Constant) and c.value in format_names for c in consts):
                out.append(f"{path.relative_to(root)}:{node.lineno}")
    return list(dict.fromkeys(out))  # a line with two branches once


def test_no_code_outside_the_formats_branches_on_a_format_name():
    assert not name_branches(SRC, set(FORMATS))


def test_the_name_branch_checker_catches_a_planted_branch(tmp_path):
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "x.py").write_text("T = {'ssv2': 1}\n")  # the registry's own home
    (tmp_path / "a.py").write_text("def f(d):\n    return d == 'ssv2' or d in ('rawframes',)\n")
    (tmp_path / "b.py").write_text("W = {'kinetics': 1}\nDEFAULT = 'ucf101'\n")
    assert name_branches(tmp_path, set(FORMATS)) == ["a.py:2", "b.py:1"]


def test_docs_name_every_format_and_how_to_add_one():
    text = (DOCS / "data.md").read_text()
    assert all(f"| `{name}`" in text for name in FORMATS), "a row per format in docs/data.md"
    assert "## Adding a dataset format" in text and "test_data_formats_registry.py" in text


def test_the_docs_example_format_works_once_registered(tmp_path, monkeypatch):
    """The module docs/data.md shows, registered, is read by load_split and its errors collected."""
    text = (DOCS / "data.md").read_text().split("## Adding a dataset format")[1]
    namespace: dict = {}
    exec(text.split("```python\n")[1].split("```")[0], namespace)
    monkeypatch.setitem(FORMATS, "mine", namespace["FORMAT"])
    (tmp_path / "classInd.txt").write_text("1 cat\n2 dog\n")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 7\n")
    (tmp_path / "test.txt").write_text("d.mp4 1\n")
    for name in "abd":
        _video(tmp_path / f"{name}.mp4", 0)
    with pytest.raises(SplitError, match=r"train.txt:3: expected '<video> <label>'"):
        load_split("mine", tmp_path)
    split, problems = split_problems("mine", tmp_path)
    assert split.classes == ["cat", "dog"] and [r.label for r in split.train] == [0, 1]
    assert [r.video_id for r in split.test] == ["d"] and len(problems) == 1

"""Config: defaults < YAML < flags, validation, unknown keys/flags with suggestions."""

import argparse
import dataclasses

import pytest
import yaml

from rrn.commands.flags import SuggestingArgumentParser, add_config_arguments, flag_overrides
from rrn.config import (
    ConfigError,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    field_docs,
    load_yaml,
    resolve_config,
)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return flag_overrides(parser.parse_args(argv))


def test_precedence_defaults_yaml_flags(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  epochs: 7\nbatch_size: 4\n")  # nested and flat
    cfg = resolve_config([("exp.yaml", load_yaml(path)), ("flags", parse(["--lr", "0.5"]))])
    assert cfg.optim.lr == 0.5  # flag beats YAML
    assert cfg.optim.epochs == 7  # YAML beats default
    assert cfg.optim.batch_size == 4
    assert cfg.optim.weight_decay == OptimConfig().weight_decay  # default kept
    # YAML 1.1 reads "1e-3" as a string; it still becomes a float
    assert resolve_config([("y", load_yaml(path))]).optim.lr == pytest.approx(1e-3)


def test_round_trip_through_yaml():
    cfg = resolve_config([("flags", parse(["--skip", "block4,midblock4", "--freeze", "stem"]))])
    again = TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert again.model.skip == ("block4", "midblock4")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"optim": {"lrate": 1}}, "did you mean 'optim.lr'"),
        ({"epoch": 3}, "did you mean 'epochs'"),
        ({"modle": {"arch": "resnet18"}}, "unknown key 'modle'"),
    ],
)
def test_unknown_yaml_key_suggests(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_unknown_flag_suggests(capsys):
    parser = SuggestingArgumentParser(prog="rrn train")
    add_config_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--learning-rat", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--learning-rat" in err
    with pytest.raises(SystemExit):
        parser.parse_args(["--epoch-s", "1"])
    assert "did you mean --epochs" in capsys.readouterr().err


def test_update_fraction_and_chunks_have_one_meaning_each():
    assert resolve_config([("flags", parse(["--update-chunks", "64"]))]).optim.update_chunks == 64
    cfg = resolve_config([("flags", parse(["--update-fraction", "1"]))]).optim
    assert cfg.update_fraction == 1.0 and cfg.chunks_per_step(10) == 10  # "1" is 100%, not 1 chunk
    with pytest.raises(ConfigError, match="fraction"):
        OptimConfig(update_fraction=1.5)
    with pytest.raises(ConfigError, match=">= 1"):
        OptimConfig(update_chunks=0)


def test_renamed_update_every_is_translated_and_warned():
    import warnings

    with pytest.warns(FutureWarning, match="exp.yaml: 'optim.update_every' is deprecated"):
        cfg = resolve_config([("exp.yaml", {"optim": {"update_every": 64}})])
    assert (cfg.optim.update_chunks, cfg.optim.update_fraction) == (64, 0.01)
    with pytest.warns(FutureWarning, match="--update-every is deprecated"):
        assert (
            resolve_config([("flags", parse(["--update-every", "1.0"]))]).optim.update_fraction
            == 1.0
        )
    # a checkpoint written before the rename: translated quietly, its retired keys dropped
    old = {"optim": {"update_every": 0.05}, "run": {"fault": None, "seed": 3}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = resolve_config([("last.pt", old)], quiet=["last.pt"])
    assert cfg.optim.update_fraction == 0.05 and cfg.run.seed == 3
    with pytest.raises(ConfigError, match="unknown key 'run.fault'"):
        resolve_config([("exp.yaml", {"run": {"fault": "crash@3"}})])  # not a setting any more


def test_context_and_skip_must_agree():
    assert ModelConfig(context=3).skip is None  # resolved against the arch at build time
    ModelConfig(skip=("block4", "midblock4"), context=3)
    with pytest.raises(ConfigError, match="--context 2 needs 1"):
        ModelConfig(skip=("block4", "midblock4"), context=2)
    assert resolve_config([("flags", parse(["--skip", "none"]))]).model.skip == ()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--arch", "resnet51"], "did you mean 'resnet50'"),
        (["--schedule", "step"], "--lr-milestones"),
        (
            ["--dataset", "list", "--train-list", "a.txt"],
            "both --train-list and --test-list, or neither",
        ),
        (["--device", "gpu"], "--device must be"),
        (["--freeze", "layer5"], "--freeze"),
    ],
)
def test_bad_values_name_the_flag(argv, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config([("flags", parse(argv))])


def test_every_field_is_documented():
    from rrn.config import SECTIONS

    for cls in SECTIONS.values():
        docs = field_docs(cls)
        for name in cls.__dataclass_fields__:
            assert docs.get(name), f"{cls.__name__}.{name} has no doc string"
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert "Adam learning rate" in parser.format_help()
    assert "--update-every" not in parser.format_help()  # the old spelling works, unadvertised


def test_fps_and_cache_dir_help_say_what_the_data_layer_does():
    from rrn.config import DataConfig

    docs = field_docs(DataConfig)
    # decode_video ignores sample_every when fps is given (they are alternatives, not a chain)
    assert "instead of" in docs["fps"] and "before --sample-every" not in docs["fps"]
    # resolve_cache_dir falls back to <data-root>/.rrn-cache once rrn cache has built it
    assert ".rrn-cache" in docs["cache_dir"] and "default: no cache" not in docs["cache_dir"]


def test_bool_flags():
    cfg = resolve_config([("flags", parse(["--no-progress", "--sync-bn"]))])
    assert cfg.run.progress is False and cfg.model.sync_bn is True


def test_every_command_declares_a_shared_flag_once():
    """A flag that several commands take has one help text and one default: the config's."""
    from rrn.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    seen: dict[str, dict[str, str]] = {}
    for name, sub in commands.items():
        for action in sub._actions:
            for flag in action.option_strings:
                seen.setdefault(flag, {})[name] = (action.help, action.default)
    shared = {f: by for f, by in seen.items() if len(by) > 1 and f not in ("-h", "--help")}
    for flag in (
        "--frame-size",
        "--sample-every",
        "--fps",
        "--decoder",
        "--data-root",
        "--device",
        "--workers",
        "--progress",
        "--cache-dir",
        "--which",
    ):
        assert len(shared[flag]) >= 2, flag
    for flag, by in shared.items():
        if flag in (
            "--out",
            "--seed",
            "--split",
            "--splits",
            "--batch-size",
            "--json",
            "--quick",
            "--format",
            "--epochs",
            "--lr",
            "--weight-decay",
        ):
            continue  # same name, another meaning per command (documented in each --help)
        helps = {h.split(" [")[0] for h, _ in by.values()}
        assert len(helps) == 1, (flag, by)
        assert {d for _, d in by.values()} == {argparse.SUPPRESS}, flag  # defaults: the config's
    assert "--frame-size" in seen and set(seen["--frame-size"]) >= {
        "train",
        "cache",
        "features",
        "model-info",
    }


def test_every_choice_is_declared_once_as_a_literal_and_checked_from_it():
    from rrn.choices import Arch, CacheFormat, DatasetName, names
    from rrn.data.cache import CACHE_FORMATS
    from rrn.data.formats import FORMATS
    from rrn.model import ARCHS

    assert ARCHS == names(Arch) and CACHE_FORMATS == names(CacheFormat)
    assert list(FORMATS) == list(names(DatasetName))  # every name has its format, one registry
    with pytest.raises(ConfigError, match=r"--arch: 'resnet19' is not one of resnet18, .*resnet18"):
        resolve_config([("flags", {"model": {"arch": "resnet19"}})])
    with pytest.raises(ConfigError, match="--freeze: 'layer5' is not one of stem, layer1"):
        resolve_config([("flags", {"model": {"freeze": "stem,layer5"}})])


# Numeric settings: every int/float field of every settings dataclass declares its Range; NaN,
# infinities and out-of-range values fail when the settings are built (YAML, checkpoint, code)
# and when the command line is parsed, naming the flag. Generic over the schema: a new numeric
# field is covered without editing these tests.


def _schema_classes():
    import rrn.config.schema as config

    return [
        cls
        for cls in vars(config).values()
        if dataclasses.is_dataclass(cls)
        and cls.__module__ == config.__name__
        and hasattr(cls, "__post_init__")
        and cls.__name__.endswith("Config")
        and cls is not config.TrainConfig
    ]


def _numeric_fields():
    from rrn.config import field_types, strip_optional

    for cls in _schema_classes():
        for f in dataclasses.fields(cls):
            if strip_optional(field_types(cls)[f.name])[0] in (int, float):
                yield cls, f.name


def _bad_values(cls, name):
    from rrn.config import field_range, field_types, strip_optional

    tp = strip_optional(field_types(cls)[name])[0]
    r = field_range(cls, name)
    bad = ["nan", "inf", "-inf"] if tp is float else []
    if r.low is not None:
        bad.append(str(r.low if r.low_open else (r.low - 1 if tp is int else r.low - 0.5)))
    if r.high is not None:
        bad.append(str(r.high if r.high_open else (r.high + 1 if tp is int else r.high + 0.5)))
    return bad


NUMERIC = list(_numeric_fields())


def test_the_schema_has_numeric_settings_and_each_declares_its_range():
    from rrn.config import field_range

    assert len(NUMERIC) > 40 and len({cls for cls, _ in NUMERIC}) >= 9
    missing = [f"{cls.__name__}.{name}" for cls, name in NUMERIC if field_range(cls, name) is None]
    assert not missing, f"numeric settings without a Range: {missing}"


@pytest.mark.parametrize("cls, name", NUMERIC, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC])
def test_a_non_finite_or_out_of_range_setting_fails_naming_its_flag(cls, name):
    from rrn.config import build_dataclass, flag_name

    bad = _bad_values(cls, name)
    assert bad, "every range has a bound"
    for value in bad:
        with pytest.raises(ConfigError, match=f"^--{flag_name(name)}[: ]"):
            build_dataclass(cls, [("flags", {name: value})])
    default = getattr(cls(), name)  # the default itself is valid
    assert build_dataclass(cls, [("flags", {name: default})])


def test_every_commands_numeric_flags_are_checked_as_the_command_line_is_parsed(capsys):
    from rrn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for command, p in sub.choices.items():
        positionals = ["x" for a in p._actions if not a.option_strings]
        for action in p._actions:
            section, dot, name = (action.dest or "").partition(".")
            fields = {n for _, n in NUMERIC}
            if not dot or name not in fields or action.type is None:
                continue
            for value in ("nan", "inf", "-1e300"):
                with pytest.raises(SystemExit) as exit_:
                    p.parse_args([*positionals, action.option_strings[0], value])
                assert exit_.value.code == 2
                err = capsys.readouterr().err
                assert f"argument {action.option_strings[0]}" in err, (command, err)
            checked += 1
    assert checked > 60  # every command's numeric flags, over every command


def test_out_of_range_flags_say_the_range(capsys):
    from rrn.cli import main

    for argv, said in (
        (["train", "--split", "4"], "argument --split: must be in 1..3, got 4"),
        (["train", "--lr", "-1"], "argument --lr: must be > 0, got -1"),
        (["train", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
        (["serve", "run", "--max-wait-ms", "inf"], "argument --max-wait-ms: must be a finite"),
        (["serve", "run", "--source-fps", "nan"], "argument --source-fps: must be a finite"),
        (["stream", "ckpt", "src", "--min-segment", "nan"], "--min-segment: must be a finite"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and said in capsys.readouterr().err, argv


def test_a_token_is_long_and_has_no_spaces():
    from rrn.config import ServeConfig

    for token in (" ", "short", " " + "a" * 20, "a" * 10 + " " + "b" * 10):
        with pytest.raises(ConfigError, match="--token must be at least 16 visible"):
            ServeConfig(token=token)
    assert ServeConfig(token="0123456789abcdef").token

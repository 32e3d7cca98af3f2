"""Config: defaults < YAML < flags, validation, unknown keys/flags with suggestions."""

import argparse

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
        (["--split", "4"], "--split must be 1, 2 or 3"),
        (["--lr", "-1"], "--lr must be a positive"),
        (["--epochs", "two"], "--epochs: expected an integer"),
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
    from rrn.data.formats import PARSERS
    from rrn.model import ARCHS

    assert ARCHS == names(Arch) and CACHE_FORMATS == names(CacheFormat)
    assert list(PARSERS) == list(names(DatasetName))  # every name has its parser, one registry
    with pytest.raises(ConfigError, match=r"--arch: 'resnet19' is not one of resnet18, .*resnet18"):
        resolve_config([("flags", {"model": {"arch": "resnet19"}})])
    with pytest.raises(ConfigError, match="--freeze: 'layer5' is not one of stem, layer1"):
        resolve_config([("flags", {"model": {"freeze": "stem,layer5"}})])

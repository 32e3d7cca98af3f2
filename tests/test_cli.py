"""The command line's contract (rrn.cli): a user error is one line and exit 2, a bug is a
traceback and exit 1; every sub-command suggests the closest flag; warnings go to stderr, info
to stdout, -q/-v choose; and the console is given back when main() returns.

The commands here run with a planted library function (rrn synth's writer replaced), so no
video is written and each case is about the command line alone.
"""

import argparse
import logging
import warnings

import pytest

import rrn.data.synth
from rrn.checkpoint import CheckpointError
from rrn.cli import build_parser, main
from rrn.config import ConfigError
from rrn.data.cache_entries import CacheEntryError
from rrn.data.decode import VideoDecodeError
from rrn.data.formats.text import SplitError
from rrn.errors import UserError
from rrn.train.lock import RunLocked
from rrn.train.step import NonFiniteLossError


def plant(monkeypatch, behaviour):
    """``rrn synth``'s library call replaced by ``behaviour`` (called with no argument)."""

    def planted(*args, **kwargs):
        return behaviour()

    monkeypatch.setattr(rrn.data.synth, "make_synthetic_dataset", planted)


def raising(err: Exception):
    def behaviour():
        raise err

    return behaviour


def synth(tmp_path, *flags: str) -> list[str]:
    return [*flags, "synth", str(tmp_path / "out")]


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("verbose", [(), ("-v",)])
def test_a_user_error_is_one_line_and_exit_2_even_with_verbose(
    tmp_path, capsys, monkeypatch, verbose
):
    plant(monkeypatch, raising(ConfigError("--frames must be >= 2, got 1")))
    assert main(synth(tmp_path, *verbose)) == 2
    err = capsys.readouterr().err
    assert err == "rrn synth: error: --frames must be >= 2, got 1\n"


def test_a_planted_value_error_is_a_bug_with_its_traceback_and_exit_1(
    tmp_path, capsys, monkeypatch
):
    plant(monkeypatch, raising(ValueError("cannot reshape tensor of 6 elements into (4, -1)")))
    assert main(synth(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "in planted" in err  # where the bug is: the frame of the function that raised
    assert "ValueError: cannot reshape tensor of 6 elements into (4, -1)" in err
    assert err.rstrip().splitlines()[-1].startswith("rrn synth: internal error: this is a bug")


def test_a_planted_key_error_is_a_bug_too(tmp_path, capsys, monkeypatch):
    plant(monkeypatch, raising(KeyError("model")))
    assert main(synth(tmp_path)) == 1
    assert "KeyError: 'model'" in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [False, True])
def test_an_os_error_is_one_line_and_exit_2_with_its_traceback_under_verbose(
    tmp_path, capsys, monkeypatch, verbose
):
    plant(monkeypatch, raising(PermissionError(13, "Permission denied", "/data/out")))
    assert main(synth(tmp_path, *(["-v"] if verbose else []))) == 2
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == (
        "rrn synth: error: [Errno 13] Permission denied: '/data/out'"
    )
    assert ("Traceback" in err) is verbose


@pytest.mark.parametrize(
    "error, caught_before",
    [
        (ConfigError("x"), ValueError),
        (CheckpointError("x"), ValueError),
        (SplitError("x"), ValueError),
        (CacheEntryError("f", "x"), ValueError),
        (RunLocked("x"), FileExistsError),
        (VideoDecodeError("v.avi", "x"), RuntimeError),
    ],
)
def test_every_error_a_person_fixes_is_a_user_error_and_still_what_callers_caught(
    tmp_path, capsys, monkeypatch, error, caught_before
):
    assert isinstance(error, UserError) and isinstance(error, caught_before)
    plant(monkeypatch, raising(error))
    assert main(synth(tmp_path)) == 2
    assert capsys.readouterr().err == f"rrn synth: error: {error}\n"


def test_a_diverged_run_is_not_a_user_error():
    assert not issubclass(NonFiniteLossError, UserError)  # rrn train says it, exit 1


# ---------------------------------------------------------------------------- flags
def subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def _with_positionals(parser: argparse.ArgumentParser) -> list[str]:
    """A value for each positional argument the parser requires."""
    return [
        "x"
        for a in parser._actions
        if not a.option_strings and a.nargs not in ("?", "*", argparse.SUPPRESS)
    ]


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_command_suggests_the_closest_flag(name, capsys):
    parser = subcommands()[name]
    flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    flag = max(flags, key=len)  # a doubled last letter: not a prefix of any flag
    with pytest.raises(SystemExit) as exc:
        main([name, *_with_positionals(parser), flag + flag[-1]])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"rrn {name}: error: unrecognized argument {flag + flag[-1]}; did you mean {flag}?" in err
    )


def test_every_command_is_checked_for_suggestions():
    from rrn.cli import COMMANDS

    assert sorted(subcommands()) == sorted(name for name, _ in COMMANDS)


# ---------------------------------------------------------------------------- the console
def chatty():
    """A library that logs at every level and warns as Python does."""
    log = logging.getLogger("rrn.data.synth")
    log.debug("rrn: the debug detail")
    log.info("rrn: the info line")
    log.warning("rrn: warning: the warning line")
    warnings.warn("the old spelling is deprecated", FutureWarning, stacklevel=1)
    raise UserError("stop here")  # nothing written


@pytest.mark.parametrize("where", ["before", "after"])  # -q/-v before or after the command
@pytest.mark.parametrize(
    "flags, shown",
    [
        ((), {"info"}),
        (("-q",), set()),
        (("-v",), {"info", "debug"}),
    ],
)
def test_quiet_and_verbose_choose_what_stdout_shows_and_warnings_always_go_to_stderr(
    tmp_path, capsys, monkeypatch, flags, shown, where
):
    plant(monkeypatch, chatty)
    command = ["synth", str(tmp_path / "out")]
    assert main([*flags, *command] if where == "before" else [*command, *flags]) == 2
    out, err = capsys.readouterr()
    assert {w for w in ("info", "debug") if f"rrn: the {w}" in out} == shown
    assert err.splitlines() == [
        "rrn: warning: the warning line",
        "rrn: warning: the old spelling is deprecated",
        "rrn synth: error: stop here",
    ]


def test_the_console_is_given_back_when_main_returns(tmp_path, capsys, monkeypatch):
    logger = logging.getLogger("rrn")
    before = (list(logger.handlers), logger.level, logger.propagate, warnings.showwarning)
    plant(monkeypatch, chatty)
    assert main(synth(tmp_path, "-v")) == 2
    assert main(synth(tmp_path)) == 2  # twice: no handler piles up either
    capsys.readouterr()
    assert (list(logger.handlers), logger.level, logger.propagate, warnings.showwarning) == before
    logging.getLogger("rrn.checkpoint").info("library info after the command")
    assert "library info" not in capsys.readouterr().out  # not on stdout for a later caller


def test_a_bug_gives_the_console_back_too(tmp_path, capsys, monkeypatch):
    logger = logging.getLogger("rrn")
    handlers = list(logger.handlers)
    plant(monkeypatch, raising(IndexError("list index out of range")))
    assert main(synth(tmp_path)) == 1
    assert logger.handlers == handlers and logger.propagate


def test_library_logs_reach_pytest_after_main_ran(tmp_path, caplog, monkeypatch):
    plant(monkeypatch, raising(UserError("x")))
    main(synth(tmp_path))
    with caplog.at_level(logging.WARNING, logger="rrn"):
        logging.getLogger("rrn.data.datasets").warning("rrn: warning: skipping video v")
    assert caplog.messages == ["rrn: warning: skipping video v"]

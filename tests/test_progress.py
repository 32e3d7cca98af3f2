"""Progress bars belong to a terminal (rrn.progress): on one, training, evaluation and caching
draw tqdm bars on stderr; in a log file (stderr not a terminal) no carriage-return frame is
written, and stdout has the one line each epoch or pass ends with."""

import io
import sys

import pytest

from rrn.cli import main
from rrn.progress import on_terminal, progress_bar
from runs import tiny_train_argv


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_a_bar_is_drawn_on_a_terminal_only_and_iterates_either_way(monkeypatch, terminal):
    stream = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert on_terminal() is terminal
    assert list(progress_bar(range(5), desc="eval", unit="batch")) == [0, 1, 2, 3, 4]
    text = stream.getvalue()
    if terminal:
        assert "\r" in text and "eval: 100%" in text and "5/5" in text
    else:
        assert text == ""


def test_no_progress_draws_nothing_on_a_terminal_either(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress_bar(enabled=False, total=3, desc="caching")
    bar.update(3)
    bar.set_postfix(loss="0.1")
    bar.close()
    assert stream.getvalue() == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_training_draws_bars_on_a_terminal_and_one_line_per_epoch_in_a_log(
    synth, tmp_path, capsys, monkeypatch, terminal
):
    argv = tiny_train_argv(synth, tmp_path / "run", "--epochs", "2", "--watch-test")
    argv.remove("--no-progress")
    stderr = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    epochs = [line.split(":")[0] for line in lines if line.startswith("epoch ")]
    assert epochs == ["epoch 1/2", "epoch 2/2"]  # with the evaluation in them: one line each
    assert all("test (watched) video acc" in line for line in lines if line.startswith("epoch "))
    err = stderr.getvalue()
    if terminal:  # the training bar of each epoch and the evaluation's bar
        assert "\r" in err and "epoch 1: " in err and "epoch 2: " in err and "eval: " in err
    else:
        assert "\r" not in err and "%|" not in err


@pytest.mark.parametrize("terminal", [True, False])
def test_caching_draws_a_bar_on_a_terminal_and_its_report_in_a_log(
    synth, tmp_path, capsys, monkeypatch, terminal
):
    stderr = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    argv = ["cache", "--data-root", str(synth), "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--workers", "1", "--sample-every", "2"]) == 0
    out = capsys.readouterr().out
    assert "cached 8 videos" in out
    err = stderr.getvalue()
    if terminal:
        assert "\r" in err and "caching: 100%" in err and "8/8" in err
    else:
        assert "\r" not in err and "%|" not in err

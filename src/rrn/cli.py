"""The ``rrn`` command line: one sub-command per module in :mod:`rrn.commands`.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (called with the parsed namespace, returns an exit code).

The library logs (``logging.getLogger("rrn.<module>")``) and never prints; the command line
shows its messages as they read: INFO and DEBUG on stdout (through ``tqdm.write``, so progress
bars stay intact), WARNING and above on stderr, the text alone (library messages that a
person reads carry their own ``rrn <command>:`` prefix). ``-q/--quiet`` shows warnings and
errors only, ``-v/--verbose`` adds debug messages; both go before or after the sub-command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

# OpenMP threads that spin while they wait make a shared machine crawl: with one other busy
# process on 2 cores, a demo model trained in 163 s with spinning threads and 83 s without
# (61-66 s alone either way). Set before torch (and its OpenMP) is loaded; a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from rrn import __version__
from rrn.errors import UserError

# (sub-command name, module under rrn.commands). Order = order in ``rrn --help``.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("model-info", "model_info"),
    ("synth", "synth"),
    ("cache", "cache"),
    ("check-data", "check_data"),
    ("train", "train"),
    ("eval", "evaluate"),
    ("predict", "predict"),
    ("stream", "stream"),
    ("serve", "serve"),
    ("export", "export"),
    ("features", "features"),
    ("baseline", "baseline"),
    ("experiment", "experiment"),
    ("demo", "demo"),
)


class ConsoleHandler(logging.Handler):
    """INFO/DEBUG to stdout (via ``tqdm.write``), WARNING+ to stderr; streams looked up at each
    message, so a redirected ``sys.stdout`` (a test's capture) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.WARNING:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            else:
                from tqdm import tqdm

                tqdm.write(text, file=sys.stdout)
        except Exception:
            self.handleError(record)


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Show the library's messages on the console (see the module docstring)."""
    logger = logging.getLogger("rrn")
    for handler in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(ConsoleHandler())
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _verbosity(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="show warnings and errors only"
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="also show debug messages"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrn",
        description="Recurrent Residual Networks for video action recognition "
        "(Iqbal, Richard, Kuehne, Gall, GCPR 2017).",
    )
    parser.add_argument("--version", action="version", version=f"rrn {__version__}")
    _verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _, module in COMMANDS:
        importlib.import_module(f"rrn.commands.{module}").register(sub)
    for command in sub.choices.values():  # after the sub-command too: rrn train -q ...
        _verbosity(command, argparse.SUPPRESS)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"rrn: warning: {message}\n"  # for people: no source file and line of rrn's code


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C outside a command's own handling (e.g. while torch loads)
        print("\nrrn: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    configure_logging(args.quiet, args.verbose)
    formatter, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, OSError) as err:
        # configuration and data errors, unwritable folders, missing files, weights that cannot
        # be downloaded: the message names the file and the way out; a traceback would not help
        print(f"rrn {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatter


if __name__ == "__main__":
    raise SystemExit(main())

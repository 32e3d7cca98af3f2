"""The ``rrn`` command line: one sub-command per module in :mod:`rrn.commands`.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (called with the parsed namespace, returns an exit code). Every sub-command's parser
suggests the closest flag for one it does not know.

The library logs (``logging.getLogger("rrn.<module>")``) and never prints; while a command runs
the command line shows its messages as they read: INFO and DEBUG on stdout (through
``tqdm.write``, so progress bars stay intact), WARNING and above on stderr, the text alone
(library messages that a person reads carry their own ``rrn <command>:`` prefix); Python
warnings (the deprecated spellings of settings) go the same way. ``-q/--quiet`` shows warnings
and errors only, ``-v/--verbose`` adds debug messages; both go before or after the sub-command.
What a command prints itself (its result: ``rrn predict``'s classes, the flags ``rrn synth``
names) is printed either way.
When :func:`main` returns, the logging is as it found it.

Errors: a :class:`~rrn.errors.UserError` (bad input, named with the way out) and an ``OSError``
(a missing file, a full disk, no permission, a network that is down: the person fixes those
too, and the message names the file) are one line and exit code 2; ``-v`` adds an
``OSError``'s traceback. Anything else is a bug in rrn: its traceback and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator

# OpenMP threads that spin while they wait make a shared machine crawl: with one other busy
# process on 2 cores, a demo model trained in 163 s with spinning threads and 83 s without
# (61-66 s alone either way). Set before torch (and its OpenMP) is loaded; a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from rrn.commands.flags import SuggestingArgumentParser
from rrn.errors import UserError
from rrn.version import __version__

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
    ("pack", "pack"),
    ("push", "push"),
    ("features", "features"),
    ("baseline", "baseline"),
    ("experiment", "experiment"),
    ("demo", "demo"),
)


class ConsoleHandler(logging.Handler):
    """INFO/DEBUG to stdout, WARNING+ to stderr, both through ``tqdm.write`` (a progress bar
    is cleared and redrawn around the line); streams looked up at each message, so a redirected
    ``sys.stdout`` (a test's capture) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            text = self.format(record)
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            tqdm.write(text, file=stream)
            stream.flush()
        except Exception:
            self.handleError(record)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` while a command runs: a Python warning is logged like the
    library's own, for people (no source file and line of rrn's code)."""
    logging.getLogger("rrn").warning("rrn: warning: %s", message)


@contextlib.contextmanager
def console(quiet: bool = False, verbose: bool = False) -> Iterator[ConsoleHandler]:
    """Show the library's messages and Python's warnings on the console (see the module
    docstring) inside the block; afterwards the ``rrn`` logger and ``warnings`` are as before,
    so a caller that runs a command in-process keeps its own logging."""
    logger = logging.getLogger("rrn")
    handler = ConsoleHandler()
    saved = logger.level, logger.propagate, warnings.showwarning
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    warnings.showwarning = _show_warning
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        warnings.showwarning = saved[2]


def _verbosity(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="log warnings and errors only (the command's own result is still printed)",
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="also show debug messages"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingArgumentParser(
        prog="rrn",
        description="Recurrent Residual Networks for video action recognition "
        "(Iqbal, Richard, Kuehne, Gall, GCPR 2017).",
    )
    parser.add_argument("--version", action="version", version=f"rrn {__version__}")
    _verbosity(parser, False)
    # every command's parser suggests the closest flag to one it does not know
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=SuggestingArgumentParser
    )
    for _, module in COMMANDS:
        importlib.import_module(f"rrn.commands.{module}").register(sub)
    for command in sub.choices.values():  # after the sub-command too: rrn train -q ...
        _verbosity(command, argparse.SUPPRESS)
    return parser


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
    with console(args.quiet, args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command's exit code; an error as the module docstring says."""
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"rrn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"rrn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(
            f"rrn {args.command}: internal error: this is a bug in rrn, not in your input; "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

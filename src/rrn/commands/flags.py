"""Command-line flags generated from the settings schema (:mod:`rrn.config`).

Every command's flags come from the dataclasses' fields: one name, one help text (the field's
documentation) and one default (the dataclass's) everywhere. A flag the user did not give stays
absent from the namespace (``argparse.SUPPRESS``), so :func:`flag_overrides` returns exactly
the flags given: "defaults come from the checkpoint" (``rrn eval``, ``rrn predict``, ``rrn
stream``) is then the checkpoint's values layered under them, no per-command special case.
This is the command line's; the library never imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from rrn.config import (
    SECTIONS,
    ConfigError,
    build_dataclass,
    check_number,
    coerce,
    field_docs,
    field_types,
    flag_name,
    strip_optional,
)

#: The help of every RUN_OR_CKPT argument: what :func:`rrn.checkpoint.open_checkpoint` takes.
MODEL_HELP = (
    "run directory, checkpoint file, model package folder (rrn pack) or "
    "hf://org/name[@revision] (a package on the Hugging Face Hub)"
)

# --------------------------------------------------------------------------------------------
# Command line generated from the dataclasses
# --------------------------------------------------------------------------------------------


class SuggestingArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose unknown-flag error suggests the closest valid flag: the
    class of ``rrn`` and of every sub-command's parser (``add_subparsers(parser_class=...)``)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [a for a in extras if a.startswith("-")]
        if unknown:
            flag = unknown[0].split("=", 1)[0]
            valid = [s for a in self._actions for s in a.option_strings]
            hint = difflib.get_close_matches(flag, valid, n=1, cutoff=0.5)
            did = f"; did you mean {hint[0]}?" if hint else ""
            self.error(f"unrecognized argument {flag}{did}")
        elif extras:
            self.error(f"unexpected argument {extras[0]!r}")
        return namespace, extras


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    section: str,
    *,
    only: Iterable[str] | None = None,
    title: str | None = None,
    defaults_from: str = "",
    aliases: Mapping[str, str] | None = None,
) -> None:
    """One ``--flag`` per field of ``cls`` (or of ``only``); absent flags stay absent.

    Args:
        section: the namespace prefix of the destinations (``args.<section>.<field>``).
        only: the fields to expose (default: all).
        title: heading of the flag group in ``--help``.
        defaults_from: shown instead of the dataclass default, e.g. "the checkpoint".
        aliases: a shorter second spelling of some fields' flags where the command makes it
            unambiguous, e.g. ``{"cache_format": "--format"}`` for ``rrn cache``.
    """
    group = parser.add_argument_group(title or f"{section} options")
    docs, defaults = field_docs(cls), cls()
    names = list(only) if only is not None else [f.name for f in dataclasses.fields(cls)]
    for name in names:
        tp, _ = strip_optional(field_types(cls)[name])
        default = getattr(defaults, name)
        listed = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = defaults_from or listed
        text = docs.get(name, "") + ("" if shown is None else f" [{shown}]")  # None: the doc says
        kwargs: dict[str, Any] = {
            "dest": f"{section}.{name}",
            "default": argparse.SUPPRESS,
            "help": text.replace("%", "%%"),
        }
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = _metavar(name, tp)
        if tp in (int, float):
            kwargs["type"] = _number(cls, name)
        extra = [(aliases or {})[name]] if name in (aliases or {}) else []
        group.add_argument(f"--{flag_name(name)}", *extra, **kwargs)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    only: Mapping[str, Iterable[str] | None] | None = None,
    defaults_from: str = "",
) -> None:
    """Add the flags of :class:`TrainConfig`'s sections (all, or ``only={section: fields}``)."""
    for section, cls in SECTIONS.items():
        if only is None or section in only:
            add_dataclass_arguments(
                parser, cls, section, only=(only or {}).get(section), defaults_from=defaults_from
            )
    if only is None or "update_fraction" in (only.get("optim") or ()):
        parser.add_argument(
            "--update-every",
            dest="optim.update_every",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )  # renamed: still accepted, with a warning


def _number(cls: type, name: str):
    """The ``type=`` of a numeric flag: the field's type, finite and in its declared range
    (:class:`~rrn.config.Range`), checked as the command line is parsed (exit 2 naming it)."""

    def parse(text: str):
        try:
            value = coerce(text, field_types(cls)[name], f"--{flag_name(name)}")
            if value is not None:
                check_number(cls, name, value)
        except ConfigError as err:  # argparse says "argument --flag: " first
            message = str(err)
            for said in (f"--{flag_name(name)}: ", f"--{flag_name(name)} "):
                message = message.removeprefix(said)
            raise argparse.ArgumentTypeError(message) from None
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _metavar(name: str, tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "{" + ",".join(map(str, typing.get_args(tp))) + "}"
    return name.upper()


def flag_overrides(
    args: argparse.Namespace, sections: Iterable[str] = SECTIONS
) -> dict[str, dict[str, Any]]:
    """The flags of ``sections`` actually given on the command line, nested by section."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in vars(args).items():
        section, dot, name = key.partition(".")
        if dot and section in sections:
            out.setdefault(section, {})[name] = value
    return out


def from_flags(cls: type, args: argparse.Namespace, section: str):
    """The dataclass ``cls`` from the flags of ``section`` (see :func:`add_dataclass_arguments`)."""
    return build_dataclass(cls, [("flags", flag_overrides(args, (section,)).get(section, {}))])

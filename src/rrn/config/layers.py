"""How values reach the settings schema (:mod:`rrn.config.schema`): from YAML files, a
checkpoint's stored config and the command line, in layers.

Each layer is a mapping, nested by section (``optim: {lr: 1e-4}``) or flat (``lr: 1e-4``);
:func:`flatten` names every key's (section, field), refusing an unknown key with the closest
valid one and translating a renamed key (:data:`RENAMED`, with a deprecation warning) or a
retired one; :func:`coerce` turns YAML or flag text into the field's type, read from the
dataclass itself (:func:`field_types`; the help text is the string under the field,
:func:`field_docs`). :func:`merge_layers` applies the layers in order, the later winning.
Nothing here knows the schema's dataclasses: they are passed in.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import os
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from rrn.errors import ConfigError


class RenamedKeyWarning(FutureWarning):
    """A config key or flag was given under a deprecated spelling (it still works)."""


def flag_name(name: str) -> str:
    return name.replace("_", "-")


# --------------------------------------------------------------------------------------------
# Field introspection: types and the doc strings under each field
# --------------------------------------------------------------------------------------------


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass, whitespace collapsed."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (frozen app): no help text, still works
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if typing.get_origin(tp) is tuple:
        return "a comma-separated list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
        tp, str(tp)
    )


def _coerce_scalar(value: Any, base: Any) -> Any:
    if typing.get_origin(base) is Literal:
        return str(value)  # checked against the choices in __post_init__
    if base is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "on"):
            return True
        if str(value).lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError
    if base is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    if base is float:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if base is str:
        return str(value)
    return value


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert a YAML or command-line value to a field's type, with an error naming ``name``."""
    base, optional = strip_optional(tp)
    # For a list, 'none' means the empty list (--skip none: no temporal skip), not "unset".
    is_list = typing.get_origin(base) is tuple
    if value is None or (
        optional and not is_list and isinstance(value, str) and value.lower() in ("none", "null")
    ):
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required ({describe_type(base)})")
    try:
        if is_list:
            item_tp = typing.get_args(base)[0]
            if isinstance(value, str):
                parts = [p.strip() for p in value.split(",") if p.strip()]
                parts = [] if parts == ["none"] else parts
            else:
                parts = list(value) if isinstance(value, list | tuple) else [value]
            return tuple(coerce(p, item_tp, name) for p in parts)
        return _coerce_scalar(value, base)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {describe_type(base)}, got {value!r}") from None


# --------------------------------------------------------------------------------------------
# Keys, renamed keys, layers
# --------------------------------------------------------------------------------------------


def _update_every(value: Any, where: str) -> dict[str, Any]:
    """The old ``update_every``: an integer meant chunks, a fraction of the data otherwise."""
    text = str(value).strip()
    if isinstance(value, int) and not isinstance(value, bool) or text.lstrip("+").isdigit():
        return {"update_chunks": int(text)}
    try:
        fraction = float(text)
    except ValueError:
        raise ConfigError(f"{where} --update-every {value!r}: expected a number") from None
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(
            f"{where} --update-every {value}: a fraction of the training data must be in (0, 1]; "
            "write --update-chunks N for a number of chunks"
        )
    return {"update_fraction": fraction}


#: Old spelling -> (section, translation to the new keys, what to write instead).
RENAMED: dict[str, tuple[str, Callable[[Any, str], dict[str, Any]], str]] = {
    "update_every": ("optim", _update_every, "--update-fraction F or --update-chunks N"),
}
#: Keys older checkpoints hold that mean nothing now (dropped when a saved config is read).
RETIRED = {("run", "fault")}


def all_keys(sections: Mapping[str, type]) -> dict[str, tuple[str, str]]:
    """Every accepted key, flat (``lr``) and dotted (``optim.lr``) -> (section, field)."""
    keys: dict[str, tuple[str, str]] = {}
    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            keys.setdefault(f.name, (section, f.name))
            keys[f"{section}.{f.name}"] = (section, f.name)
    return keys


def _unknown(key: str, valid: Iterable[str], where: str) -> ConfigError:
    hint = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    did = f"; did you mean {hint[0]!r}?" if hint else ""
    return ConfigError(f"{where}: unknown key {key!r}{did}")


def _renamed(key: str, value: Any, where: str, quiet: bool) -> dict[tuple[str, str], Any]:
    section, translate, instead = RENAMED[key.rpartition(".")[2]]
    if not quiet:
        old = f"--{flag_name(key.rpartition('.')[2])}" if where == "flags" else f"{where}: '{key}'"
        warnings.warn(
            f"{old} is deprecated and will be removed; write {instead}",
            RenamedKeyWarning,
            stacklevel=4,
        )
    return {(section, k): v for k, v in translate(value, where).items()}


def flatten(
    values: Mapping[str, Any],
    where: str,
    *,
    quiet: bool = False,
    sections: Mapping[str, type],
) -> dict[tuple[str, str], Any]:
    """Nested-or-flat dict -> {(section, field): value}; unknown keys raise, renamed ones warn."""
    keys = all_keys(sections)
    out: dict[tuple[str, str], Any] = {}
    for key, value in values.items():
        if key in sections and isinstance(value, Mapping):
            out.update(
                flatten(
                    {f"{key}.{k}": v for k, v in value.items()},
                    where,
                    quiet=quiet,
                    sections=sections,
                )
            )
        elif key in keys:
            out[keys[key]] = value
        elif key.rpartition(".")[2] in RENAMED:
            out.update(_renamed(key, value, where, quiet))
        elif quiet and (tuple(key.split(".", 1)) in RETIRED or key in {k for _, k in RETIRED}):
            continue
        else:
            raise _unknown(key, keys, where)
    return out


def merge_layers(
    layers, sections: Mapping[str, type], quiet: set[str]
) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for where, values in layers:
        for (section, name), value in flatten(
            values, where, quiet=where in quiet, sections=sections
        ).items():
            tp = field_types(sections[section])[name]
            label = f"--{flag_name(name)}" if where == "flags" else f"{where}: {section}.{name}"
            merged[section][name] = coerce(value, tp, label)
    return merged


def build_dataclass(cls: type, layers: list[tuple[str, Mapping[str, Any]]]):
    """One dataclass (``EvalConfig``, ``BaselineConfig``, ...) from flat layers of values."""
    names = [f.name for f in dataclasses.fields(cls)]
    merged: dict[str, Any] = {}
    for where, values in layers:
        for key, value in values.items():
            if key not in names:
                raise _unknown(key, names, where)
            label = f"--{flag_name(key)}" if where == "flags" else f"{where}: {key}"
            merged[key] = coerce(value, field_types(cls)[key], label)
    return cls(**merged)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return values

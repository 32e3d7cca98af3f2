"""Configuration: one dataclass per concern; every command's flags are generated from them.

:class:`TrainConfig` (sections ``data``, ``model``, ``optim``, ``run``) is what ``rrn train``
resolves and saves next to every run and in every checkpoint. The other commands take the
fields they need from the same sections (``rrn cache`` the data fields, ``rrn eval`` the data
and run fields it may change, ...) plus a dataclass of their own (:class:`EvalConfig`,
:class:`FeaturesConfig`, :class:`BaselineConfig`, :class:`StreamConfig`, :class:`ExportConfig`,
:class:`ServeConfig`), so a setting has one name, one help text and one default everywhere.

Precedence, lowest first: the dataclass defaults (or the config stored in the checkpoint: with
``--resume``, and in the commands that load a trained model), then a YAML file (``--config``),
then command-line flags. Every field is documented by the string under it; that string is also
the flag's ``--help``. Each dataclass validates itself in ``__post_init__`` (from its types, the
data's sampling rules and the dataset format's traits) so a bad value fails before any data is
read.

A YAML file may be nested by section (``optim: {lr: 1e-4}``) or flat (``lr: 1e-4``); an unknown
key or flag is an error that names it and suggests the closest valid one. A renamed key keeps
working under its old spelling with a deprecation warning (:data:`RENAMED`).

Two modules: :mod:`~rrn.config.schema` (the dataclasses, their validation, :func:`resolve_config`)
and :mod:`~rrn.config.layers` (how values reach them: field types and docs, coercion, renamed
keys, layering). Every name is imported from here: ``from rrn.config import TrainConfig``.
"""

from rrn.config.layers import (
    RENAMED,
    RETIRED,
    RenamedKeyWarning,
    all_keys,
    build_dataclass,
    coerce,
    describe_type,
    field_docs,
    field_types,
    flag_name,
    flatten,
    load_yaml,
    merge_layers,
    strip_optional,
)
from rrn.config.schema import (
    AT_LEAST_0,
    AT_LEAST_1,
    CACHE_FIELDS,
    DATASET_FIELDS,
    FRAME_FIELDS,
    POSITIVE,
    PROBABILITY,
    SECTIONS,
    SEED,
    TOKEN,
    BaselineConfig,
    DataConfig,
    EvalConfig,
    ExportConfig,
    FeaturesConfig,
    ModelConfig,
    OptimConfig,
    Range,
    RunConfig,
    ServeConfig,
    StreamConfig,
    TrainConfig,
    check_choice,
    check_fields,
    check_literals,
    check_number,
    check_ranges,
    describe_changes,
    field_range,
    plain,
    resolve_config,
)
from rrn.errors import ConfigError  # raised by the schema, and imported from here by the commands

__all__ = [
    "AT_LEAST_0",
    "AT_LEAST_1",
    "CACHE_FIELDS",
    "DATASET_FIELDS",
    "FRAME_FIELDS",
    "POSITIVE",
    "PROBABILITY",
    "RENAMED",
    "RETIRED",
    "SECTIONS",
    "SEED",
    "TOKEN",
    "BaselineConfig",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExportConfig",
    "FeaturesConfig",
    "ModelConfig",
    "OptimConfig",
    "Range",
    "RenamedKeyWarning",
    "RunConfig",
    "ServeConfig",
    "StreamConfig",
    "TrainConfig",
    "all_keys",
    "build_dataclass",
    "check_choice",
    "check_fields",
    "check_literals",
    "check_number",
    "check_ranges",
    "coerce",
    "describe_changes",
    "describe_type",
    "field_docs",
    "field_range",
    "field_types",
    "flag_name",
    "flatten",
    "load_yaml",
    "merge_layers",
    "plain",
    "resolve_config",
    "strip_optional",
]

"""The settings of ``rrn pack`` and ``rrn push`` (torch-free: the command line builds its flags
from them before anything loads torch)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rrn.config import ConfigError


@dataclass
class PackConfig:
    """What ``rrn pack`` and ``rrn push`` add to the checkpoint they package (the checkpoint of a
    run: ``--which``)."""

    license: str = "unknown"
    """The weights' license in the model card, as the Hub names licenses (mit, apache-2.0,
    cc-by-nc-4.0, other, ...); the data's terms may bind the weights."""
    results: tuple[str, ...] = ()
    """More rrn eval result files (eval_split{k}.json, comma-separated) for the card, besides
    those in the checkpoint's folder; only those of the packed checkpoint are reported."""
    model_name: str | None = None
    """The model's name in its card [the Hub repository's name, else OUT's]."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", self.license):
            raise ConfigError(
                f"--license {self.license!r}: expected a license identifier as the Hub names "
                "them (mit, apache-2.0, cc-by-4.0, other, unknown)"
            )

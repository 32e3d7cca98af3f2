"""The errors a person fixes when a model cannot be built or given its weights.

Each is a :class:`~rrn.errors.UserError` (the command line prints one line, exit code 2) and a
``ValueError`` / ``OSError`` for Python callers that catch those.
"""

from rrn.errors import UserError


class ModelError(UserError, ValueError):
    """A model asked for by an unknown name: architecture, skip block, skip type or
    initialisation (the message lists the valid names and suggests the closest)."""


class WeightsError(UserError, ValueError):
    """Initial weights that cannot be used: no such file, not weights, or another model's."""


class WeightsUnavailableError(UserError, OSError):
    """torchvision's ImageNet weights are neither in its cache nor downloadable here."""

"""rrn: Recurrent Residual Networks for video action recognition.

Iqbal, Richard, Kuehne, Gall. "Recurrent Residual Learning for Action Recognition", GCPR 2017.
"""

__version__ = "0.1.0"

from rrn.checkpoint import load_model  # noqa: E402
from rrn.model import RecurrentResNet, build_model  # noqa: E402

__all__ = ["RecurrentResNet", "build_model", "load_model", "__version__"]

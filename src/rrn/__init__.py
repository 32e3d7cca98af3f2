"""rrn: Recurrent Residual Networks for video action recognition.

Iqbal, Richard, Kuehne, Gall. "Recurrent Residual Learning for Action Recognition", GCPR 2017.

``rrn.build_model``, ``rrn.RecurrentResNet`` and ``rrn.load_model`` are imported on first use,
so that importing the package (the command line does) does not start torch before it is set up.
"""

from rrn.version import __version__

__all__ = ["RecurrentResNet", "build_model", "load_model", "__version__"]


def __getattr__(name: str):
    if name in ("RecurrentResNet", "build_model"):
        from rrn import model

        return getattr(model, name)
    if name == "load_model":
        from rrn.checkpoint import load_model

        return load_model
    raise AttributeError(f"module 'rrn' has no attribute {name!r}")

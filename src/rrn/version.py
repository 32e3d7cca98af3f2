"""The version of rrn: one constant, at the bottom layer so that any module may record it
(``rrn export`` writes it into ``model.json``); ``rrn.__version__`` and ``rrn --version`` read
it from here, and so does the package's build (``pyproject.toml``)."""

__version__ = "0.1.0"

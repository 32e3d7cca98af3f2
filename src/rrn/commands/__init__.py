"""Sub-commands of the ``rrn`` command line; each module has ``register(subparsers)``."""

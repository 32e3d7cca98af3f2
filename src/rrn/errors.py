"""The error a person fixes, as opposed to a bug.

A :class:`UserError` says what was wrong with the input (a flag, a setting, a file, the data or
the machine's state) and what to do; the command line prints it as one line without a
traceback (exit code 2). Anything else that escapes a command is a bug in rrn: the command line
prints its traceback (exit code 1). A Python caller gets ordinary exceptions: the library's user
errors keep the built-in base class callers caught before (:class:`ConfigError` is a
``ValueError``, ``RunLocked`` a ``FileExistsError``, ...), so ``except ValueError`` still works.

It lives in the bottom layer so that every layer can raise it.
"""


class UserError(Exception):
    """An error caused by the user's input; the message names it and the way out.

    The command line prints it as one line, ``rrn <command>: error: <message>``, and exits
    with 2.
    """


class ConfigError(UserError, ValueError):
    """A setting (a flag, a YAML key, a keyword argument that a flag sets) has a value rrn
    cannot use, or settings contradict each other; the message says which and what to do.

    A ``ValueError`` too: a wrong value is what ``ValueError`` means to Python callers.
    """

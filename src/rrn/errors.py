"""The error a person fixes: bad input, named with what was expected and what to do.

The command line prints it as one line without a traceback (exit code 2); a Python caller gets
an ordinary exception. It lives in the library so that every layer can raise it.
"""


class UserError(Exception):
    """An error caused by the user's input: printed without a traceback, exit code 2."""

"""Errors that t2i reports to users as one clear line."""


class T2IError(ValueError):
    """Bad input or configuration: the message names the problem.

    Command-line entry points print it as `t2i: error: <message>` and exit
    with status 2 instead of showing a traceback.
    """

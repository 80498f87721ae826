"""Errors that t2i reports to users as one clear line."""


class T2IError(ValueError):
    """Bad input or configuration: the message names the problem.

    Command-line entry points print it as `t2i: error: <message>` and exit
    with status 2 instead of showing a traceback.
    """


def check_temperature(value, name: str = "temperature"):
    """Returns `value` if it is a sampling temperature (or several): finite and >= 0.

    The one check behind `AlignDRAW.generate`, `t2i generate`, `t2i evaluate`
    and the client; `name` is what the message calls it (a flag, for the CLIs).
    """
    import numpy as np

    try:
        values = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise T2IError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not np.all(np.isfinite(values) & (values >= 0)):
        shown = values.tolist() if values.ndim else float(values)
        raise T2IError(f"{name} must be a finite number >= 0, got {shown}")
    return value


def add_deprecated_alias(parser, old: str, new: str, dest: str, **kwargs):
    """Accepts the old spelling `old` of flag `new` for one more release: it sets `dest`
    like `new` does, is hidden from --help and warns on stderr when used."""
    import argparse
    import sys

    class _Deprecated(argparse.Action):
        def __call__(self, parser_, namespace, values, option_string=None):
            print(f"t2i: warning: {old} is deprecated and will be removed in the next release; "
                  f"use {new}", file=sys.stderr)
            setattr(namespace, self.dest, values)

    parser.add_argument(old, dest=dest, action=_Deprecated, help=argparse.SUPPRESS, **kwargs)

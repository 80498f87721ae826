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

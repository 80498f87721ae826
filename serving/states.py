"""tensorflow.serving.ModelVersionStatus.State: the one table of version states.

The server records these numbers; the client and the REST API show the names.
"""

UNKNOWN, START, LOADING, AVAILABLE, UNLOADING, END = 0, 10, 20, 30, 40, 50
STATE_NAMES = {UNKNOWN: "UNKNOWN", START: "START", LOADING: "LOADING", AVAILABLE: "AVAILABLE",
               UNLOADING: "UNLOADING", END: "END"}


def state_name(state: int) -> str:
    """The name of a state number (the number itself, as text, if unknown)."""
    return STATE_NAMES.get(int(state), str(state))

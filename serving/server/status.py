"""Errors of the model server: gRPC status codes, messages as TF Serving writes them."""

from __future__ import annotations

import re

import grpc

ERROR_MESSAGE_LIMIT = 1024         # grpc_status_util.cc kErrorMessageLimit
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request or load failure with its gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def truncate_message(message: str) -> str:
    """TF Serving's ToGRPCStatus: at most 1024 characters, then '...TRUNCATED'."""
    if len(message) > ERROR_MESSAGE_LIMIT:
        return message[:ERROR_MESSAGE_LIMIT] + "...TRUNCATED"
    return message


def grpc_code(tf_code: int) -> grpc.StatusCode:
    """absl/TF error code (an int) -> grpc.StatusCode (same numbering)."""
    return _GRPC_CODES.get(int(tf_code), grpc.StatusCode.UNKNOWN)


_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
# tf.debugging.assert_* in an exported t2i graph: "assertion failed: [t2i: MESSAGE] [Condition
# ...] [x (sub:0) = ] [4 0] [y ...] [...]" -> "t2i: MESSAGE: 4 0".
_T2I_ASSERTION = re.compile(r"^assertion failed: \[(t2i: [^\]]+)\]"
                            r"(?: \[Condition [^\]]*\])?(?: \[x \([^)]*\) = \] \[([^\]]*)\])?")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*$")


def clean_tf_message(message: str) -> str:
    """The informative line(s) of a TensorFlow error message.

    Python-side TF errors wrap the kernel's message in "Graph execution
    error:", a "Detected at node ..." stack and node context; keep the
    kernel's own text (what TF Serving's Session returns), on one line.
    """
    lines = []
    skipping_stack = False
    for raw in str(message).splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped == "Graph execution error:":
            continue
        if stripped.startswith("Detected at node"):
            skipping_stack = True
            continue
        if skipping_stack:
            if (raw[:1].isspace() or stripped == "<stack traces unavailable>"
                    or stripped.startswith("Node: ")):
                continue
            skipping_stack = False
        if stripped.startswith("[[") or stripped.startswith("Node: "):
            continue
        stripped = _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", stripped))
        if stripped:
            lines.append(stripped)
    text = "; ".join(lines) if lines else str(message).strip()
    words = _T2I_ASSERTION.match(text)
    if words:  # the model's own check, in words: no assertion syntax
        text = words.group(1) + (f": {words.group(2)}" if words.group(2) else "")
    return text or "unknown TensorFlow error"



# http_server.cc ToHTTPStatusCode: the HTTP status of a REST answer with this gRPC code.
_HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def http_status(code: grpc.StatusCode) -> int:
    """TF Serving's HTTP status for a gRPC status code (400 for bad input, 404, 429, ...)."""
    return _HTTP_STATUS.get(code.name, 500)

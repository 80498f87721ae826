"""A gRPC client for t2i models behind TF Serving (or the local `t2i serve`).

    from serving import client
    channel = client.make_channel("localhost:8500")
    out = client.predict(channel, ["the digit 3 is at the top ."], seeds=[0])
    out["images"]      # uint8 [B, H, W, C]
    out["alignments"]  # float32 [B, T, L]

Only the official `tensorflow_serving.apis` stubs are used, so the same code
works against `tensorflow_model_server`. Calls are retried only on
UNAVAILABLE (the server did not process the request; generation is
deterministic given the seeds, so a retry is safe); every other gRPC error is
raised as `ClientError(code, message)` at once.

Command line (`t2i client`):

    t2i client --target localhost:8500 "the digit 7 is on the left of the digit 1 ." -o out.png --gif
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import grpc
import numpy as np

from serving import wire
from serving.states import STATE_NAMES, state_name  # noqa: F401 - STATE_NAMES re-exported
from t2i.errors import T2IError, add_deprecated_alias, check_temperature

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class ClientError(T2IError):
    """A gRPC call failed: `code` is the grpc.StatusCode, `details` the server's message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        self.code = code
        self.details = message
        super().__init__(f"{code.name}: {message}")

    @property
    def code_name(self) -> str:
        return self.code.name


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str               # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: int          # tensorflow.error.Code, 0 = OK
    error_message: str


def make_channel(target: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> grpc.Channel:
    """An insecure channel whose send and receive limits are `max_message_bytes`.

    gRPC's default receive limit is 4 MiB, too small for image batches.
    Reconnect backoff is capped at 2 s (gRPC's default starts at 1 s and grows
    to 120 s), so a restarted server is found again quickly.
    """
    if not target or ":" not in target:
        raise T2IError(f"target must be HOST:PORT, got {target!r}")
    n = int(max_message_bytes)
    return grpc.insecure_channel(target, options=[
        ("grpc.max_receive_message_length", n), ("grpc.max_send_message_length", n),
        ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000)])


def _prediction_stub(channel_or_stub):
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    if isinstance(channel_or_stub, grpc.Channel):
        return prediction_service_pb2_grpc.PredictionServiceStub(channel_or_stub)
    if hasattr(channel_or_stub, "Predict"):
        return channel_or_stub
    raise TypeError("expected a grpc.Channel or a PredictionServiceStub, got "
                    f"{type(channel_or_stub).__name__}")


def _model_stub(channel_or_stub):
    from tensorflow_serving.apis import model_service_pb2_grpc
    if isinstance(channel_or_stub, grpc.Channel):
        return model_service_pb2_grpc.ModelServiceStub(channel_or_stub)
    if hasattr(channel_or_stub, "GetModelStatus"):
        return channel_or_stub
    raise TypeError("expected a grpc.Channel or a ModelServiceStub, got "
                    f"{type(channel_or_stub).__name__}")


def _call(method, request, timeout_s: float | None, retries: int, backoff_s: float = 0.2):
    """method(request) with retries on UNAVAILABLE only; errors -> ClientError."""
    attempt = 0
    while True:
        try:
            return method(request, timeout=timeout_s)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
            details = (e.details() if hasattr(e, "details") else None) or str(e)
            if code == grpc.StatusCode.UNAVAILABLE and attempt < retries:
                time.sleep(min(backoff_s * (2 ** attempt), 2.0))
                attempt += 1
                continue
            raise ClientError(code, details) from None


def _model_spec(spec, model_name: str, signature_name: str | None, version, version_label):
    if version is not None and version_label is not None:
        raise T2IError("give version or version_label, not both")
    spec.name = model_name
    if signature_name is not None:
        spec.signature_name = signature_name
    if version is not None:
        spec.version.value = int(version)
    elif version_label is not None:
        spec.version_label = str(version_label)


def _as_captions(captions) -> list[str]:
    if isinstance(captions, (str, bytes)):
        captions = [captions]
    captions = list(captions)
    if not captions:
        raise T2IError("no captions given")
    for c in captions:
        if not isinstance(c, (str, bytes)):
            raise T2IError(f"captions must be strings, got {type(c).__name__}")
    return captions


def _seeds_for(captions: list, seeds) -> np.ndarray:
    """int64 seeds, one per caption (0, 1, ... when not given)."""
    seeds = np.asarray(range(len(captions)) if seeds is None else seeds, dtype=np.int64).reshape(-1)
    if len(seeds) != len(captions):
        raise T2IError(f"got {len(captions)} captions but {len(seeds)} seeds")
    return seeds


def _tensor(value, dtype=None):
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2
    if isinstance(value, tensor_pb2.TensorProto):
        return value
    return tf.make_tensor_proto(value, dtype=dtype)


def predict(channel_or_stub, captions=None, seeds=None, *, model_name: str = "t2i",
            signature_name: str = "serving_default", version: int | None = None,
            version_label: str | None = None, timeout_s: float | None = 30.0, retries: int = 2,
            inputs: Mapping | None = None, output_filter: Sequence[str] = (),
            seed_input: str | None = "seed") -> dict[str, np.ndarray]:
    """Call a signature; returns {output alias: ndarray}.

    captions: strings, sent as DT_STRING `captions` (UTF-8). seeds: one int
    per caption (default 0..B-1), sent as DT_INT64 `seed_input` (None: no seed
    input). `inputs`: extra or overriding inputs {alias: array or TensorProto}.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    _model_spec(request.model_spec, model_name, signature_name, version, version_label)
    if captions is not None:
        caps = _as_captions(captions)
        encoded = [c.encode("utf-8") if isinstance(c, str) else c for c in caps]
        request.inputs["captions"].CopyFrom(_tensor(encoded, tf.string))
        if seed_input:
            request.inputs[seed_input].CopyFrom(_tensor(_seeds_for(caps, seeds), tf.int64))
    for alias, value in (inputs or {}).items():
        request.inputs[alias].CopyFrom(_tensor(value))
    request.output_filter.extend(output_filter)
    stub = _prediction_stub(channel_or_stub)
    response = _call(stub.Predict, request, timeout_s, retries)
    return {alias: wire.decode(proto) for alias, proto in response.outputs.items()}


def predict_with_spec(channel_or_stub, request, *, timeout_s: float | None = 30.0,
                      retries: int = 2):
    """Send a ready PredictRequest; returns the PredictResponse (model_spec included)."""
    return _call(_prediction_stub(channel_or_stub).Predict, request, timeout_s, retries)


def score(channel_or_stub, captions, images, *, model_name: str = "t2i", version=None,
          version_label=None, timeout_s: float | None = 30.0, retries: int = 2) -> np.ndarray:
    """The `score` signature: the lower bound (nats) of uint8 images [B, H, W, C] given captions."""
    caps = _as_captions(captions)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise T2IError(f"images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[0] != len(caps):
        raise T2IError(f"images must be [B, H, W, C] with B = {len(caps)} captions, "
                       f"got shape {images.shape}")
    out = predict(channel_or_stub, caps, model_name=model_name, signature_name="score",
                  version=version, version_label=version_label, timeout_s=timeout_s,
                  retries=retries, inputs={"images": images}, seed_input=None)
    return out["bound"]


def trace(channel_or_stub, captions, seeds=None, *, model_name: str = "t2i", version=None,
          version_label=None, timeout_s: float | None = 60.0, retries: int = 2) -> dict:
    """The `trace` signature: canvases [B, T, H, W, C] uint8, images, alignments."""
    return predict(channel_or_stub, captions, seeds, model_name=model_name,
                   signature_name="trace", version=version, version_label=version_label,
                   timeout_s=timeout_s, retries=retries)


def sample(channel_or_stub, captions, seeds=None, temperature=1.0, *, model_name: str = "t2i",
           version=None, version_label=None, timeout_s: float | None = 30.0, retries: int = 2) -> dict:
    """The `sample` signature: images and alignments at a sampling temperature.

    temperature: one number >= 0 for every caption, or one per caption. 1
    gives `serving_default`'s image for the seed, 0 the image of the prior means.
    """
    caps = _as_captions(captions)
    temps = np.broadcast_to(np.asarray(temperature, np.float32), (len(caps),)).copy() \
        if np.ndim(temperature) == 0 else np.asarray(temperature, np.float32).reshape(-1)
    if len(temps) != len(caps):
        raise T2IError(f"got {len(caps)} captions but {len(temps)} temperatures")
    check_temperature(temps)
    return predict(channel_or_stub, caps, seeds, model_name=model_name, signature_name="sample",
                   version=version, version_label=version_label, timeout_s=timeout_s,
                   retries=retries, inputs={"temperature": temps})


# --------------------------------------------------------------------------
# REST (TF Serving's --rest_api_port, 8501)


class RestError(T2IError):
    """A REST call failed: `status` is the HTTP status (0: no answer), `message` the error text."""

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.message = message
        super().__init__(f"HTTP {status}: {message}" if status else message)


_REST_DTYPES: dict = {}


def _rest_url(base_url: str, model_name: str, version, version_label) -> str:
    if version is not None and version_label is not None:
        raise T2IError("give version or version_label, not both")
    if not base_url.startswith(("http://", "https://")):
        base_url = "http://" + base_url
    from urllib.parse import quote
    url = f"{base_url.rstrip('/')}/v1/models/{quote(model_name, safe='')}"
    if version is not None:
        url += f"/versions/{int(version)}"
    elif version_label is not None:
        url += f"/labels/{quote(str(version_label), safe='')}"
    return url


def _rest_call(method: str, url: str, body, timeout_s, retries: int, backoff_s: float = 0.2):
    """One HTTP call with retries on connection failures and 503 only; JSON answer or RestError."""
    import requests

    attempt = 0
    while True:
        try:
            answer = requests.request(method, url, json=body, timeout=timeout_s)
        except requests.ConnectionError as e:
            if attempt < retries:
                time.sleep(min(backoff_s * (2 ** attempt), 2.0))
                attempt += 1
                continue
            raise RestError(0, f"cannot reach {url}: {e}") from None
        except requests.Timeout:
            raise RestError(0, f"no answer from {url} within {timeout_s}s") from None
        if answer.status_code == 503 and attempt < retries:
            time.sleep(min(backoff_s * (2 ** attempt), 2.0))
            attempt += 1
            continue
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        if answer.status_code != 200:
            message = doc.get("error") if isinstance(doc, dict) else None
            raise RestError(answer.status_code, message or answer.text.strip() or answer.reason)
        if not isinstance(doc, dict):
            raise RestError(answer.status_code, f"the answer of {url} is not a JSON object")
        return doc


def rest_signatures(base_url: str, model_name: str = "t2i", version: int | None = None, *,
                    version_label: str | None = None, timeout_s: float | None = 10.0,
                    retries: int = 2) -> dict:
    """GET .../metadata: {signature key: its JSON SignatureDef (inputs, outputs, method_name)}."""
    doc = _rest_call("GET", _rest_url(base_url, model_name, version, version_label) + "/metadata",
                     None, timeout_s, retries)
    return doc["metadata"]["signature_def"]["signature_def"]


def rest_model_status(base_url: str, model_name: str = "t2i", version: int | None = None, *,
                      version_label: str | None = None, timeout_s: float | None = 10.0,
                      retries: int = 0) -> list[VersionStatus]:
    """GET /v1/models/NAME: one VersionStatus per version, like `model_status` over gRPC."""
    doc = _rest_call("GET", _rest_url(base_url, model_name, version, version_label), None,
                     timeout_s, retries)
    out = []
    for s in doc.get("model_version_status", []):
        status = s.get("status", {})
        out.append(VersionStatus(int(s["version"]), s["state"],
                                 _ERROR_CODES.get(status.get("error_code", "OK"), _ERROR_CODES["UNKNOWN"]),
                                 status.get("error_message", "")))
    return out


# TensorFlow DataType names in a model's metadata -> NumPy dtypes: the REST path needs no
# TensorFlow (importing it costs seconds; a REST call, milliseconds).
_REST_NUMPY_DTYPES = {
    "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_HALF": np.float16, "DT_INT8": np.int8,
    "DT_INT16": np.int16, "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16, "DT_UINT32": np.uint32, "DT_UINT64": np.uint64, "DT_BOOL": np.bool_,
    "DT_STRING": object,
}
# Canonical error code names (TF's error_codes.proto, the same as gRPC's) -> numbers.
_ERROR_CODES = {code.name: code.value[0] for code in grpc.StatusCode}


def _output_dtypes(base_url, model_name, version, version_label, signature_name, timeout_s,
                   retries) -> dict:
    """{output alias: NumPy dtype} of a signature, from the metadata (cached per model)."""
    key = (base_url, model_name, version, version_label, signature_name)
    if key not in _REST_DTYPES:
        sigs = rest_signatures(base_url, model_name, version, version_label=version_label,
                               timeout_s=timeout_s, retries=retries)
        sig = sigs.get(signature_name or "serving_default")
        if sig is None:
            return {}  # the predict call reports the unknown signature
        _REST_DTYPES[key] = {alias: _REST_NUMPY_DTYPES.get(info["dtype"])
                             for alias, info in sig.get("outputs", {}).items()}
    return _REST_DTYPES[key]


def rest_predict(base_url: str, captions=None, seeds=None, *, model_name: str = "t2i",
                 signature_name: str = "serving_default", version: int | None = None,
                 version_label: str | None = None, timeout_s: float | None = 30.0,
                 retries: int = 2, inputs: Mapping | None = None, seed_input: str | None = "seed",
                 columnar: bool = False) -> dict[str, np.ndarray]:
    """`predict` over TF Serving's REST API: POST /v1/models/NAME[...]:predict.

    base_url: "http://HOST:8501" (or "HOST:PORT"). Same arguments and result
    as `predict` ({output alias: ndarray}, dtypes from the model's metadata);
    the body is the row format ({"instances": [...]}) or, with `columnar`,
    {"inputs": {...}}. Errors raise `RestError(status, message)`; retries only
    when the server cannot be reached or answers 503.
    """
    columns: dict[str, np.ndarray] = {}
    if captions is not None:
        caps = _as_captions(captions)
        columns["captions"] = np.array([c.decode("utf-8") if isinstance(c, bytes) else c
                                        for c in caps], dtype=object)
        if seed_input:
            columns[seed_input] = _seeds_for(caps, seeds)
    for alias, value in (inputs or {}).items():
        columns[alias] = np.asarray(value)
    if not columns:
        raise T2IError("no inputs given")
    lists = {alias: arr.tolist() for alias, arr in columns.items()}
    if columnar:
        body = {"signature_name": signature_name, "inputs": lists}
    else:
        sizes = {alias: len(v) for alias, v in lists.items()}
        if len(set(sizes.values())) != 1:
            raise T2IError(f"the row format needs one entry per example in every input, got "
                           f"{sizes}")
        n = next(iter(sizes.values()))
        body = {"signature_name": signature_name,
                "instances": [{alias: v[i] for alias, v in lists.items()} for i in range(n)]}
    url = _rest_url(base_url, model_name, version, version_label) + ":predict"
    doc = _rest_call("POST", url, body, timeout_s, retries)
    dtypes = _output_dtypes(base_url, model_name, version, version_label, signature_name,
                            timeout_s, retries)
    if columnar:
        outputs = doc["outputs"]
        if not isinstance(outputs, dict) or len(dtypes) == 1:
            outputs = {next(iter(dtypes)) if dtypes else "output": outputs}
    else:
        rows = doc["predictions"]
        if rows and isinstance(rows[0], dict) and (len(dtypes) != 1):
            outputs = {alias: [row[alias] for row in rows] for alias in rows[0]}
        else:
            outputs = {next(iter(dtypes)) if dtypes else "output": rows}
    return {alias: np.asarray(value, dtype=dtypes.get(alias)) for alias, value in outputs.items()}


def model_status(channel_or_stub, model_name: str = "t2i", version: int | None = None, *,
                 timeout_s: float | None = 10.0, retries: int = 0) -> list[VersionStatus]:
    """GetModelStatus: one VersionStatus per version the server knows, newest first."""
    from tensorflow_serving.apis import get_model_status_pb2
    request = get_model_status_pb2.GetModelStatusRequest()
    _model_spec(request.model_spec, model_name, None, version, None)
    response = _call(_model_stub(channel_or_stub).GetModelStatus, request, timeout_s, retries)
    return [VersionStatus(int(s.version), state_name(s.state),
                          int(s.status.error_code), s.status.error_message)
            for s in response.model_version_status]


def signatures(channel_or_stub, model_name: str = "t2i", version: int | None = None, *,
               timeout_s: float | None = 10.0, retries: int = 2) -> dict:
    """GetModelMetadata: {signature key: tensorflow SignatureDef}."""
    from tensorflow_serving.apis import get_model_metadata_pb2
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    _model_spec(request.model_spec, model_name, None, version, None)
    request.metadata_field.append("signature_def")
    response = _call(_prediction_stub(channel_or_stub).GetModelMetadata, request, timeout_s,
                     retries)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sigs)
    return dict(sigs.signature_def)


def wait_until_available(target, model_name: str = "t2i", timeout_s: float = 60.0,
                         version: int | None = None) -> int:
    """Poll GetModelStatus until a version is AVAILABLE; returns the newest such version.

    target: "HOST:PORT" or a channel. Raises ClientError(DEADLINE_EXCEEDED)
    naming the last state seen if none is AVAILABLE within timeout_s.
    """
    own = isinstance(target, str)
    channel = make_channel(target) if own else target
    try:
        return _poll_until_available(
            lambda timeout: model_status(channel, model_name, version, timeout_s=timeout), timeout_s,
            (ClientError,), lambda last: ClientError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"model {model_name} not AVAILABLE after {timeout_s:g}s; last status: {last}"))
    finally:
        if own:
            channel.close()


def _poll_until_available(statuses_within, timeout_s: float, errors, give_up) -> int:
    """The newest AVAILABLE version: polls `statuses_within(seconds)` (a list of
    VersionStatus, or one of `errors`), backing off from 0.05 s to 0.5 s; after
    `timeout_s` raises `give_up(the last status seen, in words)`."""
    deadline = time.monotonic() + float(timeout_s)
    last, delay = "no answer yet", 0.05
    while True:
        try:
            statuses = statuses_within(max(0.1, min(5.0, deadline - time.monotonic())))
            ready = [s.version for s in statuses if s.state == "AVAILABLE"]
            if ready:
                return max(ready)
            last = ", ".join(f"version {s.version} {s.state}"
                             + (f" ({s.error_message})" if s.error_message else "") for s in statuses)
        except errors as e:
            last = str(e)
        if time.monotonic() + delay > deadline:
            raise give_up(last)
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


# --------------------------------------------------------------------------
# command line


DEFAULT_REST_URL = "http://localhost:8501"


def wait_until_available_rest(base_url: str, model_name: str = "t2i", timeout_s: float = 60.0,
                              version: int | None = None) -> int:
    """`wait_until_available` over REST: polls GET /v1/models/NAME."""
    return _poll_until_available(
        lambda timeout: rest_model_status(base_url, model_name, version, timeout_s=timeout), timeout_s,
        (ClientError, RestError, OSError), lambda last: T2IError(
            f"model {model_name} not AVAILABLE at {base_url} after {timeout_s:g}s; last status: {last}"))


def build_parser(prog: str = "t2i client") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Generate images from captions with a served t2i model "
                               "(TF Serving gRPC API).")
    p.add_argument("captions", nargs="+", help="one or more captions")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--rest", default=None, metavar="URL",
                       help=f"the server's REST API (the default: {DEFAULT_REST_URL}); needs no "
                            "TensorFlow, so a call costs milliseconds, not the seconds of importing it")
    where.add_argument("--target", default=None, metavar="HOST:PORT",
                       help="the server's gRPC API instead, e.g. localhost:8500 (imports TensorFlow "
                            "to build the request)")
    p.add_argument("-o", "--out", help="PNG to write (one row per caption); required")
    add_deprecated_alias(p, "--output", "-o/--out", dest="out")
    p.add_argument("--seed", type=int, default=0,
                   help="first seed; sample k of every caption uses seed+k (default 0)")
    p.add_argument("--samples", type=int, default=8,
                   help="images per caption (default 8, as `t2i generate`)")
    p.add_argument("--model_name", default="t2i")
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--version_label", default=None)
    p.add_argument("--gif", action="store_true",
                   help="call the `trace` signature and also write OUT with .gif: the canvas "
                        "after each step")
    p.add_argument("--temperature", type=float, default=None,
                   help="call the `sample` signature with this sampling temperature (>= 0; 1: the "
                        "same images as serving_default, 0: the prior means)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per call (default 60)")
    p.add_argument("--batch_size", type=int, default=64,
                   help="examples per request (default 64, `t2i serve`'s default --max_batch_size); "
                        "more captions x samples are sent as several requests")
    p.add_argument("--retries", type=int, default=2, help="retries on UNAVAILABLE (default 2)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for the model to be AVAILABLE (a server that is "
                        "still starting; default 0: do not wait)")
    return p


def run_client(args) -> list[str]:
    from t2i.visualize import captioned_grid, save_canvas_gif

    if not args.out:
        raise T2IError("the PNG to write is required: -o/--out OUT.png")
    if args.samples < 1:
        raise T2IError(f"--samples must be >= 1, got {args.samples}")
    if args.batch_size < 1:
        raise T2IError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.version is not None and args.version_label is not None:
        raise T2IError("give --version or --version_label, not both")
    temperature = getattr(args, "temperature", None)
    if temperature is not None and args.gif:
        raise T2IError("--temperature and --gif cannot be combined: the trace signature samples at 1")
    if temperature is not None and args.signature not in ("serving_default", "sample"):
        raise T2IError(f"--temperature calls the `sample` signature; it cannot go with --signature {args.signature}")
    if temperature is not None:
        check_temperature(temperature, "--temperature")
    captions = list(args.captions)
    batch = [c for c in captions for _ in range(args.samples)]
    seeds = [args.seed + k for _ in captions for k in range(args.samples)]
    if args.wait < 0:
        raise T2IError(f"--wait must be >= 0 seconds, got {args.wait}")
    signature = "trace" if args.gif else "sample" if temperature is not None else args.signature
    call = dict(model_name=args.model_name, version=args.version, version_label=args.version_label,
                timeout_s=args.timeout, retries=args.retries)
    parts = []
    if args.target is None:  # REST: no TensorFlow in this process
        url = args.rest or DEFAULT_REST_URL
        if args.wait > 0:
            wait_until_available_rest(url, args.model_name, timeout_s=args.wait, version=args.version)
        for start in range(0, len(batch), args.batch_size):
            part = slice(start, start + args.batch_size)
            extra = ({"temperature": np.full(len(batch[part]), temperature, np.float32)}
                     if temperature is not None else None)
            parts.append(rest_predict(url, batch[part], seeds[part], signature_name=signature,
                                      inputs=extra, **call))
    else:
        channel = make_channel(args.target)
        try:
            if args.wait > 0:
                wait_until_available(channel, args.model_name, timeout_s=args.wait, version=args.version)
            for start in range(0, len(batch), args.batch_size):
                part = slice(start, start + args.batch_size)
                if temperature is not None:
                    parts.append(sample(channel, batch[part], seeds[part], temperature, **call))
                else:
                    parts.append(predict(channel, batch[part], seeds[part], signature_name=signature,
                                         **call))
        finally:
            channel.close()
    out = {alias: np.concatenate([p[alias] for p in parts]) for alias in parts[0]}
    if "images" not in out:
        raise T2IError(f"signature {signature!r} returned no 'images' output "
                       f"(outputs: {sorted(out)})")
    images = np.asarray(out["images"])
    if images.ndim != 4 or images.shape[0] != len(batch):
        raise T2IError(f"expected images [{len(batch)}, H, W, C], got shape {images.shape}")
    rows = [images[i * args.samples:(i + 1) * args.samples] for i in range(len(captions))]
    written = []
    path = args.out
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    captioned_grid(rows, captions).save(path, format="PNG")
    written.append(path)
    if args.gif:
        if "canvases" not in out:
            raise T2IError("the trace signature returned no 'canvases' output")
        canvases = np.asarray(out["canvases"])  # [B, T, H, W, C]
        if canvases.ndim != 5:
            raise T2IError(f"expected canvases [B, T, H, W, C], got shape {canvases.shape}")
        gif = os.path.splitext(path)[0] + ".gif"
        save_canvas_gif(gif, np.transpose(canvases, (1, 0, 2, 3, 4)), cols=args.samples)
        written.append(gif)
    return written


def main(argv=None, prog: str = "t2i client") -> int:
    """`t2i client ...`: errors end with one line `t2i: error: ...` and status 2."""
    args = build_parser(prog).parse_args(argv)
    try:
        written = run_client(args)
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m serving.client"))

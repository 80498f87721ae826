"""TF Serving's REST API (`--rest_api_port`) over a ModelServer.

Routes, bodies, messages and HTTP codes follow tensorflow_model_server
(`http_rest_api_handler.cc`, `http_rest_api_util.cc`, `util/json_tensor.cc`,
`http_server.cc`; g3doc/api_rest.md):

    POST /v1/models/NAME[/versions/V | /labels/L]:predict
         {"signature_name"?: S, "instances": [...]}  -> {"predictions": [...]}   (row format)
         {"signature_name"?: S, "inputs": ... }       -> {"outputs": ...}         (columnar)
    GET  /v1/models/NAME[/versions/V | /labels/L]            model status
    GET  /v1/models/NAME[/versions/V | /labels/L]/metadata   signature defs

DT_STRING values are JSON strings or {"b64": "..."}; string outputs whose
alias ends in `_bytes` come back as {"b64": "..."}. Errors are {"error": msg}
with TF Serving's HTTP mapping of the status code (INVALID_ARGUMENT and
FAILED_PRECONDITION 400, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, DEADLINE 504,
UNIMPLEMENTED 501, ...). A predict runs through `ModelServer.predict`, the gRPC
path: same validation, same concurrency slots (--max_concurrent_requests),
same images for the same seeds. Request bodies above --max_request_bytes get
413. Routing and request parsing are werkzeug's; the HTTP server is waitress
(a fixed pool of --rest_api_num_threads worker threads).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time

import grpc
import numpy as np
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from serving import wire
from serving.server.servable import DEFAULT_SIGNATURE
from serving.server.status import ServingError, http_status, truncate_message
from t2i import serving_contract as contract
from t2i.errors import T2IError

log = logging.getLogger("t2i.serving")

INVALID = grpc.StatusCode.INVALID_ARGUMENT
INT64_MAX = contract.INT64_MAX
# JSON numbers longer than this are refused before Python converts them (a float64 needs at
# most 309 integer digits; 5,000 digits would raise inside the json module).
MAX_NUMBER_DIGITS = 400
# Deepest tensor accepted from JSON (TensorFlow's own limit is 254; t2i's inputs have rank <= 4).
MAX_JSON_RANK = 32
_VERBS = "any(predict, classify, regress)"


class _NameConverter(BaseConverter):
    """A model name or version label: TF Serving's `[^/:]+`."""
    regex = r"[^/:]+"


class _VersionConverter(BaseConverter):
    """A version number: `\\d+` (kept as text; converted with a range check)."""
    regex = r"\d+"


def _url_map() -> Map:
    rules = []
    for spec, suffix in (("", ""), ("/versions/<version:version>", ""),
                         ("/labels/<name:label>", "")):
        base = f"/v1/models/<name:name>{spec}"
        rules.append(Rule(f"{base}:<{_VERBS}:verb>", methods=["POST"], endpoint="predict"))
        rules.append(Rule(base + suffix, methods=["GET"], endpoint="status"))
        rules.append(Rule(base + "/metadata", methods=["GET"], endpoint="metadata"))
    rules.append(Rule("/v1/models", methods=["GET"], endpoint="no_name"))
    return Map(rules, converters={"name": _NameConverter, "version": _VersionConverter},
               strict_slashes=False, merge_slashes=False)


class _Deadline:
    """The `context` ModelServer.predict expects (time_remaining, is_active), for REST."""

    def __init__(self, timeout_s: float | None):
        self._end = None if timeout_s is None else time.monotonic() + timeout_s

    def time_remaining(self):
        return None if self._end is None else self._end - time.monotonic()

    def is_active(self) -> bool:
        return True


# --------------------------------------------------------------------------
# JSON -> tensors (json_tensor.cc FillPredictRequestFromJson)


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _invalid(message: str) -> ServingError:
    return ServingError(INVALID, message)


def _dtype_name(dtype_enum: int) -> str:
    from serving.server.tensors import _dtype_name as name
    return name(dtype_enum)


def _type_error(value, dtype_enum) -> ServingError:
    return _invalid(f"JSON Value: {_json_text(value)} Type: {_json_type(value)} is not of "
                    f"expected type: {_dtype_name(dtype_enum)}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value) -> bytes:
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {_json_text(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


def _lossless(value, digits: int, largest: float) -> bool:
    if isinstance(value, int):
        return abs(value) <= (1 << digits) - 1
    if not np.isfinite(value):
        return True
    return -largest <= value <= largest


def _scalar(value, dtype_enum: int):
    """One JSON leaf -> a Python value for a tensor of `dtype_enum` (AddValueToTensor)."""
    from tensorflow.core.framework import types_pb2 as t
    if dtype_enum == t.DT_FLOAT or dtype_enum == t.DT_DOUBLE:
        if not _is_number(value):
            raise _type_error(value, dtype_enum)
        single = dtype_enum == t.DT_FLOAT
        if not _lossless(value, 24 if single else 53,
                         float(np.finfo(np.float32 if single else np.float64).max)):
            raise _invalid(f"Cannot convert JSON value: {_json_text(value)} to "
                           f"{'float' if single else 'double'} without loss of precision.")
        return float(value)
    if dtype_enum in (t.DT_INT32, t.DT_INT16, t.DT_INT8, t.DT_UINT8):
        if not (_is_int(value) and -2**31 <= value < 2**31):
            raise _type_error(value, dtype_enum)
        return value
    if dtype_enum == t.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype_enum)
        return value.encode("utf-8", errors="surrogatepass")
    if dtype_enum == t.DT_INT64:
        if not (_is_int(value) and contract.INT64_MIN <= value <= INT64_MAX):
            raise _type_error(value, dtype_enum)
        return value
    if dtype_enum == t.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype_enum)
        return value
    if dtype_enum == t.DT_UINT32:
        if not (_is_int(value) and 0 <= value < 2**32):
            raise _type_error(value, dtype_enum)
        return value
    if dtype_enum == t.DT_UINT64:
        if not (_is_int(value) and 0 <= value < 2**64):
            raise _type_error(value, dtype_enum)
        return value
    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                       f"Conversion of JSON Value: {_json_text(value)} to type: "
                       f"{_dtype_name(dtype_enum)}")


def _dense_shape(value) -> list[int]:
    """GetDenseTensorShape: the sizes of the first list at each nesting level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_JSON_RANK:
            raise _invalid(f"JSON value nested deeper than {MAX_JSON_RANK} lists: no tensor has "
                           f"rank above {MAX_JSON_RANK}")
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list[int], dtype_enum: int, out: list) -> None:
    """FillTensorProto: leaves at depth rank, lists of the sizes in `shape`."""
    from tensorflow.core.framework import types_pb2 as t
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(f"JSON Value: {_json_text(value)} found at incorrect level: "
                           f"{level + 1} in the JSON DOM. Expected at level: {rank}")
        if isinstance(value, dict):
            if dtype_enum != t.DT_STRING:
                raise _type_error(value, dtype_enum)
            out.append(_decode_b64(value))
        else:
            out.append(_scalar(value, dtype_enum))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                       f"expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype_enum, out)


def _tensor(values: list, shape: list[int], dtype_enum: int):
    """Python leaves -> TensorProto of `dtype_enum` and `shape`."""
    from serving.server.tensors import _tensorflow
    tf = _tensorflow()
    dtype = tf.dtypes.as_dtype(dtype_enum)
    if dtype == tf.string:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    elif dtype.is_integer:
        arr = np.asarray(values, dtype=np.int64 if dtype.min < 0 or dtype.size < 8 else np.uint64)
        arr = arr.astype(dtype.as_numpy_dtype)  # int_val keeps the low bits, as TF does
    else:
        arr = np.asarray(values, dtype=dtype.as_numpy_dtype)
    return tf.make_tensor_proto(arr.reshape(shape), dtype=dtype)


def _shape_text(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _instances_to_tensors(instances: list, infos: dict) -> dict:
    """FillTensorMapFromInstancesList: row format -> {alias: TensorProto}."""
    names = sorted(infos)
    first = instances[0]
    if not isinstance(first, dict) and len(names) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")

    def is_object(value):
        return isinstance(value, dict) and not _is_b64(value)

    objects = is_object(first)
    values: dict[str, list] = {}
    shapes: dict[str, list] = {}
    sizes: dict[str, int] = {}

    def add(item, name):
        if name not in infos:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        leaves: list = []
        _fill(item, 0, shape, infos[name].dtype, leaves)
        if name not in sizes:
            sizes[name], shapes[name] = len(leaves), shape
        elif sizes[name] != len(leaves):
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(leaves)}")
        elif shapes[name] != shape:
            raise _invalid(f"Expecting shape {_shape_text(shapes[name])} but got: "
                           f"{_shape_text(shape)}")
        values.setdefault(name, []).extend(leaves)

    for i, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise _invalid(f"Expecting object but got list at item {i} of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as e:
                    raise _invalid(f"Failed to process element: {i} key: {name} of 'instances' "
                                   f"list. Error: {e.code.name}: {e.message}") from None
            if set(element) != set(names):
                raise _invalid(f"Failed to process element: {i} of 'instances' list. JSON "
                               f"object: {_json_text(element)} keys must be equal to: "
                               f"{','.join(names)}")
        else:
            if is_object(element):
                raise _invalid(f"Expecting value/list but got object at item {i} of input list")
            try:
                add(element, names[0])
            except ServingError as e:
                raise _invalid(f"Failed to process element: {i} of 'instances' list. Error: "
                               f"{e.code.name}: {e.message}") from None
    return {name: _tensor(values[name], [len(instances)] + shapes[name], infos[name].dtype)
            for name in values}


def _inputs_to_tensors(inputs, infos: dict) -> dict:
    """FillTensorMapFromInputsMap: columnar format -> {alias: TensorProto}."""
    names = sorted(infos)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        inputs = {names[0]: inputs}
    out = {}
    for name in names:
        if name not in inputs:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        shape = _dense_shape(inputs[name])
        leaves: list = []
        _fill(inputs[name], 0, shape, infos[name].dtype, leaves)
        out[name] = _tensor(leaves, shape, infos[name].dtype)
    return out


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _invalid(f"JSON Parse error: a number of {len(text)} digits; at most "
                       f"{MAX_NUMBER_DIGITS} are accepted")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _invalid(f"JSON Parse error: a number of {len(text)} characters; at most "
                       f"{MAX_NUMBER_DIGITS} are accepted")
    return float(text)


def parse_predict_body(body: bytes, signature_inputs) -> tuple[str, str, dict]:
    """(signature name, "row" or "columnar", {alias: TensorProto}) of a :predict body.

    signature_inputs(name) -> {alias: TensorInfo} of that signature (raises
    ServingError for an unknown model or signature).
    """
    if not body.strip():
        raise _invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body, parse_int=_parse_int, parse_float=_parse_float)
    except UnicodeDecodeError as e:
        raise _invalid(f"JSON Parse error: Invalid encoding in string. at offset: {e.start}") \
            from None
    except json.JSONDecodeError as e:
        raise _invalid(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except RecursionError:
        raise _invalid("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {_json_text(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise _invalid(f"JSON Value: {_json_text(doc)} not formatted correctly. "
                       f"'signature_name' key must be a string value.")
    infos = signature_inputs(signature)
    if not infos:
        raise _invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise _invalid(f"JSON Value: {_json_text(doc)} Not formatted correctly expecting "
                           f"only one of 'inputs' or 'instances' keys to exist ")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _invalid(f"JSON Value: {_json_text(doc)} Excepting 'instances' to be an "
                           f"list/array")
        if not instances:
            raise _invalid(f"JSON Value: {_json_text(doc)} No values in 'instances' array")
        return signature, "row", _instances_to_tensors(instances, infos)
    if "inputs" in doc:
        return signature, "columnar", _inputs_to_tensors(doc["inputs"], infos)
    raise _invalid("Missing 'inputs' or 'instances' key")


# --------------------------------------------------------------------------
# tensors -> JSON (json_tensor.cc MakeJsonFromTensors)


def _json_values(alias: str, arr: np.ndarray):
    """An output array as nested JSON values (float32 written at float32 precision)."""
    if arr.dtype == object or arr.dtype.kind == "S":
        as_bytes = alias.endswith("_bytes")
        flat = [base64.b64encode(x).decode("ascii") if as_bytes else
                (x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x))
                for x in arr.reshape(-1)]
        if as_bytes:
            flat = [{"b64": x} for x in flat]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(arr.shape).tolist()
    if arr.dtype in (np.float32, np.float16) or arr.dtype.name == "bfloat16":
        # Shortest repr that round-trips the float32 (TF Serving's WriteDecimal).
        return arr.astype(np.float32).astype(str).astype(np.float64).tolist()
    if arr.dtype.kind == "c":
        raise _invalid(f"Failed to write JSON value for tensor type: {arr.dtype.name}")
    return arr.tolist()


def predict_response_json(outputs: dict, layout: str) -> dict:
    """{"predictions": ...} (row) or {"outputs": ...} (columnar) of {alias: ndarray}."""
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if layout == "columnar":
        if len(names) == 1:
            return {"outputs": _json_values(names[0], outputs[names[0]])}
        return {"outputs": {n: _json_values(n, outputs[n]) for n in names}}
    batch = None
    for name in names:
        arr = outputs[name]
        if arr.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and arr.shape[0] != batch:
            raise _invalid(f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} "
                           f"expecting: {batch}")
        batch = arr.shape[0]
    columns = {n: _json_values(n, outputs[n]) for n in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(batch)]}


# --------------------------------------------------------------------------
# the WSGI application


class RestApi:
    """The WSGI application: TF Serving's REST routes over a ModelServer."""

    def __init__(self, server, timeout_s: float | None = 30.0,
                 max_request_bytes: int | None = None):
        self.server = server
        self.timeout_s = timeout_s
        self.max_request_bytes = max_request_bytes
        self.url_map = _url_map()

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = self.max_request_bytes
        try:
            status, body = self._dispatch(request)
        except ServingError as e:
            status, body = http_status(e.code), {"error": truncate_message(e.message)}
        except RequestEntityTooLarge:
            status, body = 413, {"error": _too_large(self.max_request_bytes,
                                                     request.content_length)}
        except Exception as e:  # noqa: BLE001 - the server must keep serving
            log.exception("internal error in REST request %s %s", request.method, request.path)
            status, body = 500, {"error": f"{type(e).__name__}: {e}"}
        if 400 <= status < 500:  # one line per refused request, no trace
            log.info("REST %s %s -> %d: %s", request.method, request.path[:200], status,
                     body["error"][:300])
        text = json.dumps(body, ensure_ascii=False)
        response = Response(text, status=status, content_type="application/json")
        return response(environ, start_response)

    def _dispatch(self, request: Request):
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as e:
            if request.path.startswith("/v1/") or request.path == "/v1":
                raise _invalid(f"Malformed request: {request.method} {request.path}") from None
            if isinstance(e, NotFound):
                return 404, {"error": f"Not found: {request.method} {request.path}"}
            raise _invalid(f"Malformed request: {request.method} {request.path}") from None
        if endpoint == "no_name":
            raise _invalid("Missing model name in request.")
        spec = self._model_spec(args)
        if endpoint == "predict":
            return 200, self._predict(spec, args["verb"], request.get_data())
        if endpoint == "metadata":
            return 200, self._metadata(spec)
        return 200, self._status(spec)

    @staticmethod
    def _model_spec(args):
        from tensorflow_serving.apis import model_pb2
        spec = model_pb2.ModelSpec(name=args["name"])
        if "version" in args:
            text = args["version"]
            if int(text) > INT64_MAX:
                raise _invalid(f"Failed to convert version: {text} to numeric.")
            spec.version.value = int(text)
        elif "label" in args:
            spec.version_label = args["label"]
        return spec

    def _predict(self, spec, verb: str, body: bytes) -> dict:
        from tensorflow_serving.apis import predict_pb2
        if verb != "predict":
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, (
                f"{verb.capitalize()} is not implemented by the local model server "
                f"(Predict only)"))

        def signature_inputs(name: str) -> dict:
            servable = self.server.resolve(spec)
            key = name or DEFAULT_SIGNATURE
            sig = servable.signatures.get(key)
            if sig is None:
                raise _invalid(f'Serving signature name: "{key}" not found in signature def')
            return sig.inputs

        deadline = _Deadline(self.timeout_s)
        # The slot covers parsing too: a JSON body takes many times its size in memory while
        # it becomes tensors, so at most --max_concurrent_requests bodies are parsed at once.
        with self.server.request_slot(deadline):
            signature, layout, tensors = parse_predict_body(body, signature_inputs)
            request = predict_pb2.PredictRequest()
            request.model_spec.CopyFrom(spec)
            request.model_spec.signature_name = signature
            for alias, proto in tensors.items():
                request.inputs[alias].CopyFrom(proto)
            del tensors
            response = self.server.predict(request, deadline, slot_held=True)
        outputs = {alias: wire.decode(proto) for alias, proto in response.outputs.items()}
        return predict_response_json(outputs, layout)

    def _status(self, spec) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        response = self.server.get_model_status(request)
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)

    def _metadata(self, spec) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=["signature_def"])
        response = self.server.get_model_metadata(request)
        sigs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigs)
        options = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return {"model_spec": json_format.MessageToDict(response.model_spec, **options),
                "metadata": {"signature_def": json_format.MessageToDict(sigs, **options)}}


def _too_large(limit: int | None, size: int | None = None) -> str:
    size_text = f" of {size} bytes" if size is not None else ""
    return f"Request body{size_text} is larger than --max_request_bytes={limit}"


def _json_error_channel(limit: int | None):
    """A waitress channel whose own error answers (a body over the size limit, a malformed
    request line or chunk) are TF Serving's {"error": ...} JSON instead of plain text."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self):
            e = self.request.error
            message = (_too_large(limit) if e.code == 413
                       else f"{e.reason}: {e.body}".strip().rstrip(":"))
            log.info("REST request refused by the HTTP layer -> %d: %s", e.code, message[:300])
            body = json.dumps({"error": message}).encode("utf-8")
            self.status = f"{e.code} {e.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


class RestServer:
    """waitress serving a RestApi on host:port (port 0 = any free); binds at construction."""

    def __init__(self, model_server, host: str, port: int, *, threads: int = 4,
                 timeout_s: float | None = 30.0, max_request_bytes: int | None = None):
        import waitress

        self.app = RestApi(model_server, timeout_s=timeout_s, max_request_bytes=max_request_bytes)
        # Bodies up to 4x the limit are read (waitress keeps those over 512 KiB in a temporary
        # file, not in memory) and refused by the app; larger ones waitress refuses from their
        # Content-Length before reading them. Both answer 413 with TF Serving's JSON error.
        limit = 4 * (max_request_bytes or 2**31 - 1) + 65536
        try:
            self._server = waitress.create_server(
                self.app, host=host.strip("[]"), port=int(port), threads=int(threads),
                max_request_body_size=limit, ident="t2i-serving", clear_untrusted_proxy_headers=True,
                channel_timeout=max(60, int(timeout_s or 0) + 30))
        except OSError as e:
            raise T2IError(f"cannot listen on {host}:{port} (--rest_api_port): "
                           f"{e.strerror or e}") from None
        self._server.channel_class = _json_error_channel(max_request_bytes)
        self.port = int(self._server.effective_port)
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serving-rest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:  # the socket was closed by stop()
            pass

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; let running requests finish for up to grace_s seconds."""
        self._server.close()
        dispatcher = getattr(self._server, "task_dispatcher", None)
        if dispatcher is not None:
            dispatcher.shutdown(cancel_pending=True, timeout=max(grace_s, 0.1))
        if self._thread is not None:
            self._thread.join(timeout=max(grace_s, 1.0))

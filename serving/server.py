"""A local stand-in for `tensorflow_model_server` (gRPC), for development and tests.

It follows TF Serving's contract (../shared/docs/serving-contract.md) so that a
client written against it works unchanged against the real server:

- layout `<base_path>/<int version>/saved_model.pb`, version policies
  latest{num_versions}/all/specific and version labels (`--model_config_file`);
- a file-system poller that loads new versions, replays
  `assets.extra/tf_serving_warmup_requests` before a version is AVAILABLE,
  switches "latest" atomically and only then unloads versions that left the
  policy (in-flight requests keep the version they started on);
- PredictionService.Predict / GetModelMetadata, ModelService.GetModelStatus /
  HandleReloadConfigRequest and grpc.health.v1, with TF Serving's status codes
  and messages (truncated to 1024 characters + "...TRUNCATED");
- outputs serialised like TF Serving (typed value fields, `Tensor::AsProtoField`)
  unless --enable_serialization_as_tensor_content.

Beyond TF Serving it validates input ranks, equal batch sizes and non-empty
batches before running a signature, bounds concurrency
(--max_concurrent_requests), binds 127.0.0.1 unless --host says otherwise, and
retries a failed version when its directory changes. Not implemented: REST,
Classify/Regress/MultiInference, batching, monitoring.

    python -m serving.server --port 8500 --model_name t2i --model_base_path /models/t2i
    t2i serve --model_config_file models.config
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np

from t2i.errors import T2IError
from serving import model_config as mc
from serving import wire

log = logging.getLogger("t2i.serving")

# ManagerState values of tensorflow.serving.ModelVersionStatus.State.
START, LOADING, AVAILABLE, UNLOADING, END = 10, 20, 30, 40, 50
STATE_NAMES = {0: "UNKNOWN", START: "START", LOADING: "LOADING", AVAILABLE: "AVAILABLE",
               UNLOADING: "UNLOADING", END: "END"}

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000          # WarmupConsts::kMaxNumRecords
ERROR_MESSAGE_LIMIT = 1024         # grpc_status_util.cc kErrorMessageLimit
INT32_MAX = 2**31 - 1
HEALTH_SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService",
                   "PredictionService", "ModelService")

_tf = None
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _tensorflow():
    """Import TensorFlow (and tensorflow_text, whose ops exported graphs use) once."""
    global _tf
    if _tf is None:
        import tensorflow as tf
        try:  # registers the TF Text ops (CaseFoldUTF8, ...) before any load
            import tensorflow_text  # noqa: F401
        except ImportError:  # pragma: no cover - generic use without tf-text
            log.warning("tensorflow_text is not installed: models using TF Text ops will not load")
        _tf = tf
    return _tf


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
    return text or "unknown TensorFlow error"


def _dtype_name(enum_value: int) -> str:
    """DataTypeString: DT_FLOAT -> 'float', DT_STRING -> 'string', ..."""
    from tensorflow.core.framework import types_pb2
    try:
        name = types_pb2.DataType.Name(int(enum_value))
    except ValueError:
        return f"<invalid dtype {enum_value}>"
    if name.endswith("_REF"):
        return name[3:-4].lower() + "_ref"
    return name[3:].lower() if name.startswith("DT_") else name.lower()


def _shape_str(dims) -> str:
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


# --------------------------------------------------------------------------
# tensors


def parse_tensor_proto(proto) -> np.ndarray:
    """TensorProto -> ndarray, failing where tensorflow::Tensor::FromProto fails."""
    tf = _tensorflow()
    from tensorflow.core.framework import types_pb2
    if proto.dtype in (types_pb2.DT_INVALID, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT):
        raise ValueError("unsupported dtype")
    if proto.dtype >= 100:  # reference types
        raise ValueError("reference dtype")
    if proto.tensor_shape.unknown_rank or any(d.size < 0 for d in proto.tensor_shape.dim):
        raise ValueError("invalid shape")
    arr = tf.make_ndarray(proto)
    want = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if tuple(arr.shape) != want:
        raise ValueError("shape mismatch")
    return arr


def _as_proto_field(arr: np.ndarray, dtype_enum: int):
    """Tensor::AsProtoField: values in the typed repeated field, not tensor_content."""
    tf = _tensorflow()
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    fast = wire.encode(arr, dtype_enum)
    if fast is not None:
        return tensor_pb2.TensorProto.FromString(fast)
    proto = tensor_pb2.TensorProto(dtype=dtype_enum)
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in arr.shape]))
    flat = np.ascontiguousarray(arr).reshape(-1)
    if dtype_enum == types_pb2.DT_STRING:
        proto.string_val.extend(x if isinstance(x, bytes) else str(x).encode("utf-8") for x in flat)
    elif dtype_enum == types_pb2.DT_UINT32:
        proto.uint32_val.extend(flat.tolist())
    elif dtype_enum == types_pb2.DT_UINT64:
        proto.uint64_val.extend(flat.tolist())
    elif dtype_enum in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        proto.half_val.extend(flat.view(np.uint16).astype(np.int64).tolist())
    elif dtype_enum == types_pb2.DT_COMPLEX64:
        proto.scomplex_val.extend(np.stack([flat.real, flat.imag], -1).reshape(-1).tolist())
    elif dtype_enum == types_pb2.DT_COMPLEX128:
        proto.dcomplex_val.extend(np.stack([flat.real, flat.imag], -1).reshape(-1).tolist())
    else:
        return tf.make_tensor_proto(arr)
    return proto


# --------------------------------------------------------------------------
# one loaded version


@dataclass
class _Signature:
    key: str
    fn: object                 # concrete function: fn(**{alias: tensor}) -> {alias: tensor}
    inputs: dict               # alias -> TensorInfo (sorted by alias)
    outputs: dict              # alias -> TensorInfo (sorted by alias)
    batch_major: bool          # every input has known rank >= 1 and dim 0 == -1


def _read_meta_graph(path: str, tags: tuple[str, ...]):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    saved = saved_model_pb2.SavedModel()
    if os.path.exists(pb):
        with open(pb, "rb") as f:
            saved.ParseFromString(f.read())
    elif os.path.exists(pbtxt):
        with open(pbtxt, encoding="utf-8") as f:
            text_format.Parse(f.read(), saved)
    else:
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           f"Could not find SavedModel .pb or .pbtxt at supplied export directory "
                           f"path: {path}. Expected {path}/saved_model.pb and {path}/variables/")
    for meta in saved.meta_graphs:
        if set(meta.meta_info_def.tags) == set(tags):
            return meta
    have = [sorted(m.meta_info_def.tags) for m in saved.meta_graphs]
    raise ServingError(grpc.StatusCode.NOT_FOUND,
                       f"Could not find meta graph def matching supplied tags: "
                       f"{{ {' '.join(sorted(tags))} }}. The SavedModel has tag-sets {have}. "
                       f"To inspect available tag-sets in the SavedModel, please use the "
                       f"SavedModel CLI: `saved_model_cli`")


class Servable:
    """One loaded version of a model: its signatures, ready to run."""

    def __init__(self, name: str, version: int, path: str, loaded, signature_defs: dict,
                 signatures: dict):
        self.name = name
        self.version = version
        self.path = path
        self._loaded = loaded          # keeps the functions' resources alive
        self.signature_defs = signature_defs
        self.signatures = signatures

    @classmethod
    def load(cls, name: str, version: int, path: str, tags=("serve",)) -> "Servable":
        tf = _tensorflow()
        meta = _read_meta_graph(path, tuple(tags))
        try:
            loaded = tf.saved_model.load(path, tags=list(tags))
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e.error_code), clean_tf_message(e.message)) from None
        signature_defs = {k: meta.signature_def[k] for k in sorted(meta.signature_def)}
        signatures = {}
        for key, fn in loaded.signatures.items():
            sdef = meta.signature_def.get(key)
            if sdef is None:
                continue
            inputs = {a: sdef.inputs[a] for a in sorted(sdef.inputs)}
            outputs = {a: sdef.outputs[a] for a in sorted(sdef.outputs)}
            batch_major = bool(inputs) and all(
                not ti.tensor_shape.unknown_rank and len(ti.tensor_shape.dim) >= 1
                and ti.tensor_shape.dim[0].size == -1 for ti in inputs.values())
            signatures[key] = _Signature(key, fn, inputs, outputs, batch_major)
        return cls(name, version, path, loaded, signature_defs, signatures)

    # ---- Predict ---------------------------------------------------------

    def predict(self, request, tensor_content: bool = False):
        """Run a PredictRequest (TF Serving's RunPredict) -> PredictResponse."""
        tf = _tensorflow()
        from tensorflow_serving.apis import predict_pb2
        invalid = grpc.StatusCode.INVALID_ARGUMENT

        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{key}" not found.')
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.signature_name = key
        response.model_spec.version.value = self.version

        # VerifyRequestInputsSize
        if len(request.inputs) != len(sig.inputs):
            req, want = sorted(request.inputs), list(sig.inputs)
            extra = sorted(set(req) - set(want))
            missing = sorted(set(want) - set(req))
            raise ServingError(invalid, (
                f"input size does not match signature: {len(req)}!={len(want)} "
                f"len({{{','.join(req)}}}) != len({{{','.join(want)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."))
        # GetInputValues
        arrays = {}
        for alias, info in sig.inputs.items():
            if alias not in request.inputs:
                raise ServingError(invalid, (
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request "
                    f"{{{','.join(sorted(request.inputs))}}}, or default input alias set: "))
            try:
                arrays[alias] = parse_tensor_proto(request.inputs[alias])
            except Exception:
                raise ServingError(invalid, f"tensor parsing error: {alias}") from None
        # output_filter
        aliases: list[str] = []
        for alias in request.output_filter:
            if alias not in sig.outputs:
                raise ServingError(invalid, (
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{','.join(sig.outputs)}}}."))
            if alias in aliases:
                raise ServingError(invalid, f"duplicate output tensor alias: {alias}")
            aliases.append(alias)
        if not aliases:
            aliases = list(sig.outputs)
        # Session::Run's feed dtype check
        for i, (alias, info) in enumerate(sig.inputs.items()):
            sent = request.inputs[alias].dtype
            if sent != info.dtype:
                raise ServingError(invalid, f"Expects arg[{i}] to be {_dtype_name(info.dtype)} "
                                            f"but {_dtype_name(sent)} is provided")
        # Beyond TF Serving: shapes against the signature, batch sizes.
        for alias, info in sig.inputs.items():
            if info.tensor_shape.unknown_rank:
                continue
            want = [d.size for d in info.tensor_shape.dim]
            got = arrays[alias].shape
            if len(got) != len(want) or any(w not in (-1, g) for w, g in zip(want, got)):
                raise ServingError(invalid, (
                    f'input "{alias}" has shape {_shape_str(got)} but signature "{key}" expects '
                    f"shape {_shape_str(want)} (rank {len(want)}; -1 = any size)"))
        if sig.batch_major:
            sizes = {alias: arr.shape[0] for alias, arr in arrays.items()}
            if len(set(sizes.values())) > 1:
                listing = ", ".join(f"{a} has {n}" for a, n in sizes.items())
                raise ServingError(invalid, (
                    f"inputs have different batch sizes (dim 0): {listing}; every input of "
                    f'signature "{key}" needs one entry per example'))
            empty = [a for a, n in sizes.items() if n == 0]
            if empty:
                raise ServingError(invalid, (
                    f"empty batch: input {empty[0]} has 0 entries (dim 0 is 0); send at least "
                    f"one example"))
        # Run.
        feeds = {alias: tf.convert_to_tensor(arrays[alias], dtype=tf.dtypes.as_dtype(info.dtype))
                 for alias, info in sig.inputs.items()}
        try:
            result = sig.fn(**feeds)
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e.error_code), clean_tf_message(e.message)) from None
        except (TypeError, ValueError) as e:
            raise ServingError(invalid, clean_tf_message(str(e))) from None
        for alias in aliases:
            value = result[alias]
            arr = value.numpy()
            if tensor_content:
                response.outputs[alias].CopyFrom(tf.make_tensor_proto(arr))
                continue
            fast = wire.encode(arr, value.dtype.as_datatype_enum)
            if fast is not None:
                response.outputs[alias].MergeFromString(fast)
            else:
                response.outputs[alias].CopyFrom(_as_proto_field(arr, value.dtype.as_datatype_enum))
        return response


# --------------------------------------------------------------------------
# the model table


@dataclass
class _Version:
    version: int
    state: int = START
    error: tuple | None = None        # (grpc.StatusCode, message) if the load failed
    servable: Servable | None = None
    fingerprint: tuple | None = None  # of the directory when a load failed


class _Model:
    def __init__(self, config: mc.ModelConfig):
        self.config = config
        self.versions: dict[int, _Version] = {}
        self.last_scan_note = None


def _fingerprint(path: str) -> tuple:
    parts = []
    for rel in ("", "saved_model.pb", "saved_model.pbtxt", "variables",
                os.path.join("variables", "variables.index"), WARMUP_FILE):
        try:
            st = os.stat(os.path.join(path, rel))
            parts.append((rel, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((rel, None, None))
    return tuple(parts)


class ModelServer:
    """The model server: a gRPC server plus a file-system poller.

    `start()` loads what the policies ask for (warmup included), then binds
    and serves; `port` is the bound port (pass port=0 for a free one).
    `stop()` stops accepting, lets in-flight requests finish within `grace_s`.
    """

    def __init__(self, models=None, *, model_name: str | None = None,
                 model_base_path: str | None = None, model_config_file: str | None = None,
                 port: int = 8500, host: str = "127.0.0.1",
                 file_system_poll_wait_seconds: float = 1.0,
                 model_config_file_poll_wait_seconds: float = 0.0,
                 enable_model_warmup: bool = True, num_request_iterations_for_warmup: int = 1,
                 grpc_max_threads: int | None = None, max_concurrent_requests: int = 0,
                 queue_timeout_s: float = 1.0, max_request_bytes: int = INT32_MAX,
                 saved_model_tags=("serve",), tensor_content: bool = False,
                 grace_s: float = 5.0):
        if models is not None:
            configs = list(models)
        elif model_config_file:
            configs = mc.parse_model_config_file(model_config_file)
        elif model_base_path:
            configs = [mc.single_model_config(model_name or "default", model_base_path)]
        else:
            raise T2IError("no model to serve: give --model_base_path (with --model_name) or "
                           "--model_config_file")
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise T2IError(f"model names must be unique, got {names}")
        if max_request_bytes is not None and max_request_bytes <= 0:
            raise T2IError(f"--max_request_bytes must be positive, got {max_request_bytes}")
        if max_concurrent_requests < 0:
            raise T2IError(f"--max_concurrent_requests must be >= 0, got {max_concurrent_requests}")
        if num_request_iterations_for_warmup < 1:
            raise T2IError("--num_request_iterations_for_warmup must be >= 1")
        self._models: dict[str, _Model] = {c.name: _Model(c) for c in configs}
        self.model_config_file = model_config_file if models is None else None
        self.requested_port = int(port)
        self.host = host
        self.poll_wait_s = float(file_system_poll_wait_seconds)
        self.config_poll_wait_s = float(model_config_file_poll_wait_seconds or 0)
        self.enable_model_warmup = bool(enable_model_warmup)
        self.warmup_iterations = int(num_request_iterations_for_warmup)
        self.grpc_max_threads = int(grpc_max_threads or max(4, 4 * (os.cpu_count() or 1)))
        self.max_concurrent_requests = int(max_concurrent_requests or 0)
        self.queue_timeout_s = float(queue_timeout_s)
        self.max_request_bytes = int(max_request_bytes or INT32_MAX)
        self.saved_model_tags = tuple(saved_model_tags)
        self.tensor_content = bool(tensor_content)
        self.grace_s = float(grace_s)

        self._lock = threading.Lock()          # the model table; never held while running a model
        self._poll_lock = threading.RLock()    # serialises polls and config reloads
        self._slots = (threading.BoundedSemaphore(self.max_concurrent_requests)
                       if self.max_concurrent_requests else None)
        self._busy = 0
        self._stopping = threading.Event()
        self._server = None
        self._health = None
        self._poller = None
        self.port = None

    # ---- lifecycle ---------------------------------------------------------

    def start(self) -> "ModelServer":
        from grpc_health.v1 import health, health_pb2_grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        _tensorflow()
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.grpc_max_threads,
                                       thread_name_prefix="serving-grpc"),
            options=[("grpc.max_receive_message_length", self.max_request_bytes),
                     ("grpc.max_send_message_length", INT32_MAX),
                     ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionServicer(self), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelServicer(self), server)
        self._health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        try:  # bind first: a busy port fails before minutes of loading
            port = server.add_insecure_port(f"{host}:{self.requested_port}")
            reason = "address in use or not available"
        except RuntimeError as e:
            port, reason = 0, str(e)
        if not port:
            raise T2IError(f"cannot listen on {host}:{self.requested_port}: {reason}")
        self.port = port
        self._server = server
        self.poll_once()  # like tensorflow_model_server: serve once the initial load is done
        server.start()
        log.info("Running gRPC ModelServer at %s:%d ...", host, port)
        if self.poll_wait_s > 0 or self.config_poll_wait_s > 0:
            self._poller = threading.Thread(target=self._poll_loop, name="serving-poller",
                                            daemon=True)
            self._poller.start()
        return self

    def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting requests, finish in-flight ones (up to grace_s), unload."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        grace = self.grace_s if grace_s is None else grace_s
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._server is not None:
            self._server.stop(grace).wait()
        if self._poller is not None:
            self._poller.join(timeout=max(grace, 1.0))
        with self._lock:
            for model in self._models.values():
                for rec in model.versions.values():
                    if rec.state == AVAILABLE:
                        rec.state, rec.servable = END, None
        log.info("Server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the gRPC server terminates (True) or `timeout` passes."""
        return self._server.wait_for_termination(timeout) if self._server else True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- versions --------------------------------------------------------

    def _poll_loop(self) -> None:
        next_fs = time.monotonic() + self.poll_wait_s if self.poll_wait_s > 0 else float("inf")
        next_cfg = (time.monotonic() + self.config_poll_wait_s
                    if self.config_poll_wait_s > 0 and self.model_config_file else float("inf"))
        while not self._stopping.is_set():
            wait = min(next_fs, next_cfg) - time.monotonic()
            if wait == float("inf"):
                return
            if self._stopping.wait(max(wait, 0.0)):
                return
            try:
                now = time.monotonic()
                if now >= next_cfg:
                    next_cfg = now + self.config_poll_wait_s
                    self._reload_config_file()
                if now >= next_fs:
                    next_fs = now + self.poll_wait_s
                    self.poll_once()
            except Exception:  # keep polling whatever happens
                log.exception("file system poll failed")

    def _reload_config_file(self) -> None:
        try:
            configs = mc.parse_model_config_file(self.model_config_file)
        except T2IError as e:
            log.error("Keeping the current config: %s", e)
            return
        with self._lock:
            current = [m.config for m in self._models.values()]
        if configs != current:
            log.info("Reloading %s", self.model_config_file)
            self.apply_config(configs)

    def apply_config(self, configs) -> None:
        """Replace the model list (HandleReloadConfigRequest / config file reload)."""
        configs = list(configs)
        with self._poll_lock:
            with self._lock:
                wanted = {c.name: c for c in configs}
                removed = [self._models.pop(n) for n in list(self._models) if n not in wanted]
                for name, cfg in wanted.items():
                    if name in self._models:
                        self._models[name].config = cfg
                    else:
                        self._models[name] = _Model(cfg)
                for model in removed:
                    for rec in model.versions.values():
                        if rec.state == AVAILABLE:
                            rec.state, rec.servable = END, None
            for model in removed:
                log.info("Unloaded all versions of removed model %s", model.config.name)
            self.poll_once()

    def poll_once(self) -> None:
        """Scan every base path now: load new versions, unload what left the policy."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                if self._stopping.is_set():
                    break
                self._sync_model(model)
            self._update_health()

    def _sync_model(self, model: _Model) -> None:
        cfg = model.config
        found = mc.scan_versions(cfg.base_path)
        if found is None:
            note = (f"Could not find base path {cfg.base_path} for servable {cfg.name}; "
                    f"expected {cfg.base_path}/<version number>/saved_model.pb")
            if note != model.last_scan_note:
                log.warning("%s", note)
            model.last_scan_note = note
            return  # like TF Serving: a failed poll changes nothing
        if not found:
            note = (f"No versions of servable {cfg.name} found under base path {cfg.base_path}. "
                    f"Did you forget to name your leaf directory as a number (eg. '/1/')?")
        else:
            note = None
        if note and note != model.last_scan_note:
            log.warning("%s", note)
        model.last_scan_note = note
        aspired = mc.aspired_versions(cfg.policy, found)

        for version in sorted(aspired, reverse=True):
            if self._stopping.is_set():
                return
            with self._lock:
                rec = model.versions.get(version)
            path = found[version]
            if rec is not None and rec.state in (START, LOADING, AVAILABLE, UNLOADING):
                continue
            if rec is not None and rec.error is not None and rec.fingerprint == _fingerprint(path):
                continue  # failed before and unchanged since
            self._load_version(model, version, path)

        with self._lock:
            any_aspired_ok = any(model.versions.get(v) is not None
                                 and model.versions[v].state == AVAILABLE for v in aspired)
            leaving = [rec for v, rec in model.versions.items()
                       if rec.state == AVAILABLE and v not in aspired
                       and (any_aspired_ok or not aspired)]
            for rec in leaving:  # out of "latest" before anything is released
                rec.state = UNLOADING
        for rec in leaving:
            with self._lock:
                rec.servable = None  # in-flight requests hold their own reference
                rec.state = END
            log.info("Unloaded servable version {name: %s version: %d}", cfg.name, rec.version)

    def _load_version(self, model: _Model, version: int, path: str) -> None:
        name = model.config.name
        rec = _Version(version=version, state=START)
        with self._lock:
            model.versions[version] = rec
            rec.state = LOADING
        fingerprint = _fingerprint(path)
        log.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
        t0 = time.monotonic()
        error = None
        servable = None
        try:
            servable = Servable.load(name, version, path, self.saved_model_tags)
            if self.enable_model_warmup:
                self._warmup(servable)
        except ServingError as e:
            error = (e.code, e.message)
        except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
            tf = _tensorflow()
            if isinstance(e, tf.errors.OpError):
                error = (grpc_code(e.error_code), clean_tf_message(e.message))
            else:
                error = (grpc.StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")
        with self._lock:
            if error is None:
                rec.servable, rec.state = servable, AVAILABLE
            else:
                rec.servable, rec.state, rec.error, rec.fingerprint = None, END, error, fingerprint
        if error is None:
            log.info("Successfully loaded servable version {name: %s version: %d} in %.2fs",
                     name, version, time.monotonic() - t0)
        else:
            log.error("Loading servable: {name: %s version: %d} failed: %s: %s",
                      name, version, error[0].name, error[1])

    def _warmup(self, servable: Servable) -> None:
        """Replay assets.extra/tf_serving_warmup_requests through Predict."""
        tf = _tensorflow()
        from google.protobuf.message import DecodeError
        from tensorflow_serving.apis import prediction_log_pb2
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.exists(path):
            log.info("No warmup data file found at %s", path)
            return
        count = 0
        try:
            for record in tf.data.TFRecordDataset(path):
                entry = prediction_log_pb2.PredictionLog()
                try:
                    entry.ParseFromString(record.numpy())
                except DecodeError:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"Failed to parse warmup record #{count} from {path}") from None
                kind = entry.WhichOneof("log_type")
                if kind == "predict_log":
                    for _ in range(self.warmup_iterations):
                        try:
                            servable.predict(entry.predict_log.request, self.tensor_content)
                        except ServingError as e:
                            raise ServingError(e.code, f"warmup request #{count} from {path} "
                                                       f"failed: {e.message}") from None
                elif kind is not None:
                    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                       f"Unsupported log_type for warmup: {kind} (this local "
                                       f"server replays predict_log only)")
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"Number of warmup records exceeds the maximum "
                                       f"({MAX_WARMUP_RECORDS}) at {path}")
        except tf.errors.DataLossError as e:
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"{clean_tf_message(e.message)}. Please verify your warmup data "
                               f"is in TFRecord format.") from None
        log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                 path, count)

    def _update_health(self) -> None:
        if self._health is None or self._stopping.is_set():
            return
        from grpc_health.v1 import health_pb2
        with self._lock:
            ready = bool(self._models) and all(
                any(r.state == AVAILABLE for r in m.versions.values())
                for m in self._models.values())
        status = (health_pb2.HealthCheckResponse.SERVING if ready
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for service in HEALTH_SERVICES:
            self._health.set(service, status)

    # ---- queries ---------------------------------------------------------

    def model_status(self, name: str) -> dict[int, tuple[str, str | None]]:
        """{version: (state name, error message or None)} for tests and logs."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                return {}
            return {v: (STATE_NAMES[r.state], r.error[1] if r.error else None)
                    for v, r in sorted(model.versions.items(), reverse=True)}

    @staticmethod
    def _requested_version(model, spec) -> int | None:
        """The version a ModelSpec names (a number or a label), or None for the latest."""
        which = spec.WhichOneof("version_choice")
        if which == "version_label":
            version = model.config.version_labels.get(spec.version_label) if model else None
            if version is None:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"Unrecognized servable version label: {spec.version_label}")
            return version
        if which == "version":
            return spec.version.value
        return None

    def resolve(self, spec) -> Servable:
        """ModelSpec -> the AVAILABLE servable it names (ServerCore semantics)."""
        name = spec.name
        if not name:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(name)
            version = self._requested_version(model, spec)
            if version is None:
                available = ([v for v, r in model.versions.items() if r.state == AVAILABLE]
                             if model else [])
                if not available:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Servable not found for request: Latest({name})")
                return model.versions[max(available)].servable
            rec = model.versions.get(version) if model else None
            if rec is None or rec.state != AVAILABLE:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Servable not found for request: Specific({name}, {version})")
            return rec.servable

    @property
    def busy_slots(self) -> int:
        """Predict calls holding a --max_concurrent_requests slot now."""
        return self._busy

    @contextlib.contextmanager
    def _request_slot(self, context):
        if self._slots is None:
            yield
            return
        remaining = context.time_remaining() if context is not None else None
        wait = self.queue_timeout_s if remaining is None else min(self.queue_timeout_s, remaining)
        if not self._slots.acquire(timeout=max(wait, 0.0)):
            if remaining is not None and remaining <= self.queue_timeout_s:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                   "Deadline exceeded while waiting for a free request slot")
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, (
                f"Too many concurrent requests: all {self.max_concurrent_requests} request slots "
                f"(--max_concurrent_requests) stayed busy for {self.queue_timeout_s:g}s; retry later"))
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
            self._slots.release()

    def predict(self, request, context=None):
        """PredictionService.Predict (context: a grpc.ServicerContext or None)."""
        _check_deadline(context)
        with self._request_slot(context):
            _check_deadline(context)
            servable = self.resolve(request.model_spec)
            response = servable.predict(request, self.tensor_content)
        _check_deadline(context)
        return response

    def get_model_metadata(self, request):
        from tensorflow_serving.apis import get_model_metadata_pb2
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not request.HasField("model_spec"):
            raise ServingError(invalid, "Missing ModelSpec")
        if not request.metadata_field:
            raise ServingError(invalid,
                               "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise ServingError(invalid, f"Metadata field {field} is not supported")
        servable = self.resolve(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        sigs = get_model_metadata_pb2.SignatureDefMap()
        for key, sdef in servable.signature_defs.items():
            sigs.signature_def[key].CopyFrom(sdef)
        response.metadata["signature_def"].Pack(sigs)
        return response

    def get_model_status(self, request):
        from tensorflow_serving.apis import get_model_status_pb2
        if not request.HasField("model_spec"):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        spec = request.model_spec
        name = spec.name
        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            model = self._models.get(name)
            version = self._requested_version(model, spec)
            records = dict(model.versions) if model else {}
            if version is not None:
                if version not in records:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Could not find version {version} of model {name}")
                records = {version: records[version]}
            elif not records:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find any versions of model {name}")
            for v in sorted(records, reverse=True):
                rec = records[v]
                entry = response.model_version_status.add(version=v, state=rec.state)
                if rec.error is not None:
                    entry.status.error_code = rec.error[0].value[0]
                    entry.status.error_message = truncate_message(rec.error[1])
        return response

    def handle_reload_config(self, request):
        from tensorflow_serving.apis import model_management_pb2
        if request.config.WhichOneof("config") != "model_config_list":
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, (
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"))
        try:
            configs = mc.configs_from_proto(request.config, "HandleReloadConfigRequest")
        except T2IError as e:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
        self.apply_config(configs)
        with self._lock:
            missing = [m.config.name for m in self._models.values()
                       if not any(r.state == AVAILABLE for r in m.versions.values())]
        if missing:
            raise ServingError(grpc.StatusCode.UNKNOWN,
                               "Some models did not become available: {" + ", ".join(missing) + "}")
        return model_management_pb2.ReloadConfigResponse()


def _check_deadline(context) -> None:
    if context is None:
        return
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    if not context.is_active():
        raise ServingError(grpc.StatusCode.CANCELLED, "Request was cancelled by the client")


def _answer(context, fn, *args):
    """Run a handler; turn ServingError (and anything else) into a gRPC status."""
    try:
        return fn(*args)
    except ServingError as e:
        code, message = e.code, e.message
    except Exception as e:  # noqa: BLE001 - the server must keep serving
        log.exception("internal error")
        code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
    context.abort(code, truncate_message(message))


class _PredictionServicer:
    """tensorflow.serving.PredictionService (method names as in the generated stubs)."""

    def __init__(self, server: ModelServer):
        self._s = server

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        return _answer(context, self._s.predict, request, context)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _answer(context, self._s.get_model_metadata, request)

    def Classify(self, request, context):  # noqa: N802
        return _unimplemented(context, "Classify")

    def Regress(self, request, context):  # noqa: N802
        return _unimplemented(context, "Regress")

    def MultiInference(self, request, context):  # noqa: N802
        return _unimplemented(context, "MultiInference")


class _ModelServicer:
    """tensorflow.serving.ModelService."""

    def __init__(self, server: ModelServer):
        self._s = server

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, self._s.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return _answer(context, self._s.handle_reload_config, request)


def _unimplemented(context, method: str):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{method} is not implemented by the local model server (Predict only)")


# --------------------------------------------------------------------------
# command line


def _bool(text) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y"):
        return True
    if value in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(prog: str = "t2i serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve SavedModels over TF Serving's gRPC API (a local stand-in for "
                    "tensorflow_model_server, for development and tests).")
    p.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    p.add_argument("--model_name", default="default", help="model name (default 'default')")
    p.add_argument("--model_base_path", default="",
                   help="directory holding <version>/saved_model.pb subdirectories")
    p.add_argument("--model_config_file", default="",
                   help="text-format tensorflow.serving.ModelServerConfig (overrides --model_name/"
                        "--model_base_path)")
    p.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                   help="re-read --model_config_file this often (0 = never)")
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1,
                   help="seconds between scans for new versions (default 1; 0 = scan once)")
    p.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                   help="replay assets.extra/tf_serving_warmup_requests before serving a version")
    p.add_argument("--num_request_iterations_for_warmup", type=int, default=1)
    p.add_argument("--saved_model_tags", default="serve",
                   help="comma-separated MetaGraphDef tags to load (default serve)")
    p.add_argument("--grpc_max_threads", type=int, default=0,
                   help="gRPC worker threads (default 4 x CPUs)")
    p.add_argument("--max_concurrent_requests", type=int, default=0,
                   help="Predict calls run at once; others wait up to --queue_timeout_seconds, then "
                        "get RESOURCE_EXHAUSTED (default 0 = no limit)")
    p.add_argument("--queue_timeout_seconds", type=float, default=1.0)
    p.add_argument("--max_request_bytes", type=int, default=INT32_MAX,
                   help="largest request message accepted (gRPC answers RESOURCE_EXHAUSTED above)")
    p.add_argument("--enable_serialization_as_tensor_content", type=_bool, nargs="?", const=True,
                   default=False, help="send outputs as tensor_content instead of typed fields")
    p.add_argument("--grace_period_seconds", type=float, default=5.0,
                   help="on SIGTERM/SIGINT, how long in-flight requests may finish")
    p.add_argument("--rest_api_port", type=int, default=0,
                   help="not supported here (the REST API is not implemented); ignored")
    p.add_argument("--enable_grpc_healthcheck_service", type=_bool, nargs="?", const=True,
                   default=True, help="accepted for compatibility; grpc.health.v1 is always on")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def server_from_args(args) -> ModelServer:
    if args.model_config_file and args.model_base_path:
        log.warning("--model_config_file is set: ignoring --model_name/--model_base_path")
    if args.rest_api_port:
        log.warning("--rest_api_port=%d ignored: this local server implements gRPC only",
                     args.rest_api_port)
    tags = tuple(t.strip() for t in args.saved_model_tags.split(",") if t.strip())
    if not tags:
        raise T2IError("--saved_model_tags is empty")
    return ModelServer(
        model_name=args.model_name, model_base_path=args.model_base_path or None,
        model_config_file=args.model_config_file or None, port=args.port, host=args.host,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        enable_model_warmup=args.enable_model_warmup,
        num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
        grpc_max_threads=args.grpc_max_threads or None,
        max_concurrent_requests=args.max_concurrent_requests,
        queue_timeout_s=args.queue_timeout_seconds, max_request_bytes=args.max_request_bytes,
        saved_model_tags=tags, tensor_content=args.enable_serialization_as_tensor_content,
        grace_s=args.grace_period_seconds)


def main(argv=None, prog: str = "t2i serve") -> int:
    """`t2i serve` / `python -m serving.server`: serve until SIGTERM or SIGINT, then exit 0."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    stop = threading.Event()
    previous = {}

    def on_signal(signum, _frame):
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    try:
        server = server_from_args(args)
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
        try:
            server.start()
            if args.file_system_poll_wait_seconds <= 0:
                log.info("--file_system_poll_wait_seconds=0: versions were scanned once")
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
    except T2IError as e:
        print(f"t2i: error: {e}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m serving.server"))

"""The model server: TF Serving's API over the versions a VersionManager keeps loaded.

`ModelServer.predict / get_model_metadata / get_model_status /
handle_reload_config` are the API, shared by the gRPC services
(`grpc_services`) and the REST API (`rest`); `start()` binds both ports, loads
the initial versions, then serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import grpc

from serving import model_config as mc
from serving.server.grpc_services import INT32_MAX, build_grpc_server, set_health
from serving.server.status import ServingError, truncate_message
from serving.server.tensors import _tensorflow
from serving.server.versions import VersionManager
from serving.states import AVAILABLE
from t2i.errors import T2IError

log = logging.getLogger("t2i.serving")

# The bounds on the work one request causes (docs/serving.md §6). TF Serving's own defaults are
# 2 GiB messages, no concurrency limit and no batch limit without its batching config.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024   # gRPC clients' own default receive limit
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_BATCH_SLICE_SIZE = 16


def default_max_concurrent_requests() -> int:
    """Predict calls run at once by default: 4 per CPU. A batch runs in slices
    (DEFAULT_BATCH_SLICE_SIZE), so requests in flight share the CPU in turns;
    under 8 clients flooding a 2-core machine, 8 slots served 71 of 72 small
    requests within 1.5 s, 2 slots refused 70 of 80 (BENCHMARKS.md, "Serving under
    overload")."""
    return 4 * (os.cpu_count() or 1)


class ModelServer(VersionManager):
    """The model server: gRPC (and, with rest_api_port, REST) plus a file-system poller.

    `start()` loads what the policies ask for (warmup included), then binds
    and serves; `port` is the bound gRPC port (pass port=0 for a free one) and
    `rest_port` the bound REST port (None when REST is off, rest_api_port=0;
    pass rest_api_port=-1 for a free one). `stop()` stops accepting, lets
    in-flight requests finish within `grace_s`.
    """

    def __init__(self, models=None, *, model_name: str | None = None,
                 model_base_path: str | None = None, model_config_file: str | None = None,
                 port: int = 8500, host: str = "127.0.0.1",
                 file_system_poll_wait_seconds: float = 1.0,
                 model_config_file_poll_wait_seconds: float = 0.0,
                 enable_model_warmup: bool = True, num_request_iterations_for_warmup: int = 1,
                 grpc_max_threads: int | None = None,
                 max_concurrent_requests: int | None = None, queue_timeout_s: float = 0.5,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 batch_slice_size: int = DEFAULT_BATCH_SLICE_SIZE,
                 saved_model_tags=("serve",), tensor_content: bool = False,
                 grace_s: float = 5.0, rest_api_port: int = 0,
                 rest_api_num_threads: int | None = None, rest_api_timeout_ms: int = 30000):
        if models is not None:
            configs = list(models)
        elif model_config_file:
            configs = mc.parse_model_config_file(model_config_file)
        elif model_base_path:
            configs = [mc.single_model_config(model_name or "default", model_base_path)]
        else:
            raise T2IError("no model to serve: give --model_base_path (with --model_name) or "
                           "--model_config_file")
        if max_request_bytes is not None and max_request_bytes <= 0:
            raise T2IError(f"--max_request_bytes must be positive, got {max_request_bytes}")
        if max_concurrent_requests is not None and max_concurrent_requests < 0:
            raise T2IError(f"--max_concurrent_requests must be >= 0, got {max_concurrent_requests}")
        if max_batch_size < 0:
            raise T2IError(f"--max_batch_size must be >= 0, got {max_batch_size}")
        if batch_slice_size < 0:
            raise T2IError(f"batch_slice_size must be >= 0, got {batch_slice_size}")
        if rest_api_num_threads is not None and rest_api_num_threads < 1:
            raise T2IError(f"--rest_api_num_threads must be >= 1, got {rest_api_num_threads}")
        super().__init__(
            configs, model_config_file=model_config_file if models is None else None,
            poll_wait_s=file_system_poll_wait_seconds,
            config_poll_wait_s=model_config_file_poll_wait_seconds,
            enable_model_warmup=enable_model_warmup,
            warmup_iterations=num_request_iterations_for_warmup,
            saved_model_tags=saved_model_tags, tensor_content=tensor_content)
        cpus = os.cpu_count() or 1
        self.requested_port = int(port)
        self.host = host
        self.grpc_max_threads = int(grpc_max_threads or max(16, 4 * cpus))
        self.max_concurrent_requests = int(default_max_concurrent_requests()
                                           if max_concurrent_requests is None
                                           else max_concurrent_requests)
        self.queue_timeout_s = float(queue_timeout_s)
        self.max_request_bytes = int(max_request_bytes or INT32_MAX)
        self.max_batch_size = int(max_batch_size)
        self.batch_slice_size = int(batch_slice_size)
        self.grace_s = float(grace_s)
        self.requested_rest_port = int(rest_api_port or 0)
        self.rest_api_num_threads = int(rest_api_num_threads or max(4, 4 * cpus))
        self.rest_api_timeout_s = (float(rest_api_timeout_ms) / 1000.0
                                   if rest_api_timeout_ms and rest_api_timeout_ms > 0 else None)

        self._slots = (threading.BoundedSemaphore(self.max_concurrent_requests)
                       if self.max_concurrent_requests else None)
        self._busy = 0
        self._stopped = False
        self._server = None
        self._health = None
        self._rest = None
        self.port = None
        self.rest_port = None

    # ---- lifecycle ---------------------------------------------------------

    def start(self) -> "ModelServer":
        _tensorflow()
        server, self._health = build_grpc_server(self, self.grpc_max_threads,
                                                 self.max_request_bytes)
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
        if self.requested_rest_port:
            from serving.server.rest import RestServer
            self._rest = RestServer(self, self.host, max(self.requested_rest_port, 0),
                                    threads=self.rest_api_num_threads,
                                    timeout_s=self.rest_api_timeout_s,
                                    max_request_bytes=self.max_request_bytes)
            self.rest_port = self._rest.port
        self.poll_once()  # like tensorflow_model_server: serve once the initial load is done
        server.start()
        log.info("Running gRPC ModelServer at %s:%d ...", host, port)
        if self._rest is not None:
            self._rest.start()
            log.info("Exporting HTTP/REST API at:%s:%d ...", host, self.rest_port)
        self.start_polling()
        return self

    def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting requests, finish in-flight ones (up to grace_s), unload."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        grace = self.grace_s if grace_s is None else grace_s
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop(grace)
        if self._server is not None:
            self._server.stop(grace).wait()
        self.stop_polling(timeout=max(grace, 1.0))
        log.info("Server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the gRPC server terminates (True) or `timeout` passes."""
        return self._server.wait_for_termination(timeout) if self._server else True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _versions_changed(self) -> None:
        if self._health is None or self._stopping.is_set():
            return
        set_health(self._health, self.all_models_available())

    # ---- the API (gRPC and REST) -----------------------------------------

    @property
    def busy_slots(self) -> int:
        """Predict calls holding a --max_concurrent_requests slot now."""
        return self._busy

    @contextlib.contextmanager
    def request_slot(self, context):
        """Hold one of the --max_concurrent_requests slots, or raise RESOURCE_EXHAUSTED (or
        DEADLINE_EXCEEDED when the deadline comes first) after --queue_timeout_seconds."""
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

    def predict(self, request, context=None, *, slot_held: bool = False):
        """PredictionService.Predict (context: a grpc.ServicerContext or None).

        slot_held: the caller already holds a request slot (the REST API takes one
        before it parses the body).
        """
        _check_deadline(context)
        with contextlib.nullcontext() if slot_held else self.request_slot(context):
            _check_deadline(context)
            servable = self.resolve(request.model_spec)
            response = servable.predict(
                request, self.tensor_content, max_batch_size=self.max_batch_size,
                slice_size=self.batch_slice_size, check_alive=lambda: _check_deadline(context))
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
                entry.status.SetInParent()  # like TF Serving: always set (error_code 0 = OK)
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

"""TF Serving's gRPC services over a ModelServer: PredictionService, ModelService, health."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc

from serving.server.status import ServingError, truncate_message

log = logging.getLogger("t2i.serving")

INT32_MAX = 2**31 - 1
HEALTH_SERVICES = ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService",
                   "PredictionService", "ModelService")


def build_grpc_server(model_server, max_workers: int, max_request_bytes: int):
    """(grpc.Server with the services registered, its HealthServicer); not bound yet."""
    from grpc_health.v1 import health, health_pb2_grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="serving-grpc"),
        # RPCs beyond 4 per worker thread are refused at once (RESOURCE_EXHAUSTED), not queued.
        maximum_concurrent_rpcs=4 * max_workers,
        options=[("grpc.max_receive_message_length", max_request_bytes),
                 ("grpc.max_send_message_length", INT32_MAX),
                 ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionServicer(model_server), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelServicer(model_server), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def set_health(health_servicer, serving: bool) -> None:
    from grpc_health.v1 import health_pb2
    status = (health_pb2.HealthCheckResponse.SERVING if serving
              else health_pb2.HealthCheckResponse.NOT_SERVING)
    for service in HEALTH_SERVICES:
        health_servicer.set(service, status)


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

    def __init__(self, server):
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

    def __init__(self, server):
        self._s = server

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, self._s.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return _answer(context, self._s.handle_reload_config, request)


def _unimplemented(context, method: str):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{method} is not implemented by the local model server (Predict only)")


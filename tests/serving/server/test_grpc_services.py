"""serving/server/grpc_services.py: the request size limit, health, methods not implemented."""

import grpc
from grpc_health.v1 import health_pb2

from tests.serving.server.tiny import check_still_serving, predict_request, rpc_error


def test_request_over_max_request_bytes_is_resource_exhausted(served):
    _, stubs = served
    err = rpc_error(stubs.predict.Predict, predict_request(("x" * 100_000,)), timeout=10)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    check_still_serving(stubs)


def test_health_service_reports_serving(served):
    _, stubs = served
    for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
        resp = stubs.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service


def test_unimplemented_methods(served):
    from tensorflow_serving.apis import classification_pb2
    _, stubs = served
    err = rpc_error(stubs.predict.Classify, classification_pb2.ClassificationRequest(), timeout=10)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED

"""serving/server/model_server.py: ModelServer's API (status, metadata, deadlines) and its
admission control (--max_concurrent_requests).
"""

import os
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from serving import model_config as mc
from serving import server as srv
from tests.serving.server.tiny import (H, INVALID, W, Stubs, check_still_serving, predict_request,
                                       publish, rpc_error, start_server, wait_for)


def test_deadline_already_passed_is_checked_before_running(served):
    server, _ = served

    class Expired:
        def time_remaining(self):
            return 0.0

        def is_active(self):
            return True

    with pytest.raises(srv.ServingError) as info:
        server.predict(predict_request(), Expired())
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_64_concurrent_requests_are_all_answered(served):
    _, stubs = served

    def one(i):
        resp = stubs.predict.Predict(predict_request((f"c{i}",), [i]), timeout=30)
        return int(tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0])

    with futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(64)))
    assert got == [(i + 1) % 256 for i in range(64)]


def test_get_model_status(served):
    _, stubs = served
    resp = stubs.status("m")
    assert [(s.version, s.state, s.status.error_code) for s in resp.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)]
    assert stubs.status("m", version=1).model_version_status[0].version == 1
    err = rpc_error(stubs.status, "nope")
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND,
                                           "Could not find any versions of model nope")
    err = rpc_error(stubs.status, "m", version=9)
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND,
                                           "Could not find version 9 of model m")
    err = rpc_error(stubs.model.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(),
                    timeout=10)
    assert (err.code(), err.details()) == (INVALID, "Missing ModelSpec")


def test_get_model_metadata_returns_the_signature_defs(served):
    _, stubs = served
    req = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="m"), metadata_field=["signature_def"])
    resp = stubs.predict.GetModelMetadata(req, timeout=10)
    assert (resp.model_spec.name, resp.model_spec.version.value) == ("m", 1)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sigs)
    assert {"serving_default", "score", "trace", "count", "slow",
            "__saved_model_init_op"} <= set(sigs.signature_def)
    default = sigs.signature_def["serving_default"]
    assert default.inputs["captions"].dtype == types_pb2.DT_STRING
    assert default.inputs["seed"].dtype == types_pb2.DT_INT64
    assert default.outputs["images"].dtype == types_pb2.DT_UINT8
    assert [d.size for d in default.outputs["images"].tensor_shape.dim] == [-1, H, W, 1]
    for fields, message in (([], "GetModelMetadataRequest must specify at least one metadata_field"),
                            (["signature_def", "foo"], "Metadata field foo is not supported")):
        bad = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name="m"), metadata_field=fields)
        err = rpc_error(stubs.predict.GetModelMetadata, bad, timeout=10)
        assert (err.code(), err.details()) == (INVALID, message)
    bad = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="zz"), metadata_field=["signature_def"])
    assert rpc_error(stubs.predict.GetModelMetadata, bad, timeout=10).code() == \
        grpc.StatusCode.NOT_FOUND


def test_concurrency_limit_and_deadlines(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], max_concurrent_requests=1,
                          queue_timeout_s=0.2)
    stubs = Stubs(server.port)

    def slow(delay_us):
        req = predict_pb2.PredictRequest()
        req.model_spec.name, req.model_spec.signature_name = "m", "slow"
        req.inputs["delay_us"].CopyFrom(tf.make_tensor_proto(np.array([delay_us], np.int64)))
        return req

    try:
        with futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(stubs.predict.Predict, slow(400_000), timeout=30)
            wait_for(lambda: server.busy_slots == 1, what="the slow request to run")
            err = rpc_error(stubs.predict.Predict, predict_request(), timeout=10)
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_concurrent_requests" in err.details()
            err = rpc_error(stubs.predict.Predict, predict_request(), timeout=0.1)
            assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert first.result(timeout=30).model_spec.version.value == 1
        # The client gives up while the model runs.
        err = rpc_error(stubs.predict.Predict, slow(300_000), timeout=0.2)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: server.busy_slots == 0, what="the slot to be released")
        check_still_serving(stubs)
    finally:
        stubs.close()
        server.stop(grace_s=1)

"""serving/server/servable.py: Predict on one loaded version (TF Serving's RunPredict): outputs,
TF Serving's errors for bad requests, the bounds on one request's work (docs/serving.md §6).
"""

import os
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from serving import model_config as mc
from serving import server as srv
from tests.serving.server.tiny import (H, INVALID, L, T, W, Stubs, declared_request, check_still_serving,
                                       predict_request, publish, rpc_error, start_server, wait_for)


def test_predict_fills_model_spec_and_outputs(served):
    _, stubs = served
    for signature in ("", "serving_default"):
        resp = stubs.predict.Predict(predict_request(("a", "b"), [3, 10], signature=signature),
                                     timeout=10)
        assert (resp.model_spec.name, resp.model_spec.signature_name,
                resp.model_spec.version.value) == ("m", "serving_default", 1)
        assert set(resp.outputs) == {"images", "alignments", "tag"}
        images = tf.make_ndarray(resp.outputs["images"])
        assert images.dtype == np.uint8 and images.shape == (2, H, W, 1)
        assert images[:, 0, 0, 0].tolist() == [4, 11]
        assert tf.make_ndarray(resp.outputs["alignments"]).shape == (2, T, L)
        # TF Serving's default encoding: typed fields, not tensor_content.
        assert resp.outputs["images"].int_val and not resp.outputs["images"].tensor_content
    req = predict_request(("a",))
    req.output_filter.append("images")
    resp = stubs.predict.Predict(req, timeout=10)
    assert set(resp.outputs) == {"images"}


def _bad_tensor(req):
    req.inputs["seed"].tensor_content = b"\x01\x02\x03"  # 3 bytes for int64 [2]


def _cases():
    def rq(**kw):
        return lambda: predict_request(**kw)

    def with_(fn):
        def make():
            req = predict_request()
            fn(req)
            return req
        return make

    def drop_seed(r):
        del r.inputs["seed"]

    def extra(r):
        r.inputs["extra"].CopyFrom(tf.make_tensor_proto([1]))

    def renamed(r):
        r.inputs["seeds"].CopyFrom(r.inputs["seed"])
        del r.inputs["seed"]

    def float_seed(r):
        r.inputs["seed"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], tf.float32))

    def filt(*names):
        return lambda r: r.output_filter.extend(names)

    def rank2(r):
        r.inputs["captions"].CopyFrom(tf.make_tensor_proto([["a"], ["b"]], tf.string))

    def batch3(r):
        r.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.array([1, 2, 3], np.int64)))

    def no_version(r):
        r.model_spec.ClearField("version")

    score_bad = predict_pb2.PredictRequest()
    score_bad.model_spec.name, score_bad.model_spec.signature_name = "m", "score"
    score_bad.inputs["captions"].CopyFrom(tf.make_tensor_proto(["a"], tf.string))
    score_bad.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 5, 4, 1), np.uint8)))
    return [
        ("no name", rq(name=""), INVALID, "ModelSpec has no name specified."),
        ("unknown model", rq(name="nope"), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Latest(nope)"),
        ("unknown version", rq(version=7), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(m, 7)"),
        ("unknown label", rq(label="beta"), INVALID,
         "Unrecognized servable version label: beta"),
        ("unknown signature", rq(signature="nope"), grpc.StatusCode.FAILED_PRECONDITION,
         'Serving signature key "nope" not found.'),
        ("missing input", with_(drop_seed), INVALID,
         "input size does not match signature: 1!=2 len({captions}) != len({captions,seed}). "
         "Sent extra: {}. Missing but required: {seed}."),
        ("extra input", with_(extra), INVALID,
         "input size does not match signature: 3!=2 len({captions,extra,seed}) != "
         "len({captions,seed}). Sent extra: {extra}. Missing but required: {}."),
        ("wrong alias", with_(renamed), INVALID,
         "Signature input alias: seed(feed name: serving_default_seed:0) not found in request"),
        ("bad tensor", with_(_bad_tensor), INVALID, "tensor parsing error: seed"),
        ("wrong dtype", with_(float_seed), INVALID,
         "Expects arg[1] to be int64 but float is provided"),
        ("unknown output", with_(filt("nope")), INVALID,
         "output tensor alias not found in signature: nope Outputs expected to be in the set "
         "{alignments,images,tag}."),
        ("duplicate output", with_(filt("images", "images")), INVALID,
         "duplicate output tensor alias: images"),
        ("rank", with_(rank2), INVALID,
         'input "captions" has shape [2,1] but signature "serving_default" expects shape [-1]'),
        ("batch sizes", with_(batch3), INVALID,
         "inputs have different batch sizes (dim 0): captions has 2, seed has 3"),
        ("empty batch", rq(captions=(), seeds=[]), INVALID, "empty batch: input captions"),
        ("graph error", rq(captions=("ok", "")), INVALID, "empty caption"),
        ("score shape", lambda: score_bad, INVALID,
         'input "images" has shape [1,5,4,1] but signature "score" expects shape [-1,4,4,1]'),
        ("version cleared", with_(no_version), None, None),
    ]


@pytest.mark.parametrize("name,make,code,message", _cases(), ids=[c[0] for c in _cases()])
def test_bad_predict_requests_get_tf_serving_errors(served, name, make, code, message):
    _, stubs = served
    if code is None:  # a control: the helper builds good requests
        stubs.predict.Predict(make(), timeout=10)
        return
    err = rpc_error(stubs.predict.Predict, make(), timeout=10)
    assert err.code() == code, err.details()
    assert message in err.details()
    assert "\n" not in err.details() and "Graph execution error" not in err.details()
    check_still_serving(stubs)


@pytest.mark.parametrize("declared,message", [
    (4096, "holds a batch of 4096 examples, more than this server's maximum batch size of 64 "
           "(--max_batch_size); send at most 64 examples per request"),
    (10**8, "holds a batch of 100000000 examples"),
    (3, "tensor parsing error: captions: shape [3] declares 3 values but the request carries 1; "
        "send one value per element"),
])
def test_a_small_request_cannot_declare_more_work_than_it_carries(served, declared, message):
    """TensorFlow fills a declared shape from one value; the server refuses that (under 1 KB)."""
    server, stubs = served
    assert server.max_batch_size == srv.DEFAULT_MAX_BATCH_SIZE == 64
    req = declared_request(declared, declared)
    assert req.ByteSize() < 1024
    err = rpc_error(stubs.predict.Predict, req, timeout=10)
    assert err.code() == INVALID, err.details()
    assert message in err.details()
    check_still_serving(stubs)


def test_batch_at_the_limit_runs_in_slices_with_the_same_outputs(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], max_batch_size=10, batch_slice_size=3)
    stubs = Stubs(server.port)
    try:
        seeds = list(range(100, 110))
        resp = stubs.predict.Predict(predict_request([f"c{i}" for i in seeds], seeds), timeout=10)
        images = tf.make_ndarray(resp.outputs["images"])
        np.testing.assert_array_equal(images[:, 0, 0, 0], np.array(seeds) + 1)
        assert tf.make_ndarray(resp.outputs["alignments"]).shape == (10, T, L)
        err = rpc_error(stubs.predict.Predict, predict_request(["c"] * 11), timeout=10)
        assert err.code() == INVALID and "--max_batch_size" in err.details()
    finally:
        stubs.close()
        server.stop(grace_s=1)


def test_work_stops_between_slices_once_the_deadline_has_passed(tiny, tmp_path):
    """40 slices of ~0.1 s each (4 s of work); the client gives up after 0.3 s."""
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], batch_slice_size=1)
    stubs = Stubs(server.port)
    req = predict_pb2.PredictRequest()
    req.model_spec.name, req.model_spec.signature_name = "m", "slow"
    req.inputs["delay_us"].CopyFrom(tf.make_tensor_proto(np.full(40, 50_000, np.int64)))
    try:
        start = time.monotonic()
        err = rpc_error(stubs.predict.Predict, req, timeout=0.3)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: server.busy_slots == 0, what="the slot to be released")
        # Stopped after the slice running at the deadline, not after all 40.
        assert time.monotonic() - start < 2.0
        check_still_serving(stubs)
    finally:
        stubs.close()
        server.stop(grace_s=1)

"""serving/server/tensors.py: outputs encoded as TF Serving does, values against the declared shape."""

import numpy as np
import tensorflow as tf

from serving import server as srv
from tests.serving.server.tiny import INVALID, declared_request, rpc_error


def test_output_encoding_matches_as_proto_field_and_round_trips():
    cases = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1.5, -2], np.float16),
             np.array([[1, 2**40]], np.int64), np.arange(5, dtype=np.uint8), np.array([True, False]),
             np.array([b"x", "\u00e9".encode()], dtype=object), np.array([1 + 2j], np.complex64),
             np.zeros((0, 3), np.float32)]
    for arr in cases:
        dtype = tf.as_dtype(arr.dtype if arr.dtype != object else tf.string).as_datatype_enum
        proto = srv._as_proto_field(arr, dtype)
        assert not proto.tensor_content
        back = tf.make_ndarray(proto)
        assert back.shape == arr.shape and back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)


def test_tensor_content_must_match_the_declared_shape(served):
    _, stubs = served
    req = declared_request(2, 2, captions=(b"a", b"b"), seeds=())
    req.inputs["seed"].tensor_content = np.array([1], np.int64).tobytes()  # 8 bytes for [2]
    err = rpc_error(stubs.predict.Predict, req, timeout=10)
    assert err.code() == INVALID
    assert ("tensor parsing error: seed: shape [2] declares 2 values (16 bytes of tensor_content) "
            "but the request carries 8 bytes") in err.details()
    req.inputs["seed"].tensor_content = np.array([1, 2], np.int64).tobytes()
    images = tf.make_ndarray(stubs.predict.Predict(req, timeout=10).outputs["images"])
    assert images[:, 0, 0, 0].tolist() == [2, 3]  # seed + tag 1

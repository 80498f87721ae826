"""The NumPy wire codec gives the same TensorProtos as the protobuf API, and reads them back."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving import wire
from serving.server import _as_proto_field

# Each case's array is drawn from the test's own generator: (make(rng), dtype, field, id).
CASES = [
    (lambda rng: rng.integers(0, 256, (4, 60, 60, 1)).astype(np.uint8), types_pb2.DT_UINT8, "int_val", "uint8"),
    (lambda rng: rng.random((3, 32, 17)).astype(np.float32), types_pb2.DT_FLOAT, "float_val", "float32"),
    (lambda rng: rng.random(2000), types_pb2.DT_DOUBLE, "double_val", "float64"),
    (lambda rng: rng.integers(-2**40, 2**40, 3000), types_pb2.DT_INT64, "int64_val", "int64"),
    (lambda rng: rng.integers(-2**31, 2**31, 2000).astype(np.int32), types_pb2.DT_INT32, "int_val", "int32"),
    (lambda rng: np.array([0, 127, 128, 16383, 16384, 2**63 - 1, -1, -2**63] * 200, np.int64),
     types_pb2.DT_INT64, "int64_val", "int64-edges"),
    (lambda rng: rng.random(5000) > 0.5, types_pb2.DT_BOOL, "bool_val", "bool"),
    (lambda rng: np.zeros((0, 3), np.float32), types_pb2.DT_FLOAT, "float_val", "empty"),
    (lambda rng: rng.random((2, 3)).astype(np.float32), types_pb2.DT_FLOAT, "float_val", "float32-small"),
]


@pytest.mark.parametrize("make, dtype, field", [c[:3] for c in CASES], ids=[c[3] for c in CASES])
def test_encode_matches_the_protobuf_api_and_decodes_back(make, dtype, field, rng):
    arr = make(rng)
    ref = tensor_pb2.TensorProto(dtype=dtype)
    ref.tensor_shape.CopyFrom(tf.TensorShape(arr.shape).as_proto())
    getattr(ref, field).extend(arr.reshape(-1).tolist())
    assert tensor_pb2.TensorProto.FromString(wire.encode(arr, dtype)) == ref
    assert _as_proto_field(arr, dtype) == ref
    got = wire.decode(ref)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_decode_falls_back_for_other_encodings(rng):
    content = tf.make_tensor_proto(rng.random((40, 40)).astype(np.float32))  # tensor_content
    np.testing.assert_array_equal(wire.decode(content), tf.make_ndarray(content))
    single = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[2.5])
    single.tensor_shape.CopyFrom(tf.TensorShape([3000]).as_proto())  # one value broadcast
    np.testing.assert_array_equal(wire.decode(single), np.full(3000, 2.5, np.float32))
    strings = tf.make_tensor_proto([b"a", b"bc"])
    assert list(wire.decode(strings)) == [b"a", b"bc"]


def test_varints_known_bytes():
    assert wire.varints(np.array([1, 127, 128, 300])) == bytes([1, 127, 0x80, 1, 0xAC, 2])
    assert wire.varints(np.array([-1])) == bytes([0xFF] * 9 + [1])
    assert wire.varints(np.array([], np.int64)) == b""
    np.testing.assert_array_equal(wire.decode_varints(bytes([1, 127, 0x80, 1, 0xAC, 2])), [1, 127, 128, 300])
    with pytest.raises(ValueError, match="truncated"):
        wire.decode_varints(bytes([0x80]))

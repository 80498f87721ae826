"""Fast TensorProto <-> NumPy for large numeric tensors, in TF Serving's encodings.

TF Serving writes outputs with `Tensor::AsProtoField`: values in the typed
repeated field (`int_val` for uint8 images, `float_val` for floats), packed.
Building or reading 10^5 such values through the protobuf Python API costs
milliseconds per image batch; here the packed field is written and read as
wire bytes with NumPy. The messages are identical to the protobuf API's
(tested), and anything unusual falls back to `tf.make_tensor_proto` /
`tf.make_ndarray`.
"""

from __future__ import annotations

import numpy as np

# TensorProto field numbers and wire types (tensorflow/core/framework/tensor.proto).
_DTYPE, _SHAPE = 1, 2
_FIELDS = {  # DataType enum -> (field name, field number, codec)
    1: ("float_val", 5, "<f4"),        # DT_FLOAT
    2: ("double_val", 6, "<f8"),       # DT_DOUBLE
    3: ("int_val", 7, "varint"),       # DT_INT32
    4: ("int_val", 7, "varint"),       # DT_UINT8
    5: ("int_val", 7, "varint"),       # DT_INT16
    6: ("int_val", 7, "varint"),       # DT_INT8
    9: ("int64_val", 10, "varint"),    # DT_INT64
    10: ("bool_val", 11, "varint"),    # DT_BOOL
    17: ("int_val", 7, "varint"),      # DT_UINT16
}


def varints(values: np.ndarray) -> bytes:
    """Protobuf varint encoding of int64 values (negatives as 10-byte two's complement)."""
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    if v.size == 0:
        return b""
    n = max(1, (int(v.max()).bit_length() + 6) // 7)  # a negative value needs all 10 groups
    if n == 1:
        return v.astype(np.uint8).tobytes()
    work = v.astype(np.int64) if n <= 9 else v  # signed arithmetic is faster where it fits
    lengths = np.ones(v.size, np.int64)
    for k in range(1, n):
        lengths += (work >> (7 * k)) != 0
    starts = np.cumsum(lengths) - lengths
    out = np.empty(int(lengths.sum()), np.uint8)
    for k in range(n):
        has = slice(None) if k == 0 else lengths > k
        group = (work[has] >> (7 * k)) & 0x7F
        more = (lengths[has] > k + 1).astype(group.dtype) << 7
        out[starts[has] + k] = (group | more).astype(np.uint8)
    return out.tobytes()


def decode_varints(data: bytes) -> np.ndarray:
    """Inverse of `varints`: int64 values of a packed varint payload."""
    b = np.frombuffer(data, np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64)
    ends = np.flatnonzero(b < 0x80)
    if ends.size == 0 or ends[-1] != b.size - 1:
        raise ValueError("truncated varint")
    if ends.size == b.size:  # every value fits one byte
        return b.astype(np.int64)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    out = (b[starts] & 0x7F).astype(np.uint64)
    for k in range(1, int(lengths.max())):
        has = lengths > k
        out[has] |= (b[starts[has] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return out.view(np.int64)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field: tag, length, payload."""
    return varints(np.array([(number << 3) | 2, len(payload)])) + payload


def encode(arr: np.ndarray, dtype_enum: int) -> bytes | None:
    """Serialized TensorProto (typed packed field, as AsProtoField) or None if not a fast case."""
    spec = _FIELDS.get(dtype_enum)
    if spec is None:
        return None
    _, number, codec = spec
    from tensorflow.core.framework import tensor_shape_pb2

    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in arr.shape]).SerializeToString()
    flat = np.ascontiguousarray(arr).reshape(-1)
    payload = varints(flat.astype(np.int64)) if codec == "varint" else flat.astype(codec).tobytes()
    out = varints(np.array([(_DTYPE << 3) | 0, dtype_enum])) + _field(_SHAPE, shape)
    return out + (_field(number, payload) if flat.size else b"")


def decode(proto) -> np.ndarray:
    """`tf.make_ndarray(proto)`, fast for packed numeric typed fields."""
    import tensorflow as tf

    spec = _FIELDS.get(proto.dtype)
    if spec is None or proto.tensor_content or proto.tensor_shape.unknown_rank:
        return tf.make_ndarray(proto)
    name, number, codec = spec
    shape = [d.size for d in proto.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    if len(getattr(proto, name)) != count or count < 1024:
        return tf.make_ndarray(proto)  # broadcast single values, small tensors: the usual path
    buf, pos, payload = proto.SerializeToString(), 0, None
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            if field == number:
                payload = buf[pos:pos + size]
            pos += size
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            return tf.make_ndarray(proto)
    if payload is None:
        return tf.make_ndarray(proto)
    values = decode_varints(payload) if codec == "varint" else np.frombuffer(payload, codec)
    if values.size != count:
        return tf.make_ndarray(proto)
    return values.astype(tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype).reshape(shape)

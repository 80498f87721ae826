"""TensorProto <-> NumPy as TF Serving converts them, and the one TensorFlow import."""

from __future__ import annotations

import logging
import math

import numpy as np

from serving import wire

log = logging.getLogger("t2i.serving")

_tf = None


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


# The repeated field that carries a dtype's values, and how many entries one element takes
# (tensorflow/core/framework/tensor.proto). DataType enum values from types.proto.
_VALUE_FIELDS = {
    1: ("float_val", 1), 2: ("double_val", 1), 3: ("int_val", 1), 4: ("int_val", 1),
    5: ("int_val", 1), 6: ("int_val", 1), 7: ("string_val", 1), 8: ("scomplex_val", 2),
    9: ("int64_val", 1), 10: ("bool_val", 1), 14: ("half_val", 1), 17: ("int_val", 1),
    18: ("dcomplex_val", 2), 19: ("half_val", 1), 22: ("uint32_val", 1), 23: ("uint64_val", 1),
}


def declared_shape(proto) -> tuple[int, ...]:
    """The shape a TensorProto declares, read without allocating anything."""
    if proto.tensor_shape.unknown_rank or any(d.size < 0 for d in proto.tensor_shape.dim):
        raise ValueError("invalid shape")
    return tuple(int(d.size) for d in proto.tensor_shape.dim)


def check_values_fill_shape(proto, shape: tuple[int, ...]) -> None:
    """Refuse a TensorProto whose values do not fill its declared shape exactly.

    TensorFlow repeats the last value to fill a shape (a [4096] tensor from one value),
    so a request of a few bytes could declare any amount of work; the local server
    asks for every value to be sent. Raises ValueError naming both sizes.
    """
    elements = math.prod(shape)
    shape_text = _shape_str(shape)
    if proto.tensor_content:
        itemsize = np.dtype(_tensorflow().dtypes.as_dtype(proto.dtype).as_numpy_dtype).itemsize
        sent, want = len(proto.tensor_content), elements * itemsize
        if sent != want:
            raise ValueError(f"shape {shape_text} declares {elements} values ({want} bytes of "
                             f"tensor_content) but the request carries {sent} bytes")
        return
    field, per_element = _VALUE_FIELDS.get(proto.dtype, (None, 1))
    if field is None:
        return
    sent = len(getattr(proto, field))
    if sent != elements * per_element:
        raise ValueError(f"shape {shape_text} declares {elements} values but the request "
                         f"carries {sent // per_element}; send one value per element")


def parse_tensor_proto(proto) -> np.ndarray:
    """TensorProto -> ndarray, failing where tensorflow::Tensor::FromProto fails."""
    tf = _tensorflow()
    from tensorflow.core.framework import types_pb2
    if proto.dtype in (types_pb2.DT_INVALID, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT):
        raise ValueError("unsupported dtype")
    if proto.dtype >= 100:  # reference types
        raise ValueError("reference dtype")
    want = declared_shape(proto)
    arr = tf.make_ndarray(proto)
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

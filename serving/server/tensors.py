"""TensorProto <-> NumPy as TF Serving converts them, and the one TensorFlow import."""

from __future__ import annotations

import logging

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

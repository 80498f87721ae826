"""One loaded version of a model (a SavedModel) and Predict on it (TF Serving's RunPredict)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc
import numpy as np

from serving import wire
from serving.server.status import ServingError, clean_tf_message, grpc_code
from serving.server.tensors import (_as_proto_field, _dtype_name, _shape_str, _tensorflow,
                                    check_values_fill_shape, declared_shape, parse_tensor_proto)
from t2i import serving_contract as contract

DEFAULT_SIGNATURE = contract.DEFAULT_SIGNATURE


@dataclass
class _Signature:
    key: str
    fn: object                 # concrete function: fn(**{alias: tensor}) -> {alias: tensor}
    inputs: dict               # alias -> TensorInfo (sorted by alias)
    outputs: dict              # alias -> TensorInfo (sorted by alias)
    batch_major: bool          # every input has known rank >= 1 and dim 0 == -1
    splittable: bool = False   # batch_major, and every output too: runs in slices of the batch


def _batch_major(infos: dict) -> bool:
    """Every TensorInfo has a known rank >= 1 and a dynamic dim 0 (and there is one)."""
    return bool(infos) and all(
        not ti.tensor_shape.unknown_rank and len(ti.tensor_shape.dim) >= 1
        and ti.tensor_shape.dim[0].size == -1 for ti in infos.values())


def _read_meta_graph(path: str, tags: tuple[str, ...]):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    saved = saved_model_pb2.SavedModel()
    if os.path.exists(pb):
        with open(pb, "rb") as f:
            saved.ParseFromString(f.read())
    elif os.path.exists(pbtxt):
        with open(pbtxt, encoding="utf-8") as f:
            text_format.Parse(f.read(), saved)
    else:
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           f"Could not find SavedModel .pb or .pbtxt at supplied export directory "
                           f"path: {path}. Expected {path}/saved_model.pb and {path}/variables/")
    for meta in saved.meta_graphs:
        if set(meta.meta_info_def.tags) == set(tags):
            return meta
    have = [sorted(m.meta_info_def.tags) for m in saved.meta_graphs]
    raise ServingError(grpc.StatusCode.NOT_FOUND,
                       f"Could not find meta graph def matching supplied tags: "
                       f"{{ {' '.join(sorted(tags))} }}. The SavedModel has tag-sets {have}. "
                       f"To inspect available tag-sets in the SavedModel, please use the "
                       f"SavedModel CLI: `saved_model_cli`")


class Servable:
    """One loaded version of a model: its signatures, ready to run."""

    def __init__(self, name: str, version: int, path: str, loaded, signature_defs: dict,
                 signatures: dict):
        self.name = name
        self.version = version
        self.path = path
        self._loaded = loaded          # keeps the functions' resources alive
        self.signature_defs = signature_defs
        self.signatures = signatures

    @classmethod
    def load(cls, name: str, version: int, path: str, tags=("serve",)) -> "Servable":
        tf = _tensorflow()
        meta = _read_meta_graph(path, tuple(tags))
        try:
            loaded = tf.saved_model.load(path, tags=list(tags))
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e.error_code), clean_tf_message(e.message)) from None
        signature_defs = {k: meta.signature_def[k] for k in sorted(meta.signature_def)}
        signatures = {}
        for key, fn in loaded.signatures.items():
            sdef = meta.signature_def.get(key)
            if sdef is None:
                continue
            inputs = {a: sdef.inputs[a] for a in sorted(sdef.inputs)}
            outputs = {a: sdef.outputs[a] for a in sorted(sdef.outputs)}
            batch_major = _batch_major(inputs)
            signatures[key] = _Signature(key, fn, inputs, outputs, batch_major,
                                         batch_major and _batch_major(outputs))
        return cls(name, version, path, loaded, signature_defs, signatures)

    # ---- Predict ---------------------------------------------------------

    def predict(self, request, tensor_content: bool = False, *, max_batch_size: int = 0,
                slice_size: int = 0, check_alive=None):
        """Run a PredictRequest (TF Serving's RunPredict) -> PredictResponse.

        Beyond TF Serving, the work a request causes is bounded: a batch-major input
        declaring more than `max_batch_size` examples (0: no limit) is refused before
        anything is parsed, every input must carry one value per element it declares,
        and a batch larger than `slice_size` runs in slices of that size with
        `check_alive()` (which raises ServingError once the client's deadline has
        passed or it went away) called before each one.
        """
        tf = _tensorflow()
        from tensorflow_serving.apis import predict_pb2
        invalid = grpc.StatusCode.INVALID_ARGUMENT

        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{key}" not found.')
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.signature_name = key
        response.model_spec.version.value = self.version

        # VerifyRequestInputsSize
        if len(request.inputs) != len(sig.inputs):
            req, want = sorted(request.inputs), list(sig.inputs)
            extra = sorted(set(req) - set(want))
            missing = sorted(set(want) - set(req))
            raise ServingError(invalid, (
                f"input size does not match signature: {len(req)}!={len(want)} "
                f"len({{{','.join(req)}}}) != len({{{','.join(want)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."))
        # GetInputValues, each declared size checked before anything is allocated.
        shapes = {}
        for alias, info in sig.inputs.items():
            if alias not in request.inputs:
                raise ServingError(invalid, (
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request "
                    f"{{{','.join(sorted(request.inputs))}}}, or default input alias set: "))
            try:
                shapes[alias] = declared_shape(request.inputs[alias])
            except ValueError:
                raise ServingError(invalid, f"tensor parsing error: {alias}") from None
        if sig.batch_major and max_batch_size:
            for alias, shape in shapes.items():
                if shape and shape[0] > max_batch_size:
                    raise ServingError(invalid, (
                        f'input "{alias}" holds a batch of {shape[0]} examples, more than this '
                        f"server's maximum batch size of {max_batch_size} (--max_batch_size); "
                        f"send at most {max_batch_size} examples per request"))
        arrays = {}
        for alias in sig.inputs:
            proto = request.inputs[alias]
            try:
                check_values_fill_shape(proto, shapes[alias])
            except ValueError as e:
                raise ServingError(invalid, f"tensor parsing error: {alias}: {e}") from None
            try:
                arrays[alias] = parse_tensor_proto(proto)
            except Exception:
                raise ServingError(invalid, f"tensor parsing error: {alias}") from None
        # output_filter
        aliases: list[str] = []
        for alias in request.output_filter:
            if alias not in sig.outputs:
                raise ServingError(invalid, (
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{','.join(sig.outputs)}}}."))
            if alias in aliases:
                raise ServingError(invalid, f"duplicate output tensor alias: {alias}")
            aliases.append(alias)
        if not aliases:
            aliases = list(sig.outputs)
        # Session::Run's feed dtype check
        for i, (alias, info) in enumerate(sig.inputs.items()):
            sent = request.inputs[alias].dtype
            if sent != info.dtype:
                raise ServingError(invalid, f"Expects arg[{i}] to be {_dtype_name(info.dtype)} "
                                            f"but {_dtype_name(sent)} is provided")
        # Beyond TF Serving: shapes against the signature, batch sizes.
        for alias, info in sig.inputs.items():
            if info.tensor_shape.unknown_rank:
                continue
            want = [d.size for d in info.tensor_shape.dim]
            got = arrays[alias].shape
            if len(got) != len(want) or any(w not in (-1, g) for w, g in zip(want, got)):
                raise ServingError(invalid, (
                    f'input "{alias}" has shape {_shape_str(got)} but signature "{key}" expects '
                    f"shape {_shape_str(want)} (rank {len(want)}; -1 = any size)"))
        if sig.batch_major:
            sizes = {alias: arr.shape[0] for alias, arr in arrays.items()}
            if len(set(sizes.values())) > 1:
                listing = ", ".join(f"{a} has {n}" for a, n in sizes.items())
                raise ServingError(invalid, (
                    f"inputs have different batch sizes (dim 0): {listing}; every input of "
                    f'signature "{key}" needs one entry per example'))
            empty = [a for a, n in sizes.items() if n == 0]
            if empty:
                raise ServingError(invalid, (
                    f"empty batch: input {empty[0]} has 0 entries (dim 0 is 0); send at least "
                    f"one example"))
        # Run.
        dtypes = {alias: tf.dtypes.as_dtype(info.dtype) for alias, info in sig.inputs.items()}
        batch = next(iter(arrays.values())).shape[0] if sig.batch_major else 0
        step = slice_size if sig.splittable and 0 < slice_size < batch else batch
        parts = []
        for start in range(0, max(batch, 1), max(step, 1)):
            if check_alive is not None:
                check_alive()
            part = arrays if step == batch else {a: v[start:start + step] for a, v in arrays.items()}
            parts.append(self._run(sig, part, dtypes, aliases))
        for alias in aliases:
            if len(parts) == 1:
                arr, dtype_enum = parts[0][alias]
            else:
                arr, dtype_enum = np.concatenate([p[alias][0] for p in parts]), parts[0][alias][1]
            if tensor_content:
                response.outputs[alias].CopyFrom(tf.make_tensor_proto(arr))
                continue
            fast = wire.encode(arr, dtype_enum)
            if fast is not None:
                response.outputs[alias].MergeFromString(fast)
            else:
                response.outputs[alias].CopyFrom(_as_proto_field(arr, dtype_enum))
        return response

    @staticmethod
    def _run(sig, arrays: dict, dtypes: dict, aliases: list) -> dict:
        """One call of the signature: {alias: (ndarray, DataType enum)} of the outputs asked for."""
        tf = _tensorflow()
        feeds = {alias: tf.convert_to_tensor(arrays[alias], dtype=dtypes[alias]) for alias in arrays}
        try:
            result = sig.fn(**feeds)
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e.error_code), clean_tf_message(e.message)) from None
        except (TypeError, ValueError) as e:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, clean_tf_message(str(e))) from None
        return {alias: (result[alias].numpy(), result[alias].dtype.as_datatype_enum)
                for alias in aliases}

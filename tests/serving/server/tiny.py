"""Tiny t2i-like SavedModels and the helpers the server tests share (TF Serving semantics).

`build_tiny_models` exports them (the session fixture `tiny` in tests/serving/conftest.py);
their images are (seed + tag [+ round(10 temperature)]) % 256.
"""

import os
import shutil
import socket
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2_grpc
from tensorflow.core.framework import types_pb2
from tensorflow.python.data.experimental.ops import testing as tf_data_testing
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_log_pb2, prediction_service_pb2_grpc)

from serving import model_config as mc
from serving import server as srv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
H = W = 4
T, L = 3, 2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class TinyModel(tf.Module):
    """Signatures shaped like the t2i export; images are (seed + tag) % 256."""

    def __init__(self, tag: int):
        super().__init__()
        self.tag = tf.Variable(tag, dtype=tf.int64, trainable=False)
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False)

    def _draw(self, captions, seed):
        tf.debugging.assert_greater(tf.strings.length(captions), 0, message="empty caption")
        value = tf.cast((seed + self.tag) % 256, tf.uint8)
        images = tf.tile(tf.reshape(value, [-1, 1, 1, 1]), [1, H, W, 1])
        alignments = tf.fill(tf.stack([tf.shape(seed)[0], T, L]), 0.5)
        return images, alignments

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions"),
                                  tf.TensorSpec([None], tf.int64, name="seed")])
    def generate(self, captions, seed):
        self.calls.assign_add(1)
        images, alignments = self._draw(captions, seed)
        return {"images": images, "alignments": alignments,
                "tag": tf.fill(tf.shape(seed), self.tag)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions"),
                                  tf.TensorSpec([None], tf.int64, name="seed")])
    def trace(self, captions, seed):
        images, alignments = self._draw(captions, seed)
        canvases = tf.stack([images // 2, images // 2, images], axis=1)
        return {"canvases": canvases, "images": images, "alignments": alignments}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions"),
                                  tf.TensorSpec([None], tf.int64, name="seed"),
                                  tf.TensorSpec([None], tf.float32, name="temperature")])
    def sample(self, captions, seed, temperature):
        """Images are (seed + tag + round(10 temperature)) % 256."""
        images, alignments = self._draw(captions, seed + tf.cast(tf.round(10 * temperature), tf.int64))
        return {"images": images, "alignments": alignments}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions"),
                                  tf.TensorSpec([None, H, W, 1], tf.uint8, name="images")])
    def score(self, captions, images):
        return {"bound": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
    def count(self, x):
        return {"calls": tf.fill(tf.shape(x), self.calls.read_value())}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="delay_us")])
    def slow(self, delay_us):
        """Sleeps ~2 x delay_us[0] (get_single_element pulls twice), without burning CPU."""
        ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).apply(
            tf_data_testing.sleep(delay_us[0]))
        return {"out": delay_us + ds.get_single_element()}


def predict_request(captions=("a", "b"), seeds=None, name="m", signature="", **spec):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    if "version" in spec:
        req.model_spec.version.value = spec["version"]
    if "label" in spec:
        req.model_spec.version_label = spec["label"]
    if captions is not None:
        req.inputs["captions"].CopyFrom(tf.make_tensor_proto(list(captions), tf.string))
        seeds = list(range(len(captions))) if seeds is None else seeds
        req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.asarray(seeds, np.int64)))
    return req


def write_warmup(version_dir, requests):
    os.makedirs(os.path.join(version_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(version_dir, srv.WARMUP_FILE)) as w:
        for req in requests:
            w.write(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=req)).SerializeToString())


def build_tiny_models(root) -> dict:
    """SavedModel version dirs to copy: tag1, tag2, broken (warmup fails), slow_warmup."""
    out = {}
    for tag in (1, 2):
        module = TinyModel(tag)
        path = os.path.join(str(root), f"tag{tag}")
        tf.saved_model.save(module, path, signatures={
            "serving_default": module.generate, "trace": module.trace, "sample": module.sample,
            "score": module.score,
            "count": module.count, "slow": module.slow})
        write_warmup(path, [predict_request(("warm",), [i], name="ignored") for i in range(3)])
        out[f"tag{tag}"] = path
    warm_slow = predict_pb2.PredictRequest()
    warm_slow.model_spec.signature_name = "slow"
    warm_slow.inputs["delay_us"].CopyFrom(tf.make_tensor_proto(np.array([200_000], np.int64)))
    slow_warmup = os.path.join(str(root), "slow_warmup")
    shutil.copytree(out["tag2"], slow_warmup)
    write_warmup(slow_warmup, [warm_slow])  # ~0.4 s of warmup
    out["slow_warmup"] = slow_warmup
    broken = os.path.join(str(root), "broken")
    shutil.copytree(out["tag2"], broken)
    # ~0.4 s of good warmup, then a request the graph rejects.
    write_warmup(broken, [warm_slow, predict_request(("ok",)), predict_request(("",))])
    out["broken"] = broken
    return out


def publish(src, base, version):
    """Copy a version in the safe way: into a temp dir, then rename()."""
    tmp = os.path.join(base, f".tmp-{version}")
    shutil.copytree(src, tmp)
    os.rename(tmp, os.path.join(base, str(version)))


def one_model_server(tiny, tmp_path_factory, name: str):
    """Yields "host:port" of a gRPC model server with model `name`, version 1 (tiny tag 1)."""
    base = str(tmp_path_factory.mktemp(name))
    publish(tiny["tag1"], base, 1)
    server = srv.ModelServer(models=[mc.ModelConfig(name, base)], port=0,
                             file_system_poll_wait_seconds=0, grpc_max_threads=4).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace_s=1)


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stubs:
    def __init__(self, port):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def status(self, name="m", version=None):
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = name
        if version is not None:
            req.model_spec.version.value = version
        return self.model.GetModelStatus(req, timeout=10)

    def close(self):
        self.channel.close()


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def start_server(models, **kwargs):
    kwargs.setdefault("file_system_poll_wait_seconds", 0)
    return srv.ModelServer(models=models, port=0, grpc_max_threads=8, **kwargs).start()


def check_still_serving(stubs):
    resp = stubs.predict.Predict(predict_request(("ok",), [5]), timeout=10)
    assert tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0] == 6


def hammer(stubs, seen, errors, stop):
    """Send requests until `stop`; record (version, image value) or the error."""
    while not stop.is_set() and len(seen) < 5000:
        try:
            resp = stubs.predict.Predict(predict_request(("x",), [0]), timeout=10)
            image = int(tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0])
            seen.append((resp.model_spec.version.value, image))
        except grpc.RpcError as e:  # pragma: no cover - the failure being tested for
            errors.append(f"{e.code()}: {e.details()}")


def declared_request(captions_shape, seeds_shape, captions=(b"a",), seeds=(1,)):
    """A Predict request whose tensors declare shapes but carry only the values given."""
    req = predict_request(captions=None)
    req.inputs["captions"].dtype = types_pb2.DT_STRING
    req.inputs["captions"].tensor_shape.dim.add(size=captions_shape)
    req.inputs["captions"].string_val.extend(captions)
    req.inputs["seed"].dtype = types_pb2.DT_INT64
    req.inputs["seed"].tensor_shape.dim.add(size=seeds_shape)
    req.inputs["seed"].int64_val.extend(seeds)
    return req

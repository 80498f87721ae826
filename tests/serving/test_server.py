"""The local model server against tiny SavedModels built here (TF Serving semantics)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow.core.framework import types_pb2
from tensorflow.python.data.experimental.ops import testing as tf_data_testing
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_log_pb2,
                                     prediction_service_pb2_grpc)

from serving import model_config as mc
from serving import server as srv
from t2i.errors import T2IError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
H = W = 4
T, L = 3, 2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------------------
# tiny t2i-like SavedModels


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


@pytest.fixture(scope="module")
def served(tiny, tmp_path_factory):
    """One server: model "m" with version 1 (tag 1), 64 KiB request limit."""
    base = str(tmp_path_factory.mktemp("m"))
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], max_request_bytes=64 * 1024)
    stubs = Stubs(server.port)
    yield server, stubs
    stubs.close()
    server.stop(grace_s=1)


def check_still_serving(stubs):
    resp = stubs.predict.Predict(predict_request(("ok",), [5]), timeout=10)
    assert tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0] == 6


# --------------------------------------------------------------------------
# config rules (no server)


def test_version_directory_names_follow_simple_atoi():
    assert [mc.parse_version_dir(n) for n in ("1", "00000123", " 7 ", "+3")] == [1, 123, 7, 3]
    for name in ("v1", "1.0", ".tmp-2", "", "1a", "-1", "0x10", str(2**63)):
        assert mc.parse_version_dir(name) is None, name


def test_version_policies(tmp_path):
    for name in ("1", "3", "0010", "v2", ".tmp-4"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    found = mc.scan_versions(str(tmp_path))
    assert sorted(found) == [1, 3, 10]
    assert mc.aspired_versions(("latest", 1), found) == {10}
    assert mc.aspired_versions(("latest", 2), found) == {3, 10}
    assert mc.aspired_versions(("all",), found) == {1, 3, 10}
    assert mc.aspired_versions(("specific", frozenset({1, 4})), found) == {1}
    assert mc.scan_versions(str(tmp_path / "missing")) is None


def test_config_file_parsing(tmp_path):
    cfg = tmp_path / "models.config"
    cfg.write_text("""model_config_list { config { name: 'a' base_path: '/x/a' model_platform: 'tensorflow'
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: 'stable' value: 1 } }
      config { name: 'b' base_path: '/x/b' model_version_policy { all {} } } }""")
    a, b = mc.parse_model_config_file(str(cfg))
    assert (a.name, a.base_path, a.policy, dict(a.version_labels)) == (
        "a", "/x/a", ("specific", frozenset({1, 2})), {"stable": 1})
    assert (b.policy, b.version_labels) == (("all",), {})
    bad = {
        "model_config_list { config { name: 'a' } }": "base_path is empty",
        "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }":
            "listed more than once",
        "model_config_list { config { name: 'a' base_path: '/a' model_platform: 'onnx' } }":
            "model_platform 'onnx'",
        "model_config_list { config { name: 'a' base_path: '/a' model_version_policy "
        "{ specific { versions: 1 } } version_labels { key: 'x' value: 2 } } }": "never loads",
        "model_config_list { nonsense: 1 }": "not a text-format",
        "": "lists no models",
    }
    for text, message in bad.items():
        cfg.write_text(text)
        with pytest.raises(T2IError, match=message):
            mc.parse_model_config_file(str(cfg))
    with pytest.raises(T2IError, match="cannot read"):
        mc.parse_model_config_file(str(tmp_path / "missing.config"))


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


def test_error_messages_are_cleaned_and_truncated():
    graph = ("Graph execution error:\n\nDetected at node Assert defined at (most recent call last):\n"
             "<stack traces unavailable>\nassertion failed: [empty caption]\n"
             "\t [[{{node Assert}}]] [Op:__inference_signature_wrapper_1]")
    assert srv.clean_tf_message(graph) == "assertion failed: [empty caption]"
    assert srv.clean_tf_message(
        "{{function_node __inference_f_1}} bad input [Op:X]") == "bad input"
    # An exported t2i graph's own checks come back in words (as the export writes them).
    empty = ("assertion failed: [t2i: empty caption: every caption needs at least one word; token "
             "counts per caption] [Condition x > y did not hold element-wise:] [x (sub:0) = ] [4 0] "
             "[y (Const_1:0) = ] [0]")
    assert srv.clean_tf_message(empty) == ("t2i: empty caption: every caption needs at least one "
                                           "word; token counts per caption: 4 0")
    assert srv.clean_tf_message("assertion failed: [t2i: captions and seed must have the same batch "
                                "size]") == "t2i: captions and seed must have the same batch size"
    assert srv.truncate_message("x" * 1030) == "x" * 1024 + "...TRUNCATED"
    assert srv.truncate_message("short") == "short"


# --------------------------------------------------------------------------
# Predict


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


def test_request_over_max_request_bytes_is_resource_exhausted(served):
    _, stubs = served
    err = rpc_error(stubs.predict.Predict, predict_request(("x" * 100_000,)), timeout=10)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    check_still_serving(stubs)


def test_64_concurrent_requests_are_all_answered(served):
    _, stubs = served

    def one(i):
        resp = stubs.predict.Predict(predict_request((f"c{i}",), [i]), timeout=30)
        return int(tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0])

    with futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(64)))
    assert got == [(i + 1) % 256 for i in range(64)]


# --------------------------------------------------------------------------
# ModelService, metadata, health


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


# --------------------------------------------------------------------------
# loading: warmup, failures, hot reload, policies and labels


def test_warmup_is_replayed_before_the_version_is_available(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)])
    stubs = Stubs(server.port)
    try:
        req = predict_request(captions=None, signature="count")
        req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([0], np.int64)))
        # The 3 warmup requests ran on this version before anyone could call it.
        assert tf.make_ndarray(stubs.predict.Predict(req, timeout=10).outputs["calls"]).tolist() == [3]
    finally:
        stubs.close()
        server.stop(grace_s=1)
    cold = start_server([mc.ModelConfig("m", base)], enable_model_warmup=False)
    try:
        assert cold.resolve(model_pb2.ModelSpec(name="m")).signatures["count"].fn(
            x=tf.constant([0], tf.int64))["calls"].numpy().tolist() == [0]
    finally:
        cold.stop(grace_s=1)


def hammer(stubs, seen, errors, stop):
    """Send requests until `stop`; record (version, image value) or the error."""
    while not stop.is_set() and len(seen) < 5000:
        try:
            resp = stubs.predict.Predict(predict_request(("x",), [0]), timeout=10)
            image = int(tf.make_ndarray(resp.outputs["images"])[0, 0, 0, 0])
            seen.append((resp.model_spec.version.value, image))
        except grpc.RpcError as e:  # pragma: no cover - the failure being tested for
            errors.append(f"{e.code()}: {e.details()}")


def test_version_failing_warmup_never_serves_and_old_version_keeps_serving(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], file_system_poll_wait_seconds=0.05)
    stubs = Stubs(server.port)
    seen, errors, stop = [], [], threading.Event()
    thread = threading.Thread(target=hammer, args=(stubs, seen, errors, stop))
    try:
        thread.start()
        publish(tiny["broken"], base, 2)
        wait_for(lambda: server.model_status("m").get(2, ("",))[0] == "END", what="v2 to fail")
        stop.set()
        thread.join(timeout=30)
        assert not errors, errors[:3]
        assert seen and set(seen) == {(1, 1)}  # v2 never answered, even while warming up
        by_version = {s.version: s for s in stubs.status("m").model_version_status}
        failed = by_version[2]
        assert failed.state == get_model_status_pb2.ModelVersionStatus.END
        assert failed.status.error_code == INVALID.value[0]
        assert "warmup request #2" in failed.status.error_message
        assert "empty caption" in failed.status.error_message
        assert by_version[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 1
        assert rpc_error(stubs.predict.Predict, predict_request(version=2),
                         timeout=10).code() == grpc.StatusCode.NOT_FOUND
        health = stubs.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # A failed version is retried once its directory changes (here: a fixed warmup file).
        write_warmup(os.path.join(base, "2"), [predict_request(("ok",))])
        wait_for(lambda: server.model_status("m").get(2) == ("AVAILABLE", None),
                 what="the fixed v2 to load")
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 2
    finally:
        stop.set()
        thread.join(timeout=30)
        stubs.close()
        server.stop(grace_s=1)


def test_hot_reload_switches_versions_without_failing_requests(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = start_server([mc.ModelConfig("m", base)], file_system_poll_wait_seconds=0.05)
    stubs = Stubs(server.port)
    seen, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=hammer, args=(stubs, seen, errors, stop))
               for _ in range(2)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(seen) >= 5, what="first answers")
        publish(tiny["slow_warmup"], base, 2)
        wait_for(lambda: server.model_status("m").get(2, ("",))[0] == "LOADING", what="loading")
        # While version 2 loads and warms up, it is neither "latest" nor addressable.
        deadline = time.monotonic() + 30
        while server.model_status("m")[2][0] == "LOADING" and time.monotonic() < deadline:
            during = stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value
            late = server.model_status("m")[2][0]
            assert during == 1 or late != "LOADING"
        wait_for(lambda: seen and seen[-1][0] == 2, what="answers from version 2")
        n = len(seen)
        wait_for(lambda: len(seen) >= n + 10, what="more answers")
        wait_for(lambda: server.model_status("m").get(1, ("",))[0] == "END",
                 what="version 1 to unload")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    try:
        assert not errors, errors[:3]
        assert set(seen) <= {(1, 1), (2, 2)}  # version and weights agree
        assert {v for v, _ in seen} == {1, 2}
        states = {s.version: s.state for s in stubs.status("m").model_version_status}
        assert states == {2: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                          1: get_model_status_pb2.ModelVersionStatus.END}
        assert stubs.predict.Predict(predict_request(), timeout=10).model_spec.version.value == 2
    finally:
        stubs.close()
        server.stop(grace_s=1)


def test_specific_versions_labels_and_config_reload(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    publish(tiny["tag2"], base, 2)
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "m" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
        version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }} }}""")
    server = srv.ModelServer(model_config_file=str(config), port=0,
                             file_system_poll_wait_seconds=0).start()
    stubs = Stubs(server.port)

    def version_of(**spec):
        return stubs.predict.Predict(predict_request(**spec), timeout=10).model_spec.version.value

    try:
        assert version_of() == 2
        assert version_of(version=1) == 1 and version_of(version=2) == 2
        assert version_of(label="stable") == 1 and version_of(label="canary") == 2
        err = rpc_error(stubs.predict.Predict, predict_request(label="beta"), timeout=10)
        assert (err.code(), err.details()) == (INVALID, "Unrecognized servable version label: beta")
        err = rpc_error(stubs.predict.Predict, predict_request(version=3), timeout=10)
        assert err.details() == "Servable not found for request: Specific(m, 3)"
        # HandleReloadConfigRequest: move "stable" to 2 and drop version 1.
        from google.protobuf import text_format
        from tensorflow_serving.apis import model_management_pb2
        reload = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(f"""model_config_list {{ config {{ name: "m" base_path: "{base}"
            model_platform: "tensorflow" model_version_policy {{ specific {{ versions: 2 }} }}
            version_labels {{ key: "stable" value: 2 }} }} }}""", reload.config)
        stubs.model.HandleReloadConfigRequest(reload, timeout=30)
        assert version_of(label="stable") == 2
        assert server.model_status("m")[1][0] == "END"
    finally:
        stubs.close()
        server.stop(grace_s=1)


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


# --------------------------------------------------------------------------
# the bounds on one request's work (docs/serving.md §6)


def _declared(captions_shape, seeds_shape, captions=(b"a",), seeds=(1,)):
    """A Predict request whose tensors declare shapes but carry only the values given."""
    req = predict_request(captions=None)
    req.inputs["captions"].dtype = types_pb2.DT_STRING
    req.inputs["captions"].tensor_shape.dim.add(size=captions_shape)
    req.inputs["captions"].string_val.extend(captions)
    req.inputs["seed"].dtype = types_pb2.DT_INT64
    req.inputs["seed"].tensor_shape.dim.add(size=seeds_shape)
    req.inputs["seed"].int64_val.extend(seeds)
    return req


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
    req = _declared(declared, declared)
    assert req.ByteSize() < 1024
    err = rpc_error(stubs.predict.Predict, req, timeout=10)
    assert err.code() == INVALID, err.details()
    assert message in err.details()
    check_still_serving(stubs)


def test_tensor_content_must_match_the_declared_shape(served):
    _, stubs = served
    req = _declared(2, 2, captions=(b"a", b"b"), seeds=())
    req.inputs["seed"].tensor_content = np.array([1], np.int64).tobytes()  # 8 bytes for [2]
    err = rpc_error(stubs.predict.Predict, req, timeout=10)
    assert err.code() == INVALID
    assert ("tensor parsing error: seed: shape [2] declares 2 values (16 bytes of tensor_content) "
            "but the request carries 8 bytes") in err.details()
    req.inputs["seed"].tensor_content = np.array([1, 2], np.int64).tobytes()
    images = tf.make_ndarray(stubs.predict.Predict(req, timeout=10).outputs["images"])
    assert images[:, 0, 0, 0].tolist() == [2, 3]  # seed + tag 1


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


def test_admission_control_and_request_size_are_bounded_by_default(tiny, tmp_path):
    args = srv.build_parser().parse_args(["--model_base_path", str(tmp_path)])
    assert args.max_concurrent_requests == srv.default_max_concurrent_requests() == 4 * os.cpu_count()
    assert args.max_batch_size == srv.DEFAULT_MAX_BATCH_SIZE
    assert args.max_request_bytes == srv.DEFAULT_MAX_REQUEST_BYTES == 4 * 1024 * 1024
    server = srv.server_from_args(args)
    assert server.max_concurrent_requests == srv.default_max_concurrent_requests()
    assert server.grpc_max_threads >= 16
    with pytest.raises(T2IError, match="--max_batch_size must be >= 0"):
        srv.ModelServer(models=[mc.ModelConfig("m", str(tmp_path))], max_batch_size=-1)


# --------------------------------------------------------------------------
# the command line


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert srv.main(["--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("t2i: error: no model to serve")
    assert srv.main(["--port", "0", "--model_config_file", str(tmp_path / "none.config")]) == 2
    assert "cannot read --model_config_file" in capsys.readouterr().err
    with socket.socket() as busy:  # fails before loading anything
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert srv.main(["--port", str(port), "--model_base_path", str(tmp_path)]) == 2
    assert f"t2i: error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert srv.build_parser().parse_args(["--enable_model_warmup=false"]).enable_model_warmup is False


def test_subprocess_serves_and_exits_zero_on_sigterm(tiny, tmp_path):
    from serving import client
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--port", str(port), "--model_name", "m",
         "--model_base_path", base, "--file_system_poll_wait_seconds", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        target = f"127.0.0.1:{port}"
        assert client.wait_until_available(target, "m", timeout_s=120) == 1
        channel = client.make_channel(target)
        out = client.predict(channel, ["a"], [7], model_name="m")
        channel.close()
        assert out["images"][0, 0, 0, 0] == 8
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output = proc.stdout.read().decode(errors="replace")
    assert "Successfully loaded servable version {name: m version: 1}" in output

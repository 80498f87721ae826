"""The REST API of the local model server (TF Serving's --rest_api_port) against its gRPC answers."""

import base64
import json
import os
import re
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from serving import client
from serving import model_config as mc
from serving import server as srv
from tests.serving.server.tiny import ROOT, H, L, T, W, Stubs, publish, wait_for


@pytest.fixture(scope="module")
def served(tiny, tmp_path_factory):
    """Model "m": versions 1 (tag 1) and 2 (tag 2), label stable -> 1; gRPC and REST."""
    base = str(tmp_path_factory.mktemp("m"))
    publish(tiny["tag1"], base, 1)
    publish(tiny["tag2"], base, 2)
    server = srv.ModelServer(
        models=[mc.ModelConfig("m", base, ("all",), {"stable": 1})], port=0, rest_api_port=-1,
        file_system_poll_wait_seconds=0, grpc_max_threads=8, max_request_bytes=64 * 1024).start()
    stubs = Stubs(server.port)
    yield server, stubs, f"http://127.0.0.1:{server.rest_port}"
    stubs.close()
    server.stop(grace_s=1)


def grpc_predict(stubs, captions, seeds, signature="", version=None, label=None, extra=None):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "m"
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    req.inputs["captions"].CopyFrom(tf.make_tensor_proto(list(captions), tf.string))
    req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.asarray(seeds, np.int64)))
    for alias, value in (extra or {}).items():
        req.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    resp = stubs.predict.Predict(req, timeout=10)
    return {alias: tf.make_ndarray(p) for alias, p in resp.outputs.items()}


def post(url, path, body, raw=False):
    data = body if raw else json.dumps(body)
    return requests.post(url + path, data=data, timeout=30)


def still_serving(stubs, url):
    answer = post(url, "/v1/models/m:predict", {"instances": [{"captions": "ok", "seed": 5}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["images"][0][0] == [7]  # seed 5 + tag 2 (latest)
    assert grpc_predict(stubs, ["ok"], [5])["images"][0, 0, 0, 0] == 7


# --------------------------------------------------------------------------
# predict: both formats, every signature, versions and labels, against gRPC


@pytest.mark.parametrize("path,spec", [("", {}), ("/versions/1", {"version": 1}),
                                       ("/labels/stable", {"label": "stable"}),
                                       ("/versions/2", {"version": 2})])
@pytest.mark.parametrize("signature", ["", "serving_default", "trace"])
def test_predict_both_formats_equal_grpc(served, path, spec, signature):
    _, stubs, url = served
    captions, seeds = ["the digit 3 .", "the digit 4 ."], [5, 40]
    want = grpc_predict(stubs, captions, seeds, signature, **spec)
    row = {"instances": [{"captions": c, "seed": s} for c, s in zip(captions, seeds)]}
    col = {"inputs": {"captions": captions, "seed": seeds}}
    if signature:
        row["signature_name"] = col["signature_name"] = signature
    got_row = post(url, f"/v1/models/m{path}:predict", row)
    got_col = post(url, f"/v1/models/m{path}:predict", col)
    assert got_row.status_code == got_col.status_code == 200, (got_row.text, got_col.text)
    assert got_row.headers["Content-Type"] == "application/json"
    predictions, outputs = got_row.json()["predictions"], got_col.json()["outputs"]
    assert len(predictions) == 2 and set(predictions[0]) == set(want) == set(outputs)
    for alias, arr in want.items():
        # Row format: one object per example; columnar: one array per output.
        np.testing.assert_array_equal(np.asarray([p[alias] for p in predictions]), arr)
        np.testing.assert_array_equal(np.asarray(outputs[alias]), arr)
    tag = 1 if spec.get("version") == 1 or spec.get("label") == "stable" else 2
    assert [p["images"][0][0][0] for p in predictions] == [(s + tag) % 256 for s in seeds]


def test_sample_signature_temperature_float_and_b64_strings(served):
    _, stubs, url = served
    want = grpc_predict(stubs, ["a", "b"], [5, 6], "sample",
                        extra={"temperature": np.array([0.5, 2.0], np.float32)})
    got = post(url, "/v1/models/m:predict", {
        "signature_name": "sample",
        "instances": [{"captions": {"b64": base64.b64encode(b"a").decode()}, "seed": 5,
                       "temperature": 0.5},
                      {"captions": "b", "seed": 6, "temperature": 2}]})  # an int is a float too
    assert got.status_code == 200, got.text
    images = np.asarray([p["images"] for p in got.json()["predictions"]])
    np.testing.assert_array_equal(images, want["images"])
    assert images[:, 0, 0, 0].tolist() == [12, 28]  # seed + tag 2 + round(10 t)
    # float32 outputs are written at float32 precision, as TF Serving does.
    assert got.json()["predictions"][0]["alignments"][0] == [0.5, 0.5]


def test_single_output_is_unnamed_and_single_input_may_be_bare(served):
    _, _, url = served
    row = post(url, "/v1/models/m:predict", {"signature_name": "count", "instances": [0, 0, 0]})
    assert row.status_code == 200, row.text
    calls = row.json()["predictions"]
    assert isinstance(calls, list) and len(calls) == 3 and all(isinstance(c, int) for c in calls)
    col = post(url, "/v1/models/m:predict", {"signature_name": "count", "inputs": [0, 0]})
    assert col.status_code == 200 and len(col.json()["outputs"]) == 2


def test_client_rest_predict_is_the_twin_of_predict(served):
    _, stubs, url = served
    channel = client.make_channel(f"127.0.0.1:{served[0].port}")
    try:
        for signature in ("serving_default", "trace"):
            want = client.predict(channel, ["a", "b"], [3, 9], model_name="m",
                                  signature_name=signature)
            for columnar in (False, True):
                got = client.rest_predict(url, ["a", "b"], [3, 9], model_name="m",
                                          signature_name=signature, columnar=columnar)
                assert set(got) == set(want)
                for alias in want:
                    assert got[alias].dtype == want[alias].dtype, alias
                    np.testing.assert_array_equal(got[alias], want[alias])
        sampled = client.rest_predict(url.replace("http://", ""), ["a"], [1], model_name="m",
                                      version=1, signature_name="sample",
                                      inputs={"temperature": np.array([1.0], np.float32)})
        assert sampled["images"][0, 0, 0, 0] == 1 + 1 + 10
        assert client.rest_model_status(url, "m") == client.model_status(channel, "m")
        assert set(client.rest_signatures(url, "m", version=1)) >= {"serving_default", "trace"}
        with pytest.raises(client.RestError) as info:
            client.rest_predict(url, ["ok", ""], model_name="m")
        assert info.value.status == 400 and "empty caption" in info.value.message
        with pytest.raises(client.RestError) as info:
            client.rest_predict(url, ["a"], model_name="nope")
        assert info.value.status == 404
        assert "Servable not found for request: Latest(nope)" in str(info.value)
    finally:
        channel.close()


def test_readme_curl_body_works(served):
    """The README's curl example (its JSON body and path) against the local server."""
    _, _, url = served
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    match = re.search(r"curl -s -X POST (\S+) \\\n\s+-d '([^']+)'", readme)
    assert match, "README has no curl example"
    path = re.sub(r"^http://localhost:8501", "", match.group(1)).replace("/t2i:", "/m:")
    answer = requests.post(url + path, data=match.group(2), timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) >= 1


# --------------------------------------------------------------------------
# status and metadata


def test_status_and_metadata_equal_grpc(served):
    _, stubs, url = served
    for path, version in (("", None), ("/versions/1", 1), ("/labels/stable", None)):
        answer = requests.get(f"{url}/v1/models/m{path}", timeout=10)
        assert answer.status_code == 200, answer.text
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "m"
        if version is not None:
            req.model_spec.version.value = version
        if "labels" in path:
            req.model_spec.version_label = "stable"
        want = stubs.model.GetModelStatus(req, timeout=10)
        assert answer.json() == json_format.MessageToDict(
            want, always_print_fields_with_no_presence=True)
    assert requests.get(f"{url}/v1/models/m", timeout=10).json() == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

    meta = requests.get(f"{url}/v1/models/m/versions/1/metadata", timeout=10)
    assert meta.status_code == 200, meta.text
    doc = meta.json()
    assert doc["model_spec"] == {"name": "m", "version": "1", "signature_name": ""}
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    req = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="m"), metadata_field=["signature_def"])
    req.model_spec.version.value = 1
    grpc_sigs = get_model_metadata_pb2.SignatureDefMap()
    stubs.predict.GetModelMetadata(req, timeout=10).metadata["signature_def"].Unpack(grpc_sigs)
    assert sigs == json_format.MessageToDict(grpc_sigs, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True)[
                                                 "signature_def"]
    images = sigs["serving_default"]["outputs"]["images"]
    assert images["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", str(H), str(W), "1"]
    assert requests.get(f"{url}/v1/models/m/labels/stable/metadata",
                        timeout=10).json()["model_spec"]["version"] == "1"


# --------------------------------------------------------------------------
# errors: TF Serving's codes and messages; the server keeps serving


def _row(**extra):
    return {"instances": [{"captions": "a", "seed": 1}], **extra}


ERRORS = [
    ("bad json", "/v1/models/m:predict", "{bad", 400, "JSON Parse error:"),
    ("empty body", "/v1/models/m:predict", "", 400, "JSON Parse error: The document is empty"),
    ("not an object", "/v1/models/m:predict", "[1]", 400, "JSON Value: [1] Is not object"),
    ("unknown model", "/v1/models/nope:predict", _row(), 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", "/v1/models/m/versions/7:predict", _row(), 404,
     "Servable not found for request: Specific(m, 7)"),
    ("unknown label", "/v1/models/m/labels/beta:predict", _row(), 400,
     "Unrecognized servable version label: beta"),
    ("unknown signature", "/v1/models/m:predict", _row(signature_name="nope"), 400,
     'Serving signature name: "nope" not found in signature def'),
    ("signature not a string", "/v1/models/m:predict", _row(signature_name=3), 400,
     "'signature_name' key must be a string value."),
    ("wrong dtype", "/v1/models/m:predict", {"instances": [{"captions": "a", "seed": 0.5}]}, 400,
     "Failed to process element: 0 key: seed of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON Value: 0.5 Type: Number is not of expected type: int64"),
    ("string for int", "/v1/models/m:predict", {"inputs": {"captions": ["a"], "seed": ["x"]}},
     400, 'JSON Value: "x" Type: String is not of expected type: int64'),
    ("mismatched batch", "/v1/models/m:predict", {"inputs": {"captions": ["a", "b"], "seed": [1]}},
     400, "inputs have different batch sizes (dim 0): captions has 2, seed has 1"),
    ("mismatched instance shapes", "/v1/models/m:predict",
     {"instances": [{"captions": "a", "seed": 1}, {"captions": ["b"], "seed": 2}]}, 400,
     "Failed to process element: 1 key: captions of 'instances' list. Error: INVALID_ARGUMENT: "
     "Expecting shape [] but got: [1]"),
    ("ragged list", "/v1/models/m:predict", {"inputs": {"captions": [["a"], ["b", "c"]],
                                                        "seed": [1, 2]}}, 400,
     "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ("missing key in instance", "/v1/models/m:predict", {"instances": [{"captions": "a"}]}, 400,
     "keys must be equal to: captions,seed"),
    ("plain list, two inputs", "/v1/models/m:predict", {"instances": ["a"]}, 400,
     "instances is a plain list, but expecting list of objects"),
    ("missing named input", "/v1/models/m:predict", {"inputs": {"captions": ["a"]}}, 400,
     "Missing named input: seed in 'inputs' object."),
    ("both keys", "/v1/models/m:predict", {"inputs": {}, "instances": []}, 400,
     "expecting only one of 'inputs' or 'instances' keys to exist"),
    ("neither key", "/v1/models/m:predict", {"signature_name": ""}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("empty instances", "/v1/models/m:predict", {"instances": []}, 400,
     "No values in 'instances' array"),
    ("bad base64", "/v1/models/m:predict",
     {"instances": [{"captions": {"b64": "%%%"}, "seed": 1}]}, 400, "Unable to base64 decode"),
    ("graph error", "/v1/models/m:predict", {"instances": [{"captions": "", "seed": 1}]}, 400,
     "empty caption"),
    ("classify", "/v1/models/m:classify", {"examples": []}, 501, "Classify is not implemented"),
    ("too large", "/v1/models/m:predict",
     {"instances": [{"captions": "x" * 70_000, "seed": 1}]}, 413, "--max_request_bytes=65536"),
    # The bounds on one request's work (docs/serving.md §6).
    ("deep JSON", "/v1/models/m:predict", '{"instances": ' + "[" * 20_000 + "]" * 20_000 + "}",
     400, "JSON Parse error: the document is nested too deeply"),
    ("nested deeper than a tensor", "/v1/models/m:predict",
     '{"instances": [{"captions": ' + "[" * 100 + '"a"' + "]" * 100 + ', "seed": 1}]}', 400,
     "nested deeper than 32 lists"),
    ("huge integer", "/v1/models/m:predict",
     '{"instances": [{"captions": "a", "seed": ' + "9" * 5000 + "}]}", 400,
     "JSON Parse error: a number of 5000 digits"),
    ("batch over the limit", "/v1/models/m:predict",
     {"instances": [{"captions": "a", "seed": i} for i in range(srv.DEFAULT_MAX_BATCH_SIZE + 1)]},
     400, f"holds a batch of {srv.DEFAULT_MAX_BATCH_SIZE + 1} examples, more than this server's "
          f"maximum batch size of {srv.DEFAULT_MAX_BATCH_SIZE} (--max_batch_size)"),
]


@pytest.mark.parametrize("name,path,body,status,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_requests_get_tf_serving_errors(served, name, path, body, status, message):
    _, stubs, url = served
    answer = post(url, path, body, raw=isinstance(body, str))
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert message in error
    assert "Traceback" not in error and "Graph execution error" not in error
    still_serving(stubs, url)


def test_refused_requests_log_one_line_without_a_trace(served, caplog):
    _, stubs, url = served
    with caplog.at_level("INFO", logger="t2i.serving"):
        answer = post(url, "/v1/models/m:predict", '{"instances": ' + "[" * 5000 + "]" * 5000 + "}",
                      raw=True)
    assert answer.status_code == 400
    lines = [r for r in caplog.records if "nested too deeply" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "\n" not in lines[0].getMessage()
    still_serving(stubs, url)


def test_body_far_over_the_limit_is_refused_in_json_before_it_is_read(served):
    """A Content-Length far above --max_request_bytes gets TF Serving's JSON 413 at once."""
    import socket
    _, stubs, url = served
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/json" in head
    assert json.loads(body) == {"error": "Request body is larger than --max_request_bytes=65536"}
    still_serving(stubs, url)


def test_bad_paths_and_methods(served):
    _, stubs, url = served
    cases = [("GET", "/v1/models/m:predict", 400, "Malformed request: GET /v1/models/m:predict"),
             ("POST", "/v1/models/m", 400, "Malformed request: POST /v1/models/m"),
             ("GET", "/v1/models", 400, "Missing model name in request."),
             ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
             ("GET", "/v1/models/m/versions/9", 404, "Could not find version 9 of model m"),
             ("GET", "/v1/models/m/versions/99999999999999999999", 400,
              "Failed to convert version: 99999999999999999999 to numeric."),
             ("GET", "/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
             ("GET", "/v1/other", 400, "Malformed request: GET /v1/other")]
    for method, path, status, message in cases:
        answer = requests.request(method, url + path, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (status, message), path
    assert requests.get(url + "/elsewhere", timeout=10).status_code == 404
    still_serving(stubs, url)


def test_rest_shares_the_concurrency_limit(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = srv.ModelServer(models=[mc.ModelConfig("m", base)], port=0, rest_api_port=-1,
                             file_system_poll_wait_seconds=0, max_concurrent_requests=1,
                             queue_timeout_s=0.2).start()
    url = f"http://127.0.0.1:{server.rest_port}"
    try:
        slow = threading.Thread(target=post, args=(url, "/v1/models/m:predict", {
            "signature_name": "slow", "instances": [400_000]}))
        slow.start()
        wait_for(lambda: server.busy_slots == 1, what="the slow request to run")
        answer = post(url, "/v1/models/m:predict", _row())
        assert answer.status_code == 429, answer.text
        assert "max_concurrent_requests" in answer.json()["error"]
        slow.join(timeout=30)
        assert post(url, "/v1/models/m:predict", _row()).status_code == 200
    finally:
        server.stop(grace_s=1)


def test_rest_is_off_unless_asked(tiny, tmp_path):
    base = str(tmp_path / "m")
    os.makedirs(base)
    publish(tiny["tag1"], base, 1)
    server = srv.ModelServer(models=[mc.ModelConfig("m", base)], port=0,
                             file_system_poll_wait_seconds=0).start()
    try:
        assert server.rest_port is None
    finally:
        server.stop(grace_s=1)
    args = srv.build_parser().parse_args(["--rest_api_port", "8501", "--model_base_path", base])
    assert srv.server_from_args(args).requested_rest_port == 8501
    assert srv.build_parser().parse_args([]).rest_api_port == 0


def test_http_status_mapping_follows_tf_serving():
    codes = grpc.StatusCode
    assert [srv.http_status(c) for c in (
        codes.INVALID_ARGUMENT, codes.FAILED_PRECONDITION, codes.OUT_OF_RANGE, codes.NOT_FOUND,
        codes.RESOURCE_EXHAUSTED, codes.DEADLINE_EXCEEDED, codes.UNIMPLEMENTED, codes.UNAVAILABLE,
        codes.INTERNAL, codes.CANCELLED)] == [400, 400, 400, 404, 429, 504, 501, 503, 500, 499]


def test_tensors_from_json_follow_tf_serving_rules():
    from serving.server import rest
    from tensorflow.core.framework import types_pb2 as t

    class Info:
        def __init__(self, dtype):
            self.dtype = dtype

    infos = {"x": Info(t.DT_FLOAT), "n": Info(t.DT_UINT8)}
    got = rest._inputs_to_tensors({"x": [[1, 2.5], [3, 4]], "n": [1, 255]}, infos)
    np.testing.assert_array_equal(tf.make_ndarray(got["x"]), np.array([[1, 2.5], [3, 4]],
                                                                       np.float32))
    assert tf.make_ndarray(got["n"]).dtype == np.uint8
    with pytest.raises(srv.ServingError, match="without loss of precision"):
        rest._inputs_to_tensors({"x": [2**25], "n": [1]}, infos)
    with pytest.raises(srv.ServingError, match="Type: True is not of expected type: uint8"):
        rest._inputs_to_tensors({"x": [1], "n": [True]}, infos)
    with pytest.raises(srv.ServingError, match="JSON Value: 2 found at incorrect level: 2 in the JSON DOM"):
        rest._inputs_to_tensors({"x": [[1], 2], "n": [1]}, infos)
    out = rest.predict_response_json({"a_bytes": np.array([b"\x00\xff"], dtype=object),
                                      "s": np.array([b"hi"], dtype=object),
                                      "f": np.array([0.1], np.float32)}, "row")
    assert out == {"predictions": [{"a_bytes": {"b64": "AP8="}, "s": "hi", "f": 0.1}]}
    assert T == 3 and L == 2  # the tiny model's shapes used above


def test_client_command_uses_rest_without_tensorflow(served, tmp_path):
    """`t2i client --rest URL` (REST is its default) never imports TensorFlow."""
    _, _, url = served
    out = tmp_path / "rest.png"
    code = ("import sys\n"
            "from serving.client import main\n"
            f"rc = main(['--rest', {url!r}, '--model_name', 'm', '--wait', '30', '-o', {str(out)!r},\n"
            "            '--samples', '2', '--temperature', '1', 'a', 'b'])\n"
            "print('TF' if 'tensorflow' in sys.modules else 'LIGHT', rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=str(ROOT))
    assert done.stdout.split()[-2:] == ["LIGHT", "0"], done.stdout + done.stderr
    assert out.is_file()
    # A server that is not there: one line naming the URL.
    bad = subprocess.run([sys.executable, "-c", "from serving.client import main; import sys; "
                          "sys.exit(main(['--rest', 'http://127.0.0.1:9', '-o', 'x.png', '--retries', '0', 'a']))"],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("t2i: error: cannot reach http://127.0.0.1:9")

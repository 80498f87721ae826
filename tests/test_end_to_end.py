"""End to end: train a tiny model, export, serve in a subprocess, query over gRPC.

One test, in order: first answers (dtype, shape, range, seed determinism), every
bad input with its status code (the server keeps serving), 64 concurrent
requests, then version 2 published while requests run.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf

from export.export_savedmodel import export_model
from serving import client
from tests.runs import VISIBLE, train_tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTION = "the digit 7 is on the left of the digit 1 ."
MAX_REQUEST_BYTES = 64 * 1024


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code(call):
    with pytest.raises(client.ClientError) as info:
        call()
    return info.value.code, info.value.details


def _served_version(channel, **kw):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "t2i"
    request.inputs["captions"].CopyFrom(tf.make_tensor_proto([CAPTION.encode()], tf.string))
    request.inputs["seed"].CopyFrom(tf.make_tensor_proto([0], tf.int64))
    response = client.predict_with_spec(channel, request, timeout_s=30, **kw)
    assert response.model_spec.signature_name == "serving_default"
    return response.model_spec.version.value


def test_train_export_serve_query(tmp_path):
    run_dir = train_tiny_run(tmp_path / "run", VISIBLE)
    base = tmp_path / "models" / "t2i"
    assert export_model(run_dir, base).name == "1"

    port, rest_port = _free_port(), _free_port()
    target = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "t2i_cli", "serve", "--port", str(port), "--model_name", "t2i",
         "--rest_api_port", str(rest_port),
         "--model_base_path", str(base), "--file_system_poll_wait_seconds", "0.5",
         "--max_request_bytes", str(MAX_REQUEST_BYTES)],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert client.wait_until_available(target, "t2i", timeout_s=240) == 1
        channel = client.make_channel(target)

        # --- answers ------------------------------------------------------------
        captions = [CAPTION, "The digit 3 is at the TOP of the digit 8.", "the digit 4 is at the top left of the image ."]
        out = client.predict(channel, captions, seeds=[5, 6, 7], model_name="t2i")
        images = out["images"]
        assert images.dtype == np.uint8 and images.shape == (3, 60, 60, 1)
        assert 0 < images.mean() < 255 and images.std() > 0
        assert out["alignments"].shape[:2] == (3, 3)
        np.testing.assert_allclose(out["alignments"].sum(-1), 1.0, rtol=1e-5)
        again = client.predict(channel, captions, seeds=[5, 6, 7], model_name="t2i")
        np.testing.assert_array_equal(again["images"], images)
        other = client.predict(channel, captions, seeds=[8, 9, 10], model_name="t2i")
        assert not np.array_equal(other["images"], images)
        # Unknown words are read as [UNK]: a normal answer.
        assert client.predict(channel, ["the zebra 7"], model_name="t2i")["images"].shape == (1, 60, 60, 1)
        bound = client.score(channel, captions, images, model_name="t2i")
        assert bound.shape == (3,) and np.all(bound < 0)
        traced = client.trace(channel, captions[:1], seeds=[5], model_name="t2i")
        assert traced["canvases"].shape == (1, 3, 60, 60, 1)
        np.testing.assert_array_equal(traced["images"], images[:1])
        # `sample`: temperature 1 is serving_default's image; 0 the prior means, whatever the seed.
        warm = client.predict(channel, captions, seeds=[5, 6, 7], model_name="t2i", signature_name="sample",
                              inputs={"temperature": np.ones(3, np.float32)})
        np.testing.assert_array_equal(warm["images"], images)
        cold = [client.predict(channel, captions, seeds=s, model_name="t2i", signature_name="sample",
                               inputs={"temperature": np.zeros(3, np.float32)})["images"]
                for s in ([5, 6, 7], [8, 9, 10])]
        np.testing.assert_array_equal(cold[0], cold[1])

        # --- the same over REST (row and columnar formats), errors as TF Serving's ---------
        rest = f"http://127.0.0.1:{rest_port}"
        for columnar in (False, True):
            over_rest = client.rest_predict(rest, captions, seeds=[5, 6, 7], model_name="t2i",
                                            columnar=columnar)
            np.testing.assert_array_equal(over_rest["images"], images)
            np.testing.assert_allclose(over_rest["alignments"], out["alignments"], rtol=1e-6)
        with pytest.raises(client.RestError) as info:
            client.rest_predict(rest, ["the digit " * 9], model_name="t2i")
        assert info.value.status == 400 and "too long" in info.value.message

        # --- bad input: right code, a message naming the problem, server still serving ---
        P = lambda **kw: client.predict(channel, **{"model_name": "t2i", "retries": 0, **kw})  # noqa: E731
        bad = [
            (lambda: P(inputs={"captions": tf.make_tensor_proto([], tf.string, shape=[0]),
                               "seed": tf.make_tensor_proto([], tf.int64, shape=[0])}),
             grpc.StatusCode.INVALID_ARGUMENT, "empty batch"),
            (lambda: P(captions=[""]), grpc.StatusCode.INVALID_ARGUMENT, "empty caption"),
            (lambda: P(captions=["the digit " * 9]), grpc.StatusCode.INVALID_ARGUMENT, "too long"),
            (lambda: P(captions=[b"the \xff\xfe digit"]), grpc.StatusCode.INVALID_ARGUMENT, "UTF-8"),
            (lambda: P(captions=[CAPTION], inputs={"seed": np.array([0.5], np.float32)}),
             grpc.StatusCode.INVALID_ARGUMENT, "float"),
            (lambda: P(captions=[CAPTION], inputs={"seed": np.array([[0]], np.int64)}),
             grpc.StatusCode.INVALID_ARGUMENT, "seed"),
            (lambda: P(captions=[CAPTION], seed_input=None), grpc.StatusCode.INVALID_ARGUMENT, "Missing"),
            (lambda: P(captions=[CAPTION], inputs={"extra": np.array([1])}),
             grpc.StatusCode.INVALID_ARGUMENT, "extra"),
            (lambda: P(captions=[CAPTION], inputs={"seed": np.array([0, 1], np.int64)}),
             grpc.StatusCode.INVALID_ARGUMENT, "batch"),
            (lambda: client.predict(channel, [CAPTION], model_name="nope", retries=0),
             grpc.StatusCode.NOT_FOUND, "nope"),
            (lambda: P(captions=[CAPTION], version=42), grpc.StatusCode.NOT_FOUND, "42"),
            (lambda: P(captions=[CAPTION], signature_name="sketch"), grpc.StatusCode.FAILED_PRECONDITION,
             '"sketch"'),
            (lambda: P(captions=[CAPTION], signature_name="sample",
                       inputs={"temperature": np.array([-1.0], np.float32)}),
             grpc.StatusCode.INVALID_ARGUMENT, "temperature must be a finite number >= 0"),
            (lambda: P(captions=["the digit " * 20000]), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
        ]
        for call, expected, words in bad:
            code, details = _code(call)
            assert code == expected, (expected, code, details)
            assert words.lower() in details.lower(), (words, details)
            assert client.predict(channel, [CAPTION], seeds=[5], model_name="t2i")["images"].shape == (1, 60, 60, 1)

        # --- 64 concurrent requests -----------------------------------------------
        def one(i):
            return client.predict(channel, [CAPTION], seeds=[i], model_name="t2i", timeout_s=120)["images"]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(64)))
        assert len(results) == 64 and all(r.shape == (1, 60, 60, 1) for r in results)
        np.testing.assert_array_equal(results[5], images[:1])

        # --- publish version 2 while requests run ------------------------------------
        assert _served_version(channel) == 1
        failures, served, stop = [], set(), threading.Event()

        def load():
            while not stop.is_set():
                try:
                    served.add(_served_version(channel, retries=0))
                except Exception as e:  # any failure counts
                    failures.append(repr(e))

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        try:
            assert export_model(run_dir, base).name == "2"
            client.wait_until_available(target, "t2i", timeout_s=120, version=2)
            deadline_requests = 0
            while _served_version(channel) != 2 and deadline_requests < 200:
                deadline_requests += 1
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        assert failures == []
        assert _served_version(channel) == 2
        assert 1 in served
        states = {s.version: s.state for s in client.model_status(channel, "t2i")}
        assert states.get(2) == "AVAILABLE"
        channel.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        assert code == 0, server.stderr.read().decode()[-3000:]

"""The gRPC client: against the local server (tiny model) and against fake servicers."""

import os
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client
from t2i.errors import T2IError
from tests.serving.server.tiny import H, L, T, W, free_port, one_model_server


@pytest.fixture(scope="module")
def target(tiny, tmp_path_factory):
    yield from one_model_server(tiny, tmp_path_factory, "t2i")


@pytest.fixture
def channel(target):
    ch = client.make_channel(target)
    yield ch
    ch.close()


def test_predict_returns_numpy_outputs(channel):
    out = client.predict(channel, ["the digit 3 .", "the digit 4 ."], seeds=[5, 6])
    assert set(out) == {"images", "alignments", "tag"}
    assert out["images"].dtype == np.uint8 and out["images"].shape == (2, H, W, 1)
    assert out["images"][:, 0, 0, 0].tolist() == [6, 7]
    assert out["alignments"].dtype == np.float32 and out["alignments"].shape == (2, T, L)
    # Seeds default to 0..B-1; a single string is one caption; stubs work too.
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert client.predict(stub, "one")["images"][:, 0, 0, 0].tolist() == [1]
    assert client.predict(channel, ["a", "b"], version=1,
                          output_filter=["images"]).keys() == {"images"}


def test_score_trace_status_and_signatures(channel, target):
    images = np.stack([np.full((H, W, 1), 10, np.uint8), np.full((H, W, 1), 20, np.uint8)])
    bound = client.score(channel, ["a", "b"], images)
    assert bound.dtype == np.float32 and bound.tolist() == [10.0, 20.0]
    traced = client.trace(channel, ["a"], [1])
    assert traced["canvases"].shape == (1, 3, H, W, 1) and traced["canvases"].dtype == np.uint8
    assert client.model_status(channel, "t2i") == [client.VersionStatus(1, "AVAILABLE", 0, "")]
    sigs = client.signatures(channel, "t2i")
    assert {"serving_default", "score", "trace"} <= set(sigs)
    assert client.wait_until_available(target, "t2i", timeout_s=10) == 1
    with pytest.raises(client.ClientError) as info:
        client.wait_until_available(target, "nope", timeout_s=0.3)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "Could not find any versions of model nope" in str(info.value)


def test_server_errors_raise_client_error_with_code(channel):
    with pytest.raises(client.ClientError) as info:
        client.predict(channel, ["ok", ""])
    err = info.value
    assert isinstance(err, T2IError)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.code_name == "INVALID_ARGUMENT"
    assert "empty caption" in err.details and str(err).startswith("INVALID_ARGUMENT: ")
    with pytest.raises(client.ClientError) as info:
        client.predict(channel, ["a"], model_name="nope")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(T2IError, match="2 captions but 1 seeds"):
        client.predict(channel, ["a", "b"], seeds=[1])


# --------------------------------------------------------------------------
# retries, against a fake PredictionService


class FakePrediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Fails the first `failures` calls with `code`, then answers."""

    def __init__(self, code, failures):
        self.code, self.failures, self.calls = code, failures, 0
        self._lock = threading.Lock()

    def Predict(self, request, context):  # noqa: N802
        with self._lock:
            self.calls += 1
            n = self.calls
        if n <= self.failures:
            context.abort(self.code, f"failure {n}")
        resp = predict_pb2.PredictResponse()
        resp.outputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 2, 2, 1), np.uint8)))
        return resp


def fake_server(servicer, port=0):
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


def test_retries_only_on_unavailable():
    fake = FakePrediction(grpc.StatusCode.UNAVAILABLE, failures=2)
    server, port = fake_server(fake)
    ch = client.make_channel(f"127.0.0.1:{port}")
    try:
        out = client.predict(ch, ["a"], retries=2)
        assert out["images"].shape == (1, 2, 2, 1) and fake.calls == 3
        fake.calls, fake.failures = 0, 5
        with pytest.raises(client.ClientError) as info:
            client.predict(ch, ["a"], retries=1)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE and fake.calls == 2
        assert info.value.details == "failure 2"
        for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                     grpc.StatusCode.DEADLINE_EXCEEDED):
            fake.code, fake.calls, fake.failures = code, 0, 1
            with pytest.raises(client.ClientError) as info:
                client.predict(ch, ["a"], retries=3)
            assert info.value.code == code and fake.calls == 1
    finally:
        ch.close()
        server.stop(0)


def test_retries_reach_a_server_that_starts_late():
    port = free_port()
    fake = FakePrediction(grpc.StatusCode.OK, failures=0)
    started = []
    timer = threading.Timer(0.3, lambda: started.append(fake_server(fake, port)[0]))
    ch = client.make_channel(f"127.0.0.1:{port}")
    try:
        timer.start()
        out = client.predict(ch, ["a"], retries=8, timeout_s=5)
        assert out["images"].shape == (1, 2, 2, 1) and fake.calls == 1
    finally:
        timer.cancel()
        timer.join()
        ch.close()
        for s in started:
            s.stop(0)


# --------------------------------------------------------------------------
# t2i client


def test_cli_writes_png_and_gif(target, tmp_path, capsys):
    out = tmp_path / "grid" / "out.png"
    assert client.main(["--target", target, "--model_name", "t2i", "the digit 1 .",
                        "the digit 2 .", "-o", str(out), "--samples", "2", "--seed", "3",
                        "--gif"]) == 0
    assert capsys.readouterr().out.split() == [str(out), str(tmp_path / "grid" / "out.gif")]
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > 2 * W
    with Image.open(tmp_path / "grid" / "out.gif") as gif:
        assert gif.n_frames == 3


def test_sample_sends_one_temperature_per_caption(channel):
    # The tiny model draws (seed + tag + round(10 x temperature)) % 256, tag 1.
    assert client.sample(channel, ["a", "b"], [5, 6], 0.5)["images"][:, 0, 0, 0].tolist() == [11, 12]
    assert client.sample(channel, ["a", "b"], [5, 6], [0.0, 2.0])["images"][:, 0, 0, 0].tolist() == [6, 27]
    with pytest.raises(T2IError, match="got 2 captions but 3 temperatures"):
        client.sample(channel, ["a", "b"], [5, 6], [0.0, 1.0, 2.0])
    with pytest.raises(T2IError, match="temperature must be a finite number >= 0"):
        client.sample(channel, ["a"], [5], -1.0)


def test_cli_temperature_calls_the_sample_signature(target, tmp_path, capsys):
    out = tmp_path / "warm.png"
    assert client.main(["--target", target, "the digit 1 .", "-o", str(out), "--seed", "3",
                        "--temperature", "2"]) == 0
    assert capsys.readouterr().out.split() == [str(out)]
    with Image.open(out) as png:  # the tiny model draws seed + tag + 10 x temperature = 3 + 1 + 20
        assert (np.asarray(png.convert("L")) == 24).sum() >= H * W * 4  # the 2x-upscaled image
    for argv, words in ((["--temperature", "-1"], "--temperature must be a finite number >= 0"),
                        (["--temperature", "1", "--gif"], "cannot be combined"),
                        (["--temperature", "1", "--signature", "trace"], "cannot go with --signature trace")):
        assert client.main(["--target", target, "a", "-o", str(tmp_path / "x.png"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x.png").exists()


def test_cli_errors_are_one_line(target, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert client.main(["--target", target, "--model_name", "t2i", "", "-o", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("t2i: error: INVALID_ARGUMENT: ")
    assert "empty caption" in err[0] and not os.path.exists(out)
    port = free_port()
    assert client.main(["--target", f"127.0.0.1:{port}", "a", "-o", out, "--retries", "0",
                        "--timeout", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("t2i: error: UNAVAILABLE: ")


def test_cli_old_output_flag_still_works_with_a_warning(target, tmp_path, capsys):
    out = tmp_path / "old.png"
    assert client.main(["--target", target, "the digit 1 .", "--output", str(out), "--samples", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out)] and out.is_file()
    assert captured.err.strip() == ("t2i: warning: --output is deprecated and will be removed in the next "
                                    "release; use -o/--out")
    assert "--output" not in client.build_parser().format_help()
    assert client.main(["--target", target, "the digit 1 ."]) == 2
    assert capsys.readouterr().err.strip() == "t2i: error: the PNG to write is required: -o/--out OUT.png"

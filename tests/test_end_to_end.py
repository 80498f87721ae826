"""End to end: a tiny trained model, exported, served by `t2i serve` in a subprocess, queried over gRPC.

One test, the one path through every layer with the real model: its answers
(dtype, shape, range, seed determinism, unknown words, score, trace, the
`sample` signature, the same images over REST) and a clean exit on SIGTERM. What the server does with bad
input, under concurrent load and while a new version loads is checked once,
in `tests/serving/server/`; the exported graph's own input checks in
`tests/export/test_export_savedmodel.py`.
"""

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from export.export_savedmodel import export_model
from serving import client
from tests.harness import assert_same_image_up_to_rounding
from tests.runs import copy_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTION = "the digit 7 is on the left of the digit 1 ."


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_train_export_serve_query(visible_run, tmp_path):
    run_dir = copy_run(visible_run, tmp_path / "run")
    base = tmp_path / "models" / "t2i"
    assert export_model(run_dir, base).name == "1"

    port, rest_port = _free_port(), _free_port()
    target = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "t2i_cli", "serve", "--port", str(port), "--model_name", "t2i",
         "--rest_api_port", str(rest_port),
         "--model_base_path", str(base), "--file_system_poll_wait_seconds", "0.5"],
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
        # Batch 1 against batch 3, and the unrolled trace graph: equal up to float rounding.
        assert_same_image_up_to_rounding(traced["images"], images[:1])
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
        # The model's own checks come back in words, not as assertion syntax.
        assert info.value.message.startswith("t2i: caption too long: this model takes at most 16 tokens")
        assert "assertion failed" not in info.value.message and "Condition" not in info.value.message
        with pytest.raises(client.ClientError) as empty:
            client.predict(channel, ["the digit 1 .", ""], model_name="t2i")
        assert empty.value.details == ("t2i: empty caption: every caption needs at least one word; "
                                       "token counts per caption: 4 0")

        channel.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        assert code == 0, server.stderr.read().decode()[-3000:]

"""serving/server/__main__.py: `python -m serving.server` serves, and exits 0 on SIGTERM."""

import os
import signal
import subprocess
import sys

from tests.serving.server.tiny import ROOT, free_port, publish


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

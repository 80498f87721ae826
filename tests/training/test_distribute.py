"""Scale-out training: tf.distribute strategies give the single-device results.

* two replicas of MirroredStrategy (two logical CPUs) match one device;
* two MultiWorkerMirroredStrategy workers on localhost match one worker with
  the same global batch, epoch by epoch; the same two-worker run, with one
  worker SIGKILLed mid-run and then both restarted with --resume, continues
  from the chief's last backup and ends with the losses of an uninterrupted
  single-worker run;
* the loss scaling and the per-replica noise rows (`t2i.replicas`).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from t2i.errors import T2IError
from training.distribute import is_chief_process, local_cluster, make_distribution, parse_tf_config

ROOT = Path(__file__).resolve().parents[2]
# Tiny model with larger weights (KL and noise matter), 3 steps of 8 images per epoch.
FLAGS = ["--preset", "tiny", "--data.mnist.source", "bundled", "--train.sample_every", "0",
         "--model.init_stddev", "0.3", "--data.examples_per_epoch", "24",
         "--data.validation_examples", "16", "--quiet"]


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow",
               PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    env.update(extra)
    return env


def _train_cmd(out, *extra):
    flags = ["--quiet"] if "--resume" in extra else FLAGS  # a resumed run keeps its config
    return [sys.executable, "-m", "t2i_cli", "train", "--out", str(out), *flags, *extra]


def _log(run):
    """{Keras epoch (from 0): its log.csv row}; log.csv numbers epochs from 1."""
    with open(Path(run) / "log.csv") as f:
        return {int(r["epoch"]) - 1: r for r in csv.DictReader(f)}


def _assert_same_losses(a, b, epochs):
    assert sorted(a) == sorted(b) == list(range(epochs)), (sorted(a), sorted(b))
    for e in range(epochs):
        for key in ("loss", "kl_loss", "val_loss", "val_kl_loss"):
            np.testing.assert_allclose(float(a[e][key]), float(b[e][key]), rtol=2e-5,
                                       err_msg=f"epoch {e} {key}")


def _start_workers(out, *extra):
    procs = []
    for tf_config in local_cluster(2):
        procs.append(subprocess.Popen(_train_cmd(out, "--strategy", "multiworker", *extra),
                                      env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, cwd=ROOT))
    return procs


def _wait(procs, timeout=240):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        outs.append(out)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def test_two_workers_match_one_worker_then_resume_after_a_kill(tmp_path):
    """Two workers match one worker with the same global batch, epoch by epoch, and after
    one worker is SIGKILLed past the second backup and both restart with --resume, the
    run continues from the chief's last backup and ends with the single worker's losses.
    The single-worker reference trains beside the two workers."""
    single = tmp_path / "single"
    reference = subprocess.Popen(_train_cmd(single, "--epochs", "4"), env=_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    out = tmp_path / "run"
    procs = _start_workers(out, "--epochs", "4")
    try:
        meta = out / "backup" / "training_metadata.json"
        deadline = time.time() + 240
        while time.time() < deadline:
            if meta.is_file() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 2:
                break
            assert all(p.poll() is None for p in procs), "a worker ended before the second backup"
            time.sleep(0.05)
        else:
            pytest.fail("no second backup within the time limit")
        procs[1].send_signal(signal.SIGKILL)  # one worker dies mid-run ...
        procs[1].wait()
        procs[0].send_signal(signal.SIGKILL)  # ... and its peer, now stuck in a collective, is stopped
        procs[0].wait()
        _wait([reference])
    finally:
        for p in procs + [reference]:
            if p.poll() is None:
                p.kill()
                p.wait()
    done = json.loads(meta.read_text())["epoch"]
    assert 2 <= done < 4, f"the kill came too late to test resuming (backup at epoch {done})"
    reference_log = _log(single)

    # Epochs 0 and 1 were logged by the two workers before the kill, uninterrupted.
    uninterrupted = {e: r for e, r in _log(out).items() if e < 2}
    _assert_same_losses(uninterrupted, {e: r for e, r in reference_log.items() if e < 2}, 2)
    info = json.loads((out / "run_info.json").read_text())
    assert (info["strategy"], info["replicas"], info["workers"]) == ("multiworker", 2, 2)

    outs = _wait(_start_workers(out, "--resume"))
    assert "resuming" in outs[0]
    # The resumed run ends with the losses of an uninterrupted single worker.
    _assert_same_losses(_log(out), reference_log, 4)


def test_mirrored_two_replicas_match_one_device(tmp_path):
    """Two MirroredStrategy replicas (two logical CPUs) give the default strategy's
    losses; the two trainings run side by side, one process each."""
    script = f"""
import sys, json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from t2i import config as C
from training.train import train
import training.distribute as D
mirrored = tf.distribute.MirroredStrategy
tf.distribute.MirroredStrategy = lambda: mirrored(["/cpu:0", "/cpu:1"])
cfg = C.tiny().override({{"data.mnist.source": "bundled", "train.sample_every": 0,
    "model.init_stddev": 0.3, "data.examples_per_epoch": 24, "data.validation_examples": 16}})
name = sys.argv[2]
h = train(cfg, sys.argv[1] + "/" + name, verbose=0, strategy=name)
print(json.dumps(h.history))
"""
    names = ("default", "mirrored")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), name], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for name in names]
    results = [p.communicate(timeout=300) for p in procs]  # both finish before any assert
    out = {}
    for name, p, (stdout, stderr) in zip(names, procs, results):
        assert p.returncode == 0, stderr[-3000:]
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    for key in ("loss", "kl_loss", "val_loss"):
        np.testing.assert_allclose(out["mirrored"][key], out["default"][key], rtol=2e-5, err_msg=key)
    assert out["default"]["kl_loss"][0] > 0.05  # the noise matters in this config


def test_tf_config_validation(monkeypatch):
    with pytest.raises(T2IError, match="needs the TF_CONFIG"):
        parse_tf_config(None)
    with pytest.raises(T2IError, match="not valid JSON"):
        parse_tf_config("{cluster")
    with pytest.raises(T2IError, match="no cluster.worker"):
        parse_tf_config('{"cluster": {}, "task": {"type": "worker", "index": 0}}')
    with pytest.raises(T2IError, match="outside its 2 workers"):
        parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}')
    two = {"cluster": {"worker": ["a:1", "b:2"]}}
    monkeypatch.setenv("TF_CONFIG", json.dumps({**two, "task": {"type": "worker", "index": 0}}))
    assert is_chief_process("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({**two, "task": {"type": "worker", "index": 1}}))
    assert not is_chief_process("multiworker") and is_chief_process("default")


def test_bad_strategy_and_uneven_batch():
    with pytest.raises(T2IError, match="--strategy must be one of"):
        make_distribution("ring", 8)
    assert make_distribution("default", 7).num_replicas == 1


def test_loss_scaling_and_noise_rows():
    """Inside a 2-replica strategy each replica's loss is halved and its noise
    rows are its slice of the global draw."""
    script = """
import json, numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from t2i.replicas import replica_slice, scale_for_replicas
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
draw = lambda n: tf.reshape(tf.range(n * 3, dtype=tf.float32), (n, 3))
def step():
    return scale_for_replicas(tf.constant(10.0)), replica_slice(draw, 2)
loss, rows = strategy.run(tf.function(step))
print(json.dumps({"loss": [float(v) for v in strategy.experimental_local_results(loss)],
                  "rows": [v.numpy().tolist() for v in strategy.experimental_local_results(rows)],
                  "outside": float(scale_for_replicas(tf.constant(10.0)))}))
"""
    r = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["loss"] == [5.0, 5.0] and out["outside"] == 10.0
    full = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(out["rows"][0], full[:2])
    np.testing.assert_array_equal(out["rows"][1], full[2:])


def _no_tensorflow_env(tmp_path, **extra):
    """JAX backend, two host devices, and `import tensorflow` made to fail."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['tensorflow'] = None\nsys.modules['tensorflow_text'] = None\n")
    return _env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=f"{site}{os.pathsep}{ROOT}",
                XLA_FLAGS="--xla_force_host_platform_device_count=2", **extra)


def test_jax_data_parallel_matches_one_device_without_tensorflow(tmp_path):
    """Under JAX (TensorFlow not importable) two data-parallel devices give one device's
    losses. The steps are XLA-compiled, as JAX trains (Keras' "auto"): eager JAX
    recompiles the drawing loop at every step (about 10 s a step on two cores). The two
    runs train side by side."""
    env = _no_tensorflow_env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True)
    assert probe.returncode != 0  # TensorFlow really is unavailable to the runs below
    strategies = ("default", "mirrored")
    _wait([subprocess.Popen(_train_cmd(tmp_path / strategy, "--epochs", "2", "--strategy", strategy,
                                       "--train.jit_compile", "true"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
           for strategy in strategies], timeout=300)
    logs = {}
    for strategy in strategies:
        out = tmp_path / strategy
        info = json.loads((out / "run_info.json").read_text())
        assert info["keras_backend"] == "jax"
        assert info["replicas"] == (2 if strategy == "mirrored" else 1)
        logs[strategy] = _log(out)
    _assert_same_losses(logs["mirrored"], logs["default"], 2)
    assert float(logs["default"][0]["kl_loss"]) > 0.05


def test_jax_rejects_multiworker(tmp_path):
    tf_config = '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}'
    r = subprocess.run(_train_cmd(tmp_path / "r", "--strategy", "multiworker"),
                       env=_no_tensorflow_env(tmp_path, TF_CONFIG=tf_config), capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "t2i: error: --strategy multiworker is TensorFlow's" in r.stderr

"""Training, resuming and the run directory, on the tiny config."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i import config as C
from t2i import run as run_lib
from t2i.errors import T2IError
from t2i.model import AlignDRAW
from training.train import finalize_config, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {"data.examples_per_epoch": 32, "data.validation_examples": 16, "data.test_examples": 16,
         "train.batch_size": 8, "data.mnist.source": "bundled"}


def _config(**overrides):
    return C.tiny().override({**SMALL, **overrides})


def _rows(run_dir):
    with open(run_dir / "log.csv") as f:
        return list(csv.DictReader(f))


def test_loss_falls_on_a_fixed_batch():
    keras.utils.set_random_seed(0)
    model = AlignDRAW.from_config_dataclass(C.tiny(), seed=0)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2, rho=0.9, epsilon=1e-6, clipnorm=10))
    rng = np.random.default_rng(0)
    images = np.zeros((8, 60, 60, 1), "float32")
    images[:, 20:40, 20:40] = rng.random((8, 20, 20, 1))
    x = {"images": images, "tokens": rng.integers(2, 24, (8, 12))}
    history = model.fit(tf.data.Dataset.from_tensors(x).repeat(), epochs=6, steps_per_epoch=8,
                        verbose=0, shuffle=False).history
    losses = history["loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


# Held-out compositions drawn by seed; two epochs (tiny's default), a sample grid each.
DRAWN = {"data.held_out": "", "data.mnist.num_held_out": 3, "data.mnist.held_out_seed": 5}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """(run dir, History): `_config(**DRAWN)` trained two epochs in one go, once per module.
    Read-only: the run-directory test looks at it, the resume test compares with it."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    history = train(finalize_config(_config(**DRAWN), run_dir, resume=False), run_dir, verbose=0)
    return run_dir, history


def test_run_directory_contents(straight):
    run_dir, history = straight
    cfg = _config(**DRAWN)
    assert set(history.history) >= {"loss", "reconstruction_loss", "kl_loss", "val_loss",
                                     "val_reconstruction_loss", "val_kl_loss"}
    saved = C.ExperimentConfig.load(run_dir / "config.json")
    # Held-out compositions drawn by seed are recorded explicitly.
    assert len(saved.data.held_out) == 3 and saved.data.mnist.num_held_out == 0
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["held_out"] == list(saved.data.held_out)
    assert "bundled" in info["mnist_source"]
    for name in ("checkpoints/last.weights.h5", "checkpoints/best.weights.h5", "samples/epoch-0001.png",
                 "samples/epoch-0002.png", "backup/training_metadata.json"):
        assert (run_dir / name).is_file(), name
    rows = _rows(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]  # as samples/epoch-0001.png, epoch-0002.png
    # Each epoch's wall time and training speed (4 steps of 8 images each).
    for r in rows:
        assert float(r["epoch_time_s"]) > 0 and float(r["train_images_per_s"]) > 0
        assert float(r["train_images_per_s"]) >= 32 / float(r["epoch_time_s"])
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    config, model = run_lib.load_model(run_dir)
    assert config == saved and model.num_steps == 3
    with pytest.raises(T2IError, match="already holds a run"):
        finalize_config(cfg, run_dir, resume=False)


def test_resume_continues_exactly_where_it_stopped(straight, tmp_path):
    cfg = _config(**DRAWN)
    assert cfg.train.epochs == 2
    straight, _ = straight

    split = tmp_path / "split"
    train(finalize_config(cfg.override({"train.epochs": 1}), split, resume=False), split, verbose=0)
    train(finalize_config(None, split, {"train.epochs": 2}, resume=True), split, resume=True, verbose=0)

    rows_a, rows_b = _rows(straight), _rows(split)
    assert [r["epoch"] for r in rows_b] == ["1", "2"]
    for a, b in zip(rows_a, rows_b):
        for key in ("loss", "kl_loss", "val_loss", "val_kl_loss"):
            np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-6)
    _, model_a = run_lib.load_model(straight)
    _, model_b = run_lib.load_model(split)
    # The noise stream continues where it stopped (its seed state is checkpointed) ...
    np.testing.assert_array_equal(np.asarray(model_a.seed_generator.state.value),
                                  np.asarray(model_b.seed_generator.state.value))
    # ... and with the same data and optimizer state the weights are the same.
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-9)
    with pytest.raises(T2IError, match="already finished 2 of 2 epochs"):
        train(finalize_config(None, split, resume=True), split, resume=True, verbose=0)


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    base = [sys.executable, "-m", "t2i_cli", "train", "--out", str(run_dir), "--quiet"]
    flags = ["--preset", "tiny", "--epochs", "50", "--train.sample_every", "0"]
    flags += [x for k, v in SMALL.items() for x in (f"--{k}", str(v))]
    proc = subprocess.Popen(base + flags, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    meta = run_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if meta.is_file() and json.loads(meta.read_text() or '{"epoch": 0}')["epoch"] >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = json.loads(meta.read_text())["epoch"]
    assert done >= 2
    resumed = subprocess.run(base + ["--resume", "--epochs", str(done + 2)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming tiny" in resumed.stderr
    epochs = [int(r["epoch"]) for r in _rows(run_dir)]
    assert epochs[-2:] == [done + 1, done + 2]
    assert json.loads(meta.read_text())["epoch"] == done + 2


def test_run_info_records_no_paths_of_this_machine(tmp_path, monkeypatch):
    from training.train import portable

    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".keras").mkdir(parents=True), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert portable(f"keras:{home}/.keras/datasets/mnist.npz") == "keras:~/.keras/datasets/mnist.npz"
    assert portable(f"{work}/runs/a") == "runs/a" and portable("/elsewhere/x") == "/elsewhere/x"
    assert portable(None) is None
    monkeypatch.setattr(sys, "argv", [str(home / "venv" / "bin" / "t2i"), "train", "--out", str(work / "runs" / "x")])
    cfg = _config()
    train(finalize_config(cfg, work / "runs" / "x", resume=False), work / "runs" / "x", verbose=0)
    info = json.loads((work / "runs" / "x" / "run_info.json").read_text())
    assert info["command"] == ["t2i", "train", "--out", "runs/x"]
    assert str(tmp_path) not in json.dumps(info)


def test_finalize_config_is_the_one_place_a_config_is_settled(tmp_path):
    base = _config()
    # A new run: the overrides applied, a free directory checked.
    cfg = finalize_config(base, tmp_path / "new", {"train.epochs": 3, "model.num_steps": 2})
    assert (cfg.train.epochs, cfg.model.num_steps) == (3, 2) and cfg.data == base.data
    with pytest.raises(T2IError, match="needs a config"):
        finalize_config(None, tmp_path / "new")
    (tmp_path / "file").write_text("x")
    with pytest.raises(T2IError, match="is not a directory"):
        finalize_config(base, tmp_path / "file")
    # A resumed run: the saved config, of the overrides only the number of epochs.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    base.save(run_dir / run_lib.CONFIG)
    assert finalize_config(None, run_dir, resume=True) == base
    assert finalize_config(None, run_dir, {"train.epochs": 9}, resume=True) == \
        base.override({"train.epochs": 9})
    with pytest.raises(T2IError, match="only --epochs may change .got model.num_steps"):
        finalize_config(None, run_dir, {"model.num_steps": 2}, resume=True)
    with pytest.raises(T2IError, match="only --epochs may change .got --config"):
        finalize_config(base, run_dir, resume=True)
    # Short MNIST epochs validate a tenth of what they train (at least 1,000), said once.
    said = []
    short = finalize_config(C.mnist_captions(), tmp_path / "short", {"train.steps_per_epoch": 40},
                            report=said.append)
    assert short.data.validation_examples == 1000 and len(said) == 1 and "1000" in said[0]

"""Scenes end to end: the prepared examples, and the tiny preset trained, exported and served."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from export.export_savedmodel import export_model
from serving import client
from t2i import config as C
from t2i.data.scenes import captions as cap
from t2i.data.scenes import dataset as scenes_dataset
from training.train import finalize_config, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = {"data.examples_per_epoch": 48, "data.validation_examples": 8, "data.test_examples": 12,
        "train.epochs": 1, "train.sample_every": 0}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_SCENES_CACHE", str(tmp_path / "cache"))


def _names_held_out(said) -> bool:
    """Whether a parsed caption names one of scenes_tiny's held-out compositions."""
    return ((said.object == "bus" and said.colour in ("green", "blue"))
            or (said.object in ("stop sign", "elephant") and said.background == "clear sky")
            or bool(said.vintage and said.object in ("dog", "car")))


def test_prepared_scenes_are_deterministic_cached_and_keep_held_out_apart(tmp_path):
    cfg = C.scenes_tiny().override(TINY)
    first = scenes_dataset.prepare_scenes(cfg)
    assert len(list((tmp_path / "cache").glob("train-*.npz"))) == 1
    again = scenes_dataset.prepare_scenes(cfg)  # from the cache
    np.testing.assert_array_equal(first.train_images, again.train_images)
    np.testing.assert_array_equal(first.test.images, again.test.images)
    assert first.train_images.shape == (48, 32, 32, 3) and first.train_captions.shape == (48, 3)
    # Epochs: every training scene once, one of its captions each; another epoch, another order.
    e0, e1 = first.epoch(0), first.epoch(1)
    assert len(e0) == 48 and not np.array_equal(e0.images, e1.images)
    assert sorted(map(bytes, e0.images)) == sorted(map(bytes, first.train_images))
    # Held-out compositions: in a third of the test rows only, in one shuffled order with the
    # seen ones (the first n rows, which an evaluation takes, hold both), never in training or
    # validation.
    held = first.test_held_out
    assert held.sum() == 4 and held.tolist() != [False] * 8 + [True] * 4
    names_held = [_names_held_out(cap.parse_caption(text)) for text in first.test.captions]
    assert names_held == held.tolist()
    for text in list(first.train_captions.ravel()) + list(first.validation.captions):
        assert not _names_held_out(cap.parse_caption(text)), text
    other = scenes_dataset.prepare_scenes(cfg.override({"data.seed": 1}))
    assert not np.array_equal(other.train_images, first.train_images)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tiny_scenes_model_trains_exports_and_serves(tmp_path):
    cfg = C.scenes_tiny().override(TINY)
    run_dir = tmp_path / "run"
    train(finalize_config(cfg, run_dir, resume=False), run_dir, verbose=0)
    base = tmp_path / "models" / "t2i"
    assert export_model(run_dir, base).name == "1"
    port, rest_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "t2i_cli", "serve", "--port", str(port), "--model_name", "t2i",
         "--rest_api_port", str(rest_port), "--model_base_path", str(base)],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rest = f"http://127.0.0.1:{rest_port}"
        assert client.wait_until_available(f"127.0.0.1:{port}", "t2i", timeout_s=240) == 1
        captions = ["a stop sign flying in blue skies", "two red buses parked in a parking lot"]
        out = client.rest_predict(rest, captions, seeds=[1, 2], model_name="t2i")
        assert out["images"].dtype == np.uint8 and out["images"].shape == (2, 32, 32, 3)
        again = client.rest_predict(rest, captions, seeds=[1, 2], model_name="t2i")
        np.testing.assert_array_equal(again["images"], out["images"])
    finally:
        server.terminate()
        server.wait(timeout=60)

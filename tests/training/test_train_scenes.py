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
    """With best-of-3 as the run's sampler: the served image is `t2i generate`'s, and the
    `plain` signature draws plain sampling's, in process and through the server."""
    import tensorflow as tf

    from t2i import run as run_lib
    from t2i import samplers
    from t2i.text import CaptionTokenizer

    cfg = C.scenes_tiny().override({**TINY, "sample.sampler": "best_of_k:k=3"})
    run_dir = tmp_path / "run"
    train(finalize_config(cfg, run_dir, resume=False), run_dir, verbose=0)
    base = tmp_path / "models" / "t2i"
    assert export_model(run_dir, base).name == "1"
    captions = ["a stop sign flying in blue skies", "two red buses parked in a parking lot",
                "a yellow umbrella on a road"] * 2
    seeds = [1, 2, 3, 4, 5, 6]
    config, model = run_lib.load_model(run_dir)
    tokens = CaptionTokenizer(config.text).encode(captions)

    def uint8(images):
        return np.round(np.clip(images, 0, 1) * 255).astype(int)

    best = samplers.best_of_k(model, tokens, seeds, 3, samplers.interchangeable_for(config))
    np.testing.assert_array_equal(samplers.generate(model, config, tokens, seeds, config.sample.sampler)["images"],
                                  best["images"])  # what t2i generate draws for this run
    plain = samplers.generate(model, config, tokens, seeds, "plain")
    # (This barely trained model's candidates differ by less than a level of uint8;
    # tests/export/test_graph_samplers.py tells them apart on a model whose images differ.)
    loaded = tf.saved_model.load(str(base / "1"))
    inputs = {"captions": tf.constant(captions), "seed": tf.constant(seeds, tf.int64)}
    served = loaded.signatures["serving_default"](**inputs)
    np.testing.assert_allclose(served["alignments"].numpy(), best["alignments"], atol=1e-5)
    assert np.abs(served["images"].numpy().astype(int) - uint8(best["images"])).max() <= 1  # rounding
    served_plain = loaded.signatures["plain"](**inputs)
    np.testing.assert_allclose(served_plain["alignments"].numpy(), plain["alignments"], atol=1e-5)
    assert np.abs(served_plain["images"].numpy().astype(int) - uint8(plain["images"])).max() <= 1
    served = served["images"].numpy()[:3]
    del loaded
    port, rest_port = _free_port(), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "t2i_cli", "serve", "--port", str(port), "--model_name", "t2i",
         "--rest_api_port", str(rest_port), "--model_base_path", str(base)],
        cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rest = f"http://127.0.0.1:{rest_port}"
        assert client.wait_until_available(f"127.0.0.1:{port}", "t2i", timeout_s=240) == 1
        out = client.rest_predict(rest, captions[:3], seeds=seeds[:3], model_name="t2i")
        assert out["images"].dtype == np.uint8 and out["images"].shape == (3, 32, 32, 3)
        np.testing.assert_array_equal(out["images"], served)
        again = client.rest_predict(rest, captions[:3], seeds=seeds[:3], model_name="t2i")
        np.testing.assert_array_equal(again["images"], out["images"])
    finally:
        server.terminate()
        server.wait(timeout=60)

"""Best-of-K in the exported graph (export/graph_samplers.py) against `t2i.samplers`."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from export import graph_samplers
from t2i import config as C
from t2i import samplers
from t2i.model import AlignDRAW
from t2i.text import CaptionTokenizer

CAPTIONS = ["a green grass field with a red bus on the left", "two stop signs flying in blue skies",
            "a vintage photo of a cat on green grass", "a yellow umbrella on a road"]
SEEDS = [4, 11, 30, 2**40 + 7]  # the last one past int32: Keras folds it, and so must the graph


@pytest.fixture(scope="module")
def scenes_tiny():
    cfg = C.get_preset("scenes_tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_stddev=0.3))
    model = AlignDRAW.from_config_dataclass(cfg, seed=3)
    tokens = CaptionTokenizer(cfg.text).encode(CAPTIONS)
    model.generate(tokens[:1], [0])  # builds the model
    return cfg, model, tokens


def test_seed_noise_is_the_models_for_every_stream():
    from t2i.seed_noise import seed_noise

    shape = (3, 4)
    for stream in (0, 1, samplers.SCORE_STREAM + 2):
        got = graph_samplers.seed_noise(tf.constant(SEEDS, tf.int64), shape, stream).numpy()
        np.testing.assert_array_equal(got, seed_noise(SEEDS, shape, stream))


def test_negatives_are_the_librarys_in_its_order(scenes_tiny):
    cfg, _, tokens = scenes_tiny
    groups = samplers.interchangeable_for(cfg)
    want, want_owner = samplers.same_layout_negatives(tokens, groups)
    got, owner = graph_samplers.same_layout_negatives(tf.constant(tokens, tf.int64), groups)
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(owner.numpy(), want_owner)
    assert len(want) > 40  # the bus: 6 colours and every other singular noun
    # MNIST's one group, and a caption with nothing to swap.
    mnist = C.get_preset("tiny")
    digits = CaptionTokenizer(mnist.text).encode(["the digit 3 is at the top of the digit 5 .", "the ."])
    want, want_owner = samplers.same_layout_negatives(digits, samplers.interchangeable_for(mnist))
    got, owner = graph_samplers.same_layout_negatives(tf.constant(digits, tf.int64),
                                                      samplers.interchangeable_for(mnist))
    np.testing.assert_array_equal(got.numpy(), want)
    assert owner.numpy().tolist() == want_owner.tolist() == [0] * 18


def test_log_posterior_against_numpy():
    rng = np.random.default_rng(0)
    own = rng.normal(-1700, 5, 3)
    theirs = rng.normal(-1700, 5, 7)
    owner = np.array([0, 0, 0, 2, 2, 2, 2])  # row 1 has no negatives: 0
    want = samplers.log_posterior(own, theirs, owner)
    got = graph_samplers.log_posterior(tf.constant(own), tf.constant(theirs), tf.constant(owner)).numpy()
    assert want[1] == 0.0
    # float64 logsumexp of 4-5 terms of size ~1700: a few ulps of 1700.
    np.testing.assert_allclose(got, want, rtol=0, atol=64 * np.finfo(np.float64).eps * 1700)


def test_lower_bounds_in_chunks_are_the_models(scenes_tiny):
    cfg, model, tokens = scenes_tiny
    images = model.generate(tokens, SEEDS)["images"]
    noise = model.noise_for_seeds(SEEDS, stream=5)
    want = model.lower_bound(images, tokens, noise)
    got = graph_samplers.lower_bounds(model, tf.constant(images), tf.constant(tokens, tf.int64),
                                      tf.constant(noise), chunk=3).numpy()  # 4 rows: two parts of 2
    # The same float32 operations in batches of other sizes: the reconstruction term sums
    # 32x32x3 pixel terms, whose rounding grows like sqrt(3072) ulps of the total.
    np.testing.assert_allclose(got, want, rtol=0, atol=np.sqrt(3072) * np.finfo(np.float32).eps * np.abs(want).max())


@pytest.mark.parametrize("k", [1, 3])
def test_best_of_k_draws_the_librarys_candidate(scenes_tiny, k):
    cfg, model, tokens = scenes_tiny
    groups = samplers.interchangeable_for(cfg)
    want = samplers.best_of_k(model, tokens, SEEDS, k, groups)
    got = graph_samplers.best_of_k(model, tf.constant(tokens, tf.int64), tf.constant(SEEDS, tf.int64), k,
                                   groups, chunk=16)
    assert got["candidate"].numpy().tolist() == want["candidate"].tolist()
    if k == 3:
        assert len(set(want["candidate"].tolist())) > 1  # the scores choose, not always candidate 0
    np.testing.assert_allclose(got["images"].numpy(), want["images"], atol=1e-5)
    np.testing.assert_allclose(got["alignments"].numpy(), want["alignments"], atol=1e-5)
    plain = model.generate(tokens, SEEDS)["images"]
    if k == 1:
        np.testing.assert_allclose(got["images"].numpy(), plain, atol=1e-5)


def test_the_exported_default_signature_draws_the_runs_best_of_k(scenes_tiny, tmp_path):
    from export.export_savedmodel import export_loaded

    cfg, model, tokens = scenes_tiny
    cfg = cfg.override({"sample.sampler": "best_of_k:k=3"})
    path = export_loaded(cfg, model, tmp_path / "t2i")
    loaded = tf.saved_model.load(str(path))
    inputs = {"captions": tf.constant(CAPTIONS), "seed": tf.constant(SEEDS, tf.int64)}
    want = samplers.best_of_k(model, tokens, SEEDS, 3, samplers.interchangeable_for(cfg))
    plain = model.generate(tokens, SEEDS)

    def uint8(images):
        return np.round(np.clip(images, 0, 1) * 255).astype(int)

    chosen = want["candidate"] != 0
    assert chosen.any() and np.abs(uint8(want["images"]) - uint8(plain["images"]))[chosen].max() > 8
    for name, images in (("serving_default", want["images"]), ("plain", plain["images"])):
        got = loaded.signatures[name](**inputs)["images"].numpy().astype(int)
        assert np.abs(got - uint8(images)).max() <= 1, name  # float rounding: one level at most
    sample = loaded.signatures["sample"](**inputs, temperature=tf.fill([len(SEEDS)], 0.5))["images"].numpy()
    cool = samplers.best_of_k(model, tokens, SEEDS, 3, samplers.interchangeable_for(cfg), temperature=0.5)
    assert np.abs(sample.astype(int) - uint8(cool["images"])).max() <= 1
    trace = loaded.signatures["trace"](**inputs)
    np.testing.assert_array_equal(trace["canvases"].numpy()[:, -1], trace["images"].numpy())
    assert np.abs(trace["images"].numpy().astype(int) - uint8(want["images"])).max() <= 1

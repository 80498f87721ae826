import numpy as np
from keras import ops

from t2i.layers.alignment import CaptionAlignment, masked_mean, masked_softmax
from tests.harness import run_layer_test

EPS = np.finfo(np.float32).eps


def test_contract_and_numpy_reference(rng):
    words = rng.normal(size=(2, 5, 6)).astype("float32")
    state = rng.normal(size=(2, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer, (context, weights) = run_layer_test(
        CaptionAlignment, dict(units=7, init_stddev=0.5), (words, state, mask),
        [(2, 6), (2, 5)], num_weights=4)
    u = ops.convert_to_numpy(layer.word_projection.kernel)
    w = ops.convert_to_numpy(layer.state_projection.kernel)
    b = ops.convert_to_numpy(layer.state_projection.bias)
    v = ops.convert_to_numpy(layer.score.kernel)[:, 0]
    for i in range(2):
        n = mask[i].sum()
        e = np.array([v @ np.tanh(words[i, j] @ u + state[i] @ w + b) for j in range(n)])
        alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        np.testing.assert_allclose(ops.convert_to_numpy(weights)[i, :n], alpha, rtol=1e-5)
        np.testing.assert_allclose(ops.convert_to_numpy(context)[i], alpha @ words[i, :n], rtol=1e-5, atol=1e-6)


def test_weights_sum_to_one_and_are_zero_on_padding(rng):
    words = rng.normal(size=(3, 6, 4)).astype("float32")
    state = rng.normal(size=(3, 5)).astype("float32")
    mask = np.arange(6)[None, :] < np.array([[2], [6], [4]])
    layer = CaptionAlignment(units=8, init_stddev=1.0)
    _, weights = layer(words, state, mask)
    weights = ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert np.all(weights[~mask] == 0.0)
    assert np.all(weights[mask] > 0.0)


def test_padding_does_not_change_the_context(rng):
    words = rng.normal(size=(1, 3, 4)).astype("float32")
    state = rng.normal(size=(1, 5)).astype("float32")
    layer = CaptionAlignment(units=8, init_stddev=1.0)
    short_ctx, short_w = layer(words, state, np.ones((1, 3), bool))
    padded = np.concatenate([words, rng.normal(size=(1, 4, 4)).astype("float32")], axis=1)
    mask = np.array([[1, 1, 1, 0, 0, 0, 0]], bool)
    long_ctx, long_w = layer(padded, state, mask)
    # A context near 0 is a cancelling sum: the weights within rtol, plus the 3-term sum's rounding, times |words|.
    np.testing.assert_allclose(ops.convert_to_numpy(short_ctx), ops.convert_to_numpy(long_ctx), rtol=1e-6,
                               atol=(1e-6 + 3 * EPS) * np.abs(words).max())
    np.testing.assert_allclose(ops.convert_to_numpy(short_w), ops.convert_to_numpy(long_w)[:, :3], rtol=1e-6)


def test_precomputed_projection_is_the_same(rng):
    words = rng.normal(size=(2, 4, 4)).astype("float32")
    state = rng.normal(size=(2, 3)).astype("float32")
    mask = np.ones((2, 4), bool)
    layer = CaptionAlignment(units=5, init_stddev=1.0)
    a = layer(words, state, mask)
    b = layer(words, state, mask, projected_words=layer.project_words(words))
    for x, y in zip(a, b):
        np.testing.assert_allclose(ops.convert_to_numpy(x), ops.convert_to_numpy(y), rtol=1e-6)


def test_masked_helpers():
    scores = np.array([[1.0, 2.0, 50.0]], "float32")
    mask = np.array([[True, True, False]])
    w = ops.convert_to_numpy(masked_softmax(scores, mask))
    np.testing.assert_allclose(w, [[np.exp(1) / (np.exp(1) + np.exp(2)), np.exp(2) / (np.exp(1) + np.exp(2)), 0]],
                               rtol=1e-6)
    words = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]], "float32")
    ctx, weights = masked_mean(words, mask)
    np.testing.assert_allclose(ops.convert_to_numpy(ctx), [[2.0, 1.0]])
    np.testing.assert_allclose(ops.convert_to_numpy(weights), [[0.5, 0.5, 0.0]])

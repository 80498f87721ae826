import numpy as np
from keras import ops

from t2i.layers import LearnedPrior, LSTMCell, PosteriorHead
from t2i.losses import bernoulli_nll, gaussian_kl
from tests.harness import run_layer_test

RNG = np.random.default_rng(3)


def test_kl_matches_the_closed_form_and_monte_carlo():
    mu_q, ls_q = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3)) * 0.3
    mu_p, ls_p = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3)) * 0.3
    got = ops.convert_to_numpy(gaussian_kl(*(a.astype("float32") for a in (mu_q, ls_q, mu_p, ls_p))))
    sq, sp = np.exp(ls_q), np.exp(ls_p)
    closed = np.sum(np.log(sp / sq) + (sq ** 2 + (mu_q - mu_p) ** 2) / (2 * sp ** 2) - 0.5, axis=-1)
    np.testing.assert_allclose(got, closed, rtol=1e-5)
    # Monte Carlo: E_q[log q - log p].
    z = mu_q[0] + sq[0] * RNG.normal(size=(400000, 3))
    logq = -0.5 * ((z - mu_q[0]) / sq[0]) ** 2 - np.log(sq[0])
    logp = -0.5 * ((z - mu_p[0]) / sp[0]) ** 2 - np.log(sp[0])
    assert abs(np.mean(np.sum(logq - logp, -1)) - closed[0]) < 0.02
    # N(0, I) prior: the usual VAE form.
    zero = np.zeros((2, 3), "float32")
    vae = ops.convert_to_numpy(gaussian_kl(mu_q.astype("f"), ls_q.astype("f"), zero, zero))
    np.testing.assert_allclose(vae, 0.5 * np.sum(mu_q ** 2 + sq ** 2 - 1 - 2 * ls_q, -1), rtol=1e-5)


def test_bernoulli_nll_matches_the_direct_formula():
    logits = RNG.normal(size=(2, 3, 4, 1)).astype("float32") * 3
    x = RNG.random((2, 3, 4, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    ref = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(bernoulli_nll(logits, x)), ref, rtol=1e-5)
    # Stable for saturated logits.
    big = np.full((1, 2), -60.0, "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(bernoulli_nll(big, np.zeros((1, 2), "f"))), [0.0], atol=1e-12)


def test_heads():
    state = RNG.normal(size=(3, 5)).astype("float32")
    post, (mu, ls) = run_layer_test(PosteriorHead, dict(latent_dim=4, init_stddev=0.5), (state,),
                                    [(3, 4), (3, 4)], num_weights=2)
    raw = state @ ops.convert_to_numpy(post.dense.kernel) + ops.convert_to_numpy(post.dense.bias)
    np.testing.assert_allclose(ops.convert_to_numpy(mu), raw[:, :4], rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(ls), raw[:, 4:] / 2, rtol=1e-5)
    prior, (mu, ls) = run_layer_test(LearnedPrior, dict(latent_dim=4, init_stddev=2.0), (state,),
                                     [(3, 4), (3, 4)], num_weights=2)
    raw = np.tanh(state @ ops.convert_to_numpy(prior.dense.kernel) + ops.convert_to_numpy(prior.dense.bias))
    np.testing.assert_allclose(ops.convert_to_numpy(mu), raw[:, :4], rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(ls), raw[:, 4:], rtol=1e-5)


def test_lstm_cell_matches_numpy():
    x, h, c = (RNG.normal(size=(2, n)).astype("float32") for n in (3, 4, 4))
    cell, (h1, c1) = run_layer_test(LSTMCell, dict(units=4, init_stddev=0.5), (x, h, c),
                                    [(2, 4), (2, 4)], num_weights=2)
    cell.bias.assign(RNG.normal(size=(16,)).astype("float32"))
    h1, c1 = cell(x, h, c)
    z = np.concatenate([x, h], -1) @ ops.convert_to_numpy(cell.kernel) + ops.convert_to_numpy(cell.bias)
    i, f, g, o = np.split(z, 4, axis=-1)
    sig = lambda v: 1 / (1 + np.exp(-v))
    c_ref = sig(f) * c + sig(i) * np.tanh(g)
    np.testing.assert_allclose(ops.convert_to_numpy(c1), c_ref, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(h1), sig(o) * np.tanh(c_ref), rtol=1e-5)
    # Original-code init: zero bias, forget gate included.
    assert np.all(ops.convert_to_numpy(LSTMCell(3)(x, h[:, :3], c[:, :3])[0]).shape == (2, 3))
    fresh = LSTMCell(3)
    fresh.build((None, 3))
    assert np.all(ops.convert_to_numpy(fresh.bias) == 0)

import numpy as np
from keras import ops

from t2i.layers import LearnedPrior, LSTMCell, PosteriorHead
from t2i.losses import bernoulli_nll, gaussian_kl
from tests.harness import run_layer_test

EPS = np.finfo(np.float32).eps


def _dot_atol(x, kernel, bias):
    """Float32 rounding of x @ kernel + bias, both sides of a comparison: 2 n eps sum(|terms|) for n terms."""
    n = x.shape[-1] + 1
    return 2 * n * EPS * (np.abs(x) @ np.abs(kernel) + np.abs(bias)).max()


def test_kl_matches_the_closed_form_and_monte_carlo(rng):
    mu_q, ls_q = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)) * 0.3
    mu_p, ls_p = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)) * 0.3
    got = ops.convert_to_numpy(gaussian_kl(*(a.astype("float32") for a in (mu_q, ls_q, mu_p, ls_p))))
    sq, sp = np.exp(ls_q), np.exp(ls_p)
    closed = np.sum(np.log(sp / sq) + (sq ** 2 + (mu_q - mu_p) ** 2) / (2 * sp ** 2) - 0.5, axis=-1)
    # A KL can be near 0: float32 rounds its 3 x 3 terms (log ratio, quotient, 1/2), exp and log to ~2 ulp.
    terms = np.sum(np.abs(ls_p - ls_q) + (sq ** 2 + (mu_q - mu_p) ** 2) / (2 * sp ** 2) + 0.5, axis=-1)
    np.testing.assert_allclose(got, closed, rtol=1e-5, atol=2 * 9 * EPS * terms.max())
    # Monte Carlo: E_q[log q - log p].
    z = mu_q[0] + sq[0] * rng.normal(size=(400000, 3))
    logq = -0.5 * ((z - mu_q[0]) / sq[0]) ** 2 - np.log(sq[0])
    logp = -0.5 * ((z - mu_p[0]) / sp[0]) ** 2 - np.log(sp[0])
    assert abs(np.mean(np.sum(logq - logp, -1)) - closed[0]) < 0.02
    # N(0, I) prior: the usual VAE form.
    zero = np.zeros((2, 3), "float32")
    vae = ops.convert_to_numpy(gaussian_kl(mu_q.astype("f"), ls_q.astype("f"), zero, zero))
    terms = 0.5 * np.sum(mu_q ** 2 + sq ** 2 + 1 + 2 * np.abs(ls_q), -1)  # the KL is near 0 for small mu_q, ls_q
    np.testing.assert_allclose(vae, 0.5 * np.sum(mu_q ** 2 + sq ** 2 - 1 - 2 * ls_q, -1), rtol=1e-5,
                               atol=2 * 12 * EPS * terms.max())  # 3 x 4 terms, as above


def test_bernoulli_nll_matches_the_direct_formula(rng):
    logits = rng.normal(size=(2, 3, 4, 1)).astype("float32") * 3
    x = rng.random((2, 3, 4, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    ref = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(bernoulli_nll(logits, x)), ref, rtol=1e-5)
    # Stable for saturated logits.
    big = np.full((1, 2), -60.0, "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(bernoulli_nll(big, np.zeros((1, 2), "f"))), [0.0], atol=1e-12)


def test_heads(rng):
    state = rng.normal(size=(3, 5)).astype("float32")
    post, (mu, ls) = run_layer_test(PosteriorHead, dict(latent_dim=4, init_stddev=0.5), (state,),
                                    [(3, 4), (3, 4)], num_weights=2)
    kernel, bias = ops.convert_to_numpy(post.dense.kernel), ops.convert_to_numpy(post.dense.bias)
    raw = state @ kernel + bias
    atol = _dot_atol(state, kernel, bias)  # outputs near 0 (e.g. -0.0088) need more than rtol
    np.testing.assert_allclose(ops.convert_to_numpy(mu), raw[:, :4], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(ops.convert_to_numpy(ls), raw[:, 4:] / 2, rtol=1e-5, atol=atol)
    prior, (mu, ls) = run_layer_test(LearnedPrior, dict(latent_dim=4, init_stddev=2.0), (state,),
                                     [(3, 4), (3, 4)], num_weights=2)
    kernel, bias = ops.convert_to_numpy(prior.dense.kernel), ops.convert_to_numpy(prior.dense.bias)
    raw = np.tanh(state @ kernel + bias)
    atol = _dot_atol(state, kernel, bias) + 4 * EPS  # tanh has slope <= 1, and rounds itself
    np.testing.assert_allclose(ops.convert_to_numpy(mu), raw[:, :4], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(ops.convert_to_numpy(ls), raw[:, 4:], rtol=1e-5, atol=atol)


def test_lstm_cell_matches_numpy(rng):
    x, h, c = (rng.normal(size=(2, n)).astype("float32") for n in (3, 4, 4))
    cell, (h1, c1) = run_layer_test(LSTMCell, dict(units=4, init_stddev=0.5), (x, h, c),
                                    [(2, 4), (2, 4)], num_weights=2)
    cell.bias.assign(rng.normal(size=(16,)).astype("float32"))
    h1, c1 = cell(x, h, c)
    xh = np.concatenate([x, h], -1)
    kernel, bias = ops.convert_to_numpy(cell.kernel), ops.convert_to_numpy(cell.bias)
    z = xh @ kernel + bias
    i, f, g, o = np.split(z, 4, axis=-1)
    sig = lambda v: 1 / (1 + np.exp(-v))
    c_ref = sig(f) * c + sig(i) * np.tanh(g)
    # The gates' rounding passes through sigmoid and tanh (slopes <= 1) and is scaled by |c|.
    atol = 2 * _dot_atol(xh, kernel, bias) * max(1.0, np.abs(c).max())
    np.testing.assert_allclose(ops.convert_to_numpy(c1), c_ref, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(ops.convert_to_numpy(h1), sig(o) * np.tanh(c_ref), rtol=1e-5, atol=atol)
    # Original-code init: zero bias, forget gate included.
    assert np.all(ops.convert_to_numpy(LSTMCell(3)(x, h[:, :3], c[:, :3])[0]).shape == (2, 3))
    fresh = LSTMCell(3)
    fresh.build((None, 3))
    assert np.all(ops.convert_to_numpy(fresh.bias) == 0)

import numpy as np
import pytest
from keras import ops

from t2i import config as C
from t2i import metrics
from t2i.losses import gaussian_kl, gaussian_log_ratio
from t2i.model import AlignDRAW

EPS = np.finfo(np.float32).eps


@pytest.fixture(scope="module")
def model_and_data():
    cfg = C.tiny().override({"model.init_stddev": 0.5, "model.canvas_init": 0.0})
    model = AlignDRAW.from_config_dataclass(cfg, seed=0)
    rng = np.random.default_rng(7)
    images = np.zeros((6, 60, 60, 1), "float32")
    images[:, 10:40, 15:45] = rng.random((6, 30, 30, 1))
    return model, images, rng.integers(2, 24, (6, 12))


def test_log_ratio_averages_to_the_closed_form_kl(rng):
    mu_q, ls_q = rng.normal(size=(1, 3)), rng.normal(size=(1, 3)) * 0.3
    mu_p, ls_p = rng.normal(size=(1, 3)), rng.normal(size=(1, 3)) * 0.3
    eps = rng.normal(size=(200000, 3))
    z = mu_q + np.exp(ls_q) * eps
    ratio = ops.convert_to_numpy(gaussian_log_ratio(eps, ls_q, z, mu_p, ls_p))
    kl = ops.convert_to_numpy(gaussian_kl(*(a.astype("float32") for a in (mu_q, ls_q, mu_p, ls_p))))
    assert abs(ratio.mean() - kl[0]) < 0.02


def test_single_weights_are_the_lower_bound(model_and_data):
    model, images, tokens = model_and_data
    w = metrics.log_weights(model, images, tokens, num_samples=1, seed=3)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((6, model.num_steps, model.latent_dim)).astype("float32")
    out = model({"images": images, "tokens": tokens, "noise": noise})
    # Same noise: log p(x|z) + log p(z) - log q(z) at the sample.
    expected = -(ops.convert_to_numpy(out["reconstruction"]) + ops.convert_to_numpy(out["log_ratio"]).sum(-1))
    np.testing.assert_allclose(w[:, 0], expected, rtol=1e-4)
    # Its mean over draws is the bound that training reports (reconstruction + closed-form KL).
    elbo = -(ops.convert_to_numpy(out["reconstruction"]) + ops.convert_to_numpy(out["kl"]).sum(-1))
    assert np.all(np.abs(w[:, 0] - elbo) < 0.05 * np.abs(elbo))


def test_importance_weighted_bound_is_tighter_and_rises_with_k(model_and_data):
    model, images, tokens = model_and_data
    w = metrics.log_weights(model, images, tokens, num_samples=40, seed=0)
    single = w.mean(axis=1)
    k10 = np.mean([metrics.importance_weighted_bound(w[:, i:i + 10]) for i in range(0, 40, 10)], axis=0)
    k40 = metrics.importance_weighted_bound(w)
    assert np.all(k40 >= single - 1e-9)
    assert np.mean(k10) >= np.mean(single) and np.mean(k40) >= np.mean(k10)
    # k = 1 is the plain average; a constant weight gives itself.
    np.testing.assert_allclose(metrics.importance_weighted_bound(w[:, :1]), w[:, 0])
    np.testing.assert_allclose(metrics.importance_weighted_bound(np.full((2, 5), -3.0)), [-3.0, -3.0])


def test_ssim_and_diversity(rng):
    img = rng.random((2, 60, 60, 1)).astype("float32")
    np.testing.assert_allclose(metrics.ssim(img, img), 1.0, rtol=1e-5)
    assert np.all(metrics.ssim(img, 1.0 - img) < 0.0)
    mean, std = metrics.ssi_to_reference(np.stack([img, img], axis=1), img)
    assert mean == pytest.approx(1.0, abs=1e-5) and std == pytest.approx(0.0, abs=1e-5)
    same = np.repeat(img[:, None], 3, axis=1)
    assert metrics.sample_diversity(same) == pytest.approx(1.0, abs=1e-5)
    noisy = rng.random((2, 3, 60, 60, 1)).astype("float32")
    assert metrics.sample_diversity(noisy) < 0.2


def test_retrieval_ranks_and_report():
    scores = np.array([[5.0, 1.0, 2.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    ranks = metrics.retrieval_ranks(scores, [0, 2, 1])
    np.testing.assert_array_equal(ranks, [1, 2, 2])  # a tie ranks the true candidate last
    perfect = metrics.retrieval_report(metrics.retrieval_ranks(np.eye(100) * 10, np.arange(100)))
    assert perfect["R@1"] == 100.0 and perfect["median_rank"] == 1.0
    worst = metrics.retrieval_report(metrics.retrieval_ranks(-np.eye(100), np.arange(100)))
    assert worst["R@50"] == 0.0 and worst["median_rank"] == 100.0


def test_nearest_candidates():
    base = np.zeros((5, 2, 2, 1), "float32")
    for i in range(5):
        base[i] = i  # image i is closest to i-1 and i+1
    cand = metrics.nearest_candidates(base, num_candidates=3)
    assert list(cand[:, 0]) == [0, 1, 2, 3, 4]
    assert set(cand[2, 1:]) == {1, 3}
    with pytest.raises(ValueError, match="at least 10"):
        metrics.nearest_candidates(base, num_candidates=10)


def test_word_state_override_matches_tokens(model_and_data, rng):
    model, images, tokens = model_and_data
    noise = rng.normal(size=(6, model.num_steps, model.latent_dim)).astype("float32")
    words, mask = model.caption_states(tokens)
    a = model({"images": images, "tokens": tokens, "noise": noise})
    b = model({"images": images, "words": words, "word_mask": mask, "noise": noise})
    np.testing.assert_allclose(ops.convert_to_numpy(a["kl"]), ops.convert_to_numpy(b["kl"]), rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(a["reconstruction"]),
                               ops.convert_to_numpy(b["reconstruction"]), rtol=1e-5)


def test_mean_word_state_and_retrieval_scores(model_and_data):
    model, images, tokens = model_and_data
    mean = metrics.mean_word_state(model, tokens, batch_size=4)
    words, mask = (ops.convert_to_numpy(x) for x in model.caption_states(tokens))
    # A mean of n word states can be near 0: its float32 sums round to n eps mean(|state|), on both sides.
    np.testing.assert_allclose(mean, words[mask].mean(axis=0), rtol=1e-5,
                               atol=2 * mask.sum() * EPS * np.abs(words[mask]).mean())
    candidates = metrics.nearest_candidates(images, num_candidates=4)
    scores = metrics.retrieval_scores(model, images, tokens, mean, candidates, queries=[0, 3])
    assert scores.shape == (2, 4) and np.all(np.isfinite(scores))
    # A model whose caption does not matter scores every candidate 0 against the mean caption.
    model.alignment.state_projection.bias.assign(np.zeros(model.align_units, "float32"))
    for w in model.decoder_cell.weights[:1]:
        k = ops.convert_to_numpy(w).copy()
        k[model.latent_dim:model.latent_dim + 2 * model.caption_units] = 0.0  # ignore s_t
        w.assign(k)
    flat = metrics.retrieval_scores(model, images, tokens, mean, candidates, queries=[0, 3])
    np.testing.assert_allclose(flat, 0.0, atol=1e-3)


def test_ssim_in_chunks_equals_one_pass_and_keeps_leading_shape():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 5, 16, 16, 1), dtype=np.float32), rng.random((2, 5, 16, 16, 1), dtype=np.float32)
    whole = metrics.ssim(a, b, chunk=100)
    assert whole.shape == (2, 5)
    # SSIM of independent images is near 0; it is built from 11 x 11 (121-term) window sums of [0, 1] pixels.
    np.testing.assert_allclose(metrics.ssim(a, b, chunk=3), whole, rtol=1e-6, atol=2 * 121 * EPS)
    np.testing.assert_allclose(metrics.ssim(a, a[0], chunk=4)[0], 1.0, rtol=1e-6)  # broadcast reference

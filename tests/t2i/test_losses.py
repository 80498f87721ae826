import numpy as np
import pytest
from scipy import special, stats

from t2i.losses import discretized_logistic_nll

EPS32 = np.finfo(np.float32).eps


def _reference_nll(means, scales, targets, levels):
    """The bins' probabilities as differences of SciPy's logistic CDF, in float64."""
    d = 0.5 / (levels - 1)
    upper = np.where(targets > 1 - d, 1.0, stats.logistic.cdf(targets + d, loc=means, scale=scales))
    lower = np.where(targets < d, 0.0, stats.logistic.cdf(targets - d, loc=means, scale=scales))
    return -np.log(upper - lower).reshape(len(targets), -1).sum(-1)


@pytest.mark.parametrize("levels", [2, 16, 256])
def test_discretized_logistic_nll_against_scipy(rng, levels):
    shape = (3, 5, 4, 3)
    targets = rng.integers(0, levels, size=shape) / (levels - 1)
    targets.flat[:4] = [0.0, 1.0, 0.0, 1.0]  # both edge bins present
    means = rng.random(shape)
    log_scales = np.log(rng.uniform(0.02, 0.5, size=(3,)))
    got = discretized_logistic_nll(means.astype("float32"), log_scales.astype("float32"),
                                   targets.astype("float32"), levels=levels)
    want = _reference_nll(means, np.exp(log_scales), targets, levels)
    # Per pixel a few float32 roundings of terms up to ~|a| (<= 1 / 0.02 = 50) nats; summed over 60 pixels.
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=60 * 50 * 8 * EPS32)


def test_the_bins_sum_to_one_for_every_mean_and_scale():
    levels = 256
    grid = np.arange(levels) / (levels - 1)
    for mean, scale in [(0.0, 0.01), (0.37, 0.05), (1.0, 0.3), (0.5, 3.0)]:
        targets = grid.reshape(levels, 1, 1, 1).astype("float32")
        means = np.full_like(targets, mean)
        nll = np.asarray(discretized_logistic_nll(means, np.float32(np.log(scale)), targets, levels=levels),
                         np.float64)
        total = special.logsumexp(-nll)
        assert abs(total) < levels * 16 * EPS32, (mean, scale, total)


def test_far_from_the_mean_the_nll_stays_finite():
    """A sharp logistic 1 away from the pixel: a tiny probability, not log(0)."""
    targets = np.array([[0.5], [0.0], [1.0]], np.float32)
    means = np.array([[-0.5], [1.0], [0.0]], np.float32)
    nll = np.asarray(discretized_logistic_nll(means, np.float32(np.log(0.005)), targets))
    assert np.all(np.isfinite(nll))
    # Far in a logistic's tail, -log P ~ distance / s: 200 nats here.
    assert np.all(nll > 150)

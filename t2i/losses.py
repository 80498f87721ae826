"""Loss terms of the variational lower bound, as pure functions (docs/model.md §9)."""

from keras import ops


def gaussian_kl(mu_q, log_sigma_q, mu_p, log_sigma_p):
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)), summed over the last axis.

    = 1/2 sum[ -1 + ((mu_q - mu_p)^2 + sigma_q^2) / sigma_p^2 - 2 log sigma_q + 2 log sigma_p ]
    """
    inv_var_p = ops.exp(-2.0 * log_sigma_p)
    terms = (ops.square(mu_q - mu_p) + ops.exp(2.0 * log_sigma_q)) * inv_var_p \
        - 1.0 - 2.0 * log_sigma_q + 2.0 * log_sigma_p
    return 0.5 * ops.sum(terms, axis=-1)


def bernoulli_nll(logits, targets):
    """-log Bernoulli(targets; sigmoid(logits)) summed over all but the batch axis.

    Targets are intensities in [0, 1] (no binarisation, as in the original
    code). Computed stably: max(l, 0) - l x + log(1 + exp(-|l|)).
    """
    per_pixel = ops.relu(logits) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def gaussian_log_ratio(eps, log_sigma_q, z, mu_p, log_sigma_p):
    """log q(z) - log p(z) at a sample z = mu_q + sigma_q * eps, summed over the last axis.

    Its expectation under q is `gaussian_kl`; importance-weighted bounds need
    the per-sample value.
    """
    log_q = -0.5 * ops.square(eps) - log_sigma_q
    log_p = -0.5 * ops.square((z - mu_p) * ops.exp(-log_sigma_p)) - log_sigma_p
    return ops.sum(log_q - log_p, axis=-1)


def discretized_logistic_nll(means, log_scales, targets, levels: int = 256):
    """-log P(targets) of pixels quantised to `levels` values in [0, 1], summed over all but the batch axis.

    Each pixel value x = k / (levels - 1) owns the bin [x - d, x + d],
    d = 1 / (2 (levels - 1)); the lowest bin extends to -inf, the highest to
    +inf (Salimans et al. 2017, PixelCNN++). Under a logistic of mean m and
    scale s, with a = (x + d - m) / s, b = (x - d - m) / s:

        P(x) = sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(-2d / s))
        -log P(x) = softplus(-a) + softplus(b) - log(-expm1(-2d / s))

    where the lowest bin keeps only softplus(-a) and the highest only
    softplus(b). Every term is computed stably; P sums to 1 over the levels.

    Args:
        means: [B, ...] the logistic's means (e.g. sigmoid(c_T)).
        log_scales: log s, broadcastable to `means` (e.g. one per channel).
        targets: [B, ...] intensities in [0, 1], on the grid k / (levels - 1).
        levels: how many values a pixel takes (256 for 8-bit images).
    """
    half_bin = 0.5 / (levels - 1)
    inv_scale = ops.exp(-log_scales)
    centred = targets - means
    a = (centred + half_bin) * inv_scale
    b = (centred - half_bin) * inv_scale
    lowest = targets < half_bin
    highest = targets > 1.0 - half_bin
    zero = ops.zeros_like(centred)
    width = -ops.log(-ops.expm1(-2.0 * half_bin * inv_scale)) + zero
    per_pixel = (ops.where(highest, zero, ops.softplus(-a))
                 + ops.where(lowest, zero, ops.softplus(b))
                 + ops.where(ops.logical_or(lowest, highest), zero, width))
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)

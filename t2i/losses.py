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

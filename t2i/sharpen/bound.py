"""The lower bound of alignDRAW followed by the sharpener (the paper's "after sharpening")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from keras import ops

from t2i.sharpen.captions import caption_vectors

# Probabilities are kept in [eps, 1 - eps] in the sharpened bound (see
# `sharpened_log_weights`).
BOUND_EPSILON = 1e-5

if TYPE_CHECKING:
    from t2i.sharpen.model import Sharpener


def bernoulli_nll_of_probabilities(probs, targets, epsilon: float = BOUND_EPSILON) -> np.ndarray:
    """-log Bernoulli(targets; p) summed per example, p clipped to [eps, 1 - eps] (float64)."""
    p = np.clip(np.asarray(probs, np.float64), epsilon, 1.0 - epsilon)
    x = np.asarray(targets, np.float64)
    per_pixel = -(x * np.log(p) + (1.0 - x) * np.log1p(-p))
    return per_pixel.reshape(len(per_pixel), -1).sum(-1)


def sharpened_log_weights(model, sharpener: Sharpener, images, tokens, num_samples: int = 1,
                          batch_size: int = 100, seed: int = 0,
                          epsilon: float = BOUND_EPSILON) -> np.ndarray:
    """`t2i.metrics.log_weights` with the Bernoulli mean replaced by the sharpened one.

    With the GAN noise fixed at zero the generator is a deterministic
    function g, so (docs/model.md §14; paper sec. 4.1)

        log p(x | y) >= E_q[ log Bernoulli(x; g(sigmoid(c_T), y)) ] - KL

    is still a lower bound, of a different model (alignDRAW followed by
    g). The probabilities are clipped to [epsilon, 1 - epsilon] because g's
    clip makes exact 0s and 1s, whose log-likelihood is -inf wherever the
    target differs; epsilon = 1e-5 costs at most -log(1e-5) = 11.5 nats per
    such pixel (the bound then depends on epsilon: compare bounds only at
    the same epsilon). The noise is drawn exactly as in `log_weights` with
    the same `seed`, so the two differ only by the likelihood term.

    Returns:
        float64 [N, num_samples], single-sample bound estimates.
    """
    from t2i import metrics

    images = np.asarray(images, np.float32)
    tokens = np.asarray(tokens)
    if len(images) != len(tokens):
        raise ValueError(f"{len(images)} images but {len(tokens)} captions")
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
    if getattr(model, "likelihood", "bernoulli") != "bernoulli":
        raise ValueError(f"the sharpened bound swaps a Bernoulli likelihood; this model's is "
                         f"{model.likelihood!r}, whose bound is not comparable with it")
    vectors = caption_vectors(model, tokens, batch_size)

    def sharpened_nll(pred):
        blurry = ops.convert_to_numpy(ops.sigmoid(ops.convert_to_tensor(pred["logits"])))
        return bernoulli_nll_of_probabilities(sharpener.sharpen(blurry, vectors, batch_size), images, epsilon)

    return metrics.log_weights(model, images, tokens, num_samples, batch_size, seed, nll=sharpened_nll)

"""Evaluation metrics: lower bounds, importance-weighted bounds, SSIM, retrieval ranks.

The paper (docs/model.md §13) reports the variational lower bound in nats,
image retrieval (R@K and median rank among 100 candidates, ranked by
log p(x|y) - log p(x|y_mean)) and structural similarity (SSI) of samples to
the caption's true image. These are the building blocks; they take NumPy
arrays and a model, and work in bounded memory (batches over examples, a loop
over importance samples).
"""

from __future__ import annotations

import warnings

import numpy as np


def log_weights(model, images, tokens, num_samples: int, batch_size: int = 100,
                seed: int = 0, nll=None) -> np.ndarray:
    """log p(x, z | y) - log q(z | x, y) for `num_samples` posterior draws per example.

    Args:
        model: an `AlignDRAW`.
        images: float [N, H, W, C] in [0, 1]; tokens: int [N, L].
        num_samples: k.
        batch_size: examples per forward pass.
        seed: seed of the noise (a NumPy generator), so results are reproducible.
        nll: optional `nll(pred) -> float [N]`, the negative log-likelihood of
            the images given the model's outputs `pred` (default: the model's
            Bernoulli `pred["reconstruction"]`; the sharpened bound swaps it).

    Returns:
        float64 [N, k]. Each entry is a single-sample estimate of the lower
        bound; their mean is the usual (k = 1) bound.
    """
    images = np.asarray(images, np.float32)
    tokens = np.asarray(tokens)
    if len(images) != len(tokens):
        raise ValueError(f"{len(images)} images but {len(tokens)} captions")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    shape = (model.num_steps, model.latent_dim)
    out = np.empty((len(images), num_samples))
    for j in range(num_samples):
        noise = rng.standard_normal((len(images),) + shape).astype(np.float32)
        pred = model.predict({"images": images, "tokens": tokens, "noise": noise},
                             batch_size=batch_size, verbose=0)
        recon = pred["reconstruction"] if nll is None else nll(pred)
        out[:, j] = -(np.asarray(recon, np.float64) + np.asarray(pred["log_ratio"], np.float64).sum(-1))
    return out


def importance_weighted_bound(weights: np.ndarray) -> np.ndarray:
    """log (1/k) sum_j exp(w_j) per example (Burda et al. 2016): [N, k] -> [N].

    With k = 1 it is the single-sample lower bound; its expectation rises with
    k towards log p(x | y).
    """
    weights = np.asarray(weights, np.float64)
    top = weights.max(axis=1, keepdims=True)
    return (top + np.log(np.mean(np.exp(weights - top), axis=1, keepdims=True)))[:, 0]


def ssim(a, b, chunk: int = 2048) -> np.ndarray:
    """Structural similarity (Wang et al. 2004, `tf.image.ssim`, 11x11 Gaussian window)
    of image pairs in [0, 1]: [..., H, W, C] x [..., H, W, C] -> [...].

    Pairs are compared `chunk` at a time: `tf.image.ssim` holds about ten
    filtered copies of its inputs, so memory stays bounded however many pairs
    (sample diversity compares S(S-1)/2 pairs per caption).
    """
    import tensorflow as tf

    a, b = np.broadcast_arrays(np.asarray(a, np.float32), np.asarray(b, np.float32))
    lead = a.shape[:-3]
    a, b = a.reshape((-1,) + a.shape[-3:]), b.reshape((-1,) + b.shape[-3:])
    out = [tf.image.ssim(tf.constant(a[i:i + chunk]), tf.constant(b[i:i + chunk]), max_val=1.0).numpy()
           for i in range(0, len(a), chunk)]
    return (np.concatenate(out) if out else np.zeros(0, np.float32)).reshape(lead)


def ssi_to_reference(samples, references) -> tuple[float, float]:
    """The paper's SSI: mean and std of SSIM between every sample and its caption's true image.

    samples: [N, S, H, W, C]; references: [N, H, W, C].
    """
    samples = np.asarray(samples, np.float32)
    values = ssim(samples, np.asarray(references, np.float32)[:, None])
    return float(values.mean()), float(values.std())


def sample_diversity(samples) -> float:
    """Mean SSIM between distinct samples of the same caption: [N, S, H, W, C] -> float.

    1 means every caption always gets the same picture.
    """
    samples = np.asarray(samples, np.float32)
    n, s = samples.shape[:2]
    if s < 2:
        raise ValueError("sample_diversity needs at least 2 samples per caption")
    i, j = np.triu_indices(s, k=1)
    # One caption at a time: its S(S-1)/2 pairs, never all captions' pairs at once.
    return float(np.mean([ssim(samples[c, i], samples[c, j]).mean() for c in range(n)]))


def pairwise_pixel_distance(images, samples: int) -> np.ndarray:
    """Mean |x_i - x_j| over pixels and over the pairs of each group of `samples` consecutive
    images (one caption's): [G * S, ...] -> [G]. 0 for identical images."""
    groups = np.asarray(images, np.float64).reshape(len(images) // samples, samples, -1)
    i, j = np.triu_indices(samples, k=1)
    return np.abs(groups[:, i] - groups[:, j]).mean(axis=(1, 2))


def retrieval_ranks(scores, true_index) -> np.ndarray:
    """1-based rank of the true candidate of each query, by descending score.

    scores: [Q, C]; true_index: [Q]. Ties count against the true candidate
    (it ranks after every candidate with an equal score).
    """
    scores = np.asarray(scores, np.float64)
    true_index = np.asarray(true_index)
    true = scores[np.arange(len(scores)), true_index][:, None]
    return 1 + (scores > true).sum(axis=1) + ((scores == true).sum(axis=1) - 1)


def retrieval_report(ranks, ks=(1, 5, 10, 50)) -> dict:
    """R@K (% of queries whose true candidate ranks <= K) and the median rank."""
    ranks = np.asarray(ranks)
    report = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    report["median_rank"] = float(np.median(ranks))
    return report


def nearest_candidates(images, num_candidates: int = 100) -> np.ndarray:
    """For each image, itself and its `num_candidates - 1` nearest neighbours in pixel space.

    images: [N, H, W, C]. Returns int [N, num_candidates] indices with the
    image itself first (the paper's shortlist, with pixels instead of CIFAR
    VGG features, since MNIST composites need no learned features).
    """
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    if num_candidates > len(flat):
        raise ValueError(f"need at least {num_candidates} images, got {len(flat)}")
    sq = (flat ** 2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T
    np.fill_diagonal(dist, -np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :num_candidates]


def mean_word_state(model, tokens, batch_size: int = 500) -> np.ndarray:
    """The mean caption-encoder word state over all real words of `tokens` [N, L] -> [2u].

    This is ȳ, the "mean sentence representation" of the paper's retrieval
    protocol, for alignDRAW: a one-word caption whose word state is the
    training captions' mean, so the alignment gives s_t = that mean.
    """
    from keras import ops

    total, count = None, 0
    for i in range(0, len(tokens), batch_size):
        words, mask = model.caption_states(np.asarray(tokens[i:i + batch_size]))
        words, mask = ops.convert_to_numpy(words), ops.convert_to_numpy(mask)
        part = (words * mask[..., None]).sum(axis=(0, 1))
        total = part if total is None else total + part
        count += int(mask.sum())
    return total / max(count, 1)


def retrieval_scores(model, images, tokens, mean_state, candidates, queries, batch_size: int = 100,
                     seed: int = 0) -> np.ndarray:
    """log p(x_c | y_q) - log p(x_c | ȳ) for each query q and its candidates c.

    Each term is the lower bound with one reconstruction draw and the
    closed-form KL; both use the same noise, so it largely cancels in the
    difference. candidates: [N, C] indices
    (`nearest_candidates`); queries: the query indices. Returns [Q, C].
    """
    images = np.asarray(images, np.float32)
    num_c = candidates.shape[1]
    rng = np.random.default_rng(seed)
    ybar = {"words": np.broadcast_to(mean_state, (num_c, 1, len(mean_state))).astype(np.float32),
            "word_mask": np.ones((num_c, 1), bool)}
    scores = np.empty((len(queries), num_c))
    for row, q in enumerate(queries):
        pixels = images[candidates[q]]
        noise = rng.standard_normal((num_c, model.num_steps, model.latent_dim)).astype(np.float32)
        terms = []
        for caption in ({"tokens": np.repeat(np.asarray(tokens)[q:q + 1], num_c, axis=0)}, ybar):
            with warnings.catch_warnings():  # the one-word mean caption: a softmax over 1 word is intended
                warnings.filterwarnings("ignore", message="You are using a softmax over axis")
                out = model.predict({"images": pixels, "noise": noise, **caption},
                                    batch_size=batch_size, verbose=0)
            terms.append(-(np.asarray(out["reconstruction"], np.float64)
                           + np.asarray(out["kl"], np.float64).sum(-1)))
        scores[row] = terms[0] - terms[1]
    return scores

"""Best-of-K inside the exported graph, drawing what `t2i.samplers.best_of_k` draws.

A run whose `sample.sampler` is best-of-K (the shipped scenes model) is served with it,
so that a caption and seed give the image `t2i generate` gives, up to float rounding:

    candidate j = 0..K-1:  x_j = draw(y, eps_j),          eps_j from (seed, stream j)
    score_j = B(x_j | y) - logsumexp_{y'' in {y} + N(y)} B(x_j | y'')
    image = x_{j*},  j* = the first j with the highest score_j

B is the single-sample lower bound with the noise of (seed, stream SCORE_STREAM + j),
the same for every caption, and N(y) the same-layout negatives of y: every caption
that differs from y in one word of a swap group (`t2i.samplers.same_layout_negatives`).
A caption without such a word scores 0 everywhere and gets candidate 0, the plain
sample.

TensorFlow only: this is part of the export, not of the backend-agnostic model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from t2i.samplers import SCORE_STREAM
from t2i.seed_noise import INT32_SEED_MODULUS


def seed_noise(seeds, shape, stream: int = 0):
    """float32 [B, *shape]: row i from seeds[i] and `stream` alone, as `t2i.seed_noise`
    draws it (Keras' seed [s mod (2^31 - 2), stream])."""
    folded = tf.cast(tf.math.floormod(tf.cast(seeds, tf.int64), INT32_SEED_MODULUS), tf.int32)
    return tf.map_fn(lambda s: tf.random.stateless_normal(shape, seed=tf.stack([s, tf.constant(stream)])),
                     folded, fn_output_signature=tf.TensorSpec(shape, tf.float32))


def same_layout_negatives(tokens, groups):
    """(negative tokens [N, L], owner int64 [N]) in `t2i.samplers.same_layout_negatives`' order.

    tokens: int64 [B, L]; groups: `t2i.samplers.SwapGroup`s (NumPy ids). A token is
    swapped within the first group holding it, for each other word of that group in
    the group's order, and only before one of the group's `before` ids if it has them.
    """
    tokens = tf.convert_to_tensor(tokens, tf.int64)
    words = tf.constant(np.concatenate([g.ids for g in groups]), tf.int64)                   # [M]
    group_of_word = tf.constant(np.concatenate([np.full(len(g.ids), i) for i, g in enumerate(groups)]),
                                tf.int64)
    next_token = tf.concat([tokens[:, 1:], tf.fill([tf.shape(tokens)[0], 1], tf.constant(-1, tf.int64))], 1)
    member, before = [], []
    for g in groups:
        member.append(tf.reduce_any(tf.equal(tokens[..., None], tf.constant(g.ids, tf.int64)), -1))
        before.append(tf.ones_like(member[-1]) if g.before is None else
                      tf.reduce_any(tf.equal(next_token[..., None], tf.constant(g.before, tf.int64)), -1))
    member, before = tf.stack(member, -1), tf.stack(before, -1)                              # [B, L, G]
    count = len(groups)
    first = tf.reduce_min(tf.where(member, tf.range(count, dtype=tf.int64), count), -1)       # [B, L]
    swappable = (first < count) & tf.gather(before, tf.minimum(first, count - 1), batch_dims=2)
    valid = (swappable[..., None] & tf.equal(first[..., None], group_of_word)
             & tf.not_equal(tokens[..., None], words))                                       # [B, L, M]
    where = tf.where(valid)                                                                  # (b, l, m)
    owner = where[:, 0]
    at = tf.one_hot(where[:, 1], tf.shape(tokens)[1], dtype=tf.int64)
    negatives = tf.gather(tokens, owner) * (1 - at) + tf.gather(words, where[:, 2])[:, None] * at
    return negatives, owner


def lower_bounds(model, images, tokens, noise, chunk: int = 256):
    """float64 [N]: B(images_i | tokens_i) with `noise`, as `AlignDRAW.lower_bound`, computed
    in ceil(N / chunk) equal parts of at most `chunk` rows (the few rows that round the
    last part up repeat row 0 and are dropped)."""
    n = tf.shape(tokens)[0]
    parts = tf.maximum((n + chunk - 1) // chunk, 1)
    size = (n + parts - 1) // parts
    rows = tf.concat([tf.range(n), tf.zeros([parts * size - n], tf.int32)], 0)

    def split(x):
        return tf.reshape(tf.gather(x, rows), tf.concat([[parts, size], tf.shape(x)[1:]], 0))

    def bound(part):
        x, y, e = part
        out = model({"images": x, "tokens": y, "noise": e}, training=False)
        return -(tf.cast(out["reconstruction"], tf.float64)
                 + tf.reduce_sum(tf.cast(out["kl"], tf.float64), -1))

    out = tf.map_fn(bound, (split(images), split(tokens), split(noise)),
                    fn_output_signature=tf.TensorSpec([None], tf.float64))
    return tf.reshape(out, [-1])[:n]


def log_posterior(own, theirs, owner):
    """[B]: own_b - logsumexp of own_b and theirs[owner == b] (`t2i.samplers.log_posterior`)."""
    batch = tf.shape(own)[0]
    top = tf.maximum(own, tf.math.unsorted_segment_max(theirs, owner, batch))  # empty segment: lowest
    spread = tf.math.unsorted_segment_sum(tf.exp(theirs - tf.gather(top, owner)), owner, batch)
    return own - (top + tf.math.log(tf.exp(own - top) + spread))


def best_of_k(model, tokens, seeds, k: int, groups, temperature=None, trace: bool = False,
              chunk: int = 256) -> dict:
    """{"images", "alignments", "candidate"} (and "canvases" with `trace`) of the best of K
    candidates per caption (see the module docstring), images in [0, 1]. tokens int64
    [B, L]; seeds int64 [B]; temperature: None (1) or float32 [B]."""
    shape = (model.num_steps, model.latent_dim)
    batch = tf.shape(tokens)[0]
    negatives, owner = same_layout_negatives(tokens, groups)
    rows = tf.concat([tf.range(batch, dtype=tf.int64), owner], 0)
    family = tf.concat([tokens, negatives], 0)
    drawn, scores = [], []
    for j in range(k):
        noise = seed_noise(seeds, shape, j)
        if temperature is not None:
            noise = noise * tf.reshape(temperature, (-1, 1, 1))
        out = model.sample(tokens, noise, trace=trace)
        bounds = lower_bounds(model, tf.gather(out["images"], rows), family,
                              tf.gather(seed_noise(seeds, shape, SCORE_STREAM + j), rows), chunk)
        scores.append(log_posterior(bounds[:batch], bounds[batch:], owner))
        drawn.append(out)
    scores = tf.stack(scores, 1)                                                          # [B, K]
    best = tf.reduce_min(tf.where(tf.equal(scores, tf.reduce_max(scores, 1, keepdims=True)),
                                  tf.range(k), k), 1)  # ties: the lowest j, so K = 1 is plain
    result = {key: tf.gather(tf.stack([d[key] for d in drawn], 1), best, batch_dims=1) for key in drawn[0]}
    result["candidate"] = best
    return result

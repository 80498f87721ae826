"""Per-seed sampling noise: example i of a batch draws its noise from seeds[i] alone.

    noise_i = keras.random.normal((T, latent), seed=seeds[i])          (stream 0)

so an image depends on its caption and seed, never on the batch it was drawn in.
Keras' TensorFlow backend draws `keras.random.normal(shape, seed=s)` as
`tf.random.stateless_normal(shape, seed=[s', 0])` with s' = s mod (2^31 - 2) as int32
(`keras.src.backend.tensorflow.random._cast_seed`); the exported serving graph draws the
same, and on TensorFlow all seeds are drawn here in one graph call (70 us a seed instead of
0.8 ms for one eager call per seed). Other backends draw seed by seed.

Stream j > 0 is another independent draw for the same seeds (samplers that need several
per image, `t2i.samplers`): [s', j] on TensorFlow, a seed derived from (s, j) elsewhere.

This is the one TensorFlow-specific piece of sampling, kept out of the backend-agnostic
model (`t2i.model`); TensorFlow is imported only when it is Keras' backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

INT32_SEED_MODULUS = 2 ** 31 - 2
_TF_FUNCTIONS: dict = {}


def seed_noise(seeds, shape, stream: int = 0) -> np.ndarray:
    """float32 [B, *shape]: row i drawn from seeds[i] (and `stream`) alone."""
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    shape = tuple(int(d) for d in shape)
    if keras.backend.backend() == "tensorflow" and len(seeds):
        return _tf_draw(shape)(seeds, stream)
    if stream:  # one integer seed per draw, derived from (seed, stream)
        seeds = np.array([np.random.SeedSequence([int(s) % 2**63, int(stream)]).generate_state(1)[0]
                          for s in seeds], np.int64)
    return np.stack([ops.convert_to_numpy(keras.random.normal(shape, seed=int(s)))
                     for s in seeds]).reshape((len(seeds),) + shape).astype("float32")


def _tf_draw(shape):
    """(seeds int64 [B], stream) -> NumPy [B, *shape] in one TensorFlow graph call."""
    fn = _TF_FUNCTIONS.get(shape)
    if fn is None:
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
        def draw(seeds, stream):
            return tf.map_fn(
                lambda s: tf.random.stateless_normal(shape, seed=tf.stack([s, stream])),
                seeds, fn_output_signature=tf.TensorSpec(shape, tf.float32), parallel_iterations=512)

        def fn(seeds, stream=0):
            folded = np.mod(np.asarray(seeds, np.int64), np.int64(INT32_SEED_MODULUS)).astype(np.int32)
            return draw(tf.constant(folded), tf.constant(int(stream), tf.int32)).numpy()

        _TF_FUNCTIONS[shape] = fn
    return fn

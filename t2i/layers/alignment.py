"""Soft alignment of the generator over the caption's words (Mansimov et al. 2016, sec. 3.2)."""

import keras
from keras import ops

from t2i.layers.initializers import normal

_MASKED = -1e9


@keras.saving.register_keras_serializable(package="t2i")
class CaptionAlignment(keras.layers.Layer):
    """Bahdanau-style attention over the word states, driven by h^gen_{t-1}.

        e_j = v^T tanh(U h^lang_j + W h^gen_{t-1} + b)
        alpha = softmax over the caption's real words (padding gets weight 0)
        s_t = sum_j alpha_j h^lang_j

    U h^lang does not depend on t: compute it once per caption with
    `project_words` and pass it to every step's call.

    Args:
        units: width of the alignment MLP (512 in the paper).
        init_stddev: weight init.

    Call arguments:
        words: [batch, L, word_dim], the caption encoder's states h^lang.
        state: [batch, state_dim], the generator's previous state.
        mask: bool [batch, L], True for real words.
        projected_words: optional [batch, L, units], `project_words(words)`.

    Returns:
        (context [batch, word_dim], weights [batch, L]).
    """

    def __init__(self, units: int, init_stddev: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units = units
        self.init_stddev = init_stddev
        self.word_projection = keras.layers.Dense(
            units, use_bias=False, kernel_initializer=normal(init_stddev), name="word_projection")
        self.state_projection = keras.layers.Dense(
            units, kernel_initializer=normal(init_stddev), name="state_projection")
        self.score = keras.layers.Dense(
            1, use_bias=False, kernel_initializer=normal(init_stddev), name="score")

    def build(self, words_shape, state_shape=None, mask_shape=None, projected_words_shape=None):
        self.word_projection.build(words_shape)
        self.state_projection.build(state_shape)
        self.score.build(tuple(words_shape[:-1]) + (self.units,))

    def project_words(self, words):
        """U h^lang: [batch, L, word_dim] -> [batch, L, units]."""
        return self.word_projection(words)

    def call(self, words, state, mask, projected_words=None):
        if projected_words is None:
            projected_words = self.project_words(words)
        hidden = ops.tanh(projected_words + ops.expand_dims(self.state_projection(state), 1))
        scores = ops.squeeze(self.score(hidden), -1)  # [batch, L]
        weights = masked_softmax(scores, mask)
        context = ops.sum(ops.expand_dims(weights, -1) * words, axis=1)
        return context, weights

    def compute_output_shape(self, words_shape, state_shape=None, mask_shape=None,
                             projected_words_shape=None):
        return (words_shape[0], words_shape[-1]), tuple(words_shape[:2])

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, init_stddev=self.init_stddev)
        return config


def masked_softmax(scores, mask):
    """Softmax over the last axis where mask is True; exactly 0 elsewhere."""
    scores = ops.where(mask, scores, _MASKED)
    weights = ops.softmax(scores, axis=-1)
    return ops.where(mask, weights, 0.0)


def masked_mean(words, mask):
    """Uniform weights over real words: ([batch, L, D], [batch, L]) -> ([batch, D], [batch, L])."""
    m = ops.cast(mask, words.dtype)
    weights = m / ops.maximum(ops.sum(m, axis=-1, keepdims=True), 1.0)
    return ops.sum(ops.expand_dims(weights, -1) * words, axis=1), weights

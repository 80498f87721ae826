"""Bidirectional LSTM caption encoder (Mansimov et al. 2016, sec. 3.1)."""

import keras
from keras import ops

from t2i.config import CAPTION_ENCODERS as DIRECTIONS
from t2i.layers.initializers import normal


@keras.saving.register_keras_serializable(package="t2i")
class CaptionEncoder(keras.layers.Layer):
    """Encodes word ids into the word states h^lang_j = [fwd_j ; bwd_j].

    A true, masked bidirectional LSTM: the backward direction reads each
    caption from its last real word to its first, and its state for word j is
    stored at position j. (The original Theano code reversed the batch axis
    instead of time; docs/model.md §3 and §15: a known bug we do not copy.)

    With `embedding_dim=0` one-hot words feed the LSTM gates directly, as in
    the paper (W_y is the LSTM input kernel); a positive `embedding_dim` puts a
    learned embedding in front. Both directions start from one shared learned
    hidden state h0_lang (init 0) and a zero cell. LSTM weights are N(0, s^2)
    with zero biases, forget gate included.

    With `direction="forward"` one forward LSTM of `2 * units` units replaces
    the pair (same state width, so nothing downstream changes): word j's state
    then depends only on words 1..j, as in the original code, whose "backward"
    direction never read the caption backwards. The attention then has to
    gather the digit and its place from different words instead of reading a
    whole-caption summary at any one of them.

    Args:
        vocab_size: size of the id space (id 0 is padding).
        units: units per direction.
        embedding_dim: 0 for one-hot input, else the embedding width.
        init_stddev: weight init.
        direction: "bidirectional" (the paper) or "forward".

    Call arguments:
        tokens: int [batch, L], 0-padded at the end.

    Returns:
        (words [batch, L, 2 * units], mask bool [batch, L]). Padded positions
        hold zeros.
    """

    def __init__(self, vocab_size: int, units: int, embedding_dim: int = 0,
                 init_stddev: float = 0.01, direction: str = "bidirectional", **kwargs):
        super().__init__(**kwargs)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (padding, OOV, a word), got {vocab_size}")
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.vocab_size = vocab_size
        self.units = units
        self.embedding_dim = embedding_dim
        self.init_stddev = init_stddev
        self.direction = direction
        self.embedding = (keras.layers.Embedding(vocab_size, embedding_dim,
                                                 embeddings_initializer=normal(init_stddev),
                                                 name="embedding")
                          if embedding_dim else None)

        def lstm(width):
            return keras.layers.LSTM(
                width, return_sequences=True, unit_forget_bias=False,
                kernel_initializer=normal(init_stddev), recurrent_initializer=normal(init_stddev),
                bias_initializer="zeros", name="lstm")

        if direction == "forward":
            self.forward_lstm = lstm(2 * units)
        else:
            # Bidirectional clones this layer (from its config) for the backward
            # direction, so each direction gets its own freshly drawn weights.
            self.bidirectional = keras.layers.Bidirectional(lstm(units), merge_mode="concat",
                                                            name="bidirectional")

    def build(self, tokens_shape):
        state_width = self.units if self.direction == "bidirectional" else 2 * self.units
        self.initial_state = self.add_weight(name="initial_state", shape=(state_width,),
                                             initializer="zeros")
        width = self.embedding_dim or self.vocab_size
        if self.embedding is not None:
            self.embedding.build(tokens_shape)
        if self.direction == "forward":
            self.forward_lstm.build(tuple(tokens_shape) + (width,))
        else:
            self.bidirectional.build(tuple(tokens_shape) + (width,))

    def call(self, tokens):
        tokens = ops.cast(tokens, "int32")
        mask = ops.not_equal(tokens, 0)
        if self.embedding is not None:
            x = self.embedding(tokens)
        else:
            x = ops.one_hot(tokens, self.vocab_size, dtype=self.compute_dtype)
        batch, width = ops.shape(tokens)[0], ops.shape(self.initial_state)[0]
        h0 = ops.broadcast_to(self.initial_state, (batch, width))
        c0 = ops.zeros((batch, width), dtype=self.compute_dtype)
        if self.direction == "forward":
            words = self.forward_lstm(x, mask=mask, initial_state=[h0, c0])
        else:
            words = self.bidirectional(x, mask=mask, initial_state=[h0, c0, h0, c0])
        words = words * ops.expand_dims(ops.cast(mask, words.dtype), -1)
        return words, mask

    def compute_output_shape(self, tokens_shape):
        return tuple(tokens_shape) + (2 * self.units,), tuple(tokens_shape)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, units=self.units,
                      embedding_dim=self.embedding_dim, init_stddev=self.init_stddev,
                      direction=self.direction)
        return config

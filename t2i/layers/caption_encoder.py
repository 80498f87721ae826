"""Caption encoder: word states from the paper's BiLSTM (Mansimov et al. 2016, sec. 3.1), a forward LSTM, or embeddings."""

import numpy as np
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

    With `direction="embedding"` there is no recurrence (a departure from the
    paper, docs/model.md §3): word j's state is its own learned embedding next
    to a sinusoidal code of its position j,

        h^lang_j = [E x_j ; g * p_j],  p_j = [sin(j w_k), cos(j w_k)]_k,
        w_k = 10000^(-k / K),  k = 0 .. K-1,  2K = 2 * max(1, units // 8),

    E in R^{vocab x (2u - 2K)} and the gain g in R^{2K} learned (both
    initialised N(0, s^2) and s). A digit word then holds only its digit and
    a place word only its place: what is drawn and where are separate words,
    and the attention's weights say which role (first or second digit) a
    word plays through its position.

    Args:
        vocab_size: size of the id space (id 0 is padding).
        units: units per direction.
        embedding_dim: 0 for one-hot input, else the embedding width.
        init_stddev: weight init.
        direction: "bidirectional" (the paper), "forward" or "embedding".

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
        if direction == "embedding" and embedding_dim:
            raise ValueError("embedding_dim has no use with direction 'embedding' "
                             "(the word states are the embedding); set it to 0")
        self.vocab_size = vocab_size
        self.units = units
        self.embedding_dim = embedding_dim
        self.init_stddev = init_stddev
        self.direction = direction
        self.embedding = (keras.layers.Embedding(vocab_size, embedding_dim,
                                                 embeddings_initializer=normal(init_stddev),
                                                 name="embedding")
                          if embedding_dim else None)
        if direction == "embedding":
            self.position_dims = 2 * max(1, units // 8)
            self.word_embedding = keras.layers.Embedding(
                vocab_size, 2 * units - self.position_dims,
                embeddings_initializer=normal(init_stddev), name="word_embedding")
            return

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
        if self.direction == "embedding":
            self.word_embedding.build(tokens_shape)
            self.position_gain = self.add_weight(
                name="position_gain", shape=(self.position_dims,),
                initializer=keras.initializers.Constant(self.init_stddev))
            return
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
        if self.direction == "embedding":
            words = ops.concatenate([self.word_embedding(tokens), self._positions(tokens)], -1)
        else:
            words = self._lstm_states(tokens, mask)
        words = words * ops.expand_dims(ops.cast(mask, words.dtype), -1)
        return words, mask

    def _lstm_states(self, tokens, mask):
        if self.embedding is not None:
            x = self.embedding(tokens)
        else:
            x = ops.one_hot(tokens, self.vocab_size, dtype=self.compute_dtype)
        batch, width = ops.shape(tokens)[0], ops.shape(self.initial_state)[0]
        h0 = ops.broadcast_to(self.initial_state, (batch, width))
        c0 = ops.zeros((batch, width), dtype=self.compute_dtype)
        if self.direction == "forward":
            return self.forward_lstm(x, mask=mask, initial_state=[h0, c0])
        return self.bidirectional(x, mask=mask, initial_state=[h0, c0, h0, c0])

    def _positions(self, tokens):
        """g * p_j for every position of `tokens` [B, L] -> [B, L, 2K]."""
        half = self.position_dims // 2
        frequencies = np.power(10000.0, -np.arange(half) / half).astype("float32")
        angles = (ops.expand_dims(ops.cast(ops.arange(ops.shape(tokens)[1]), "float32"), -1)
                  * ops.convert_to_tensor(frequencies))  # [L, K]
        codes = ops.concatenate([ops.sin(angles), ops.cos(angles)], -1) * self.position_gain
        return ops.broadcast_to(ops.cast(codes, self.compute_dtype),
                                (ops.shape(tokens)[0], ops.shape(tokens)[1], self.position_dims))

    def compute_output_shape(self, tokens_shape):
        return tuple(tokens_shape) + (2 * self.units,), tuple(tokens_shape)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, units=self.units,
                      embedding_dim=self.embedding_dim, init_stddev=self.init_stddev,
                      direction=self.direction)
        return config

"""The learned "no caption": caption dropout in training, the unconditional model for guidance."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="t2i")
class NullCaption(keras.layers.Layer):
    """Replaces chosen captions by one learned word state (a departure from the paper).

    For example b with drop_b true:

        h^lang_b = [n, 0, ..., 0],  mask_b = [1, 0, ..., 0]

    n a learned vector of the word-state width, so the alignment (or the mean
    of noalignDRAW) reads s_t = n at every step: the model's unconditional
    branch. Training drops each caption with probability `model.caption_dropout`
    (classifier-free guidance, Ho and Salimans 2021); sampling with guidance
    scale g mixes the conditional and unconditional branches
    (`t2i.guidance`).

    Args:
        width: word-state width (2 * caption_units).

    Call arguments:
        words: [B, L, width]; mask: bool [B, L]; drop: bool [B].

    Returns:
        (words, mask) with the dropped rows replaced.
    """

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width

    def build(self, words_shape=None, mask_shape=None, drop_shape=None):
        self.state = self.add_weight(name="state", shape=(self.width,), initializer="zeros")

    def null_states(self, batch: int, length: int = 1):
        """Word states and mask of `batch` empty captions of `length` positions."""
        first = ops.arange(length) == 0
        words = ops.where(first[None, :, None], self.state[None, None, :],
                          ops.zeros((1, length, self.width), self.state.dtype))
        return (ops.broadcast_to(ops.cast(words, self.compute_dtype), (batch, length, self.width)),
                ops.broadcast_to(first[None, :], (batch, length)))

    def call(self, words, mask, drop):
        null_words, null_mask = self.null_states(ops.shape(words)[0], ops.shape(words)[1])
        drop = ops.cast(drop, "bool")
        return (ops.where(drop[:, None, None], null_words, words),
                ops.where(drop[:, None], null_mask, ops.cast(mask, "bool")))

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width)
        return config

"""What the sharpener takes from a trained alignDRAW model: caption vectors and samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from keras import ops

from t2i.layers.alignment import masked_mean

if TYPE_CHECKING:
    from t2i.sharpen.model import Sharpener


def caption_vector(model, tokens):
    """Backend tensors: the masked mean of `model`'s word states, [B, 2u] (for graphs)."""
    words, mask = model.caption_states(tokens)
    return masked_mean(words, mask)[0]


def caption_vectors(model, tokens, batch_size: int = 100) -> np.ndarray:
    """The caption vectors of a trained `AlignDRAW`: float32 [B, 2 * caption_units].

    t2i's stand-in for the original's skip-thought vectors: the mean over
    the caption's real words (padding excluded) of the frozen bidirectional
    LSTM's states h^lang, the same vector as the model's "mean" conditioning.
    """
    tokens = np.asarray(tokens)
    parts = [ops.convert_to_numpy(caption_vector(model, tokens[i:i + batch_size]))
             for i in range(0, len(tokens), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def generate_sharpened(model, sharpener: Sharpener, tokens, seeds, batch_size: int = 100) -> dict:
    """`model.generate` followed by sharpening.

    Returns a dict of NumPy arrays: "images" (sharpened) and "blurry"
    [B, H, W, C] in [0, 1], and "alignments" [B, T, L].
    """
    out = model.generate(tokens, seeds, batch_size=batch_size)
    sharp = sharpener.sharpen(out["images"], caption_vectors(model, tokens, batch_size), batch_size)
    return {"images": sharp, "blurry": out["images"], "alignments": out["alignments"]}

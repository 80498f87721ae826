"""Weight initialisers of the alignDRAW layers (docs/model.md §10).

The original code draws every weight matrix (recurrent kernels included) from
N(0, 0.01^2) and sets every bias to 0 (docs/model.md §10).
"""

import keras


def normal(stddev: float) -> keras.initializers.Initializer:
    """A fresh N(0, stddev^2) initializer (one per weight, so draws differ)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)

"""A shared layer test harness (after keras-hub's `run_layer_test`).

`run_layer_test` checks, for one layer class and tiny constructor arguments:
the eager call's output shapes, `compute_output_shape`, the number of weights,
a `get_config` -> `from_config` -> `get_config` round trip (JSON-equal), that a
layer rebuilt from its config and given the same weights computes the same
outputs, and Keras' own serialize/deserialize.
"""

import json

import keras
import numpy as np
from keras import ops


def _flat(x):
    if isinstance(x, (tuple, list)):
        out = []
        for item in x:
            out.extend(_flat(item))
        return out
    return [x]


def _shapes(x):
    """A shape, or nested tuples of shapes -> a flat list of shapes."""
    if all(isinstance(d, (int, type(None))) for d in x):
        return [tuple(x)]
    out = []
    for item in x:
        out.extend(_shapes(item))
    return out


def run_layer_test(cls, init_kwargs, call_args, expected_shapes, num_weights, call_kwargs=None):
    call_kwargs = call_kwargs or {}
    layer = cls(**init_kwargs)
    outputs = _flat(layer(*call_args, **call_kwargs))
    assert [tuple(o.shape) for o in outputs] == [tuple(s) for s in expected_shapes]
    assert len(layer.weights) == num_weights, [w.path for w in layer.weights]

    # compute_output_shape agrees with the eager call.
    shapes = [tuple(np.shape(a)) for a in call_args]
    predicted = _shapes(layer.compute_output_shape(*shapes))
    assert [tuple(p) for p in predicted] == [tuple(s) for s in expected_shapes]

    # Config round trip.
    config = layer.get_config()
    clone = cls.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    for key, value in init_kwargs.items():
        assert config[key] == value, key

    # Same weights -> same outputs.
    clone(*call_args, **call_kwargs)
    clone.set_weights(layer.get_weights())
    for a, b in zip(outputs, _flat(clone(*call_args, **call_kwargs))):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-6, atol=1e-6)

    # Keras serialization (registered class names resolve).
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is cls
    return layer, outputs


def assert_same_image_up_to_rounding(got, want, max_pixels: int = 4):
    """uint8 images equal but for float rounding of another batch size or graph: at most
    `max_pixels` pixels off, by one grey level (docs/model.md §8: about one pixel in 60,000)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).sum() <= max_pixels, (
        f"{int((diff > 0).sum())} pixels differ, by up to {int(diff.max())} levels")

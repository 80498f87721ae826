"""LSTM cell of the original alignDRAW code."""

import keras
from keras import ops

from t2i.layers.initializers import normal


@keras.saving.register_keras_serializable(package="t2i")
class LSTMCell(keras.layers.Layer):
    """An LSTM step without peepholes, gate order [i, f, g, o].

    i, f, o = sigmoid(.), g = tanh(.), c = f*c_prev + i*g, h = o*tanh(c), with
    the pre-activation [x, h_prev] @ W + b computed as one matrix product.
    Weights are N(0, init_stddev^2) and the bias (forget gate included) is 0,
    as in the original code, unlike Keras' LSTM defaults.

    With matmul_dtype "bfloat16" the product takes bfloat16 operands:

        z = round_bf16([x, h_prev]) @ round_bf16(W) + b,

    round_bf16 rounding a float32 to the nearest bfloat16 (8 significant
    bits). The product of two bfloat16 numbers is exact in float32, so z is
    the float32 sum of exact products: the same numbers on every CPU and
    backend, whatever bfloat16 instructions it has (native bfloat16 kernels
    differ: some accumulate or round the result in bfloat16). The gates,
    states and weights stay float32 (docs/model.md §7).

    Args:
        units: size of h and c.
        init_stddev: standard deviation of the weight initialisation.
        matmul_dtype: "float32" or "bfloat16", the precision of the product's
            operands.

    Call arguments:
        inputs: [batch, input_dim].
        h: [batch, units], previous hidden state.
        c: [batch, units], previous cell state.

    Returns:
        (h, c), each [batch, units].
    """

    def __init__(self, units: int, init_stddev: float = 0.01, matmul_dtype: str = "float32", **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        if matmul_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"matmul_dtype must be 'float32' or 'bfloat16', got {matmul_dtype!r}")
        self.units = units
        self.init_stddev = init_stddev
        self.matmul_dtype = matmul_dtype

    def build(self, inputs_shape, h_shape=None, c_shape=None):
        input_dim = inputs_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim + self.units, 4 * self.units),
            initializer=normal(self.init_stddev))
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")

    def call(self, inputs, h, c):
        x = ops.concatenate([inputs, h], axis=-1)
        kernel = self.kernel
        if self.matmul_dtype == "bfloat16":
            x, kernel = _round_to_bfloat16(x), _round_to_bfloat16(kernel)
        z = ops.matmul(x, kernel) + self.bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, c

    def compute_output_shape(self, inputs_shape, h_shape=None, c_shape=None):
        shape = (inputs_shape[0], self.units)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, init_stddev=self.init_stddev, matmul_dtype=self.matmul_dtype)
        return config


def _round_to_bfloat16(x):
    """x rounded to the nearest bfloat16, as float32 (the gradient passes through)."""
    return ops.cast(ops.cast(x, "bfloat16"), x.dtype)

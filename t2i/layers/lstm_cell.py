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

    With matmul_dtype "bfloat16" the product [x, h_prev] @ W is taken in
    bfloat16: operands rounded from the float32 inputs and weights, float32
    accumulation, the result rounded to bfloat16 and added to the float32
    bias; the gates, states and weights stay float32 (docs/model.md §7).

    Args:
        units: size of h and c.
        init_stddev: standard deviation of the weight initialisation.
        matmul_dtype: "float32" or "bfloat16", the operands' type in the product.

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
        if self.matmul_dtype == "float32":
            z = ops.matmul(x, self.kernel)
        else:
            z = ops.cast(ops.matmul(ops.cast(x, self.matmul_dtype), ops.cast(self.kernel, self.matmul_dtype)),
                         x.dtype)
        z = z + self.bias
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

"""Diagonal Gaussian heads: the approximate posterior and the learned prior."""

import keras
from keras import ops

from t2i.layers.initializers import normal


class _GaussianHead(keras.layers.Layer):
    def __init__(self, latent_dim: int, init_stddev: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = latent_dim
        self.init_stddev = init_stddev
        self.dense = keras.layers.Dense(2 * latent_dim, kernel_initializer=normal(init_stddev),
                                        name="dense")

    def build(self, state_shape):
        self.dense.build(state_shape)

    def compute_output_shape(self, state_shape):
        shape = (state_shape[0], self.latent_dim)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, init_stddev=self.init_stddev)
        return config


@keras.saving.register_keras_serializable(package="t2i")
class PosteriorHead(_GaussianHead):
    """Q(Z_t | x, y, Z_<t) = N(mu, sigma^2) from the inference state (docs/model.md §6).

    mu = W_mu h^enc + b_mu and log sigma = (W_s h^enc + b_s) / 2: the linear
    layer outputs a log-variance, unbounded, as in the original code.

    Args:
        latent_dim: size of z.
        init_stddev: weight init.

    Call arguments:
        state: [batch, units].

    Returns:
        (mu, log_sigma), each [batch, latent_dim].
    """

    def call(self, state):
        mu, log_var = ops.split(self.dense(state), 2, axis=-1)
        return mu, 0.5 * log_var


@keras.saving.register_keras_serializable(package="t2i")
class LearnedPrior(_GaussianHead):
    """P(Z_t | Z_<t) = N(mu, sigma^2) from h^gen_{t-1} (docs/model.md §6; Bachman & Precup 2015).

    [mu, log sigma] = tanh(W_p h^gen_{t-1} + b_p), so mu is in (-1, 1) and
    sigma in (1/e, e). The first step's prior is N(0, I) and does not use
    this layer.

    Args:
        latent_dim: size of z.
        init_stddev: weight init.

    Call arguments:
        state: [batch, units].

    Returns:
        (mu, log_sigma), each [batch, latent_dim].
    """

    def call(self, state):
        mu, log_sigma = ops.split(ops.tanh(self.dense(state)), 2, axis=-1)
        return mu, log_sigma

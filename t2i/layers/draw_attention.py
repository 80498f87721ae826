"""DRAW's Gaussian filterbank read and write attention (Gregor et al. 2015, eqs. 19-29).

Conventions (docs/model.md §5). A linear layer of the state gives five
numbers [g~x, g~y, log delta~, log sigma^2, log gamma]. With 0-based pixel
coordinates a = 0..W-1 and b = 0..H-1:

    g_x   = (W + 1) / 2 * (g~x + 1) - 1            # DRAW eq. 22, 1-based -> 0-based
    g_y   = (H + 1) / 2 * (g~y + 1) - 1
    delta = (max(H, W) - 1) / (N - 1) * exp(log delta~)   # eq. 24
    mu_i  = g + (i - (N - 1) / 2) * delta,  i = 0..N-1     # eqs. 19-20
    F[i, a] = exp(-(a - mu_i)^2 / (2 sigma^2)) / (sum_a' F[i, a'] + 1e-4)  # eqs. 25-26

so an unbiased linear output (g~ = 0) centres the grid on the image and the
grid is symmetric about g. The original Theano code uses the asymmetric
offsets (i - floor(N/2) - 0.5); we follow the DRAW paper because no alignDRAW
weights were released that would need the code's grid, and a symmetric grid
makes a stride-1 glimpse an exact crop (tested).

    read(x)   = gamma * F_y x F_x^T          per channel, [N, N]   (eq. 27)
    write(w)  = 1/gamma * F_y^T w F_x        per channel, [H, W]   (eq. 29)

`read_glimpse` and `write_patch` are exact adjoints for the same filters.
Images are batch-major NHWC; every channel is read and written with the same
filters (COCO's RGB planes, docs/model.md §5).
"""

import keras
from keras import ops

from t2i.layers.initializers import normal

FILTER_EPSILON = 1e-4


def attention_params(raw, image_height: int, image_width: int, glimpse_size: int):
    """Maps the 5 raw linear outputs to (g_x, g_y, delta, sigma^2, gamma), each [batch, 1]."""
    gx_, gy_, log_delta, log_var, log_gamma = ops.split(raw, 5, axis=-1)
    gx = (image_width + 1) / 2.0 * (gx_ + 1.0) - 1.0
    gy = (image_height + 1) / 2.0 * (gy_ + 1.0) - 1.0
    delta = (max(image_height, image_width) - 1) / (glimpse_size - 1) * ops.exp(log_delta)
    return gx, gy, delta, ops.exp(log_var), ops.exp(log_gamma)


def filterbank(gx, gy, delta, variance, image_height: int, image_width: int, glimpse_size: int):
    """Normalised Gaussian filterbanks.

    Args:
        gx, gy, delta, variance: [batch, 1] grid centre (0-based pixels),
            stride and filter variance.

    Returns:
        (fx [batch, N, W], fy [batch, N, H]).
    """
    offsets = ops.arange(glimpse_size, dtype="float32") - (glimpse_size - 1) / 2.0  # [N]
    mu_x = gx + offsets * delta  # [batch, N]
    mu_y = gy + offsets * delta
    # -1 / (2 sigma^2) once per example: the [batch, N, size] tensors are only
    # multiplied, which is cheaper than dividing, forward and backward.
    scale = ops.expand_dims(-0.5 * ops.reciprocal(variance), -1)  # [batch, 1, 1]

    def bank(mu, size):
        a = ops.arange(size, dtype="float32")  # [size]
        f = ops.exp(ops.square(a - ops.expand_dims(mu, -1)) * scale)  # [batch, rows, size]
        return f * ops.reciprocal(ops.sum(f, axis=-1, keepdims=True) + FILTER_EPSILON)

    if image_height == image_width:  # both banks in one set of element-wise ops
        fx, fy = ops.split(bank(ops.concatenate([mu_x, mu_y], -1), image_width), 2, axis=1)
        return fx, fy
    return bank(mu_x, image_width), bank(mu_y, image_height)


def _planes(x):
    """[batch, H, W, C] -> [batch, C, H, W] (a reshape when C = 1)."""
    if x.shape[-1] == 1:
        return ops.expand_dims(ops.squeeze(x, -1), 1)
    return ops.transpose(x, (0, 3, 1, 2))


def _channels_last(x):
    """[batch, C, H, W] -> [batch, H, W, C] (a reshape when C = 1)."""
    if x.shape[1] == 1:
        return ops.expand_dims(ops.squeeze(x, 1), -1)
    return ops.transpose(x, (0, 2, 3, 1))


def _side_by_side(x):
    """[batch, H, W, C] -> [batch, H, C * W]: the channel planes side by side (a reshape when C = 1)."""
    shape = ops.shape(x)
    if x.shape[-1] == 1:
        return ops.reshape(x, (shape[0], shape[1], shape[2]))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2)), (shape[0], shape[1], x.shape[-1] * shape[2]))


def _read_side_by_side(planes, fx, fy, count: int):
    """F_y x F_x^T for `count` planes laid side by side, [batch, H, count * W] ->
    [batch, count, N, N]. F_y multiplies all planes in one batched product (its
    gradient is one product too); the einsum lets the backend fold F_x's
    transpose into the second."""
    rows = ops.matmul(fy, planes)  # [b, N, count * W]
    shape = ops.shape(rows)
    rows = ops.reshape(rows, (shape[0], shape[1], count, fx.shape[-1]))
    return ops.einsum("bnpw,bmw->bpnm", rows, fx)


def _write_planes(patches, fx, fy):
    """F_y^T w F_x per plane: [batch, P, N, N] -> [batch, P, H, W]."""
    cols = ops.einsum("bnh,bpnm->bphm", fy, patches)
    return ops.einsum("bphm,bmw->bphw", cols, fx)


def read_glimpse(images, fx, fy):
    """F_y x F_x^T for every channel: [batch, H, W, C] -> [batch, N, N, C]."""
    return _channels_last(_read_side_by_side(_side_by_side(images), fx, fy, images.shape[-1]))


def write_patch(patches, fx, fy):
    """F_y^T w F_x for every channel: [batch, N, N, C] -> [batch, H, W, C]."""
    return _channels_last(_write_planes(_planes(patches), fx, fy))


class _Attention(keras.layers.Layer):
    def __init__(self, image_height: int, image_width: int, channels: int, glimpse_size: int,
                 init_stddev: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if glimpse_size < 2:
            raise ValueError(f"glimpse_size must be >= 2, got {glimpse_size}")
        self.image_height = image_height
        self.image_width = image_width
        self.channels = channels
        self.glimpse_size = glimpse_size
        self.init_stddev = init_stddev
        self.params = keras.layers.Dense(5, kernel_initializer=normal(init_stddev), name="params")

    def filters(self, state):
        """(fx, fy, gamma) from a state vector [batch, units]."""
        gx, gy, delta, var, gamma = attention_params(
            self.params(state), self.image_height, self.image_width, self.glimpse_size)
        fx, fy = filterbank(gx, gy, delta, var, self.image_height, self.image_width, self.glimpse_size)
        return fx, fy, gamma

    def get_config(self):
        config = super().get_config()
        config.update(image_height=self.image_height, image_width=self.image_width,
                      channels=self.channels, glimpse_size=self.glimpse_size,
                      init_stddev=self.init_stddev)
        return config


@keras.saving.register_keras_serializable(package="t2i")
class DrawReadAttention(_Attention):
    """Reads an N x N glimpse of the image and of the error image.

    r_t = gamma * [read(x), read(x_hat)] with filters from the generator's
    previous state (docs/model.md §5, §7). Both images are read in one batched product.

    Args:
        image_height, image_width, channels: image geometry.
        glimpse_size: N.
        init_stddev: weight init of the parameter layer.

    Call arguments:
        images: [batch, H, W, C].
        error_images: [batch, H, W, C].
        state: [batch, units].

    Returns:
        [batch, 2 * N * N * C]: the glimpses, image first then error image.
    """

    def build(self, images_shape, error_images_shape=None, state_shape=None):
        self.params.build(state_shape)

    def call(self, images, error_images, state):
        fx, fy, gamma = self.filters(state)
        # Channel-major planes [x planes..., x_hat planes...], side by side
        # (rows of W pixels copied, not interleaved pixels).
        both = ops.concatenate([_side_by_side(images), _side_by_side(error_images)], axis=2)  # [b, H, 2C*W]
        patch = _read_side_by_side(both, fx, fy, 2 * self.channels)  # [b, 2C, N, N]
        flat = ops.reshape(patch, (ops.shape(patch)[0], 2 * self.channels * self.glimpse_size ** 2))
        return gamma * flat

    def compute_output_shape(self, images_shape, error_images_shape=None, state_shape=None):
        return (images_shape[0], 2 * self.channels * self.glimpse_size ** 2)


@keras.saving.register_keras_serializable(package="t2i")
class DrawWriteAttention(_Attention):
    """Writes an N x N patch, emitted by the generator, onto the canvas.

    Delta c_t = 1/gamma * F_y^T K F_x per channel, with K = W_c h_t + b_c and the
    filters from the same state h_t (docs/model.md §5).

    Args:
        image_height, image_width, channels: canvas geometry.
        glimpse_size: N.
        init_stddev: weight init.

    Call arguments:
        state: [batch, units], the generator state h^gen_t.

    Returns:
        [batch, H, W, C]: the canvas increment (logits).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.patch = keras.layers.Dense(self.channels * self.glimpse_size ** 2,
                                        kernel_initializer=normal(self.init_stddev), name="patch")

    def build(self, state_shape):
        self.params.build(state_shape)
        self.patch.build(state_shape)

    def call(self, state):
        fx, fy, gamma = self.filters(state)
        n, c = self.glimpse_size, self.channels
        patch = ops.reshape(self.patch(state), (ops.shape(state)[0], c, n, n))  # channel-major
        canvas = _channels_last(_write_planes(patch, fx, fy))  # [b, H, W, C]
        return canvas * ops.reshape(ops.reciprocal(gamma), (-1, 1, 1, 1))

    def compute_output_shape(self, state_shape):
        return (state_shape[0], self.image_height, self.image_width, self.channels)

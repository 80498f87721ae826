"""`SharpenDiscriminator`: D(image | blurry, caption), real or sharpened."""

import keras
from keras import ops

from t2i.sharpen.convolutions import caption_plane, conv, dense


@keras.saving.register_keras_serializable(package="t2i")
class SharpenDiscriminator(keras.layers.Layer):
    """Conditional discriminator: is `image` real or sharpened, given the blurry image and caption?

    The original's discriminator and training code are not in its repository;
    the paper says it used the 28x28 CIFAR-10 edge-residual configuration of
    Denton et al. (2015). That LAPGAN level's discriminator sees the
    residual (image minus the coarse image) together with the coarse image,
    gets its class condition as one extra plane made by a linear layer, and
    is two 5x5 convolutions (the second with stride 2) and a linear output.
    This layer is that network with the caption vector as the condition:

        residual = image - blurry                           # the "edges"
        plane    = reshape(ReLU(W_c caption + b_c), [B, H, W, 1])
        h = concat([residual, blurry, plane])               # 2C + 1 channels
        h = ReLU(conv_kxk(h; filters))                      # valid, stride 1
        h = ReLU(conv_kxk(h; filters, stride 2))            # valid
        logit = w^T flatten(h) + b

    Deliberate differences from Denton et al.: no dropout (keeps training a
    deterministic function of the data and seeds) and a logit output (the
    sigmoid is inside the loss, for numerical stability).

    Args:
        filters: width of both convolutions (Denton et al.: 128).
        kernel_size: their kernel size (5); the image must be at least
            2 * kernel_size - 1 pixels high and wide.

    Call arguments:
        image: [B, H, W, C], a real or a sharpened image in [0, 1].
        blurry: [B, H, W, C], the blurry image it was made from / paired with.
        caption: [B, E], the caption vector.
        frozen: stop the gradient at this layer's weights (but not at its
            inputs): the generator's loss goes through a frozen
            discriminator (see `Sharpener`).

    Returns:
        logits [B]: log D / (1 - D), D the probability that `image` is real.
    """

    def __init__(self, filters: int = 128, kernel_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        if filters < 1 or kernel_size < 1:
            raise ValueError(f"filters and kernel_size must be >= 1, got {filters}, {kernel_size}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)

    def _sizes(self, height, width):
        k = self.kernel_size
        h1, w1 = height - k + 1, width - k + 1
        return (h1 - k) // 2 + 1, (w1 - k) // 2 + 1

    def build(self, image_shape, blurry_shape=None, caption_shape=None):
        _, height, width, channels = image_shape
        out_h, out_w = self._sizes(height, width)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"images of {height}x{width} are too small for kernel_size {self.kernel_size}")
        k, f = self.kernel_size, self.filters
        self.caption_kernel = self.add_weight(name="caption_kernel",
                                              shape=(caption_shape[-1], height * width),
                                              initializer="glorot_uniform")
        self.caption_bias = self.add_weight(name="caption_bias", shape=(height * width,), initializer="zeros")
        self.conv1_kernel = self.add_weight(name="conv1_kernel", shape=(k, k, 2 * channels + 1, f),
                                            initializer="glorot_uniform")
        self.conv1_bias = self.add_weight(name="conv1_bias", shape=(f,), initializer="zeros")
        self.conv2_kernel = self.add_weight(name="conv2_kernel", shape=(k, k, f, f),
                                            initializer="glorot_uniform")
        self.conv2_bias = self.add_weight(name="conv2_bias", shape=(f,), initializer="zeros")
        self.output_kernel = self.add_weight(name="output_kernel", shape=(out_h * out_w * f, 1),
                                             initializer="glorot_uniform")
        self.output_bias = self.add_weight(name="output_bias", shape=(1,), initializer="zeros")

    def call(self, image, blurry, caption, frozen=False):
        height, width = image.shape[1], image.shape[2]
        plane = caption_plane(caption, self.caption_kernel, self.caption_bias, height, width, frozen)
        h = ops.concatenate([image - blurry, blurry, plane], axis=-1)  # [B, H, W, 2C + 1]
        h = ops.relu(conv(h, self.conv1_kernel, self.conv1_bias, padding="valid", frozen=frozen))
        h = ops.relu(conv(h, self.conv2_kernel, self.conv2_bias, strides=2, padding="valid", frozen=frozen))
        h = ops.reshape(h, (ops.shape(h)[0], -1))
        return ops.squeeze(dense(h, self.output_kernel, self.output_bias, frozen), -1)  # [B]

    def compute_output_shape(self, image_shape, blurry_shape=None, caption_shape=None):
        return (image_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config

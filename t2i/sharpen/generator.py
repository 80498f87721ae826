"""`SharpenGenerator`: g(blurry, caption) = blurry + edges."""

import keras
from keras import ops

from t2i.sharpen.convolutions import caption_plane, conv


@keras.saving.register_keras_serializable(package="t2i")
class SharpenGenerator(keras.layers.Layer):
    """The sharpening GAN's generator, as hard-coded in the original (docs/model.md §14).

        noise   = zeros [B, H, W, 1]          (the GAN noise fixed at its mean)
        plane   = reshape(ReLU(W_c caption + b_c), [B, H, W, 1])
        h       = concat([noise, plane, blurry])            # C + 2 channels
        h       = ReLU(conv_7x7(h; 128)); h = ReLU(conv_7x7(h; 128))
        edges   = conv_5x5(h; C)                            # linear
        sharp   = clip(blurry + edges, 0, 1)

    All convolutions are stride 1 with zero "same" padding, so H and W are
    kept (the original: K = 32, pyramid factors [1, 1, 1], no upsampling).
    The noise plane is always zero: the original's code notes that the
    deterministic generator works best, and a deterministic g is what makes
    the sharpened lower bound computable. The plane still takes an input
    channel of the first convolution (its weights get no gradient) so that
    the layer has the original's shapes.

    The last convolution starts at zero, so an untrained generator is the
    identity (sharp = blurry) and training starts from "no edges".

    Args:
        filters: widths of the hidden convolutions (the original: (128, 128)).
        kernel_sizes: kernel sizes of the hidden convolutions and then of the
            output convolution (the original: (7, 7, 5)); one more than
            `filters`.

    Call arguments:
        blurry: [B, H, W, C] in [0, 1], e.g. sigmoid(c_T).
        caption: [B, E], the caption vector (`caption_vectors`).

    Returns:
        (sharp [B, H, W, C] in [0, 1], edges [B, H, W, C]).
    """

    def __init__(self, filters=(128, 128), kernel_sizes=(7, 7, 5), **kwargs):
        super().__init__(**kwargs)
        filters, kernel_sizes = tuple(int(f) for f in filters), tuple(int(k) for k in kernel_sizes)
        if len(kernel_sizes) != len(filters) + 1:
            raise ValueError(f"need one kernel size per hidden convolution plus one for the output, "
                             f"got filters={filters}, kernel_sizes={kernel_sizes}")
        if min(filters, default=1) < 1 or min(kernel_sizes) < 1:
            raise ValueError(f"filters and kernel sizes must be >= 1, got {filters}, {kernel_sizes}")
        self.filters = filters
        self.kernel_sizes = kernel_sizes

    def build(self, blurry_shape, caption_shape):
        _, height, width, channels = blurry_shape
        if None in (height, width, channels) or caption_shape[-1] is None:
            raise ValueError(f"need static image and caption sizes, got {blurry_shape}, {caption_shape}")
        self.caption_kernel = self.add_weight(name="caption_kernel",
                                              shape=(caption_shape[-1], height * width),
                                              initializer="glorot_uniform")
        self.caption_bias = self.add_weight(name="caption_bias", shape=(height * width,), initializer="zeros")
        self.kernels, self.biases = [], []
        widths = (channels + 2,) + self.filters + (channels,)
        for i, size in enumerate(self.kernel_sizes):
            last = i == len(self.kernel_sizes) - 1
            self.kernels.append(self.add_weight(
                name=f"conv{i + 1}_kernel", shape=(size, size, widths[i], widths[i + 1]),
                initializer="zeros" if last else "glorot_uniform"))
            self.biases.append(self.add_weight(name=f"conv{i + 1}_bias", shape=(widths[i + 1],),
                                               initializer="zeros"))

    def call(self, blurry, caption):
        blurry = ops.cast(blurry, self.compute_dtype)
        height, width = blurry.shape[1], blurry.shape[2]
        plane = caption_plane(ops.cast(caption, self.compute_dtype), self.caption_kernel,
                               self.caption_bias, height, width)
        noise = ops.zeros_like(plane)  # the GAN noise at its mean: a deterministic g
        h = ops.concatenate([noise, plane, blurry], axis=-1)  # [B, H, W, C + 2]
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            h = conv(h, kernel, bias)
            if i < last:
                h = ops.relu(h)
        edges = h  # [B, H, W, C]
        return ops.clip(blurry + edges, 0.0, 1.0), edges

    def compute_output_shape(self, blurry_shape, caption_shape):
        return tuple(blurry_shape), tuple(blurry_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=list(self.filters), kernel_sizes=list(self.kernel_sizes))
        return config

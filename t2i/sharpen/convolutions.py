"""Convolutions, dense layers and the caption plane as functions of explicit weights.

Both players of the sharpening GAN call these with their own kernels;
`frozen` reads the weights through a stop-gradient (the discriminator inside
the generator's loss).
"""

from keras import ops


def conv(x, kernel, bias, strides=1, padding="same", frozen=False):
    """Cross-correlation (what the original's Theano code computed after flipping its kernels)."""
    if frozen:
        kernel, bias = ops.stop_gradient(kernel), ops.stop_gradient(bias)
    return ops.conv(x, kernel, strides=strides, padding=padding, data_format="channels_last") + bias


def dense(x, kernel, bias, frozen=False):
    if frozen:
        kernel, bias = ops.stop_gradient(kernel), ops.stop_gradient(bias)
    return ops.matmul(x, kernel) + bias


def caption_plane(caption, kernel, bias, height, width, frozen=False):
    """caption [B, E] -> ReLU(Linear(E -> H*W)) reshaped to one plane [B, H, W, 1]."""
    plane = ops.relu(dense(caption, kernel, bias, frozen))
    return ops.reshape(plane, (-1, height, width, 1))

"""`Sharpener`: both players of the sharpening GAN as one `keras.Model`."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from typing import TYPE_CHECKING

from t2i.sharpen.discriminator import SharpenDiscriminator
from t2i.sharpen.generator import SharpenGenerator

if TYPE_CHECKING:
    from t2i.sharpen.config import SharpenConfig


@keras.saving.register_keras_serializable(package="t2i")
class Sharpener(keras.Model):
    """Generator and discriminator of the sharpening GAN, trained together.

    Training (`fit` / `train_on_batch` on {"blurry", "caption", "real"}) is a
    standard conditional GAN on the residuals, as in LAPGAN, with the
    non-saturating generator loss; per example:

        d_loss = -log D(real | blurry, y) - log(1 - D(sg[g(blurry, y)] | blurry, y))
        g_loss = -log D(g(blurry, y) | blurry, y)          # D's weights frozen
        loss   = d_loss + g_loss + reconstruction_weight * mean|g(blurry, y) - real|

    (sg: stop gradient). Both players are updated in the same step by one
    optimizer (simultaneous gradient descent): the stop-gradients make the
    gradient of `loss` with respect to the discriminator's weights exactly
    that of `d_loss`, and with respect to the generator's weights exactly
    that of `g_loss` (+ reconstruction). This is why the model needs no
    backend-specific `train_step`: Keras' own step (GradientTape under
    TensorFlow, `jax.grad` under JAX, autograd under PyTorch) computes the
    right gradients, so sharpening trains under every backend with `fit`,
    and the loss is an ordinary `compute_loss`. (The alternatives were a
    `train_step` per backend, or two compiled models with the
    discriminator's `trainable` flag toggled between `train_on_batch`
    calls, which Keras 3 does not support reliably once the step functions
    are traced.)

    The optional reconstruction term (L1, default weight 0) only makes sense
    when the blurry image is a reconstruction of the real one (training with
    `blurry="posterior"`); with prior samples the two images are different
    drawings of the same caption.

    Args:
        image_height, image_width, channels: the image size.
        caption_dim: width E of the caption vector (2 x the caption
            encoder's units for t2i's `caption_vectors`).
        generator_filters, generator_kernel_sizes: see `SharpenGenerator`.
        discriminator_filters, discriminator_kernel_size: see
            `SharpenDiscriminator`.
        reconstruction_weight: weight of the L1 term.

    Call arguments:
        inputs: dict with "blurry" [B, H, W, C] in [0, 1] and "caption"
            [B, E]; for the losses also "real" [B, H, W, C].

    Returns:
        dict with "sharp" (clip(blurry + edges, 0, 1)) and "edges"; with
        "real" also "d_loss", "g_loss", "reconstruction" [B] and "d_real",
        "d_fake" [B], the discriminator's probabilities of "real".
    """

    def __init__(self, image_height: int, image_width: int, channels: int, caption_dim: int,
                 generator_filters=(128, 128), generator_kernel_sizes=(7, 7, 5),
                 discriminator_filters: int = 128, discriminator_kernel_size: int = 5,
                 reconstruction_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if min(image_height, image_width, channels, caption_dim) < 1:
            raise ValueError("image_height, image_width, channels and caption_dim must be >= 1")
        if reconstruction_weight < 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
        self.image_height = image_height
        self.image_width = image_width
        self.channels = channels
        self.caption_dim = caption_dim
        self.generator_filters = tuple(generator_filters)
        self.generator_kernel_sizes = tuple(generator_kernel_sizes)
        self.discriminator_filters = discriminator_filters
        self.discriminator_kernel_size = discriminator_kernel_size
        self.reconstruction_weight = reconstruction_weight

        # === Layers ===
        self.generator = SharpenGenerator(generator_filters, generator_kernel_sizes, name="generator")
        self.discriminator = SharpenDiscriminator(discriminator_filters, discriminator_kernel_size,
                                                  name="discriminator")

        # === Metrics (the total loss is tracked by Keras) ===
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_loss", "g_loss", "reconstruction", "d_real", "d_fake")}
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        image = (None, self.image_height, self.image_width, self.channels)
        caption = (None, self.caption_dim)
        self.generator.build(image, caption)
        self.discriminator.build(image, image, caption)
        self.built = True

    def call(self, inputs, training=False):
        blurry = ops.convert_to_tensor(inputs["blurry"], dtype=self.compute_dtype)
        caption = ops.convert_to_tensor(inputs["caption"], dtype=self.compute_dtype)
        sharp, edges = self.generator(blurry, caption)
        out = {"sharp": sharp, "edges": edges}
        if "real" not in inputs:
            return out
        real = ops.convert_to_tensor(inputs["real"], dtype=self.compute_dtype)
        real_logits = self.discriminator(real, blurry, caption)
        fake_logits = self.discriminator(ops.stop_gradient(sharp), blurry, caption)
        fake_logits_for_g = self.discriminator(sharp, blurry, caption, frozen=True)
        # -log sigmoid(l) = softplus(-l); -log(1 - sigmoid(l)) = softplus(l)
        out["d_loss"] = ops.softplus(-real_logits) + ops.softplus(fake_logits)
        out["g_loss"] = ops.softplus(-fake_logits_for_g)  # non-saturating
        difference = ops.reshape(sharp - real, (ops.shape(real)[0], -1))
        out["reconstruction"] = ops.mean(ops.abs(difference), axis=-1)
        out["d_real"] = ops.sigmoid(real_logits)
        out["d_fake"] = ops.sigmoid(fake_logits)
        return out

    # === Losses and metrics (used by Keras' train_step and test_step) ===
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del x, y, sample_weight, training
        return ops.mean(y_pred["d_loss"] + y_pred["g_loss"]
                        + self.reconstruction_weight * y_pred["reconstruction"])

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        for name, tracker in self.trackers.items():
            tracker.update_state(y_pred[name])
        return self.get_metrics_result()

    # === Inference ===
    def sharpen(self, blurry, captions, batch_size: int = 100) -> np.ndarray:
        """NumPy in, NumPy out: g(blurry, caption) for blurry [B, H, W, C], captions [B, E]."""
        blurry = np.asarray(blurry, np.float32)
        captions = np.asarray(captions, np.float32)
        if len(blurry) != len(captions):
            raise ValueError(f"{len(blurry)} images but {len(captions)} caption vectors")
        out = self.predict({"blurry": blurry, "caption": captions}, batch_size=batch_size, verbose=0)
        return np.asarray(out["sharp"])

    # === Config ===
    @classmethod
    def from_sharpen_config(cls, config: "SharpenConfig") -> "Sharpener":
        return cls(**config.architecture())

    def get_config(self):
        config = super().get_config()
        config.update(
            image_height=self.image_height, image_width=self.image_width, channels=self.channels,
            caption_dim=self.caption_dim, generator_filters=list(self.generator_filters),
            generator_kernel_sizes=list(self.generator_kernel_sizes),
            discriminator_filters=self.discriminator_filters,
            discriminator_kernel_size=self.discriminator_kernel_size,
            reconstruction_weight=self.reconstruction_weight)
        return config

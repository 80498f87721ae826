"""The conditional adversarial sharpening network (spec section 7).

alignDRAW's samples are blurry. The paper (Mansimov et al. 2016, sec. 4.1 and
App. B/C) sharpens its COCO samples afterwards with a conditional GAN trained
on Laplacian-pyramid-style residuals ("edges"; Denton et al. 2015, LAPGAN):
a generator g adds edges to the blurry image, a discriminator tells real from
sharpened images given the blurry image and the caption. Sharpening is not
trained end to end with alignDRAW (the paper calls that a limitation).

Here:

* `SharpenGenerator`: the original's hard-coded generator (`coco/sharpen.py`),
  with any image size and channel count.
* `SharpenDiscriminator`: the original's discriminator is not in its
  repository; this is the shape of Denton et al.'s CIFAR-10 edge-residual
  discriminator (see the class docstring).
* `Sharpener`: both, as one `keras.Model` that trains with the ordinary
  Keras `fit` / `train_on_batch` under every backend (see its docstring).
* The caption vector is t2i's own: the masked mean of the trained model's
  (frozen) bidirectional-LSTM word states, `caption_vectors`. The original
  used the caption's 4800-d skip-thought vector, which this project does not
  have.
* `sharpened_log_weights`: the lower bound with the Bernoulli mean
  sigmoid(c_T) replaced by g(sigmoid(c_T)), as in the paper's "test (after
  sharpening)" column.

A run's sharpener lives in `<run>/sharpen/` (written by `t2i sharpen train`,
`training/sharpen.py`):

    sharpen/config.json                the frozen `SharpenConfig`
    sharpen/sharpener.weights.h5       generator and discriminator weights
    sharpen/samples.png                real / blurry / sharpened, after training
    sharpen/log.csv                    losses every few steps
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
from keras import ops

from t2i.errors import T2IError
from t2i.layers.alignment import masked_mean

SHARPEN_DIR = "sharpen"
CONFIG = "config.json"
WEIGHTS = "sharpener.weights.h5"
BLURRY_SOURCES = ("prior", "posterior")
# Probabilities are kept in [eps, 1 - eps] in the sharpened bound (see
# `sharpened_log_weights`).
BOUND_EPSILON = 1e-5


# === Layers ===

def _conv(x, kernel, bias, strides=1, padding="same", frozen=False):
    """Cross-correlation (what the original's Theano code computed after flipping its kernels)."""
    if frozen:
        kernel, bias = ops.stop_gradient(kernel), ops.stop_gradient(bias)
    return ops.conv(x, kernel, strides=strides, padding=padding, data_format="channels_last") + bias


def _dense(x, kernel, bias, frozen=False):
    if frozen:
        kernel, bias = ops.stop_gradient(kernel), ops.stop_gradient(bias)
    return ops.matmul(x, kernel) + bias


def _caption_plane(caption, kernel, bias, height, width, frozen=False):
    """caption [B, E] -> ReLU(Linear(E -> H*W)) reshaped to one plane [B, H, W, 1]."""
    plane = ops.relu(_dense(caption, kernel, bias, frozen))
    return ops.reshape(plane, (-1, height, width, 1))


@keras.saving.register_keras_serializable(package="t2i")
class SharpenGenerator(keras.layers.Layer):
    """The sharpening GAN's generator, as hard-coded in the original (spec 7).

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
        plane = _caption_plane(ops.cast(caption, self.compute_dtype), self.caption_kernel,
                               self.caption_bias, height, width)
        noise = ops.zeros_like(plane)  # the GAN noise at its mean: a deterministic g
        h = ops.concatenate([noise, plane, blurry], axis=-1)  # [B, H, W, C + 2]
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            h = _conv(h, kernel, bias)
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
        plane = _caption_plane(caption, self.caption_kernel, self.caption_bias, height, width, frozen)
        h = ops.concatenate([image - blurry, blurry, plane], axis=-1)  # [B, H, W, 2C + 1]
        h = ops.relu(_conv(h, self.conv1_kernel, self.conv1_bias, padding="valid", frozen=frozen))
        h = ops.relu(_conv(h, self.conv2_kernel, self.conv2_bias, strides=2, padding="valid", frozen=frozen))
        h = ops.reshape(h, (ops.shape(h)[0], -1))
        return ops.squeeze(_dense(h, self.output_kernel, self.output_bias, frozen), -1)  # [B]

    def compute_output_shape(self, image_shape, blurry_shape=None, caption_shape=None):
        return (image_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config


# === Model ===

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


# === Config and storage ===

@dataclasses.dataclass(frozen=True)
class SharpenConfig:
    """How a run's sharpener was built and trained (saved as `sharpen/config.json`).

    Attributes:
        image_height, image_width, channels: the run's image size.
        caption_dim: the caption vector's width (2 x model.caption_units).
        generator_filters, generator_kernel_sizes: `SharpenGenerator` widths.
        discriminator_filters, discriminator_kernel_size: `SharpenDiscriminator`.
        reconstruction_weight: weight of the L1 term (see `Sharpener`).
        blurry: the blurry training images: "prior" (samples from the
            model's prior for the real image's caption, what sharpening is
            applied to) or "posterior" (the model's reconstruction
            sigmoid(c_T) of the real image, paired with it as in LAPGAN).
        checkpoint: the run's checkpoint the sharpener was trained on.
        learning_rate, beta_1: Adam (DCGAN/LAPGAN-style defaults).
        steps, batch_size: training length.
        seed: initialisation seed; example k of the training stream is drawn
            with seed `seed + k` (so every blurry sample is reproducible).
    """

    image_height: int
    image_width: int
    channels: int
    caption_dim: int
    generator_filters: tuple[int, ...] = (128, 128)
    generator_kernel_sizes: tuple[int, ...] = (7, 7, 5)
    discriminator_filters: int = 128
    discriminator_kernel_size: int = 5
    reconstruction_weight: float = 0.0
    blurry: str = "prior"
    checkpoint: str = "last"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    steps: int = 1000
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "generator_filters", tuple(int(f) for f in self.generator_filters))
        object.__setattr__(self, "generator_kernel_sizes", tuple(int(k) for k in self.generator_kernel_sizes))
        problems = []
        if self.blurry not in BLURRY_SOURCES:
            problems.append(f"blurry must be one of {BLURRY_SOURCES}, got {self.blurry!r}")
        if len(self.generator_kernel_sizes) != len(self.generator_filters) + 1:
            problems.append("generator_kernel_sizes needs one more entry than generator_filters")
        if self.steps < 1 or self.batch_size < 1:
            problems.append(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.learning_rate <= 0 or not 0 <= self.beta_1 < 1:
            problems.append("learning_rate must be > 0 and beta_1 in [0, 1)")
        if self.reconstruction_weight < 0:
            problems.append("reconstruction_weight must be >= 0")
        if min(self.generator_filters, default=1) < 1 or self.discriminator_filters < 1:
            problems.append("filters must be >= 1")
        if problems:
            raise T2IError("sharpen config: " + "; ".join(problems))

    def architecture(self) -> dict:
        """The `Sharpener` constructor arguments."""
        names = ("image_height", "image_width", "channels", "caption_dim", "generator_filters",
                 "generator_kernel_sizes", "discriminator_filters", "discriminator_kernel_size",
                 "reconstruction_weight")
        return {name: getattr(self, name) for name in names}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "SharpenConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise T2IError(f"sharpen config is not JSON: {e}") from None
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise T2IError(f"sharpen config: unknown fields {sorted(unknown)}")
        missing = {f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.name not in d}
        if missing:
            raise T2IError(f"sharpen config: missing fields {sorted(missing)}")
        return cls(**d)


def sharpen_dir(run_dir) -> Path:
    return Path(run_dir) / SHARPEN_DIR


def has_sharpener(run_dir) -> bool:
    d = sharpen_dir(run_dir)
    return (d / CONFIG).is_file() and (d / WEIGHTS).is_file()


def save_sharpener(directory, config: SharpenConfig, sharpener: Sharpener) -> Path:
    """Writes `config.json` and the weights into `directory`; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG).write_text(config.to_json())
    sharpener.save_weights(str(directory / WEIGHTS))
    return directory


def load_sharpener(directory) -> tuple[SharpenConfig, Sharpener]:
    """(config, sharpener with its weights) saved by `save_sharpener`."""
    directory = Path(directory)
    config = SharpenConfig.from_json((directory / CONFIG).read_text())
    sharpener = Sharpener.from_sharpen_config(config)
    try:
        sharpener.load_weights(str(directory / WEIGHTS))
    except Exception as e:  # a truncated or foreign file
        raise T2IError(f"cannot load sharpener weights from {directory / WEIGHTS}: {e}") from None
    return config, sharpener


def load_run_sharpener(run_dir, model=None) -> tuple[SharpenConfig, Sharpener]:
    """The sharpener of a run, or a `T2IError` naming the command that trains one.

    With `model` (the run's `AlignDRAW`), also checks that they fit together.
    """
    if not has_sharpener(run_dir):
        raise T2IError(f"run {run_dir} has no sharpener ({sharpen_dir(run_dir)}/{WEIGHTS}); "
                       f"train one with: t2i sharpen train --run {run_dir}")
    config, sharpener = load_sharpener(sharpen_dir(run_dir))
    if model is not None:
        expected = (model.image_height, model.image_width, model.channels, 2 * model.caption_units)
        got = (config.image_height, config.image_width, config.channels, config.caption_dim)
        if expected != got:
            raise T2IError(f"the sharpener in {sharpen_dir(run_dir)} was built for images/captions "
                           f"{got}, but the run's model has {expected}; retrain it with: "
                           f"t2i sharpen train --run {run_dir}")
    return config, sharpener


# === Using a trained alignDRAW model ===

def caption_vector(model, tokens):
    """Backend tensors: the masked mean of `model`'s word states, [B, 2u] (for graphs)."""
    words, mask = model.caption_states(tokens)
    return masked_mean(words, mask)[0]


def caption_vectors(model, tokens, batch_size: int = 100) -> np.ndarray:
    """The caption vectors of a trained `AlignDRAW`: float32 [B, 2 * caption_units].

    t2i's stand-in for the original's skip-thought vectors: the mean over
    the caption's real words (padding excluded) of the frozen bidirectional
    LSTM's states h^lang, the same vector as the model's "mean" conditioning.
    """
    tokens = np.asarray(tokens)
    parts = [ops.convert_to_numpy(caption_vector(model, tokens[i:i + batch_size]))
             for i in range(0, len(tokens), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def generate_sharpened(model, sharpener: Sharpener, tokens, seeds, batch_size: int = 100) -> dict:
    """`model.generate` followed by sharpening.

    Returns a dict of NumPy arrays: "images" (sharpened) and "blurry"
    [B, H, W, C] in [0, 1], and "alignments" [B, T, L].
    """
    out = model.generate(tokens, seeds, batch_size=batch_size)
    sharp = sharpener.sharpen(out["images"], caption_vectors(model, tokens, batch_size), batch_size)
    return {"images": sharp, "blurry": out["images"], "alignments": out["alignments"]}


def bernoulli_nll_of_probabilities(probs, targets, epsilon: float = BOUND_EPSILON) -> np.ndarray:
    """-log Bernoulli(targets; p) summed per example, p clipped to [eps, 1 - eps] (float64)."""
    p = np.clip(np.asarray(probs, np.float64), epsilon, 1.0 - epsilon)
    x = np.asarray(targets, np.float64)
    per_pixel = -(x * np.log(p) + (1.0 - x) * np.log1p(-p))
    return per_pixel.reshape(len(per_pixel), -1).sum(-1)


def sharpened_log_weights(model, sharpener: Sharpener, images, tokens, num_samples: int = 1,
                          batch_size: int = 100, seed: int = 0,
                          epsilon: float = BOUND_EPSILON) -> np.ndarray:
    """`t2i.metrics.log_weights` with the Bernoulli mean replaced by the sharpened one.

    With the GAN noise fixed at zero the generator is a deterministic
    function g, so (spec 7, paper sec. 4.1)

        log p(x | y) >= E_q[ log Bernoulli(x; g(sigmoid(c_T), y)) ] - KL

    is still a lower bound, of a different model (alignDRAW followed by
    g). The probabilities are clipped to [epsilon, 1 - epsilon] because g's
    clip makes exact 0s and 1s, whose log-likelihood is -inf wherever the
    target differs; epsilon = 1e-5 costs at most -log(1e-5) = 11.5 nats per
    such pixel (the bound then depends on epsilon: compare bounds only at
    the same epsilon). The noise is drawn exactly as in `log_weights` with
    the same `seed`, so the two differ only by the likelihood term.

    Returns:
        float64 [N, num_samples], single-sample bound estimates.
    """
    from t2i import metrics

    images = np.asarray(images, np.float32)
    tokens = np.asarray(tokens)
    if len(images) != len(tokens):
        raise ValueError(f"{len(images)} images but {len(tokens)} captions")
    if not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
    vectors = caption_vectors(model, tokens, batch_size)

    def sharpened_nll(pred):
        blurry = ops.convert_to_numpy(ops.sigmoid(ops.convert_to_tensor(pred["logits"])))
        return bernoulli_nll_of_probabilities(sharpener.sharpen(blurry, vectors, batch_size), images, epsilon)

    return metrics.log_weights(model, images, tokens, num_samples, batch_size, seed, nll=sharpened_nll)

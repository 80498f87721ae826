"""tf.data pipelines for MNIST with captions and for scenes (`t2i.data.scenes`).

`make_datasets(config, tokenizer)` builds:

* `train`: an endless, deterministic stream of batches. Data epoch e
  (counting from `initial_epoch`) is `steps_per_epoch * batch_size` fresh
  composites drawn with `np.random.default_rng([data.seed, e])` from the
  training digits, rejecting held-out compositions. Batches never straddle
  two epochs, so with `model.fit(train, steps_per_epoch=steps_per_epoch,
  initial_epoch=e)` Keras epoch e sees exactly data epoch e, and a run resumed
  at epoch e (`make_datasets(..., initial_epoch=e)`) gets the same batches as
  an uninterrupted run.
* `validation`: `data.validation_examples` composites from the validation
  digits (held-out compositions rejected), drawn once with a fixed seed.
* `test`: `data.test_examples` composites from the MNIST test digits, without
  rejection (held-out compositions included); `test_examples` holds the
  same examples, in the same order, as NumPy arrays (uint8 images, with
  their `Composites` as `layouts`).

Every element is a dict {"images": float32 [B, 60, 60, 1] in [0, 1],
"tokens": int64 [B, L]} (L = 12 for MNIST captions; 0 pads).

Composites are independent draws, so the stream needs no shuffle buffer: a
shuffle would change nothing in distribution and would make the batches of
epoch e depend on where the stream started.

Example:

    tokenizer = CaptionTokenizer(config.text)
    data = make_datasets(config, tokenizer)
    model.fit(data.train, steps_per_epoch=data.steps_per_epoch,
              validation_data=data.validation, epochs=config.train.epochs)
"""

from __future__ import annotations


import tensorflow as tf

from t2i.config import ExperimentConfig
from t2i.data.arrays import (held_out_compositions, mnist_datasets, prepare, prepare_mnist_captions,  # noqa: F401
                             sample_captions)
from t2i.data.datasets import Datasets
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer

MAX_EPOCHS = 2**62  # the endless train streams stop here


def make_datasets(config: ExperimentConfig, tokenizer: CaptionTokenizer,
                  initial_epoch: int = 0) -> Datasets:
    """Builds the train / validation / test pipelines of `config` (a `t2i.data.datasets.Datasets`).

    Args:
        config: the experiment; `data.dataset` "mnist_captions" or "scenes".
        tokenizer: maps caption strings to ids inside the tf.data graph.
        initial_epoch: the first epoch of the train stream (for resuming).

    Raises:
        T2IError: an unsupported dataset, bad held-out text, unusable MNIST.
    """
    if initial_epoch < 0:
        raise T2IError(f"initial_epoch must be >= 0, got {initial_epoch}")
    data = prepare(config)
    batch_size, steps_per_epoch = data.batch_size, data.steps_per_epoch
    image_shape = tuple(data.validation.images.shape[1:])  # [H, W, C]

    def tokenize(images, captions):
        images = tf.cast(images, tf.float32) / 255.0  # same float32 division as the sampler
        return {"images": images, "tokens": tokenizer(captions)}

    # --- train -------------------------------------------------------------------
    def epoch_batches(epoch):
        c = data.epoch(int(epoch))
        for s in range(steps_per_epoch):
            batch = slice(s * batch_size, (s + 1) * batch_size)
            yield c.images[batch], c.captions[batch].astype(object)

    signature = (tf.TensorSpec([batch_size, *image_shape], tf.uint8),
                 tf.TensorSpec([batch_size], tf.string))
    train = (tf.data.Dataset.range(initial_epoch, MAX_EPOCHS)
             .flat_map(lambda e: tf.data.Dataset.from_generator(
                 epoch_batches, args=(e,), output_signature=signature))
             .map(tokenize)
             .prefetch(tf.data.AUTOTUNE))

    # --- validation and test: drawn once ----------------------------------------------
    def finite(c) -> tf.data.Dataset:
        return (tf.data.Dataset.from_tensor_slices((c.images, c.captions.astype(object)))
                .batch(batch_size).map(tokenize).prefetch(tf.data.AUTOTUNE))

    return data.datasets(train=deterministic(train), validation=deterministic(finite(data.validation)),
                         test=deterministic(finite(data.test)))


def deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with deterministic element order (the exact-resume guarantee)."""
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)

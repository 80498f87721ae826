"""tf.data pipelines for MNIST with captions.

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
  rejection (held-out compositions included); `test_composites` holds the
  same examples, in the same order, as NumPy arrays.

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

import dataclasses

import numpy as np
import tensorflow as tf

from t2i.config import ExperimentConfig
from t2i.data.mnist import load_mnist, split_validation
from t2i.data.mnist_captions import (CANVAS_SIZE, CompositeSampler, Composites, all_compositions,
                                     captions_for, draw_held_out, parse_composition)
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer

# Seed-sequence spawn keys: the validation and test draws never coincide with
# a training epoch's `default_rng([seed, e])`.
_VALIDATION_KEY = 1
_TEST_KEY = 2
_MAX_EPOCHS = 2**62


@dataclasses.dataclass
class Datasets:
    """The pipelines of one run.

    Attributes:
        train: endless dataset of {"images", "tokens"} batches of
            `train.batch_size`; `steps_per_epoch` batches per epoch.
        validation: finite dataset, the same batches every pass.
        test: finite dataset over the test composites, in order.
        test_composites: the test examples as NumPy arrays (`Composites`),
            e.g. `held_out` [N] to split test metrics into seen / held-out.
        held_out: canonical held-out compositions, e.g. ("2 left of 9", ...).
        mnist_source: where the digits came from (`MnistDigits.source`).
        steps_per_epoch: batches per training epoch.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    test_composites: Composites
    held_out: tuple[str, ...]
    mnist_source: str
    steps_per_epoch: int


def held_out_compositions(config: ExperimentConfig) -> tuple[str, ...]:
    """The run's held-out compositions, canonical and de-duplicated.

    `data.held_out` if given, else `data.num_held_out` compositions drawn by
    `data.held_out_seed`.
    """
    if config.data.held_out:
        return tuple(dict.fromkeys(str(parse_composition(c)) for c in config.data.held_out))
    if config.data.num_held_out > 0:
        return draw_held_out(config.data.num_held_out, config.data.held_out_seed)
    return ()


def make_datasets(config: ExperimentConfig, tokenizer: CaptionTokenizer,
                  initial_epoch: int = 0) -> Datasets:
    """Builds the train / validation / test pipelines of `config`.

    Args:
        config: the experiment; `data.dataset` must be "mnist_captions".
        tokenizer: maps caption strings to ids inside the tf.data graph.
        initial_epoch: the first epoch of the train stream (for resuming).

    Raises:
        T2IError: an unsupported dataset, bad held-out text, unusable MNIST.
    """
    data, batch_size = config.data, config.train.batch_size
    if data.dataset != "mnist_captions":
        raise T2IError(f"data.dataset {data.dataset!r}: the COCO pipeline is not implemented yet")
    if initial_epoch < 0:
        raise T2IError(f"initial_epoch must be >= 0, got {initial_epoch}")
    held_out = held_out_compositions(config)
    digits = load_mnist(data.mnist_source)
    x_tr, y_tr, x_val, y_val = split_validation(
        digits.x_train, digits.y_train, fraction=data.validation_fraction, seed=data.seed)
    train_sampler = CompositeSampler(x_tr, y_tr, held_out)
    val_sampler = CompositeSampler(x_val, y_val, held_out)
    test_sampler = CompositeSampler(digits.x_test, digits.y_test, held_out)

    steps_per_epoch = config.train.steps_per_epoch or data.examples_per_epoch // batch_size
    if steps_per_epoch < 1:
        raise T2IError(f"data.examples_per_epoch ({data.examples_per_epoch}) is smaller than "
                       f"train.batch_size ({batch_size}): an epoch would have no batches")

    def tokenize(images, captions):
        images = tf.cast(images, tf.float32) / 255.0  # same float32 division as the sampler
        return {"images": images[..., None], "tokens": tokenizer(captions)}

    # --- train -------------------------------------------------------------------
    def epoch_batches(epoch):
        rng = np.random.default_rng([data.seed, int(epoch)])
        c = train_sampler.sample(steps_per_epoch * batch_size, rng, which="seen", dtype="uint8")
        for s in range(steps_per_epoch):
            batch = slice(s * batch_size, (s + 1) * batch_size)
            yield c.images[batch, ..., 0], c.captions[batch].astype(object)

    signature = (tf.TensorSpec([batch_size, CANVAS_SIZE, CANVAS_SIZE], tf.uint8),
                 tf.TensorSpec([batch_size], tf.string))
    train = (tf.data.Dataset.range(initial_epoch, _MAX_EPOCHS)
             .flat_map(lambda e: tf.data.Dataset.from_generator(
                 epoch_batches, args=(e,), output_signature=signature))
             .map(tokenize)
             .prefetch(tf.data.AUTOTUNE))

    # --- validation and test: drawn once ----------------------------------------------
    val = val_sampler.sample(data.validation_examples, _fixed_rng(data.seed, _VALIDATION_KEY),
                             which="seen", dtype="uint8")
    test = test_sampler.sample(data.test_examples, _fixed_rng(data.seed, _TEST_KEY),
                               which="all", dtype="uint8")

    def finite(c: Composites) -> tf.data.Dataset:
        return (tf.data.Dataset.from_tensor_slices((c.images[..., 0], c.captions.astype(object)))
                .batch(batch_size).map(tokenize).prefetch(tf.data.AUTOTUNE))

    test_composites = dataclasses.replace(
        test, images=np.divide(test.images.astype(np.float32), np.float32(255.0)))
    return Datasets(
        train=_deterministic(train), validation=_deterministic(finite(val)),
        test=_deterministic(finite(test)), test_composites=test_composites,
        held_out=held_out, mnist_source=digits.source, steps_per_epoch=steps_per_epoch)


def sample_captions(held_out: tuple[str, ...], n_seen: int = 4) -> tuple[list[str], list[str]]:
    """Fixed captions for per-epoch sample grids.

    Returns:
        (seen, held): `n_seen` captions of compositions that are not held out
        (the same ones for the same `held_out`, spread over the layouts), and
        one caption (the first phrasing) per held-out composition.
    """
    held_set = {parse_composition(c) for c in held_out}
    held = [captions_for(c)[0] for c in held_out]
    preferred = ("1 left of 7", "3 above 8", "0 top right", "5 bottom left",
                 "4 left of 6", "9 above 2", "7 top left", "8 bottom right")
    order = [parse_composition(c) for c in preferred]
    everything = all_compositions()
    order += [everything[i] for i in np.random.default_rng(0).permutation(len(everything))]
    seen: list[str] = []
    for c in dict.fromkeys(order):
        if len(seen) == n_seen:
            break
        if c not in held_set:
            seen.append(captions_for(c)[0])
    return seen, held


def _fixed_rng(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def _deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)

"""MNIST with captions (and scenes) as NumPy batches, for any Keras backend.

The `tf.data` pipeline (`t2i.data.pipeline`) and this module draw the same
examples: both start from `prepare_mnist_captions(config)`, and data epoch e
is `MnistCaptionsData.epoch(e)` in both. This module needs no TensorFlow, so
`KERAS_BACKEND=jax t2i train` runs where TensorFlow is not installed (the JAX
image of a GPU machine, say); captions are tokenised by
`t2i.text_numpy.NumpyCaptionTokenizer`, which gives the same ids as the
in-graph tokenizer.

Example:

    data = make_array_datasets(config, NumpyCaptionTokenizer(config.text))  # a t2i.data.Datasets
    model.fit(data.train, epochs=config.train.epochs, validation_data=data.validation)
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np

from t2i.config import ExperimentConfig
from t2i.data.augment import DigitAugmentation
from t2i.data import catalog
from t2i.data.datasets import Datasets, TestExamples
from t2i.data.mnist import load_mnist, split_validation
from t2i.data.mnist_captions import (CompositeSampler, Composites, all_compositions, captions_for,
                                     draw_held_out, parse_composition)
from t2i.errors import T2IError

# Seed-sequence spawn keys: the validation and test draws never coincide with
# a training epoch's `default_rng([seed, e])`.
_VALIDATION_KEY = 1
_TEST_KEY = 2
# The digit warps of training epoch e come from default_rng([seed, e, _AUGMENT_KEY]),
# a stream of their own: augmentation leaves the composites' layouts and digits unchanged.
_AUGMENT_KEY = 3


def held_out_compositions(config: ExperimentConfig) -> tuple[str, ...]:
    """The run's held-out compositions, canonical and de-duplicated.

    `data.held_out` if given, else `data.mnist.num_held_out` compositions drawn by
    `data.mnist.held_out_seed`.
    """
    if config.data.held_out:
        return tuple(dict.fromkeys(str(parse_composition(c)) for c in config.data.held_out))
    if config.data.mnist.num_held_out > 0:
        return draw_held_out(config.data.mnist.num_held_out, config.data.mnist.held_out_seed)
    return ()


@dataclasses.dataclass
class MnistCaptionsData:
    """The examples of one run, before any input pipeline.

    Attributes:
        held_out: canonical held-out compositions.
        mnist_source: where the digits came from.
        train_sampler: draws training composites (held-out rejected).
        validation: uint8 validation composites, drawn once.
        test: uint8 test composites from MNIST test digits, drawn once.
        steps_per_epoch, batch_size, seed: the epoch structure.
        augmentation: the training digits' warp (`t2i.data.augment`), or
            None (the paper's protocol).
    """

    held_out: tuple[str, ...]
    mnist_source: str
    train_sampler: CompositeSampler
    validation: Composites
    test: Composites
    steps_per_epoch: int
    batch_size: int
    seed: int
    augmentation: DigitAugmentation | None = None

    def datasets(self, train, validation, test) -> Datasets:
        """The `Datasets` around the given pipelines."""
        return mnist_datasets(self, train, validation, test)

    def epoch(self, epoch: int) -> Composites:
        """Data epoch `epoch`: uint8 composites drawn with `default_rng([seed, epoch])`.

        With an augmentation, each pasted digit is warped with parameters from
        `default_rng([seed, epoch, 3])`; the layouts, digits and captions stay
        those of the unaugmented epoch.
        """
        rng = np.random.default_rng([self.seed, int(epoch)])
        transform = None
        if self.augmentation is not None and self.augmentation.active:
            warp_rng = np.random.default_rng([self.seed, int(epoch), _AUGMENT_KEY])
            transform = lambda digits: self.augmentation(digits, warp_rng)  # noqa: E731
        return self.train_sampler.sample(self.steps_per_epoch * self.batch_size, rng,
                                         which="seen", dtype="uint8", digit_transform=transform)


def prepare_mnist_captions(config: ExperimentConfig) -> MnistCaptionsData:
    """Loads the digits and draws the fixed validation and test composites.

    Raises:
        T2IError: an unsupported dataset, bad held-out text, unusable MNIST,
            an epoch without batches.
    """
    data, batch_size = config.data, config.train.batch_size
    if data.dataset != "mnist_captions":
        raise T2IError(f"data.dataset {data.dataset!r}: this is the MNIST-with-captions pipeline "
                       "(COCO has its own: t2i.data.coco.make_coco_datasets)")
    held_out = held_out_compositions(config)
    digits = load_mnist(data.mnist.source)
    x_tr, y_tr, x_val, y_val = split_validation(
        digits.x_train, digits.y_train, fraction=data.mnist.validation_fraction, seed=data.seed)
    steps_per_epoch = config.train.steps_per_epoch or data.examples_per_epoch // batch_size
    if steps_per_epoch < 1:
        raise T2IError(f"data.examples_per_epoch ({data.examples_per_epoch}) is smaller than "
                       f"train.batch_size ({batch_size}): an epoch would have no batches")
    val = CompositeSampler(x_val, y_val, held_out).sample(
        data.validation_examples, fixed_rng(data.seed, _VALIDATION_KEY), which="seen", dtype="uint8")
    test = CompositeSampler(digits.x_test, digits.y_test, held_out).sample(
        data.test_examples, fixed_rng(data.seed, _TEST_KEY), which="all", dtype="uint8")
    return MnistCaptionsData(
        held_out=held_out, mnist_source=digits.source,
        train_sampler=CompositeSampler(x_tr, y_tr, held_out), validation=val, test=test,
        steps_per_epoch=steps_per_epoch, batch_size=batch_size, seed=data.seed,
        augmentation=DigitAugmentation.from_config(data.mnist))


def prepare(config: ExperimentConfig):
    """The examples of a run's dataset, before any pipeline, by its entry in `t2i.data.catalog`:
    `MnistCaptionsData` or `t2i.data.scenes.dataset.ScenesData` (the same interface: `epoch(e)`,
    `validation`, `test`, `steps_per_epoch`, `batch_size`, `datasets(train, validation, test)`)."""
    prepare_dataset = catalog.dataset_of(config).load("prepare")
    if prepare_dataset is None:
        raise T2IError(f"data.dataset {config.data.dataset!r} has pipelines of its own, not examples "
                       "prepared in NumPy (t2i.data.datasets.open_datasets opens it)")
    return prepare_dataset(config)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] (the same division as the tf.data pipeline)."""
    return np.divide(images.astype(np.float32), np.float32(255.0))


Tokenize = Callable[..., np.ndarray]


class TrainStream(keras.utils.PyDataset):
    """Training batches of data epochs `initial_epoch`, `initial_epoch + 1`, ...

    Keras calls `on_epoch_end` after every epoch of `fit`, which moves the
    stream to the next data epoch, so Keras epoch e sees data epoch e exactly
    as in the `tf.data` pipeline (and a resumed run sees the same batches).
    Tokens are padded to `length` so that every batch has one shape (one
    compilation under JAX); the model is invariant to padding.
    """

    def __init__(self, data: MnistCaptionsData, tokenize: Tokenize, length: int,
                 initial_epoch: int = 0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data, self.tokenize, self.length = data, tokenize, length
        self.current_epoch = initial_epoch
        self._cached: tuple[int, Composites] | None = None

    def __len__(self) -> int:
        return self.data.steps_per_epoch

    def _composites(self) -> Composites:
        if self._cached is None or self._cached[0] != self.current_epoch:
            self._cached = (self.current_epoch, self.data.epoch(self.current_epoch))
        return self._cached[1]

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        c = self._composites()
        batch = slice(index * self.data.batch_size, (index + 1) * self.data.batch_size)
        return {"images": to_float(c.images[batch]),
                "tokens": self.tokenize(c.captions[batch].tolist(), length=self.length)}

    def on_epoch_end(self):
        self.current_epoch += 1


class Batches(keras.utils.PyDataset):
    """Fixed composites in order, in batches of `batch_size` (the last one may be short)."""

    def __init__(self, composites: Composites, tokenize: Tokenize, length: int, batch_size: int):
        super().__init__(workers=1, use_multiprocessing=False)
        self.composites, self.tokenize = composites, tokenize
        self.length, self.batch_size = length, batch_size
        self.tokens = tokenize(composites.captions.tolist(), length=length)

    def __len__(self) -> int:
        return -(-len(self.composites) // self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return {"images": to_float(self.composites.images[batch]), "tokens": self.tokens[batch]}


def make_array_datasets(config: ExperimentConfig, tokenize: Tokenize,
                        initial_epoch: int = 0) -> Datasets:
    """Builds `keras.utils.PyDataset` train / validation / test inputs (a `Datasets`).

    Args:
        config: the experiment.
        tokenize: `tokenize(captions, length=L)` -> int64 [B, L], e.g. a
            `NumpyCaptionTokenizer`.
        initial_epoch: the first data epoch of the train stream.
    """
    if initial_epoch < 0:
        raise T2IError(f"initial_epoch must be >= 0, got {initial_epoch}")
    data = prepare(config)
    length = config.text.max_caption_length
    b = config.train.batch_size
    return data.datasets(train=TrainStream(data, tokenize, length, initial_epoch),
                         validation=Batches(data.validation, tokenize, length, b),
                         test=Batches(data.test, tokenize, length, b))


def mnist_datasets(data: MnistCaptionsData, train, validation, test) -> Datasets:
    """The `Datasets` of MNIST-with-captions examples around the given pipelines."""
    c = data.test
    examples = TestExamples(images=c.images, captions=[str(x) for x in c.captions],
                            image_ids=np.arange(len(c), dtype=np.int64), held_out=c.held_out, layouts=c)
    return Datasets(train=train, validation=validation, test=test, test_examples=examples,
                    steps_per_epoch=data.steps_per_epoch, held_out=data.held_out,
                    source=data.mnist_source, grid_captions=sample_captions(data.held_out),
                    mnist_source=data.mnist_source)


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


def fixed_rng(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))

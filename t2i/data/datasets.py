"""One interface to a run's data, whatever the dataset and the Keras backend.

`open_datasets(config)` returns `(config, tokenizer, Datasets)`: training,
evaluation and sharpening all take their examples from it, and none of them
asks which dataset or which kind of pipeline it got.

* MNIST with captions on TensorFlow: `tf.data` pipelines
  (`t2i.data.pipeline.make_datasets`) with the in-graph `CaptionTokenizer`;
* MNIST with captions on another backend: `keras.utils.PyDataset`s
  (`t2i.data.arrays.make_array_datasets`) with `NumpyCaptionTokenizer`, the
  same examples and ids without TensorFlow;
* COCO: `tf.data` pipelines (`t2i.data.coco.make_coco_datasets`, TensorFlow
  only); the returned config then holds the vocabulary built from the
  training captions (`resolve_coco_config`).

Example:

    config, tokenizer, data = open_datasets(config)
    model.fit(data.train, steps_per_epoch=data.steps_per_epoch,
              validation_data=data.validation, epochs=config.train.epochs)
    images, captions, held, layouts = data.test_examples.evaluation_set(1000)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from t2i.data import catalog
from t2i.errors import T2IError


@dataclasses.dataclass
class TestExamples:
    """The test examples as NumPy arrays, one row per (caption, image) pair.

    Attributes:
        images: uint8 [N, H, W, C], in the order of the `test` pipeline.
        captions: N caption strings.
        image_ids: int64 [N]: rows with the same id show the same image
            (COCO's 5 captions per image; MNIST composites: 0..N-1).
        held_out: bool [N], whether the row's composition was held out of
            training (all False for COCO).
        layouts: for MNIST with captions, the `Composites` of the rows (caption
            type, digits, places: what caption fidelity checks); None where
            captions have no known layout (COCO).
    """

    __test__ = False  # not a pytest test class

    images: np.ndarray
    captions: list
    image_ids: np.ndarray
    held_out: np.ndarray
    layouts: Any = None

    def __len__(self) -> int:
        return len(self.captions)

    def first_per_image(self) -> np.ndarray:
        """Row of the first caption of every image, in order."""
        return np.sort(np.unique(self.image_ids, return_index=True)[1])

    def evaluation_set(self, n: int):
        """The first `n` images with their first caption each.

        Returns:
            (images float32 [n', H, W, C] in [0, 1], captions [n'], held_out
            bool [n'], layouts (`Composites` of the rows, or None)), with
            n' = min(n, number of images).
        """
        rows = self.first_per_image()[:n]
        images = self.images[rows].astype(np.float32) / np.float32(255.0)
        layouts = None
        if self.layouts is not None:
            layouts = dataclasses.replace(
                self.layouts, **{f.name: getattr(self.layouts, f.name)[rows]
                                 for f in dataclasses.fields(self.layouts)})
        return images, [str(self.captions[i]) for i in rows], np.asarray(self.held_out[rows], bool), layouts


@dataclasses.dataclass
class Datasets:
    """The input pipelines of one run.

    Attributes:
        train: endless stream of {"images": float32 [B, H, W, C] in [0, 1],
            "tokens": int64 [B, L]} batches, `steps_per_epoch` per epoch; a
            `tf.data.Dataset` or a `keras.utils.PyDataset` (both go to
            `model.fit`; `train_batches` iterates either).
        validation: finite, the same batches every pass.
        test: finite, over `test_examples` in order.
        test_examples: `TestExamples`.
        steps_per_epoch: batches per training epoch.
        held_out: canonical held-out compositions, e.g. ("2 left of 9", ...);
            () for COCO.
        source: where the examples came from, e.g. "bundled:mnist-10k.npz"
            or "coco json: /data/coco".
        grid_captions: (seen, held_out) captions for per-epoch sample grids.
        mnist_source: where MNIST digits came from (None for COCO).
        report: skipped input, {kind: {"count", "examples"[, ...]}} (COCO;
            empty for MNIST, which skips nothing).
        stats: counts for information (COCO: images and captions per split...).
        cache: {split: {"path", "status"}} where an image cache is used.
    """

    train: Any
    validation: Any
    test: Any
    test_examples: TestExamples
    steps_per_epoch: int
    held_out: tuple = ()
    source: str = ""
    grid_captions: tuple = ((), ())
    mnist_source: str | None = None
    report: dict = dataclasses.field(default_factory=dict)
    stats: dict = dataclasses.field(default_factory=dict)
    cache: dict = dataclasses.field(default_factory=dict)

    def train_batches(self) -> Iterator[dict]:
        """The training stream as NumPy batches, endlessly, from data epoch `initial_epoch`."""
        if hasattr(self.train, "as_numpy_iterator"):
            yield from self.train.as_numpy_iterator()
            return
        while True:
            for i in range(len(self.train)):
                yield self.train[i]
            self.train.on_epoch_end()


def open_datasets(config, initial_epoch: int = 0):
    """(config, tokenizer, `Datasets`) for the config's dataset and the Keras backend.

    Args:
        config: the experiment (`t2i.config.ExperimentConfig`).
        initial_epoch: the first data epoch of the train stream (resuming).

    Returns:
        The config (COCO: with the vocabulary filled in), the tokenizer that
        the pipelines use (`CaptionTokenizer` or `NumpyCaptionTokenizer`,
        same ids) and the `Datasets`.

    Raises:
        T2IError: COCO on a backend other than TensorFlow, and whatever the
            dataset's own factory raises.
    """
    import keras

    entry = catalog.dataset_of(config)
    on_tf = keras.backend.backend() == "tensorflow"
    if entry.pipelines:  # a dataset with pipelines of its own (COCO), in tf.data
        if not on_tf:
            raise T2IError(f"the {entry.name} input pipeline runs in tf.data: "
                           f"train {entry.name} with KERAS_BACKEND=tensorflow (JAX runs the datasets "
                           f"prepared in NumPy: {', '.join(n for n, e in catalog.DATASETS.items() if e.prepare)})")
        return entry.load("pipelines")(config, initial_epoch)
    if on_tf:
        from t2i.data.pipeline import make_datasets
        from t2i.text import CaptionTokenizer

        tokenizer = CaptionTokenizer(config.text)
        return config, tokenizer, make_datasets(config, tokenizer, initial_epoch=initial_epoch)
    from t2i.data.arrays import make_array_datasets
    from t2i.text_numpy import NumpyCaptionTokenizer

    tokenizer = NumpyCaptionTokenizer(config.text)
    return config, tokenizer, make_array_datasets(config, tokenizer, initial_epoch=initial_epoch)

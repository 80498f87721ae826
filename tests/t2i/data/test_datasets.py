"""The one dataset interface: `TestExamples`, `Datasets.train_batches`, `open_datasets`."""

import dataclasses

import numpy as np
import pytest

from t2i import config as configs
from t2i.data.datasets import Datasets, TestExamples, open_datasets
from t2i.data.mnist_captions import Composites
from t2i.data.pipeline import sample_captions

TINY = {"data.examples_per_epoch": 16, "data.validation_examples": 8, "data.test_examples": 6,
        "train.batch_size": 8, "data.mnist.source": "bundled"}


def _layouts(n):
    ints = np.arange(n, dtype=np.int64)
    return Composites(images=np.zeros((n, 2, 2, 1), np.uint8), captions=np.array([f"c{i}" for i in range(n)]),
                      types=ints % 8, a=ints, b=-ints, held_out=ints % 2 == 1, index_a=ints, index_b=ints)


def test_evaluation_set_takes_the_first_caption_of_each_image():
    images = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
    ex = TestExamples(images=images, captions=["a0", "a1", "b0", "b1", "c0"],
                      image_ids=np.array([7, 7, 3, 3, 9]), held_out=np.array([0, 0, 1, 1, 0], bool),
                      layouts=_layouts(5))
    got_images, captions, held, layouts = ex.evaluation_set(2)
    assert captions == ["a0", "b0"] and held.tolist() == [False, True]
    np.testing.assert_array_equal(got_images, (images[[0, 2]].astype(np.float64) / 255.0).astype(np.float32))
    assert got_images.dtype == np.float32
    assert layouts.a.tolist() == [0, 2] and layouts.captions.tolist() == ["c0", "c2"]
    assert len(ex.evaluation_set(100)[1]) == 3  # one per image, never more
    assert ex.evaluation_set(2)[3] is not None
    assert dataclasses.replace(ex, layouts=None).evaluation_set(2)[3] is None


class _Stream:
    """A two-batch-per-epoch PyDataset look-alike that counts its epochs."""

    def __init__(self):
        self.epoch = 0

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"step": (self.epoch, i)}

    def on_epoch_end(self):
        self.epoch += 1


def test_train_batches_runs_a_pydataset_over_epochs():
    data = Datasets(train=_Stream(), validation=None, test=None, test_examples=None, steps_per_epoch=2)
    stream = data.train_batches()
    assert [next(stream)["step"] for _ in range(5)] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]


def test_open_datasets_gives_mnist_its_grid_captions_and_layouts():
    cfg = configs.tiny().override(TINY)
    config, tokenizer, data = open_datasets(cfg)
    assert config == cfg and isinstance(data, Datasets)
    assert data.grid_captions == sample_captions(data.held_out)
    assert data.source == data.mnist_source == "bundled:mnist-10k.npz"
    ex = data.test_examples
    assert ex.images.dtype == np.uint8 and len(ex) == 6 and ex.layouts is not None
    np.testing.assert_array_equal(ex.image_ids, np.arange(6))
    batch = next(data.train_batches())
    assert batch["images"].shape == (8, 60, 60, 1) and batch["tokens"].shape[0] == 8
    assert tokenizer.encode(list(ex.captions)).shape[0] == 6


def test_open_datasets_refuses_coco_off_tensorflow(monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(Exception, match="KERAS_BACKEND=tensorflow"):
        open_datasets(configs.coco_32())

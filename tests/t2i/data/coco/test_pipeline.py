"""Tests for t2i.data.coco.pipeline: the training stream (pairs, buckets, epochs, resuming), the length
filter, validation and test examples."""

import collections
import math

import numpy as np
import tensorflow as tf

from t2i.data import coco
from tests.fixtures.coco import EXTRA_WORDS
from tests.t2i.data.coco.conftest import BATCH, PALETTE, decode, expected_train_captions, first_five, take, words


def colour_of(pixel):
    pixel = np.asarray(pixel, float)
    return min(PALETTE, key=lambda name: np.sum((np.asarray(PALETTE[name]) - pixel) ** 2))


def test_train_epoch_pairs_shapes_and_buckets(fx, data, tokenizer):
    spec = data.train.element_spec
    assert set(spec) == {"images", "tokens"}
    assert spec["images"].shape.as_list() == [None, 32, 32, 3] and spec["images"].dtype == tf.float32
    assert spec["tokens"].shape.as_list() == [None, None] and spec["tokens"].dtype == tf.int64
    expected = expected_train_captions(fx)
    by_length = collections.Counter(len(words(c)) for c in expected)
    assert sorted(by_length) == [7, 10, 11]  # the 6- and 36-token captions are filtered out
    assert data.steps_per_epoch == sum(math.ceil(n / BATCH) for n in by_length.values()) == 9
    assert data.held_out == () and data.source == f"coco json: {fx.root}"

    seen = []
    for batch in take(data.train, data.steps_per_epoch):
        images, tokens = batch["images"], batch["tokens"]
        assert images.dtype == np.float32 and images.shape[1:] == (32, 32, 3) and 1 <= len(images) <= BATCH
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert tokens.dtype == np.int64 and (tokens > 0).all()  # one length per bucket: no padding
        for image, caption in zip(images, decode(tokenizer, tokens)):
            colour = next(w for w in caption.split() if w in PALETTE)
            assert colour_of(image[:2, :2].mean((0, 1)) * 255) == colour, caption
            assert (image[15:17, 15:17] > 0.8).all(), caption  # the white shape in the middle
            seen.append(caption)
    assert collections.Counter(seen) == collections.Counter(" ".join(words(c)) for c in expected)
    assert not any(w in s for s in seen for w in EXTRA_WORDS)  # captions beyond the first five


def test_epochs_are_deterministic_different_and_resumable(config, tokenizer, data):
    n = data.steps_per_epoch
    stream = take(data.train, 2 * n)
    epoch0, epoch1 = stream[:n], stream[n:]
    again = take(coco.make_coco_datasets(config, tokenizer).train, n)
    resumed = take(coco.make_coco_datasets(config, tokenizer, initial_epoch=1).train, n)
    for a, b in zip(epoch0, again):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        np.testing.assert_array_equal(a["images"], b["images"])
    for a, b in zip(epoch1, resumed):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        np.testing.assert_array_equal(a["images"], b["images"])
    assert [b["tokens"].tolist() for b in epoch0] != [b["tokens"].tolist() for b in epoch1]
    # Each epoch is a full pass: the same examples in another order.
    flat = lambda e: sorted(map(tuple, np.concatenate([b["tokens"].ravel() for b in e]).reshape(-1, 1)))
    assert len(flat(epoch0)) == len(flat(epoch1))


def test_length_filter_validation_and_test_examples(fx, config, tokenizer):
    cfg = config.override({"data.coco.min_caption_length": 8, "data.coco.max_train_caption_length": 11,
                           "data.coco.bucketing": False})
    data = coco.make_coco_datasets(cfg, tokenizer)
    expected = expected_train_captions(fx, 8, 11)
    assert data.stats["train_examples"] == len(expected) == 24 + 8  # the 10-token captions only
    assert data.steps_per_epoch == math.ceil(len(expected) / BATCH)
    seen = [c for b in take(data.train, data.steps_per_epoch) for c in decode(tokenizer, b["tokens"])]
    assert sorted(seen) == sorted(" ".join(words(c)) for c in expected)

    # Validation keeps every length (6 and 36 tokens too); unknown words read as OOV.
    vocab = set(config.text.vocabulary)
    val_images = fx.in_folder("val2014")[:6]
    expected_val = [" ".join(w if w in vocab else "[UNK]" for w in words(c)) for im in val_images
                    for c in first_five(im)]
    val = take(data.validation)
    assert [c for b in val for c in decode(tokenizer, b["tokens"])] == expected_val
    assert [len(b["tokens"]) for b in val] == [8, 8, 8, 6]

    test_images = fx.in_folder("val2014")[6:]
    ex = data.test_examples
    assert ex.images.dtype == np.uint8 and ex.images.shape == (30, 32, 32, 3)
    assert ex.captions == [c for im in test_images for c in first_five(im)]
    assert ex.image_ids.tolist() == [im.image_id for im in test_images for _ in range(5)]
    for image, image_id in zip(ex.images, ex.image_ids):
        assert colour_of(image[:2, :2].mean((0, 1))) == fx.by_id(image_id).colour
    assert coco.spread_captions(data.test_examples, 3) == [first_five(test_images[k])[0] for k in (0, 2, 5)]
    test = np.concatenate([b["images"] for b in take(data.test)])
    np.testing.assert_array_equal(test, ex.images.astype(np.float32) / 255.0)

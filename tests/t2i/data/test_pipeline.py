"""Tests for t2i.data.pipeline on a tiny synthetic MNIST whose pixels name their digit."""

import re

import numpy as np
import pytest

from t2i import config as configs
from t2i.data.mnist import split_validation
from t2i.data.mnist_captions import CompositeSampler, draw_held_out, parse_composition
from t2i.data.arrays import to_float
from t2i.data.pipeline import make_datasets, sample_captions
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer

N_TRAIN, N_TEST = 240, 50
TEST_VALUE = 255  # every test digit is a solid block of 255; train digit i is a block of i + 1


@pytest.fixture(scope="module")
def mnist_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist") / "tiny-mnist.npz"
    block = np.ones((28, 28), np.uint8)
    np.savez(path,
             x_train=np.stack([block * (i + 1) for i in range(N_TRAIN)]),
             y_train=np.arange(N_TRAIN) % 10,
             x_test=np.stack([block * TEST_VALUE for _ in range(N_TEST)]),
             y_test=np.arange(N_TEST) % 10)
    return str(path)


@pytest.fixture(scope="module")
def config(mnist_file):
    return configs.tiny().override({"data.mnist.source": mnist_file, "data.examples_per_epoch": 32,
                                    "data.validation_examples": 30, "data.test_examples": 200,
                                    "data.seed": 5})


@pytest.fixture(scope="module")
def tokenizer(config):
    return CaptionTokenizer(config.text)


def take(ds, n):
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(n)]


def decode(tokenizer, tokens):
    vocab = tokenizer.vocabulary
    return [" ".join(vocab[t] for t in row if t != 0) for row in tokens]


def composition(caption):
    """Canonical composition of a caption, parsed independently of the library."""
    m = re.fullmatch(r"the digit (\d) is (?:on|at) the (.+) of the (?:digit (\d)|image) \.", caption)
    assert m and len(caption.split()) == 12, caption
    x, where, y = m.groups()
    return {"left": f"{x} left of {y}", "right": f"{y} left of {x}", "top": f"{x} above {y}",
            "bottom": f"{y} above {x}"}.get(where if y else None, f"{x} {where}")


def digit_ids(images):
    """The set of digit pixel values used by float images."""
    values = np.unique(np.round(images * 255).astype(int))
    return set(values.tolist()) - {0}


def test_shapes_dtypes_and_tokens_decode(config, tokenizer):
    data = make_datasets(config, tokenizer)
    assert data.steps_per_epoch == 32 // 8 and data.mnist_source == config.data.mnist.source
    assert data.held_out == config.data.held_out
    spec = data.train.element_spec
    assert set(spec) == {"images", "tokens"}
    assert spec["images"].shape.as_list() == [8, 60, 60, 1]
    batch = take(data.train, 1)[0]
    assert batch["images"].dtype == np.float32 and batch["images"].shape == (8, 60, 60, 1)
    assert batch["tokens"].dtype == np.int64 and batch["tokens"].shape == (8, 12)
    assert 0.0 <= batch["images"].min() and batch["images"].max() <= 240 / 255 + 1e-7
    captions = decode(tokenizer, batch["tokens"])
    # The batch is the first 8 composites of epoch 0, drawn with default_rng([seed, 0]).
    x_tr, y_tr, _, _ = split_validation(*_train_digits(config), config.data.mnist.validation_fraction, 5)
    expected = CompositeSampler(x_tr, y_tr, config.data.held_out).sample(
        32, np.random.default_rng([5, 0]), which="seen")
    assert captions == list(expected.captions[:8])
    np.testing.assert_array_equal(batch["images"], expected.images[:8])
    # Each caption names the digits in the picture (pixel value i + 1 is digit i, label i % 10).
    for img, caption in zip(batch["images"], captions):
        labels = sorted({(v - 1) % 10 for v in digit_ids(img)})
        assert sorted(set(int(ch) for ch in re.findall(r"\b\d\b", caption))) == labels


def _train_digits(config):
    with np.load(config.data.mnist.source) as f:
        return f["x_train"], f["y_train"]


def test_train_stream_is_deterministic_and_resumable(config, tokenizer):
    steps = 4
    first = take(make_datasets(config, tokenizer).train, 3 * steps)
    again = take(make_datasets(config, tokenizer).train, 3 * steps)
    resumed = take(make_datasets(config, tokenizer, initial_epoch=1).train, 2 * steps)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["images"], b["images"])
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
    for a, b in zip(first[steps:], resumed):
        np.testing.assert_array_equal(a["images"], b["images"])
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
    # Every epoch is fresh data.
    epochs = [np.concatenate([b["images"] for b in first[e * steps:(e + 1) * steps]]) for e in range(3)]
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    # Another data seed gives another stream.
    other = take(make_datasets(config.override({"data.seed": 6}), tokenizer).train, 1)[0]
    assert not np.array_equal(other["images"], first[0]["images"])


def test_explicit_steps_per_epoch_sets_the_epoch_length(config, tokenizer):
    cfg = config.override({"train.steps_per_epoch": 2})
    data = make_datasets(cfg, tokenizer)
    assert data.steps_per_epoch == 2
    from_zero = take(data.train, 4)
    from_one = take(make_datasets(cfg, tokenizer, initial_epoch=1).train, 1)
    np.testing.assert_array_equal(from_zero[2]["images"], from_one[0]["images"])


def test_no_held_out_composition_in_train_or_validation(config, tokenizer):
    cfg = config.override({"data.held_out": (), "data.mnist.num_held_out": 80, "data.mnist.held_out_seed": 1})
    data = make_datasets(cfg, tokenizer)
    assert data.held_out == draw_held_out(80, 1)
    held = set(data.held_out)
    train = take(data.train, 6 * data.steps_per_epoch)
    val = take(data.validation, 100)
    for batches in (train, val):
        comps = [composition(c) for b in batches for c in decode(tokenizer, b["tokens"])]
        assert comps and not held & set(comps)
    # Held-out compositions are a third of all draws, so rejection really happened...
    test_comps = [composition(c) for c in data.test_examples.captions]
    assert 0.15 < np.mean([c in held for c in test_comps]) < 0.5
    # ...and the test set, drawn without rejection, flags them.
    np.testing.assert_array_equal(data.test_examples.held_out, [c in held for c in test_comps])


def test_validation_and_test_come_from_their_own_digits(config, tokenizer):
    data = make_datasets(config, tokenizer)
    x_tr, _, x_val, _ = split_validation(*_train_digits(config), config.data.mnist.validation_fraction, 5)
    train_ids = {int(x[0, 0]) for x in x_tr}
    val_ids = {int(x[0, 0]) for x in x_val}

    train = take(data.train, 3 * data.steps_per_epoch)
    assert set().union(*(digit_ids(b["images"]) for b in train)) <= train_ids

    val = take(data.validation, 100)
    assert [len(b["images"]) for b in val] == [8, 8, 8, 6]  # the last batch is kept
    assert set().union(*(digit_ids(b["images"]) for b in val)) <= val_ids
    val_again = take(make_datasets(config, tokenizer).validation, 100)
    for a, b in zip(val, val_again):
        np.testing.assert_array_equal(a["images"], b["images"])

    test = take(data.test, 100)
    images = np.concatenate([b["images"] for b in test])
    assert images.shape == (200, 60, 60, 1)
    assert set(np.unique(images).tolist()) == {0.0, 1.0}  # only test digits (all 255)
    tc = data.test_examples
    np.testing.assert_array_equal(images, to_float(tc.images))
    assert decode(tokenizer, np.concatenate([b["tokens"] for b in test])) == list(tc.captions)
    assert tc.held_out.shape == (200,) and tc.held_out.dtype == bool


def test_coco_is_refused(tokenizer):
    with pytest.raises(T2IError, match="data.dataset .coco. has pipelines of its own"):
        make_datasets(configs.coco_32(), tokenizer)


def test_bad_held_out_text_is_refused(config, tokenizer):
    with pytest.raises(T2IError, match="'2 next to 9'"):
        make_datasets(config.override({"data.held_out": ("2 next to 9",)}), tokenizer)


def test_sample_captions():
    held = ("2 left of 9", "6 above 2", "4 top left")
    seen, held_caps = sample_captions(held, n_seen=4)
    assert held_caps == ["the digit 2 is on the left of the digit 9 .",
                         "the digit 6 is at the top of the digit 2 .",
                         "the digit 4 is at the top left of the image ."]
    assert len(seen) == len(set(seen)) == 4 and (seen, held_caps) == sample_captions(held, n_seen=4)
    assert not {composition(c) for c in seen} & set(held)
    # A caption that would have been picked is skipped once it is held out.
    blocked = tuple(composition(c) for c in seen[:2])
    seen2, _ = sample_captions(blocked, n_seen=4)
    assert not {composition(c) for c in seen2} & set(blocked) and len(seen2) == 4
    many = tuple(str(parse_composition(composition(c))) for c in sample_captions((), n_seen=20)[0])
    assert len(set(many)) == 20

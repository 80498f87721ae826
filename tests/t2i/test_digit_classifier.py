import json
from importlib import resources

import numpy as np
import pytest

from t2i.data.mnist import load_mnist
from t2i.data.mnist_captions import CompositeSampler
from t2i.digit_classifier import (caption_fidelity, expected_digits, load_classifier, read_digits,
                                  train_classifier)


@pytest.fixture(scope="module")
def composites():
    digits = load_mnist("bundled")
    return CompositeSampler(digits.x_test, digits.y_test, ()).sample(1000, np.random.default_rng(1), which="all")


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_expected_digits_follow_the_templates():
    assert expected_digits([0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, -1, -1, -1, -1]) == [
        [("left", 1), ("right", 9)], [("left", 2), ("right", 8)], [("top", 3), ("bottom", 7)],
        [("top", 4), ("bottom", 6)], [("top left", 5)], [("bottom right", 6)], [("top right", 7)],
        [("bottom left", 8)]]


def test_fidelity_ceiling_and_floors(classifier, composites):
    c = composites
    real = caption_fidelity(classifier, c.images, c.types, c.a, c.b)
    assert real.mean() >= 0.94, real.mean()  # the ceiling: real test composites
    perm = np.random.default_rng(2).permutation(len(real))
    shuffled = caption_fidelity(classifier, c.images, c.types[perm], c.a[perm], c.b[perm])
    assert shuffled.mean() < 0.15, shuffled.mean()  # near chance
    blank = caption_fidelity(classifier, np.zeros_like(c.images), c.types, c.a, c.b)
    assert blank.mean() < 0.15, blank.mean()
    # A digit in the wrong place does not count: swap left and right digits of "a left of b".
    pairs = np.flatnonzero((c.types == 0) & (c.a != c.b))[:50]
    swapped = caption_fidelity(classifier, c.images[pairs], c.types[pairs], c.b[pairs], c.a[pairs])
    assert swapped.mean() < 0.15


def test_shipped_weights_record_their_accuracy():
    info = json.loads((resources.files("t2i.data") / "digit_classifier.json").read_text())
    assert info["test_accuracy_shifted"] >= 0.95 and info["params"] == load_classifier().count_params()


def test_training_learns():
    digits = load_mnist("bundled")
    _, accuracy = train_classifier(digits.x_train[:2000], digits.y_train[:2000], digits.x_test[:500],
                                   digits.y_test[:500], epochs=4)
    assert accuracy > 0.7, accuracy


def test_read_digits_gives_each_place_in_caption_order(classifier, composites):
    c = composites
    read = read_digits(classifier, c.images[:200], c.types[:200], c.a[:200], c.b[:200])
    wanted = expected_digits(c.types[:200], c.a[:200], c.b[:200])
    assert [len(r) for r in read] == [len(w) for w in wanted]
    agree = np.mean([r == [d for _, d in w] for r, w in zip(read, wanted)])
    assert agree > 0.9
    right = caption_fidelity(classifier, c.images[:200], c.types[:200], c.a[:200], c.b[:200])
    assert np.array_equal(right, [r == [d for _, d in w] for r, w in zip(read, wanted)])


def test_caption_fidelity_refuses_a_read_of_other_images(classifier, composites):
    c = composites
    read = read_digits(classifier, c.images[:20], c.types[:20], c.a[:20], c.b[:20])
    right = caption_fidelity(classifier, c.images[:20], c.types[:20], c.a[:20], c.b[:20], read=read)
    assert np.array_equal(right, caption_fidelity(classifier, c.images[:20], c.types[:20], c.a[:20], c.b[:20]))
    with pytest.raises(ValueError, match="read has 19 entries for 20 images"):
        caption_fidelity(classifier, c.images[:20], c.types[:20], c.a[:20], c.b[:20], read=read[:19])
    pair, corner = int(np.flatnonzero(c.types[:20] < 4)[0]), int(np.flatnonzero(c.types[:20] >= 4)[0])
    swapped = [read[corner] if i == pair else x for i, x in enumerate(read)]  # one digit read for two places
    with pytest.raises(ValueError, match="read does not match the captions"):
        caption_fidelity(classifier, c.images[:20], c.types[:20], c.a[:20], c.b[:20], read=swapped)

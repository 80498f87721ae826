"""The shipped scenes attribute classifier (t2i.scene_classifier) on fresh renders."""

import json
from importlib import resources

import numpy as np

from t2i import scene_classifier as sc
from t2i.data.scenes.sampler import SceneSampler


def test_labels_follow_the_rendered_attributes():
    table = {"object": np.array([3, 3]), "background": np.array([1, 2]), "colour": np.array([4, -1]),
             "count": np.array([1, 2]), "position": np.array([1, -1]), "vintage": np.array([True, False])}
    got = sc.labels(table)
    assert got["colour"].tolist() == [sc.NOT_SHOWN, sc.NOT_SHOWN]  # sepia hides it; no colour named
    assert got["position"].tolist() == [1, 2] and got["count"].tolist() == [0, 1]
    assert got["vintage"].tolist() == [1, 0] and set(got) == set(sc.HEADS)


def test_gaussian_blur_matches_scipy():
    from scipy import ndimage

    images = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    for sigma in (0.3, 1.0, 2.0):
        want = np.stack([ndimage.gaussian_filter(x.astype(np.float64), (sigma, sigma, 0), mode="reflect")
                         for x in images])
        # float32 sums of at most 2 x 17 terms of values in [0, 1]
        np.testing.assert_allclose(sc.gaussian_blur(images, sigma), want, atol=40 * np.finfo(np.float32).eps)
    np.testing.assert_array_equal(sc.gaussian_blur(images, 0.0), images)


def test_blur_augment_blurs_a_share_by_widths_within_its_bound():
    images = np.random.default_rng(1).random((300, 32, 32, 3)).astype(np.float32)
    got = sc.blur_augment(images, np.random.default_rng(2), max_sigma=1.5, share=0.5)
    sharp = np.all(got == images, axis=(1, 2, 3))
    assert 0.4 < sharp.mean() < 0.6
    # Each blurred image is one of the allowed widths (0.1 .. 1.5, in tenths) applied to its original.
    for i in np.flatnonzero(~sharp)[:5]:
        errors = [np.abs(sc.gaussian_blur(images[i:i + 1], s / 10)[0] - got[i]).max() for s in range(1, 16)]
        assert min(errors) < 1e-6


def test_a_named_colour_is_read_among_the_seven_colours():
    class Fixed:
        def predict(self, images, batch_size=None, verbose=0):
            colour = np.zeros((2, sc.HEADS["colour"]))
            colour[:, sc.NOT_SHOWN], colour[:, 2] = 5.0, 1.0
            return {h: np.zeros((2, n)) if h != "colour" else colour for h, n in sc.HEADS.items()}

    assert sc.read_attributes(Fixed(), np.zeros((2, 32, 32, 3)))["colour"].tolist() == [sc.NOT_SHOWN] * 2
    got = sc.read_attributes(Fixed(), np.zeros((2, 32, 32, 3)), colour_named=[True, False])
    assert got["colour"].tolist() == [2, sc.NOT_SHOWN]


def test_the_shipped_classifier_reads_fresh_scenes_as_its_record_says():
    """1,000 fresh renders (not those of its record) against the accuracy it ships with
    (scene_classifier.json, 6,000 renders): within 3 standard errors of this estimate."""
    record = json.loads((resources.files("t2i.data") / "scene_classifier.json").read_text())
    classifier = sc.load_classifier()
    images, targets = sc.training_scenes(SceneSampler(), 1000, np.random.default_rng(12345))
    accuracy = sc.accuracy(classifier, images, targets)
    shown = int((targets["colour"] != sc.NOT_SHOWN).sum())
    for name, recorded in record["accuracy_on_fresh_renders"].items():
        n = shown if name == "colour_where_shown" else 1000
        margin = 3 * np.sqrt(max(recorded * (1 - recorded), 0.01 * 0.99) / n)
        assert accuracy[name] >= recorded - margin, (name, accuracy[name], recorded)
    # ... and on the same renders blurred, as its record says for that blur (sigma 1.5 px)
    blurred = sc.accuracy(classifier, sc.gaussian_blur(images, 1.5), targets)
    for name, recorded in record["accuracy_on_blurred_renders"]["sigma 1.5"].items():
        n = shown if name == "colour_where_shown" else 1000
        margin = 3 * np.sqrt(max(recorded * (1 - recorded), 0.01 * 0.99) / n)
        assert blurred[name] >= recorded - margin, (name, blurred[name], recorded)

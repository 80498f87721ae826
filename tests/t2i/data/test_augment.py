"""MNIST digit augmentation: the warp against SciPy and closed forms, and its place in the pipelines."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from t2i import config as C
from t2i.data import augment
from t2i.data.arrays import make_array_datasets, prepare_mnist_captions
from t2i.data.augment import DigitAugmentation
from t2i.data.mnist import load_mnist
from t2i.data.pipeline import make_datasets
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from t2i.text_numpy import NumpyCaptionTokenizer


@pytest.fixture(scope="module")
def digits():
    return load_mnist("bundled").x_train[:6]  # real uint8 digits [6, 28, 28]


def _scipy(img, fn, *args, **kw):
    return fn(img.astype(np.float64), *args, order=1, mode="grid-constant", cval=0.0, **kw)


@pytest.mark.parametrize("angle", [30.0, -17.5, 90.0])
def test_rotation_matches_scipy_rotate(digits, angle):
    coords = augment.sampling_coordinates((28, 28), [angle] * 6, [1.0] * 6, np.zeros((6, 2)))
    ours = augment.bilinear_sample(digits, coords)
    for img, got in zip(digits, ours):
        np.testing.assert_allclose(got, _scipy(img, ndimage.rotate, angle, reshape=False), atol=1e-9)
    # Counter-clockwise as displayed: 90 degrees is numpy's rot90, exactly.
    if angle == 90.0:
        np.testing.assert_array_equal(augment.warp(digits, [90.0] * 6, [1.0] * 6, np.zeros((6, 2))),
                                      np.rot90(digits, axes=(1, 2)))


def test_scale_and_shift_match_scipy_affine_and_integer_shift_is_a_translation(digits):
    scale, shift = 1.2, (0.7, -1.3)
    got = augment.bilinear_sample(digits[:1], augment.sampling_coordinates((28, 28), [0.0], [scale], [shift]))[0]
    # output[p] = input[A p + offset] with A = I / s, offset = c - (c + t) / s
    c = np.array([13.5, 13.5])
    matrix = np.eye(2) / scale
    want = _scipy(digits[0], ndimage.affine_transform, matrix, offset=c - matrix @ (c + np.array(shift)))
    np.testing.assert_allclose(got, want, atol=1e-9)
    # An integer shift moves the digit by whole pixels, zeros coming in.
    moved = augment.warp(digits[:1], [0.0], [1.0], [(2, -3)])[0]
    want = np.zeros_like(digits[0])
    want[2:, :25] = digits[0][:26, 3:]
    np.testing.assert_array_equal(moved, want)


def test_elastic_field_and_warp_match_scipy(digits):
    rng = np.random.default_rng(3)
    field = rng.uniform(-1, 1, (6, 2, 28, 28))
    for sigma in (1.0, 4.0):
        want = np.stack([[ndimage.gaussian_filter(f, sigma, mode="constant", cval=0.0) for f in pair]
                         for pair in field])
        np.testing.assert_allclose(augment.gaussian_smooth(field, sigma), want, atol=1e-12)
    displacement = 3.0 * augment.gaussian_smooth(field, 4.0)
    got = augment.bilinear_sample(digits, augment.sampling_coordinates(
        (28, 28), np.zeros(6), np.ones(6), np.zeros((6, 2)), displacement))
    grid = np.stack(np.meshgrid(np.arange(28.0), np.arange(28.0), indexing="ij"))
    for img, g, d in zip(digits, got, displacement):
        np.testing.assert_allclose(g, _scipy(img, ndimage.map_coordinates, grid + d), atol=1e-9)


def test_augmentation_draws_are_deterministic_and_bounded(digits):
    aug = DigitAugmentation(rotation=12, scale=0.1, shift=1.5, elastic_alpha=2.0, elastic_sigma=4.0)
    a = aug(digits, np.random.default_rng(7))
    np.testing.assert_array_equal(a, aug(digits, np.random.default_rng(7)))
    assert a.dtype == np.uint8 and a.shape == digits.shape
    assert not np.array_equal(a, aug(digits, np.random.default_rng(8)))
    assert not np.array_equal(a, digits)
    # Small warps keep most of the ink (a warp is not a different image).
    assert np.abs(a.astype(int).sum((1, 2)) / digits.astype(int).sum((1, 2)) - 1).max() < 0.35
    identity = DigitAugmentation()
    assert not identity.active
    np.testing.assert_array_equal(identity(digits, np.random.default_rng(0)), digits)
    with pytest.raises(T2IError, match="scale"):
        DigitAugmentation(scale=1.0)


AUG = {"data.mnist.augment_rotation": 10.0, "data.mnist.augment_scale": 0.1, "data.mnist.augment_shift": 1.5,
       "data.mnist.augment_elastic_alpha": 1.5}
CFG = C.tiny().override({"data.mnist.source": "bundled", "data.examples_per_epoch": 24,
                         "data.validation_examples": 20, "data.test_examples": 12, "data.seed": 4})


def test_config_fields_round_trip_and_validate():
    cfg = CFG.override(AUG)
    back = C.ExperimentConfig.from_json(cfg.to_json())
    assert back == cfg and back.data.mnist.augment_rotation == 10.0 and back.data.mnist.augment_elastic_sigma == 4.0
    assert C.mnist_captions().data.mnist.augment_rotation == 0.0  # the paper's protocol by default
    with pytest.raises(T2IError, match="augment_rotation"):
        CFG.override({"data.mnist.augment_rotation": "200"})
    with pytest.raises(T2IError, match="augment_elastic_sigma"):
        CFG.override({"data.mnist.augment_elastic_sigma": "0"})


def test_augmented_epochs_keep_layouts_warp_digits_and_leave_validation_alone():
    plain, warped = prepare_mnist_captions(CFG), prepare_mnist_captions(CFG.override(AUG))
    for e in (0, 5):
        p, w = plain.epoch(e), warped.epoch(e)
        for field in ("captions", "types", "a", "b", "index_a", "index_b"):
            np.testing.assert_array_equal(getattr(p, field), getattr(w, field))
        assert not np.array_equal(p.images, w.images)
        np.testing.assert_array_equal(w.images, warped.epoch(e).images)  # deterministic per epoch
        # Digit a of every example is the augmentation of that digit, drawn from the epoch's own
        # stream (a digits first): find it pasted at an allowed offset in a corner example.
        rng = np.random.default_rng([CFG.data.seed, e, 3])
        first = warped.augmentation(warped.train_sampler.digits[w.index_a], rng)
        i = int(np.flatnonzero(w.types >= 4)[0])
        assert _pasted_at_allowed_offset(first[i], w.images[i, ..., 0], int(w.types[i]))
    np.testing.assert_array_equal(plain.validation.images, warped.validation.images)
    np.testing.assert_array_equal(plain.test.images, warped.test.images)


_CORNER_OFFSETS = {4: ((0, 2), (0, 4)), 5: ((30, 32), (28, 32)), 6: ((0, 2), (28, 32)),
                   7: ((30, 32), (0, 4))}  # caption type -> (rows, columns) of the digit's top left


def _pasted_at_allowed_offset(digit, image, k):
    (r0, r1), (c0, c1) = _CORNER_OFFSETS[k]
    return any(np.array_equal(image[r:r + 28, c:c + 28], digit)
               for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))


def test_tf_data_and_numpy_pipelines_give_the_same_augmented_batches_and_resume():
    cfg = CFG.override(AUG)
    tf_data = make_datasets(cfg, CaptionTokenizer(cfg.text), initial_epoch=1)
    arrays = make_array_datasets(cfg, NumpyCaptionTokenizer(cfg.text), initial_epoch=1)
    stream = iter(tf_data.train)
    for _ in (1, 2):
        for step in range(arrays.steps_per_epoch):
            np.testing.assert_array_equal(arrays.train[step]["images"], next(stream)["images"].numpy())
        arrays.train.on_epoch_end()
    # A stream started at epoch 2 (a resumed run) sees what the stream above saw in epoch 2.
    resumed = make_array_datasets(cfg, NumpyCaptionTokenizer(cfg.text), initial_epoch=2)
    again = make_array_datasets(cfg, NumpyCaptionTokenizer(cfg.text), initial_epoch=1)
    again.train.on_epoch_end()
    np.testing.assert_array_equal(resumed.train[0]["images"], again.train[0]["images"])
    plain = make_array_datasets(CFG, NumpyCaptionTokenizer(CFG.text), initial_epoch=2)
    assert not np.array_equal(resumed.train[0]["images"], plain.train[0]["images"])


def test_trains_under_tiny_and_the_run_keeps_the_option(tmp_path):
    from t2i import run as run_lib
    from tests.runs import train_tiny_run

    run = train_tiny_run(tmp_path / "run", AUG)
    cfg = run_lib.load_run_config(run)
    assert cfg.data.mnist.augment_rotation == 10.0 and cfg.data.mnist.augment_elastic_alpha == 1.5
    log = (run / "log.csv").read_text().splitlines()
    assert len(log) == 2 and "nan" not in log[1].lower()
    assert dataclasses.asdict(cfg.data)["mnist"]["augment_shift"] == 1.5


def test_compose_preset_departs_from_the_paper_only_in_named_fields():
    paper, compose = C.mnist_captions().to_dict(), C.get_preset("mnist_captions_compose").to_dict()
    def flat(d, prefix=""):
        out = {}
        for key, value in d.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
        return out

    paper, compose = flat(paper), flat(compose)
    differ = {key for key in paper if paper[key] != compose[key]} - {"name"}
    assert differ and differ <= set(C.COMPOSE_DEPARTURES) and compose["name"] == "mnist_captions_compose"
    for key, value in C.COMPOSE_DEPARTURES.items():
        assert compose[key] == value
    # The paper's preset keeps the paper's protocol: no augmentation, the BiLSTM.
    assert not DigitAugmentation.from_config(C.mnist_captions().data.mnist).active
    assert C.mnist_captions().model.caption_encoder == "bidirectional"

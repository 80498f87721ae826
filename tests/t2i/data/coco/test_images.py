"""Tests for t2i.data.coco.images: JPEG decoding and resizing against Pillow decodes."""

import numpy as np
from PIL import Image

from t2i.data import coco
from tests.fixtures.coco import GREY_INDEX


def box_average(image, factor):
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).astype(np.float64).mean((1, 3))


def test_resize_is_area_average_and_fits(fx, tmp_path):
    # 64x64 -> 32x32: decoded in full, then exactly the 2x2 box average.
    im = fx.in_folder("train2014")[0]
    assert im.size == (64, 64)
    out = coco.decode_image(str(fx.root / im.file), 32, 32).numpy()
    full = np.asarray(Image.open(fx.root / im.file).convert("RGB"))
    reference = np.round(box_average(full, 2))
    assert (np.abs(out - reference) <= 0.5 + 1e-9).all()
    assert np.abs(reference[8:24, 8:24] - reference[0, 0]).max() > 100  # the shape is there
    # 96x96 noise -> 32x32: the 3x3 box average (bilinear would read ~1 pixel in 9).
    noise = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.jpg", quality=100)
    out = coco.decode_image(str(tmp_path / "noise.jpg"), 32, 32).numpy()
    reference = np.round(box_average(np.asarray(Image.open(tmp_path / "noise.jpg")), 3))
    np.testing.assert_array_equal(out, reference)
    # 256x256 is decoded at 1/4 scale by libjpeg, then area-averaged: close to the 8x8 box average.
    big = fx.in_folder("train2014")[4]
    assert big.size == (256, 256)
    out = coco.decode_image(str(fx.root / big.file), 32, 32).numpy().astype(float)
    reference = box_average(np.asarray(Image.open(fx.root / big.file).convert("RGB")), 8)
    assert np.abs(out - reference).max() <= 10 and np.abs(out - reference).mean() < 0.5  # bilinear: 69, 1.06
    # Greyscale JPEGs become RGB.
    grey = fx.in_folder("train2014")[GREY_INDEX]
    assert grey.mode == "L" and Image.open(fx.root / grey.file).mode == "L"
    out = coco.decode_image(str(fx.root / grey.file), 32, 32).numpy()
    assert out.shape == (32, 32, 3) and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert abs(int(out[0, 0, 0]) - 128) <= 3
    # A 96x32 image, red | green | blue thirds: squash keeps all three, center_crop only green.
    thirds = np.zeros((32, 96, 3), np.uint8)
    thirds[:, :32, 0], thirds[:, 32:64, 1], thirds[:, 64:, 2] = 255, 255, 255
    Image.fromarray(thirds).save(tmp_path / "thirds.jpg", quality=100)
    squash = coco.decode_image(str(tmp_path / "thirds.jpg"), 16, 16).numpy().astype(int)
    crop = coco.decode_image(str(tmp_path / "thirds.jpg"), 16, 16, fit="center_crop").numpy().astype(int)
    assert squash[8, 0, 0] > 200 and squash[8, 8, 1] > 200 and squash[8, 15, 2] > 200
    assert (crop[2:-2, 2:-2, 1] > 200).all() and (crop[2:-2, 2:-2, [0, 2]] < 40).all()

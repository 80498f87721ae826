"""COCO JPEGs -> uint8 images at the model's size, inside tf.data."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from t2i.data.coco.skips import EXAMPLES, first_line
from t2i.errors import T2IError

JPEG_MAGIC = b"\xff\xd8\xff"


def decode_image(path, height: int, width: int, fit: str = "squash") -> tf.Tensor:
    """Reads a JPEG file and resizes it: a graph function, for tf.data.

    * `tf.io.decode_jpeg(channels=3)`: greyscale JPEGs become RGB (three
      equal channels). The DCT is "INTEGER_ACCURATE" (libjpeg's islow, the
      same pixels as Pillow) rather than TensorFlow's fast default.
    * Big images are decoded at 1/2, 1/4 or 1/8 scale by libjpeg (the
      largest factor that still leaves at least twice the output size in
      both directions), which is a low-pass reduction and cheaper than a full
      decode.
    * `fit` "squash" resizes the whole image to height x width, ignoring the
      aspect ratio, so that everything a caption mentions stays in view;
      "center_crop" first cuts the largest centred square (undistorted, but
      it can cut off objects near the edges).
    * The resize is area averaging (`method="area"`): a COCO image (640 x
      480) shrinks by a factor of 5 to 20, and bilinear or bicubic sampling
      without antialiasing would only read a few source pixels per output
      pixel and alias. For an exact integer factor it is the box average.
    * Rounded to uint8, so that the JPEG path and the cache give identical
      pixels.

    Args:
        path: scalar string tensor, the file.
        height, width: output size.
        fit: "squash" or "center_crop".

    Returns:
        uint8 [height, width, 3].
    """
    if fit not in ("squash", "center_crop"):
        raise T2IError(f"fit must be 'squash' or 'center_crop', got {fit!r}")
    data = tf.io.read_file(path)
    shape = tf.image.extract_jpeg_shape(data)
    src_h, src_w = shape[0], shape[1]
    if fit == "center_crop":
        src_h = src_w = tf.minimum(src_h, src_w)
    # Number of DCT scalings (2, 4, 8) that keep >= 2x the output size.
    scale = tf.add_n([tf.cast((src_h >= 2 * r * height) & (src_w >= 2 * r * width), tf.int32)
                      for r in (2, 4, 8)])

    def decode(ratio):
        return lambda: tf.io.decode_jpeg(data, channels=3, ratio=ratio, dct_method="INTEGER_ACCURATE")

    image = tf.switch_case(scale, [decode(1), decode(2), decode(4), decode(8)])
    if fit == "center_crop":
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
    image = tf.image.resize(image, [height, width], method="area")  # float32
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def decode_files(files: Sequence[str], height: int, width: int, fit: str = "squash"):
    """Decodes many JPEGs in parallel with `decode_image`, without stopping at bad ones.

    Args:
        files: image paths.
        height, width, fit: as in `decode_image`.

    Returns:
        (pixels, ok, errors): uint8 [M, height, width, 3] (zeros where
        decoding failed), bool [M], and {row: error message} for the first
        few failed rows.
    """
    m = len(files)
    pixels = np.zeros((m, height, width, 3), np.uint8)
    ok = np.zeros(m, bool)
    if m:
        ds = (tf.data.Dataset.from_tensor_slices((np.arange(m, dtype=np.int64), np.asarray(files, object)))
              .map(lambda i, f: (i, decode_image(f, height, width, fit)),
                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
              .ignore_errors()
              .batch(256)
              .prefetch(2))
        for rows, images in ds.as_numpy_iterator():
            pixels[rows] = images
            ok[rows] = True
    errors = {}
    for row in np.flatnonzero(~ok)[:EXAMPLES]:
        try:
            decode_image(tf.constant(files[row]), height, width, fit)
            errors[int(row)] = "decoding failed"
        except (tf.errors.OpError, ValueError) as e:
            errors[int(row)] = first_line(getattr(e, "message", str(e)))
    return pixels, ok, errors


def looks_like_jpeg(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(3) == JPEG_MAGIC
    except OSError:
        return False

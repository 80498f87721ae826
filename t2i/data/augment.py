"""Random warps of MNIST digits before they are pasted into composites.

The bundled MNIST subset has 7,500 training digits (after the validation
split), so every digit is drawn about 13 times in 10 epochs. A
`DigitAugmentation` warps each digit afresh every time it is pasted: a
rotation, a scaling and a shift about the digit's centre, and an elastic
distortion (Simard, Steinkraus and Platt, "Best practices for convolutional
neural networks applied to visual document analysis", ICDAR 2003). For output
pixel p = (row, column) of a 28x28 digit, with centre c = (13.5, 13.5):

    q(p) = c + R(-theta) (p - c - t) / s + alpha * (G_sigma * u)(p)

and the warped digit is the input sampled bilinearly at q(p), zero outside
the 28x28 box (SciPy's `map_coordinates(order=1, mode="grid-constant")`),
rounded to uint8. R(theta) turns the digit by theta counter-clockwise as
displayed (SciPy's `ndimage.rotate` convention), s scales it, t = (t_row,
t_col) shifts it, and u is a per-pixel 2-vector field of uniform(-1, 1)
values smoothed by a Gaussian of standard deviation sigma pixels (zero
padding, radius int(4 sigma + 0.5), SciPy's `gaussian_filter(mode="constant")`).
theta ~ U(-rotation, rotation) degrees, s ~ U(1 - scale, 1 + scale),
t ~ U(-shift, shift)^2, one draw per pasted digit.

The warp is pure NumPy and depends only on the generator it is given; the
training epoch draws it from its own stream (`t2i.data.arrays`), so the tf.data
and NumPy pipelines see the same warped digits and a resumed run the same
epochs. Validation and test composites are never augmented.

Example:

    aug = DigitAugmentation(rotation=10, scale=0.1, shift=1.5, elastic_alpha=1.5, elastic_sigma=4)
    warped = aug(digits, np.random.default_rng(0))  # uint8 [n, 28, 28]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from t2i.errors import T2IError

TRUNCATE = 4.0  # Gaussian radius, in standard deviations (SciPy's default)


def check_ranges(prefix: str, rotation, scale, shift, elastic_alpha, elastic_sigma) -> None:
    """`T2IError` naming `prefix` + the field when a warp range is out of bounds (here and in
    `MnistConfig`, whose fields are "data.mnist.augment_" + these names)."""
    if not 0.0 <= rotation <= 180.0:
        raise T2IError(f"{prefix}rotation must be in [0, 180] degrees, got {rotation}")
    if not 0.0 <= scale < 1.0:
        raise T2IError(f"{prefix}scale must be in [0, 1), got {scale}")
    if shift < 0.0 or elastic_alpha < 0.0:
        raise T2IError(f"{prefix}shift and {prefix}elastic_alpha must be >= 0")
    if elastic_sigma <= 0.0:
        raise T2IError(f"{prefix}elastic_sigma must be > 0, got {elastic_sigma}")


@dataclasses.dataclass(frozen=True)
class DigitAugmentation:
    """The warp's ranges; see the module docstring. All zero: the identity."""

    rotation: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0

    def __post_init__(self):
        check_ranges("augmentation ", self.rotation, self.scale, self.shift, self.elastic_alpha,
                     self.elastic_sigma)

    @property
    def active(self) -> bool:
        return bool(self.rotation or self.scale or self.shift or self.elastic_alpha)

    @classmethod
    def from_config(cls, mnist) -> "DigitAugmentation":
        """From a `MnistConfig`'s (`data.mnist`) `augment_*` fields."""
        return cls(rotation=mnist.augment_rotation, scale=mnist.augment_scale, shift=mnist.augment_shift,
                   elastic_alpha=mnist.augment_elastic_alpha, elastic_sigma=mnist.augment_elastic_sigma)

    def __call__(self, digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Warps uint8 digits [n, h, w] with parameters drawn from `rng` (in a fixed order)."""
        digits = np.asarray(digits)
        n, h, w = digits.shape
        angle = rng.uniform(-self.rotation, self.rotation, n)
        scale = rng.uniform(1.0 - self.scale, 1.0 + self.scale, n)
        shift = rng.uniform(-self.shift, self.shift, (n, 2))
        displacement = None
        if self.elastic_alpha > 0:
            field = rng.uniform(-1.0, 1.0, (n, 2, h, w))
            displacement = self.elastic_alpha * gaussian_smooth(field, self.elastic_sigma)
        return warp(digits, angle, scale, shift, displacement)


def gaussian_kernel_matrix(size: int, sigma: float) -> np.ndarray:
    """[size, size] G with (G f)_i = sum_k w_k f_{i+k}, zero padding; w the normalised Gaussian."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    weights /= weights.sum()
    offset = np.arange(size)[None, :] - np.arange(size)[:, None]  # j - i
    inside = np.abs(offset) <= radius
    return np.where(inside, weights[np.clip(offset + radius, 0, 2 * radius)], 0.0)


def gaussian_smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian smoothing of [..., h, w] over the last two axes (zero padding)."""
    h, w = field.shape[-2:]
    gy, gx = gaussian_kernel_matrix(h, sigma), gaussian_kernel_matrix(w, sigma)
    return gy @ field @ gx.T


def sampling_coordinates(shape, angle, scale, shift, displacement=None) -> np.ndarray:
    """q(p) of the module docstring: float64 [n, 2, h, w] (rows, columns) for angles in degrees."""
    h, w = shape
    n = len(angle)
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    theta = np.deg2rad(np.asarray(angle, np.float64))
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    s = np.asarray(scale, np.float64)[:, None, None]
    shift = np.asarray(shift, np.float64).reshape(n, 2)
    dr = rows[None] - centre[0] - shift[:, :1, None]
    dc = cols[None] - centre[1] - shift[:, 1:, None]
    # Counter-clockwise as displayed (rows point down): the inverse map turns back by theta.
    q_rows = centre[0] + (cos * dr + sin * dc) / s
    q_cols = centre[1] + (cos * dc - sin * dr) / s
    q = np.stack([q_rows, q_cols], axis=1)
    if displacement is not None:
        q = q + displacement
    return q


def bilinear_sample(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """images [n, h, w] sampled at coords [n, 2, h', w'] (rows, columns), zero outside: float64."""
    images = np.asarray(images, np.float64)
    n, h, w = images.shape
    r, c = coords[:, 0], coords[:, 1]
    r0, c0 = np.floor(r), np.floor(c)
    fr, fc = r - r0, c - c0
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    batch = np.arange(n)[:, None, None]
    out = np.zeros(r.shape)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            values = images[batch, np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)]
            out += np.where(inside, values, 0.0) * wr * wc
    return out


def warp(digits: np.ndarray, angle, scale, shift, displacement=None) -> np.ndarray:
    """Warps uint8 digits [n, h, w] with given parameters (see the module docstring) -> uint8."""
    digits = np.asarray(digits)
    if digits.ndim != 3:
        raise T2IError(f"warp needs digits [n, h, w], got shape {digits.shape}")
    coords = sampling_coordinates(digits.shape[1:], angle, scale, shift, displacement)
    return np.clip(np.rint(bilinear_sample(digits, coords)), 0, 255).astype(np.uint8)

"""Rendering a scene: a drawn background, one or two recoloured objects, a filter.

    image = vintage?( paste(objects, background) )          RGB, 32x32, float in [0, 1]

* **Recolouring** (`recolour`): the object's dominant colour is the largest cluster of
  saturated pixels in hue (within 30 degrees of the hue histogram's peak). Its pixels get
  the named colour's hue h*, and their saturation and value are scaled so that the
  cluster's means become the colour's (s*, v*): shading and highlights keep their
  relative strength, and every other pixel (outlines, windows, wheels) is unchanged.
* **Backgrounds** (`draw_background`): eight drawn scenes, each with random variation
  (tints, clouds, rain, stars, waves, lines) that captions never name.
* **Vintage** (`vintage`): sepia toning, faded contrast and a vignette.
"""

from __future__ import annotations

import numpy as np

# name -> (hue in degrees, saturation, value) of the cluster after recolouring.
COLOURS = {
    "red": (0.0, 0.85, 0.85),
    "orange": (28.0, 0.9, 0.95),
    "yellow": (52.0, 0.85, 0.97),
    "green": (125.0, 0.75, 0.7),
    "blue": (218.0, 0.8, 0.85),
    "purple": (280.0, 0.6, 0.7),
    "pink": (325.0, 0.45, 0.97),
}
COLOUR_NAMES = tuple(COLOURS)
# Canonical background names; the sky ones put objects in the air, the others on the ground.
BACKGROUNDS = ("clear sky", "rainy sky", "night sky", "green grass", "dry grass", "parking lot", "road", "sea")
AIR_BACKGROUNDS = ("clear sky", "rainy sky", "night sky")

# A cluster pixel: opaque, saturated and not dark; within CLUSTER_WIDTH degrees of the peak.
MIN_ALPHA, MIN_SATURATION, MIN_VALUE, CLUSTER_WIDTH = 0.5, 0.3, 0.2, 30.0


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] RGB in [0, 1] -> HSV with hue in degrees [0, 360), as `colorsys.rgb_to_hsv`."""
    r, g, b = np.moveaxis(np.asarray(rgb, np.float64), -1, 0)
    v = np.max([r, g, b], axis=0)
    c = v - np.min([r, g, b], axis=0)
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0.0)
    safe = np.where(c > 0, c, 1)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(c > 0, (h / 6.0) % 1.0, 0.0) * 360.0
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_hsv` (hue in degrees), as `colorsys.hsv_to_rgb`."""
    h, s, v = np.moveaxis(np.asarray(hsv, np.float64), -1, 0)
    h6 = (h / 60.0) % 6.0
    i = np.floor(h6).astype(int)
    f = h6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = [np.choose(i, [c[k] for c in choices]) for k in range(3)]
    return np.stack(out, axis=-1)


def _hue_distance(a, b):
    d = np.abs(np.asarray(a) - b) % 360.0
    return np.minimum(d, 360.0 - d)


def dominant_cluster(rgba: np.ndarray) -> np.ndarray:
    """bool [H, W]: the pixels of the drawing's dominant colour (module docstring)."""
    rgba = np.asarray(rgba, np.float64) / 255.0
    hsv = rgb_to_hsv(rgba[..., :3])
    candidate = (rgba[..., 3] > MIN_ALPHA) & (hsv[..., 1] > MIN_SATURATION) & (hsv[..., 2] > MIN_VALUE)
    if not candidate.any():
        return candidate
    hues = hsv[..., 0][candidate]
    centres = np.arange(0.0, 360.0, 5.0)
    support = np.array([(_hue_distance(hues, c) <= CLUSTER_WIDTH).sum() for c in centres])
    peak = centres[np.argmax(support)]
    return candidate & (_hue_distance(hsv[..., 0], peak) <= CLUSTER_WIDTH)


def recolour(rgba: np.ndarray, colour: str) -> np.ndarray:
    """The drawing with its dominant colour replaced by `colour` (module docstring): uint8."""
    hue, saturation, value = COLOURS[colour]
    mask = dominant_cluster(rgba)
    out = np.array(rgba, np.uint8, copy=True)
    if not mask.any():
        return out
    hsv = rgb_to_hsv(np.asarray(rgba, np.float64)[..., :3] / 255.0)
    s, v = hsv[..., 1][mask], hsv[..., 2][mask]
    new = np.stack([np.full(s.shape, hue), np.clip(s * saturation / s.mean(), 0, 1),
                    np.clip(v * value / v.mean(), 0, 1)], axis=-1)
    out[..., :3][mask] = np.round(hsv_to_rgb(new) * 255.0).astype(np.uint8)
    return out


def cluster_share(rgba: np.ndarray) -> float:
    """The dominant colour's share of the drawing's opaque pixels (0 if none)."""
    opaque = np.asarray(rgba)[..., 3] > 255 * MIN_ALPHA
    return float(dominant_cluster(rgba).sum() / max(1, opaque.sum()))


# === Backgrounds =====================================================================

def _vertical(top, bottom, size):
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    return np.broadcast_to((1 - t) * np.asarray(top) + t * np.asarray(bottom), (size, size, 3)).copy()


def _jitter(rng, colour, amount=0.06):
    return np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 1)


def _blob(image, centre, radius, colour, squash=0.6):
    """Fills an ellipse of `image` (radius across, radius x squash down) with `colour`."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    inside = ((yy - centre[0]) / (radius * squash)) ** 2 + ((xx - centre[1]) / radius) ** 2 <= 1
    image[inside] = colour


def _sky(rng, size):
    return _vertical(_jitter(rng, (0.35, 0.6, 0.92)), _jitter(rng, (0.7, 0.85, 0.98)), size)


def draw_background(name: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """float [size, size, 3] in [0, 1]: one drawing of background `name`."""
    s = size
    if name == "clear sky":
        image = _sky(rng, s)
        if rng.random() < 0.5:  # the sun in a top corner
            _blob(image, (rng.uniform(1, 4), rng.choice([2.0, s - 3.0])), 3.5, _jitter(rng, (1.0, 0.92, 0.45)), 1.0)
        return image
    if name == "rainy sky":
        image = _vertical(_jitter(rng, (0.42, 0.45, 0.5)), _jitter(rng, (0.62, 0.64, 0.68)), s)
        for _ in range(rng.integers(2, 4)):  # dark clouds along the top
            _blob(image, (rng.uniform(0, 4), rng.uniform(0, s)), rng.uniform(5, 9), _jitter(rng, (0.33, 0.35, 0.4), 0.03))
        slant = rng.integers(1, 3)
        for _ in range(rng.integers(14, 22)):  # rain streaks
            r, c = rng.integers(4, s - 4), rng.integers(0, s)
            for k in range(3):
                if 0 <= c - k // slant < s:
                    image[r + k, c - k // slant] = (0.78, 0.82, 0.9)
        return image
    if name == "night sky":
        image = _vertical(_jitter(rng, (0.03, 0.05, 0.18), 0.03), _jitter(rng, (0.1, 0.12, 0.3), 0.03), s)
        for _ in range(rng.integers(8, 16)):
            image[rng.integers(0, s), rng.integers(0, s)] = rng.uniform(0.75, 1.0)
        if rng.random() < 0.5:
            _blob(image, (rng.uniform(2, 5), rng.choice([3.0, s - 4.0])), 2.8, (0.95, 0.95, 0.8), 1.0)
        return image
    # Ground scenes: a band of sky over the ground, which starts at the horizon row.
    horizon = int(rng.integers(9, 14))
    image = _sky(rng, s)
    ground = image[horizon:]
    rows = s - horizon
    if name in ("green grass", "dry grass"):
        base = (0.3, 0.65, 0.25) if name == "green grass" else (0.78, 0.68, 0.38)
        far = (0.45, 0.75, 0.35) if name == "green grass" else (0.85, 0.77, 0.5)
        ground[:] = _vertical(_jitter(rng, far), _jitter(rng, base), s)[:rows]
        ground += rng.uniform(-0.07, 0.07, ground.shape[:2])[..., None]  # blades
    elif name == "parking lot":
        ground[:] = _jitter(rng, (0.42, 0.42, 0.44), 0.05)
        ground += rng.uniform(-0.03, 0.03, ground.shape[:2])[..., None]
        offset, gap = rng.integers(0, 5), rng.integers(6, 9)
        for c in range(offset, s, gap):  # the white bay lines
            ground[rows // 3:, c] = (0.92, 0.92, 0.9)
    elif name == "road":
        ground[:] = _jitter(rng, (0.38, 0.62, 0.3))  # verges
        top, bottom = rows // 4, rows - 1
        ground[top:bottom] = _jitter(rng, (0.3, 0.3, 0.32), 0.04)
        middle, dash, phase = (top + bottom) // 2, rng.integers(3, 5), rng.integers(0, 6)
        for c in range(s):
            if (c + phase) % (2 * dash) < dash:
                ground[middle, c] = (0.95, 0.9, 0.55)
    elif name == "sea":
        ground[:] = _vertical(_jitter(rng, (0.15, 0.45, 0.7)), _jitter(rng, (0.05, 0.25, 0.5)), s)[:rows]
        for _ in range(rng.integers(6, 12)):  # wave crests
            r, c = rng.integers(1, rows), rng.integers(0, s - 3)
            ground[r, c:c + 3] = (0.7, 0.85, 0.95)
    else:
        raise ValueError(f"unknown background {name!r}; expected one of {', '.join(BACKGROUNDS)}")
    return np.clip(image, 0, 1)


# === Compositing and filters =========================================================

def paste(image: np.ndarray, sprite: np.ndarray, top: int, left: int) -> None:
    """Alpha-blends float RGBA `sprite` [h, w, 4] onto float RGB `image` in place at
    (top, left); parts outside the image are cut off."""
    height, width = image.shape[:2]
    h, w = sprite.shape[:2]
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(height, top + h), min(width, left + w)
    if r0 >= r1 or c0 >= c1:
        return
    part = sprite[r0 - top:r1 - top, c0 - left:c1 - left]
    alpha = part[..., 3:4]
    image[r0:r1, c0:c1] = image[r0:r1, c0:c1] * (1 - alpha) + part[..., :3] * alpha


SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def vintage(image: np.ndarray) -> np.ndarray:
    """Sepia toning, faded contrast and a vignette: float RGB [H, W, 3] in [0, 1]."""
    size = image.shape[0]
    toned = np.clip(image @ SEPIA.T, 0, 1)
    faded = 0.12 + 0.76 * toned
    yy, xx = np.mgrid[0:size, 0:image.shape[1]]
    centre = (size - 1) / 2
    radius = np.sqrt((yy - centre) ** 2 + (xx - centre) ** 2) / (centre * np.sqrt(2))
    return np.clip(faded * (1 - 0.45 * radius ** 2)[..., None], 0, 1)

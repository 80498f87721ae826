"""Recolouring, backgrounds and the vintage filter (t2i.data.scenes.render)."""

import colorsys

import numpy as np
import pytest

from t2i.data.scenes import render
from t2i.data.scenes.art import CONCEPTS, load_art


def test_hsv_conversions_match_colorsys(rng):
    rgb = rng.random((500, 3))
    rgb[:20] = rgb[:20, :1]  # greys: hue 0, saturation 0
    hsv = render.rgb_to_hsv(rgb)
    want = np.array([colorsys.rgb_to_hsv(*p) for p in rgb]) * [360.0, 1, 1]
    np.testing.assert_allclose(hsv, want, atol=1e-12)
    np.testing.assert_allclose(render.hsv_to_rgb(hsv), rgb, atol=1e-12)


def independent_recolour(rgba, colour):
    """The module docstring's recolouring, pixel by pixel with colorsys."""
    hue, sat, val = render.COLOURS[colour]
    pixels = rgba.reshape(-1, 4).astype(np.float64) / 255.0
    hsv = [colorsys.rgb_to_hsv(*p[:3]) for p in pixels]
    candidate = [p[3] > 0.5 and s > 0.3 and v > 0.2 for p, (h, s, v) in zip(pixels, hsv)]
    hues = np.array([h * 360 for (h, _, _), c in zip(hsv, candidate) if c])

    def dist(a, b):
        d = abs(a - b) % 360
        return min(d, 360 - d)

    support = [sum(dist(h, c) <= 30 for h in hues) for c in np.arange(0, 360, 5.0)]
    peak = np.arange(0, 360, 5.0)[int(np.argmax(support))]
    members = [i for i, ((h, s, v), c) in enumerate(zip(hsv, candidate)) if c and dist(h * 360, peak) <= 30]
    mean_s = np.mean([hsv[i][1] for i in members])
    mean_v = np.mean([hsv[i][2] for i in members])
    out = rgba.reshape(-1, 4).copy()
    for i in members:
        _, s, v = hsv[i]
        r, g, b = colorsys.hsv_to_rgb(hue / 360, min(1, s * sat / mean_s), min(1, v * val / mean_v))
        out[i, :3] = np.round(np.array([r, g, b]) * 255)
    return out.reshape(rgba.shape), len(members)


@pytest.mark.parametrize("colour", ["green", "blue", "pink"])
def test_recolouring_matches_an_independent_recolouring_of_the_same_art(colour):
    art = load_art(size=24)
    for concept in [c for c in CONCEPTS if c.recolourable][:3]:
        for drawing in art[concept.name]:
            want, members = independent_recolour(drawing, colour)
            got = render.recolour(drawing, colour)
            assert members > 0.15 * (drawing[..., 3] > 127).sum()  # a real share of the drawing
            # Rounding to uint8 can differ by one level where float64 orders operations differently.
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
            assert (got[..., 3] == drawing[..., 3]).all()


def test_every_recolourable_drawing_has_a_dominant_colour_to_recolour():
    art = load_art()
    for concept in CONCEPTS:
        if concept.recolourable:
            for style, drawing in enumerate(art[concept.name]):
                assert render.cluster_share(drawing) >= 0.2, (concept.name, style)


def test_recoloured_drawings_take_the_named_hue():
    drawing = load_art(size=32)["car"][0]
    for colour, (hue, _, _) in render.COLOURS.items():
        mask = render.dominant_cluster(drawing)
        hsv = render.rgb_to_hsv(render.recolour(drawing, colour)[..., :3] / 255.0)[mask]
        saturated = hsv[:, 1] > 0.2
        d = np.abs(hsv[saturated, 0] - hue) % 360
        assert np.median(np.minimum(d, 360 - d)) < 6, colour  # uint8 rounding moves hue a little


def test_backgrounds_are_deterministic_images_in_range():
    for name in render.BACKGROUNDS:
        a = render.draw_background(name, np.random.default_rng(3))
        b = render.draw_background(name, np.random.default_rng(3))
        assert a.shape == (32, 32, 3) and a.min() >= 0 and a.max() <= 1
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown background 'moon'"):
        render.draw_background("moon", np.random.default_rng(0))


def test_paste_blends_by_alpha_and_clips_at_the_border():
    image = np.zeros((4, 4, 3))
    sprite = np.zeros((2, 3, 4))
    sprite[..., :3] = 1.0
    sprite[..., 3] = [[1.0, 0.5, 0.0], [0.25, 1.0, 1.0]]
    render.paste(image, sprite, 3, 2)  # only the sprite's top row, first 2 columns, lands
    want = np.zeros((4, 4))
    want[3, 2:4] = [1.0, 0.5]
    np.testing.assert_allclose(image[..., 0], want)


def test_vintage_is_sepia_toned_and_darker_at_the_corners():
    image = np.full((32, 32, 3), 0.6)
    image[..., 2] = 0.1  # saturated yellow-ish
    out = render.vintage(image)
    r, g, b = out[16, 16]
    assert r > g > b  # sepia
    assert out[0, 0].sum() < out[16, 16].sum()  # vignette
    grey = out[..., 0] / np.maximum(out[..., 2], 1e-9)
    np.testing.assert_allclose(grey[16, 16], grey[0, 0], rtol=1e-6)  # one tone everywhere

"""Scenes: attributes, held-out compositions, rendering (t2i.data.scenes.sampler, art)."""

import numpy as np
import pytest

from t2i.data.scenes import art, captions as cap
from t2i.data.scenes.sampler import (DEFAULT_HELD_OUT, SceneSampler, parse_composition)
from t2i.errors import T2IError


@pytest.fixture(scope="module")
def sampler():
    return SceneSampler()


def test_art_has_every_concept_in_every_style():
    drawings = art.load_art()
    assert len(art.CONCEPTS) >= 30 and len(art.STYLES) >= 3
    for concept in art.CONCEPTS:
        assert len(drawings[concept.name]) == len(art.STYLES)
        for d in drawings[concept.name]:
            assert d.dtype == np.uint8 and d.shape[2] == 4 and max(d.shape[:2]) == 64
            assert (d[..., 3] > 8).mean() > 0.15  # a drawing, cropped to itself
    # The styles are independent drawings, not copies.
    bus = [d[..., :3].astype(float).mean((0, 1)) for d in drawings["bus"]]
    assert min(np.abs(x - y).sum() for i, x in enumerate(bus) for y in bus[i + 1:]) > 10


def test_missing_art_is_a_one_line_error_naming_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_ART_DIR", str(tmp_path))
    monkeypatch.setattr(art, "_ART_CACHE", {})
    with pytest.raises(T2IError) as info:
        art.load_art(("fluent",))
    assert "bash scripts/install_scenes_art.sh" in str(info.value) and "\n" not in str(info.value)


def test_captions_are_true_of_their_scenes(sampler):
    scenes = sampler.sample(400, np.random.default_rng(0), "all")
    table = scenes.attributes
    for i, captions in enumerate(scenes.captions):
        assert len(captions) == 3
        for text in captions:
            said = cap.parse_caption(text)
            assert said is not None, text
            truth = SceneSampler.attributes_of(table, i, with_position=said.position is not None)
            assert said == truth, (text, truth)


def test_held_out_compositions_never_occur_in_seen_scenes(sampler):
    seen = sampler.sample(3000, np.random.default_rng(1), "seen")
    assert not seen.held_out.any()
    for text in (c for cs in seen.captions for c in cs):
        said = cap.parse_caption(text)
        assert not (said.object == "bus" and said.colour in ("green", "blue")), text
        assert not (said.object in ("stop sign", "elephant") and said.background == "clear sky"), text
        assert not (said.vintage and said.object in ("dog", "car")), text
    # ... while every word of them is seen in other combinations.
    words = {w for cs in seen.captions for c in cs for w in c.split()}
    assert {"green", "blue", "bus", "stop", "sign", "elephant", "clear", "vintage", "dog", "car"} <= words
    held = sampler.sample(300, np.random.default_rng(2), "held_out")
    assert held.held_out.all()
    shown = {str(c) for c in sampler.held_out
             if any(c.matches({k: v[i:i + 1] for k, v in held.attributes.items()})[0] for i in range(300))}
    assert shown == set(DEFAULT_HELD_OUT)


def test_scenes_are_deterministic_under_the_seed(sampler):
    a = sampler.sample(50, np.random.default_rng(7))
    b = SceneSampler().sample(50, np.random.default_rng(7))
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions
    c = sampler.sample(50, np.random.default_rng(8))
    assert not np.array_equal(a.images, c.images)


def test_recoloured_objects_show_their_colour(sampler):
    """One red and one blue car on the same background: the red one's image is redder."""
    table = {"object": np.array([1, 1]), "background": np.array([7, 7]), "colour": np.array([0, 4]),
             "count": np.array([1, 1]), "position": np.array([0, 0]), "vintage": np.array([False, False]),
             "style": np.array([0, 0])}
    images = sampler.render(table, np.random.default_rng(0)).astype(float)
    diff = images[0] - images[1]
    assert diff[..., 0].sum() > 0 > diff[..., 2].sum()


@pytest.mark.parametrize("text,message", [
    ("purple elephant", "captions never name the colour of a elephant"),
    ("stop sign in space", "unknown background 'space'"),
    ("vintage spaceship", "unknown object 'spaceship'"),
    ("elephant", "accepted forms"),
])
def test_bad_compositions_are_one_line_errors(text, message):
    with pytest.raises(T2IError, match=message):
        parse_composition(text)


def test_composition_names_round_trip():
    for text in DEFAULT_HELD_OUT:
        assert str(parse_composition(text)) == text

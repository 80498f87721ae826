"""Scenes captions: templates, vocabulary and the parser (t2i.data.scenes.captions)."""

import itertools

from t2i.data.scenes import captions as cap
from t2i.data.scenes.art import CONCEPTS
from t2i.data.scenes.render import BACKGROUNDS


def test_every_caption_parses_back_to_its_attributes():
    vocabulary = set(cap.vocabulary())
    for concept, background, count, colour, template in itertools.product(
            CONCEPTS[::3], BACKGROUNDS, (1, 2), (None, "orange"), cap.TEMPLATES):
        if template == "position" and count == 2:
            continue
        attrs = cap.SceneAttributes(concept.name, background, count, colour,
                                    "right" if template == "position" else None, template == "vintage")
        for variant in range(3):
            text = cap.caption(attrs, template, variant)
            assert cap.parse_caption(text) == attrs, text
            assert set(text.split()) <= vocabulary and len(text.split()) <= 16, text


def test_articles_plurals_and_phrasings():
    a = cap.SceneAttributes("elephant", "clear sky")
    assert cap.caption(a, "plain", 0) == "an elephant flying in blue skies"
    b = cap.SceneAttributes("bus", "parking lot", 2, "orange")
    assert cap.caption(b, "plain", 0) == "two orange buses parked in a parking lot"
    c = cap.SceneAttributes("cat", "green grass", 1, None, "left")
    assert cap.caption(c, "position", 1) == "green grass with a cat on the left"
    d = cap.SceneAttributes("sheep", "sea", 2, None, None, True)
    assert cap.caption(d, "vintage", 1) == "an old photo of two sheep floating on the water"


def test_other_text_is_not_a_scenes_caption():
    for text in ["", "the digit 3 is at the top left of the image .", "a bus", "a buses on a road",
                 "a spaceship flying in blue skies"]:
        assert cap.parse_caption(text) is None, text

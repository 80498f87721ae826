"""Captions of scenes: COCO-like sentences from templates with synonyms, and their parser.

A scene's attributes (`SceneAttributes`) are its object, the object's colour (named only
for recolourable objects, and never in a vintage photo, which is sepia), the background,
the count (1 or 2), the position of a single object (left or right) and the vintage
filter. Every caption is true of its scene by construction and names the object, the
count, the background, the colour where there is one and the filter where it is on;
some also name the position:

    plain      "{objects} {where}"                 a red bus parked in a parking lot
    position   "{background} with {object} on the {side}"
                                                   a parking lot with a red bus on the left
    vintage    "a vintage photo of {objects} {where}"
                                                   an old photo of two cats on dry grass

{objects} is "a" / "an" / "two", then the colour, then the noun ("two green kites"), and
{where} and {background} are one of several phrasings of the background (`WHERE`,
`BACKGROUND_NOUNS`).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from t2i.data.scenes.art import CONCEPTS, CONCEPT_NAMES
from t2i.data.scenes.render import BACKGROUNDS, COLOUR_NAMES

SIDES = ("left", "right")
WHERE = {
    "clear sky": ("flying in blue skies", "flying in a clear sky", "in a clear blue sky"),
    "rainy sky": ("flying in rainy skies", "in a rainy sky", "flying in the rain"),
    "night sky": ("flying in the night sky", "in a starry night sky", "at night"),
    "green grass": ("on a green grass field", "standing in green grass", "on green grass"),
    "dry grass": ("on a dry grass field", "standing in dry grass", "on dry brown grass"),
    "parking lot": ("parked in a parking lot", "in a parking lot", "on a parking lot"),
    "road": ("on a road", "on the street", "driving down a road"),
    "sea": ("on the sea", "floating on the water", "on the ocean"),
}
BACKGROUND_NOUNS = {
    "clear sky": ("a clear blue sky", "blue skies"),
    "rainy sky": ("a rainy sky", "rainy skies"),
    "night sky": ("a starry night sky", "the night sky"),
    "green grass": ("a green grass field", "green grass"),
    "dry grass": ("a dry grass field", "dry brown grass"),
    "parking lot": ("a parking lot", "an empty parking lot"),
    "road": ("a road", "the street"),
    "sea": ("the sea", "the ocean"),
}
VINTAGE_PHRASES = ("a vintage photo of", "an old photo of", "a sepia photo of")
TEMPLATES = ("plain", "position", "vintage")


@dataclasses.dataclass(frozen=True)
class SceneAttributes:
    """What a caption says about its scene; None for what it leaves unsaid.

    object, background: names (`CONCEPT_NAMES`, `render.BACKGROUNDS`); colour: a
    `render.COLOUR_NAMES` name or None; count: 1 or 2; position: "left", "right" or None;
    vintage: bool.
    """

    object: str
    background: str
    count: int = 1
    colour: str | None = None
    position: str | None = None
    vintage: bool = False


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(attrs: SceneAttributes) -> str:
    concept = CONCEPTS[CONCEPT_NAMES.index(attrs.object)]
    noun = concept.name if attrs.count == 1 else concept.plural
    words = ([attrs.colour] if attrs.colour else []) + [noun]
    head = " ".join(words)
    return f"{_article(head)} {head}" if attrs.count == 1 else f"two {head}"


def caption(attrs: SceneAttributes, template: str, variant: int = 0) -> str:
    """The caption of `attrs` in `template` ("plain", "position", "vintage"); `variant`
    picks among the phrasings (any integer)."""
    where = WHERE[attrs.background][variant % len(WHERE[attrs.background])]
    if template == "plain":
        text = f"{noun_phrase(attrs)} {where}"
    elif template == "position":
        if attrs.position is None:
            raise ValueError("the position template needs a position")
        nouns = BACKGROUND_NOUNS[attrs.background]
        text = f"{nouns[variant % len(nouns)]} with {noun_phrase(attrs)} on the {attrs.position}"
    elif template == "vintage":
        text = f"{VINTAGE_PHRASES[variant % len(VINTAGE_PHRASES)]} {noun_phrase(attrs)} {where}"
    else:
        raise ValueError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    return text


def _swap_groups():
    """Same-layout negatives of a scenes caption (`t2i.samplers`) swap its colour for
    each other colour and its noun for each other noun of the same number, so that
    only the object's identity or colour differs: "a red bus in a parking lot" ->
    "a blue bus ...", "a red car ...". A noun is swapped by its last word ("stop
    sign" -> "stop bus"); "sheep" and "fish", their own plurals, swap with the
    singular nouns."""
    from t2i.data.catalog import WordGroup

    singular = tuple(dict.fromkeys(c.name.split()[-1] for c in CONCEPTS))
    plural = tuple(w for w in dict.fromkeys(c.plural.split()[-1] for c in CONCEPTS) if w not in singular)
    first_words = tuple(dict.fromkeys(n.split()[0] for c in CONCEPTS for n in (c.name, c.plural)))
    return (WordGroup(COLOUR_NAMES, before=first_words), WordGroup(singular), WordGroup(plural))


SWAP_GROUPS = _swap_groups()


def vocabulary() -> tuple[str, ...]:
    """Every word a scenes caption can use, sorted."""
    words = {"a", "an", "two", "with", "on", "the", "left", "right"}
    for phrases in (*WHERE.values(), *BACKGROUND_NOUNS.values(), VINTAGE_PHRASES):
        for phrase in phrases:
            words.update(phrase.split())
    for concept in CONCEPTS:
        words.update(concept.name.split() + concept.plural.split())
    words.update(COLOUR_NAMES)
    return tuple(sorted(words))


# --- parsing ---------------------------------------------------------------------------
_NOUNS = sorted([(c.name, c.name, 1) for c in CONCEPTS] + [(c.plural, c.name, 2) for c in CONCEPTS
                                                           if c.plural != c.name],
                key=lambda t: -len(t[0]))
_PHRASES = sorted([(p, bg) for bg, ps in WHERE.items() for p in ps]
                  + [(p, bg) for bg, ps in BACKGROUND_NOUNS.items() for p in ps], key=lambda t: -len(t[0]))
_OBJECTS = re.compile(r"(?:^|\s)(a|an|two) (?:(" + "|".join(COLOUR_NAMES) + r") )?("
                      + "|".join(re.escape(n) for n, _, _ in _NOUNS) + r")(?=\s|$)")


def parse_caption(text: str) -> SceneAttributes | None:
    """The attributes a scenes caption names, or None if it is not one (any template,
    any phrasing; case and spacing ignored)."""
    text = " ".join(str(text).lower().replace(".", " ").split())
    match = _OBJECTS.search(text)
    if not match:
        return None
    determiner, colour, noun = match.groups()
    name, number = next((name, number) for n, name, number in _NOUNS if n == noun)
    count = 2 if determiner == "two" else 1
    if number == 2 and count == 1:
        return None
    rest = text[:match.start()] + " | " + text[match.end():]
    background = next((bg for phrase, bg in _PHRASES if phrase in rest), None)
    if background is None:
        return None
    position = next((side for side in SIDES if rest.endswith(f"on the {side}")), None)
    vintage = any(text.startswith(p) for p in VINTAGE_PHRASES)
    return SceneAttributes(name, background, count, colour, position, vintage)


def attribute_table(attrs_list) -> dict[str, np.ndarray]:
    """Integer arrays of a list of `SceneAttributes`: object, background, colour (-1: not
    named), count, position (-1 not named, 0 left, 1 right) and vintage."""
    return {
        "object": np.array([CONCEPT_NAMES.index(a.object) for a in attrs_list], np.int64),
        "background": np.array([BACKGROUNDS.index(a.background) for a in attrs_list], np.int64),
        "colour": np.array([-1 if a.colour is None else COLOUR_NAMES.index(a.colour) for a in attrs_list],
                           np.int64),
        "count": np.array([a.count for a in attrs_list], np.int64),
        "position": np.array([-1 if a.position is None else SIDES.index(a.position) for a in attrs_list],
                             np.int64),
        "vintage": np.array([a.vintage for a in attrs_list], bool),
    }

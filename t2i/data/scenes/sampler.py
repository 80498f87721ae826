"""Scenes with captions: attributes drawn under a seed, held-out compositions, rendering.

A *composition* is a pair of attributes that tests generalisation when it is held out of
training and validation (`parse_composition`):

    "green bus"                 colour x object     (buses are drawn in the other colours)
    "stop sign in clear sky"    object x background (stop signs stand elsewhere)
    "vintage dog"               filter x object     (vintage photos show other objects)

Every word of a held-out composition is seen in training in other combinations.

Seen scenes draw every attribute uniformly and independently (colour only for
recolourable objects; the vintage filter with probability `VINTAGE_PROBABILITY`), and
reject held-out compositions; held-out scenes pick a held-out composition uniformly and
draw the other attributes as seen ones do (never another held-out composition, and a
held-out colour is never hidden by the sepia filter).

Example:

    sampler = SceneSampler(held_out=("green bus", "vintage dog"))
    scenes = sampler.sample(1000, np.random.default_rng(0))          # which="seen"
    scenes.images.shape, scenes.captions[0]   # (1000, 32, 32, 3) uint8, 3 captions each
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from t2i.data.scenes import captions as cap
from t2i.data.scenes.art import CONCEPT_NAMES, CONCEPTS, STYLES, load_art
from t2i.data.scenes.render import (AIR_BACKGROUNDS, BACKGROUNDS, COLOUR_NAMES, draw_background, paste,
                                    recolour, vintage)
from t2i.errors import T2IError

IMAGE_SIZE = 32
VINTAGE_PROBABILITY = 0.15
CAPTIONS_PER_IMAGE = 3
# Longest side of an object in pixels: one object, or each of two.
SINGLE_SIZES = (15, 16, 17, 18, 19)
PAIR_SIZES = (12, 13, 14)
DEFAULT_HELD_OUT = ("green bus", "blue bus", "stop sign in clear sky", "elephant in clear sky",
                    "vintage dog", "vintage car")
RECOLOURABLE = np.array([c.recolourable for c in CONCEPTS])


@dataclasses.dataclass(frozen=True)
class Composition:
    """A held-out pair of attributes: kind "colour" (value: a colour), "background"
    (value: a background) or "vintage" (value: None), with an object."""

    kind: str
    object: str
    value: str | None = None

    def __str__(self) -> str:
        if self.kind == "colour":
            return f"{self.value} {self.object}"
        if self.kind == "background":
            return f"{self.object} in {self.value}"
        return f"vintage {self.object}"

    def caption(self) -> str:
        """A caption that shows the composition: "a green bus on a road", "a stop sign
        flying in blue skies", "a vintage photo of a dog on a green grass field"."""
        if self.kind == "colour":
            return cap.caption(cap.SceneAttributes(self.object, "road", colour=self.value), "plain")
        if self.kind == "background":
            return cap.caption(cap.SceneAttributes(self.object, self.value), "plain")
        return cap.caption(cap.SceneAttributes(self.object, "green grass", vintage=True), "vintage")

    def matches(self, table: dict) -> np.ndarray:
        """bool [n]: which scenes of an attribute table (`Scenes.attributes`) show it."""
        same = table["object"] == CONCEPT_NAMES.index(self.object)
        if self.kind == "colour":
            return same & (table["colour"] == COLOUR_NAMES.index(self.value)) & ~table["vintage"]
        if self.kind == "background":
            return same & (table["background"] == BACKGROUNDS.index(self.value))
        return same & table["vintage"]


def parse_composition(text) -> Composition:
    """"green bus", "stop sign in clear sky", "vintage dog" -> `Composition`."""
    if isinstance(text, Composition):
        return text
    words = " ".join(str(text).lower().split())
    forms = ("'COLOUR OBJECT' (green bus), 'OBJECT in BACKGROUND' (stop sign in clear sky), "
             "'vintage OBJECT' (vintage dog)")
    if words.startswith("vintage "):
        kind, obj, value = "vintage", words[len("vintage "):], None
    elif " in " in words:
        obj, _, value = words.partition(" in ")
        kind = "background"
        if value not in BACKGROUNDS:
            raise T2IError(f"cannot parse scenes composition {text!r}: unknown background {value!r} "
                           f"(one of {', '.join(BACKGROUNDS)})")
    else:
        value, _, obj = words.partition(" ")
        kind = "colour"
        if value not in COLOUR_NAMES:
            raise T2IError(f"cannot parse scenes composition {text!r}; accepted forms: {forms}")
    if obj not in CONCEPT_NAMES:
        raise T2IError(f"cannot parse scenes composition {text!r}: unknown object {obj!r}")
    if kind == "colour" and not CONCEPTS[CONCEPT_NAMES.index(obj)].recolourable:
        raise T2IError(f"scenes composition {text!r}: captions never name the colour of a {obj}")
    return Composition(kind, obj, value)


def held_out_captions(config) -> list[str]:
    """One caption per held-out composition of a run ("a stop sign flying in clear skies"),
    `DEFAULT_HELD_OUT` when the config names none."""
    return [parse_composition(c).caption() for c in (config.data.held_out or DEFAULT_HELD_OUT)]


# Seen captions the demo and the figures offer for a scenes run: the slides' flips.
EXAMPLES = (
    "a yellow bus parked in a parking lot", "a red bus parked in a parking lot",
    "a plane flying in blue skies", "a plane flying in rainy skies",
    "two elephants on a dry grass field", "two elephants on a green grass field",
    "a vintage photo of a cat on green grass", "a balloon flying in the night sky",
)


def seen_examples(config) -> list[str]:
    """`EXAMPLES`: the slides' colour, background and object flips."""
    return list(EXAMPLES)


@dataclasses.dataclass
class Scenes:
    """A batch of scenes.

    Attributes:
        images: uint8 [n, 32, 32, 3].
        captions: n lists of CAPTIONS_PER_IMAGE captions.
        attributes: the rendered attributes (`captions.attribute_table` layout: object,
            background, colour (-1: not named), count, position (0 left, 1 right, -1 both),
            vintage) and "style" (index into art.STYLES).
        held_out: bool [n], whether the scene shows a held-out composition.
    """

    images: np.ndarray
    captions: list
    attributes: dict
    held_out: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


class SceneSampler:
    """Draws and renders scenes (module docstring).

    Args:
        held_out: compositions never drawn by `sample(which="seen")`.
        styles: art styles to draw objects in (`art.STYLES`).
    """

    def __init__(self, held_out: Iterable = DEFAULT_HELD_OUT, styles=STYLES):
        self.held_out = tuple(parse_composition(c) for c in held_out)
        self.styles = tuple(styles)
        self._art = load_art(self.styles)
        self._sprites: dict = {}

    # --- attributes ---------------------------------------------------------------------
    def _draw(self, n: int, rng: np.random.Generator) -> dict:
        obj = rng.integers(0, len(CONCEPTS), n)
        colour = np.where(RECOLOURABLE[obj], rng.integers(0, len(COLOUR_NAMES), n), -1)
        count = rng.integers(1, 3, n)
        return {"object": obj, "background": rng.integers(0, len(BACKGROUNDS), n), "colour": colour,
                "count": count, "position": np.where(count == 1, rng.integers(0, 2, n), -1),
                "vintage": rng.random(n) < VINTAGE_PROBABILITY, "style": rng.integers(0, len(self.styles), n)}

    def _held(self, table: dict) -> np.ndarray:
        held = np.zeros(len(table["object"]), bool)
        for composition in self.held_out:
            held |= composition.matches(table)
        return held

    def _draw_seen(self, n: int, rng: np.random.Generator) -> dict:
        parts, have = [], 0
        while have < n:
            table = self._draw(2 * (n - have) + 16, rng)
            keep = ~self._held(table)
            parts.append({k: v[keep][:n - have] for k, v in table.items()})
            have += len(parts[-1]["object"])
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _draw_held_out(self, n: int, rng: np.random.Generator) -> dict:
        if not self.held_out:
            raise T2IError("no scenes compositions are held out: cannot sample which='held_out'")
        table = self._draw(n, rng)
        pick = rng.integers(0, len(self.held_out), n)
        for i, j in enumerate(pick):
            c = self.held_out[j]
            table["object"][i] = CONCEPT_NAMES.index(c.object)
            if c.kind == "colour":
                table["colour"][i], table["vintage"][i] = COLOUR_NAMES.index(c.value), False
            else:
                table["colour"][i] = rng.integers(0, len(COLOUR_NAMES)) if RECOLOURABLE[table["object"][i]] else -1
                if c.kind == "background":
                    table["background"][i] = BACKGROUNDS.index(c.value)
                else:
                    table["vintage"][i] = True
            # Re-draw what would show another held-out composition as well.
            for _ in range(100):
                row = {k: v[i:i + 1] for k, v in table.items()}
                if sum(bool(h.matches(row)[0]) for h in self.held_out) == 1:
                    break
                if c.kind != "background":
                    table["background"][i] = rng.integers(0, len(BACKGROUNDS))
                if c.kind != "colour" and table["colour"][i] >= 0:
                    table["colour"][i] = rng.integers(0, len(COLOUR_NAMES))
                if c.kind != "vintage":
                    table["vintage"][i] = False
        return table

    # --- captions -----------------------------------------------------------------------
    @staticmethod
    def attributes_of(table: dict, i: int, with_position: bool) -> cap.SceneAttributes:
        """What captions of scene i name (the colour only where it shows, the position
        only if `with_position`)."""
        colour = int(table["colour"][i])
        return cap.SceneAttributes(
            object=CONCEPT_NAMES[table["object"][i]], background=BACKGROUNDS[table["background"][i]],
            count=int(table["count"][i]),
            colour=COLOUR_NAMES[colour] if colour >= 0 and not table["vintage"][i] else None,
            position=cap.SIDES[table["position"][i]] if with_position and table["position"][i] >= 0 else None,
            vintage=bool(table["vintage"][i]))

    def _captions(self, table: dict, rng: np.random.Generator) -> list:
        out = []
        for i in range(len(table["object"])):
            if table["vintage"][i]:
                templates = ["vintage"] * CAPTIONS_PER_IMAGE
            elif table["count"][i] == 1:
                templates = ["plain", "plain", "position"]
            else:
                templates = ["plain"] * CAPTIONS_PER_IMAGE
            variants = rng.permutation(6)
            out.append([cap.caption(self.attributes_of(table, i, t == "position"), t, int(v))
                        for t, v in zip(templates, variants)])
        return out

    # --- rendering ----------------------------------------------------------------------
    def sprite(self, obj: int, style: int, colour: int, size: int) -> np.ndarray:
        """float32 RGBA [h, w, 4] in [0, 1]: object `obj` in `style`, recoloured to colour
        index `colour` (-1: as drawn), its longer side `size` pixels."""
        key = (obj, style, colour, size)
        if key not in self._sprites:
            from PIL import Image

            art = self._art[CONCEPT_NAMES[obj]][style]
            if colour >= 0:
                art = recolour(art, COLOUR_NAMES[colour])
            image = Image.fromarray(art)
            scale = size / max(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.LANCZOS)
            self._sprites[key] = np.asarray(image, np.float32) / 255.0
        return self._sprites[key]

    def render(self, table: dict, rng: np.random.Generator) -> np.ndarray:
        """uint8 [n, 32, 32, 3] images of an attribute table."""
        n = len(table["object"])
        images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for i in range(n):
            background = BACKGROUNDS[table["background"][i]]
            image = draw_background(background, rng, IMAGE_SIZE)
            count = int(table["count"][i])
            sides = [int(table["position"][i])] if count == 1 else [0, 1]
            size = int(rng.choice(SINGLE_SIZES if count == 1 else PAIR_SIZES))
            for side in sides:
                sprite = self.sprite(int(table["object"][i]), int(table["style"][i]), int(table["colour"][i]), size)
                h, w = sprite.shape[:2]
                centre_x = (9 if side == 0 else 23) + rng.integers(-2, 3) if count == 1 else \
                    (8 if side == 0 else 24) + rng.integers(-1, 2)
                if background in AIR_BACKGROUNDS:
                    top = int(rng.integers(8, 15)) - h // 2
                else:
                    top = int(rng.integers(27, 31)) - h
                paste(image, sprite, top, int(centre_x) - w // 2)
            if table["vintage"][i]:
                image = vintage(image)
            images[i] = np.round(image * 255.0).astype(np.uint8)
        return images

    def sample(self, n: int, rng: np.random.Generator, which: str = "seen") -> Scenes:
        """n scenes: which "seen" (never a held-out composition), "held_out" (always one)
        or "all" (drawn as if nothing were held out)."""
        if which == "seen":
            table = self._draw_seen(n, rng)
        elif which == "held_out":
            table = self._draw_held_out(n, rng)
        elif which == "all":
            table = self._draw(n, rng)
        else:
            raise T2IError(f"which must be 'seen', 'held_out' or 'all', got {which!r}")
        captions = self._captions(table, rng)
        images = self.render(table, rng)
        return Scenes(images, captions, table, self._held(table))

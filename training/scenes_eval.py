"""Scenes caption fidelity and flip success (`t2i evaluate` on a scenes run).

* **Fidelity per attribute**: for each test caption, one image is drawn, and the scenes
  attribute classifier (`t2i.scene_classifier`) reads it; an attribute the caption names
  (`t2i.data.scenes.captions.parse_caption`) is right when the classifier reads the named
  value (a named colour is read among the seven colours: which colour the object
  shows, whatever object the classifier takes it for), and the image is right when
  every named attribute is. Reported for seen and
  held-out captions, with the same reading of the real test images as the ceiling.
* **Flip success**: caption pairs that differ in one word (a colour, a background, an
  object: "a yellow bus on a road" / "a blue bus on a road"), drawn with the same seed;
  a pair succeeds when both images are right in every attribute their captions name, so
  that the changed attribute follows the word while the others stay.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from t2i.data.scenes import captions as cap
from t2i.data.scenes.art import CONCEPT_NAMES, CONCEPTS
from t2i.data.scenes.render import BACKGROUNDS, COLOUR_NAMES

ATTRIBUTES = ("object", "background", "colour", "count", "position", "vintage")
FLIPS = ("colour", "background", "object")


def named_targets(captions) -> tuple[dict, dict]:
    """(targets {head: class [N]}, named {head: bool [N]}) of what each caption says, in the
    classifier's classes (`t2i.scene_classifier.labels`)."""
    from t2i.scene_classifier import NOT_SHOWN

    said = [cap.parse_caption(c) for c in captions]
    if any(s is None for s in said):
        bad = next(c for c, s in zip(captions, said) if s is None)
        raise ValueError(f"not a scenes caption: {bad!r}")
    t = cap.attribute_table(said)
    targets = {"object": t["object"], "background": t["background"],
               "colour": np.where(t["colour"] >= 0, t["colour"], NOT_SHOWN),
               "count": t["count"] - 1, "position": np.where(t["count"] == 2, 2, np.maximum(t["position"], 0)),
               "vintage": t["vintage"].astype(np.int64)}
    named = {"object": np.ones(len(said), bool), "background": np.ones(len(said), bool),
             "colour": t["colour"] >= 0, "count": np.ones(len(said), bool),
             "position": t["position"] >= 0, "vintage": np.ones(len(said), bool)}
    return targets, named


def attribute_fidelity(classifier, images, captions) -> tuple[np.ndarray, dict]:
    """(all named attributes right: bool [N], {attribute: share right where named})."""
    from t2i.scene_classifier import read_attributes

    targets, named = named_targets(captions)
    read = read_attributes(classifier, images, colour_named=named["colour"])
    right = np.ones(len(captions), bool)
    per = {}
    for a in ATTRIBUTES:
        ok = (read[a] == targets[a]) | ~named[a]
        right &= ok
        per[a] = float(ok[named[a]].mean()) if named[a].any() else None
    return right, per


def flip_pairs(n: int, kind: str, rng: np.random.Generator, held_out=()) -> list[tuple[str, str]]:
    """n caption pairs that differ in one `kind` word, neither showing a held-out composition."""
    from t2i.data.scenes.sampler import parse_composition

    held = [parse_composition(c) for c in held_out]

    def is_held(attrs: cap.SceneAttributes) -> bool:
        table = cap.attribute_table([attrs])
        return any(c.matches(table)[0] for c in held)

    recolourable = [c.name for c in CONCEPTS if c.recolourable]
    pairs = []
    while len(pairs) < n:
        obj = str(rng.choice(recolourable if kind == "colour" else CONCEPT_NAMES))
        colour = str(rng.choice(COLOUR_NAMES)) if obj in recolourable else None
        base = cap.SceneAttributes(obj, str(rng.choice(BACKGROUNDS)), 1, colour)
        if kind == "colour":
            other = dataclasses.replace(base, colour=str(rng.choice([c for c in COLOUR_NAMES if c != colour])))
        elif kind == "background":
            other = dataclasses.replace(base, background=str(rng.choice([b for b in BACKGROUNDS
                                                                       if b != base.background])))
        else:  # object: to another object of the same colour kind (both coloured, or neither)
            pool = [c for c in (recolourable if colour else [x.name for x in CONCEPTS if not x.recolourable])
                    if c != obj]
            other = dataclasses.replace(base, object=str(rng.choice(pool)))
        if is_held(base) or is_held(other):
            continue
        variant = int(rng.integers(0, 3))
        pairs.append((cap.caption(base, "plain", variant), cap.caption(other, "plain", variant)))
    return pairs


def scenes_report(model, config, tokenizer, captions, held, real_images, sampler, seed: int = 0,
                  flip_pairs_per_kind: int = 100, classifier=None, finish=None) -> dict:
    """Fidelity per attribute (seen / held-out, and the real images' ceiling) and flip success.

    `finish(images, tokens)`, if given, turns every drawn image into the one measured (the
    run's sharpener: `t2i evaluate --sharpen`)."""
    from t2i import samplers
    from t2i.scene_classifier import load_classifier

    classifier = classifier or load_classifier()
    tokens = tokenizer.encode(list(captions))
    finish = finish or (lambda images, _: images)
    generated = finish(samplers.generate(model, config, tokens, seed + np.arange(len(captions)),
                                         sampler)["images"], tokens)
    right, per = attribute_fidelity(classifier, generated, captions)
    real_right, real_per = attribute_fidelity(classifier, real_images, captions)
    held = np.asarray(held, bool)
    report = {"scenes_fidelity": {
        "seen": float(right[~held].mean()) if (~held).any() else None,
        "held_out": float(right[held].mean()) if held.any() else None,
        "per_attribute": per,
        "ceiling_real": {"seen": float(real_right[~held].mean()) if (~held).any() else None,
                         "held_out": float(real_right[held].mean()) if held.any() else None,
                         "per_attribute": real_per}}}
    if held.any():
        from t2i.data.scenes.sampler import parse_composition

        said = [cap.parse_caption(c) for c in captions]
        table = cap.attribute_table(said)
        table["vintage"] = np.asarray(table["vintage"], bool)
        per_comp = {}
        for text in config.data.held_out:
            rows = parse_composition(text).matches(table) & held
            if rows.any():
                per_comp[text] = float(right[rows].mean())
        report["scenes_fidelity"]["held_out_compositions"] = per_comp
    flips = {}
    rng = np.random.default_rng(seed)
    for kind in FLIPS:
        pairs = flip_pairs(flip_pairs_per_kind, kind, rng, config.data.held_out)
        first, second = [p[0] for p in pairs], [p[1] for p in pairs]
        seeds = seed + 10**6 + np.arange(len(pairs))
        first_tokens, second_tokens = tokenizer.encode(first), tokenizer.encode(second)
        a = finish(samplers.generate(model, config, first_tokens, seeds, sampler)["images"], first_tokens)
        b = finish(samplers.generate(model, config, second_tokens, seeds, sampler)["images"], second_tokens)
        ok_a, _ = attribute_fidelity(classifier, a, first)
        ok_b, _ = attribute_fidelity(classifier, b, second)
        flips[kind] = {"pairs": len(pairs), "success": float((ok_a & ok_b).mean())}
    report["flip_success"] = flips
    return report

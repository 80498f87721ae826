"""What the code around the model asks of a run's dataset, in one place.

Export, the command line and the demo call these instead of branching on
`config.data.dataset`; a new dataset adds its case here.
"""

from __future__ import annotations


def held_out_captions(config) -> list[str]:
    """One caption per held-out composition of a run, in its dataset's words: "the digit 2
    is on the left of the digit 9 ." (MNIST with captions), "a stop sign flying in blue
    skies" (scenes); none for COCO."""
    dataset = config.data.dataset
    if dataset == "mnist_captions":
        from t2i.data.mnist_captions import captions_for, parse_composition

        return [captions_for(parse_composition(c))[0] for c in config.data.held_out]
    if dataset == "scenes":
        from t2i.data.scenes.sampler import DEFAULT_HELD_OUT, parse_composition

        return [parse_composition(c).caption() for c in (config.data.held_out or DEFAULT_HELD_OUT)]
    return []


# Seen captions the demo and the figures offer for a scenes run: the slides' flips.
SCENES_EXAMPLES = (
    "a yellow bus parked in a parking lot", "a red bus parked in a parking lot",
    "a plane flying in blue skies", "a plane flying in rainy skies",
    "two elephants on a dry grass field", "two elephants on a green grass field",
    "a vintage photo of a cat on green grass", "a balloon flying in the night sky",
)
MNIST_EXAMPLES = ((0, 7, 1), (2, 3, 8), (1, 5, 0), (4, 6, None), (3, 4, 9), (5, 2, None),
                  (0, 1, 4), (7, 8, None), (2, 9, 6), (6, 0, None))


def example_captions(config) -> tuple[list[str], list[str]]:
    """(seen, held-out) example captions of a run, for the demo and sample figures:
    compositions in and out of training; ([], []) for COCO."""
    dataset = config.data.dataset
    if dataset == "mnist_captions":
        from t2i.data import mnist_captions as mc

        held = {mc.parse_composition(h) for h in config.data.held_out}
        seen = [mc.caption(k, a, b) for k, a, b in MNIST_EXAMPLES if mc.composition_of(k, a, b) not in held]
        return seen, held_out_captions(config)
    if dataset == "scenes":
        return list(SCENES_EXAMPLES), held_out_captions(config)
    return [], []

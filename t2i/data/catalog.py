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
